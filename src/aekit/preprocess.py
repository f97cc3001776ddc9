"""Scalers: scikit-learn's own, with a state that can be saved without pickle.

numpy in, numpy out; no torch here. The fitted state of a scaler is a handful of arrays, which
`scaler_state` turns into plain lists (JSON) and `scaler_from_state` turns back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from aekit.exceptions import InvalidParameterValue, ModelFileError, did_you_mean

SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler}
# The fitted attributes each scaler needs to transform and inverse-transform, and their kinds.
_STATE_ARRAYS = {
    "standard": ("mean_", "var_", "scale_"),
    "minmax": ("min_", "scale_", "data_min_", "data_max_", "data_range_"),
}


def make_scaler(name: str | None) -> StandardScaler | MinMaxScaler | None:
    """Return an unfitted scikit-learn scaler for ``name`` ("standard", "minmax" or None).

    Examples
    --------
    >>> make_scaler("minmax")
    MinMaxScaler()
    >>> make_scaler(None) is None
    True
    """
    if name is None:
        return None
    if name not in SCALERS:
        raise InvalidParameterValue(
            f"The 'scaler' parameter must be one of {sorted(SCALERS)} or None. Got {name!r} instead."
            + did_you_mean(name, SCALERS)
        )
    return SCALERS[name]()


def scaler_state(name: str | None, scaler: Any) -> dict | None:
    """The fitted state of ``scaler`` as a JSON-ready dict (lists of floats)."""
    if name is None:
        return None
    state: dict[str, Any] = {"name": name, "n_features_in": int(scaler.n_features_in_)}
    for attribute in _STATE_ARRAYS[name]:
        value = getattr(scaler, attribute)
        state[attribute] = None if value is None else np.asarray(value, dtype=np.float64).tolist()
    state["n_samples_seen"] = int(np.max(scaler.n_samples_seen_)) if name == "standard" else None
    return state


def scaler_from_state(state: dict | None, n_features: int) -> StandardScaler | MinMaxScaler | None:
    """Rebuild a fitted scaler from :func:`scaler_state`'s dict, checking every field."""
    if state is None:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("name"), str) or state["name"] not in SCALERS:
        raise ModelFileError(
            f"The scaler state must be an object with 'name' in {sorted(SCALERS)}; got {state!r:.200}. "
            "The model folder is corrupt: save the model again."
        )
    name = state["name"]
    scaler = SCALERS[name]()
    for attribute in _STATE_ARRAYS[name]:
        value = state.get(attribute)
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ModelFileError(
                f"Scaler field {attribute!r} is not a list of numbers ({error}). "
                "The model folder is corrupt: save the model again."
            ) from None
        if array.shape != (n_features,) or not np.all(np.isfinite(array)):
            raise ModelFileError(
                f"Scaler field {attribute!r} must be {n_features} finite numbers; got shape {array.shape}. "
                "The model folder is corrupt: save the model again."
            )
        if attribute == "scale_" and not np.all(array != 0):  # fitted scalers never divide by zero
            raise ModelFileError(
                "Scaler field 'scale_' holds zeros, which would divide by zero. "
                "The model folder is corrupt: save the model again."
            )
        setattr(scaler, attribute, array)
    scaler.n_features_in_ = n_features
    scaler.n_samples_seen_ = state.get("n_samples_seen") if name == "standard" else 1
    if name == "standard":
        scaler.with_mean = scaler.with_std = True
    return scaler
