"""Outlier thresholds on small real tables: the share of the training rows flagged at contamination 0.05.

Tables that ship inside packages (``pip install aekit[bench]``: statsmodels, palmerpenguins; scikit-learn's
own loaders), nothing downloaded: every statsmodels table of 16 to 1,000 rows (its numeric columns, rows
with a missing cell dropped), scikit-learn's iris, wine, diabetes, breast cancer and linnerud, the
penguins as they come (text columns and gaps: the table model), and two series: the Nile's 100 yearly
flows and the 309 yearly sunspot numbers, each as a :class:`aekit.SeriesAutoencoder` (share of steps)
and as a table of its sliding windows of 10 steps (share of windows).

For each, ``Autoencoder(random_state=seed)`` (contamination 0.05, validation_fraction 0.1) is fitted on
all the rows and ``predict`` flags the same rows; printed: the rows, the held-out rows, which scores the
threshold was read off (``history_["threshold"]``), the share flagged, and the share the threshold read
off the held-out rows alone would flag (the rule before: the 0.95 quantile of the held-out scores of the
same model). Target: the share flagged within [0.03, 0.08] on every table and seed.

Run: ``python benchmarks/bench_thresholds.py [--seeds 3] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the `aekit` command sets it, before torch loads OpenMP

import numpy as np
import pandas as pd
import torch

import aekit
from _common import machine_line, print_table
from aekit.timeseries import SlidingWindows
from aekit.training.sources import ValidationSplit

TARGET = (0.03, 0.08)
MIN_ROWS, MAX_ROWS = 16, 1000  # under 13 rows no share in [0.03, 0.08] exists (one row is 1/n)
WINDOW = 10


def statsmodels_tables() -> dict:
    import statsmodels.datasets as sm

    names = ["anes96", "cancer", "ccard", "committee", "copper", "cpunish", "danish_data", "elnino", "engel",
             "grunfeld", "heart", "interest_inflation", "longley", "macrodata", "modechoice", "scotland",
             "spector", "stackloss", "star98", "statecrime", "strikes"]
    tables = {}
    for name in names:
        frame = getattr(sm, name).load_pandas().data.select_dtypes("number").dropna()
        if name == "elnino":
            frame = frame.drop(columns="YEAR")  # 61 years x 12 monthly temperatures
        if MIN_ROWS <= len(frame) <= MAX_ROWS:
            tables[name] = frame.to_numpy(dtype=np.float64)
    return tables


def sklearn_tables() -> dict:
    from sklearn import datasets

    return {name: getattr(datasets, f"load_{name}")().data.astype(np.float64)
            for name in ("iris", "wine", "diabetes", "breast_cancer", "linnerud")}


def series() -> dict:
    import statsmodels.datasets as sm

    return {"nile": sm.nile.load_pandas().data["volume"].to_numpy(dtype=np.float64),
            "sunspots": sm.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(dtype=np.float64)}


def table_row(name: str, X, seed: int) -> tuple:
    model = aekit.Autoencoder(random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged, latent_dim >= n_features on 2-column tables
        model.fit(X)
    scores = model.outlier_scores(X)
    _, held_out = ValidationSplit(len(X), model.validation_fraction, model.seed_).rows()
    held_out_threshold = np.quantile(scores[held_out][~np.isnan(scores[held_out])], 1.0 - model.contamination)
    before = float(np.mean(scores > held_out_threshold))  # NaN (a row of missing cells only) is not flagged
    return (name, len(X), len(held_out), model.history_["threshold"]["scores"], float(np.mean(model.predict(X) == -1)),
            before)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_line())
    try:
        from palmerpenguins import load_penguins
    except ImportError:
        print("penguins: skipped (palmerpenguins is not installed; pip install aekit[bench])")
        load_penguins = None
    tables = {**statsmodels_tables(), **sklearn_tables()}
    results = []
    for seed in range(args.seeds):
        for name, X in tables.items():
            results.append(table_row(name, X, seed))
        if load_penguins is not None:
            results.append(table_row("penguins", load_penguins(), seed))
        for name, values in series().items():
            results.append(table_row(f"{name} windows", SlidingWindows(WINDOW).fit_transform(values[:, None]), seed))
            model = aekit.SeriesAutoencoder(random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                flagged = float(np.mean(model.fit_predict(values) == -1))
            results.append((f"{name} steps (window {model.window_})", len(values), None, "all steps", flagged, None))
    frame = pd.DataFrame(results, columns=["table", "rows", "held_out", "scores", "flagged", "before"])
    rows = []
    for (name, n_rows, held_out, scores), group in frame.groupby(["table", "rows", "held_out", "scores"],
                                                                  dropna=False, sort=False):
        flagged, before = group["flagged"], group["before"]
        rows.append((name, str(n_rows), "" if pd.isna(held_out) else str(int(held_out)), scores,
                     f"{flagged.min():.3f}" + ("" if len(group) == 1 else f" - {flagged.max():.3f}"),
                     "" if before.isna().all() else f"{before.min():.3f}" + ("" if len(group) == 1
                                                                              else f" - {before.max():.3f}")))
    print_table(f"Share of the rows flagged at contamination 0.05 (seeds 0..{args.seeds - 1}; min - max)", rows,
                ("table", "rows", "held out", "threshold read off", "flagged", "held-out rows' threshold"))
    inside = frame["flagged"].between(*TARGET)
    before = frame["before"].dropna()
    print(f"\nflagged within [{TARGET[0]}, {TARGET[1]}]: {int(inside.sum())} of {len(frame)} fits "
          f"(shares {frame['flagged'].min():.3f} to {frame['flagged'].max():.3f}); the held-out rows' threshold: "
          f"{int(before.between(*TARGET).sum())} of {len(before)} ({before.min():.3f} to {before.max():.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
