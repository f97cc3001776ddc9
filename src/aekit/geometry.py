"""Targets for a geometry-regularised autoencoder (``Autoencoder(geometry="isomap")``).

After Duque et al., "Geometry regularized autoencoders" (IEEE TPAMI, 2022): the latent codes are
pulled towards a manifold learner's embedding of the training rows, here scikit-learn's ``Isomap``
(geodesic distances along a k-neighbour graph), so a curved manifold comes out laid flat where a
reconstruction loss alone accepts any chart. This module computes that embedding; the estimator
adds the distance to it to the training loss.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.manifold import Isomap

from aekit.exceptions import InvalidParameterValue, Setting, Words

# Isomap's cost grows as rows**2 in memory and up to rows**3 in time: it is fitted on at most this
# many training rows and extended to the others with Isomap.transform, in chunks of CHUNK_ROWS.
FIT_ROWS = 2000
CHUNK_ROWS = 8192
GEOMETRIES = ("isomap",)


def isomap_target(
    X: np.ndarray, train_rows: np.ndarray, *, n_components: int, n_neighbors: int, rng: np.random.Generator
) -> np.ndarray:
    """Isomap's embedding of every row of ``X``, fitted on (at most ``FIT_ROWS`` of) ``train_rows``.

    Centred on the training rows and scaled by one factor to unit mean square, so the shape of the
    embedding (the ratio of its axes) is kept. The dense eigensolver makes it the same bit for bit on
    every run (ARPACK would start from a random vector).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        All rows, scaled as the autoencoder sees them.
    train_rows : ndarray of int
        Indices of the training rows.
    n_components, n_neighbors : int
        Isomap's output dimension (the latent size) and neighbours per row.
    rng : numpy Generator
        Draws the rows Isomap is fitted on when there are more than ``FIT_ROWS``.

    Returns
    -------
    ndarray of shape (n_rows, n_components), float32

    Examples
    --------
    >>> from aekit.data.manifolds import make_manifold
    >>> X, _ = make_manifold("s_curve", 300, random_state=0)
    >>> target = isomap_target(X, np.arange(300), n_components=2, n_neighbors=10, rng=np.random.default_rng(0))
    >>> target.shape, round(float(np.mean(target ** 2)), 4)
    ((300, 2), 1.0)
    """
    fit_rows = train_rows
    if len(fit_rows) > FIT_ROWS:
        fit_rows = np.sort(rng.choice(train_rows, FIT_ROWS, replace=False))
    if n_neighbors >= len(fit_rows):
        raise InvalidParameterValue(Words(
            Setting("geometry", "isomap"), " needs ", Setting("geometry_neighbors"), " below the number of training "
            f"rows it is fitted on ({len(fit_rows)}). Got ", Setting("geometry_neighbors", n_neighbors),
            "; lower it or give more rows."), param="geometry_neighbors", value=n_neighbors)
    if n_components >= len(fit_rows):
        raise InvalidParameterValue(
            problem=Words(Setting("geometry", "isomap"), f" embeds {len(fit_rows)} training rows, too few for ",
                          Setting("latent_dim", n_components), "."),
            hint=Words("Give more rows, a smaller ", Setting("latent_dim"), ", or ", Setting("geometry", None), "."),
            param="latent_dim", value=n_components)
    isomap = Isomap(n_neighbors=int(n_neighbors), n_components=int(n_components), eigen_solver="dense")
    with warnings.catch_warnings():
        # Isomap joins a disconnected neighbour graph itself and warns about it; the fit goes on
        warnings.filterwarnings("ignore", message=".*connected components.*", category=UserWarning)
        isomap.fit(X[fit_rows])
    chunks = range(0, len(X), CHUNK_ROWS)  # transform holds a (rows, fitted rows) float64 matrix
    target = np.concatenate([isomap.transform(X[start : start + CHUNK_ROWS]) for start in chunks])
    target -= target[train_rows].mean(axis=0)
    rms = np.sqrt(np.mean(target[train_rows] ** 2))
    return (target / (rms if rms > 0 else 1.0)).astype(np.float32)
