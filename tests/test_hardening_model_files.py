"""Hostile model folders, tried systematically: loading gives a model or a ModelFileError, nothing else.

tests/test_persistence.py holds one example of each attack; here hypothesis varies them (any field of
any JSON file replaced by any JSON value, bytes flipped anywhere, safetensors headers with any
shapes and offsets) and every file of the folder gets each treatment (missing, symlink, pickle,
not a regular file). Loading must never execute code, allocate what a header claims, read outside
the folder, write anything, or return a model that computes NaN.
"""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import aekit
from aekit import persistence
from aekit.exceptions import InvalidInputError, ModelFileError
from conftest import JSON_VALUES, TINY_FIT, copy_model, leaf_paths, replace_at, write_consistent

FILES = (*persistence.JSON_FILES, persistence.WEIGHTS, persistence.MANIFEST)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(60, 5))


@pytest.fixture(scope="module")
def template(data, tmp_path_factory) -> Path:
    """A valid saved MLP model (the tests name its tensors and its standard scaler's fields); tests copy it and
    damage the copy."""
    folder = tmp_path_factory.mktemp("template") / "model"
    aekit.Autoencoder(latent_dim=2, architecture="mlp", scaler="standard", **TINY_FIT).fit(data).save(folder)
    return folder


def load_outcome(folder: Path, data: np.ndarray) -> str:
    """Load and use the model: "loaded" (then its outputs are finite) or "refused" (ModelFileError).

    A model whose (valid but odd) scaler or weights make the data overflow float32 may load and then
    refuse the data with aekit's InvalidInputError. Any other exception escapes and fails the test.
    """
    try:
        model = aekit.load(folder)
    except ModelFileError as error:
        assert str(error) and "\n" not in str(error).strip()
        return "refused"
    try:
        codes = model.transform(data)
        errors = model.reconstruction_error(data)
        labels = model.predict(data)
    except InvalidInputError as error:
        assert "too large for float32" in str(error) or "overflow float32" in str(error)
        return "refused at use"
    assert codes.shape == (len(data), model.latent_dim_) and np.isfinite(codes).all()
    assert not np.isnan(errors).any()  # an error can overflow to inf (a sure outlier), never be NaN
    assert set(np.unique(labels)) <= {-1, 1}
    return "loaded"


def _at(document, path: tuple):
    for step in path:
        document = document[step]
    return document


# ------------------------------------------------------------------------------- JSON, any field
@pytest.mark.parametrize("name", persistence.JSON_FILES)
@given(choice=st.data())
def test_any_field_replaced_by_any_json_value_loads_or_is_refused(template, data, name, choice):
    document = json.loads((template / name).read_text())
    position = choice.draw(st.sampled_from(leaf_paths(document)), label="position")
    new_value = choice.draw(JSON_VALUES, label="value")
    hostile = replace_at(document, position, new_value)
    with tempfile.TemporaryDirectory() as where:
        folder = copy_model(template, Path(where))
        write_consistent(folder, name, json.dumps(hostile, allow_nan=True).encode())
        load_outcome(folder, data)


@pytest.mark.parametrize("name", persistence.JSON_FILES)
@given(choice=st.data())
def test_any_key_removed_or_added_loads_or_is_refused(template, data, name, choice):
    document = json.loads((template / name).read_text())
    containers = [p for p in leaf_paths(document) if isinstance(_at(document, p), dict)]
    position = choice.draw(st.sampled_from(containers), label="object")
    target = copy.deepcopy(_at(document, position))
    if target and choice.draw(st.booleans(), label="remove"):
        target.pop(choice.draw(st.sampled_from(sorted(target)), label="key"))
    else:
        target[choice.draw(st.text(min_size=1, max_size=8), label="new key")] = choice.draw(JSON_VALUES)
    with tempfile.TemporaryDirectory() as where:
        folder = copy_model(template, Path(where))
        write_consistent(folder, name, json.dumps(replace_at(document, position, target)).encode())
        load_outcome(folder, data)


