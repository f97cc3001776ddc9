"""Autoencoders against PCA at one latent dimension: :func:`compare_with_pca` and its result.

A linear autoencoder trained with MSE on centred data spans the subspace of PCA's first ``d``
components, with weights that need not be orthogonal (any invertible ``d x d`` mix of the
components reconstructs as well). The check of that equivalence is therefore the *subspace*:
:func:`~aekit.analysis.principal_angles` between the decoder's columns and PCA's components, all
near 0 degrees when the two span the same space.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone

from aekit.analysis.angles import orthonormality_gap, principal_angles
from aekit.analysis.checks import check_int, check_template, split_rows
from aekit.analysis.defaults import default_autoencoder, default_linear_autoencoder
from aekit.analysis.errors import errors_against_pca, fit_pca
from aekit.estimator import Autoencoder
from aekit.preprocess import fit_observed


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
    scaler: str | None = "auto",
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
    scaler : {"auto", "shared", "standard", "minmax"} or None, default="auto"
        As the estimator's ``scaler``, fitted on the training rows ("auto" decides on them).
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
    X_train, X_heldout = split_rows(X, X_val, heldout_fraction, random_state, function)
    n_features = X_train.shape[1]
    latent_dim = check_int(
        latent_dim, "latent_dim", function, 1, min(n_features, len(X_train)),
        " (at most the number of features and of training rows)",
    )
    prescaler = fit_observed(scaler, X_train)
    train = X_train if prescaler is None else prescaler.transform(X_train)
    heldout = X_heldout if prescaler is None else prescaler.transform(X_heldout)
    centre = train.mean(axis=0)
    train = np.ascontiguousarray(train - centre, dtype=np.float32)
    heldout = np.ascontiguousarray(heldout - centre, dtype=np.float32)

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    pca = fit_pca(train, latent_dim)
    seconds["PCA"] = time.perf_counter() - started
    errors: dict[str, dict[str, float]] = {"PCA": {}}

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
        found = errors_against_pca(model, train, heldout, pca=pca)  # scaler=None: its space is train's
        errors[name] = dict(zip(("train", "heldout"), found.autoencoder, strict=True))
        errors["PCA"] = dict(zip(("train", "heldout"), found.pca, strict=True))

    decoder = models["linear autoencoder"].module_.decoder[0].weight.detach().cpu().double().numpy()
    return PCAComparison(
        latent_dim=latent_dim,
        n_train=len(train),
        n_heldout=len(heldout),
        n_features=n_features,
        scaler=scaler,
        errors=errors,
        principal_angles=principal_angles(decoder, pca.components_.T),
        orthonormality_gap=orthonormality_gap(decoder),
        explained_variance_ratio=np.asarray(pca.explained_variance_ratio_, dtype=np.float64),
        seconds=seconds,
    )


def _prepare(template, default: Autoencoder, name: str, function: str, latent_dim: int, **fixed) -> Autoencoder:
    """A clone of the user's template (or the default) at ``latent_dim``, on pre-scaled data, with MSE."""
    model = default if template is None else clone(check_template(template, name, function))
    return model.set_params(latent_dim=latent_dim, scaler=None, loss="mse", **fixed)
