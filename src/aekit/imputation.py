"""A linear fill of missing cells, and the measured blend of it with the autoencoder's.

An autoencoder fills a cell through its bottleneck: on a table whose columns are close to linear in one
another, the few codes cannot carry all that the other cells tell of it, where a full-rank linear
predictor can. :class:`LinearFill` is that predictor in the encoded space of a table
(:class:`aekit.tables.TableEncoder`: scaled numbers, one-hot categories): the rows are taken as
Gaussian, their mean and covariance estimated from the observed cells by EM (Dempster, Laird and Rubin;
started from the pairwise estimate, each covariance with a ridge of ``RIDGE`` times its diagonal), and a
missing cell is filled with its conditional mean given the row's observed cells,
``mean_H - P_HH^-1 P_HO (x_O - mean_O)`` with ``P`` the inverse covariance: what scikit-learn's
``IterativeImputer`` with linear regressions converges to on such data. Rows are grouped by their pattern
of missing cells, one solve per pattern.

:func:`blend_weights` gives each column the weight of the autoencoder's fill against the linear one
that minimises the squared error on cells hidden from both (closed form, kept in [0, 1]); for a
categorical column, the squared error of its one-hot dummies (the Brier score).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_WIDTH", "LinearFill", "blend_weights"]

# Beyond this many encoded slots the covariance (width^2) and each pattern's solve cost more than a linear
# fill is worth beside the autoencoder: the fill is the autoencoder's alone.
MAX_WIDTH = 512
# EM starts from the pairwise estimate shrunk this far towards its diagonal (pairwise estimates need not
# be positive definite); each of its covariances has RIDGE times its diagonal added: it keeps the estimate
# positive definite (a categorical column's dummies sum to 1; columns may be collinear) and damps
# correlations few rows support (its value was measured: docs/tables.md).
SHRINKAGE = 0.2
RIDGE = 0.01
EM_ITERATIONS = 30
PRIOR_COLUMNS = 1.0  # how far a column's blend weight is drawn to the pooled one (see blend_weights)
FIT_ROWS = 10_000  # EM loops over the rows' patterns of missing cells: on more rows, a sample


@dataclass
class LinearFill:
    """The conditional-Gaussian fill of missing slots (see the module): the slots' ``mean`` and the inverse
    of their shrunk covariance (``precision``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = rng.normal(size=500)
    >>> rows = np.column_stack([t, 2 * t + 0.1 * rng.normal(size=500)])
    >>> fill = LinearFill.fit(rows)
    >>> np.round(fill.fill(np.array([[1.0, np.nan], [np.nan, np.nan]])), 1).tolist()
    [[1.0, 2.0], [-0.0, -0.1]]
    """

    mean: np.ndarray
    precision: np.ndarray
    model_weight: np.ndarray | None = None  # per column: the autoencoder's share of a blended fill (blend)

    @classmethod
    def fit(cls, rows: np.ndarray, *, rng: np.random.Generator | None = None) -> LinearFill:
        """The fill learned from ``rows`` (n x width, NaN where missing), by EM (see the module); on more
        than ``FIT_ROWS`` rows, from that many drawn by ``rng`` (default: seeded by 0)."""
        rows = np.asarray(rows, dtype=np.float64)
        if len(rows) > FIT_ROWS:
            rng = np.random.default_rng(0) if rng is None else rng
            rows = rows[np.sort(rng.choice(len(rows), FIT_ROWS, replace=False))]
        missing = np.isnan(rows)
        mean, covariance = _pairwise_estimate(rows, missing)
        groups = _patterns(missing)
        for _ in range(EM_ITERATIONS):
            spread = np.zeros_like(covariance)  # the conditional covariances of the filled slots
            completed = _conditional_means(rows, groups, mean, _inverse(covariance), spread)
            previous, mean = mean, completed.mean(axis=0)
            centred = completed - mean
            covariance = (centred.T @ centred + spread) / len(rows)
            covariance += RIDGE * np.diag(np.diag(covariance))
            if np.abs(mean - previous).max() < 1e-6 * max(1.0, float(np.sqrt(np.diag(covariance)).max())):
                break
        return cls(mean, _inverse(covariance))

    @property
    def width(self) -> int:
        return len(self.mean)

    def fill(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` (n x width) with each missing slot (NaN) its conditional mean given the row's observed
        slots (float64); a row with none observed gets the mean."""
        rows = np.asarray(rows, dtype=np.float64)
        return _conditional_means(rows, _patterns(np.isnan(rows)), self.mean, self.precision)

    def blend(self, model: np.ndarray, rows: np.ndarray, slot_column: np.ndarray) -> np.ndarray:
        """The autoencoder's reconstruction ``model`` of ``rows`` with each missing slot of ``rows`` the
        blend of ``model`` and :meth:`fill`, by its column's ``model_weight`` (``slot_column``: each slot's
        column)."""
        missing = np.isnan(rows)
        if not missing.any():
            return model
        weight = self.model_weight[slot_column]
        return np.where(missing, weight * model + (1.0 - weight) * self.fill(rows), model)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "precision": self.precision.tolist(),
                "model_weight": None if self.model_weight is None else self.model_weight.tolist()}

    @classmethod
    def from_dict(cls, state: dict) -> LinearFill:
        mean = np.asarray(state["mean"], dtype=np.float64)
        precision = np.asarray(state["precision"], dtype=np.float64)
        weight = None if state["model_weight"] is None else np.asarray(state["model_weight"], dtype=np.float64)
        if mean.ndim != 1 or precision.shape != (len(mean), len(mean)) or not (
                np.isfinite(mean).all() and np.isfinite(precision).all()):
            raise ValueError(f"a linear fill needs a mean of n numbers and an n x n precision; got shapes "
                             f"{mean.shape} and {precision.shape}, or values that are not finite")
        if weight is not None and (weight.ndim != 1 or not ((weight >= 0) & (weight <= 1)).all()):
            raise ValueError(f"a linear fill's model_weight must be one number in [0, 1] per column; got {weight}")
        return cls(mean, precision, weight)


