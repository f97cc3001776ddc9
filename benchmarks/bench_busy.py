"""How much slower a fit gets beside other CPU-bound work, with aekit's thread settings and without.

Each measurement is one fresh process fitting the W2 model of ``bench_train.py`` (128-64-10-64-128,
``--rows`` rows, one epoch) or, with ``--workload W1``, the MNIST-shaped 784-1000-500-250-30 model on
uniform noise. It runs alone ("idle"), then beside ``--burners`` processes that each spin one core
("busy"), for each setting:

- ``aekit``: as the ``aekit`` command runs a fit: OpenMP's waiting threads sleep
  (``OMP_WAIT_POLICY=PASSIVE``, which the command sets unless the variable is set);
- ``spinning threads``: ``OMP_WAIT_POLICY=ACTIVE``, a spin-waiting OpenMP setting;
- ``unset``: the variable unset, as in a Python program that imports aekit (the library changes no
  environment variable): libgomp's default, which spins for a while before sleeping;
- ``n_jobs=1``: one thread, what ``--threads 1`` gives.

Printed: seconds per fit (median of ``--repeats``, idle and busy alternate) and busy / idle, the
figure to keep at or under 3. Run on an otherwise idle machine: ``python benchmarks/bench_busy.py``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time

SETTINGS = {
    "aekit": ({"OMP_WAIT_POLICY": "PASSIVE"}, "import aekit, torch", None),
    "spinning threads": ({"OMP_WAIT_POLICY": "ACTIVE"}, "import aekit, torch", None),
    "unset": ({}, "import aekit, torch", None),
    "n_jobs=1": ({}, "import aekit, torch", 1),
}

FIT = """
import sys, time
{imports}
import numpy as np
from aekit import Autoencoder
rows, workload, n_jobs = int(sys.argv[1]), sys.argv[2], None if sys.argv[3] == "None" else int(sys.argv[3])
rng = np.random.default_rng(0)
if workload == "W2":
    codes = rng.normal(size=(rows, 10)).astype(np.float32)
    X = np.tanh(codes @ (rng.normal(size=(10, 128)).astype(np.float32) / np.float32(10 ** 0.5)))
    shape = dict(latent_dim=10, hidden_dims=(64,))
else:
    X = rng.random((rows, 784), dtype=np.float32)
    shape = dict(latent_dim=30, hidden_dims=(1000, 500, 250))
Autoencoder(2, hidden_dims=(8,), epochs=1, n_jobs=n_jobs).fit(X[:500])  # imports, thread pools, kernel timings
started = time.perf_counter()
Autoencoder(**shape, epochs=1, batch_size=256, random_state=0, n_jobs=n_jobs).fit(X)
print(time.perf_counter() - started)
"""


def burn() -> None:
    while True:
        pass


def one_fit(setting: str, rows: int, workload: str) -> float:
    extra, imports, n_jobs = SETTINGS[setting]
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"} | extra
    done = subprocess.run([sys.executable, "-c", FIT.format(imports=imports), str(rows), workload, str(n_jobs)],
                          env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--workload", choices=("W1", "W2"), default="W2")
    parser.add_argument("--burners", type=int, default=2, help="CPU-bound processes beside the busy fits")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated, from: " + ", ".join(SETTINGS))
    args = parser.parse_args()
    settings = args.settings.split(",")
    print(f"# {args.workload}, {args.rows:,} rows, 1 epoch; {os.cpu_count()} cores, load before "
          f"{os.getloadavg()[0]:.1f}; busy = beside {args.burners} processes spinning a core each")
    times: dict[tuple[str, str], list[float]] = {(s, c): [] for s in settings for c in ("idle", "busy")}
    for _ in range(args.repeats):
        for setting in settings:
            times[setting, "idle"].append(one_fit(setting, args.rows, args.workload))
            burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.burners)]
            for process in burners:
                process.start()
            time.sleep(0.5)
            try:
                times[setting, "busy"].append(one_fit(setting, args.rows, args.workload))
            finally:
                for process in burners:
                    process.kill()
                    process.join()
    print("\n| setting | idle s/fit | busy s/fit | busy / idle | target |\n|---|---:|---:|---:|---|")
    for setting in settings:
        idle, busy = (statistics.median(times[setting, c]) for c in ("idle", "busy"))
        print(f"| {setting} | {idle:.2f} | {busy:.2f} | {busy / idle:.1f}x | {'<= 3x' if setting == 'aekit' else ''} |")


if __name__ == "__main__":
    main()
