import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch

import aekit
from aekit import _files, persistence
from aekit.exceptions import ModelFileError
from conftest import QUICK_FIT, edit_config, write_consistent


@pytest.fixture(scope="module")
def fitted(low_rank_data):
    frame = pd.DataFrame(low_rank_data, columns=[f"f{i}" for i in range(12)])
    return aekit.Autoencoder(latent_dim=3, **QUICK_FIT).fit(frame), frame


@pytest.fixture
def saved(fitted, tmp_path):
    folder = tmp_path / "model"
    fitted[0].save(folder)
    return folder


def test_round_trip_gives_equal_weights_and_identical_outputs(fitted, saved):
    ae, frame = fitted
    loaded = aekit.load(saved)
    original, restored = ae.module_.state_dict(), loaded.module_.state_dict()
    assert original.keys() == restored.keys() and all(torch.equal(original[k], restored[k]) for k in original)
    assert np.array_equal(loaded.transform(frame), ae.transform(frame))
    assert np.array_equal(loaded.reconstruction_error(frame), ae.reconstruction_error(frame))
    assert np.array_equal(loaded.inverse_transform(ae.transform(frame)), ae.inverse_transform(ae.transform(frame)))
    assert loaded.get_params() == ae.get_params()
    assert list(loaded.feature_names_in_) == list(ae.feature_names_in_)
    assert loaded.threshold_ == ae.threshold_ and loaded.history_ == ae.history_ and loaded.loss_ == ae.loss_


def test_folder_holds_readable_files(saved):
    assert sorted(os.listdir(saved)) == sorted(
        ["config.json", "weights.safetensors", "scaler.json", "history.json", "environment.json", "manifest.json"]
    )
    config = json.loads((saved / "config.json").read_text())
    assert config["format_version"] == persistence.FORMAT_VERSION
    assert config["params"]["latent_dim"] == 3 and config["params"]["hidden_dims"] == [8]
    environment = json.loads((saved / "environment.json").read_text())
    assert environment["torch"] == torch.__version__ and environment["seed"] == config["fitted"]["seed"]


def test_saving_over_an_existing_model_replaces_it(fitted, saved, low_rank_data):
    other = aekit.Autoencoder(latent_dim=2, **QUICK_FIT).fit(low_rank_data)
    other.save(saved, overwrite=True)
    assert aekit.load(saved).latent_dim == 2
    assert [p.name for p in saved.parent.iterdir()] == ["model"]  # no staging or backup folders left


def test_crash_mid_save_leaves_the_old_model_and_no_partial_folder(fitted, saved, monkeypatch, low_rank_data):
    calls = {"n": 0}
    real_write = _files.write_synced

    def crashing_write(path, data):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if the process were stopped mid-save
        real_write(path, data)

    monkeypatch.setattr(_files, "write_synced", crashing_write)
    with pytest.raises(KeyboardInterrupt):
        aekit.Autoencoder(latent_dim=2, **QUICK_FIT).fit(low_rank_data).save(saved, overwrite=True)
    assert [p.name for p in saved.parent.iterdir()] == ["model"]
    assert aekit.load(saved).latent_dim == 3


def test_pickle_renamed_as_weights_is_refused_and_never_executed(saved, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    # the tensors' bytes alone: the real file holds them plus its header
    needed = sum(value.nbytes for value in aekit.load(saved).module_.state_dict().values())
    write_consistent(saved, "weights.safetensors", pickle.dumps({"w": Payload()}))
    # refused from its size alone, before a byte of it is parsed
    refused = rf"weights.safetensors is 1\d\d bytes, but the architecture .* needs {needed}"
    with pytest.raises(ModelFileError, match=refused):
        aekit.load(saved)
    assert not marker.exists()


def test_truncated_weights_fail_the_checksum(saved):
    data = (saved / "weights.safetensors").read_bytes()
    (saved / "weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"weights.safetensors does not match its checksum in manifest.json: it "
                                             r"is \d+ bytes, not the \d+ recorded \(truncated or altered\)"):
        aekit.load(saved)


def test_tensor_of_the_wrong_shape_is_refused(fitted, saved):
    state = {k: v.clone() for k, v in fitted[0].module_.state_dict().items()}
    width = state["encoder.tail"].shape[1]
    state["encoder.tail"] = torch.zeros(3, width + 1)
    write_consistent(saved, "weights.safetensors", safetensors.torch.save(state))
    wrong = rf"tensor 'encoder.tail' has shape \(3, {width + 1}\).*needs \(3, {width}\)"
    with pytest.raises(ModelFileError, match=wrong):
        aekit.load(saved)


def test_safetensors_header_claiming_huge_shapes_is_refused(saved):
    header = json.dumps(
        {"encoder.0.weight": {"dtype": "F32", "shape": [2**40, 2**20], "data_offsets": [0, 16]}}
    ).encode()
    data = len(header).to_bytes(8, "little") + header + b"\0" * 16
    write_consistent(saved, "weights.safetensors", data)
    with pytest.raises(ModelFileError, match="not a valid safetensors file|bytes, but the architecture"):
        aekit.load(saved)


def test_future_format_version_asks_for_an_upgrade(saved):
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["format_version"] = persistence.FORMAT_VERSION + 1
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match=r"format version 3; this aekit .* reads format version 2 only\. Upgrade"):
        aekit.load(saved)


