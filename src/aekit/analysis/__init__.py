"""PCA as the reference: principal angles, a side-by-side comparison, and a latent-dimension sweep.

A linear autoencoder trained with MSE on centred data spans the subspace of PCA's first ``d``
components, with weights that need not be orthogonal (any invertible ``d x d`` mix of the
components reconstructs as well). The check of that equivalence is therefore the *subspace*:
:func:`principal_angles` between the decoder's columns and PCA's components, all near 0 degrees
when the two span the same space. :func:`compare_with_pca` fits PCA, a linear and a non-linear
autoencoder at the same ``d`` and reports their reconstruction errors side by side;
:func:`sweep_latent_dims` does it for several ``d`` and suggests one.

Every error here is the mean squared error per value in one space: the data after the scaler
(and, in :func:`compare_with_pca`, centred), so PCA's and the autoencoders' figures compare
directly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy.linalg import subspace_angles
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_array

from aekit.estimator import Autoencoder
from aekit.exceptions import InvalidInputError, InvalidParameterValue
from aekit.preprocess import make_scaler

__all__ = [
    "LatentSweep",
    "PCAComparison",
    "compare_with_pca",
    "default_autoencoder",
    "default_linear_autoencoder",
    "principal_angles",
    "sweep_latent_dims",
]

# The linear autoencoder's training budget: about this many Adam steps, whatever the number of rows;
# full-batch up to LINEAR_FULL_BATCH rows (exact gradients reach PCA's subspace to a fraction of a
# degree), batches of LINEAR_BATCH above (many cheap steps; the cosine schedule damps their noise).
LINEAR_STEPS = 2000
LINEAR_FULL_BATCH = 2048
LINEAR_BATCH = 512


# ---------------------------------------------------------------- principal angles
def principal_angles(A, B) -> np.ndarray:
    """Principal angles, in degrees, between the column spaces of ``A`` and ``B``.

    The angles are invariant to any invertible change of basis within each space: scaling,
    rotating or mixing the columns of ``A`` changes nothing. All angles are 0 when the two spaces
    are the same; 90 degrees means a direction of one is orthogonal to all of the other.

    Parameters
    ----------
    A : array-like of shape (n_features, k)
    B : array-like of shape (n_features, m)

    Returns
    -------
    ndarray of shape (min(rank A, rank B),)
        The angles in degrees, largest first (as :func:`scipy.linalg.subspace_angles`, which
        computes them).

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])      # the x-y plane
    >>> B = np.array([[2.0, 1.0], [1.0, -3.0], [0.0, 0.0]])     # the same plane, another basis
    >>> np.round(principal_angles(A, B), 6)
    array([0., 0.])
    >>> np.round(principal_angles(A, [[1.0], [0.0], [1.0]]), 6)  # a line 45 degrees out of the plane
    array([45.])
    """
    A, B = _as_matrix(A, "A"), _as_matrix(B, "B")
    if A.shape[0] != B.shape[0]:
        raise InvalidInputError(
            f"A and B must have the same number of rows (the dimension of the space both live in); got "
            f"{A.shape[0]} and {B.shape[0]}. Pass the two bases as columns: shape (n_features, k)."
        )
    return np.degrees(subspace_angles(A, B))


def _orthonormality_gap(W: np.ndarray) -> float:
    """``||W^T W - I||_F``: 0 for orthonormal columns; any other value is still a valid basis."""
    return float(np.linalg.norm(W.T @ W - np.eye(W.shape[1])))


# ---------------------------------------------------------------- checks
def _as_matrix(X, name: str, *, min_rows: int = 1) -> np.ndarray:
    try:
        return check_array(X, dtype=[np.float64, np.float32], ensure_min_samples=min_rows, input_name=name)
    except ValueError as error:
        raise InvalidInputError(
            f"{name} cannot be used: {' '.join(str(error).split())} Pass a 2-D array of finite numbers."
        ) from None


def _check_int(value, name: str, function: str, low: int, high: float = math.inf, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= high:
        upper = "inf)" if high == math.inf else f"{int(high)}]"
        raise InvalidParameterValue(
            f"The '{name}' parameter of {function} must be an int in the range [{low}, {upper}{why}. "
            f"Got {value!r} instead."
        )
    return int(value)


def _check_fraction(value, name: str, function: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < 1:
        raise InvalidParameterValue(
            f"The '{name}' parameter of {function} must be a float in the range (0, 1). Got {value!r} instead."
        )
    return float(value)


def _check_template(template, name: str, function: str) -> Autoencoder:
    if not isinstance(template, Autoencoder):
        raise InvalidParameterValue(
            f"The '{name}' parameter of {function} must be an unfitted aekit.Autoencoder (it is cloned), or None "
            f"for the default. Got {type(template).__name__} instead."
        )
    return template


def _split(X, X_val, heldout_fraction: float, random_state, function: str) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out rows: ``X`` and ``X_val`` when given, else a seeded split of ``X``."""
    X = _as_matrix(X, "X", min_rows=2)
    if X_val is not None:
        X_val = _as_matrix(X_val, "X_val")
        if X_val.shape[1] != X.shape[1]:
            raise InvalidInputError(
                f"X_val has {X_val.shape[1]} columns but X has {X.shape[1]}; both must hold the same features."
            )
        return X, X_val
    heldout_fraction = _check_fraction(heldout_fraction, "heldout_fraction", function)
    X_train, X_heldout = train_test_split(X, test_size=heldout_fraction, random_state=random_state)
    if len(X_train) < 2:
        raise InvalidInputError(
            f"X has {len(X)} rows: too few to hold out {heldout_fraction:.0%} and train on the rest. "
            "Pass more rows, or the held-out rows as X_val."
        )
    return X_train, X_heldout