@pytest.mark.parametrize(
    ("section", "key", "value", "pattern"),
    [
        ("fitted", "threshold", float("nan"), r"threshold must be a finite number >= 0 .*got nan"),
        ("fitted", "threshold", float("inf"), r"threshold must be a finite number >= 0 .*got inf"),
        ("fitted", "n_iter", 10**100, r"n_iter must be an integer in \[0, 2\*\*32\)"),
        ("fitted", "seed", -1, r"seed must be an integer in \[0, 2\*\*32\)"),
        ("fitted", "evil", 1, r"unknown fitted attributes \['evil'\]"),
        (None, "evil", 1, r"unknown keys \['evil'\]"),
        (None, "estimator", "os.system", "estimator is 'os.system', not 'Autoencoder'"),
        (None, "format_version", 3, "format_version is 3"),
        ("module", "hidden_dims", [10**12], r"module.hidden_dims is 1000000000000; sizes must be in \[0, 2147483648\]"),
    ],
    ids=["nan-threshold", "inf-threshold", "huge-n-iter", "negative-seed", "extra-fitted-key", "extra-top-key",
         "other-estimator", "future-config-version", "huge-layer"],
)
def test_specific_hostile_config_values_are_refused_with_a_clear_message(template, data, tmp_path, section, key,
                                                                         value, pattern):
    config = json.loads((template / "config.json").read_text())
    (config if section is None else config[section])[key] = value
    folder = copy_model(template, tmp_path)
    write_consistent(folder, "config.json", json.dumps(config, allow_nan=True).encode())
    with pytest.raises(ModelFileError, match=pattern) as excinfo:
        aekit.load(folder)
    assert str(excinfo.value).endswith(persistence.DAMAGED)


def test_a_config_claiming_huge_layers_allocates_nothing(template, tmp_path):
    """The architecture is checked on the meta device: 10**12 x 5 floats (20 TB) is never allocated."""
    config = json.loads((template / "config.json").read_text())
    config["module"]["hidden_dims"] = [10**12, 10**12]
    folder = copy_model(template, tmp_path)
    write_consistent(folder, "config.json", json.dumps(config).encode())
    with pytest.raises(ModelFileError, match="sizes must be in"):
        aekit.load(folder)


