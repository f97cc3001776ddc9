"""PCA of rows wider than the covariance's limit (the anchored model's start on wide data): time and memory.

Data: seeded float32 rows, a rank-20 signal plus small noise, ``--rows`` rows at each width of
``--widths`` (default 4,097 and 20,000 features), in memory.

Contenders, each width in turn, timed in this one process, one repeat of each in turn
(``_common.round_robin``):

- aekit principal_components: ``aekit.models.anchored.principal_components(X, max_components=k)``,
  subspace iteration on the covariance (the path a fit takes above 4,096 features);
- PCA randomized: scikit-learn's ``PCA(k, svd_solver="randomized")`` on the same float32 rows, the peer
  a user would reach for at this width.

Memory: the peak resident memory each adds above the rows already in memory (the kernel's peak mark,
reset before each call; Linux). Quality: the largest principal angle between the two ``k``-dimensional
subspaces, and between each and the signal's.

Run: ``python benchmarks/bench_wide_pca.py`` (``--rows 500 --repeats 1`` for a quick look).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from _common import (
    machine_line,
    mib,
    peak_rss_bytes,
    print_table,
    ratio,
    reset_peak_rss,
    round_robin,
    rss_bytes,
    spread,
)
from aekit.models.anchored import principal_components

SIGNAL_RANK = 20


def wide_rows(n_rows: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a rank-``SIGNAL_RANK`` signal (decreasing variances) plus noise, and the signal's basis."""
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(n_features, SIGNAL_RANK)))
    codes = rng.normal(size=(n_rows, SIGNAL_RANK)) * np.linspace(40.0, 10.0, SIGNAL_RANK)
    X = codes @ basis.T + rng.normal(size=(n_rows, n_features)).astype(np.float32)
    return X.astype(np.float32), basis


def measured(fit, name: str, results: dict, peaks: dict):
    """``fit`` as a round-robin contender that keeps its result and its peak memory above the start's."""
    def run() -> None:
        reset_peak_rss()
        before = rss_bytes()
        results[name] = fit()
        peaks[name] = peak_rss_bytes() - before
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--widths", type=int, nargs="+", default=[4097, 20_000])
    parser.add_argument("--components", type=int, default=SIGNAL_RANK)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())
    k = args.components
    table = []
    for width in args.widths:
        X, basis = wide_rows(args.rows, width)
        results, peaks = {}, {}
        contenders = {
            "aekit": lambda X=X: principal_components(torch.from_numpy(X), max_components=k).components.numpy(),
            "sklearn": lambda X=X: PCA(k, svd_solver="randomized", random_state=0).fit(X).components_,
        }
        times = round_robin({name: measured(fit, name, results, peaks) for name, fit in contenders.items()},
                            args.repeats)
        angle = np.degrees(subspace_angles(results["aekit"].T, results["sklearn"].T)).max()
        to_signal = [np.degrees(subspace_angles(results[name].T, basis)).max() for name in ("aekit", "sklearn")]
        table.append((f"{args.rows:,} x {width:,} ({mib(X.nbytes)})", spread(times["aekit"], "s"),
                      spread(times["sklearn"], "s"), ratio(times["aekit"], times["sklearn"]),
                      mib(peaks["aekit"]), mib(peaks["sklearn"]), f"{angle:.2g}",
                      f"{to_signal[0]:.2g} / {to_signal[1]:.2g}"))
    print_table(f"PCA of wide rows, k={k}", table,
                ("rows x features (data)", "aekit", "sklearn randomized", "ratio", "aekit peak above data",
                 "sklearn peak above data", "max angle between (deg)", "max angle to signal (deg) aekit / sklearn"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
