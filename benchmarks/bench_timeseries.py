"""Time-series anomalies: aekit's SeriesAutoencoder through the command line beside subsequence baselines.

Contenders, re-run here, each with the **same window** per series (the one aekit's ``window="auto"``
picks, :func:`aekit.timeseries.dominant_period`; ``--window W`` gives all the same W instead), each
window's score mapped back to steps the same way (:func:`aekit.timeseries.step_scores`, the mean
over the windows covering a step):

- **aekit**: ``aekit fit SERIES.csv -o MODEL --window auto`` then ``aekit score MODEL SERIES.csv``
  with every other option at its default (the CLI's own code path, in this process); the per-step
  ``outlier_score`` column is the score. ``--normalize level,zscore,none`` runs one aekit per choice.
- **IForest**: scikit-learn's ``IsolationForest(random_state=0)`` on the raw windows (stride 1);
  the window score is ``-score_samples``.
- **Sub-PCA**: ``PCA`` on the standardised raw windows keeping 90% of their variance; the window score is
  the squared reconstruction error.
- **MP**: stumpy's matrix profile (``stumpy.stump``, the z-normalised distance of each window to its
  nearest non-trivial neighbour; non-finite values, on flat stretches, set to 0).

Metrics per series: per-step ROC-AUC and PR-AUC (average precision) against the labels; VUS-PR
(:func:`aekit.series_metrics.vus_pr`, the TSB-AD benchmark's metric) with buffers up to the series'
window, as TSB-AD takes its detectors' window; and top-1: whether the highest-scoring step lies in a
labelled window.

Data (``--data``, default ``../shared/data``):

- **NAB** (``nab/``): the 29 labelled series (``labels/combined_windows.json``: a step is anomalous
  when its timestamp is inside a window); every detector fits and scores the whole series
  (unsupervised). The 5 ``artificialNoAnomaly`` series: the share of steps aekit flags at its
  default contamination (0.05).
- **UCR/KDD 135** (``kdd_tsad_135/``, 7,501 points, anomaly at 4187-4198): aekit, IForest and Sub-PCA
  fit on the 1,200 anomaly-free training points and score the whole series; MP self-joins it. KDD Cup
  rule for top-1: the top step after point 1,200 within 100 points of the anomaly.
- **Speed**: fit + score of a 20,000-step series (a daily-like period of 288 steps and noise) through
  the command line, ``--threads`` threads.
- ``--parts memory``: peak memory of ``aekit score`` on series of 1M and 10M steps (``.npy``, a fresh
  process each, no output file: the summary alone), with the model of the speed test.

Run: ``python benchmarks/bench_timeseries.py [--normalize level,zscore] [--window W] [--threads 1]
[--parts speed,memory,kdd,nab] [--data DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

# as the `aekit` command sets it, before torch loads OpenMP below: its waiting threads sleep
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

from _common import DATA_ROOT, machine_line, mib, print_table
from aekit.cli import main as aekit_main
from aekit.series_metrics import vus_pr
from aekit.timeseries import dominant_period, step_scores, window_rows

PEERS = ("IForest", "Sub-PCA", "MP")


def cli(argv: list[str]) -> dict:
    """Run the aekit command line in this process and return its JSON summary."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = aekit_main([*argv, "--json"])
    if code != 0:
        raise RuntimeError(f"aekit {' '.join(argv)} exited {code}")
    return json.loads(out.getvalue())


def aekit_scores(train_csv: Path, series_csv: Path, folder: Path, normalize: str, window: int | None,
                 threads: int) -> tuple[np.ndarray, dict, dict]:
    """Fit on `train_csv` and score `series_csv` through the command line; (step scores, fit and score summaries)."""
    model = folder / f"model-{normalize}"
    fit = cli(["fit", str(train_csv), "-o", str(model), "--force", "--window", str(window or "auto"),
               "--normalize", normalize, "--threads", str(threads)])
    output = folder / f"scores-{normalize}.csv"
    output.unlink(missing_ok=True)
    scored = cli(["score", str(model), str(series_csv), "-o", str(output), "--threads", str(threads)])
    return pd.read_csv(output)["outlier_score"].to_numpy(), fit, scored


def peer_scores(name: str, train: np.ndarray, series: np.ndarray, window: int) -> np.ndarray:
    """A subsequence baseline's per-step scores (`train`: the part it fits on)."""
    starts = np.arange(len(series) - window + 1)
    if name == "MP":
        import stumpy

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            profile = stumpy.stump(series.astype(np.float64), window)[:, 0].astype(np.float64)
        profile[~np.isfinite(profile)] = 0.0
        return step_scores(profile, len(series), window, 1)
    fit_rows = window_rows(train[:, None].astype(np.float64), np.arange(len(train) - window + 1), window, None)
    rows = window_rows(series[:, None].astype(np.float64), starts, window, None)
    if name == "IForest":
        forest = IsolationForest(random_state=0).fit(fit_rows)
        return step_scores(-forest.score_samples(rows), len(series), window, 1)
    scaler = StandardScaler().fit(fit_rows)
    pca = PCA(n_components=0.9, random_state=0).fit(scaler.transform(fit_rows))
    scaled = scaler.transform(rows)
    errors = ((scaled - pca.inverse_transform(pca.transform(scaled))) ** 2).sum(axis=1)
    return step_scores(errors, len(series), window, 1)