@pytest.mark.parametrize("version", [0, -1, 1, 3, 10**6, "2", 2.0, True, None, [2]])
def test_manifest_format_versions_other_than_2_are_refused(template, tmp_path, version):
    folder = copy_model(template, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = version
    (folder / "manifest.json").write_text(json.dumps(manifest))
    refused = r"has format version .* reads format version 2 only\. (Upgrade aekit|Load it with the aekit that saved)"
    with pytest.raises(ModelFileError, match=refused):
        aekit.load(folder)


@pytest.mark.parametrize(
    "text",
    [b'{"a": ' + b"9" * 5000 + b"}", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe{}", b"", b"{'a': 1}", b"{} {}"],
    ids=["huge-integer", "deep-nesting", "not-utf8", "empty", "python-not-json", "trailing-data"],
)
@pytest.mark.parametrize("name", [*persistence.JSON_FILES, persistence.MANIFEST])
def test_pathological_json_text_in_every_file_is_refused(template, tmp_path, name, text):
    folder = copy_model(template, tmp_path)
    if name == persistence.MANIFEST:
        (folder / name).write_bytes(text)
    else:
        write_consistent(folder, name, text)
    with pytest.raises(ModelFileError, match=f"{name} is not valid JSON"):
        aekit.load(folder)


@pytest.mark.parametrize("text", [b'{"a": 1e99999}', b"null", b"[]", b'"text"', b"NaN"])
@pytest.mark.parametrize("name", [*persistence.JSON_FILES, persistence.MANIFEST])
def test_valid_json_of_the_wrong_kind_in_every_file_loads_or_is_refused(template, data, tmp_path, name, text):
    folder = copy_model(template, tmp_path)
    if name == persistence.MANIFEST:
        (folder / name).write_bytes(text)
    else:
        write_consistent(folder, name, text)
    # scaler.json holds null for a model fitted with scaler=None; history.json may hold odd numbers
    assert load_outcome(folder, data) == "refused" or (name, text) in {
        ("scaler.json", b"null"), ("history.json", b'{"a": 1e99999}'), ("environment.json", b'{"a": 1e99999}')}


# ------------------------------------------------------------------------------- bytes, any file
@pytest.mark.parametrize("name", [*persistence.JSON_FILES, persistence.WEIGHTS])
@given(choice=st.data())
def test_any_byte_changed_without_the_manifest_fails_the_checksum(template, name, choice):
    original = (template / name).read_bytes()
    position = choice.draw(st.integers(0, len(original) - 1), label="position")
    damage = choice.draw(st.sampled_from(["flip", "truncate", "append"]), label="damage")
    if damage == "flip":
        damaged = original[:position] + bytes([original[position] ^ 0xFF]) + original[position + 1:]
    elif damage == "truncate":
        damaged = original[:position]
    else:
        damaged = original + choice.draw(st.binary(min_size=1, max_size=16))
    with tempfile.TemporaryDirectory() as where:
        folder = copy_model(template, Path(where))
        (folder / name).write_bytes(damaged)
        with pytest.raises(ModelFileError, match=f"{name} does not match its checksum"):
            aekit.load(folder)


@given(choice=st.data())
def test_weights_with_any_byte_changed_and_a_matching_manifest_load_or_are_refused(template, data, choice):
    original = (template / persistence.WEIGHTS).read_bytes()
    position = choice.draw(st.integers(0, len(original) - 1), label="position")
    damaged = original[:position] + bytes([choice.draw(st.integers(0, 255))]) + original[position + 1:]
    with tempfile.TemporaryDirectory() as where:
        folder = copy_model(template, Path(where))
        write_consistent(folder, persistence.WEIGHTS, damaged)
        load_outcome(folder, data)


# ------------------------------------------------------------------------------- safetensors headers
def safetensors_bytes(header: dict, body: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


@given(
    shape=st.lists(st.integers(0, 2**62), min_size=0, max_size=4),
    dtype=st.sampled_from(["F32", "F64", "F16", "I64", "U8", "BOOL", "EVIL", "f32"]),
    offsets=st.tuples(st.integers(0, 2**40), st.integers(0, 2**40)),
    body_bytes=st.integers(0, 64),
    name=st.sampled_from(["encoder.0.weight", "decoder.2.bias", "x", "__metadata__"]),
)
def test_safetensors_headers_with_any_shape_dtype_and_offsets_are_refused(template, data, shape, dtype, offsets,
                                                                          body_bytes, name):
    header = {name: {"dtype": dtype, "shape": shape, "data_offsets": list(offsets)}}
    with tempfile.TemporaryDirectory() as where:
        folder = copy_model(template, Path(where))
        write_consistent(folder, persistence.WEIGHTS, safetensors_bytes(header, b"\0" * body_bytes))
        assert load_outcome(folder, data) == "refused"  # one tensor can never be the whole model


@pytest.mark.parametrize("length", [0, 7, 2**62, 2**64 - 1])
def test_safetensors_header_length_field_out_of_range_is_refused(template, tmp_path, length):
    folder = copy_model(template, tmp_path)
    size = (template / persistence.WEIGHTS).stat().st_size  # the size the architecture allows: parsed, then refused
    write_consistent(folder, persistence.WEIGHTS, (struct.pack("<Q", length) + b"{}").ljust(size, b" "))
    with pytest.raises(ModelFileError, match="not a valid safetensors file"):
        aekit.load(folder)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda w: {k: v.double() for k, v in w.items()}, r"dtype torch.float64; the architecture needs .*float32"),
        (lambda w: {**w, "extra": torch.zeros(1)}, r"unexpected tensors \['extra'\]"),
        (lambda w: {k: v for k, v in w.items() if k != "encoder.0.bias"}, r"missing tensors \['encoder.0.bias'\]"),
        (lambda w: {k: torch.full_like(v, float("nan")) for k, v in w.items()}, "holds NaN or infinite values"),
        (lambda w: {**w, "encoder.0.bias": torch.full_like(w["encoder.0.bias"], float("inf"))},
         "'encoder.0.bias' holds NaN or infinite"),
    ],
    ids=["float64", "extra-tensor", "missing-tensor", "nan-weights", "inf-weights"],
)
def test_well_formed_but_wrong_weights_are_refused(template, tmp_path, change, pattern):
    import safetensors.torch

    weights = safetensors.torch.load((template / persistence.WEIGHTS).read_bytes())
    folder = copy_model(template, tmp_path)
    write_consistent(folder, persistence.WEIGHTS, safetensors.torch.save(change(weights)))
    with pytest.raises(ModelFileError, match=pattern):
        aekit.load(folder)


