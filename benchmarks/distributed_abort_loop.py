"""Launch two-process gloo training under torchrun many times and count the launches that abort at exit.

A worker that reaches interpreter shutdown with gloo objects still alive (a process group not
destroyed, a DistributedDataParallel reducer, outstanding work holding tensors) can die in C++
with ``terminate called without an active exception`` (SIGABRT) after training succeeded. This
script counts such launches, and any other failure, over ``--launches`` torchrun launches of 2
CPU processes, each running what the distributed tests run: the trainer (``fit_module``), the
estimator with checkpoints (rank 0 writes them and the model) and a streaming fit, or, with
``--job cli``, ``torchrun -m aekit fit`` on a small ``.npy`` file.

Run: ``nice -n 10 python benchmarks/distributed_abort_loop.py --launches 200`` (8 to 50 s a
launch on 2 busy cores; ``make distributed-abort-loop``; ``--max-minutes`` runs it in parts). It
prints one line per failed launch (with the end of its stderr) and, at the end, the count of aborts
and other failures; it exits 1 when any launch failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# as the `aekit` command sets it, before torch loads OpenMP below: its waiting threads sleep
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

ABORT = "terminate called without an active exception"
N_ROWS, N_FEATURES = 240, 8


def worker(out: Path) -> None:
    """One torchrun worker: the trainer, the estimator with checkpoints, and a streaming fit."""
    import torch

    import aekit
    from aekit.models.mlp import MLPAutoencoder
    from aekit.training import distributed
    from aekit.training.config import TrainConfig
    from aekit.training.loop import fit_module
    from aekit.training.streaming import fit_stream

    distributed.setup()
    X = np.load(out / "data.npy")
    torch.manual_seed(0)
    model = MLPAutoencoder(N_FEATURES, 2, hidden_dims=(64,))
    train = torch.from_numpy(distributed.shard(X[:200]))
    fit_module(model, lambda m, x: ((m(x)[0] - x) ** 2).mean(), train, torch.from_numpy(distributed.shard(X[200:])),
               TrainConfig(epochs=5, batch_size=20, lr=1e-2, early_stopping=False))
    params = dict(latent_dim=2, architecture="mlp", hidden_dims=(6,), epochs=5, lr=1e-2, early_stopping=False,
                  random_state=0, device="cpu")
    aekit.Autoencoder(**params, checkpoint_dir=str(out / "checkpoints")).fit(X).save(out / "model")
    fit_stream(aekit.Autoencoder(**params, batch_size=64, validation_fraction=0.0), out / "data.npy", chunk_rows=60)


def launch(out: Path, job: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    if job == "cli":
        command += ["-m", "aekit", "fit", str(out / "data.npy"), "-o", str(out / "model"), "--architecture", "mlp",
                    "--hidden", "16", "--latent-dim", "2", "--epochs", "5", "--checkpoint-dir",
                    str(out / "checkpoints"), "--quiet"]
    else:
        command += [__file__, "--worker", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONFAULTHANDLER": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launches", type=int, default=200)
    parser.add_argument("--job", choices=("worker", "cli"), default="worker")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="launch no more after this long (the count so far is printed): run long loops in parts")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker)
        return 0
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(N_ROWS, 3)) @ rng.normal(size=(3, N_FEATURES))).astype(np.float32)
    aborts = others = launched = 0
    started = time.perf_counter()
    for index in range(args.launches):
        if args.max_minutes is not None and time.perf_counter() - started > 60 * args.max_minutes:
            break
        launched += 1
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder)
            np.save(out / "data.npy", X)
            completed = launch(out, args.job)
        if completed.returncode != 0:
            aborted = ABORT in completed.stderr
            aborts, others = aborts + aborted, others + (not aborted)
            print(f"launch {index + 1}: exit {completed.returncode}, {'abort at exit' if aborted else 'failure'}:\n"
                  + "\n".join("    " + line for line in completed.stderr.splitlines()[-40:]), flush=True)
        if (index + 1) % 10 == 0:
            print(f"{index + 1} launches: {aborts} aborts, {others} other failures "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    print(f"{launched} launches of 2 gloo processes ({args.job}): {aborts} aborted at exit ({ABORT!r}), "
          f"{others} failed otherwise, {time.perf_counter() - started:.0f} s")
    return 1 if aborts or others else 0


if __name__ == "__main__":
    sys.exit(main())
