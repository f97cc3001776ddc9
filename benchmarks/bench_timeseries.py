"""Time-series anomalies: aekit on sliding windows beside stumpy's matrix-profile discord.

Both detectors see the same windows of ``m`` steps; both map window scores back to steps the same way
(:func:`aekit.timeseries.step_scores`: the mean of the windows covering a step). aekit is
``SlidingWindows(m)`` then ``Autoencoder(random_state=i)`` with its defaults, score = ``outlier_scores``;
stumpy's window score is the matrix profile (the distance of each window to its nearest non-trivial
neighbour, ``stumpy.stump``), its top discord the window with the largest one.

Series (``DATA`` = ``--data``):

- **KDD Cup 2021 / UCR 135** (``kdd_tsad_135``, 7,501 points, one labelled anomaly at 4187-4198; the first
  1,200 points are anomaly-free training data): aekit trains on those 1,200 points, stumpy joins the
  whole series with itself; both look for the top-scored step after point 1,200. KDD Cup rule: a hit
  when it lies within 100 points of the labelled segment. ``m = 100``. Per-point ROC-AUC on the test part.
- **ECG5000** (``ecg5000_train``, 500 heartbeats of 140 samples, class 1 normal): ``--beats`` beats
  (default 200) drawn at random (seed 0; the file is ordered by class), in file order, laid end to end
  as one series, each point labelled by its beat; ``m = 140`` (one beat); both fit on the whole series
  (unsupervised). Per-point ROC-AUC; hit: the top step in an abnormal beat.
- **MIT-BIH record 208** (``ecg_mitbih208_scipy``, 5 minutes at 360 Hz, **no labels**): downsampled to
  90 Hz (every 4th sample, 27,000 points), ``m = 90`` (one second); prints where each detector's top
  segment lies (seconds), nothing to score it against. Its README names noise artefacts at 207-215 s.

Run: ``python benchmarks/bench_timeseries.py [--seeds 5] [--data DIR]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

# as `import aekit` would have it, had torch not come first below: OpenMP's waiting threads sleep
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

import aekit
from _common import DATA_ROOT, machine_line, print_table
from aekit.timeseries import SlidingWindows, step_scores


def aekit_steps(train: np.ndarray, series: np.ndarray, window: int, seed: int) -> np.ndarray:
    windows = SlidingWindows(window)
    model = aekit.Autoencoder(random_state=seed, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.fit(windows.fit_transform(train))
    return windows.to_steps(model.outlier_scores(windows.transform(series)), len(series))


def stumpy_steps(series: np.ndarray, window: int) -> np.ndarray:
    import stumpy

    profile = stumpy.stump(series.astype(np.float64), window)[:, 0].astype(np.float64)
    profile[~np.isfinite(profile)] = 0.0
    return step_scores(profile, len(series), window, 1)


def kdd(data: Path) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(series, labels, training length, window)."""
    table = np.loadtxt(data / "kdd_tsad_135" / "135_UCR_Anomaly_InternalBleeding16_TEST.csv", delimiter=",",
                       skiprows=1)
    return table[:, 1], table[:, 2].astype(int), 1200, 100


def ecg5000(data: Path, beats: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    table = np.loadtxt(data / "ecg5000_train" / "ECG5000_TRAIN.txt")
    # the file is ordered by class: an even sample of the beats, in file order, holds every class
    table = table[np.sort(np.random.default_rng(0).choice(len(table), min(beats, len(table)), replace=False))]
    series = table[:, 1:].ravel()
    labels = np.repeat((table[:, 0] != 1).astype(int), table.shape[1] - 1)
    return series, labels, len(series), 140


def mitbih(data: Path) -> np.ndarray:
    raw = np.load(data / "ecg_mitbih208_scipy" / "ecg.dat", allow_pickle=False)["ecg"]
    return ((raw.astype(np.int64) - 1024) / 200.0)[::4]


def kdd_hit(step: int, labels: np.ndarray) -> bool:
    anomalous = np.flatnonzero(labels)
    return bool(anomalous.min() - 100 <= step <= anomalous.max() + 100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_ROOT)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--beats", type=int, default=200, help="ECG5000 beats laid end to end (default 200 of 500)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_line())
    rows = []
    for name, loader in (("KDD 135", lambda: kdd(args.data)), ("ECG5000", lambda: ecg5000(args.data, args.beats))):
        try:
            series, labels, n_train, window = loader()
        except OSError as error:
            print(f"{name}: skipped ({error})")
            continue
        test = slice(n_train, None) if n_train < len(series) else slice(None)
        hit = kdd_hit if name.startswith("KDD") else (lambda step, labels: bool(labels[step]))
        started = time.perf_counter()
        profile = stumpy_steps(series, window)
        stumpy_seconds = time.perf_counter() - started
        stumpy_top = int(np.argmax(profile[test])) + (test.start or 0)
        aucs, hits, tops, seconds = [], [], [], 0.0
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            started = time.perf_counter()
            scores = aekit_steps(series[:n_train, None], series[:, None], window, seed)
            seconds += time.perf_counter() - started
            top = int(np.argmax(scores[test])) + (test.start or 0)
            tops.append(top)
            hits.append(hit(top, labels))
            aucs.append(roc_auc_score(labels[test], scores[test]))
        rows.append((name, str(len(series)), str(window),
                     f"{np.mean(aucs):.3f} ({np.std(aucs):.3f})", f"{roc_auc_score(labels[test], profile[test]):.3f}",
                     f"{sum(hits)}/{len(hits)} (steps {', '.join(map(str, tops))})",
                     f"{'yes' if hit(stumpy_top, labels) else 'no'} (step {stumpy_top})",
                     f"{seconds / args.seeds:.1f}", f"{stumpy_seconds:.1f}"))
        print("  " + " | ".join(rows[-1]), file=sys.stderr, flush=True)  # each series as it is done
    print_table("per-point ROC-AUC (test part) and top-scored step", rows,
                ("series", "points", "m", "aekit ROC-AUC", "stumpy ROC-AUC", "aekit top hits", "stumpy top hits",
                 "aekit s/seed", "stumpy s"))
    try:
        series = mitbih(args.data)
    except OSError as error:
        print(f"MIT-BIH 208: skipped ({error})")
        return 0
    profile = stumpy_steps(series, 90)
    scores = aekit_steps(series[:, None], series[:, None], 90, 0)
    print(f"\nMIT-BIH 208 (no labels; 90 Hz, m = 90): stumpy's top discord at {np.argmax(profile) / 90:.1f} s, "
          f"aekit's top step at {np.argmax(scores) / 90:.1f} s (seed 0); Spearman correlation of the per-step "
          f"scores {np.corrcoef(np.argsort(np.argsort(profile)), np.argsort(np.argsort(scores)))[0, 1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
