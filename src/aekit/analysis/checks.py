"""Checks of the arguments :mod:`aekit.analysis` takes, with scikit-learn's wording, and the held-out split."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_array

from aekit.estimator import Autoencoder
from aekit.exceptions import InvalidInputError, parameter_error


def as_matrix(X, name: str, *, min_rows: int = 1) -> np.ndarray:
    """``X`` as a 2-D float array of finite numbers, or :class:`InvalidInputError` naming ``name``."""
    try:
        return check_array(X, dtype=[np.float64, np.float32], ensure_min_samples=min_rows, input_name=name)
    except ValueError as error:
        raise InvalidInputError(
            f"{name} cannot be used: {' '.join(str(error).split())} Pass a 2-D array of finite numbers."
        ) from None


def check_int(value, name: str, function: str, low: int, high: float = math.inf, why: str = "") -> int:
    """``value`` if it is an int in ``[low, high]``, else :class:`InvalidParameterValue` in scikit-learn's words."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= high:
        upper = "inf)" if high == math.inf else f"{int(high)}]"
        raise parameter_error(name, value, f"an int in the range [{low}, {upper}{why}", of=function)
    return int(value)


def check_fraction(value, name: str, function: str) -> float:
    """``value`` if it is a float in ``(0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < 1:
        raise parameter_error(name, value, "a float in the range (0, 1)", of=function)
    return float(value)


def check_template(template, name: str, function: str) -> Autoencoder:
    """``template`` if it is an :class:`~aekit.Autoencoder` (to be cloned)."""
    if not isinstance(template, Autoencoder):
        raise parameter_error(name, template, "an unfitted aekit.Autoencoder (it is cloned), or None for the default",
                              of=function, got=type(template).__name__)
    return template


def split_rows(X, X_val, heldout_fraction: float, random_state, function: str) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out rows: ``X`` and ``X_val`` when given, else a seeded split of ``X``."""
    X = as_matrix(X, "X", min_rows=2)
    if X_val is not None:
        X_val = as_matrix(X_val, "X_val")
        if X_val.shape[1] != X.shape[1]:
            raise InvalidInputError(
                f"X_val has {X_val.shape[1]} columns but X has {X.shape[1]}; both must hold the same features."
            )
        return X, X_val
    heldout_fraction = check_fraction(heldout_fraction, "heldout_fraction", function)
    X_train, X_heldout = train_test_split(X, test_size=heldout_fraction, random_state=random_state)
    if len(X_train) < 2:
        raise InvalidInputError(
            f"X has {len(X)} rows: too few to hold out {heldout_fraction:.0%} and train on the rest. "
            "Pass more rows, or the held-out rows as X_val."
        )
    return X_train, X_heldout
