#!/usr/bin/env bash
# The prepared GPU check, for a session that is lent a GPU machine (the device tool's `run`, from the
# repository root there): the CUDA tests, then the training benchmark with every contender on the GPU.
# That machine's python3 has torch, scikit-learn, safetensors, pyarrow, pandas and tqdm but neither pyod
# nor skorch (carry their wheels to compare against them; without, those rows are skipped).
# Results also go to $OUT (the device tool brings them back).
set -uo pipefail
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-/tmp/aekit-gpu-check}"
mkdir -p "$out"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee "$out/device.txt"
python3 -m pytest -q -p no:cacheprovider --no-header tests/test_gpu.py 2>&1 | tee "$out/tests.txt"
python3 benchmarks/bench_train.py --device cuda --skip-memory --repeats 3 2>/dev/null | tee "$out/bench_train.txt"
