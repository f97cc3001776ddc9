"""What a fitted estimator computes from rows: batches through the module, errors, outlier scores.

Every function takes the fitted :class:`~aekit.Autoencoder` and validated rows; with ``scale=True``
the rows are unscaled and each batch is scaled on its way in (the values of scaling all of them
first, without that copy).
"""

from __future__ import annotations

import numpy as np
import torch

from aekit import detect, preprocess
from aekit.estimator.params import in_threads
from aekit.exceptions import InvalidInputError
from aekit.models.losses import reconstruction_loss
from aekit.training.devices import module_device
from aekit.training.precision import autocast, resolve_precision

INFERENCE_BATCH_ROWS = 8192


def row_mse(reconstruction: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Each row's mean squared error, in float32: the errors behind ``threshold_``, whether kept from
    the validation pass or computed afterwards (:func:`row_errors`)."""
    return reconstruction_loss("mse", reconstruction.float(), rows, per_row=True)


def scale_rows(estimator, X: np.ndarray) -> np.ndarray:
    """The fitted scaler applied to validated rows: a C-contiguous float32 array of finite values."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # overflow is reported below
        X = preprocess.scale(estimator.scaler_, X)
        # a finite sum means finite values (NaN and inf propagate); only a non-finite one needs the full check
        all_finite = bool(np.isfinite(X.sum())) or bool(np.isfinite(X).all())
    if not all_finite:
        fix = ("check that X is in the training data's units" if estimator.scaler == "standard"
               else "refit with scaler='standard', or rescale the data")
        raise InvalidInputError(
            f"X holds values too large for float32 after scaling (scaler={estimator.scaler!r}), or a feature "
            f"whose spread is below float32's smallest number (~1e-38); {fix}."
        )
    return X


@in_threads
def run_batches(estimator, function, array: np.ndarray, *, scale: bool = False) -> np.ndarray:
    """Apply a module function to ``array`` in batches, without gradients; numpy float32 out.

    With ``scale=True``, ``array`` is unscaled (validated) and each batch
    is scaled on its way in: the same values as scaling it all first, without that copy.
    """
    device = module_device(estimator.module_)
    estimator.module_.eval()
    outputs = []
    # "auto": the precision the model was trained and validated in (its threshold's errors were computed so)
    precision = estimator.precision
    if precision != "auto" or getattr(estimator, "precision_", None) is None:
        precision = resolve_precision(precision, estimator.module_, device)
    else:
        precision = estimator.precision_
    with torch.inference_mode(), autocast(device, precision):
        for start in range(0, len(array), INFERENCE_BATCH_ROWS):
            rows = array[start : start + INFERENCE_BATCH_ROWS]
            batch = preprocess.tensor_view(scale_rows(estimator, rows) if scale else rows).to(device)  # read-only X
            outputs.append(function(batch).float().cpu().numpy())
    if not outputs:
        return np.empty((0, 0), dtype=np.float32)
    result = np.concatenate(outputs)
    if not np.isfinite(result).all():  # never hand back NaN codes or reconstructions silently
        rows = np.flatnonzero(~np.isfinite(result).all(axis=1))
        raise InvalidInputError(
            f"The model computed NaN or infinite values for {len(rows)} row(s) of X (first: row {rows[0]}): "
            "they overflow float32, far outside the range of the training data. Check the scale of X."
        )
    return result


def row_errors(estimator, X: np.ndarray, *, scale: bool) -> np.ndarray:
    """Mean squared error of each row in the scaled space, batch by batch (``scale``: ``X`` is unscaled).

    The threshold's errors when the training step's pass over the validation rows did not give them; the same
    formula as that pass's, and no copy of ``X``, scaled or squared.
    """
    def errors(batch: torch.Tensor) -> torch.Tensor:
        return row_mse(estimator.module_(batch)[0], batch)[:, None]

    return run_batches(estimator, errors, X, scale=scale)[:, 0]


def finite_rows(values: np.ndarray, what: str) -> np.ndarray:
    """``values`` (one per row, or a row of them each), when all are finite; else an error naming the rows, so that
    no ``inf`` or NaN reaches an output."""
    finite = np.isfinite(values) if values.ndim == 1 else np.isfinite(values).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)
        raise InvalidInputError(
            f"The {what} of {len(rows)} row(s) of X (first: row {rows[0]}) would overflow float32: they lie far "
            "outside the range of the training data. Check the scale of X."
        )
    return values


def errors_scaled(estimator, X_scaled: np.ndarray) -> np.ndarray:
    """Squared error of each value, in the scaled space the model was trained in (finite: else an error)."""
    reconstruction = run_batches(estimator, lambda batch: estimator.module_(batch)[0], X_scaled)
    with np.errstate(over="ignore"):  # reported by finite_rows
        return finite_rows((X_scaled - reconstruction) ** 2, "squared reconstruction error")


def unscale(estimator, X_scaled: np.ndarray) -> np.ndarray:
    if estimator.scaler_ is None:
        return X_scaled
    return estimator.scaler_.inverse_transform(X_scaled).astype(np.float32, copy=False)


def joined_parts(reconstruction: torch.Tensor, rows: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """Each value's squared error and each row's codes side by side, in float32: what the combined score
    reads (:func:`score_parts`, and the validation pass that keeps them for the threshold)."""
    return torch.cat([(reconstruction.float() - rows.float()) ** 2, latent.float()], dim=1)


def split_parts(estimator, parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`joined_parts`' columns as (squared errors, codes)."""
    return parts[:, : estimator.n_features_in_], parts[:, estimator.n_features_in_ :]


def score_parts(estimator, X: np.ndarray, *, scale: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each value's squared error and each row's codes, in the scaled space (``scale``: X is unscaled)."""
    def both(batch: torch.Tensor) -> torch.Tensor:
        reconstruction, latent = estimator.module_(batch)
        return joined_parts(reconstruction, batch, latent)

    return split_parts(estimator, run_batches(estimator, both, X, scale=scale))


def fit_score_state(estimator, arrays, *, scale: bool, combine=None, gather=None) -> None:
    """The combined score's normalisers, from the rows of ``arrays`` (an iterable of row blocks); with
    ``combine`` and ``gather``, this process's share of the rows (see :func:`aekit.detect.fit_score_state`)."""
    def parts():
        for array in arrays:
            for start in range(0, len(array), INFERENCE_BATCH_ROWS):
                yield score_parts(estimator, array[start : start + INFERENCE_BATCH_ROWS], scale=scale)

    estimator.score_state_ = detect.fit_score_state(parts(), combine=combine, gather=gather, seed=estimator.seed_)


def outlier_scores(estimator, X: np.ndarray, *, scale: bool, per_feature: bool = False) -> np.ndarray:
    """Each row's outlier score (``per_feature``: its shares), float32 and finite: a row whose score overflows
    float32 is an error, never an ``inf`` in an output."""
    with np.errstate(over="ignore", invalid="ignore"):  # reported by finite_rows
        if estimator.anomaly_score == "combined":
            errors, codes = score_parts(estimator, X, scale=scale)
            shares = detect.contributions(errors, codes, estimator.score_state_)
            # float32, as the errors they come from (and as reconstruction_error)
            scores = (shares if per_feature else shares.sum(axis=1)).astype(np.float32)
        else:
            squared = errors_scaled(estimator, scale_rows(estimator, X) if scale else X)  # as reconstruction_error
            scores = squared / estimator.n_features_in_ if per_feature else squared.mean(axis=1)
    return finite_rows(scores, "outlier score")