# ------------------------------------------------------------------------------- pickles never run
class _Payload:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _pickles(marker: Path) -> dict[str, bytes]:
    buffer = io.BytesIO()
    torch.save({"encoder.0.weight": _Payload(marker)}, buffer)  # the usual "model.pt": a zip holding a pickle
    return {
        "pickle": pickle.dumps({"w": _Payload(marker)}),
        "pickle-protocol-0": pickle.dumps(_Payload(marker), protocol=0),
        "torch-save": buffer.getvalue(),
        "numpy-object-array": _npy_with_objects(marker),
    }


def _npy_with_objects(marker: Path) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["pickle", "pickle-protocol-0", "torch-save", "numpy-object-array"])
@pytest.mark.parametrize("name", FILES)
def test_pickles_in_place_of_any_file_are_refused_and_never_run(template, tmp_path, name, kind):
    marker = tmp_path / "code-ran"
    payload = _pickles(marker)[kind]
    assert not marker.exists()
    folder = copy_model(template, tmp_path)
    if name == persistence.MANIFEST:
        (folder / name).write_bytes(payload)
    else:
        write_consistent(folder, name, payload)
    with pytest.raises(ModelFileError):
        aekit.load(folder)
    assert not marker.exists()


# ------------------------------------------------------------------------------- the folder itself
@pytest.mark.parametrize("name", FILES)
def test_a_missing_file_is_named(template, tmp_path, name):
    folder = copy_model(template, tmp_path)
    (folder / name).unlink()
    with pytest.raises(ModelFileError, match=rf"{name}' is missing"):
        aekit.load(folder)


@pytest.mark.parametrize("target", ["outside-copy", "inside-copy", "dangling", "itself", "/etc/passwd"])
@pytest.mark.parametrize("name", FILES)
def test_a_symlink_in_place_of_any_file_is_refused(template, tmp_path, name, target):
    folder = copy_model(template, tmp_path)
    if target == "outside-copy":
        destination = tmp_path / f"outside-{name}"
        shutil.copy(folder / name, destination)
    elif target == "inside-copy":
        destination = folder / f"copy-{name}"
        shutil.copy(folder / name, destination)
    elif target == "dangling":
        destination = tmp_path / "nothing-here"
    elif target == "itself":
        destination = folder / name
    else:
        destination = Path(target)
    (folder / name).unlink()
    os.symlink(destination, folder / name)
    with pytest.raises(ModelFileError, match="is a symbolic link; model files must be regular files"):
        aekit.load(folder)


@pytest.mark.parametrize("kind", ["folder", "fifo"])
@pytest.mark.parametrize("name", FILES)
def test_a_non_regular_file_is_refused_without_blocking(template, tmp_path, name, kind):
    """A FIFO would block a reader forever: it is refused before being opened."""
    folder = copy_model(template, tmp_path)
    (folder / name).unlink()
    if kind == "folder":
        (folder / name).mkdir()
    else:
        os.mkfifo(folder / name)
    what = "a folder" if kind == "folder" else r"a FIFO \(named pipe\)"  # named as what it is, not "missing"
    with pytest.raises(ModelFileError, match=f"{name}' is {what}, not a regular file"):
        aekit.load(folder)


@pytest.mark.parametrize("path", ["file", "nowhere", "empty-folder"])
def test_a_path_that_is_no_model_folder(template, tmp_path, path):
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "file").write_text("{}")
    with pytest.raises(ModelFileError, match="does not exist or is not a folder|manifest.json' is missing"):
        aekit.load(tmp_path / path)


def test_loading_writes_nothing_and_reads_nothing_outside(template, data, tmp_path):
    folder = copy_model(template, tmp_path)
    before = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in tmp_path.rglob("*") if path.is_file()}
    model = aekit.load(folder)
    model.transform(data)
    after = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before


def test_a_device_without_data_in_the_config_falls_back_to_the_cpu(template, data, tmp_path):
    """device='meta' (valid for torch, useless for data) must not leave an unusable model."""
    config = json.loads((template / "config.json").read_text())
    config["params"]["device"] = "meta"
    folder = copy_model(template, tmp_path)
    write_consistent(folder, "config.json", json.dumps(config).encode())
    model = aekit.load(folder)
    np.testing.assert_array_equal(model.transform(data), aekit.load(template).transform(data))


