"""The estimator's parameters and inputs, checked as scikit-learn checks them, with messages that say what to do.

:data:`PARAMETER_CONSTRAINTS` is ``Autoencoder._parameter_constraints`` (parameters validated as data);
:func:`check_params` runs it and adds the closest valid option for a typo; :func:`validate_rows`
validates an ``X`` (arrays, DataFrames, tensors) into a float32 or float64 array, unscaled.
"""

from __future__ import annotations

import functools
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import assert_all_finite
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from aekit import detect, geometry, hardware
from aekit.exceptions import (
    InvalidInputError,
    InvalidInputTypeError,
    InvalidParameterValue,
    Parameter,
    Setting,
    Words,
    parameter_error,
    validate_parameters,
)
from aekit.models import ARCHITECTURES
from aekit.models.losses import OUTPUT_ACTIVATION
from aekit.models.mlp import ACTIVATIONS
from aekit.preprocess import SCALER_OPTIONS
from aekit.training.config import LR_SCHEDULES
from aekit.training.precision import PRECISIONS

PARAMETER_CONSTRAINTS: dict = {
    "latent_dim": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "hidden_dims": [list, tuple],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "loss": [StrOptions({"auto", *OUTPUT_ACTIVATION})],
    "scaler": [StrOptions(set(SCALER_OPTIONS)), None],
    "categorical": [StrOptions({"from_dtype"}), list, tuple, None],
    "architecture": [StrOptions(set(ARCHITECTURES))],
    "input_shape": [list, tuple, None],
    "epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "lr_schedule": [StrOptions(set(LR_SCHEDULES))],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "early_stopping": ["boolean"],
    "patience": [Interval(Integral, 1, None, closed="left")],
    "contamination": [Interval(Real, 0, 0.5, closed="right"), StrOptions({"auto"})],
    "anomaly_score": [StrOptions(set(detect.OUTLIER_SCORES))],
    "random_state": ["random_state"],
    "device": [str],
    "verbose": ["verbose"],
    "precision": [StrOptions(set(PRECISIONS))],
    "n_jobs": [Interval(Integral, None, -1, closed="right"), Interval(Integral, 1, None, closed="left"), None],
    "checkpoint_dir": [str, None],
    "checkpoint_every": [Interval(Integral, 1, None, closed="left")],
    "resume": ["boolean"],
    "geometry": [StrOptions(set(geometry.GEOMETRIES)), None],
    "geometry_weight": [Interval(Real, 0, None, closed="neither")],
    "geometry_neighbors": [Interval(Integral, 1, None, closed="left")],
}


# The parameters that take an int: a bool is refused, though Python counts it as one.
INTEGER_PARAMETERS = tuple(name for name, constraints in PARAMETER_CONSTRAINTS.items()
                           if any(isinstance(c, Interval) and c.type is Integral for c in constraints))


def check_params(estimator) -> None:
    """Validate ``estimator``'s parameters (scikit-learn's message, and the closest valid option for a typo)."""
    choices = set(ACTIVATIONS) | set(OUTPUT_ACTIVATION) | {"auto"} | set(SCALER_OPTIONS) | set(ARCHITECTURES)
    validate_parameters(estimator, choices | set(geometry.GEOMETRIES) | set(detect.OUTLIER_SCORES))
    for name in INTEGER_PARAMETERS:  # scikit-learn's Interval(Integral) takes True for 1
        if isinstance(getattr(estimator, name), bool):
            raise parameter_error(name, getattr(estimator, name), "an int, not a bool", of="Autoencoder")
    if not all(isinstance(h, Integral) and not isinstance(h, bool) and h >= 1 for h in estimator.hidden_dims):
        raise parameter_error("hidden_dims", estimator.hidden_dims, "a tuple of ints >= 1 (e.g. (256, 64))",
                              of="Autoencoder")
    if not estimator.hidden_dims and estimator.architecture in ("anchored", "conv"):
        raise InvalidParameterValue(
            problem=Words(Parameter("hidden_dims", of="Autoencoder"), " must hold at least one width for ",
                          Setting("architecture", estimator.architecture), " (its hidden layers or channels). Got () "
                          "instead."),
            hint=Words("Give e.g. (64,), or use ", Setting("architecture", "mlp"), " (no hidden layer) or 'linear'."),
            param="hidden_dims", value=estimator.hidden_dims)
    shape = estimator.input_shape
    if shape is not None and not (len(shape) == 3 and all(
            isinstance(s, Integral) and not isinstance(s, bool) and 1 <= s <= 2**31 for s in shape)):
        raise parameter_error("input_shape", shape, "None or 3 ints >= 1, (channels, height, width)", of="Autoencoder",
                              got=printable_value(shape))


