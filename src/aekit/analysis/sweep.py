"""The latent-dimension sweep: held-out error of an autoencoder and of PCA for several ``d``, and a suggested ``d``."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from numbers import Integral, Real

import pandas as pd
from sklearn.base import clone

from aekit.analysis.checks import check_template, split_rows
from aekit.analysis.defaults import default_autoencoder
from aekit.analysis.errors import errors_against_pca
from aekit.estimator import Autoencoder
from aekit.exceptions import parameter_error


@dataclass
class LatentSweep:
    """What :func:`sweep_latent_dims` found. ``print(result)`` shows it as a table.

    Attributes
    ----------
    dims : list of int
    autoencoder_train, autoencoder_heldout, pca_train, pca_heldout : list of float
        Mean squared error per value, in the autoencoder's scaled space, for each ``d``.
    suggested_dim : int
        The smallest ``d`` whose held-out autoencoder error is within ``tolerance`` (relative) of
        the best held-out error of the sweep.
    tolerance : float
    scaler : str or None
    seconds : list of float
        Fitting time of the autoencoder at each ``d``.
    """

    dims: list[int]
    autoencoder_train: list[float]
    autoencoder_heldout: list[float]
    pca_train: list[float]
    pca_heldout: list[float]
    suggested_dim: int
    tolerance: float
    scaler: str | None
    n_train: int
    n_heldout: int
    seconds: list[float]

    @property
    def gap(self) -> list[float]:
        """Held-out minus training error of the autoencoder, per ``d``: overfitting makes it grow."""
        pairs = zip(self.autoencoder_train, self.autoencoder_heldout, strict=True)
        return [heldout - train for train, heldout in pairs]

    @property
    def rule(self) -> str:
        return (f"smallest d whose held-out autoencoder error is within {self.tolerance:.0%} "
                f"of the best held-out error ({min(self.autoencoder_heldout):.5g})")

    def to_frame(self) -> pd.DataFrame:
        """One row per ``d``."""
        return pd.DataFrame(
            {
                "autoencoder_train_mse": self.autoencoder_train,
                "autoencoder_heldout_mse": self.autoencoder_heldout,
                "gap": self.gap,
                "pca_train_mse": self.pca_train,
                "pca_heldout_mse": self.pca_heldout,
                "seconds": self.seconds,
            },
            index=pd.Index(self.dims, name="latent_dim"),
        )

    def to_dict(self) -> dict:
        """JSON-ready: plain floats and lists."""
        return {
            "dims": list(self.dims),
            "autoencoder_train_mse": list(self.autoencoder_train),
            "autoencoder_heldout_mse": list(self.autoencoder_heldout),
            "gap": self.gap,
            "pca_train_mse": list(self.pca_train),
            "pca_heldout_mse": list(self.pca_heldout),
            "suggested_dim": self.suggested_dim,
            "rule": self.rule,
            "tolerance": self.tolerance,
            "scaler": self.scaler,
            "n_train": self.n_train,
            "n_heldout": self.n_heldout,
            "seconds": list(self.seconds),
        }

    def table(self) -> str:
        lines = [
            f"{self.n_train} training rows, {self.n_heldout} held out; MSE per value after scaler={self.scaler!r}",
            f"{'d':>5}{'AE train':>12}{'AE held-out':>13}{'gap':>11}{'PCA held-out':>14}{'AE/PCA':>8}{'seconds':>9}",
        ]
        for index, d in enumerate(self.dims):
            pca = self.pca_heldout[index]
            ratio = self.autoencoder_heldout[index] / pca if pca > 0 else math.nan
            mark = "  <- suggested" if d == self.suggested_dim else ""
            lines.append(
                f"{d:>5}{self.autoencoder_train[index]:>12.5g}{self.autoencoder_heldout[index]:>13.5g}"
                f"{self.gap[index]:>11.3g}{pca:>14.5g}{ratio:>8.3f}{self.seconds[index]:>9.1f}{mark}"
            )
        lines.append(f"suggested d = {self.suggested_dim}: {self.rule}")
        return "\n".join(lines)

    __str__ = table


def suggest_dim(dims, heldout_errors, tolerance: float) -> int:
    """The smallest ``d`` whose held-out error is at most ``(1 + tolerance)`` times the best one.

    Examples
    --------
    >>> suggest_dim([2, 4, 8, 16], [0.50, 0.21, 0.20, 0.22], tolerance=0.1)
    4
    """
    best = min(heldout_errors)
    return int(min(d for d, error in zip(dims, heldout_errors, strict=True) if error <= best * (1 + tolerance)))


SWEEP_DIMS = (1, 2, 4, 8, 16, 32)


def default_dims(limit: int) -> list[int]:
    """The dims :func:`sweep_latent_dims` tries by default: powers of two up to 32 that fit the data
    (below ``limit``, the number of features and of training rows), or ``[1]``.

    Examples
    --------
    >>> default_dims(64), default_dims(13), default_dims(2)
    ([2, 4, 8, 16, 32], [2, 4, 8], [1])
    """
    fitting = [d for d in SWEEP_DIMS[1:] if d < limit]
    return fitting or [1]


def sweep_latent_dims(
    X,
    dims=None,
    *,
    estimator: Autoencoder | None = None,
    X_val=None,
    heldout_fraction: float = 0.2,
    tolerance: float = 0.1,
    random_state: int | None = 0,
    verbose: int = 0,
) -> LatentSweep:
    """Held-out reconstruction error of an autoencoder and of PCA for each latent dimension ``d``.

    For each ``d``, ``clone(estimator).set_params(latent_dim=d)`` is fitted on the training rows
    and PCA with ``d`` components on the same rows in the autoencoder's scaled space; both are
    scored on the training and held-out rows. A growing gap between the two errors as ``d`` grows
    is overfitting. The suggested ``d`` is the smallest whose held-out error is within
    ``tolerance`` (relative) of the best of the sweep: more dimensions buy less than that.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    dims : sequence of int, optional
        Latent dimensions to try, each at most the number of features and of training rows.
        Default: :func:`default_dims`, the powers of two 2 to 32 below that limit.
    estimator : Autoencoder, optional
        The model to sweep (cloned at each ``d``). Default: :func:`default_autoencoder`.
    X_val : array-like, optional
        Held-out rows. Default: ``heldout_fraction`` of ``X``, drawn with ``random_state``.
    heldout_fraction : float in (0, 1), default=0.2
    tolerance : float >= 0, default=0.1
        How much worse than the best held-out error (relative) the suggested ``d`` may be.
    random_state : int or None, default=0
        Seeds the split (the estimator keeps its own ``random_state``).
    verbose : int, default=0
        1 prints each ``d`` as it is done.

    Returns
    -------
    LatentSweep

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 6)) @ np.random.default_rng(1).normal(size=(6, 10))
    >>> small = Autoencoder(hidden_dims=(16,), epochs=5, random_state=0)
    >>> sweep = sweep_latent_dims(X, [1, 3, 6], estimator=small)
    >>> sweep.dims, len(sweep.autoencoder_heldout)
    ([1, 3, 6], 3)
    """
    function = "sweep_latent_dims"
    X_train, X_heldout = split_rows(X, X_val, heldout_fraction, random_state, function)
    limit = min(X_train.shape[1], len(X_train))
    dims = check_dims(default_dims(limit) if dims is None else dims, limit, function)
    if isinstance(tolerance, bool) or not isinstance(tolerance, Real) or not tolerance >= 0:
        raise parameter_error("tolerance", tolerance, "a float in the range [0, inf)", of=function)
    template = default_autoencoder() if estimator is None else check_template(estimator, "estimator", function)
    rows = []  # per d: autoencoder train, held-out, PCA train, held-out, seconds
    for d in dims:
        model = clone(template).set_params(latent_dim=d)
        started = time.perf_counter()
        model.fit(X_train)
        seconds = time.perf_counter() - started
        found = errors_against_pca(model, X_train, X_heldout, n_components=d)
        rows.append((*found.autoencoder, *found.pca, seconds))
        if verbose:
            print(f"d={d}: autoencoder held-out {rows[-1][1]:.5g}, PCA held-out {rows[-1][3]:.5g}", flush=True)
    ae_train, ae_heldout, pca_train, pca_heldout, seconds = (list(column) for column in zip(*rows, strict=True))
    return LatentSweep(
        dims=dims,
        autoencoder_train=ae_train,
        autoencoder_heldout=ae_heldout,
        pca_train=pca_train,
        pca_heldout=pca_heldout,
        suggested_dim=suggest_dim(dims, ae_heldout, tolerance),
        tolerance=float(tolerance),
        scaler=template.scaler,
        n_train=len(X_train),
        n_heldout=len(X_heldout),
        seconds=seconds,
    )


def check_dims(dims, limit: int, function: str) -> list[int]:
    """``dims`` sorted, if it is a non-empty list of distinct ints in ``[1, limit]``."""
    try:
        values = list(dims)
    except TypeError:
        values = None
    bad = values is None or not values or any(
        isinstance(d, bool) or not isinstance(d, Integral) or not 1 <= d <= limit for d in values
    )
    if bad or len(set(values)) != len(values):
        raise parameter_error("dims", dims, f"a non-empty list of distinct ints in the range [1, {limit}] (at most the "
                              "number of features and of training rows)", of=function)
    return sorted(int(d) for d in values)
