"""PCA as the reference: principal angles, a side-by-side comparison, and a latent-dimension sweep.

A linear autoencoder trained with MSE on centred data spans the subspace of PCA's first ``d``
components, so :func:`principal_angles` between its decoder and PCA's components checks the
equivalence. :func:`compare_with_pca` fits PCA, a linear and a non-linear autoencoder at the same
``d`` and reports their reconstruction errors side by side; :func:`sweep_latent_dims` does it for
several ``d`` and suggests one. :func:`errors_against_pca` is the one computation of an
autoencoder's and PCA's errors that all of them, and the report, use.

Every error here is the mean squared error per value in one space: the data after the scaler
(and, in :func:`compare_with_pca`, centred), so PCA's and the autoencoders' figures compare
directly.

One module per job: ``angles``, ``errors``, ``defaults`` (the default models), ``comparison``,
``sweep``, ``checks`` (argument checks).
"""

from aekit.analysis.angles import orthonormality_gap, principal_angles
from aekit.analysis.comparison import PCAComparison, compare_with_pca
from aekit.analysis.defaults import default_autoencoder, default_linear_autoencoder
from aekit.analysis.errors import ErrorsAgainstPCA, errors_against_pca, fit_pca, model_space
from aekit.analysis.sweep import LatentSweep, default_dims, suggest_dim, sweep_latent_dims

__all__ = [
    "ErrorsAgainstPCA",
    "LatentSweep",
    "PCAComparison",
    "compare_with_pca",
    "default_autoencoder",
    "default_dims",
    "default_linear_autoencoder",
    "errors_against_pca",
    "fit_pca",
    "model_space",
    "orthonormality_gap",
    "principal_angles",
    "suggest_dim",
    "sweep_latent_dims",
]
