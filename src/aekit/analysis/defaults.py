"""The autoencoders :mod:`aekit.analysis` compares with PCA when the caller gives none."""

from __future__ import annotations

import math

from aekit.estimator import Autoencoder

# The linear autoencoder's training budget: about this many Adam steps, whatever the number of rows;
# full-batch up to LINEAR_FULL_BATCH rows (exact gradients reach PCA's subspace to a fraction of a
# degree), batches of LINEAR_BATCH above (many cheap steps; the cosine schedule damps their noise).
LINEAR_STEPS = 2000
LINEAR_FULL_BATCH = 2048
LINEAR_BATCH = 512


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
