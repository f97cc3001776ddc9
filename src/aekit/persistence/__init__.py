"""Model folders: a fitted model's state <-> JSON + safetensors, written atomically, loaded without executing anything.

A folder holds ``config.json`` (format version, constructor arguments, fitted attributes, model
architecture), ``weights.safetensors``, ``scaler.json``, ``history.json``, ``environment.json`` and
``manifest.json``, which is written last and records the size and SHA-256 of every other file. The
folder is built under a temporary name beside its destination and renamed into place, so a crash
mid-save leaves either the old folder or the new one; loading checks the manifest, so a truncated
or altered file is refused.

This module knows the files, not the estimator: :meth:`aekit.Autoencoder.save` hands it a
:class:`SavedModel` and :func:`aekit.load` builds the estimator from the one :func:`read_model` returns.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import safetensors.torch
import sklearn
import torch

from aekit._files import write_folder
from aekit._version import __version__
from aekit.detect import ScoreState, outlier_score
from aekit.exceptions import InvalidInputError, ModelFileError
from aekit.persistence import files
from aekit.persistence.checks import (
    ARCHITECTURE_CHECKS,
    MAX_LAYERS,
    MAX_WIDTH,
    bound_module_config,
    check_environment,
    check_fitted,
    check_history,
    check_module_matches_params,
    check_score_state,
    check_series_state,
    expected_weights,
    load_weights,
)
from aekit.persistence.files import (
    DAMAGED,
    FORMAT_VERSION,
    JSON_FILES,
    MANIFEST,
    MAX_JSON_BYTES,
    WEIGHTS,
    check_model_target,
    expect,
    is_count,
    json_bytes,
    parse_json,
    read_manifest,
    sorted_header,
)
from aekit.preprocess import fitted_as_asked, scaler_from_state, scaler_name, scaler_state
from aekit.tables import TableEncoder

__all__ = ["ARCHITECTURE_CHECKS", "DAMAGED", "FORMAT_VERSION", "JSON_FILES", "MANIFEST", "MAX_LAYERS", "MAX_WIDTH",
           "WEIGHTS", "SavedModel", "check_model_target", "read_model", "write_model"]

@dataclass
class SavedModel:
    """A fitted model's state, as a model folder stores it.

    ``params`` are the constructor arguments (JSON values); ``fitted`` the fitted attributes in their JSON
    form (keys of :data:`~aekit.persistence.checks.FITTED_KEYS`); ``score_state`` the parsed
    ``fitted["score_state"]``.
    """

    params: dict
    module: torch.nn.Module
    scaler: object
    fitted: dict
    history: dict
    environment: dict = field(default_factory=dict)
    score_state: ScoreState | None = None
    table: TableEncoder | None = None  # the parsed fitted["table"]: a table's encoding (aekit.tables)


def _contents(saved: SavedModel) -> dict[str, bytes]:
    config = {
        "format": "aekit-model",
        "format_version": FORMAT_VERSION,
        "estimator": "Autoencoder",
        "params": saved.params,
        "module": saved.module.config(),
        "fitted": saved.fitted,
    }
    environment = {
        "aekit": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seed": int(saved.fitted["seed"]),
    }
    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in saved.module.state_dict().items()}
    return {
        "config.json": json_bytes(config),
        # a table's numeric columns are scaled by its encoding (config.json's fitted["table"]): no scaler here
        "scaler.json": json_bytes(scaler_state(saved.scaler)),
        "history.json": json_bytes(saved.history),
        "environment.json": json_bytes(environment),
        WEIGHTS: sorted_header(
            safetensors.torch.save(weights, metadata={"format": "pt", "aekit_format_version": str(FORMAT_VERSION)})
        ),
    }


def write_model(saved: SavedModel, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``saved`` to the folder ``path`` atomically and return the path.

    Only a model folder (its manifest present and matching its files) or an empty folder is ever
    replaced, with ``overwrite``, and only once the new one is complete.

    Raises
    ------
    InvalidInputError
        ``path`` exists and may not be replaced, or cannot be written, or the model could not be loaded
        again (a module description beyond :data:`MAX_LAYERS` / :data:`MAX_WIDTH`).
    """
    target = Path(path)
    check_model_target(target, overwrite=overwrite)  # before the work
    try:  # a model this aekit could not load again is refused now, not when it is needed
        bound_module_config(saved.module.config())
    except ModelFileError as error:
        raise InvalidInputError(f"Cannot save this model: {error.problem or error}", problem=error.problem) from error
    contents = _contents(saved)
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {
            name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in contents.items()
        },
    }
    contents[MANIFEST] = json_bytes(manifest)  # last: its presence marks a complete folder

    def may_replace(existing: Path) -> None:  # again at the rename: another process may have saved meanwhile
        check_model_target(existing, overwrite=overwrite)

    return write_folder(target, contents, check_existing=may_replace, what="model folder")


