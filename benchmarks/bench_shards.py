"""Reading one process's share of a file: ``aekit.data.iter_chunks(path, rows=(start, stop))``.

For each format (``.npy``, Parquet in row groups of 65,536 rows, CSV) a seeded file of ``--rows`` x
32 float32 values is written; then, best of ``--repeat``, the seconds to read through ``iter_chunks``:

- the whole file;
- the last of ``--world-size`` shares (``shard_rows``), the one furthest into the file;
- the same share read into a float32 array by the plain library calls as a peer: a slice of
  ``np.load(mmap_mode="r")``, ``pyarrow``'s ``read_row_groups`` of the groups that hold it,
  ``pandas.read_csv(skiprows, nrows)``.

It prints the seconds, share/whole (what a process saves over reading everything: about
1/world_size where the format can seek, more for CSV, which is parsed up to the share's end) and
aekit/peer (the cost of aekit's checks and chunking on top of the plain read).

Run: ``nice python benchmarks/bench_shards.py`` (``--rows 200000`` for a quick look).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

# as the `aekit` command sets it, before torch loads OpenMP below: its waiting threads sleep
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aekit.data import iter_chunks, shard_rows

N_FEATURES = 32


def best_seconds(work, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def drain(path: Path, rows=None) -> int:
    return sum(len(chunk.X) for chunk in iter_chunks(path, rows=rows))


def write_files(folder: Path, n_rows: int, csv_rows: int) -> dict[str, Path]:
    X = np.random.default_rng(0).normal(size=(n_rows, N_FEATURES)).astype(np.float32)
    names = [f"f{j}" for j in range(N_FEATURES)]
    np.save(folder / "data.npy", X)
    table = pa.Table.from_arrays([pa.array(column) for column in X.T], names=names)
    pq.write_table(table, folder / "data.parquet", row_group_size=65536)
    pd.DataFrame(X[:csv_rows], columns=names).to_csv(folder / "data.csv", index=False)
    return {"npy": folder / "data.npy", "parquet": folder / "data.parquet", "csv": folder / "data.csv"}


def peer(kind: str, path: Path, start: int, stop: int):
    if kind == "npy":
        return lambda: np.array(np.load(path, mmap_mode="r")[start:stop], dtype=np.float32)
    if kind == "parquet":
        def read_groups():
            file = pq.ParquetFile(path)
            offsets = np.cumsum([0] + [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)])
            groups = [g for g in range(file.num_row_groups) if offsets[g + 1] > start and offsets[g] < stop]
            table = file.read_row_groups(groups).slice(start - offsets[groups[0]], stop - start)
            return np.column_stack([column.to_numpy() for column in table.columns])
        return read_groups
    return lambda: pd.read_csv(path, skiprows=range(1, start + 1), nrows=stop - start).to_numpy(dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the .npy and Parquet files")
    parser.add_argument("--csv-rows", type=int, default=400_000, help="rows of the CSV file")
    parser.add_argument("--world-size", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aekit-shards-") as folder:
        files = write_files(Path(folder), args.rows, args.csv_rows)
        print(f"{'format':8} {'rows':>10} {'whole s':>9} {'share s':>9} {'peer s':>8} {'share/whole':>12} "
              f"{'aekit/peer':>11}")
        for kind, path in files.items():
            n_rows = args.csv_rows if kind == "csv" else args.rows
            start, stop = shard_rows(n_rows, args.world_size - 1, args.world_size)
            assert drain(path, (start, stop)) == stop - start
            whole = best_seconds(lambda path=path: drain(path), args.repeat)
            share = best_seconds(lambda path=path, rows=(start, stop): drain(path, rows), args.repeat)
            plain = best_seconds(peer(kind, path, start, stop), args.repeat)
            print(f"{kind:8} {n_rows:>10,} {whole:>9.3f} {share:>9.3f} {plain:>8.3f} {share / whole:>12.2f} "
                  f"{share / plain:>11.2f}")


if __name__ == "__main__":
    main()
