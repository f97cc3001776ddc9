"""Model folders: JSON + safetensors, written atomically, loaded without executing anything.

A folder holds ``config.json`` (format version, constructor arguments, fitted attributes, model
architecture), ``weights.safetensors``, ``scaler.json``, ``history.json``, ``environment.json`` and
``manifest.json``, which is written last and records the size and SHA-256 of every other file. The
folder is built under a temporary name beside its destination and renamed into place, so a crash
mid-save leaves either the old folder or the new one; loading checks the manifest, so a truncated
or altered file is refused.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import math
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import sklearn
import torch
from sklearn.utils.validation import check_is_fitted

from aekit._atomic import fsync_folder
from aekit._version import __version__
from aekit.estimator import Autoencoder, resolve_device
from aekit.exceptions import InvalidInputError, InvalidParameterValue, ModelFileError
from aekit.models import build_model
from aekit.preprocess import scaler_from_state, scaler_state

FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
MANIFEST = "manifest.json"
JSON_FILES = ("config.json", "scaler.json", "history.json", "environment.json")
MAX_JSON_BYTES = 64 * 2**20
_FIX = "The model folder is damaged or not an aekit model: save the model again."


# ---------------------------------------------------------------------------------------------- save
def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, allow_nan=True, sort_keys=False).encode("utf-8") + b"\n"


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _float_list(values) -> list[float] | None:
    return None if values is None else [float(value) for value in values]


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported.

    Replacing a folder otherwise takes two renames (old away, new in), and a crash between them would
    leave no folder at the target.
    """
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    at_current_folder, rename_exchange = -100, 2
    if renameat2(at_current_folder, os.fsencode(first), at_current_folder, os.fsencode(second), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # old kernel or a file system without it
        return False
    raise OSError(code, os.strerror(code), str(second))


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # no C library to load (some embedded or non-POSIX builds)
        return None


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
        WEIGHTS: safetensors.torch.save(
            weights, metadata={"format": "pt", "aekit_format_version": str(FORMAT_VERSION)}
        ),
    }


