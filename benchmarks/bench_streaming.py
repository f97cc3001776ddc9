"""Data bigger than the memory budget: peak resident memory and throughput of streaming fit and encode.

A Parquet file of ``--rows`` x 64 float32 values (rank-8 structure plus noise, seeded; by default
12 million rows, 2.9 GiB as float32 in memory) is generated chunk by chunk. Then, each in a fresh
process so that its peak resident memory (``ru_maxrss``) is its own:

- stream fit: ``Autoencoder.fit_stream`` over the whole file (first pass for the scaler, then
  ``--epochs`` epochs; 10% validation rows read again every epoch);
- stream encode: ``aekit.workflows.encode_file`` of the whole file to a Parquet file of codes;
- the in-memory peer, on the first ``--memory-rows`` rows only (the whole file would not fit in the
  budget): ``Autoencoder.fit`` on an array and ``transform``, with the same model and settings.

It prints rows per second of each, the streaming/in-memory ratios, and each process's peak memory
against the budget (``--budget-gib``, 1 GiB) and the size of the data.

Run: ``flock /tmp/aekit-heavy.lock nice .venv/bin/python benchmarks/bench_streaming.py`` (several
minutes on 2 cores); ``--rows 400000 --memory-rows 200000`` for a quick look.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# as the `aekit` command sets it, before torch loads OpenMP below: its waiting threads sleep
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

N_FEATURES, RANK = 64, 8
MODEL = dict(latent_dim=8, hidden_dims=(32,), batch_size=4096, lr=3e-3, random_state=0, device="cpu")


def generate(path: Path, n_rows: int, chunk_rows: int = 65_536) -> None:
    """Write the data file chunk by chunk (bounded memory here too), one Parquet row group per chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    loadings = rng.normal(size=(RANK, N_FEATURES)).astype(np.float32)
    names = [f"f{j}" for j in range(N_FEATURES)]
    schema = pa.schema([(name, pa.float32()) for name in names])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n_rows, chunk_rows):
            n = min(chunk_rows, n_rows - start)
            X = rng.normal(size=(n, RANK)).astype(np.float32) @ loadings
            X += 0.1 * rng.normal(size=X.shape).astype(np.float32)
            writer.write_table(pa.Table.from_arrays([pa.array(col) for col in X.T], schema=schema))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def phase(name: str, data: Path, work: Path, args) -> dict:
    """One measurement, run in its own process; returns its figures."""
    import pyarrow.parquet as pq

    import aekit
    from aekit.data import DataSpec
    from aekit.training.streaming import fit_stream
    from aekit.workflows import encode_file

    params = dict(MODEL, epochs=args.epochs, early_stopping=False)
    started = time.perf_counter()
    if name == "stream fit":
        model = fit_stream(aekit.Autoencoder(**params), data, chunk_rows=args.chunk_rows,
                           buffer_chunks=args.buffer_chunks)
        model.save(work / "model")
        rows = args.rows * 0.9 * args.epochs
    elif name == "stream encode":
        model = aekit.load(work / "model")
        started = time.perf_counter()
        encode_file(model, data, work / "codes.parquet", spec=DataSpec(chunk_rows=args.chunk_rows))
        rows = args.rows
    else:
        table = pq.ParquetFile(data).iter_batches(batch_size=args.memory_rows)
        X = np.column_stack([c.to_numpy() for c in next(table).columns])
        started = time.perf_counter()
        if name == "in-memory fit":
            aekit.Autoencoder(**params).fit(X)
            rows = len(X) * 0.9 * args.epochs
        else:
            model = aekit.load(work / "model")
            started = time.perf_counter()
            model.transform(X)
            rows = len(X)
    seconds = time.perf_counter() - started
    return {"phase": name, "seconds": seconds, "rows_per_s": rows / seconds, "peak_mib": _peak_mib()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12_000_000)
    parser.add_argument("--memory-rows", type=int, default=1_000_000, help="rows of the in-memory peer")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--chunk-rows", type=int, default=65536)
    parser.add_argument("--buffer-chunks", type=int, default=4)
    parser.add_argument("--budget-gib", type=float, default=1.0)
    parser.add_argument("--workdir", help="where to put the data (default: a temporary folder, removed after)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, Path(args.workdir) / "data.parquet", Path(args.workdir), args)))
        return 0

    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        work = Path(folder)
        data = work / "data.parquet"
        started = time.perf_counter()
        generate(data, args.rows)
        data_gib = args.rows * N_FEATURES * 4 / 2**30
        print(f"data: {args.rows:,} rows x {N_FEATURES} float32 = {data_gib:.2f} GiB in memory, "
              f"{data.stat().st_size / 2**30:.2f} GiB of Parquet (written in {time.perf_counter() - started:.0f} s)")
        print(f"model: {MODEL}, epochs={args.epochs}; chunks of {args.chunk_rows} rows, "
              f"shuffle buffer of {args.buffer_chunks} chunks; in-memory peer on {args.memory_rows:,} rows")
        results = {}
        for name in ("stream fit", "stream encode", "in-memory fit", "in-memory encode"):
            command = [sys.executable, __file__, "--phase", name, "--workdir", folder, *_passed(args)]
            completed = subprocess.run(command, capture_output=True, text=True)
            if completed.returncode != 0:
                print(completed.stderr[-3000:], file=sys.stderr)
                return 1
            results[name] = json.loads(completed.stdout.strip().splitlines()[-1])
    budget_mib = args.budget_gib * 1024
    header = f"{'phase':<18}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MiB':>14}"
    print(f"\n{header}  within {args.budget_gib:g} GiB")
    for name, figures in results.items():
        rows = args.rows if name.startswith("stream") else args.memory_rows
        print(f"{name:<18}{rows:>12,}{figures['seconds']:>10.1f}{figures['rows_per_s']:>12,.0f}"
              f"{figures['peak_mib']:>14,.0f}  {'yes' if figures['peak_mib'] <= budget_mib else 'NO'}")
    for what in ("fit", "encode"):
        ratio = results[f"stream {what}"]["rows_per_s"] / results[f"in-memory {what}"]["rows_per_s"]
        print(f"streaming / in-memory throughput, {what}: {ratio:.2f}x")
    stream_peak = max(results["stream fit"]["peak_mib"], results["stream encode"]["peak_mib"])
    print(f"data / streaming peak memory: {data_gib * 1024 / stream_peak:.1f}x")
    return 0


def _passed(args) -> list[str]:
    return ["--rows", str(args.rows), "--memory-rows", str(args.memory_rows), "--epochs", str(args.epochs),
            "--chunk-rows", str(args.chunk_rows), "--buffer-chunks", str(args.buffer_chunks)]


if __name__ == "__main__":
    raise SystemExit(main())