def nab_series(data: Path) -> list[tuple[str, Path, np.ndarray, np.ndarray]]:
    """(name, file, values, labels) of every NAB series (labels all 0 for the no-anomaly ones)."""
    windows = json.loads((data / "nab" / "labels" / "combined_windows.json").read_text())
    found = []
    for name in sorted(windows):
        path = data / "nab" / "data" / name
        frame = pd.read_csv(path, parse_dates=["timestamp"])
        labels = np.zeros(len(frame), dtype=int)
        for start, end in windows[name]:
            labels[frame["timestamp"].between(pd.Timestamp(start), pd.Timestamp(end)).to_numpy()] = 1
        found.append((name, path, frame["value"].to_numpy(np.float64), labels))
    return found


def metrics(scores: np.ndarray, labels: np.ndarray, window: int,
            part: slice = slice(None)) -> tuple[float, float, float, bool]:
    """ROC-AUC, PR-AUC, VUS-PR (buffers up to `window`) and top-1 of the steps in `part`."""
    top = int(np.argmax(scores[part])) + (part.start or 0)
    return (roc_auc_score(labels[part], scores[part]), average_precision_score(labels[part], scores[part]),
            vus_pr(labels[part], scores[part], window), bool(labels[top]))


def run_nab(args, folder: Path, contenders: list[str]) -> None:
    try:
        every = nab_series(args.data)
    except OSError as error:
        print(f"NAB: skipped ({error})")
        return
    results: dict[str, list[tuple[float, float, float, bool]]] = {name: [] for name in contenders}
    rows, flag_rows, seconds = [], [], {name: 0.0 for name in contenders}
    index, count = map(int, args.shard.split("/"))
    for name, path, values, labels in every[index::count]:
        window = args.window or dominant_period(values)["window"]
        if not labels.any():  # no anomaly: the share of steps aekit flags
            for normalize in args.normalize:
                _, fit, scored = aekit_scores(path, path, folder, normalize, args.window, args.threads)
                flag_rows.append((name, str(len(values)), str(fit["window"]["window"]), normalize,
                                  f"{scored['outlier_fraction']:.3f}", str(scored["n_segments"])))
            continue
        line = [name.split("/")[-1][:34], str(len(values)), str(window)]
        for contender in contenders:
            started = time.perf_counter()
            if contender.startswith("aekit"):
                scores, fit, _ = aekit_scores(path, path, folder, contender.split(":")[1], args.window, args.threads)
                assert fit["window"]["window"] == window, (fit["window"], window)
            else:
                scores = peer_scores(contender, values, values, window)
            seconds[contender] += time.perf_counter() - started
            roc, pr, vus, hit = metrics(scores, labels, window)
            results[contender].append((roc, pr, vus, hit))
            line.append(f"{roc:.3f}/{pr:.3f}/{vus:.3f}{'*' if hit else ''}")
        rows.append(tuple(line))
        print("  " + " | ".join(line), file=sys.stderr, flush=True)
    print_table("NAB, per series: ROC-AUC/PR-AUC/VUS-PR (* = top-1 step inside a labelled window)", rows,
                ("series", "steps", "window", *contenders))
    summary = [(contender, *(f"{np.mean([r[k] for r in found]):.3f}" for k in range(3)),
                f"{sum(r[3] for r in found)}/{len(found)}", f"{seconds[contender]:.0f}")
               for contender, found in results.items()]
    print_table(f"NAB, {len(rows)} labelled series: means", summary,
                ("detector", "ROC-AUC", "PR-AUC", "VUS-PR", "top-1 hits", "seconds (all series)"))
    aekit_first = next(c for c in contenders if c.startswith("aekit"))
    peers = [c for c in contenders if not c.startswith("aekit")]
    for k, metric in enumerate(("ROC-AUC", "PR-AUC", "VUS-PR")):
        losses = [row[0] for i, row in enumerate(rows)
                  if any(results[peer][i][k] > results[aekit_first][i][k] for peer in peers)]
        print(f"\nseries where a peer's {metric} beats {aekit_first}: {len(losses)} of {len(rows)}: "
              f"{', '.join(losses)}")
    print_table("NAB artificialNoAnomaly: share of steps aekit flags (contamination 0.05)", flag_rows,
                ("series", "steps", "window", "normalize", "flagged share", "segments"))


