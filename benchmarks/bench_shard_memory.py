"""Peak memory of each process of a streaming fit under torchrun, where each reads only its shard of the file.

Writes a seeded float32 ``.npy`` file (``--gigabytes``, default 2 GiB, or ``--rows`` x ``--features``)
in a temporary folder (deleted at the end), then fits a tiny MLP autoencoder for one epoch with
``Autoencoder.fit_stream`` (first pass, training, validation, the score's and the threshold's passes):

- under ``torchrun --standalone --nproc_per_node=2`` (gloo, 2 CPU processes);
- in one process (one thread, as each of torchrun's), for comparison;
- with ``--old-src DIR``, under torchrun again with another aekit's sources first on the path (for
  instance a version in which every rank read the whole file: ``git archive COMMIT src | tar -x -C DIR``
  and pass ``DIR/src``).

Each process reports its peak resident memory (``VmHWM`` of ``/proc/self/status``; Linux's
``getrusage(RUSAGE_SELF).ru_maxrss`` is also recorded, but it keeps the peak of the process that
started this one across ``exec``: here this script's, which wrote the file), and the peaks of its
anonymous memory (``RssAnon``) and of the file pages mapped into it (``RssFile``), sampled every
10 ms, as well as its resident memory after the imports (the libraries; ``file share``: the peak
file-backed pages beyond the libraries', as a share of the file). Pages of a memory-mapped ``.npy``
file that a process reads count in its resident memory until they are unmapped: aekit releases each
chunk's once it is copied (``aekit.data.iter_chunks``), so that part stays near a chunk whatever the
file's size; a version that does not holds, at its peak, every page of the range it read in a pass
(its shard, or the whole file where each rank reads all of it). The figures are per process.

Run: ``nice -n 10 python benchmarks/bench_shard_memory.py --out-dir /tmp/shard-memory``
(``--gigabytes 0.2`` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

WRITE_BLOCK_ROWS = 1 << 18

_WORKER = textwrap.dedent(
    """
    import json, os, resource, sys, threading, time
    from pathlib import Path

    def status():
        fields = {}
        for line in open("/proc/self/status"):
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                fields[name] = int(value.split()[0])  # KiB
        return fields

    peaks = {"RssAnon": 0, "RssFile": 0}
    running = True

    def sample():
        while running:
            now = status()
            for name in peaks:
                peaks[name] = max(peaks[name], now.get(name, 0))
            time.sleep(0.01)

    import aekit
    from aekit.training import distributed

    path, out, chunk_rows, buffer_chunks = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    libraries = status()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    ae = aekit.Autoencoder(latent_dim=2, hidden_dims=(8,), architecture="mlp", epochs=1, batch_size=4096,
                           validation_fraction=0.1, early_stopping=False, random_state=0, device="cpu")
    ae.fit_stream(path, chunk_rows=chunk_rows, buffer_chunks=buffer_chunks)
    seconds = time.perf_counter() - started
    running = False
    sampler.join()
    final = status()
    result = {"rank": distributed.rank(), "world": distributed.world_size(), "seconds": seconds,
              "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "vmhwm_kib": final["VmHWM"],
              "peak_anon_kib": peaks["RssAnon"], "peak_file_kib": peaks["RssFile"],
              "libraries_kib": libraries["VmRSS"], "libraries_file_kib": libraries["RssFile"],
              "threshold": float(ae.threshold_), "train_loss": ae.history_["train_loss"][-1]}
    (out / f"rank-{result['rank']}.json").write_text(json.dumps(result))
    """
)


def write_file(path: Path, n_rows: int, n_features: int) -> None:
    """A seeded float32 ``.npy`` file, written block by block (never held whole in memory)."""
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(4, n_features)).astype(np.float32)
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    for start in range(0, n_rows, WRITE_BLOCK_ROWS):
        size = min(WRITE_BLOCK_ROWS, n_rows - start)
        block = rng.standard_normal((size, 4), dtype=np.float32) @ mixing
        block += 0.1 * rng.standard_normal((size, n_features), dtype=np.float32)
        array[start : start + size] = block
    array.flush()
    del array


def run(label: str, path: Path, folder: Path, args, *, world: int, src: str | None) -> list[dict]:
    """One fit (``world`` processes, under torchrun when more than one); each process's figures."""
    folder.mkdir(parents=True)
    script = folder / "worker.py"
    script.write_text(_WORKER)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.setdefault("OMP_NUM_THREADS", "1")  # what torchrun gives each of its processes, here for one process too
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    launcher = [sys.executable]
    if world > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}"]
    command = launcher + [str(script), str(path), str(folder), str(args.chunk_rows), str(args.buffer_chunks)]
    began = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{label} failed:\n{completed.stderr[-3000:]}")
    print(f"  {label}: {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
    return [json.loads((folder / f"rank-{rank}.json").read_text()) for rank in range(world)]


def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0, help="size of the file in GiB (default 2)")
    parser.add_argument("--rows", type=int, help="rows of the file (instead of --gigabytes)")
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--chunk-rows", type=int, default=65536)
    parser.add_argument("--buffer-chunks", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--old-src", help="another aekit's src folder, run under torchrun for comparison")
    parser.add_argument("--runs", default="sharded,single,old",
                        help="which fits to run, comma-separated, of sharded, single and old (old needs --old-src)")
    parser.add_argument("--out-dir", type=Path, help="where results-STAMP.json and the workers' figures go")
    parser.add_argument("--tmp-dir", default=None, help="where to write the data file (default: the system's)")
    args = parser.parse_args()
    n_rows = args.rows or int(args.gigabytes * 2**30) // (args.features * 4)
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="aekit-shard-memory-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aekit-shard-memory-", dir=args.tmp_dir) as folder:
        path = Path(folder) / "data.npy"
        began = time.perf_counter()
        write_file(path, n_rows, args.features)
        file_bytes = path.stat().st_size
        print(f"  wrote {path} ({file_bytes / 2**30:.2f} GiB) in {time.perf_counter() - began:.1f} s",
              file=sys.stderr, flush=True)
        stamp, wanted, runs = time.strftime("%Y%m%d-%H%M%S"), args.runs.split(","), {}
        if "sharded" in wanted:
            runs[f"torchrun, {args.processes} processes, each reading its shard"] = run(
                "sharded", path, out_dir / f"{stamp}-sharded", args, world=args.processes, src=None)
        if "single" in wanted:
            runs["one process, the whole file"] = run("single", path, out_dir / f"{stamp}-single", args, world=1,
                                                      src=None)
        if "old" in wanted and args.old_src:
            runs[f"torchrun, {args.processes} processes, --old-src"] = run(
                "old", path, out_dir / f"{stamp}-old", args, world=args.processes, src=args.old_src)
    print(f"file: {n_rows:,} rows x {args.features} float32 = {file_bytes / 2**20:,.0f} MiB; chunks of "
          f"{args.chunk_rows:,} rows, shuffle buffer {args.buffer_chunks} chunks; 1 epoch, MLP "
          f"{args.features}-8-2, batch 4096")
    print("MiB per process: peak RSS (VmHWM); RSS after the imports; peak anonymous; peak file-backed pages "
          "beyond those mapped after the imports (the data file's)")
    print(f"{'run':52} {'rank':>4} {'seconds':>8} {'peak RSS':>9} {'imports':>8} {'anon':>7} {'data file':>10} "
          f"{'file share':>10}")
    for label, results in runs.items():
        for result in results:
            data_pages = result["peak_file_kib"] - result["libraries_file_kib"]
            print(f"{label:52} {result['rank']:>4} {result['seconds']:>8.1f} {mib(result['vmhwm_kib']):>9} "
                  f"{mib(result['libraries_kib']):>8} {mib(result['peak_anon_kib']):>7} {mib(data_pages):>10} "
                  f"{data_pages * 1024 / file_bytes:>10.2f}")
    summary = {"rows": n_rows, "features": args.features, "file_bytes": file_bytes, "chunk_rows": args.chunk_rows,
               "buffer_chunks": args.buffer_chunks, "runs": runs}
    (out_dir / f"results-{stamp}.json").write_text(json.dumps(summary, indent=1))
    print(f"figures in {out_dir / f'results-{stamp}.json'}")


if __name__ == "__main__":
    main()
