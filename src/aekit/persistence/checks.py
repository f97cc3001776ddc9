"""Checks of a model folder's contents, from the JSON alone where possible, before anything is built.

Every check raises :class:`~aekit.exceptions.ModelFileError` with one line naming the field and the value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch

from aekit import detect
from aekit.exceptions import ModelFileError
from aekit.models import build_model
from aekit.models.losses import OUTPUT_ACTIVATION
from aekit.persistence.files import DAMAGED, WEIGHTS, expect, is_count
from aekit.training.precision import RESOLVED_PRECISIONS

# Bounds on a module description, checked from config.json alone before anything is built or read:
# no aekit architecture has more layers than this in one list, or layers wider than this.
MAX_LAYERS = 256
MAX_WIDTH = 2**31
MAX_DEPTH = 4  # lists in lists: a module description holds lists of sizes, and no deeper
# The fitted attributes config.json's "fitted" may hold (see aekit.estimator.state.saved_state).
FITTED_KEYS = frozenset({"n_features_in", "feature_names_in", "loss", "threshold", "n_iter", "seed", "precision",
                         "score_quantiles", "score_state", "window", "audio", "output_config", "table"})


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_conv_config(config: dict) -> None:
    shape = config.get("input_shape")
    expect(isinstance(shape, list) and len(shape) == 3 and all(is_count(s, 1, MAX_WIDTH) for s in shape),
            "the conv module's input_shape must be 3 ints >= 1")
    expect(math.prod(shape) == config.get("input_dim"), "the conv module's input_shape does not give its input_dim")


# A new architecture adds the checks of its own description here; every description also gets the
# generic bounds of bound_module_config (list lengths and integer sizes) and the weights-size check.
ARCHITECTURE_CHECKS: dict[str, Callable[[dict], None]] = {"conv": check_conv_config}


def bound_module_config(config: Any, where: str = "module", depth: int = 0) -> None:
    """Refuse, from the JSON alone, a module description too big (or too deeply nested) for any aekit architecture."""
    expect(depth <= MAX_DEPTH, f"{where} nests lists or objects more than {MAX_DEPTH} deep; aekit writes sizes "
                               "and lists of sizes")
    if isinstance(config, dict):
        for key, value in config.items():
            bound_module_config(value, f"{where}.{key}" if key.isprintable() else f"{where}[{key!r}]", depth + 1)
    elif isinstance(config, list):
        expect(len(config) <= MAX_LAYERS, f"{where} lists {len(config)} layers; aekit models have at most "
                                           f"{MAX_LAYERS}")
        for value in config:
            bound_module_config(value, where, depth + 1)
    elif isinstance(config, int) and not isinstance(config, bool):
        expect(0 <= config <= MAX_WIDTH, f"{where} is {config}; sizes must be in [0, {MAX_WIDTH}]")


def expected_weights(module_config: dict, weights_entry: dict) -> dict[str, torch.Tensor]:
    """The architecture's tensors, built on the meta device (no memory), after checks from the JSON alone.

    A description with too many or too wide layers is refused before anything is built, and one whose
    tensors do not fit the weights file's recorded size before that file is read.
    """
    bound_module_config(module_config)
    check = ARCHITECTURE_CHECKS.get(module_config.get("architecture"))
    if check is not None:
        check(module_config)
    try:
        with torch.device("meta"):
            expected = build_model(**module_config).state_dict()
    except (TypeError, ValueError, RuntimeError) as error:  # RuntimeError: sizes that overflow
        reason = str(error).encode("unicode_escape").decode("ascii")[:200]  # one line, whatever the keys hold
        raise ModelFileError(f"config.json: the module description is invalid ({reason}). {DAMAGED}") from None
    needed = sum(t.numel() * t.element_size() for t in expected.values())
    header_allowance = 8 + 4096 + 512 * len(expected)  # the JSON header: names, shapes, offsets, metadata
    size = weights_entry.get("bytes")
    if is_count(size) and not needed <= size <= needed + header_allowance:
        shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in list(expected.items())[:4])
        raise ModelFileError(
            f"{WEIGHTS} is {size} bytes, but the architecture in config.json needs {needed} bytes of weights "
            f"({shapes}, ...). {DAMAGED}"
        )
    return expected


def load_weights(data: bytes, module_config: dict, expected: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Check the tensors against the architecture's (``expected``, on the meta device), then build and load."""
    try:
        tensors = safetensors.torch.load(data)
    except (safetensors.SafetensorError, RuntimeError, ValueError, OverflowError, MemoryError) as error:
        raise ModelFileError(f"{WEIGHTS} is not a valid safetensors file ({str(error)[:160]}). {DAMAGED}") from None
    if set(tensors) != set(expected):
        missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise ModelFileError(
            f"{WEIGHTS} does not match the architecture: missing tensors {missing[:6]}, "
            f"unexpected tensors {unexpected[:6]}. {DAMAGED}"
        )
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype:
            raise ModelFileError(
                f"{WEIGHTS}: tensor {name!r} has shape {tuple(tensor.shape)} and dtype {tensor.dtype}; the "
                f"architecture needs {tuple(expected[name].shape)} and {expected[name].dtype}. {DAMAGED}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(f"{WEIGHTS}: tensor {name!r} holds NaN or infinite values. {DAMAGED}")
    module = build_model(**module_config)
    module.load_state_dict(tensors)
    return module


def check_history(history: Any) -> dict:
    """history.json: the per-epoch losses and how training ended, each of the type ``info``/``plot`` read."""
    name = "history.json"
    expect(isinstance(history, dict), "must be an object", name)
    for key in ("train_loss", "val_loss"):
        values = history.get(key, [])
        expect(isinstance(values, list) and all(is_number(v) for v in values),
                f"{key!r} must be a list of numbers", name)
    for key in ("best_epoch", "n_epochs", "max_epochs", "steps_per_epoch"):
        expect(key not in history or is_count(history[key], 0, 2**32), f"{key!r} must be an integer >= 0", name)
    expect(not isinstance(history.get("stop_reason", ""), bool) and isinstance(history.get("stop_reason", ""), str),
            "'stop_reason' must be a string", name)
    seconds = history.get("seconds", 0.0)
    expect(is_number(seconds) and math.isfinite(seconds) and seconds >= 0, "'seconds' must be a number >= 0", name)
    return history


def check_environment(environment: Any) -> dict:
    expect(isinstance(environment, dict) and all(
        value is None or isinstance(value, (str, int, float, bool)) for value in environment.values()
    ), "must be an object of names and plain values (versions, seed)", "environment.json")
    return environment


def check_fitted(fitted: dict, n_features: int) -> None:
    names = fitted.get("feature_names_in")
    expect(
        names is None
        or (isinstance(names, list) and len(names) == n_features and all(isinstance(n, str) for n in names)
            and len(set(names)) == len(names)),  # a fit refuses repeated column names
        "feature_names_in must be null or one distinct string per feature",
    )
    expect(fitted.get("loss") in ("mse", "bce"), f"loss is {fitted.get('loss')!r}")
    unknown_fitted = set(fitted) - FITTED_KEYS
    expect(not unknown_fitted, f"unknown fitted attributes {sorted(unknown_fitted)}")
    expect(fitted.get("precision") in RESOLVED_PRECISIONS,
           f"precision is {fitted.get('precision')!r:.40}, not one of {RESOLVED_PRECISIONS}")
    threshold = fitted.get("threshold")
    expect(
        is_number(threshold) and math.isfinite(threshold) and threshold >= 0,
        f"threshold must be a finite number >= 0 (an outlier score), got {threshold!r:.40}",
    )
    for key in ("n_iter", "seed"):
        expect(is_count(fitted.get(key), 0, 2**32), f"{key} must be an integer in [0, 2**32), got "
                                                      f"{fitted.get(key)!r:.40}")
    quantiles = fitted.get("score_quantiles")
    expect(
        isinstance(quantiles, list) and len(quantiles) >= 2 and all(is_number(q) for q in quantiles)
        and all(math.isfinite(q) and q >= 0 for q in quantiles) and bool(np.all(np.diff(quantiles) >= 0)),
        "score_quantiles must be a non-decreasing list of finite numbers >= 0",
    )


# The module description's keys that repeat a constructor argument (the conv model's channels are hidden_dims).
MODULE_PARAMS = {"activation": "activation", "hidden_dims": "hidden_dims", "channels": "hidden_dims",
                 "input_shape": "input_shape"}


def check_module_matches_params(module_config: dict, params: dict, loss: str) -> None:
    """The module description and the constructor arguments must describe the same model."""
    expect(module_config.get("architecture") == params.get("architecture", "mlp"),
            f"the module's architecture {module_config.get('architecture')!r} differs from the parameter "
            f"architecture={params.get('architecture', 'mlp')!r}")
    # "auto" chose the module's latent_dim from the data: any size fits it
    expect(params.get("latent_dim") == "auto" or module_config.get("latent_dim") == params.get("latent_dim"),
            f"the module's latent_dim {module_config.get('latent_dim')!r} differs from the parameter "
            f"latent_dim={params.get('latent_dim')!r}")
    for key, param in MODULE_PARAMS.items():
        if key in module_config:
            given = params.get(param)
            given = list(given) if isinstance(given, (list, tuple)) else given
            expect(module_config[key] == given, f"the module's {key} {module_config[key]!r:.60} differs from the "
                                                f"parameter {param}={given!r:.60}")
    expect(module_config.get("output_activation") == OUTPUT_ACTIVATION[loss],
            f"the module's output_activation {module_config.get('output_activation')!r} does not go with the "
            f"{loss} loss")


_SERIES_PARAMS = {"window", "stride", "normalize", "contamination"}
_WINDOW_RULES = {"given", "period", "no period"}


def check_series_state(window, n_features: int) -> None:
    """A :class:`~aekit.SeriesAutoencoder`'s state (``series_state()``), bounded by what a fit writes."""
    if window is None:
        return
    what = "window must be null or a series model's state"
    expect(isinstance(window, dict) and set(window) == {"params", "window", "stride", "columns", "window_rule",
                                                         "threshold", "score_quantiles", "level"},
           f"{what}: {{params, window, stride, columns, window_rule, threshold, score_quantiles, level}} (a model "
           "saved by an older aekit's --window: refit it)")
    length, stride, columns, rule = window["window"], window["stride"], window["columns"], window["window_rule"]
    expect(is_count(length, 2, n_features + 1) and n_features % length == 0 and is_count(stride, 1, 2**31),
           f"{what}: window and stride must be integers, window x channels = n_features_in ({n_features})")
    channels = n_features // length
    expect(columns is None or (isinstance(columns, list) and len(columns) == channels
                               and all(isinstance(c, str) for c in columns)),
           f"{what}: columns must be null or {channels} channel names")
    params = window["params"]
    expect(isinstance(params, dict) and set(params) == _SERIES_PARAMS
           and (params["window"] == "auto" or params["window"] == length)
           and (params["stride"] == "auto" or params["stride"] == stride)
           and params["normalize"] in (None, "level", "zscore")
           and (params["contamination"] == "auto"
                or (is_number(params["contamination"]) and 0 < params["contamination"] <= 0.5)),
           f"{what}: params must be {sorted(_SERIES_PARAMS)} agreeing with the window and stride")
    expect(isinstance(rule, dict) and rule.get("rule") in _WINDOW_RULES and rule.get("window") == length
           and set(rule) <= {"window", "rule", "autocorrelation", "bounds"}
           and (rule.get("autocorrelation") is None or is_number(rule["autocorrelation"]))
           and (rule.get("bounds") is None or (isinstance(rule["bounds"], list) and len(rule["bounds"]) == 2
                                               and all(is_count(v, 1, 2**31) for v in rule["bounds"]))),
           f"{what}: window_rule must say how the window of {length} steps was chosen")
    level = window["level"]
    expect((level is None) == (params["normalize"] is None), f"{what}: level must be null exactly when normalize is")
    expect(level is None or (
        isinstance(level, dict) and set(level) == {"center", "spread", "shape_scale", "level_scale"}
        and all(isinstance(level[key], list) and len(level[key]) == channels
                and all(is_number(v) and math.isfinite(v) for v in level[key]) for key in ("center", "spread"))
        and all(v > 0 for v in level["spread"])
        and all(is_number(level[key]) and math.isfinite(level[key]) and level[key] > 0
                for key in ("shape_scale", "level_scale"))),
        f"{what}: level must hold {channels} finite centers and spreads > 0, and shape_scale and level_scale > 0")
    threshold, quantiles = window["threshold"], window["score_quantiles"]
    expect(is_number(threshold) and math.isfinite(threshold) and threshold >= 0,
           f"{what}: threshold must be a finite number >= 0")
    expect(isinstance(quantiles, list) and len(quantiles) == 1001 and all(is_number(q) for q in quantiles)
           and all(math.isfinite(q) and q >= 0 for q in quantiles) and bool(np.all(np.diff(quantiles) >= 0)),
           f"{what}: score_quantiles must be 1001 non-decreasing finite numbers >= 0")


# ----------------------------------------------------------------------------------------- the outlier score's state
# score_state as aekit.detect.fit_score_state writes it: each array's shape, in the sizes n (features), d (latent
# dimensions), m (modes, 1 to detect.LATENT_MODES) and r (the codes' rank, 0 to d), and the range a fit can give its
# values. A file outside them is refused: each array then costs what a fitted one does, and every finite row gets a
# finite score (a variance of 1e-300 or a whitening of 1e300 would make them inf or NaN).
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_MAX_WHITENING = 1.000001 / math.sqrt(detect.MIN_CODE_VARIANCE)  # unit eigenvectors over the root of an eigenvalue
_MAX_MODE_MEAN = 1e6  # whitened codes: unit variance, so a mean within sqrt(rows) of 0
_MAX_MODE_VARIANCE = 1e6  # a mode's share of the unit variance, over its weight (>= detect.MODE_MIN_SHARE)


def _score_state_fields(latent_dim: int) -> dict[str, tuple[tuple[str, ...], float, float]]:
    """score_state's fields: ``name: (shape, low, high)``; ``code_scale`` is the codes' rank, ``latent_divisor``
    ``sqrt(2 code_scale)``."""
    rank = max(latent_dim, 1)
    return {
        "feature_scale": (("n",), detect.MIN_FEATURE_SCALE, _FLOAT32_MAX),  # a mean squared float32 error, floored
        "code_mean": (("d",), -_FLOAT32_MAX, _FLOAT32_MAX),  # the mean of float32 codes
        "code_scale": ((), detect.MIN_FEATURE_SCALE, rank),
        "latent_divisor": ((), detect.MIN_FEATURE_SCALE, math.sqrt(2.0 * rank)),
    }


LATENT_MODES_FIELDS: dict[str, tuple[tuple[str, ...], float, float]] = {
    "whitening": (("d", "r"), -_MAX_WHITENING, _MAX_WHITENING),
    "weights": (("m",), detect.MODE_MIN_SHARE, 1.0),  # smaller modes are left out by the fit
    "means": (("m", "r"), -_MAX_MODE_MEAN, _MAX_MODE_MEAN),
    "variances": (("m", "r"), detect.MODE_VARIANCE_FLOOR / 2, _MAX_MODE_VARIANCE),  # reg_covar, less rounding
}
_SIZE_LIMITS = {"m": (1, detect.LATENT_MODES), "r": (0, None)}  # r: at most d


def _checked_array(value: Any, shape: tuple[str, ...], sizes: dict[str, int], low: float, high: float,
                   where: str) -> None:
    """``value`` must be nested lists of numbers of ``shape`` (sizes known in ``sizes``, the others bound there on
    first sight within ``_SIZE_LIMITS``), each in [low, high]. Lengths are checked before any element is read."""
    def length_ok(items: Any, axis: int) -> bool:
        name = shape[axis]
        if not isinstance(items, list):
            return False
        if name not in sizes:
            smallest, largest = _SIZE_LIMITS[name]
            largest = sizes["d"] if largest is None else largest
            expect(smallest <= len(items) <= largest, f"score_state.{where} has {len(items)} entries along its "
                                                      f"{'modes' if name == 'm' else 'rank'} axis; a fit writes "
                                                      f"{smallest} to {largest}")
            sizes[name] = len(items)
        return len(items) == sizes[name]

    def message() -> str:  # the sizes as far as they are known
        return (f"score_state.{where} must be {' x '.join(shape) or 'one'} number(s) "
                f"({' x '.join(str(sizes.get(n, n)) for n in shape)}) in [{low:.3g}, {high:.3g}]")

    if not shape:
        expect(is_number(value) and low <= value <= high, f"{message()}, got {value!r:.40}")
        return
    expect(length_ok(value, 0), f"{message()}, got {type(value).__name__} of another shape")
    rows = value if len(shape) == 2 else [value]
    expect(all(length_ok(row, len(shape) - 1) for row in rows), f"{message()}: its rows differ in length")
    expect(all(is_number(v) for row in rows for v in row), f"{message()}: it holds other values than numbers")
    expect(all(low <= v <= high for row in rows for v in row), f"{message()}: it holds values out of that range")


def check_score_state(state: Any, n_features: int, latent_dim: int) -> detect.ScoreState:
    """The combined score's saved state, every field checked against what a fit writes (see above), then built."""
    expect(isinstance(state, dict), "score_state must be an object")
    fields = _score_state_fields(latent_dim)
    unknown = set(state) - set(fields) - {"latent_modes"}
    expect(not unknown, f"score_state holds unknown keys {sorted(unknown)[:5]}")
    missing = {*fields, "latent_modes"} - set(state)
    expect(not missing, f"score_state lacks {sorted(missing)}")
    sizes = {"n": n_features, "d": latent_dim}
    for name, (shape, low, high) in fields.items():
        _checked_array(state[name], shape, sizes, low, high, name)
    modes = state["latent_modes"]
    expect(isinstance(modes, dict) and set(modes) == set(LATENT_MODES_FIELDS),
           f"score_state.latent_modes must be an object of exactly {sorted(LATENT_MODES_FIELDS)}")
    for name, (shape, low, high) in LATENT_MODES_FIELDS.items():
        _checked_array(modes[name], shape, sizes, low, high, f"latent_modes.{name}")
    expect(sum(modes["weights"]) <= 1.0 + 1e-9, "score_state.latent_modes.weights sum to more than 1")
    return detect.ScoreState.from_dict(state)