def blend_weights(model: np.ndarray, linear: np.ndarray, truth: np.ndarray, slot_column: np.ndarray,
                  n_columns: int) -> np.ndarray:
    """Each column's weight ``w`` of the autoencoder's fill, ``w * model + (1 - w) * linear``: the one that
    minimises the squared error against ``truth`` over the slots of that column (NaN in ``truth``: not
    measured) plus ``prior * (w - pooled)^2``, kept in [0, 1]; 1 (the autoencoder's fill) for a column
    with nothing measured.

    ``pooled`` is the weight that minimises the error of all columns together, and ``prior`` is
    ``PRIOR_COLUMNS`` times a measured column's mean of ``sum (model - linear)^2``: a column's own cells
    move its weight away from the pooled one as much as one average column's would: on a few validation
    rows each column's own minimiser is noisy (docs/tables.md).

    Examples
    --------
    >>> truth = np.array([[1.0], [2.0]])
    >>> blend_weights(np.array([[0.0], [2.0]]), np.array([[2.0], [2.0]]), truth, np.array([0]), 1).tolist()
    [0.5]
    """
    measured = ~np.isnan(truth)
    difference = np.where(measured, model - linear, 0.0)
    residual = np.where(measured, linear - truth, 0.0)
    spread = np.bincount(slot_column, (difference**2).sum(axis=0), minlength=n_columns)
    alignment = np.bincount(slot_column, -(difference * residual).sum(axis=0), minlength=n_columns)
    measured = spread > 1e-12
    if not measured.any():
        return np.ones(n_columns)
    pooled = float(np.clip(alignment.sum() / spread.sum(), 0.0, 1.0))
    prior = PRIOR_COLUMNS * float(spread[measured].mean())
    weights = (alignment + prior * pooled) / (spread + prior)
    return np.where(measured, np.clip(weights, 0.0, 1.0), 1.0)


def _pairwise_estimate(rows: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The slots' observed means, and their covariance from the rows where both slots of a pair are
    observed, shrunk ``SHRINKAGE`` towards its diagonal and made positive definite."""
    observed = ~missing
    counts = observed.sum(axis=0)
    mean = np.divide(np.where(observed, rows, 0.0).sum(axis=0), counts, out=np.zeros(rows.shape[1]), where=counts > 0)
    centred = np.where(observed, rows - mean, 0.0)
    pairs = observed.T.astype(np.float64) @ observed
    covariance = np.divide(centred.T @ centred, pairs, out=np.zeros_like(pairs), where=pairs > 0)
    covariance = (1.0 - SHRINKAGE) * covariance + np.diag(SHRINKAGE * np.diag(covariance))
    values, vectors = np.linalg.eigh(covariance)
    floor = 1e-6 * max(float(values.max(initial=0.0)), 1e-12)
    return mean, (vectors * np.maximum(values, floor)) @ vectors.T


def _inverse(covariance: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix, symmetric."""
    values, vectors = np.linalg.eigh(covariance)
    values = np.maximum(values, 1e-12 * max(float(values.max(initial=0.0)), 1e-12))
    return (vectors / values) @ vectors.T


def _patterns(missing: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The rows grouped by their pattern of missing slots: ``(missing slots, observed slots, rows)`` for each
    pattern with a missing slot."""
    patterns, which = np.unique(missing, axis=0, return_inverse=True)
    which = which.ravel()
    return [(np.flatnonzero(pattern), np.flatnonzero(~pattern), np.flatnonzero(which == index))
            for index, pattern in enumerate(patterns) if pattern.any()]


def _conditional_means(rows: np.ndarray, groups, mean: np.ndarray, precision: np.ndarray,
                       spread: np.ndarray | None = None) -> np.ndarray:
    """``rows`` with each missing slot its conditional mean, ``mean_H - P_HH^-1 P_HO (x_O - mean_O)``, one
    solve per pattern (``groups``, :func:`_patterns`); the conditional covariances ``P_HH^-1``, one per
    row, added to ``spread`` where given (EM's M-step needs them)."""
    completed = rows.copy()
    for hidden, seen, members in groups:
        block = precision[np.ix_(hidden, hidden)]
        gain = np.linalg.solve(block, precision[np.ix_(hidden, seen)])
        completed[np.ix_(members, hidden)] = mean[hidden] - (rows[np.ix_(members, seen)] - mean[seen]) @ gain.T
        if spread is not None:
            spread[np.ix_(hidden, hidden)] += len(members) * np.linalg.inv(block)
    return completed