def _check_output_config(output_config) -> None:
    expect(
        output_config is None
        or (isinstance(output_config, dict) and set(output_config) <= {"transform"}
            and output_config.get("transform") in ("default", "pandas", "polars")),
        "output_config must be null or {\"transform\": \"default\", \"pandas\" or \"polars\"}",
    )


_AUDIO_INTS = ("sample_rate", "n_fft", "hop_length", "n_mels", "frames", "n_clips", "n_frames")


def _check_audio(audio, n_features: int) -> None:
    def number(value) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

    expect(
        audio is None
        or (isinstance(audio, dict) and set(audio) == {*_AUDIO_INTS, "fmin", "fmax", "clip_quantiles"}
            and all(isinstance(audio[k], int) and not isinstance(audio[k], bool) and audio[k] >= 1 for k in _AUDIO_INTS)
            and number(audio["fmin"]) and (audio["fmax"] is None or number(audio["fmax"]))
            and audio["n_mels"] * audio["frames"] == n_features
            and isinstance(audio["clip_quantiles"], list) and len(audio["clip_quantiles"]) >= 2
            and all(number(q) for q in audio["clip_quantiles"])),
        "audio must be null or the log-mel parameters {sample_rate, n_fft, hop_length, n_mels, frames, fmin, fmax} "
        "with n_mels x frames = n_features_in, n_clips, n_frames and clip_quantiles (numbers)",
    )