def _mse(reconstruction: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean((np.asarray(reconstruction, np.float64) - target) ** 2))


def _pca_errors(pca: PCA, *datasets: np.ndarray) -> list[float]:
    return [_mse(pca.inverse_transform(pca.transform(data)), data) for data in datasets]


def _autoencoder_errors(autoencoder: Autoencoder, *datasets: np.ndarray) -> list[float]:
    return [float(np.mean(autoencoder.reconstruction_error(data), dtype=np.float64)) for data in datasets]


# ---------------------------------------------------------------- default models
def default_autoencoder(random_state=0) -> Autoencoder:
    """The non-linear autoencoder :func:`compare_with_pca` and :func:`sweep_latent_dims` use by default.

    Two ReLU hidden layers (128, 64), MSE, Adam with a cosine learning-rate schedule, early stopping
    on 10% of the training rows.

    Examples
    --------
    >>> default_autoencoder().get_params()["hidden_dims"]
    (128, 64)
    """
    return Autoencoder(
        hidden_dims=(128, 64), activation="relu", loss="mse", epochs=200, batch_size=128, lr=3e-3,
        lr_schedule="cosine", patience=20, random_state=random_state,
    )


def default_linear_autoencoder(n_rows: int, random_state=0) -> Autoencoder:
    """A linear autoencoder trained to PCA's optimum: about ``LINEAR_STEPS`` Adam steps.

    Full-batch on up to ``LINEAR_FULL_BATCH`` rows, else batches of ``LINEAR_BATCH``; learning rate
    0.03 annealed to 0 (cosine); no validation split and no early stopping, so it trains on exactly
    the rows PCA is fitted on.

    Examples
    --------
    >>> model = default_linear_autoencoder(1000)
    >>> model.get_params()["batch_size"], model.get_params()["epochs"]
    (1000, 2000)
    >>> default_linear_autoencoder(60000).get_params()["batch_size"]
    512
    """
    n_rows = max(1, int(n_rows))
    batch_size = n_rows if n_rows <= LINEAR_FULL_BATCH else LINEAR_BATCH
    steps_per_epoch = math.ceil(n_rows / batch_size)
    return Autoencoder(
        architecture="linear", loss="mse", scaler=None, batch_size=batch_size, lr=0.03, lr_schedule="cosine",
        epochs=max(1, math.ceil(LINEAR_STEPS / steps_per_epoch)), validation_fraction=0.0,
        early_stopping=False, random_state=random_state,
    )


