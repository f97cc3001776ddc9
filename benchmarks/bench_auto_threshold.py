"""Threshold rules for ``contamination="auto"`` compared offline, on scores kept by ``bench_anomaly.py``.

``python benchmarks/bench_anomaly.py --seeds 3 --peers IForest,PCA --save-scores DIR`` (and the same with
``--suite adbench --max-rows 5000``) fits aekit once per data set and seed and keeps, per fit, the test
rows' scores and labels, the 1001 quantiles the fit's threshold is read off (``score_quantiles_``) and
IsolationForest's flags with its own ``"auto"``. This script reads that folder and, for each candidate
rule (a function of the quantiles alone, as the library's ``auto_threshold``; the library's is
``separated D>=2.0, cap 0.5, else 0.15``), prints the mean F1 of its
flags on the test rows per suite, beside IsolationForest's ``"auto"`` and the library's current rule
(``aekit.detect.auto_threshold``). The rules only set a threshold: the scores, and so ROC-AUC, are the
same for all.

The candidates all start from the same two-Gaussian mixture on the log quantiles (``random_state=0``):

- ``cap c``: the upper component's posterior crossing when that component holds at most ``c`` of the
  rows, else 5 % (``FALLBACK``) (the rule of 2026-12-07 is ``cap 0.25``);
- ``weight c``: flag the upper component's weight ``w`` (the ``1 - w`` quantile) when ``w <= c``, else 5 %;
- ``separated D, cap c``: the posterior crossing when the two components are separated (Ashman's
  ``D = sqrt(2) |m1 - m2| / sqrt(s1^2 + s2^2)`` at least ``D``; ``D > 2`` is the usual reading of two
  distinct groups) and the upper one holds at most ``c``; else 5 %;
- ``separated D, cap c, else f``: as ``separated`` with ``f`` of the rows flagged where it finds no group;
- ``cap c, or separated D, cap 0.5``: the crossing when either of the two rules above gives it;
- ``tail k``: the larger of the 0.95 quantile and ``median + k * sigma`` of the log scores (sigma the
  robust spread, IQR / 1.349), with the cap rule's crossing when it applies (a tail rule for sets
  without a group).

Run: ``python benchmarks/bench_auto_threshold.py DIR`` (``--suite`` restricts to one suite).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score
from sklearn.mixture import GaussianMixture

from aekit.detect import auto_threshold, log_location_spread

LEVELS = np.linspace(0.0, 1.0, 1001)
FALLBACK = 0.05  # the share flagged where a rule finds no group, unless the rule's name gives another


class Mixture:
    """The two-Gaussian mixture of the log quantiles, and what the rules read off it."""

    def __init__(self, quantiles: np.ndarray):
        self.quantiles = np.asarray(quantiles, dtype=np.float64)
        self.log = np.log(np.maximum(self.quantiles, np.finfo(np.float64).tiny))
        self.fallback = float(np.interp(1.0 - FALLBACK, LEVELS, self.quantiles))
        self.flat = np.ptp(self.log) <= 0
        if self.flat:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.gmm = GaussianMixture(2, random_state=0).fit(self.log[:, None])
        means, sds = self.gmm.means_.ravel(), np.sqrt(self.gmm.covariances_.ravel())
        self.upper = int(np.argmax(means))
        self.weight = float(self.gmm.weights_[self.upper])
        self.ashman = float(np.sqrt(2.0) * abs(means[1] - means[0]) / np.sqrt(sds[0] ** 2 + sds[1] ** 2))
        median = float(np.median(self.log))
        grid = np.linspace(median, self.log.max(), 2001)
        outlying = grid[self.gmm.predict_proba(grid[:, None])[:, self.upper] > 0.5]
        self.crossing = float(np.exp(outlying.min())) if len(outlying) else None

    def quantile(self, share: float) -> float:
        return float(np.interp(1.0 - share, LEVELS, self.quantiles))


def cap(c: float):
    def rule(m: Mixture) -> float:
        if m.flat or m.weight > c or m.crossing is None:
            return m.fallback
        return m.crossing
    return rule


def weight(c: float):
    def rule(m: Mixture) -> float:
        return m.fallback if m.flat or m.weight > c else m.quantile(m.weight)
    return rule


def separated(d: float, c: float, fallback: float = FALLBACK):
    def rule(m: Mixture) -> float:
        if m.flat or m.ashman < d or m.weight > c or m.crossing is None:
            return m.quantile(fallback)
        return m.crossing
    return rule


def either(c: float, d: float, c_separated: float, fallback: float = FALLBACK):
    def rule(m: Mixture) -> float:
        if not m.flat and m.crossing is not None and (m.weight <= c or (m.ashman >= d and m.weight <= c_separated)):
            return m.crossing
        return m.quantile(fallback)
    return rule


def tail(k: float, c: float = 0.25):
    def rule(m: Mixture) -> float:
        grouped = cap(c)(m)
        if grouped != m.fallback:
            return grouped
        median, spread = log_location_spread(m.quantiles)
        return max(m.fallback, float(np.exp(median + k * spread)))
    return rule


CANDIDATES = {
    "library (aekit.detect.auto_threshold)": None,
    **{f"cap {c}": cap(c) for c in (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 1.0)},
    **{f"weight {c}": weight(c) for c in (0.25, 0.35, 0.5)},
    **{f"separated D>={d}, cap {c}": separated(d, c) for d in (1.5, 2.0, 2.5, 3.0) for c in (0.25, 0.35, 0.5)},
    **{f"separated D>={d}, cap 0.5, else {f}": separated(d, 0.5, f) for d in (1.5, 2.0, 2.5) for f in (0.1, 0.15, 0.2)},
    **{f"cap 0.25, else {f}": separated(0.0, 0.25, f) for f in (0.1, 0.15, 0.2)},
    **{f"cap {c}, or separated D>={d} cap 0.5": either(c, d, 0.5) for c in (0.25,) for d in (1.5, 2.0, 2.5)},
    **{f"cap 0.25, or separated D>={d} cap 0.5, else {f}": either(0.25, d, 0.5, f) for d in (2.0, 2.5)
       for f in (0.1, 0.15)},
    **{f"tail k={k}": tail(k) for k in (1.5, 2.0, 2.5)},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=None,
                        help="the --save-scores folder of bench_anomaly.py")
    parser.add_argument("--suite", choices=("odds", "adbench"), default=None)
    parser.add_argument("--per-set", default="", help="print per-set F1 of these candidates, separated by semicolons")
    args = parser.parse_args()
    paths = [] if args.folder is None else sorted(args.folder.glob("*.npz"))
    if not paths:
        print(f"skipped: no saved scores{'' if args.folder is None else ' in ' + str(args.folder)} (give the folder of "
              "bench_anomaly.py --save-scores DIR)")
        return 0
    suites = [args.suite] if args.suite else ["odds", "adbench"]
    per_set = [name for name in args.per_set.split(";") if name]
    for suite in suites:
        fits = [p for p in paths if p.name.startswith(f"{suite}-")]
        if not fits:
            continue
        f1 = {name: [] for name in (*CANDIDATES, "IsolationForest auto")}
        shares = {name: [] for name in CANDIDATES}
        sets, iforest_shares = {}, []
        for path in fits:
            with np.load(path) as saved:
                scores, labels, quantiles = saved["test_scores"], saved["test_labels"], saved["score_quantiles"]
                f1["IsolationForest auto"].append(f1_score(labels, saved["iforest_auto"], zero_division=0.0))
                iforest_shares.append(float(np.mean(saved["iforest_auto"])))
            mixture = Mixture(quantiles)
            set_name = path.stem[len(suite) + 1:].rsplit("-", 1)[0]
            sets.setdefault(set_name, []).append((len(f1["IsolationForest auto"]) - 1, labels.mean()))
            for name, rule in CANDIDATES.items():
                threshold = auto_threshold(quantiles) if rule is None else rule(mixture)
                f1[name].append(f1_score(labels, scores > threshold, zero_division=0.0))
                shares[name].append(float(np.mean(scores > threshold)))
        print(f"suite {suite}: {len(sets)} sets, {len(fits)} fits; mean F1 of the flags on the test rows "
              "(mean share flagged)")
        for name, values in f1.items():
            share = f" ({np.mean(shares[name] if name in shares else iforest_shares):.3f})"
            print(f"  {name:40s} {np.mean(values):.3f}{share}")
        for name in per_set:
            print(f"  per set, {name} / IsolationForest auto (outlier share):")
            for set_name, fits_of_set in sets.items():
                index = [i for i, _ in fits_of_set]
                print(f"    {set_name:24s} {np.mean([f1[name][i] for i in index]):.3f} / "
                      f"{np.mean([f1['IsolationForest auto'][i] for i in index]):.3f} ({fits_of_set[0][1]:.3f})")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