def test_a_scaler_that_divides_by_zero_is_refused(template, tmp_path):
    scaler = json.loads((template / "scaler.json").read_text())
    scaler["scale_"] = [0.0] * len(scaler["scale_"])
    folder = copy_model(template, tmp_path)
    write_consistent(folder, "scaler.json", json.dumps(scaler).encode())
    with pytest.raises(ModelFileError, match="'scale_' holds zeros"):
        aekit.load(folder)


# ------------------------------------------------------------------------------- the CLI
def _hostile(kind: str, folder: Path, tmp_path: Path) -> None:
    if kind == "pickle-weights":
        write_consistent(folder, persistence.WEIGHTS, pickle.dumps({"w": _Payload(tmp_path / "code-ran")}))
    elif kind == "symlinked-config":
        shutil.copy(folder / "config.json", tmp_path / "outside.json")
        (folder / "config.json").unlink()
        os.symlink(tmp_path / "outside.json", folder / "config.json")
    elif kind == "future-version":
        manifest = json.loads((folder / persistence.MANIFEST).read_text())
        manifest["format_version"] = 99
        (folder / persistence.MANIFEST).write_text(json.dumps(manifest))
    elif kind == "huge-layer":
        config = json.loads((folder / "config.json").read_text())
        config["module"]["hidden_dims"] = [10**12]
        write_consistent(folder, "config.json", json.dumps(config).encode())
    elif kind == "missing-weights":
        (folder / persistence.WEIGHTS).unlink()
    else:
        (folder / "scaler.json").write_text("{}")  # changed without the manifest


@pytest.mark.parametrize("command", ["info", "encode"])
@pytest.mark.parametrize(
    "kind", ["pickle-weights", "symlinked-config", "future-version", "huge-layer", "missing-weights", "altered"]
)
def test_the_cli_refuses_hostile_model_folders_in_one_line(template, data, tmp_path, capsys, command, kind):
    from aekit.cli import main

    folder = copy_model(template, tmp_path)
    _hostile(kind, folder, tmp_path)
    np.save(tmp_path / "X.npy", data)
    output = tmp_path / "codes.csv"
    argv = ["info", str(folder)] if command == "info" else ["encode", str(folder), str(tmp_path / "X.npy"), "-o",
                                                            str(output)]
    code = main(argv)
    error = capsys.readouterr().err
    assert code == 2 and error.startswith(f"aekit {command}: error: ") and error.count("\n") == 1, error
    assert not output.exists() and not (tmp_path / "code-ran").exists()


# ------------------------------------------------------------------------------- costs checked before they are paid
def _never_built(*args, **kwargs):
    raise AssertionError("a module was built before the description was bounded")


@pytest.mark.parametrize(("hidden_dims", "pattern"), [
    ([1] * 10_000, r"module.hidden_dims lists 10000 layers; aekit models have at most 256"),
    ([1] * 100_000, r"lists 100000 layers"),
    ([2**40], r"module.hidden_dims is 1099511627776; sizes must be in \[0, 2147483648\]"),
], ids=["1e4-layers", "1e5-layers", "2^40-wide"])
def test_a_module_description_too_big_is_refused_from_the_json_alone(template, tmp_path, monkeypatch, hidden_dims,
                                                                     pattern):
    config = json.loads((template / "config.json").read_text())
    config["module"]["hidden_dims"] = hidden_dims
    config["params"]["hidden_dims"] = [1]
    folder = copy_model(template, tmp_path)
    write_consistent(folder, "config.json", json.dumps(config).encode())
    monkeypatch.setattr(persistence.checks, "build_model", _never_built)
    with pytest.raises(ModelFileError, match=pattern):
        aekit.load(folder)


def test_many_layers_in_the_parameters_are_refused_before_the_estimator_checks_them(template, tmp_path):
    config = json.loads((template / "config.json").read_text())
    config["params"]["hidden_dims"] = [1] * 100_000
    folder = copy_model(template, tmp_path)
    write_consistent(folder, "config.json", json.dumps(config).encode())
    with pytest.raises(ModelFileError, match="params.hidden_dims lists 100000 layers"):
        aekit.load(folder)