def printable_value(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, without recursing into deeply nested lists."""
    if isinstance(value, (list, tuple)) and any(isinstance(v, (list, tuple, dict)) for v in value):
        return f"a {type(value).__name__} holding lists"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_rows(estimator, X, *, reset: bool) -> np.ndarray:
    """Validate ``X`` like scikit-learn (``reset``: as ``fit`` does, recording its features) and return it as
    a float32 or float64 array, unscaled: fitting and inference scale it batch by batch, without a
    scaled copy of all of it.
    """
    X = detached(X)
    check_dataframe_columns(X)
    try:
        X_valid = validate_data(estimator, X, reset=reset, dtype=[np.float64, np.float32],
                                ensure_min_samples=2 if reset else 1, ensure_all_finite=False)
    except (ValueError, TypeError) as error:  # TypeError: sparse X, mixed column-name types
        raise _unusable(X, error) from None
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # the check sums X, which may overflow: it raises below
            assert_all_finite(X_valid, input_name="X")
    except ValueError as error:  # sklearn's first line says which (NaN, infinity); the rest is about estimators
        raise InvalidInputError(f"{first_line(error)} Remove or impute missing values first (e.g. "
                                "sklearn.impute.SimpleImputer in a Pipeline) and replace infinite values.") from None
    return X_valid


def _unusable(X, error: ValueError | TypeError) -> InvalidInputError:
    """scikit-learn's refusal of ``X``, with what to do: the cause is found in ``X`` itself (complex
    numbers, values that are no numbers, rows of different lengths), as scikit-learn's errors carry no fields."""
    if isinstance(error, TypeError):
        return InvalidInputTypeError(" ".join(str(error).split()))
    try:
        values = np.asarray(X)
        if np.iscomplexobj(values):  # (scikit-learn's message would append the whole array)
            return InvalidInputError("Complex data not supported: aekit needs real numbers. Pass X.real, np.abs(X), "
                                     "or both.")
        values.astype(np.float64)
    except (ValueError, TypeError):  # text, or rows of different lengths
        return InvalidInputError(f"{first_line(error).rstrip('.')}. X must be a rectangular array of numbers: drop or "
                                 "encode text columns (e.g. sklearn.preprocessing.OneHotEncoder) and give every row "
                                 "the same length.")
    return InvalidInputError(" ".join(str(error).split()))


def first_line(error: Exception) -> str:
    """The first line of an error's message, on one line (a foreign error quoted in one of aekit's)."""
    return " ".join(str(error).strip().split("\n", 1)[0].split())


def detached(X):
    """A torch tensor as a NumPy array of its values, outside autograd (NumPy cannot read one that requires
    grad) and in its own precision (bfloat16, which NumPy lacks, as float32); anything else as given.

    The values are only read: codes and reconstructions come back as NumPy arrays, with no gradient.
    """
    if not isinstance(X, torch.Tensor):
        return X
    if X.device.type == "meta":
        raise InvalidInputError("X is a tensor on the meta device, which holds no values. Pass a tensor with data.")
    X = X.detach().cpu()
    return (X.float() if X.dtype == torch.bfloat16 else X).resolve_conj().resolve_neg().numpy()


def check_dataframe_columns(X) -> None:
    """Name the first non-numeric column of a DataFrame (sklearn would only say 'could not convert')."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(dtypes, "items"):
        return
    import pandas as pd

    for position, (column, dtype) in enumerate(dtypes.items()):
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            continue
        series = X.iloc[:, position]  # by position: X[column] is a frame when names repeat
        try:
            # dates and durations convert to nanosecond counts, which are no features
            if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
                raise TypeError
            pd.to_numeric(series)
        except (TypeError, ValueError):
            first = series.iloc[0] if len(X) else None
            raise InvalidInputError(
                f"Column {column!r} is not numeric (dtype {dtype}, first value {first!r}). Drop or encode it "
                "first (e.g. sklearn.preprocessing.OneHotEncoder), or select the numeric columns."
            ) from None


def in_threads(method):
    """Run an estimator method with ``n_jobs`` threads (see :func:`aekit.hardware.threads`)."""
    @functools.wraps(method)
    def in_threads(self, *args, **kwargs):
        # an invalid n_jobs (0, not an int, too many threads) is left to fit's parameter check, which names it
        valid = (isinstance(self.n_jobs, Integral) and not isinstance(self.n_jobs, bool) and self.n_jobs != 0
                 and self.n_jobs <= hardware.max_threads())
        with hardware.threads(self.n_jobs if valid else None):
            return method(self, *args, **kwargs)
    return in_threads
