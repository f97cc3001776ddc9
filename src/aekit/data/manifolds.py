"""Curved manifolds with known coordinates, and how well an embedding recovers them.

The generators are scikit-learn's (``make_swiss_roll``, ``make_s_curve``), returned with both
intrinsic coordinates: the position along the curve and the height. An embedding (an autoencoder's
latent codes, a PCA projection) is judged by

- **trustworthiness** (scikit-learn's): are the embedding's k nearest neighbours true neighbours?
- **continuity**: are the data's k nearest neighbours still neighbours in the embedding?
  (trustworthiness with the two spaces' roles swapped; Venna & Kaski, 2001)
- **Spearman's rho** between each latent axis and each known coordinate (scipy's ``spearmanr``):
  an unrolled swiss roll has one axis that follows the roll position monotonically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr
from sklearn.datasets import make_s_curve, make_swiss_roll
from sklearn.manifold import trustworthiness
from sklearn.utils import check_random_state

from aekit.exceptions import InvalidInputError, did_you_mean, parameter_error

MANIFOLDS = {"swiss_roll": make_swiss_roll, "s_curve": make_s_curve}
COORDINATE_NAMES = ("position", "height")


def make_manifold(
    name: str = "swiss_roll", n_samples: int = 1000, *, noise: float = 0.0, random_state=None
) -> tuple[np.ndarray, np.ndarray]:
    """Points on a 2-D manifold curved in 3-D, and their two intrinsic coordinates.

    Parameters
    ----------
    name : {"swiss_roll", "s_curve"}, default="swiss_roll"
    n_samples : int, default=1000
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to the points.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, 3), float32
        The points.
    coordinates : ndarray of shape (n_samples, 2), float32
        Column 0: the position along the curve (scikit-learn's ``t``); column 1: the height
        (the axis the manifold is flat along, ``X[:, 1]`` before noise).

    Examples
    --------
    >>> X, coordinates = make_manifold("swiss_roll", 500, random_state=0)
    >>> X.shape, coordinates.shape
    ((500, 3), (500, 2))
    """
    if name not in MANIFOLDS:
        raise parameter_error("name", name, f"one of {sorted(MANIFOLDS)}", of="make_manifold",
                              hint=did_you_mean(name, MANIFOLDS).strip() or None)
    # generate without noise first so the height is the exact intrinsic coordinate, then add noise
    generator = check_random_state(random_state)
    X, position = MANIFOLDS[name](n_samples, noise=0.0, random_state=generator)
    height = X[:, 1].copy()
    if noise:
        X = X + noise * generator.standard_normal(size=X.shape)
    return X.astype(np.float32), np.column_stack([position, height]).astype(np.float32)


def continuity(X: np.ndarray, embedding: np.ndarray, *, n_neighbors: int = 10) -> float:
    """How well the embedding keeps the data's own neighbourhoods, in [0, 1] (1 = all kept).

    Trustworthiness with the roles swapped: false *missing* neighbours are penalised instead of
    false new ones.

    Examples
    --------
    >>> X, _ = make_manifold("s_curve", 300, random_state=0)
    >>> round(continuity(X, X[:, [0, 2]]), 3) < 1.0
    True
    """
    return float(trustworthiness(embedding, X, n_neighbors=n_neighbors))


@dataclass
class EmbeddingQuality:
    """Scores of an embedding against the data it came from and its known coordinates."""

    trustworthiness: float
    continuity: float
    n_neighbors: int
    spearman: np.ndarray | None  # (latent axes, coordinates): Spearman's rho of each pair
    coordinate_names: tuple[str, ...] = COORDINATE_NAMES

    @property
    def best_abs_spearman(self) -> np.ndarray | None:
        """For each known coordinate, the largest |rho| over the latent axes."""
        return None if self.spearman is None else np.abs(self.spearman).max(axis=0)

    def to_dict(self) -> dict:
        best = self.best_abs_spearman
        return {
            "trustworthiness": self.trustworthiness,
            "continuity": self.continuity,
            "n_neighbors": self.n_neighbors,
            "spearman": None if self.spearman is None else self.spearman.tolist(),
            "best_abs_spearman": None
            if best is None
            else dict(zip(self.coordinate_names, best.tolist(), strict=False)),
        }


def spearman_matrix(embedding: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
    """Spearman's rho between every latent axis (rows) and every known coordinate (columns)."""
    n_axes = embedding.shape[1]
    rho = spearmanr(np.column_stack([embedding, coordinates])).statistic
    rho = np.atleast_2d(rho)
    return np.asarray(rho[:n_axes, n_axes:], dtype=np.float64)


def evaluate_embedding(
    X, embedding, coordinates=None, *, n_neighbors: int = 10, coordinate_names: tuple[str, ...] = COORDINATE_NAMES
) -> EmbeddingQuality:
    """Trustworthiness, continuity and (with known ``coordinates``) Spearman's rho of an embedding.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data in its original space.
    embedding : array-like of shape (n_samples, n_components)
        Its low-dimensional codes (``Autoencoder.transform(X)``, ``PCA.transform(X)``, ...).
    coordinates : array-like of shape (n_samples, n_coordinates) or None
        Known intrinsic coordinates (``make_manifold``'s second output).
    n_neighbors : int, default=10
        k of trustworthiness and continuity; must be < n_samples / 2.

    Examples
    --------
    >>> from sklearn.decomposition import PCA
    >>> X, coordinates = make_manifold("swiss_roll", 600, random_state=0)
    >>> quality = evaluate_embedding(X, PCA(2).fit_transform(X), coordinates)
    >>> bool(quality.best_abs_spearman[0] < 0.5)  # PCA does not unroll the roll
    True
    """
    X, embedding = np.asarray(X, dtype=np.float64), np.asarray(embedding, dtype=np.float64)
    if X.ndim != 2 or embedding.ndim != 2 or len(X) != len(embedding):
        raise InvalidInputError(
            f"X and the embedding must be 2-D with one row per sample; got shapes {X.shape} and {embedding.shape}. "
            "Pass the data and its codes (e.g. ae.transform(X)) row for row."
        )
    if not 1 <= n_neighbors < len(X) / 2:
        raise parameter_error("n_neighbors", n_neighbors, f"an int in [1, n_samples / 2) = [1, {len(X) / 2:g})")
    spearman = None
    if coordinates is not None:
        coordinates = np.asarray(coordinates, dtype=np.float64).reshape(len(X), -1)
        spearman = spearman_matrix(embedding, coordinates)
    return EmbeddingQuality(
        trustworthiness=float(trustworthiness(X, embedding, n_neighbors=n_neighbors)),
        continuity=continuity(X, embedding, n_neighbors=n_neighbors),
        n_neighbors=n_neighbors,
        spearman=spearman,
        coordinate_names=tuple(coordinate_names),
    )