def read_model(path: str | os.PathLike, *, defaults: dict, check_params: Callable[[dict], None]) -> SavedModel:
    """Read and check the model folder ``path``; never executes code from it.

    ``defaults`` are the estimator's constructor arguments and their defaults: a parameter the folder
    does not name takes its default, one not among them is refused; ``check_params`` (the estimator's
    validation) then gets them all and raises :class:`~aekit.exceptions.ModelFileError` on a bad one,
    before anything else in the folder is used. Each file is read once (through
    :func:`aekit.persistence.files.read_file`); what is returned is what was checked. The module is on
    the CPU, in eval mode.

    Raises
    ------
    ModelFileError
        When a file is missing, truncated, altered, a symlink, of the wrong shape, or from a newer
        format version.
    """
    folder = Path(path)
    entries = read_manifest(folder)
    contents = {name: files.read_file(folder, name, MAX_JSON_BYTES, expected=entries[name]) for name in JSON_FILES}
    config = parse_json("config.json", contents["config.json"])
    expect(isinstance(config, dict) and config.get("format") == "aekit-model",
           "not an aekit model ('format' is missing)")
    expect(config.get("estimator") == "Autoencoder", f"estimator is {config.get('estimator')!r}, not 'Autoencoder'")
    unknown_keys = set(config) - {"format", "format_version", "estimator", "params", "module", "fitted"}
    expect(not unknown_keys, f"unknown keys {sorted(unknown_keys)}")
    expect(config.get("format_version") == FORMAT_VERSION, f"format_version is {config.get('format_version')!r}")
    params, module_config, fitted = config.get("params"), config.get("module"), config.get("fitted")
    expect(all(isinstance(x, dict) for x in (params, module_config, fitted)),
           "'params', 'module' and 'fitted' must be objects")
    unknown = set(params) - set(defaults)
    expect(not unknown, f"unknown parameters {sorted(unknown)}")
    bound_module_config(params, "params")
    bound_module_config(module_config)  # before it is compared with the parameters
    if isinstance(params.get("hidden_dims"), list):
        params["hidden_dims"] = tuple(params["hidden_dims"])
    full_params = {**defaults, **params}
    check_params(full_params)
    n_features = fitted.get("n_features_in")
    expect(is_count(n_features, 1, 2**31 + 1), "bad n_features_in")
    check_fitted(fitted, n_features)
    shape = full_params["input_shape"]  # 3 sizes (check_params), the images' the rows were flattened from
    expect(shape is None or math.prod(shape) == n_features,
           f"params.input_shape {list(shape or ())} does not hold the {n_features} features of n_features_in")
    _check_output_config(fitted.get("output_config"))  # present only after set_output
    table = _table(fitted.get("table"), n_features, full_params["scaler"])
    width = n_features if table is None else table.width  # a table's model reads its encoded rows
    expect(module_config.get("input_dim") == width, "the module's input_dim differs from n_features_in (or the "
                                                    "table's encoded width)")
    check_module_matches_params(module_config, full_params, fitted["loss"])
    history = check_history(parse_json("history.json", contents["history.json"]))
    epochs = len(history.get("train_loss", []))
    expect(epochs == fitted["n_iter"], f"'train_loss' has {epochs} epoch(s) but config.json says n_iter="
                                       f"{fitted['n_iter']}", "history.json")
    environment = check_environment(parse_json("environment.json", contents["environment.json"]))
    state = parse_json("scaler.json", contents["scaler.json"])
    saved_scaler = state.get("name") if isinstance(state, dict) else state
    asked = None if table is not None else full_params["scaler"]
    expect(fitted_as_asked(asked, saved_scaler) or not isinstance(state, (dict, type(None))),
           f"holds the state of scaler {saved_scaler!r} but the model was fitted with scaler="
           f"{full_params['scaler']!r}", "scaler.json")
    scaler = scaler_from_state(state, n_features)
    expected = expected_weights(module_config, entries[WEIGHTS])  # before the weights file is read
    module = load_weights(files.read_file(folder, WEIGHTS, expected=entries[WEIGHTS]), module_config, expected)
    score_state = fitted.get("score_state")
    expect((score_state is not None) == outlier_score(full_params["anomaly_score"]).reads_codes,
           f"score_state must be present exactly when the anomaly_score ({full_params['anomaly_score']!r}) reads "
           "the codes")
    if score_state is not None:
        n_errors = n_features if table is None else len(table.columns)  # a table: one error per column read
        score_state = check_score_state(score_state, n_errors, int(module.latent_dim))
    check_series_state(fitted.get("window"), n_features)  # a model trained on a time series' windows
    _check_audio(fitted.get("audio"), n_features)  # a model trained on sound clips' log-mel frames
    return SavedModel(params=params, module=module.eval(), scaler=scaler, fitted=fitted, history=history,
                      environment=environment, score_state=score_state, table=table)


def _table(state, n_features: int, scaler: str | None) -> TableEncoder | None:
    """The table encoding of ``fitted["table"]`` (None without one), checked against the model's columns."""
    if state is None:
        return None
    expect(isinstance(state, dict), "table must be an object")
    table = TableEncoder.from_dict(state)
    expect(len(table.plan.columns) == n_features and table.columns, "the table's columns differ from n_features_in")
    fitted = scaler_name(table.scaler)
    expect(table.scaler_name == scaler and (not table.plan.numeric or fitted_as_asked(scaler, fitted)),
           f"the table was scaled with {table.scaler_name!r} ({fitted!r}), the model says {scaler!r}")
    return table