# ---------------------------------------------------------------- compare_with_pca
@dataclass
class PCAComparison:
    """What :func:`compare_with_pca` found. ``print(result)`` shows it as a table.

    Attributes
    ----------
    latent_dim : int
    n_train, n_heldout, n_features : int
    scaler : str or None
        The scaler applied (then the data were centred) before any model saw them.
    errors : dict
        ``{model: {"train": mse, "heldout": mse}}`` for "PCA", "linear autoencoder" and (when fitted)
        "autoencoder": mean squared error per value, in the scaled and centred space.
    principal_angles : ndarray
        Degrees, largest first, between the linear autoencoder's decoder columns and PCA's first
        ``latent_dim`` components.
    orthonormality_gap : float
        ``||W^T W - I||_F`` of the linear decoder's weights ``W`` (n_features x latent_dim): how far
        they are from orthonormal. Not expected to be 0: the subspace, not the basis, is what MSE fixes.
    explained_variance_ratio : ndarray
        PCA's, per component (on the training rows).
    seconds : dict
        Fitting time of each model.
    """

    latent_dim: int
    n_train: int
    n_heldout: int
    n_features: int
    scaler: str | None
    errors: dict[str, dict[str, float]]
    principal_angles: np.ndarray
    orthonormality_gap: float
    explained_variance_ratio: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def max_angle(self) -> float:
        """The largest principal angle, in degrees (0 = the same subspace as PCA)."""
        return float(self.principal_angles.max()) if self.principal_angles.size else 0.0

    def to_frame(self) -> pd.DataFrame:
        """One row per model: train and held-out MSE, their ratio to PCA's, fitting seconds."""
        pca = self.errors["PCA"]
        rows = {
            model: {
                "train_mse": values["train"],
                "heldout_mse": values["heldout"],
                "heldout_vs_pca": values["heldout"] / pca["heldout"] if pca["heldout"] > 0 else math.nan,
                "seconds": self.seconds.get(model, math.nan),
            }
            for model, values in self.errors.items()
        }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")

    def to_dict(self) -> dict:
        """JSON-ready: plain floats and lists."""
        return {
            "latent_dim": self.latent_dim,
            "n_train": self.n_train,
            "n_heldout": self.n_heldout,
            "n_features": self.n_features,
            "scaler": self.scaler,
            "errors": {model: dict(values) for model, values in self.errors.items()},
            "principal_angles_deg": self.principal_angles.tolist(),
            "max_principal_angle_deg": self.max_angle,
            "orthonormality_gap": self.orthonormality_gap,
            "explained_variance_ratio": self.explained_variance_ratio.tolist(),
            "explained_variance": float(self.explained_variance_ratio.sum()),
            "seconds": dict(self.seconds),
        }

    def table(self) -> str:
        frame = self.to_frame()
        lines = [
            f"latent_dim={self.latent_dim}: {self.n_train} training rows, {self.n_heldout} held out, "
            f"{self.n_features} features, scaler={self.scaler!r} then centred",
            f"{'model':<20}{'train MSE':>12}{'held-out MSE':>14}{'vs PCA':>9}{'seconds':>9}",
        ]
        for model, row in frame.iterrows():
            lines.append(
                f"{model:<20}{row.train_mse:>12.5g}{row.heldout_mse:>14.5g}{row.heldout_vs_pca:>9.4f}"
                f"{row.seconds:>9.1f}"
            )
        angles = ", ".join(f"{angle:.3g}" for angle in self.principal_angles)
        lines += [
            f"PCA explained variance: {self.explained_variance_ratio.sum():.4f} "
            f"(per component: {', '.join(f'{v:.3f}' for v in self.explained_variance_ratio)})",
            f"principal angles, linear decoder vs PCA (degrees): {angles}",
            f"largest angle {self.max_angle:.3g} deg; decoder weights ||W^T W - I||_F = "
            f"{self.orthonormality_gap:.3g} (need not be 0)",
        ]
        return "\n".join(lines)

    __str__ = table