def _reads(monkeypatch) -> list[str]:
    names: list[str] = []
    real = persistence.files.read_file

    def recording_read(folder, name, *args, **kwargs):
        names.append(name)
        return real(folder, name, *args, **kwargs)

    monkeypatch.setattr(persistence.files, "read_file", recording_read)
    return names


def test_a_huge_sparse_weights_file_is_refused_before_it_is_read(template, tmp_path, monkeypatch):
    """A 64 GiB sparse file with a manifest that matches its size: the architecture needs ~200 bytes of it."""
    folder = copy_model(template, tmp_path)
    with open(folder / persistence.WEIGHTS, "r+b") as handle:
        handle.truncate(2**36)
    manifest = json.loads((folder / persistence.MANIFEST).read_text())
    manifest["files"][persistence.WEIGHTS]["bytes"] = 2**36
    (folder / persistence.MANIFEST).write_text(json.dumps(manifest))
    reads = _reads(monkeypatch)
    with pytest.raises(ModelFileError, match=r"weights.safetensors is 68719476736 bytes, but the architecture in "
                                             r"config.json needs 284 bytes"):
        aekit.load(folder)
    assert persistence.WEIGHTS not in reads


@pytest.mark.parametrize("name", [*persistence.JSON_FILES, persistence.WEIGHTS])
def test_a_file_whose_size_differs_from_the_manifest_is_refused_before_it_is_read(template, tmp_path, monkeypatch,
                                                                                  name):
    folder = copy_model(template, tmp_path)
    size = (folder / name).stat().st_size
    with open(folder / name, "ab") as handle:
        handle.write(b" " * 10)
    monkeypatch.setattr(os, "read", _never_built)  # nothing is read: the open descriptor's size decides
    real_fdopen = os.fdopen

    def no_reading_fdopen(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) == name:
            handle.read = _never_built
        return handle

    if os.path.isdir("/proc/self/fd"):
        monkeypatch.setattr(os, "fdopen", no_reading_fdopen)
    with pytest.raises(ModelFileError, match=rf"{name} does not match its checksum in manifest.json: it is {size + 10} "
                                             rf"bytes, not the {size} recorded"):
        aekit.load(folder)


# ------------------------------------------------------------------------------- every file checked
def _edit_json(template: Path, where: Path, name: str, edit) -> Path:
    document = json.loads((template / name).read_text())
    document = edit(document) or document
    folder = copy_model(template, where)
    write_consistent(folder, name, json.dumps(document, allow_nan=True).encode())
    return folder


@pytest.mark.parametrize(("edit", "pattern"), [
    (lambda h: h.update(train_loss="nan"), "history.json: 'train_loss' must be a list of numbers"),
    (lambda h: h.update(val_loss=["a"]), "history.json: 'val_loss' must be a list of numbers"),
    (lambda h: h.update(val_loss=[None]), "history.json: 'val_loss' must be a list of numbers"),
    (lambda h: h.update(best_epoch="3"), "history.json: 'best_epoch' must be an integer >= 0"),
    (lambda h: h.update(best_epoch=-1), "history.json: 'best_epoch' must be an integer >= 0"),
    (lambda h: h.update(seconds=-1), "history.json: 'seconds' must be a number >= 0"),
    (lambda h: h.update(seconds=float("inf")), "history.json: 'seconds' must be a number >= 0"),
    (lambda h: h.update(stop_reason=5), "history.json: 'stop_reason' must be a string"),
    (lambda h: h.update(stop_reason=True), "history.json: 'stop_reason' must be a string"),
    (lambda h: h.update(train_loss=[1.0] * 7), r"history.json: 'train_loss' has 7 epoch\(s\) but config.json says "
                                               r"n_iter=2"),
], ids=["train-loss-text", "val-loss-text", "val-loss-null", "best-epoch-text", "best-epoch-negative",
        "seconds-negative", "seconds-inf", "stop-reason-number", "stop-reason-bool", "epochs-disagree"])
