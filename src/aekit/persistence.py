"""Model folders: JSON + safetensors, written atomically, loaded without executing anything.

A folder holds ``config.json`` (format version, constructor arguments, fitted attributes, model
architecture), ``weights.safetensors``, ``scaler.json``, ``history.json``, ``environment.json`` and
``manifest.json``, which is written last and records the size and SHA-256 of every other file. The
folder is built under a temporary name beside its destination and renamed into place, so a crash
mid-save leaves either the old folder or the new one; loading checks the manifest, so a truncated
or altered file is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import sklearn
import torch
from sklearn.utils.validation import check_is_fitted

from aekit._files import write_folder
from aekit._version import __version__
from aekit.detect import ScoreState
from aekit.estimator import Autoencoder, resolve_device
from aekit.exceptions import InvalidInputError, InvalidInputTypeError, InvalidParameterValue, ModelFileError
from aekit.models import build_model
from aekit.models.losses import OUTPUT_ACTIVATION
from aekit.preprocess import scaler_from_state, scaler_state

FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
MANIFEST = "manifest.json"
JSON_FILES = ("config.json", "scaler.json", "history.json", "environment.json")
MAX_JSON_BYTES = 64 * 2**20
# Bounds on a module description, checked from config.json alone before anything is built or read:
# no aekit architecture has more layers than this in one list, or layers wider than this.
MAX_LAYERS = 256
MAX_WIDTH = 2**31
_FIX = "The model folder is damaged or not an aekit model: save the model again."


# ---------------------------------------------------------------------------------------------- save
def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, allow_nan=True, sort_keys=False).encode("utf-8") + b"\n"


def _float_list(values) -> list[float] | None:
    return None if values is None else [float(value) for value in values]


def _folder_contents(estimator: Autoencoder) -> dict[str, bytes]:
    params = estimator.get_params(deep=False)
    if not (params["random_state"] is None or isinstance(params["random_state"], int)):
        params["random_state"] = None  # a RandomState object has no JSON form; seed_ records the seed used
    params["hidden_dims"] = [int(h) for h in params["hidden_dims"]]
    names = getattr(estimator, "feature_names_in_", None)
    config = {
        "format": "aekit-model",
        "format_version": FORMAT_VERSION,
        "estimator": type(estimator).__name__,
        "params": params,
        "module": estimator.module_.config(),
        "fitted": {
            "n_features_in": int(estimator.n_features_in_),
            "feature_names_in": None if names is None else [str(n) for n in names],
            "loss": estimator.loss_,
            "threshold": float(estimator.threshold_),
            "n_iter": int(estimator.n_iter_),
            "seed": int(estimator.seed_),
            "error_quantiles": _float_list(getattr(estimator, "error_quantiles_", None)),
            "score_state": state.to_dict() if (state := getattr(estimator, "score_state_", None)) else None,
            "window": getattr(estimator, "window_", None),
        },
    }
    output_config = getattr(estimator, "_sklearn_output_config", None)  # set_output(transform="pandas")
    if output_config:
        config["fitted"]["output_config"] = {key: str(value) for key, value in output_config.items()}
    environment = {
        "aekit": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seed": int(estimator.seed_),
    }
    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in estimator.module_.state_dict().items()}
    return {
        "config.json": _json_bytes(config),
        "scaler.json": _json_bytes(scaler_state(estimator.scaler, estimator.scaler_)),
        "history.json": _json_bytes(estimator.history_),
        "environment.json": _json_bytes(environment),
        WEIGHTS: _sorted_header(
            safetensors.torch.save(weights, metadata={"format": "pt", "aekit_format_version": str(FORMAT_VERSION)})
        ),
    }


def _sorted_header(data: bytes) -> bytes:
    """``data`` (a safetensors file) with its JSON header's keys sorted: the same model, the same bytes.

    safetensors writes its metadata in hash-map order, which differs from one process to the next; the
    sorted header has the same length (same keys and values, compact separators), so the offsets stand.
    """
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(text) > length:  # not safetensors' compact form: keep the file as it was written
        return data
    return data[:8] + text.ljust(length, b" ") + data[8 + length :]


def save_model(estimator: Autoencoder, path: str | os.PathLike, *, overwrite: bool = False,
               overwrite_option: str = "overwrite=True") -> Path:
    """Write ``estimator`` to the folder ``path`` atomically and return the path.

    Parameters
    ----------
    estimator : Autoencoder
        A fitted estimator.
    path : str or path-like
        The model folder to write.
    overwrite : bool, default=False
        Replace an existing aekit model folder. Whatever the setting, only a model folder (its manifest
        present and matching its files) or an empty folder is ever replaced, and only once the new one
        is complete; a file, a symbolic link or any other folder at ``path`` is refused.
    overwrite_option : str, default="overwrite=True"
        How the caller's user asks for a replacement, named in the error when ``path`` exists (the
        command line passes ``"--force"``).

    Raises
    ------
    InvalidInputError
        ``path`` exists and may not be replaced, or cannot be written.

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> X = np.random.default_rng(0).normal(size=(64, 5))
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> folder = save_model(ae, tempfile.mkdtemp() + "/model")
    >>> np.array_equal(aekit.load(folder).transform(X), ae.transform(X))
    True
    >>> folder = save_model(ae, folder, overwrite=True)  # replaces the model saved just before
    """
    estimator = _the_autoencoder(estimator)
    check_is_fitted(estimator)
    target = Path(path)
    check_model_target(target, overwrite=overwrite, overwrite_option=overwrite_option)  # before the work
    try:  # a model this aekit could not load again is refused now, not when it is needed
        _bound_module_config(estimator.module_.config())
    except ModelFileError as error:
        raise InvalidInputError(f"Cannot save this model: {str(error).replace(_FIX, '').strip()}") from None
    contents = _folder_contents(estimator)
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {
            name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in contents.items()
        },
    }
    contents[MANIFEST] = _json_bytes(manifest)  # last: its presence marks a complete folder

    def may_replace(existing: Path) -> None:  # again at the rename: another process may have saved meanwhile
        check_model_target(existing, overwrite=overwrite, overwrite_option=overwrite_option)

    return write_folder(target, contents, check_existing=may_replace, what="model folder")


def _the_autoencoder(estimator) -> Autoencoder:
    """``estimator`` when it is an Autoencoder; otherwise an error that says what to pass."""
    if isinstance(estimator, Autoencoder):
        return estimator
    steps = getattr(estimator, "named_steps", None)
    if steps is not None:  # a scikit-learn Pipeline: its other steps have no safe (JSON) form here
        names = [name for name, step in steps.items() if isinstance(step, Autoencoder)]
        which = (f"its Autoencoder step, aekit.save(pipeline.named_steps[{names[0]!r}], path)" if names
                 else "an Autoencoder")
        raise InvalidInputTypeError(
            f"aekit.save saves one aekit.Autoencoder; got a {type(estimator).__name__} with the steps "
            f"{list(steps)}. Save {which}, and rebuild the other steps in code (they are not saved)."
        )
    raise InvalidInputTypeError(
        f"aekit.save saves a fitted aekit.Autoencoder; got {type(estimator).__name__}. Pass the Autoencoder."
    )


def check_model_target(path: str | os.PathLike, *, overwrite: bool, overwrite_option: str = "overwrite=True") -> None:
    """Refuse a model folder path whose present content saving must not replace.

    Nothing there, or an empty folder: fine. An aekit model folder (manifest present and matching its
    files, nothing else inside): fine with ``overwrite``, else an error naming ``overwrite_option``.
    Anything else (a file, a symbolic link, a folder holding other files): always an error, since
    replacing it would delete what is not an aekit model.

    Examples
    --------
    >>> import tempfile
    >>> check_model_target(tempfile.mkdtemp() + "/new", overwrite=False)  # nothing there: fine
    """
    target = Path(path)
    if not os.path.lexists(target):
        return
    if target.is_symlink() or not target.is_dir():
        kind = "a symbolic link" if target.is_symlink() else "a file"
        raise InvalidInputError(
            f"{str(target)!r} exists and is {kind}, not a model folder: aekit replaces only model folders and "
            "empty folders. Choose another output path."
        )
    try:
        entries = os.listdir(target)
    except OSError as error:
        raise InvalidInputError(f"Cannot read {str(target)!r}: {error.strerror}. Choose another output path.") from None
    if not entries:
        return
    problem = _not_a_model_folder(target, entries)
    if problem is not None:
        shown = ", ".join(sorted(entries)[:5]) + (", ..." if len(entries) > 5 else "")
        raise InvalidInputError(
            f"{str(target)!r} exists and is not an aekit model folder ({problem}; it holds {shown}): aekit replaces "
            "only model folders and empty folders, so nothing was written. Choose another output path, or remove "
            "that folder yourself."
        )
    if not overwrite:
        raise InvalidInputError(
            f"Model folder {target} already exists. Pass {overwrite_option} to replace it, or choose another "
            "output path."
        )


def _not_a_model_folder(folder: Path, entries: list[str]) -> str | None:
    """What makes ``folder`` (holding ``entries``) no complete aekit model folder; None when it is one."""
    try:
        manifest = _parse_json(MANIFEST, _read_file(folder, MANIFEST, limit=MAX_JSON_BYTES))
    except ModelFileError:
        return "no readable manifest.json"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or set(files) != {*JSON_FILES, WEIGHTS}:
        return "manifest.json does not list a model's files"
    if set(entries) != {*files, MANIFEST}:
        return f"files that are not in its manifest: {sorted(set(entries) - {*files, MANIFEST})[:5]}"
    for name, entry in files.items():
        try:
            _read_file(folder, name, expected=entry)
        except ModelFileError:
            return f"{name} does not match the manifest"
    return None


# ---------------------------------------------------------------------------------------------- load
def _read_file(folder: Path, name: str, limit: int | None = None, expected: dict | None = None) -> bytes:
    """Read a file that must be a regular file inside ``folder`` (no symlinks, no escaping).

    With ``expected`` (its manifest entry), the size the open file reports must be the recorded
    ``bytes`` before anything is read, and the data must match the recorded ``sha256``.
    """
    path = folder / name
    if path.is_symlink():
        raise ModelFileError(
            f"{str(path)!r} is a symbolic link; model files must be regular files inside the folder. {_FIX}"
        )
    if not path.is_file():  # a FIFO or device is refused here, before an open that could block
        raise ModelFileError(f"{str(path)!r} is missing. {_FIX}")
    if expected is not None:
        size = expected.get("bytes") if isinstance(expected, dict) else None
        if not _is_count(size) or not isinstance(expected.get("sha256"), str):
            raise ModelFileError(f"manifest.json has no size and checksum for {name}. {_FIX}")
        limit = size if limit is None else min(limit, size)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise ModelFileError(f"Cannot open {str(path)!r}: {error.strerror}. {_FIX}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)  # the file opened, not whatever the path names by now
        if not stat.S_ISREG(info.st_mode):
            raise ModelFileError(f"{str(path)!r} is not a regular file. {_FIX}")
        if expected is not None and info.st_size != expected["bytes"]:
            raise ModelFileError(
                f"{name} does not match its checksum in manifest.json: it is {info.st_size} bytes, not the "
                f"{expected['bytes']} recorded (truncated or altered). {_FIX}"
            )
        if limit is not None and info.st_size > limit:
            raise ModelFileError(f"{str(path)!r} is {info.st_size} bytes, more than the {limit} allowed. {_FIX}")
        data = handle.read() if limit is None else handle.read(limit + 1)
    if limit is not None and len(data) > limit:  # it grew while being read
        raise ModelFileError(f"{str(path)!r} changed while it was read. {_FIX}")
    if expected is not None and hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise ModelFileError(f"{name} does not match its checksum in manifest.json (truncated or altered). {_FIX}")
    return data


def _parse_json(name: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as error:
        raise ModelFileError(f"{name} is not valid JSON ({type(error).__name__}: {str(error)[:120]}). {_FIX}") from None


def _expect(condition: bool, what: str, name: str = "config.json") -> None:
    if not condition:
        raise ModelFileError(f"{name}: {what}. {_FIX}")


def _read_manifest(folder: Path) -> dict:
    if not folder.is_dir():
        raise ModelFileError(
            f"Model folder {str(folder)!r} does not exist or is not a folder. Pass the folder written by save()."
        )
    manifest = _parse_json(MANIFEST, _read_file(folder, MANIFEST, MAX_JSON_BYTES))
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ModelFileError(f"manifest.json must be an object with a 'files' object. {_FIX}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION or version < 1:
        raise ModelFileError(
            f"The model folder has format version {version!r}; this aekit ({__version__}) reads versions 1 to "
            f"{FORMAT_VERSION}. Upgrade aekit (pip install -U aekit) to load it."
        )
    for name in (*JSON_FILES, WEIGHTS):
        entry = manifest["files"].get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise ModelFileError(f"manifest.json has no checksum for {name}. {_FIX}")
    return manifest["files"]


def _is_count(value: Any, low: int = 0, high: int = 2**63) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < high


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_conv_config(config: dict) -> None:
    shape = config.get("input_shape")
    _expect(isinstance(shape, list) and len(shape) == 3 and all(_is_count(s, 1, MAX_WIDTH) for s in shape),
            "the conv module's input_shape must be 3 ints >= 1")
    _expect(math.prod(shape) == config.get("input_dim"), "the conv module's input_shape does not give its input_dim")


# A new architecture adds the checks of its own description here; every description also gets the
# generic bounds of _bound_module_config (list lengths and integer sizes) and the weights-size check.
ARCHITECTURE_CHECKS: dict[str, Callable[[dict], None]] = {"conv": _check_conv_config}


def _bound_module_config(config: Any, where: str = "module") -> None:
    """Refuse, from the JSON alone, a module description too big for any aekit architecture."""
    if isinstance(config, dict):
        for key, value in config.items():
            _bound_module_config(value, f"{where}.{key}" if key.isprintable() else f"{where}[{key!r}]")
    elif isinstance(config, list):
        _expect(len(config) <= MAX_LAYERS, f"{where} lists {len(config)} layers; aekit models have at most "
                                           f"{MAX_LAYERS}")
        for value in config:
            _bound_module_config(value, where)
    elif isinstance(config, int) and not isinstance(config, bool):
        _expect(0 <= config <= MAX_WIDTH, f"{where} is {config}; sizes must be in [0, {MAX_WIDTH}]")


def _expected_weights(module_config: dict, weights_entry: dict) -> dict[str, torch.Tensor]:
    """The architecture's tensors, built on the meta device (no memory), after checks from the JSON alone.

    A description with too many or too wide layers is refused before anything is built, and one whose
    tensors do not fit the weights file's recorded size before that file is read.
    """
    _bound_module_config(module_config)
    check = ARCHITECTURE_CHECKS.get(module_config.get("architecture"))
    if check is not None:
        check(module_config)
    try:
        with torch.device("meta"):
            expected = build_model(**module_config).state_dict()
    except (TypeError, ValueError, RuntimeError) as error:  # RuntimeError: sizes that overflow
        reason = str(error).encode("unicode_escape").decode("ascii")[:200]  # one line, whatever the keys hold
        raise ModelFileError(f"config.json: the module description is invalid ({reason}). {_FIX}") from None
    needed = sum(t.numel() * t.element_size() for t in expected.values())
    header_allowance = 8 + 4096 + 512 * len(expected)  # the JSON header: names, shapes, offsets, metadata
    size = weights_entry.get("bytes")
    if _is_count(size) and not needed <= size <= needed + header_allowance:
        shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in list(expected.items())[:4])
        raise ModelFileError(
            f"{WEIGHTS} is {size} bytes, but the architecture in config.json needs {needed} bytes of weights "
            f"({shapes}, ...). {_FIX}"
        )
    return expected


def _load_weights(data: bytes, module_config: dict, expected: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Check the tensors against the architecture's (``expected``, on the meta device), then build and load."""
    try:
        tensors = safetensors.torch.load(data)
    except (safetensors.SafetensorError, RuntimeError, ValueError, OverflowError, MemoryError) as error:
        raise ModelFileError(f"{WEIGHTS} is not a valid safetensors file ({str(error)[:160]}). {_FIX}") from None
    if set(tensors) != set(expected):
        missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise ModelFileError(
            f"{WEIGHTS} does not match the architecture: missing tensors {missing[:6]}, "
            f"unexpected tensors {unexpected[:6]}. {_FIX}"
        )
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype:
            raise ModelFileError(
                f"{WEIGHTS}: tensor {name!r} has shape {tuple(tensor.shape)} and dtype {tensor.dtype}; the "
                f"architecture needs {tuple(expected[name].shape)} and {expected[name].dtype}. {_FIX}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(f"{WEIGHTS}: tensor {name!r} holds NaN or infinite values. {_FIX}")
    module = build_model(**module_config)
    module.load_state_dict(tensors)
    return module


def _check_history(history: Any) -> dict:
    """history.json: the per-epoch losses and how training ended, each of the type ``info``/``plot`` read."""
    name = "history.json"
    _expect(isinstance(history, dict), "must be an object", name)
    for key in ("train_loss", "val_loss"):
        values = history.get(key, [])
        _expect(isinstance(values, list) and all(_is_number(v) for v in values),
                f"{key!r} must be a list of numbers", name)
    for key in ("best_epoch", "n_epochs"):
        _expect(key not in history or _is_count(history[key], 0, 2**32), f"{key!r} must be an integer >= 0", name)
    _expect(not isinstance(history.get("stop_reason", ""), bool) and isinstance(history.get("stop_reason", ""), str),
            "'stop_reason' must be a string", name)
    seconds = history.get("seconds", 0.0)
    _expect(_is_number(seconds) and math.isfinite(seconds) and seconds >= 0, "'seconds' must be a number >= 0", name)
    return history


def _check_environment(environment: Any) -> dict:
    _expect(isinstance(environment, dict) and all(
        value is None or isinstance(value, (str, int, float, bool)) for value in environment.values()
    ), "must be an object of names and plain values (versions, seed)", "environment.json")
    return environment


def _check_fitted(fitted: dict, n_features: int) -> None:
    names = fitted.get("feature_names_in")
    _expect(
        names is None
        or (isinstance(names, list) and len(names) == n_features and all(isinstance(n, str) for n in names)),
        "feature_names_in must be null or one string per feature",
    )
    _expect(fitted.get("loss") in ("mse", "bce"), f"loss is {fitted.get('loss')!r}")
    unknown_fitted = set(fitted) - {"n_features_in", "feature_names_in", "loss", "threshold", "n_iter", "seed",
                                    "error_quantiles", "score_state", "window", "output_config"}
    _expect(not unknown_fitted, f"unknown fitted attributes {sorted(unknown_fitted)}")
    threshold = fitted.get("threshold")
    _expect(
        _is_number(threshold) and math.isfinite(threshold) and threshold >= 0,
        f"threshold must be a finite number >= 0 (an outlier score), got {threshold!r:.40}",
    )
    for key in ("n_iter", "seed"):
        _expect(_is_count(fitted.get(key), 0, 2**32), f"{key} must be an integer in [0, 2**32), got "
                                                      f"{fitted.get(key)!r:.40}")
    quantiles = fitted.get("error_quantiles")  # absent from folders saved before it existed
    _expect(
        quantiles is None
        or (isinstance(quantiles, list) and len(quantiles) >= 2 and all(_is_number(q) for q in quantiles)
            and all(math.isfinite(q) and q >= 0 for q in quantiles) and bool(np.all(np.diff(quantiles) >= 0))),
        "error_quantiles must be null or a non-decreasing list of finite numbers >= 0",
    )


def _check_module_matches_params(module_config: dict, params: dict, loss: str) -> None:
    """The module description and the constructor arguments must describe the same model."""
    _expect(module_config.get("architecture") == params.get("architecture", "mlp"),
            f"the module's architecture {module_config.get('architecture')!r} differs from the parameter "
            f"architecture={params.get('architecture', 'mlp')!r}")
    # "auto" chose the module's latent_dim from the data: any size fits it
    _expect(params.get("latent_dim") == "auto" or module_config.get("latent_dim") == params.get("latent_dim"),
            f"the module's latent_dim {module_config.get('latent_dim')!r} differs from the parameter "
            f"latent_dim={params.get('latent_dim')!r}")
    _expect(module_config.get("output_activation") == OUTPUT_ACTIVATION[loss],
            f"the module's output_activation {module_config.get('output_activation')!r} does not go with the "
            f"{loss} loss")


def load_model(path: str | os.PathLike) -> Autoencoder:
    """Load a model folder written by :func:`save_model`; never executes code from it.

    Raises
    ------
    ModelFileError
        When a file is missing, truncated, altered, a symlink, of the wrong shape, or from a newer
        format version.
    """
    return load_model_and_environment(path)[0]


def load_model_and_environment(path: str | os.PathLike) -> tuple[Autoencoder, dict]:
    """:func:`load_model`, and the verified ``environment.json`` (versions and seed at save time).

    Each file is read once; what is returned is what was checked (nothing is read from disk again).

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> X = np.random.default_rng(0).normal(size=(64, 5))
    >>> folder = save_model(aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X), tempfile.mkdtemp() + "/m")
    >>> model, environment = load_model_and_environment(folder)
    >>> environment["seed"] == model.seed_
    True
    """
    folder = Path(path)
    files = _read_manifest(folder)
    contents = {name: _read_file(folder, name, MAX_JSON_BYTES, expected=files[name]) for name in JSON_FILES}
    config = _parse_json("config.json", contents["config.json"])
    _expect(
        isinstance(config, dict) and config.get("format") == "aekit-model", "not an aekit model ('format' is missing)"
    )
    _expect(config.get("estimator") == "Autoencoder", f"estimator is {config.get('estimator')!r}, not 'Autoencoder'")
    unknown_keys = set(config) - {"format", "format_version", "estimator", "params", "module", "fitted"}
    _expect(not unknown_keys, f"unknown keys {sorted(unknown_keys)}")
    _expect(config.get("format_version") == FORMAT_VERSION, f"format_version is {config.get('format_version')!r}")
    params, module_config, fitted = config.get("params"), config.get("module"), config.get("fitted")
    _expect(
        all(isinstance(x, dict) for x in (params, module_config, fitted)),
        "'params', 'module' and 'fitted' must be objects",
    )
    unknown = set(params) - set(Autoencoder().get_params())
    _expect(not unknown, f"unknown parameters {sorted(unknown)}")
    _bound_module_config(params, "params")
    if "anomaly_score" not in params:  # saved before it existed: its threshold is on the reconstruction error
        params["anomaly_score"] = "error"
    if isinstance(params.get("hidden_dims"), list):
        params["hidden_dims"] = tuple(params["hidden_dims"])
    estimator = Autoencoder(**params)
    try:
        estimator._check_params()
    except InvalidParameterValue as error:
        raise ModelFileError(f"config.json: {error} {_FIX}") from None
    n_features = fitted.get("n_features_in")
    _expect(_is_count(n_features, 1, 2**31 + 1), "bad n_features_in")
    _check_fitted(fitted, n_features)
    output_config = fitted.get("output_config")  # present only after set_output
    _expect(
        output_config is None
        or (isinstance(output_config, dict) and set(output_config) <= {"transform"}
            and output_config.get("transform") in ("default", "pandas", "polars")),
        "output_config must be null or {\"transform\": \"default\", \"pandas\" or \"polars\"}",
    )
    _expect(module_config.get("input_dim") == n_features, "the module's input_dim differs from n_features_in")
    _check_module_matches_params(module_config, estimator.get_params(), fitted["loss"])
    history = _check_history(_parse_json("history.json", contents["history.json"]))
    epochs = len(history.get("train_loss", []))
    _expect(epochs == fitted["n_iter"], f"'train_loss' has {epochs} epoch(s) but config.json says n_iter="
                                        f"{fitted['n_iter']}", "history.json")
    environment = _check_environment(_parse_json("environment.json", contents["environment.json"]))
    scaler_state = _parse_json("scaler.json", contents["scaler.json"])
    saved_scaler = scaler_state.get("name") if isinstance(scaler_state, dict) else scaler_state
    _expect(saved_scaler == estimator.scaler or not isinstance(scaler_state, (dict, type(None))),
            f"holds the state of scaler {saved_scaler!r} but the model was fitted with scaler={estimator.scaler!r}",
            "scaler.json")
    scaler = scaler_from_state(scaler_state, n_features)
    expected = _expected_weights(module_config, files[WEIGHTS])  # before the weights file is read
    module = _load_weights(_read_file(folder, WEIGHTS, expected=files[WEIGHTS]), module_config, expected)
    try:
        device = resolve_device(estimator.device)
    except InvalidParameterValue:
        device = torch.device("cpu")  # saved on a GPU (or MPS, XPU...) machine, loaded on one without: the CPU

    estimator.module_ = module.to(device).eval()
    estimator.scaler_ = scaler
    estimator.n_features_in_ = n_features
    names = fitted.get("feature_names_in")
    if names is not None:
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    estimator.loss_ = fitted["loss"]
    estimator.threshold_ = float(fitted["threshold"])
    quantiles = fitted.get("error_quantiles")
    if quantiles is not None:
        estimator.error_quantiles_ = np.asarray(quantiles, dtype=np.float64)
    score_state = fitted.get("score_state")
    _expect((score_state is None) == (estimator.anomaly_score == "error"),
            "score_state must be present exactly when anomaly_score is 'combined'")
    if score_state is not None:
        try:
            estimator.score_state_ = ScoreState.from_dict(score_state, n_features, int(module.latent_dim))
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"config.json: score_state: {error}. {_FIX}") from None
    window = fitted.get("window")  # a model trained on a time series' windows (aekit.timeseries)
    if window is not None:
        _expect(
            isinstance(window, dict) and set(window) == {"window", "stride", "columns"}
            and all(isinstance(window[k], int) and not isinstance(window[k], bool) and window[k] >= 1
                    for k in ("window", "stride"))
            and isinstance(window["columns"], list) and all(isinstance(c, str) for c in window["columns"])
            and window["window"] * len(window["columns"]) == n_features,
            "window must be null or {window, stride, columns} with window x channels = n_features_in",
        )
        estimator.window_ = window
    estimator.n_iter_ = fitted["n_iter"]
    estimator.seed_ = fitted["seed"]
    estimator.history_ = history
    if output_config is not None:
        estimator.set_output(**output_config)
    return estimator, environment