def run_kdd(args, folder: Path, contenders: list[str]) -> None:
    path = args.data / "kdd_tsad_135" / "135_UCR_Anomaly_InternalBleeding16_TEST.csv"
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1)
    except OSError as error:
        print(f"UCR/KDD 135: skipped ({error})")
        return
    values, labels, n_train = table[:, 1], table[:, 2].astype(int), 1200
    pd.DataFrame({"value": values[:n_train]}).to_csv(folder / "kdd_train.csv", index=False)
    pd.DataFrame({"value": values}).to_csv(folder / "kdd.csv", index=False)
    window = args.window or dominant_period(values[:n_train])["window"]
    anomalous = np.flatnonzero(labels)
    rows = []
    for contender in contenders:
        if contender.startswith("aekit"):
            scores, _, _ = aekit_scores(folder / "kdd_train.csv", folder / "kdd.csv", folder,
                                        contender.split(":")[1], args.window, args.threads)
        else:
            scores = peer_scores(contender, values[:n_train], values, window)
        roc, pr, vus, _ = metrics(scores, labels, window, slice(n_train, None))
        top = int(np.argmax(scores[n_train:])) + n_train
        hit = anomalous.min() - 100 <= top <= anomalous.max() + 100
        rows.append((contender, str(window), f"{roc:.3f}", f"{pr:.3f}", f"{vus:.3f}",
                     f"{'yes' if hit else 'no'} (step {top})"))
    print_table("UCR/KDD 135 (test part after step 1,200)", rows,
                ("detector", "window", "ROC-AUC", "PR-AUC", "VUS-PR", "top-1"))


def run_speed(args, folder: Path) -> None:
    t = np.arange(20_000)
    values = np.sin(2 * np.pi * t / 288) + 0.1 * np.random.default_rng(0).normal(size=len(t))
    pd.DataFrame({"value": values}).to_csv(folder / "speed.csv", index=False)
    started, cpu_started = time.perf_counter(), time.process_time()
    fit = cli(["fit", str(folder / "speed.csv"), "-o", str(folder / "speed-model"), "--force", "--window", "auto",
               "--threads", str(args.threads)])
    fitted = time.perf_counter()
    cli(["score", str(folder / "speed-model"), str(folder / "speed.csv"), "--threads", str(args.threads)])
    done, cpu_seconds = time.perf_counter(), time.process_time() - cpu_started
    print(f"\n20,000 steps, window {fit['window']['window']}: fit {fitted - started:.2f} s + score "
          f"{done - fitted:.2f} s = {done - started:.2f} s through the command line ({args.threads} threads; "
          f"{cpu_seconds:.2f} s of CPU time; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def run_memory(args, folder: Path) -> None:
    rng = np.random.default_rng(0)
    for n_steps in (1_000_000, 10_000_000):
        t = np.arange(n_steps, dtype=np.float64)
        np.save(folder / "long.npy", (np.sin(2 * np.pi * t / 288) + 0.1 * rng.normal(size=n_steps))[:, None]
                .astype(np.float32))
        del t
        # The child's own peak (VmHWM): ru_maxrss would also count the pages it shared with this process
        # between fork and exec.
        code = ("import sys; from aekit.cli import main; code = main(sys.argv[1:]); "
                "print(1024 * int(next(line.split()[1] for line in open('/proc/self/status') "
                "if line.startswith('VmHWM:'))), file=sys.stderr); sys.exit(code)")
        started = time.perf_counter()
        command = [sys.executable, "-c", code, "score", str(folder / "speed-model"), str(folder / "long.npy"),
                   "--quiet", "--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        print(f"score {n_steps:,} steps (float32 series {mib(4 * n_steps)}): peak RSS "
              f"{mib(int(done.stderr.strip().splitlines()[-1]))}, {time.perf_counter() - started:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_ROOT)
    parser.add_argument("--normalize", default="level", help="aekit's per-window normalisations to run, comma-"
                        "separated among level, zscore, none (default: level)")
    parser.add_argument("--window", type=int, help="one window for every series and detector (default: auto)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-peers", action="store_true", help="aekit alone")
    parser.add_argument("--shard", default="0/1", help="I/N: only the NAB series whose index is I modulo N, so that "
                        "N processes share the work (default: all)")
    parser.add_argument("--parts", default="speed,kdd,nab", help="what to run, comma-separated among speed, memory "
                        "(peak memory of scoring 1M and 10M steps; needs speed), kdd, nab (default: %(default)s)")
    args = parser.parse_args()
    args.normalize = args.normalize.split(",")
    torch.set_num_threads(args.threads)
    print(machine_line())
    contenders = [f"aekit:{n}" for n in args.normalize] + ([] if args.no_peers else list(PEERS))
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        parts = args.parts.split(",")
        if "speed" in parts or "memory" in parts:
            run_speed(args, folder)
        if "memory" in parts:
            run_memory(args, folder)
        if "kdd" in parts:
            run_kdd(args, folder, contenders)
        if "nab" in parts:
            run_nab(args, folder, contenders)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