def test_history_of_the_wrong_types_is_refused_at_load_so_info_never_crashes(template, tmp_path, capsys, edit,
                                                                             pattern):
    from aekit.cli import main

    folder = _edit_json(template, tmp_path, "history.json", edit)
    with pytest.raises(ModelFileError, match=pattern):
        aekit.load(folder)
    assert main(["info", str(folder)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize(("name", "edit", "pattern"), [
    ("scaler.json", lambda s: None if False else "null", "scaler.json: holds the state of scaler None but the model "
                                                         "was fitted with scaler='standard'"),
    ("config.json", lambda c: c["params"].update(scaler=None), "holds the state of scaler 'standard' but the model "
                                                               "was fitted with scaler=None"),
    ("config.json", lambda c: c["params"].update(scaler="minmax"), "scaler 'standard' but .* scaler='minmax'"),
    ("config.json", lambda c: c["params"].update(latent_dim=3), "the module's latent_dim 2 differs from the "
                                                                "parameter latent_dim=3"),
    ("config.json", lambda c: c["params"].update(architecture="linear"), "the module's architecture 'mlp' differs"),
    ("config.json", lambda c: c["fitted"].update(loss="bce"), "output_activation 'identity' does not go with the "
                                                              "bce loss"),
    ("config.json", lambda c: c["fitted"].update(threshold=-0.5), "threshold must be a finite number >= 0"),
    ("config.json", lambda c: c["fitted"].update(score_quantiles=[-1.0, 0.0, 1.0]),
     "score_quantiles must be a non-decreasing"),
    ("config.json", lambda c: c["fitted"].update(score_quantiles=[0.0, 1.0, float("inf")]),
     "score_quantiles must be a non-decreasing list of finite numbers >= 0"),
    ("config.json", lambda c: c["fitted"].update(score_quantiles=[0.0, float("nan")]),
     "score_quantiles must be a non-decreasing"),
    ("environment.json", lambda e: e.update(torch={"nested": [1]}), "environment.json: must be an object of names "
                                                                    "and plain values"),
], ids=["scaler-null", "params-scaler-none", "scaler-other", "latent-dim", "architecture", "loss-vs-output",
        "negative-threshold", "negative-quantile", "inf-quantile", "nan-quantile", "nested-environment"])
def test_files_that_disagree_with_each_other_are_refused(template, tmp_path, name, edit, pattern):
    if name == "scaler.json":
        folder = copy_model(template, tmp_path)
        write_consistent(folder, name, b"null")
    else:
        folder = _edit_json(template, tmp_path, name, edit)
    with pytest.raises(ModelFileError, match=pattern):
        aekit.load(folder)


def test_model_info_reports_the_environment_it_verified_without_reading_it_again(template, tmp_path, monkeypatch):
    from aekit.workflows import info as workflows  # where model_info looks the loader up

    folder = copy_model(template, tmp_path)
    (tmp_path / "evil.json").write_text('{"aekit": "\\u001b[31mswapped"}')
    real = workflows.load_model_and_environment

    def load_then_swap(path):
        loaded = real(path)
        (folder / "environment.json").unlink()
        os.symlink(tmp_path / "evil.json", folder / "environment.json")  # swapped after verification
        return loaded

    monkeypatch.setattr(workflows, "load_model_and_environment", load_then_swap)
    info = workflows.model_info(folder)
    assert info["environment"] == json.loads((template / "environment.json").read_text())


# ------------------------------------------------------------------------------- every JSON type, everywhere
WRONG_TYPES = st.sampled_from([None, True, False, 0, -1, 2**64, 1.5, -0.5, float("nan"), float("inf"), "", "x",
                               [], [1], ["a"], {}, {"a": 1}, [[[]]]])


@pytest.mark.parametrize("name", persistence.JSON_FILES)
@given(choice=st.data())
def test_any_field_of_any_json_file_of_any_type_is_refused_or_works_in_info(template, data, name, choice):
    """Each position (containers included) gets a value of another JSON type; load, info and its text must hold."""
    from aekit.cli.info import describe
    from aekit.workflows import model_info

    document = json.loads((template / name).read_text())
    position = choice.draw(st.sampled_from(leaf_paths(document)), label="position")
    hostile = replace_at(document, position, choice.draw(WRONG_TYPES, label="value"))
    with tempfile.TemporaryDirectory() as where:
        folder = copy_model(template, Path(where))
        write_consistent(folder, name, json.dumps(hostile, allow_nan=True).encode())
        if load_outcome(folder, data) != "loaded":
            return
        text = describe(model_info(folder))
        assert "model" in text and "threshold" in text
