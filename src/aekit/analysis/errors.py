"""The reconstruction errors of an autoencoder and of PCA in one space: the one computation behind every
comparison of the two (:func:`~aekit.analysis.compare_with_pca`, :func:`~aekit.analysis.sweep_latent_dims`,
the report's quality table, the pictures' PCA projection).

The space is the autoencoder's own: the rows after its fitted scaler, where it is trained and where
:meth:`~aekit.Autoencoder.reconstruction_error` measures. PCA is fitted there with an exact solver
(:func:`fit_pca`), so the two figures are in one unit and PCA's is the best any linear projection of
that rank reaches on the rows it was fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA


def model_space(autoencoder, X) -> np.ndarray:
    """``X`` as a fitted autoencoder sees it: float32 rows after its scaler (as given with ``scaler=None``).

    Examples
    --------
    >>> import numpy as np, aekit
    >>> X = np.random.default_rng(0).normal(3.0, 2.0, size=(100, 4))
    >>> scaled = model_space(aekit.Autoencoder(2, epochs=1, random_state=0).fit(X), X)
    >>> bool(abs(scaled.mean()) < 1e-5), scaled.dtype
    (True, dtype('float32'))
    """
    rows = np.asarray(X, dtype=np.float32)
    return rows if autoencoder.scaler_ is None else autoencoder.scaler_.transform(rows)


def fit_pca(rows: np.ndarray, n_components: int) -> PCA:
    """PCA with ``n_components`` (at most the number of rows and of features) fitted on ``rows``, exactly.

    Both solvers are exact (never the randomized one): the eigendecomposition of the covariance
    matrix when there are at least as many rows as features (one pass over the rows, as scikit-learn's
    ``svd_solver="covariance_eigh"``; its speed against the SVD is in docs/pca.md), else LAPACK's SVD.

    Examples
    --------
    >>> import numpy as np
    >>> fit_pca(np.random.default_rng(0).normal(size=(50, 3)), 5).n_components_
    3
    """
    solver = "covariance_eigh" if rows.shape[0] >= rows.shape[1] else "full"
    return PCA(n_components=min(int(n_components), *rows.shape), svd_solver=solver).fit(rows)


def mean_squared_error(reconstruction: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error per value, summed in float64."""
    difference = np.asarray(reconstruction, np.float64) - np.asarray(target, np.float64)
    return float(np.mean(difference**2))


@dataclass(frozen=True)
class ErrorsAgainstPCA:
    """What :func:`errors_against_pca` found.

    Attributes
    ----------
    autoencoder, pca : tuple of float
        Mean squared error per value on each data set, in the autoencoder's scaled space.
    pca_model : sklearn.decomposition.PCA
        The fitted PCA (its components, explained variance).
    """

    autoencoder: tuple[float, ...]
    pca: tuple[float, ...]
    pca_model: PCA

    @property
    def ratios(self) -> tuple[float, ...]:
        """Autoencoder over PCA per data set (inf where PCA's error is 0)."""
        return tuple(ours / theirs if theirs > 0 else float("inf")
                     for ours, theirs in zip(self.autoencoder, self.pca, strict=True))


def errors_against_pca(autoencoder, X, *more, n_components: int | None = None,
                       pca: PCA | None = None) -> ErrorsAgainstPCA:
    """Mean squared error per value of a fitted autoencoder and of PCA on ``X`` and each of ``more``.

    Both are measured in the autoencoder's scaled space (:func:`model_space`). PCA is fitted on ``X``
    there, with ``n_components`` (default: the autoencoder's latent dimension, at most the rows' and
    features' count), unless a fitted ``pca`` is given (it must live in that space too).

    Parameters
    ----------
    autoencoder : Autoencoder
        A fitted model.
    X : array-like of shape (n_samples, n_features)
        The rows PCA is fitted on, and the first data set scored; as given to the estimator (a
        DataFrame keeps the column names it was fitted with).
    *more : array-like of shape (n, n_features)
        Further data sets to score (held-out rows).
    n_components : int, optional
    pca : PCA, optional

    Returns
    -------
    ErrorsAgainstPCA

    Examples
    --------
    >>> import numpy as np, aekit
    >>> X = np.random.default_rng(0).normal(size=(200, 5))
    >>> model = aekit.Autoencoder(2, epochs=2, random_state=0).fit(X[:150])
    >>> found = errors_against_pca(model, X[:150], X[150:])
    >>> len(found.autoencoder), len(found.pca), found.pca_model.n_components_
    (2, 2, 2)
    """
    datasets = (X, *more)
    spaces = [model_space(autoencoder, data) for data in datasets]
    if pca is None:
        pca = fit_pca(spaces[0], autoencoder.module_.latent_dim if n_components is None else n_components)
    pca_errors = tuple(mean_squared_error(pca.inverse_transform(pca.transform(rows)), rows) for rows in spaces)
    autoencoder_errors = tuple(float(np.mean(autoencoder.reconstruction_error(data), dtype=np.float64))
                               for data in datasets)
    return ErrorsAgainstPCA(autoencoder_errors, pca_errors, pca)
