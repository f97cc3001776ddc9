"""Sufficient statistics of rows that merge: the state every pass over the data accumulates.

A :class:`RowStatistics` holds how many rows were seen, their mean, their scatter about that mean
and each column's range. Two of them, of two sets of rows, merge into the statistics of both sets
(:meth:`RowStatistics.merge`, Chan, Golub and LeVeque's pairwise update, as scikit-learn's
``_incremental_mean_and_var`` for ``IncrementalPCA`` and ``StandardScaler.partial_fit``). The same
merge joins the blocks of one file, a fit's earlier rows with new ones, and the shares of the rows
that the processes of a distributed fit each read: the code that computes statistics never needs
to know where the rows came from or how many processes there are.

Anything with a ``merge(other)`` method and fields that are arrays, numbers, None or such objects
can be merged over processes by :func:`aekit.training.distributed.merged_over_ranks`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["RowStatistics"]


@dataclass
class RowStatistics:
    """Count, mean, scatter and range of a set of rows; :meth:`merge` gives those of two sets together.

    Parameters
    ----------
    count : int or ndarray
        How many rows; one count per column where values may be missing (NaN values are not counted).
    mean : ndarray or None
        The rows' mean, float64. None where it is not needed (or without rows).
    scatter : ndarray or None
        The sum of squared deviations from ``mean``: one per column (the shape of ``mean``), or the
        sum of their outer products (a matrix, for a covariance). None where it is not needed.
    low, high : ndarray or None
        Each column's smallest and largest value, in the rows' dtype. None where they are not needed.

    Examples
    --------
    >>> X = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])
    >>> merged = RowStatistics.of(X[:1], scatter="columns").merge(RowStatistics.of(X[1:], scatter="columns"))
    >>> merged.count, merged.mean.tolist(), merged.variance.tolist()
    (3, [2.0, 2.0], [2.6666666666666665, 2.0])
    """

    count: int | np.ndarray = 0
    mean: np.ndarray | None = None
    scatter: np.ndarray | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @classmethod
    def of(cls, rows: np.ndarray, *, scatter: str | None = None, extremes: bool = False,
           missing: bool = False) -> RowStatistics:
        """The statistics of ``rows`` (n x D), in float64: ``scatter`` "columns", "matrix" or None;
        ``extremes``: each column's range; ``missing``: NaN values are left out, column by column."""
        if not len(rows):
            return cls()
        if missing:
            observed = ~np.isnan(rows)
            count = observed.sum(axis=0)
            total = np.where(observed, rows, 0.0).sum(axis=0, dtype=np.float64)
            mean = np.divide(total, count, out=np.zeros(len(count)), where=count > 0)
        else:
            count, mean = len(rows), rows.mean(axis=0, dtype=np.float64)
        centred = None if scatter is None else rows.astype(np.float64) - mean
        if missing and centred is not None:
            centred = np.where(observed, centred, 0.0)
        low = high = None
        if extremes:  # a column without a value (missing) has the range (NaN, NaN), which merging passes over
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = (np.nanmin(rows, axis=0), np.nanmax(rows, axis=0)) if missing else (rows.min(axis=0),
                                                                                                rows.max(axis=0))
        return cls(
            count, mean,
            None if scatter is None else (centred.T @ centred if scatter == "matrix" else np.square(centred).sum(0)),
            low, high,
        )

    @property
    def n_rows(self) -> int:
        """How many rows (the largest count of a column where values may be missing)."""
        return int(np.max(self.count)) if np.ndim(self.count) else int(self.count)

    @property
    def variance(self) -> np.ndarray:
        """Each column's variance (the scatter over the count: ``ddof=0``), or the covariance matrix."""
        count = np.asarray(self.count, dtype=np.float64)
        return np.divide(self.scatter, count, out=np.zeros_like(self.scatter), where=count > 0)

    @property
    def all_rows_equal(self) -> bool:
        """True when every row equals the first (no column varies); needs the range."""
        return self.n_rows > 0 and bool(np.array_equal(self.low, self.high))

    def merge(self, other: RowStatistics) -> RowStatistics:
        """The statistics of this set of rows and ``other``'s together (Chan et al.'s pairwise update).

        The mean moves towards ``other``'s by its share of the rows; the scatters add, plus the part
        due to the two means differing: ``n_a n_b / n (mean_b - mean_a)^2`` (its outer product for a matrix).
        """
        if self.n_rows == 0:
            return other
        if other.n_rows == 0:
            return self
        count = self.count + other.count
        share = np.divide(other.count, count, out=np.zeros(np.shape(count)), where=np.asarray(count) > 0)
        mean = scatter = None
        if self.mean is not None and other.mean is not None:
            delta = other.mean - self.mean
            mean = self.mean + delta * share
            if self.scatter is not None and other.scatter is not None:
                spread = np.multiply.outer(delta, delta) if self.scatter.ndim > delta.ndim else np.square(delta)
                scatter = self.scatter + other.scatter + spread * (self.count * share)
        return RowStatistics(
            count, mean, scatter,
            None if self.low is None or other.low is None else np.fmin(self.low, other.low),
            None if self.high is None or other.high is None else np.fmax(self.high, other.high),
        )
