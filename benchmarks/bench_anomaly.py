"""Anomaly detection on real labelled data: ROC-AUC of aekit's scores beside PCA and PyOD's AutoEncoder.

Protocol (PyOD's own benchmark, ``notebooks/benchmark.py``): for each of the 17 ODDS sets in
``../shared/data/odds_pyod`` and each seed i, a 60/40 split ``train_test_split(test_size=0.4,
random_state=i)``; every detector is fitted on the training 60 % (outliers included: unsupervised)
and scores the test 40 %; ROC-AUC of the scores against the labels, mean over the seeds.

Detectors, one fixed configuration each for every dataset (nothing tuned per dataset):

- **aekit**: ``Autoencoder(latent_dim=k, hidden_dims=(64,), scaler="standard", epochs=100,
  patience=10, random_state=i)``, score = ``reconstruction_error`` (the value ``aekit score``
  writes), with ``k = max(2, min(d // 4, 32))`` for ``d`` features.
- **PCA**: scikit-learn ``PCA(n_components=k)`` on the training split standardised with its own
  mean and standard deviation (PyOD's ``standardizer``), score = squared reconstruction error.
- **PyOD AutoEncoder** (re-run here on the same splits): PyOD's defaults (hidden [64, 32], batch norm,
  dropout 0.2, 10 epochs, its own standardisation), ``contamination`` = the training outlier share,
  ``random_state=i``; score = ``decision_function``. Skipped if PyOD is not installed (``pip install
  pyod``; it is in the ``bench`` extra).
- **published**: PyOD's table (``pyod_benchmark_roc.csv``, 10 trials, older PyOD), AutoEncoder and PCA
  columns, for reference; PyOD's PCA is not a plain reconstruction error (it weighs the deviation
  along each component by its eigenvalue).

Run: ``python benchmarks/bench_anomaly.py`` (all 17 sets, 5 seeds) or ``--datasets cardio,wbc
--seeds 2`` for a quick look. Prints one Markdown table, the number of datasets on which aekit
beats each peer, and the seconds each detector took.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd
import scipy.io
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

import aekit
from _common import DATA_ROOT, machine_line, print_table

ODDS = DATA_ROOT / "odds_pyod"
DATASETS = (
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


def aekit_scores(train, test, seed: int) -> np.ndarray:
    model = aekit.Autoencoder(latent_dim=latent_size(train.shape[1]), hidden_dims=(64,), scaler="standard",
                              epochs=100, patience=10, random_state=seed, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # latent_dim >= n_features on 6- to 8-feature sets
        model.fit(train)
    return model.reconstruction_error(test)


def pca_scores(train, test, seed: int) -> np.ndarray:
    train, test = standardise(train, test)
    pca = PCA(n_components=min(latent_size(train.shape[1]), train.shape[1]), random_state=seed).fit(train)
    return ((test - pca.inverse_transform(pca.transform(test))) ** 2).sum(axis=1)


def pyod_scores(train, test, seed: int, contamination: float) -> np.ndarray:
    from pyod.models.auto_encoder import AutoEncoder

    detector = AutoEncoder(contamination=contamination, random_state=seed, verbose=0, device="cpu")
    detector.fit(train)
    return detector.decision_function(test)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated ODDS names")
    parser.add_argument("--seeds", type=int, default=5, help="splits per dataset (default 5; PyOD used 10)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: small models, and on a shared machine more threads only wait)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not ODDS.is_dir():
        print(f"skipped: {ODDS} is absent (the shared real datasets are not on this machine)")
        return 0
    try:
        import pyod  # noqa: F401
        have_pyod = True
    except ImportError:
        have_pyod = False
        print("PyOD AutoEncoder: skipped (pyod is not installed; pip install pyod)")
    published = pd.read_csv(ODDS / "pyod_benchmark_roc.csv").set_index("Data")
    print(machine_line())
    print(f"protocol: 60/40 split, seeds 0..{args.seeds - 1}, ROC-AUC on the test split, mean (std) over seeds")

    detectors = ["aekit", "PCA"] + (["PyOD AE"] if have_pyod else [])
    rows, means, seconds = [], {name: [] for name in detectors}, dict.fromkeys(detectors, 0.0)
    for name in args.datasets.split(","):
        data = scipy.io.loadmat(ODDS / f"{name}.mat")
        X, y = data["X"].astype(np.float64), data["y"].ravel().astype(int)
        aucs = {detector: [] for detector in detectors}
        for seed in range(args.seeds):
            X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=seed)
            torch.manual_seed(seed)
            runs = {
                "aekit": lambda: aekit_scores(X_train, X_test, seed),  # noqa: B023 (called at once)
                "PCA": lambda: pca_scores(X_train, X_test, seed),  # noqa: B023
                "PyOD AE": lambda: pyod_scores(X_train, X_test, seed, max(y_train.mean(), 0.01)),  # noqa: B023
            }
            for detector in detectors:
                started = time.perf_counter()
                scores = runs[detector]()
                seconds[detector] += time.perf_counter() - started
                aucs[detector].append(roc_auc_score(y_test, scores) if np.isfinite(scores).all() else np.nan)
        for detector in detectors:
            means[detector].append(np.mean(aucs[detector]))
        print(f"  {name}: " + ", ".join(f"{d} {np.mean(a):.4f}" for d, a in aucs.items()), file=sys.stderr, flush=True)
        reference = published.loc[name] if name in published.index else None
        rows.append((
            name, str(len(X)), str(X.shape[1]), str(latent_size(X.shape[1])),
            *(f"{np.mean(aucs[d]):.3f} ({np.std(aucs[d]):.3f})" for d in detectors),
            *((f"{reference['AutoEncoder']:.3f}", f"{reference['PCA']:.3f}") if reference is not None else ("", "")),
        ))
    header = ("dataset", "n", "d", "k", *detectors, "published PyOD AE", "published PyOD PCA")
    print_table("ROC-AUC on the test split, mean (std) over seeds", rows, header)
    aekit_means = np.array(means["aekit"])
    print()
    for peer in detectors[1:]:
        peer_means = np.array(means[peer])
        wins = int(np.sum(aekit_means > peer_means + 0.005))
        losses = int(np.sum(aekit_means < peer_means - 0.005))
        print(f"aekit vs {peer}: better on {wins}, worse on {losses}, within 0.005 on "
              f"{len(aekit_means) - wins - losses} of {len(aekit_means)} datasets; mean ROC-AUC "
              f"{np.nanmean(aekit_means):.3f} vs {np.nanmean(peer_means):.3f}")
    for column in ("AutoEncoder", "PCA"):
        names = args.datasets.split(",")
        reference = np.array([published.loc[n, column] for n in names])
        print(f"aekit vs published PyOD {column}: better on {int(np.sum(aekit_means > reference + 0.005))} of "
              f"{len(names)}; mean {np.nanmean(aekit_means):.3f} vs {reference.mean():.3f}")
    print("seconds (all datasets and seeds): " + ", ".join(f"{d} {s:.1f}" for d, s in seconds.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
