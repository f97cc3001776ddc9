"""Anomaly detection on real labelled data: ROC-AUC of aekit's defaults beside IsolationForest, PCA and PyOD.

Protocol (PyOD's own benchmark, ``notebooks/benchmark.py``): for each data set and each seed i, a
60/40 split ``train_test_split(test_size=0.4, random_state=i)``; every detector is fitted on the
training 60 % (outliers included: unsupervised) and scores the test 40 %; ROC-AUC of the scores
against the labels, mean over the seeds.

Suites (``--suite``):

- ``odds`` (default): the 17 ODDS sets of PyOD's benchmark, ``DATA/odds_pyod/*.mat``.
- ``adbench``: ADBench's classical sets, ``DATA/adbench_classical/*.npz`` (``X``, ``y``). Sets with more
  than ``--max-rows`` rows (default 20,000) are subsampled to that many rows, stratified by label,
  with a fixed seed (the table marks them); ``--skip`` drops sets by name.

Detectors, one fixed configuration each for every data set (nothing tuned per data set):

- **aekit**: ``Autoencoder(random_state=i, device="cpu")``, the estimator's defaults; score =
  ``outlier_scores`` (the default combined score, :mod:`aekit.detect`). **aekit error** is the plain
  mean squared reconstruction error of the same fitted model (the score before the combined one).
- **IForest**: scikit-learn ``IsolationForest(random_state=i)``, its defaults; score = ``-score_samples``.
- **PCA**: scikit-learn ``PCA(n_components=k)``, ``k = max(2, min(d // 4, 32))``, on the training split
  standardised with its own mean and standard deviation; score = squared reconstruction error.
- **PyOD AE** / **PyOD VAE** (odds only; skipped without PyOD): PyOD's ``AutoEncoder`` and ``VAE`` with
  their defaults, ``contamination`` = the training outlier share, ``random_state=i``; score =
  ``decision_function``.

Besides the ROC-AUC table it prints the seconds each detector took, the scoring speed of aekit's
``outlier_scores`` against PyOD AE's ``decision_function`` on the same test rows (rows/s, summed over
all sets and seeds), and how well aekit's ``predict`` flags outliers with no labels: the F1 score of
its threshold at the default contamination and at ``contamination="auto"`` (read off the same model).

Run: ``python benchmarks/bench_anomaly.py`` (all 17 sets, 5 seeds), ``--datasets cardio,wbc --seeds 2``
for a quick look, ``--suite adbench``; ``--data DIR`` points at the data folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

# as the `aekit` command sets it, before torch loads OpenMP below: its waiting threads sleep
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import scipy.io
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import train_test_split

import aekit
from _common import DATA_ROOT, machine_line, print_table
from aekit.detect import auto_threshold

FIXED_CONTAMINATION = aekit.Autoencoder().contamination  # 0.05, the estimator's default

ODDS_SETS = (
    "arrhythmia", "cardio", "glass", "ionosphere", "letter", "lympho", "mnist", "musk", "optdigits",
    "pendigits", "pima", "satellite", "satimage-2", "shuttle", "vertebral", "vowels", "wbc",
)


def latent_size(n_features: int) -> int:
    return max(2, min(n_features // 4, 32))


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PyOD's standardizer: the training split's mean and standard deviation (zero deviation -> 1)."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0
    return (train - mean) / std, (test - mean) / std


class AekitRun:
    """One fit of aekit's defaults, read several ways (combined score, plain error, thresholds)."""

    def __init__(self, train, seed: int):
        self.model = aekit.Autoencoder(random_state=seed, device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # latent_dim >= n_features on tiny sets
            self.model.fit(train)

    def scores(self, test) -> np.ndarray:
        started = time.perf_counter()
        self.combined = self.model.outlier_scores(test)
        self.score_seconds = time.perf_counter() - started
        return self.combined


def pca_scores(train, test, seed: int) -> np.ndarray:
    train, test = standardise(train, test)
    pca = PCA(n_components=min(latent_size(train.shape[1]), *train.shape), random_state=seed).fit(train)
    return ((test - pca.inverse_transform(pca.transform(test))) ** 2).sum(axis=1)


def iforest_scores(train, test, seed: int, flags: dict) -> np.ndarray:
    """IsolationForest's outlier scores of ``test``; ``flags`` gets its outlier flags of them with its own
    ``contamination="auto"`` (``score_samples`` below -0.5) and with ``contamination=0.05`` (below the training
    scores' 5 % quantile): what ``predict`` gives, from one forest (the offset is all that differs)."""
    forest = IsolationForest(random_state=seed).fit(train)
    scores = forest.score_samples(test)
    flags["auto"] = scores < forest.offset_
    flags["fixed"] = scores < np.quantile(forest.score_samples(train), FIXED_CONTAMINATION)
    return -scores


def pyod_scores(kind: str, train, test, seed: int, contamination: float, timing: dict) -> np.ndarray:
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.vae import VAE

    detector = (AutoEncoder if kind == "AE" else VAE)(contamination=contamination, random_state=seed, verbose=0,
                                                      device="cpu")
    detector.fit(train)
    started = time.perf_counter()
    scores = detector.decision_function(test)
    timing[kind] = time.perf_counter() - started
    return scores


def scoring_speed(X: np.ndarray, n_rows: int = 200_000, repeats: int = 3) -> str:
    """Rows/s of aekit's ``outlier_scores`` and PyOD AE's ``decision_function`` (best of ``repeats``).

    Both are fitted on ``X`` (defaults, seed 0) and score the same rows, ``X`` tiled to ``n_rows``: large
    enough that per-call overheads do not decide the figure.
    """
    from pyod.models.auto_encoder import AutoEncoder

    rows = np.resize(X, (n_rows, X.shape[1]))
    ours = AekitRun(X, 0).model
    theirs = AutoEncoder(random_state=0, verbose=0, device="cpu").fit(X)
    best = {"aekit": np.inf, "PyOD": np.inf}
    for _ in range(repeats):  # round robin: noise from a shared machine hits both
        for name, score in (("aekit", ours.outlier_scores), ("PyOD", theirs.decision_function)):
            started = time.perf_counter()
            score(rows)
            best[name] = min(best[name], time.perf_counter() - started)
    return (f"scoring speed, {n_rows:,} rows of {X.shape[1]} features (best of {repeats}): aekit outlier_scores "
            f"{n_rows / best['aekit']:,.0f} rows/s, PyOD AE decision_function {n_rows / best['PyOD']:,.0f} rows/s: "
            f"{best['PyOD'] / best['aekit']:.1f}x")


def load_sets(suite: str, data: Path, names: list[str] | None, max_rows: int, skip: set[str]):
    """Yield (name, X, y, note) for the suite's data sets."""
    if suite == "odds":
        for name in names or ODDS_SETS:
            mat = scipy.io.loadmat(data / "odds_pyod" / f"{name}.mat")
            yield name, mat["X"].astype(np.float64), mat["y"].ravel().astype(int), ""
        return
    paths = sorted((data / "adbench_classical").glob("*.npz"), key=lambda p: int(p.stem.split("_")[0]))
    for path in paths:
        name = path.stem.split("_", 1)[1]
        if (names and name not in names) or name in skip:
            continue
        with np.load(path) as arrays:
            X, y = arrays["X"].astype(np.float64), arrays["y"].ravel().astype(int)
        note = ""
        if len(X) > max_rows:
            X, _, y, _ = train_test_split(X, y, train_size=max_rows, stratify=y, random_state=0)
            note = f"subsampled to {max_rows}"
        yield name, X, y, note


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=("odds", "adbench"), default="odds")
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="the data folder (odds_pyod/, adbench_classical/)")
    parser.add_argument("--datasets", default="", help="comma-separated names (default: all of the suite)")
    parser.add_argument("--skip", default="", help="comma-separated names to leave out")
    parser.add_argument("--max-rows", type=int, default=20_000, help="adbench: subsample larger sets to this")
    parser.add_argument("--seeds", type=int, default=5, help="splits per dataset (default 5; PyOD used 10)")
    parser.add_argument("--peers", default="IForest,PCA,PyOD AE,PyOD VAE",
                        help="comma-separated peers to run (default: all; PyOD's VAE is by far the slowest)")
    parser.add_argument("--no-peers", action="store_true",
                        help="aekit only (the peers' figures do not change with aekit's; same splits, same seeds)")
    parser.add_argument("--speed-only", action="store_true",
                        help="only the scoring-speed comparison (cardio, 200,000 rows), no ROC-AUC table")
    parser.add_argument("--save-scores", type=Path, default=None,
                        help="a folder: keep each set's and seed's aekit scores, threshold quantiles, labels and "
                             "IsolationForest flags there (one .npz each), for threshold rules studied offline "
                             "(benchmarks/bench_auto_threshold.py)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: small models, and on a shared machine more threads only wait)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = args.data / ("odds_pyod" if args.suite == "odds" else "adbench_classical")
    if not folder.is_dir():
        print(f"skipped: {folder} is absent (the real datasets are not on this machine)")
        return 0
    chosen = [] if args.no_peers else args.peers.split(",")
    peers = [peer for peer in ("IForest", "PCA") if peer in chosen]
    if args.suite == "odds" and not args.no_peers:
        try:
            import pyod  # noqa: F401
            peers += [peer for peer in ("PyOD AE", "PyOD VAE") if peer in chosen]
        except ImportError:
            print("PyOD AutoEncoder and VAE: skipped (pyod is not installed; pip install pyod)")
    detectors = ["aekit", "aekit error", *peers]
    print(machine_line())
    if args.speed_only:
        print(scoring_speed(scipy.io.loadmat(args.data / "odds_pyod" / "cardio.mat")["X"].astype(np.float64)))
        return 0
    print(f"suite {args.suite}; protocol: 60/40 split, seeds 0..{args.seeds - 1}, ROC-AUC on the test split, "
          "mean (std) over seeds")
    names = [n for n in args.datasets.split(",") if n] or None
    rows, means, seconds = [], {name: [] for name in detectors}, dict.fromkeys(detectors, 0.0)
    f1 = {(detector, rule): [] for detector in ("aekit", "IForest") for rule in ("fixed", "auto")}
    speed = {"aekit rows": 0, "aekit s": 0.0, "PyOD s": 0.0}
    f1_rows = []
    for name, X, y, note in load_sets(args.suite, args.data, names, args.max_rows, set(args.skip.split(","))):
        aucs = {detector: [] for detector in detectors}
        f1_before = {key: len(values) for key, values in f1.items()}
        for seed in range(args.seeds):
            X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=seed)
            if len(np.unique(y_test)) < 2:  # a rare class missed by the split (smtp subsampled): no ROC-AUC
                print(f"  {name}, seed {seed}: the test split holds one class only; skipped", file=sys.stderr)
                continue
            torch.manual_seed(seed)
            pyod_timing: dict = {}
            started = time.perf_counter()
            run = AekitRun(X_train, seed)
            combined = run.scores(X_test)
            seconds["aekit"] += time.perf_counter() - started
            results = {"aekit": combined, "aekit error": run.model.reconstruction_error(X_test)}
            # "auto" reads the same scores' quantiles as the default threshold: as a fit with contamination="auto"
            aekit_flags = {"fixed": combined > run.model.threshold_,
                           "auto": combined > auto_threshold(run.model.score_quantiles_)}
            iforest_flags: dict = {}
            contamination = max(y_train.mean(), 0.01)
            if args.save_scores is not None:
                saved = {"test_scores": combined, "test_labels": y_test, "train_labels": y_train,
                         "train_scores": run.model.outlier_scores(X_train),
                         "score_quantiles": run.model.score_quantiles_, "threshold": run.model.threshold_}
            runs = {
                "IForest": lambda: iforest_scores(X_train, X_test, seed, iforest_flags),  # noqa: B023 (called at once)
                "PCA": lambda: pca_scores(X_train, X_test, seed),  # noqa: B023
                "PyOD AE": lambda: pyod_scores("AE", X_train, X_test, seed, contamination, pyod_timing),  # noqa: B023
                "PyOD VAE": lambda: pyod_scores("VAE", X_train, X_test, seed, contamination, pyod_timing),  # noqa: B023
            }
            for detector in peers:
                started = time.perf_counter()
                results[detector] = runs[detector]()
                seconds[detector] += time.perf_counter() - started
            if args.save_scores is not None:
                args.save_scores.mkdir(parents=True, exist_ok=True)
                np.savez(args.save_scores / f"{args.suite}-{name}-{seed}.npz", **saved,
                         **{f"iforest_{rule}": flags for rule, flags in iforest_flags.items()})
            for (detector, rule), values in f1.items():
                flags = aekit_flags if detector == "aekit" else iforest_flags
                if rule in flags:
                    values.append(f1_score(y_test, flags[rule], zero_division=0.0))
            if "AE" in pyod_timing:
                speed["aekit rows"] += len(X_test)
                speed["aekit s"] += run.score_seconds
                speed["PyOD s"] += pyod_timing["AE"]
            for detector, scores in results.items():
                aucs[detector].append(roc_auc_score(y_test, scores) if np.isfinite(scores).all() else np.nan)
        for detector in detectors:
            means[detector].append(np.mean(aucs[detector]))
        print(f"  {name}: " + ", ".join(f"{d} {np.mean(a):.4f}" for d, a in aucs.items()), file=sys.stderr, flush=True)
        f1_rows.append((name, f"{y.mean():.3f}", *(f"{np.mean(values[f1_before[key]:]):.3f}" if values[f1_before[key]:]
                                                    else "n/a" for key, values in f1.items())))
        rows.append((name + (f" ({note})" if note else ""), str(len(X)), str(X.shape[1]),
                     *(f"{np.mean(aucs[d]):.3f} ({np.std(aucs[d]):.3f})" for d in detectors)))
    rows.append(("mean", "", "", *(f"{np.nanmean(means[d]):.3f}" for d in detectors)))
    print_table("ROC-AUC on the test split, mean (std) over seeds", rows, ("dataset", "n", "d", *detectors))
    aekit_means = np.array(means["aekit"])
    print()
    for peer in detectors[1:]:  # aekit error, then the peers
        peer_means = np.array(means[peer])
        wins = int(np.sum(aekit_means > peer_means + 0.005))
        losses = int(np.sum(aekit_means < peer_means - 0.005))
        print(f"aekit vs {peer}: better on {wins}, worse on {losses}, within 0.005 on "
              f"{len(aekit_means) - wins - losses} of {len(aekit_means)} datasets; higher on "
              f"{int(np.sum(aekit_means > peer_means))}; mean ROC-AUC {np.nanmean(aekit_means):.3f} vs "
              f"{np.nanmean(peer_means):.3f}")
    f1_rows.append(("mean", "", *(f"{np.mean(values):.3f}" if values else "n/a" for values in f1.values())))
    print()
    print_table(f"F1 of predict on the test split (fixed: contamination={FIXED_CONTAMINATION}; auto: each one's "
                '"auto"), mean over seeds', f1_rows,
                ("dataset", "outlier share", *(f"{detector} {rule}" for detector, rule in f1)))
    for rule, words in (("fixed", f"contamination={FIXED_CONTAMINATION}"), ("auto", 'contamination="auto"')):
        figures = ", ".join(f"{detector} {np.mean(f1[detector, rule]):.3f}" for detector in ("aekit", "IForest")
                            if f1[detector, rule])
        print(f"predict without labels, mean F1 on the test split over sets and seeds, {words}: {figures}")
    if speed["PyOD s"] > 0:
        aekit_rate, pyod_rate = speed["aekit rows"] / speed["aekit s"], speed["aekit rows"] / speed["PyOD s"]
        print(f"scoring speed on the test rows themselves (small sets: per-call overheads weigh): aekit "
              f"outlier_scores {aekit_rate:,.0f} rows/s, PyOD AE "
              f"decision_function {pyod_rate:,.0f} rows/s: {aekit_rate / pyod_rate:.1f}x")
    print("seconds (all datasets and seeds, fit + score): " + ", ".join(f"{d} {s:.1f}" for d, s in seconds.items()
                                                                       if d != "aekit error"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