def test_missing_file_and_missing_folder(saved, tmp_path):
    (saved / "scaler.json").unlink()
    with pytest.raises(ModelFileError, match=r"scaler.json' is missing"):
        aekit.load(saved)
    with pytest.raises(ModelFileError, match="does not exist or is not a folder"):
        aekit.load(tmp_path / "nowhere")


def test_symlink_pointing_outside_is_refused(saved, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text((saved / "history.json").read_text())
    (saved / "history.json").unlink()
    (saved / "history.json").symlink_to(outside)
    with pytest.raises(ModelFileError, match="is a symbolic link"):
        aekit.load(saved)


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda c: c["params"].update(latent_dim="ten"), r"'latent_dim' parameter of Autoencoder must be an int"),
        (lambda c: c["params"].update(evil="x"), r"unknown parameters \['evil'\]"),
        (lambda c: c["fitted"].update(n_features_in=10**400), "bad n_features_in"),
        (lambda c: c.update(module="not an object"), "must be objects"),
        (lambda c: c["module"].update(architecture="os.system"), "the module's architecture 'os.system' differs"),
        (lambda c: c["fitted"].update(precision="auto"), r"precision is 'auto', not one of \('fp32', 'bf16'\)"),
        (lambda c: c["fitted"].pop("precision"), r"precision is None, not one of \('fp32', 'bf16'\)"),
    ],
    ids=["wrong-type", "extra-key", "huge-number", "wrong-structure", "unknown-architecture", "unresolved-precision",
         "no-precision"],
)
def test_bad_config_values_are_refused(saved, edit, pattern):
    edit_config(saved, edit)
    with pytest.raises(ModelFileError, match=pattern):
        aekit.load(saved)


def test_deeply_nested_json_is_refused(saved):
    write_consistent(saved, "history.json", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ModelFileError, match="history.json is not valid JSON"):
        aekit.load(saved)


def test_set_output_pandas_survives_save_and_load(tmp_path):
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=["x", "y", "z"])
    ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).set_output(transform="pandas").fit(frame)
    ae.save(tmp_path / "model")
    loaded = aekit.load(tmp_path / "model")
    codes = loaded.transform(frame)
    assert isinstance(codes, pd.DataFrame) and list(codes.columns) == ["latent0", "latent1"]
    pd.testing.assert_frame_equal(codes, ae.transform(frame))
    # a model saved without set_output still gives arrays
    aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(frame).save(tmp_path / "plain")
    assert isinstance(aekit.load(tmp_path / "plain").transform(frame), np.ndarray)


@pytest.mark.parametrize(("units", "saved_name"), [((1.0, 2.0, 1.5), "shared"), ((1.0, 2.0, 1000.0), "standard")])
def test_the_scaler_auto_chose_is_saved_and_loaded_as_it_was(low_rank_data, tmp_path, units, saved_name):
    X = low_rank_data[:, :3] * units
    model = aekit.Autoencoder(latent_dim=2, **QUICK_FIT).fit(X)
    model.save(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "scaler.json").read_text())["name"] == saved_name
    loaded = aekit.load(tmp_path / "model")
    assert type(loaded.scaler_) is type(model.scaler_) and loaded.scaler == "auto"
    assert np.array_equal(loaded.scaler_.scale_, model.scaler_.scale_)
    assert np.array_equal(loaded.transform(X), model.transform(X))
    assert np.array_equal(loaded.inverse_transform(model.transform(X)), model.inverse_transform(model.transform(X)))
    edit_config(tmp_path / "model", lambda config: config["params"].update(scaler="minmax"))
    with pytest.raises(ModelFileError, match=f"holds the state of scaler '{saved_name}' but the model was fitted "
                                             "with scaler='minmax'"):
        aekit.load(tmp_path / "model")
