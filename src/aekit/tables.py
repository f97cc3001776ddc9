"""Tables as users have them: column types decided once, categories and missing cells encoded for the model.

- :func:`plan_columns` decides what each column of a table is: numeric, categorical (text, pandas
  ``category``, booleans, or named by the caller) or left out (identifier-like, date/time, or excluded
  by the caller), each left-out column with its reason. The plan is saved with the model.
- :class:`TableEncoder` turns a table into the model's input and back. A numeric column is scaled by
  :mod:`aekit.preprocess`'s scaler (statistics over its observed cells); a categorical column becomes
  one-hot dummies over its categories (the ``MAX_CATEGORIES - 1`` most frequent, the rest pooled in
  ``OTHER``; a column of one category gets ``OTHER`` beside it, for any other value). A missing cell
  is NaN in the encoded rows (all of a categorical column's dummies): the model reads it as its slots'
  training means (``input_fill``: the column's mean after scaling, the categories' training frequencies),
  and the loss skips it. A category never seen in training encodes as all-zero dummies that are *not*
  missing: the model reads "no category", and the score counts it as evidence of an anomaly.

Numpy and pandas only; the loss over this layout is :class:`aekit.models.losses.TableLoss`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aekit import preprocess
from aekit.exceptions import InvalidInputError, InvalidParameterValue, ModelFileError, Parameter, Words, parameter_error
from aekit.imputation import LinearFill

# Categories kept per column: the most frequent MAX_CATEGORIES - 1, and OTHER for the rest (a one-hot
# group wider than this would dwarf the numeric columns in PCA and cost memory without telling more).
MAX_CATEGORIES = 32
OTHER = "(other)"
# A categorical column's cross-entropy is divided by the entropy of its training frequencies (see
# category_weights); an almost constant column's entropy is floored here so that its weight stays finite.
MIN_ENTROPY = 0.05
# Identifier-like columns: every value distinct, on at least this many rows (a handful of rows proves nothing).
MIN_IDENTIFIER_ROWS = 20
_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")


@dataclass
class ColumnPlan:
    """What each column of a table is: ``numeric`` and ``categorical`` names (in the table's order), and
    ``excluded``: the columns left out, each with its reason ("identifier", "date/time", "excluded")."""

    columns: list[str]
    numeric: list[str]
    categorical: list[str]
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def kept(self) -> list[str]:
        """The columns the model reads, in the table's order."""
        wanted = set(self.numeric) | set(self.categorical)
        return [name for name in self.columns if name in wanted]

    def summary(self) -> str:
        """One line: e.g. ``4 numeric, 3 categorical (species, island, sex); left out: id (identifier)``."""
        parts = [f"{len(self.numeric)} numeric"]
        if self.categorical:
            parts.append(f"{len(self.categorical)} categorical ({_preview(self.categorical)})")
        line = ", ".join(parts)
        if self.excluded:
            line += "; left out: " + _preview([f"{name} ({why})" for name, why in self.excluded.items()])
        return line


def _preview(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(str(name) for name in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def needs_table(X, categorical="from_dtype") -> bool:
    """True when ``X`` needs this module: a DataFrame with a non-numeric, boolean, identifier-like or date
    column, a ``categorical`` list, or any missing cell. A complete table of numbers does not (it trains as
    an array, exactly as before)."""
    if isinstance(categorical, (list, tuple, np.ndarray)) and len(categorical):
        return True
    if isinstance(X, pd.DataFrame):
        plan = plan_columns(X, categorical=categorical)
        if plan.categorical or plan.excluded:
            return True
        return any(bool(X.iloc[:, i].isna().any()) for i, name in enumerate(plan.columns) if name in plan.numeric)
    try:
        values = np.asarray(X)
    except (TypeError, ValueError):
        return False
    return values.ndim == 2 and values.dtype.kind == "f" and bool(np.isnan(values).any())


def _plain_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def plan_columns(frame: pd.DataFrame, *, categorical="from_dtype", exclude: Sequence[str] = ()) -> ColumnPlan:
    """Decide the type of each column of ``frame`` (see :class:`ColumnPlan`).

    Rules, in order: a column in ``exclude`` is left out; a date/time column (a datetime or duration
    dtype, or text that all reads as ISO dates, ``2024-05-01...``) is left out; a column named in
    ``categorical`` (a list of names) is categorical; text, pandas ``category`` and boolean columns are
    categorical (``categorical="from_dtype"``, as scikit-learn's ``HistGradientBoosting*``), unless every
    value is distinct on at least ``MIN_IDENTIFIER_ROWS`` rows (an identifier, left out); text that all
    reads as numbers is numeric; an integer
    column whose values are distinct and consecutive on that many rows (0, 1, 2, ... in any order) is an
    identifier too; the other columns are numeric.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"id": range(30), "size": [1.5] * 30, "kind": ["a", "b", "c"] * 10})
    >>> plan_columns(frame).summary()
    '1 numeric, 1 categorical (kind); left out: id (identifier)'
    """
    names = [str(name) for name in frame.columns]
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise InvalidInputError(f"The table's column names repeat ({', '.join(map(repr, repeated))}). Give each "
                                "column its own name.")
    listed = _listed_columns(categorical, names)
    unknown = [name for name in exclude if name not in names]
    if unknown:
        raise InvalidParameterValue(f"Columns to exclude that the table lacks: {', '.join(unknown)}. The table's "
                                    f"columns are: {_preview(names, 12)}.")
    numeric, categories, excluded = [], [], {}
    for position, name in enumerate(names):
        series = frame.iloc[:, position]
        if name in exclude:
            excluded[name] = "excluded"
        elif _is_date(series):
            excluded[name] = "date/time"
        elif name in listed:
            categories.append(name)
        elif not _plain_number(series) and _number_text(series):
            numeric.append(name)
        elif not _plain_number(series):
            if _all_distinct(series) and not pd.api.types.is_bool_dtype(series.dtype):
                excluded[name] = "identifier"
            else:
                categories.append(name)
        elif _is_sequence(series):
            excluded[name] = "identifier"
        else:
            numeric.append(name)
    return ColumnPlan(names, numeric, categories, excluded)


def _listed_columns(categorical, names: list[str]) -> set[str]:
    if categorical is None or (isinstance(categorical, str) and categorical == "from_dtype"):
        return set()
    if isinstance(categorical, str):
        raise parameter_error("categorical", categorical, "'from_dtype', None or a list of column names",
                              of="Autoencoder")
    listed = [str(name) for name in categorical]
    unknown = [name for name in listed if name not in names]
    if unknown:
        raise InvalidParameterValue(Words(Parameter("categorical"), " names columns the table lacks: "
                                          f"{', '.join(unknown)}. The table's columns are: {_preview(names, 12)}."),
                                    param="categorical", value=categorical)
    return set(listed)


def _number_text(series: pd.Series) -> bool:
    """Text that all reads as numbers (``"1.5"``): a numeric column."""
    if pd.api.types.is_bool_dtype(series.dtype) or isinstance(series.dtype, pd.CategoricalDtype):
        return False
    try:
        pd.to_numeric(series.dropna())
    except (TypeError, ValueError):
        return False
    return True


def _is_date(series: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(series.dtype) or pd.api.types.is_timedelta64_dtype(series.dtype):
        return True
    if _plain_number(series) or pd.api.types.is_bool_dtype(series.dtype):
        return False
    values = series.dropna()
    return len(values) > 0 and all(isinstance(v, str) and _DATE_TEXT.match(v) for v in values.iloc[:1000])


def _all_distinct(series: pd.Series) -> bool:
    values = series.dropna()
    return len(series) >= MIN_IDENTIFIER_ROWS and len(values) == len(series) and values.nunique() == len(values)


def _is_sequence(series: pd.Series) -> bool:
    if not pd.api.types.is_integer_dtype(series.dtype) or not _all_distinct(series):
        return False
    values = series.to_numpy()
    return int(values.max()) - int(values.min()) == len(values) - 1


def as_text(series: pd.Series) -> pd.Series:
    """A categorical column's values as the text the model knows them by (NaN stays missing): ``True``,
    ``"adelie"``, and integral numbers without a decimal point (``3``, not ``3.0``)."""
    def text(value) -> str:
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value)

    missing = series.isna().to_numpy()
    values = np.array([None if gap else text(v) for v, gap in zip(series.to_numpy(dtype=object), missing,
                                                                    strict=True)], dtype=object)
    return pd.Series(values, index=series.index, dtype=object)


def category_weights(frequencies: np.ndarray) -> float:
    """The weight of a categorical column's cross-entropy: 1 over the entropy (nats) of its training
    frequencies, at least ``MIN_ENTROPY``.

    Always predicting the training frequencies costs that entropy in cross-entropy, as always predicting
    the mean costs a standardised numeric column 1 in squared error: weighted so, each original column
    counts the same to a model that has learned nothing, whatever its number of categories.

    Examples
    --------
    >>> round(category_weights(np.array([0.5, 0.5])), 4)  # 1 / log 2
    1.4427
    """
    p = frequencies[frequencies > 0]
    return 1.0 / max(float(-(p * np.log(p)).sum()), MIN_ENTROPY)


@dataclass
class TableEncoder:
    """A fitted table encoding (see the module): the plan, the numeric scaler, each categorical column's
    categories and weight. Build it with :meth:`fit`; save it with :meth:`to_dict`.
    """

    plan: ColumnPlan
    scaler_name: str | None
    scaler: object = None
    categories: dict[str, list[str]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    n_rows: int = 0
    input_fill: list[float] | None = None  # what the model reads for a missing cell, per slot (set by fit)
    # the linear fill of missing cells and its blend with the model's (aekit.imputation), set after training
    fill: LinearFill | None = None

    @classmethod
    def fit(cls, frame: pd.DataFrame, plan: ColumnPlan, scaler_name: str | None) -> TableEncoder:
        """The encoding of ``frame``'s columns as ``plan`` types them."""
        encoder = cls(plan, scaler_name, n_rows=len(frame))
        numeric = encoder._numeric_values(frame)
        observed = np.isfinite(numeric).any(axis=0) if len(numeric) else np.zeros(numeric.shape[1], bool)
        for name, seen in zip(plan.numeric, observed, strict=True):
            if not seen:
                raise InvalidInputError(f"Column {name!r} has no value in any row: nothing to learn from. Drop it "
                                        "(--exclude-columns / exclude it from the table).")
        if plan.numeric:
            encoder.scaler = preprocess.fit_observed(scaler_name, numeric)
        for name in plan.categorical:
            counts = as_text(frame[name]).value_counts()
            if counts.empty:
                raise InvalidInputError(f"Column {name!r} has no value in any row: nothing to learn from. Drop it.")
            kept = [str(c) for c in counts.index[: MAX_CATEGORIES - 1 if len(counts) > MAX_CATEGORIES else None]]
            frequencies = counts.to_numpy(dtype=np.float64)[: len(kept)]
            if len(kept) < len(counts) or len(kept) == 1:  # the rare ones; or, beside one category, any other
                kept.append(OTHER)
                frequencies = np.append(frequencies, counts.to_numpy(dtype=np.float64)[len(kept) - 1 :].sum())
            encoder.categories[name] = kept
            encoder.weights[name] = category_weights(frequencies / frequencies.sum())
        # a missing cell enters as its slots' training means: the neutral input (PCA's imputation), where 0
        # would read as "no category", an input no training row has
        encoder.input_fill = [float(v) for v in np.nanmean(encoder.encode(frame), axis=0)]
        return encoder

    # ------------------------------------------------------------------ layout
    @property
    def columns(self) -> list[str]:
        """The user's columns the model reads, in the table's order (one error, one share, each)."""
        return self.plan.kept

    def layout(self) -> list[tuple[str, int, int]]:
        """Each column's slice of the encoded row: ``(name, start, stop)``; numeric ones are one wide."""
        slices, start = [], 0
        for name in self.columns:
            width = len(self.categories[name]) if name in self.categories else 1
            slices.append((name, start, start + width))
            start += width
        return slices

    def slot_columns(self) -> np.ndarray:
        """Each slot's column: its index in :attr:`columns`."""
        return np.repeat(np.arange(len(self.columns)), [stop - start for _, start, stop in self.layout()])

    @property
    def width(self) -> int:
        """Values in an encoded row."""
        return self.layout()[-1][2] if self.columns else 0

    def unseen_penalty(self) -> float:
        """The cross-entropy of a category not seen in training: ``log(n + 1)`` for ``n`` training rows,
        Laplace's rule of succession (a value absent from ``n`` draws has probability ``1 / (n + 1)``)."""
        return float(np.log(self.n_rows + 1.0))

    # ------------------------------------------------------------------ encoding
    def frame(self, X) -> pd.DataFrame:
        """``X`` as a table with the columns this encoding reads (a DataFrame by name; an array by position)."""
        if isinstance(X, pd.DataFrame):
            names = [str(name) for name in X.columns]
            missing = [name for name in self.columns if name not in names]
            if missing:
                raise InvalidInputError(f"The table lacks the column(s) {', '.join(missing)} the model was trained "
                                        f"on. It has: {_preview(names, 12)}.")
            return X.set_axis(names, axis=1)
        values = np.asarray(X, dtype=object if self.categories else np.float64)
        if values.ndim != 2 or values.shape[1] != len(self.plan.columns):
            raise InvalidInputError(f"X must have the {len(self.plan.columns)} columns the model was trained on "
                                    f"({_preview(self.plan.columns)}); got shape {values.shape}.")
        return pd.DataFrame(values, columns=self.plan.columns)

    def _numeric_values(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.plan.numeric:
            return np.empty((len(frame), 0))
        try:
            values = frame[self.plan.numeric].apply(pd.to_numeric).to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as error:
            raise InvalidInputError(f"A numeric column holds text: {error}. Give numbers, or type the column as "
                                    "categorical.") from None
        if np.isinf(values).any():
            column = self.plan.numeric[int(np.flatnonzero(np.isinf(values).any(axis=0))[0])]
            raise InvalidInputError(f"Column {column!r} holds an infinite value. Replace it (or leave the cell "
                                    "empty: missing cells are handled).")
        return values

    def encode(self, X) -> np.ndarray:
        """Encoded rows of ``X``: float32 (n, ``width``), NaN where a cell is missing (see the module)."""
        frame = self.frame(X)
        numeric = self._numeric_values(frame)
        observed = ~np.isnan(numeric)
        if self.scaler is not None and numeric.shape[1]:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # reported below
                numeric = self.scaler.transform(numeric)  # NaN stays NaN
        with np.errstate(over="ignore"):
            numeric = numeric.astype(np.float32)
        if not np.isfinite(numeric[observed]).all():  # an observed cell must not read as missing or infinite
            column = self.plan.numeric[int(np.flatnonzero(~(np.isfinite(numeric) | ~observed).all(axis=0))[0])]
            raise InvalidInputError(
                f"Column {column!r} holds values too large for float32 after scaling, or its spread is below "
                "float32's smallest number (~1e-38): check that X is in the training data's units, or rescale it.")
        out = np.zeros((len(frame), self.width), dtype=np.float32)
        numeric_at = 0
        for name, start, stop in self.layout():
            if name not in self.categories:
                out[:, start] = numeric[:, numeric_at]
                numeric_at += 1
                continue
            text = as_text(frame[name])
            known = self.categories[name]
            index = pd.Index(known).get_indexer(text.fillna("").to_numpy())  # -1: missing or unknown
            if OTHER in known:  # a rare category of training goes with the other rare ones
                index = np.where((index < 0) & text.notna().to_numpy(), known.index(OTHER), index)
            rows = np.flatnonzero(index >= 0)
            out[rows, start + index[rows]] = 1.0
            out[text.isna().to_numpy(), start:stop] = np.nan
        return out

    def unseen(self, X) -> pd.DataFrame:
        """For each categorical column, each row's value when it is a category never seen in training, else None."""
        frame = self.frame(X)
        result = {}
        for name, known in self.categories.items():
            if OTHER in known:
                result[name] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
                continue
            text = as_text(frame[name])
            result[name] = text.where(~text.isin(known) & text.notna(), None)
        return pd.DataFrame(result, index=frame.index)

    def decode(self, encoded: np.ndarray, *, index=None) -> pd.DataFrame:
        """The user's columns from encoded values (a reconstruction): numeric ones unscaled, categorical ones
        the most likely category."""
        columns: dict[str, np.ndarray] = {}
        numeric_slots = [start for name, start, _ in self.layout() if name not in self.categories]
        numeric = encoded[:, numeric_slots].astype(np.float64)
        if self.scaler is not None and numeric.shape[1]:
            numeric = self.scaler.inverse_transform(numeric)
        numeric_at = 0
        for name, start, stop in self.layout():
            if name in self.categories:
                known = np.asarray(self.categories[name], dtype=object)
                columns[name] = known[np.argmax(encoded[:, start:stop], axis=1)] if len(encoded) else known[:0]
            else:
                columns[name] = numeric[:, numeric_at]
                numeric_at += 1
        return pd.DataFrame(columns, index=index)

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict:
        """JSON-ready state (the plan, the scaler's statistics, the categories and weights)."""
        return {
            "columns": self.plan.columns, "numeric": self.plan.numeric, "categorical": self.plan.categorical,
            "excluded": self.plan.excluded, "scaler": preprocess.scaler_state(self.scaler),
            "scaler_name": self.scaler_name, "categories": self.categories, "weights": self.weights,
            "n_rows": self.n_rows, "input_fill": self.input_fill,
            "fill": None if self.fill is None else self.fill.to_dict(),
        }

    @classmethod
    def from_dict(cls, state: dict) -> TableEncoder:
        """Rebuild a fitted encoding from :meth:`to_dict`'s state, checking its fields."""
        try:
            plan = ColumnPlan([str(c) for c in state["columns"]], [str(c) for c in state["numeric"]],
                              [str(c) for c in state["categorical"]], {str(k): str(v) for k, v in
                                                                        state["excluded"].items()})
            categories = {str(name): [str(c) for c in values] for name, values in state["categories"].items()}
            weights = {str(name): float(w) for name, w in state["weights"].items()}
            encoder = cls(plan, state["scaler_name"], categories=categories, weights=weights,
                          n_rows=int(state["n_rows"]), input_fill=[float(v) for v in state["input_fill"]])
            ok = (set(categories) == set(weights) == set(plan.categorical) and all(categories.values())
                  and all(np.isfinite(w) and w > 0 for w in weights.values())
                  and set(plan.kept) == set(plan.numeric) | set(plan.categorical)
                  and len(encoder.input_fill) == encoder.width and np.isfinite(encoder.input_fill).all())
            if state.get("fill") is not None:
                encoder.fill = LinearFill.from_dict(state["fill"])
                # the stored fill is impute's: it blends by one measured weight per column
                ok = ok and encoder.fill.width == encoder.width and (
                    encoder.fill.model_weight is not None and len(encoder.fill.model_weight) == len(plan.kept))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ModelFileError(f"The table state is malformed ({error!r}). The model folder is corrupt: save "
                                 "the model again.") from None
        if not ok:
            raise ModelFileError("The table state's columns, categories and weights disagree. The model folder is "
                                 "corrupt: save the model again.")
        if state.get("scaler") is not None:
            encoder.scaler = preprocess.scaler_from_state(state["scaler"], len(plan.numeric))
        return encoder
