#!/usr/bin/env bash
# The GPU check, run from the repository root on a machine with an NVIDIA GPU: the CUDA tests, then the
# training benchmark with every contender on the GPU. It uses that machine's python3, which needs torch,
# scikit-learn, safetensors, pyarrow, pandas and tqdm; pyod and skorch are optional (without them, those
# rows are skipped). Results also go to $OUT when it is set (else /tmp/aekit-gpu-check).
set -uo pipefail
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-/tmp/aekit-gpu-check}"
mkdir -p "$out"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee "$out/device.txt"
python3 -m pytest -q -p no:cacheprovider --no-header tests/test_gpu.py 2>&1 | tee "$out/tests.txt"
python3 benchmarks/bench_train.py --device cuda --skip-memory --repeats 3 2>/dev/null | tee "$out/bench_train.txt"
