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
from aekit.exceptions import InvalidInputError, Setting, Words
from aekit.models.losses import TableLoss, reconstruction_loss
from aekit.training.devices import module_device
from aekit.training.precision import autocast, resolve_precision

INFERENCE_BATCH_ROWS = 8192


def row_mse(reconstruction: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Each row's mean squared error, in float32: the errors behind ``threshold_``, whether kept from
    the validation pass or computed afterwards (:func:`row_errors`)."""
    return reconstruction_loss("mse", reconstruction.float(), rows, per_row=True)


def table_loss(estimator, **training) -> TableLoss | None:
    """The loss of a model trained on a table (``table_``: categorical columns or missing cells), else None.
    ``training``: ``hide`` and ``seed`` of the training input (see :class:`TableLoss`)."""
    table = getattr(estimator, "table_", None)
    return None if table is None else TableLoss.of(table, **training)


def scale_rows(estimator, X: np.ndarray) -> np.ndarray:
    """The fitted scaler applied to validated rows: a C-contiguous float32 array of finite values (a table's
    encoded rows, scaled by their encoding, as they are: NaN marks their missing cells)."""
    if getattr(estimator, "table_", None) is not None:
        return np.ascontiguousarray(X, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # overflow is reported below
        X = preprocess.scale(estimator.scaler_, X)
        # a finite sum means finite values (NaN and inf propagate); only a non-finite one needs the full check
        all_finite = bool(np.isfinite(X.sum())) or bool(np.isfinite(X).all())
    if not all_finite:
        fix = ("check that X is in the training data's units" if estimator.scaler in ("auto", "shared", "standard")
               else Words("refit with ", Setting("scaler", "standard"), ", or rescale the data"))
        raise InvalidInputError(Words(
            "X holds values too large for float32 after scaling (", Setting("scaler", estimator.scaler), "), or a "
            "feature whose spread is below float32's smallest number (~1e-38); ", fix, "."))
    return X


@in_threads
def run_batches(estimator, function, array: np.ndarray, *, scale: bool = False, allow_nan: bool = False) -> np.ndarray:
    """Apply a module function to ``array`` in batches, without gradients; numpy float32 out.

    With ``scale=True``, ``array`` is unscaled (validated) and each batch
    is scaled on its way in: the same values as scaling it all first, without that copy.
    ``allow_nan``: the function gives NaN on purpose (a table's missing cells), only infinities are refused.
    """
    device = module_device(estimator.module_)
    estimator.module_.eval()
    outputs = []
    # "auto": the precision the model was trained and validated in (its threshold's errors were computed so),
    # resolved once by the fit and saved with the model; a precision set since then is used as set
    precision = estimator.precision_ if estimator.precision == "auto" else \
        resolve_precision(estimator.precision, estimator.module_, device)
    with torch.inference_mode(), autocast(device, precision):
        for start in range(0, len(array), INFERENCE_BATCH_ROWS):
            rows = array[start : start + INFERENCE_BATCH_ROWS]
            batch = preprocess.tensor_view(scale_rows(estimator, rows) if scale else rows).to(device)  # read-only X
            outputs.append(function(batch).float().cpu().numpy())
    if not outputs:
        return np.empty((0, 0), dtype=np.float32)
    return _refuse_non_finite(np.concatenate(outputs), allow_nan=allow_nan)


def _refuse_non_finite(result: np.ndarray, *, allow_nan: bool = False) -> np.ndarray:
    """``result``, unless it holds NaN or infinite values (only a table's missing cells, with allow_nan):
    codes and reconstructions are never handed back so silently."""
    finite = np.isfinite(result) | np.isnan(result) if allow_nan else np.isfinite(result)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
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
    criterion = table_loss(estimator)
    if criterion is not None:  # a table's rows: the mean over each row's observed cells (NaN with none)
        return observed_mean(errors_scaled(estimator, X))

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
    """Squared error of each value, in the scaled space the model was trained in (finite: else an error). A
    table's model (``table_``): one term per user column from its encoded rows, NaN for a missing cell (see
    :class:`aekit.models.losses.TableLoss`)."""
    criterion = table_loss(estimator)
    if criterion is not None:
        def errors(batch: torch.Tensor) -> torch.Tensor:
            return criterion.column_errors(estimator.module_(criterion.filled(batch))[0], batch)

        return run_batches(estimator, errors, X_scaled, allow_nan=True)
    reconstruction = run_batches(estimator, lambda batch: estimator.module_(batch)[0], X_scaled)
    with np.errstate(over="ignore"):  # reported by finite_rows
        return finite_rows((X_scaled - reconstruction) ** 2, "squared reconstruction error")


def observed_mean(terms: np.ndarray) -> np.ndarray:
    """Each row's mean over its observed (non-NaN) terms; NaN for a row with none, without a warning."""
    n_observed = np.count_nonzero(~np.isnan(terms), axis=1)
    total = np.where(np.isnan(terms), 0.0, terms).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / n_observed).astype(terms.dtype)


def reconstruct_encoded(estimator, X_scaled: np.ndarray) -> np.ndarray:
    """The model's reconstruction of scaled (or a table's encoded) rows, in that space: a table's
    categorical columns as probabilities."""
    criterion = table_loss(estimator)
    if criterion is None:
        return run_batches(estimator, lambda batch: estimator.module_(batch)[0], X_scaled)
    return run_batches(estimator, lambda batch: criterion.output(estimator.module_(criterion.filled(batch))[0]),
                       X_scaled)


def unscale(estimator, X_scaled: np.ndarray) -> np.ndarray:
    if estimator.scaler_ is None:
        return X_scaled
    with np.errstate(over="ignore", invalid="ignore"):  # reported below
        return _refuse_non_finite(estimator.scaler_.inverse_transform(X_scaled).astype(np.float32, copy=False))


def joined_parts(reconstruction: torch.Tensor, rows: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """Each value's squared error and each row's codes side by side, in float32: what the combined score
    reads (:func:`score_parts`, and the validation pass that keeps them for the threshold)."""
    return torch.cat([(reconstruction.float() - rows.float()) ** 2, latent.float()], dim=1)


def split_parts(estimator, parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`joined_parts`' columns as (squared errors, codes)."""
    table = getattr(estimator, "table_", None)
    n_errors = estimator.n_features_in_ if table is None else len(table.columns)
    return parts[:, :n_errors], parts[:, n_errors:]


def score_parts(estimator, X: np.ndarray, *, scale: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each value's squared error and each row's codes, in the scaled space (``scale``: X is unscaled).
    A table's model: each user column's term (NaN where missing) and the codes, from encoded rows."""
    criterion = table_loss(estimator)
    if criterion is not None:
        def terms(batch: torch.Tensor) -> torch.Tensor:
            reconstruction, latent = estimator.module_(criterion.filled(batch))
            return torch.cat([criterion.column_errors(reconstruction, batch), latent.float()], dim=1)

        return split_parts(estimator, run_batches(estimator, terms, X, allow_nan=True))

    def both(batch: torch.Tensor) -> torch.Tensor:
        reconstruction, latent = estimator.module_(batch)
        return joined_parts(reconstruction, batch, latent)

    return split_parts(estimator, run_batches(estimator, both, X, scale=scale))


def score_statistics(estimator, arrays, *, scale: bool) -> detect.ScoreStatistics:
    """What the combined score's normalisers are learned from (:class:`aekit.detect.ScoreStatistics`), from the
    rows of ``arrays`` (an iterable of row blocks)."""
    def parts():
        for array in arrays:
            for start in range(0, len(array), INFERENCE_BATCH_ROWS):
                yield score_parts(estimator, array[start : start + INFERENCE_BATCH_ROWS], scale=scale)

    return detect.ScoreStatistics.of(parts())


def fit_score_state(estimator, arrays, *, scale: bool) -> None:
    """The combined score's normalisers, from the rows of ``arrays`` (an iterable of row blocks)."""
    estimator.score_state_ = detect.score_state_from(score_statistics(estimator, arrays, scale=scale),
                                                     seed=estimator.seed_)


def outlier_scores(estimator, X: np.ndarray, *, scale: bool, per_feature: bool = False) -> np.ndarray:
    """Each row's outlier score (``per_feature``: its shares), float32 and finite: a row whose score overflows
    float32 is an error, never an ``inf`` in an output. A table's model: NaN for a row with no observed cell."""
    table = table_loss(estimator) is not None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # reported by finite_rows
        if detect.outlier_score(estimator.anomaly_score).reads_codes:
            errors, codes = score_parts(estimator, X, scale=scale)
            shares = detect.contributions(errors, codes, estimator.score_state_)
            # float32, as the errors they come from (and as reconstruction_error)
            scores = (shares if per_feature else detect.row_totals(shares)).astype(np.float32)
        elif table:  # a table's terms, NaN where missing: means over observed cells
            terms = errors_scaled(estimator, X)
            n_observed = np.count_nonzero(~np.isnan(terms), axis=1)[:, None]
            scores = terms / n_observed if per_feature else observed_mean(terms)
        else:
            squared = errors_scaled(estimator, scale_rows(estimator, X) if scale else X)  # as reconstruction_error
            scores = squared / estimator.n_features_in_ if per_feature else squared.mean(axis=1)
    if table:  # NaN on purpose (a missing cell, a row with none); never inf
        finite_rows(np.where(np.isnan(scores), 0.0, scores), "outlier score")
        return scores
    return finite_rows(scores, "outlier score")