def compare_with_pca(
    X,
    latent_dim: int,
    *,
    X_val=None,
    scaler: str | None = "standard",
    heldout_fraction: float = 0.2,
    nonlinear: bool = True,
    autoencoder: Autoencoder | None = None,
    linear_autoencoder: Autoencoder | None = None,
    random_state: int | None = 0,
) -> PCAComparison:
    """Fit PCA, a linear and a non-linear autoencoder at the same ``latent_dim`` and compare them.

    The data are scaled with ``scaler`` and centred (both fitted on the training rows) once; every
    model is fitted on that same matrix, so their errors are in one unit: mean squared error per
    value in the scaled, centred space. Centring is what lets the linear autoencoder reach PCA's
    optimum quickly (its biases then start where they end).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    latent_dim : int
        ``d``: PCA's number of components and the autoencoders' bottleneck.
    X_val : array-like of shape (n_heldout, n_features), optional
        Held-out rows. Default: ``heldout_fraction`` of ``X``, drawn with ``random_state``.
    scaler : {"standard", "minmax"} or None, default="standard"
    heldout_fraction : float in (0, 1), default=0.2
        Used only when ``X_val`` is None.
    nonlinear : bool, default=True
        Also fit the non-linear autoencoder (False: PCA and the linear one only).
    autoencoder : Autoencoder, optional
        Template of the non-linear model (cloned; ``latent_dim``, ``scaler=None`` and ``loss="mse"``
        are set on the clone). Default: :func:`default_autoencoder`.
    linear_autoencoder : Autoencoder, optional
        Template of the linear model (cloned; ``architecture="linear"`` and the same three set).
        Default: :func:`default_linear_autoencoder`, which reaches PCA's subspace to well under a
        degree on data such as scikit-learn's digits.
    random_state : int or None, default=0
        Seeds the split and every model.

    Returns
    -------
    PCAComparison

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X = load_digits().data
    >>> result = compare_with_pca(X, 5, nonlinear=False)
    >>> bool(result.max_angle < 1.0)
    True
    >>> ratio = result.errors["linear autoencoder"]["train"] / result.errors["PCA"]["train"]
    >>> bool(abs(ratio - 1) < 0.01)
    True
    """
    function = "compare_with_pca"
    X_train, X_heldout = _split(X, X_val, heldout_fraction, random_state, function)
    n_features = X_train.shape[1]
    latent_dim = _check_int(
        latent_dim, "latent_dim", function, 1, min(n_features, len(X_train)),
        " (at most the number of features and of training rows)",
    )
    prescaler = make_scaler(scaler)
    train = X_train if prescaler is None else prescaler.fit_transform(X_train)
    heldout = X_heldout if prescaler is None else prescaler.transform(X_heldout)
    centre = train.mean(axis=0)
    train = np.ascontiguousarray(train - centre, dtype=np.float32)
    heldout = np.ascontiguousarray(heldout - centre, dtype=np.float32)

    errors: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    pca = PCA(n_components=latent_dim, random_state=random_state).fit(train)
    seconds["PCA"] = time.perf_counter() - started
    errors["PCA"] = dict(zip(("train", "heldout"), _pca_errors(pca, train, heldout), strict=True))

    models = {"linear autoencoder": _prepare(
        linear_autoencoder, default_linear_autoencoder(len(train), random_state), "linear_autoencoder",
        function, latent_dim, architecture="linear",
    )}
    if nonlinear:
        models["autoencoder"] = _prepare(
            autoencoder, default_autoencoder(random_state), "autoencoder", function, latent_dim
        )
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(train)
        seconds[name] = time.perf_counter() - started
        errors[name] = dict(zip(("train", "heldout"), _autoencoder_errors(model, train, heldout), strict=True))

    decoder = models["linear autoencoder"].module_.decoder[0].weight.detach().cpu().double().numpy()
    return PCAComparison(
        latent_dim=latent_dim,
        n_train=len(train),
        n_heldout=len(heldout),
        n_features=n_features,
        scaler=scaler,
        errors=errors,
        principal_angles=principal_angles(decoder, pca.components_.T),
        orthonormality_gap=_orthonormality_gap(decoder),
        explained_variance_ratio=np.asarray(pca.explained_variance_ratio_, dtype=np.float64),
        seconds=seconds,
    )


def _prepare(template, default: Autoencoder, name: str, function: str, latent_dim: int, **fixed) -> Autoencoder:
    """A clone of the user's template (or the default) at ``latent_dim``, on pre-scaled data, with MSE."""
    model = default if template is None else clone(_check_template(template, name, function))
    return model.set_params(latent_dim=latent_dim, scaler=None, loss="mse", **fixed)


# ---------------------------------------------------------------- sweep_latent_dims
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
    X_train, X_heldout = _split(X, X_val, heldout_fraction, random_state, function)
    limit = min(X_train.shape[1], len(X_train))
    dims = _check_dims(default_dims(limit) if dims is None else dims, limit, function)
    if isinstance(tolerance, bool) or not isinstance(tolerance, Real) or not tolerance >= 0:
        raise InvalidParameterValue(
            f"The 'tolerance' parameter of {function} must be a float in the range [0, inf). Got {tolerance!r} instead."
        )
    template = default_autoencoder() if estimator is None else _check_template(estimator, "estimator", function)
    rows = []  # per d: autoencoder train, held-out, PCA train, held-out, seconds
    for d in dims:
        model = clone(template).set_params(latent_dim=d)
        started = time.perf_counter()
        model.fit(X_train)
        seconds = time.perf_counter() - started
        # PCA in the autoencoder's own scaled space, so both errors are in one unit
        train, heldout = (data if model.scaler_ is None else model.scaler_.transform(data)
                          for data in (X_train, X_heldout))
        pca = PCA(n_components=d, random_state=0).fit(train)
        rows.append((*_autoencoder_errors(model, X_train, X_heldout), *_pca_errors(pca, train, heldout), seconds))
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


def _check_dims(dims, limit: int, function: str) -> list[int]:
    try:
        values = list(dims)
    except TypeError:
        values = None
    bad = values is None or not values or any(
        isinstance(d, bool) or not isinstance(d, Integral) or not 1 <= d <= limit for d in values
    )
    if bad or len(set(values)) != len(values):
        raise InvalidParameterValue(
            f"The 'dims' parameter of {function} must be a non-empty list of distinct ints in the range "
            f"[1, {limit}] (at most the number of features and of training rows). Got {dims!r} instead."
        )
    return sorted(int(d) for d in values)
