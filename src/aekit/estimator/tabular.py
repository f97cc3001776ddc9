"""An :class:`~aekit.Autoencoder` on a table as users have it: categorical columns and missing cells.

A table that needs it (:func:`aekit.tables.needs_table`) is encoded once by a fitted
:class:`aekit.tables.TableEncoder` (``table_``); the model trains on the encoded rows with the masked
:class:`aekit.models.losses.TableLoss` (:func:`aekit.estimator.fitting.fit_data`, the same fit as for
arrays), and everything it gives back speaks of the user's columns: one error and one share of the score
per column (a categorical column's, not its dummies'), reconstructions and imputations with the column's
own categories.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from aekit import imputation, tables
from aekit.estimator import inference
from aekit.estimator.fitting import fit_data
from aekit.estimator.params import detached
from aekit.exceptions import InvalidInputError, InvalidParameterValue, Setting, Words
from aekit.training.sources import ArrayData, ValidationSplit

# In training, each observed cell of a table is also hidden from the model's input with this probability
# (see TableLoss.training_input): the model learns to fill cells from the others.
HIDE = 0.25
# The blend of the model's fill with the linear one is measured on the validation rows in this many passes,
# each hiding a different share of their observed cells (1 / FILL_FOLDS, the rate the model trains with):
# every observed cell is hidden once.
FILL_FOLDS = round(1 / HIDE)
FILL_STREAM = 4  # the passes' cells are drawn from (seed_, this)


def as_frame(X) -> tuple[pd.DataFrame, bool]:
    """``X`` as a DataFrame, and whether it came with column names (a DataFrame) or not (columns ``x0``, ...)."""
    X = detached(X)
    if isinstance(X, pd.DataFrame):
        return X, True
    values = np.asarray(X, dtype=object if np.asarray(X).dtype.kind in "OUSb" else np.float64)
    if values.ndim != 2:
        raise InvalidInputError(f"X must be a 2-D table (rows x columns); got {values.ndim} dimension(s). Pass a "
                                "DataFrame or a 2-D array.")
    return pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])]), False


def fit_table(estimator, X):
    """Fit ``estimator`` (its parameters checked) on the table ``X`` (see the module)."""
    if estimator.geometry is not None:
        raise InvalidParameterValue(
            problem=Words(Setting("geometry", estimator.geometry), " embeds complete numeric rows; this table has "
                          "categorical columns or missing cells."),
            hint=Words("Use ", Setting("geometry", None), ", or give complete numeric columns."),
            param="geometry", value=estimator.geometry)
    if estimator.loss == "bce":
        raise InvalidParameterValue(
            problem=Words(Setting("loss", "bce"), " does not go with a table of categorical columns or missing cells: "
                          "numeric columns are trained with squared error and categorical ones with cross-entropy."),
            hint=Words("Use ", Setting("loss", "auto"), " or 'mse'."), param="loss", value="bce")
    frame, named = as_frame(X)
    plan = tables.plan_columns(frame, categorical=estimator.categorical)
    if not plan.kept:
        raise InvalidInputError(f"No column of X is left to learn from ({plan.summary()}). Give numeric or "
                                "categorical columns.")
    encoder = tables.TableEncoder.fit(frame, plan, estimator.scaler)
    estimator.table_ = encoder  # inference reads it during the fit (the threshold's scores)
    rows = encoder.encode(frame)
    try:
        fit_data(estimator, ArrayData(rows), criterion=inference.table_loss(estimator, hide=HIDE))
        estimator.table_ = dataclasses.replace(encoder, fill=_measured_fill(estimator, rows))
    except BaseException:
        if hasattr(estimator, "table_"):
            del estimator.table_
        raise
    estimator.n_features_in_ = frame.shape[1]
    if named:
        estimator.feature_names_in_ = np.asarray(plan.columns, dtype=object)
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    return estimator


def _measured_fill(estimator, rows: np.ndarray) -> imputation.LinearFill | None:
    """The linear fill of ``rows`` (a table's encoded rows) with each column's blend weight measured on the
    validation rows (the training rows when there are none): in ``FILL_FOLDS`` passes each of their observed
    cells is hidden once, filled by the trained model and by a linear fill of the training rows, and the
    weight is the one that minimises the squared error of those cells (:func:`aekit.imputation.blend_weights`).
    The fill kept is learned from all the rows. None beyond ``imputation.MAX_WIDTH`` encoded slots."""
    table = estimator.table_
    if table.width > imputation.MAX_WIDTH:
        return None
    train_rows, held_out = ValidationSplit(len(rows), estimator.validation_fraction, estimator.seed_).rows()
    measured = rows[held_out if len(held_out) else train_rows]
    slot_column = table.slot_columns()
    observed = ~np.isnan(measured[:, [start for _, start, _ in table.layout()]])
    folds = np.random.default_rng([estimator.seed_, FILL_STREAM]).integers(FILL_FOLDS, size=observed.shape)
    linear = imputation.LinearFill.fit(rows[train_rows])
    model_fill, linear_fill = np.full(measured.shape, np.nan), np.full(measured.shape, np.nan)
    for fold in range(FILL_FOLDS):
        hidden = (observed & (folds == fold))[:, slot_column]
        shown = np.where(hidden, np.nan, measured)
        model_fill[hidden] = inference.reconstruct_encoded(estimator, shown)[hidden]
        linear_fill[hidden] = linear.fill(shown)[hidden]
    truth = np.where(np.isnan(model_fill), np.nan, measured)
    weights = imputation.blend_weights(model_fill, linear_fill, truth, slot_column, len(table.columns))
    return dataclasses.replace(imputation.LinearFill.fit(rows), model_weight=weights)


def encoded(estimator, X) -> np.ndarray:
    """The table model's encoded rows of ``X`` (NaN where a cell is missing)."""
    frame, named = as_frame(X)
    if not named and frame.shape[1] != estimator.n_features_in_:
        raise InvalidInputError(f"X has {frame.shape[1]} columns; the model was fitted on {estimator.n_features_in_}."
                                " Pass the same columns.")
    return estimator.table_.encode(frame)


def codes(estimator, X) -> np.ndarray:
    """Latent codes of the table ``X``."""
    criterion = inference.table_loss(estimator)
    return inference.run_batches(estimator, lambda batch: estimator.module_.encode(criterion.filled(batch)),
                                 encoded(estimator, X))


def decoded(estimator, Z: np.ndarray, index=None) -> pd.DataFrame:
    """The table the codes ``Z`` decode to, in the user's columns and categories."""
    criterion = inference.table_loss(estimator)
    values = inference.run_batches(estimator, lambda batch: criterion.output(estimator.module_.decode(batch)), Z)
    return estimator.table_.decode(values, index=index)


def reconstruction(estimator, X) -> pd.DataFrame:
    """The reconstruction of the table ``X``, in its own columns and categories."""
    frame, _ = as_frame(X)
    return estimator.table_.decode(inference.reconstruct_encoded(estimator, encoded(estimator, frame)),
                                   index=frame.index)


def impute(estimator, X) -> pd.DataFrame:
    """``X`` with each missing cell of the model's columns filled from its reconstruction, blended with the
    linear fill by the column's measured weight (``table_.fill``, see :func:`_measured_fill`); observed cells,
    and the columns the model leaves out, are kept as they are."""
    frame, _ = as_frame(X)
    filled = frame.copy()
    rows = encoded(estimator, frame)
    values = inference.reconstruct_encoded(estimator, rows)
    table = estimator.table_
    if table.fill is not None:
        values = table.fill.blend(values, rows, table.slot_columns())
    reconstructed = table.decode(values, index=frame.index)
    for name in estimator.table_.columns:
        gaps = frame[name].isna().to_numpy()
        if not gaps.any():
            continue
        values = _typed_like(reconstructed[name].to_numpy()[gaps], frame[name])
        if isinstance(filled[name].dtype, pd.CategoricalDtype):
            filled[name] = filled[name].cat.add_categories(sorted(set(values) - set(filled[name].cat.categories)))
        elif pd.api.types.is_numeric_dtype(filled[name].dtype) and not pd.api.types.is_numeric_dtype(values.dtype):
            filled[name] = filled[name].astype(object)
        elif not pd.api.types.is_numeric_dtype(filled[name].dtype):
            filled[name] = filled[name].astype(object)
        filled.loc[gaps, name] = values
    return filled


def _typed_like(values: np.ndarray, column: pd.Series) -> np.ndarray:
    """Reconstructed values in the type of ``column``'s observed ones: a categorical column's category text
    back to a number or a boolean when that is what the column holds."""
    observed = column.dropna()
    if values.dtype.kind == "f" or observed.empty:
        return values
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy()
    if all(isinstance(v, (bool, np.bool_)) for v in observed.iloc[:100]):
        return np.array([{"True": True, "False": False}.get(v, v) for v in values], dtype=object)
    return values


def unseen_categories(estimator, X) -> pd.DataFrame:
    """For each categorical column, each row's category when training never saw it (else None): a cause of a
    high score, named in explanations."""
    frame, _ = as_frame(X)
    return estimator.table_.unseen(frame)
