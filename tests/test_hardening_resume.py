"""Resuming, tried as a careless user and as an attacker: other settings or data are refused by name, and a
tampered checkpoint (``state.json`` with missing keys, wrong types, deep nesting, negative counts; a
folder a user put where a checkpoint goes) is a clear error, never a half-and-half run or a traceback.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aekit
from aekit.exceptions import InvalidInputError, InvalidParameterValue, ModelFileError, TrainingError
from aekit.training.checkpoint import MANIFEST, STATE, list_checkpoints, save_checkpoint
from conftest import JSON_VALUES, leaf_paths, replace_at

# the MLP: the tampering tests name its tensors
BASE = {"latent_dim": 2, "architecture": "mlp", "hidden_dims": (6,), "epochs": 2, "batch_size": 16, "random_state": 0,
        "device": "cpu"}


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(80, 6))


@pytest.fixture(scope="module")
def checkpoints(data, tmp_path_factory) -> Path:
    """The checkpoints of a two-epoch run with BASE settings; tests copy them."""
    folder = tmp_path_factory.mktemp("run") / "ckpt"
    aekit.Autoencoder(**BASE, checkpoint_dir=str(folder)).fit(data)
    return folder


def _copy(checkpoints: Path, where: Path) -> Path:
    folder = where / "ckpt"
    shutil.copytree(checkpoints, folder)
    return folder


def _resume(folder: Path, data, **changes):
    params = {**BASE, "epochs": 4, **changes}
    return aekit.Autoencoder(**params, checkpoint_dir=str(folder), resume=True).fit(data)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"activation": "tanh"}, "activation='relu' in the checkpoint, 'tanh' now"),
        ({"scaler": "minmax"}, "scaler='auto' in the checkpoint, 'minmax' now"),
        ({"scaler": None}, "scaler='auto' in the checkpoint, None now"),
        ({"validation_fraction": 0.3}, "validation_fraction=0.1 in the checkpoint, 0.3 now"),
        ({"hidden_dims": (7,)}, "hidden_dims=[6] in the checkpoint, [7] now"),
        ({"hidden_dims": (6, 4)}, "hidden_dims=[6] in the checkpoint, [6, 4] now"),
        ({"latent_dim": 3}, "latent_dim=2 in the checkpoint, 3 now"),
        ({"architecture": "linear"}, "architecture='mlp' in the checkpoint, 'linear' now"),
        ({"loss": "mse"}, "loss='auto' in the checkpoint, 'mse' now"),
        ({"batch_size": 8}, "batch_size=16 in the checkpoint, 8 now"),
        ({"lr": 0.01}, "lr=0.001 in the checkpoint, 0.01 now"),
        ({"geometry": "isomap"}, "geometry=None in the checkpoint, 'isomap' now"),
    ],
    ids=lambda value: str(value)[:30],
)
def test_resume_with_another_setting_is_refused_naming_it(checkpoints, data, tmp_path, changes, named):
    folder = _copy(checkpoints, tmp_path)
    with pytest.raises(InvalidParameterValue, match="Cannot resume from the checkpoints") as excinfo:
        _resume(folder, data, **changes)
    assert named in str(excinfo.value)
    assert [p.name for p in list_checkpoints(folder)] == [p.name for p in list_checkpoints(checkpoints)]


def test_hidden_dims_as_a_list_or_a_tuple_is_the_same_run(checkpoints, data, tmp_path):
    model = _resume(_copy(checkpoints, tmp_path), data, hidden_dims=[6])
    assert model.n_iter_ == 4


@pytest.mark.parametrize(
    ("other_data", "named"),
    [
        (lambda X: X[:, :5], "n_features=6 in the checkpoint, 5 now"),
        (lambda X: X[:60], "train_rows=72 in the checkpoint, 54 now"),
    ],
    ids=["fewer-columns", "fewer-rows"],
)
def test_resume_on_data_of_another_shape_is_refused_naming_it(checkpoints, data, tmp_path, other_data, named):
    with pytest.raises(InvalidParameterValue, match="Cannot resume") as excinfo:
        _resume(_copy(checkpoints, tmp_path), other_data(data))
    assert named in str(excinfo.value)


def test_several_differences_are_all_named(checkpoints, data, tmp_path):
    with pytest.raises(InvalidParameterValue) as excinfo:
        _resume(_copy(checkpoints, tmp_path), data, activation="gelu", latent_dim=3, lr=0.1)
    for name in ("activation=", "latent_dim=", "lr="):
        assert name in str(excinfo.value)


def test_the_cli_refuses_another_setting_in_one_line(checkpoints, data, tmp_path, capsys):
    from aekit.cli import main

    folder = tmp_path / "ckpt"
    np.save(tmp_path / "x.npy", data)
    common = ["fit", str(tmp_path / "x.npy"), "--epochs", "2", "--device", "cpu", "--checkpoint-dir", str(folder),
              "--quiet", "--hidden", "6", "--latent-dim", "2"]
    assert main([*common, "-o", str(tmp_path / "m1")]) == 0
    code = main([*common, "-o", str(tmp_path / "m2"), "--resume", "--hidden", "9", "--activation", "tanh"])
    error = capsys.readouterr().err
    errors = [line for line in error.splitlines() if not line.startswith("aekit fit: warning: ")]
    assert code == 2 and len(errors) == 1 and "size mismatch" not in error, error
    # the CLI names the flag where it has one
    assert "--hidden 6 in the checkpoint, [9] now" in error and "--activation relu in the checkpoint" in error
    assert not (tmp_path / "m2").exists()


# ------------------------------------------------------------------------------- tampered state.json
def _rewrite_state(checkpoint: Path, document) -> None:
    """Replace state.json and update the manifest: a tampered but self-consistent checkpoint."""
    data = json.dumps(document, allow_nan=True).encode() if not isinstance(document, bytes) else document
    (checkpoint / STATE).write_bytes(data)
    manifest = json.loads((checkpoint / MANIFEST).read_text())
    manifest["files"][STATE] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (checkpoint / MANIFEST).write_text(json.dumps(manifest))


def _newest(folder: Path) -> Path:
    return list_checkpoints(folder)[-1]


def _state(checkpoints: Path) -> dict:
    return json.loads((_newest(checkpoints) / STATE).read_text())


def _tampered(checkpoints, where, change) -> Path:
    folder = _copy(checkpoints, where)
    document = _state(checkpoints)
    change(document)
    _rewrite_state(_newest(folder), document)
    return folder


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda d: d["state"].pop("history"), "'history' is missing"),
        (lambda d: d["state"].pop("module"), "'module' is missing"),
        (lambda d: d["state"].update(epoch=-3), "cannot be decoded|'epoch' is -3, below 0"),
        (lambda d: d.update(epoch=-3), r"'epoch' and 'step' >= 0"),
        (lambda d: d["state"].update(epoch="2"), "'epoch' is a str"),
        (lambda d: d["state"].update(rows_seen=True), "'rows_seen' is a bool"),
        (lambda d: d["state"].update(config=[1, 2]), "'config' is a list"),
        (lambda d: d["state"]["history"].update(train_loss="nan"), "'history' is not a training history"),
        (lambda d: d["state"]["history"].pop("seconds"), "'history' is not a training history"),
        (lambda d: d["state"].update(epochs_without_improvement=-1), "'epochs_without_improvement' is -1"),
        (lambda d: d["state"]["module"].pop("encoder.0.weight"), "'module' holds other tensors"),
        (lambda d: d["state"]["optimizer"].update(state=5), "cannot be resumed"),
        (lambda d: d["state"]["generator"].update(__tensor__="state.module.encoder.0.weight"), "cannot be resumed"),
        (lambda d: d["state"].update(epoch=1), r"records 2 epoch\(s\) of losses but says epoch 1"),
        (lambda d: d.pop("state"), "must be an object with 'state'"),
        (lambda d: d["state"].update(best_loss={"__items__": 7}), "cannot be decoded"),
        (lambda d: d["state"].update(best_loss={"__items__": [[[1], 2]]}), "cannot be decoded"),
        (lambda d: d["state"].update(best_loss={"__tuple__": 7}), "cannot be decoded"),
    ],
    ids=["no-history", "no-module", "negative-epoch-in-state", "negative-epoch", "epoch-as-text", "bool-count",
         "config-list", "history-text", "history-key-missing", "negative-patience-count", "tensor-missing",
         "optimizer-state-number", "generator-wrong-tensor", "epoch-disagrees", "no-state", "items-number",
         "items-unhashable-key", "tuple-number"],
)
def test_a_tampered_state_is_a_clear_error(checkpoints, data, tmp_path, change, pattern):
    """Refused with a clear error, or (when it cannot even be decoded) skipped with a warning for the one before."""
    folder = _tampered(checkpoints, tmp_path, change)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = _resume(folder, data)
        except (ModelFileError, InvalidParameterValue) as error:
            assert re.search(pattern, str(error)) and "\n" not in str(error), error
            return
    skipped = [str(w.message) for w in caught if "Skipping checkpoint ckpt-e000002" in str(w.message)]
    assert skipped and re.search(pattern, skipped[0]), [str(w.message) for w in caught]
    assert model.n_iter_ == 4  # resumed from the checkpoint before, which is intact


@pytest.mark.parametrize("text", [b"[" * 100_000 + b"]" * 100_000, b'{"state": ' * 50_000 + b"1" + b"}" * 50_000],
                         ids=["deep-list", "deep-objects"])
def test_deeply_nested_state_is_refused_without_recursion_error(checkpoints, data, tmp_path, text):
    folder = _copy(checkpoints, tmp_path)
    for checkpoint in list_checkpoints(folder):
        _rewrite_state(checkpoint, text)
    with pytest.warns(RuntimeWarning, match="Skipping checkpoint .*RecursionError"):
        model = _resume(folder, data)  # every checkpoint unreadable: a warning each, then a fresh run
    assert model.n_iter_ == 4


def test_a_user_folder_with_a_checkpoint_name_is_never_replaced(tmp_path):
    import torch

    mine = tmp_path / "ckpt-e000001-s000000000"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="exists and is not an aekit checkpoint"):
        save_checkpoint(tmp_path, {"w": torch.zeros(1)}, epoch=1, step=0)
    assert (mine / "notes.txt").read_text() == "mine"


@given(choice=st.data())
def test_any_field_of_state_json_replaced_by_any_json_value_resumes_or_is_refused(checkpoints, data, choice):
    document = _state(checkpoints)
    position = choice.draw(st.sampled_from(leaf_paths(document)), label="position")
    value = choice.draw(JSON_VALUES, label="value")
    with tempfile.TemporaryDirectory() as where:
        folder = _copy(checkpoints, Path(where))
        _rewrite_state(_newest(folder), replace_at(copy.deepcopy(document), position, value))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Skipping checkpoint", category=RuntimeWarning)
            try:
                model = _resume(folder, data)
            except (ModelFileError, InvalidParameterValue, TrainingError) as error:
                # TrainingError: a tampered learning rate in range, or tampered losses, can make training diverge
                assert str(error) and "\n" not in str(error)
                return
        assert np.isfinite(model.transform(data)).all()


def test_a_fresh_run_deletes_only_checkpoints_not_folders_named_like_them(data, tmp_path):
    aekit.Autoencoder(**BASE, checkpoint_dir=str(tmp_path)).fit(data)
    with pytest.warns(UserWarning, match="removed .* checkpoint"):  # resume=False: clears its old checkpoints
        aekit.Autoencoder(**BASE, checkpoint_dir=str(tmp_path)).fit(data)
    mine = tmp_path / "ckpt-e000009-s000000000"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    before = sorted(path.name for path in tmp_path.rglob("*"))
    with pytest.raises(InvalidInputError, match="holds what aekit did not write there"):  # refused, not cleared
        aekit.Autoencoder(**BASE, checkpoint_dir=str(tmp_path)).fit(data)
    assert (mine / "notes.txt").read_text() == "mine" and sorted(path.name for path in tmp_path.rglob("*")) == before


def test_a_model_too_deep_to_load_again_is_refused_at_save(data, tmp_path):
    deep = aekit.Autoencoder(**{**BASE, "hidden_dims": (2,) * 300, "epochs": 1}).fit(data)
    with pytest.raises(InvalidInputError, match="Cannot save this model: config.json: module.hidden_dims lists 300 "
                                                "layers; aekit models have at most 256"):
        deep.save(tmp_path / "model")
    assert not (tmp_path / "model").exists()