def save_model(estimator: Autoencoder, path: str | os.PathLike) -> Path:
    """Write ``estimator`` to the folder ``path`` atomically and return the path.

    An existing folder at ``path`` is replaced only once the new one is complete.

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> X = np.random.default_rng(0).normal(size=(64, 5))
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> folder = save_model(ae, tempfile.mkdtemp() + "/model")
    >>> np.array_equal(aekit.load(folder).transform(X), ae.transform(X))
    True
    """
    check_is_fitted(estimator)
    target = Path(path)
    contents = _folder_contents(estimator)
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {
            name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in contents.items()
        },
    }
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as error:
        raise InvalidInputError(
            f"Cannot create the model folder {str(target)!r}: {error.strerror}. Choose a writable folder."
        ) from None
    try:
        for name, data in contents.items():
            _fsync_write(staging / name, data)
        _fsync_write(staging / MANIFEST, _json_bytes(manifest))  # last: its presence marks a complete folder
        if target.is_symlink() or target.is_file():
            raise InvalidInputError(f"{str(target)!r} exists and is not a model folder; choose another path.")
        backup = None
        if target.exists() and _exchange(staging, target):  # one atomic step: old or new, always one there
            backup = staging
        elif target.exists():  # no atomic exchange here: a crash between the renames leaves only the backup
            backup = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, backup)
            os.replace(staging, target)
        else:
            os.replace(staging, target)
        fsync_folder(target.parent)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise InvalidInputError(
            f"Cannot write the model folder {str(target)!r}: {error.strerror}. Check space and permissions."
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


# ---------------------------------------------------------------------------------------------- load
def _read_file(folder: Path, name: str, limit: int | None = None) -> bytes:
    """Read a file that must be a regular file inside ``folder`` (no symlinks, no escaping)."""
    path = folder / name
    if path.is_symlink():
        raise ModelFileError(
            f"{str(path)!r} is a symbolic link; model files must be regular files inside the folder. {_FIX}"
        )
    if not path.is_file():
        raise ModelFileError(f"{str(path)!r} is missing. {_FIX}")
    size = path.stat().st_size
    if limit is not None and size > limit:
        raise ModelFileError(f"{str(path)!r} is {size} bytes, more than the {limit} allowed. {_FIX}")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _parse_json(name: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as error:
        raise ModelFileError(f"{name} is not valid JSON ({type(error).__name__}: {str(error)[:120]}). {_FIX}") from None


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise ModelFileError(f"config.json: {what}. {_FIX}")


def _read_verified(folder: Path) -> dict[str, bytes]:
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
    contents = {}
    for name in (*JSON_FILES, WEIGHTS):
        entry = manifest["files"].get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise ModelFileError(f"manifest.json has no checksum for {name}. {_FIX}")
        data = _read_file(folder, name, MAX_JSON_BYTES if name.endswith(".json") else None)
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ModelFileError(f"{name} does not match its checksum in manifest.json (truncated or altered). {_FIX}")
        contents[name] = data
    return contents


def _load_weights(data: bytes, module_config: dict) -> torch.nn.Module:
    """Check the tensors against the architecture, then build the module and load them.

    The architecture is first built on the meta device (no memory), so a config.json that claims
    huge layers is refused by the shape check instead of allocating them.
    """
    try:
        with torch.device("meta"):
            expected = build_model(**module_config).state_dict()
    except (TypeError, ValueError, RuntimeError) as error:  # RuntimeError: sizes that overflow
        raise ModelFileError(f"config.json: the module description is invalid ({str(error)[:200]}). {_FIX}") from None
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


def load_model(path: str | os.PathLike) -> Autoencoder:
    """Load a model folder written by :func:`save_model`; never executes code from it.

    Raises
    ------
    ModelFileError
        When a file is missing, truncated, altered, a symlink, of the wrong shape, or from a newer
        format version.
    """
    folder = Path(path)
    contents = _read_verified(folder)
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
    if isinstance(params.get("hidden_dims"), list):
        params["hidden_dims"] = tuple(params["hidden_dims"])
    estimator = Autoencoder(**params)
    try:
        estimator._check_params()
    except InvalidParameterValue as error:
        raise ModelFileError(f"config.json: {error} {_FIX}") from None
    n_features = fitted.get("n_features_in")
    _expect(
        isinstance(n_features, int) and not isinstance(n_features, bool) and 1 <= n_features <= 2**31,
        "bad n_features_in",
    )
    names = fitted.get("feature_names_in")
    _expect(
        names is None
        or (isinstance(names, list) and len(names) == n_features and all(isinstance(n, str) for n in names)),
        "feature_names_in must be null or one string per feature",
    )
    _expect(fitted.get("loss") in ("mse", "bce"), f"loss is {fitted.get('loss')!r}")
    unknown_fitted = set(fitted) - {"n_features_in", "feature_names_in", "loss", "threshold", "n_iter", "seed",
                                    "error_quantiles", "output_config"}
    _expect(not unknown_fitted, f"unknown fitted attributes {sorted(unknown_fitted)}")
    threshold = fitted.get("threshold")
    _expect(
        isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and math.isfinite(threshold),
        f"threshold must be a finite number, got {threshold!r:.40}",
    )
    for key in ("n_iter", "seed"):
        value = fitted.get(key)
        _expect(
            isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32,
            f"{key} must be an integer in [0, 2**32), got {value!r:.40}",
        )
    quantiles = fitted.get("error_quantiles")  # absent from folders saved before it existed
    _expect(
        quantiles is None
        or (isinstance(quantiles, list) and len(quantiles) >= 2
            and all(isinstance(q, (int, float)) and not isinstance(q, bool) for q in quantiles)
            and bool(np.all(np.diff(quantiles) >= 0))),
        "error_quantiles must be null or a non-decreasing list of numbers",
    )
    output_config = fitted.get("output_config")  # present only after set_output
    _expect(
        output_config is None
        or (isinstance(output_config, dict) and set(output_config) <= {"transform"}
            and output_config.get("transform") in ("default", "pandas", "polars")),
        "output_config must be null or {\"transform\": \"default\", \"pandas\" or \"polars\"}",
    )
    _expect(module_config.get("input_dim") == n_features, "the module's input_dim differs from n_features_in")
    module = _load_weights(contents[WEIGHTS], module_config)
    try:
        device = resolve_device(estimator.device)
    except InvalidParameterValue:
        device = torch.device("cpu")  # saved on a GPU machine, loaded on one without: run on the CPU
    history = _parse_json("history.json", contents["history.json"])
    _expect(isinstance(history, dict), "history.json must be an object")
    environment = _parse_json("environment.json", contents["environment.json"])
    _expect(isinstance(environment, dict), "environment.json must be an object")

    estimator.module_ = module.to(device).eval()
    estimator.scaler_ = scaler_from_state(_parse_json("scaler.json", contents["scaler.json"]), n_features)
    estimator.n_features_in_ = n_features
    if names is not None:
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    estimator.loss_ = fitted["loss"]
    estimator.threshold_ = float(fitted["threshold"])
    if quantiles is not None:
        estimator.error_quantiles_ = np.asarray(quantiles, dtype=np.float64)
    estimator.n_iter_ = fitted["n_iter"]
    estimator.seed_ = fitted["seed"]
    estimator.history_ = history
    if output_config is not None:
        estimator.set_output(**output_config)
    return estimator
