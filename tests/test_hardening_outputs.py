"""What aekit writes and prints, handed hostile names and values: outputs, JSON, the terminal, pictures.

Each test is one attack that once got through (an output path that is the input, NaN in --json, a
terminal escape in a column name, an image model that could not be plotted, text labels refused, a
gray/RGB mismatch advised wrongly); the hypothesis properties vary the values and names at length
under `make fuzz`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import re
import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import aekit
from aekit.cli import main
from aekit.data import read_data, write_data
from aekit.exceptions import InvalidInputError
from aekit.workflows import decode_file, encode_file, fit_file, reconstruct_file, score_file
from conftest import TINY_FIT, make_node

OUTPUTS_FIT = {**TINY_FIT, "latent_dim": 1}


def strict_json(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity, as RFC 8259 parsers do."""
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def table_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    write_data(folder / "data.csv", rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    model = aekit.Autoencoder(**OUTPUTS_FIT).fit(read_data(folder / "data.csv").X)
    return folder, model


# ------------------------------------------------------------------------------ output = input
@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "dotted"])
@pytest.mark.parametrize("job", ["encode", "reconstruct", "score", "decode"])
def test_an_output_that_is_the_input_file_is_refused(tmp_path, table_model, how, job):
    folder, model = table_model
    data = tmp_path / "data.csv"
    if job == "decode":
        write_data(data, model.transform(read_data(folder / "data.csv").X), columns=["latent0"])
    else:
        data.write_bytes((folder / "data.csv").read_bytes())
    before = data.read_bytes()
    output = {"same": data, "dotted": tmp_path / "." / "data.csv", "symlink": tmp_path / "link.csv",
              "hardlink": tmp_path / "hard.csv"}[how]
    if how == "symlink":
        output.symlink_to(data)
    if how == "hardlink":
        os.link(data, output)
    function = {"encode": encode_file, "reconstruct": reconstruct_file, "score": score_file, "decode": decode_file}
    with pytest.raises(InvalidInputError, match=r"The output .* is the input file .*: writing it would replace"):
        function[job](model, data, output)
    assert data.read_bytes() == before
    assert output.is_symlink() == (how == "symlink")  # the link was not replaced by a file either


def test_the_cli_refuses_an_output_that_is_the_input(tmp_path, table_model, capsys):
    folder, model = table_model
    model.save(tmp_path / "model")
    data = tmp_path / "data.csv"
    data.write_bytes((folder / "data.csv").read_bytes())
    before = data.read_bytes()
    assert main(["score", str(tmp_path / "model"), str(data), "-o", str(data)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is the input file" in error and data.read_bytes() == before


# ------------------------------------------------------------------------------ outputs of every file type
@pytest.fixture(scope="module")
def saved(tmp_path_factory, table_model):
    """A saved model, its training table and its latent codes, for the commands that write files."""
    folder, model = table_model
    model.save(folder / "model")
    write_data(folder / "codes.csv", model.transform(read_data(folder / "data.csv").X), columns=["latent0"])
    return folder


def writing_command(command: str, folder: Path, output: Path) -> list[str]:
    """The argv of a command that writes `output` (plot: the folder of its pictures)."""
    model, data = str(folder / "model"), str(folder / "data.csv")
    return {"encode": ["encode", model, data, "-o", str(output)],
            "reconstruct": ["reconstruct", model, data, "-o", str(output)],
            "score": ["score", model, data, "-o", str(output)],
            "decode": ["decode", model, str(folder / "codes.csv"), "-o", str(output)],
            "export": ["export", model, "-o", str(output)],
            "report": ["report", model, data, "-o", str(output)],
            "plot": ["plot", model, "-o", str(output)]}[command]


OUTPUT_NAMES = {"encode": "out.npy", "reconstruct": "out.parquet", "score": "out.csv", "decode": "out.csv",
                "export": "fakenull.onnx", "report": "report.html", "plot": "plots"}


@pytest.mark.parametrize("kind", ["device", "fifo", "link-to-device"])
@pytest.mark.parametrize("command", sorted(OUTPUT_NAMES))
def test_no_command_replaces_a_device_or_a_fifo(tmp_path, saved, capsys, command, kind):
    output = tmp_path / OUTPUT_NAMES[command]
    target = output / "training_curves.png" if command == "plot" else output  # the picture written first
    target.parent.mkdir(exist_ok=True)
    what = make_node(target, kind)
    before = os.lstat(target)
    assert main([*writing_command(command, saved, output), "--quiet"]) == 2
    error = capsys.readouterr().err  # refused before any work: one line, nothing else printed
    assert error.count("\n") == 1 and f"it is {what}" in error and "not a regular file" in error, error
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert not [name for name in os.listdir(target.parent) if name.endswith(".tmp")]


@pytest.mark.parametrize("command", sorted(OUTPUT_NAMES))
def test_an_existing_output_is_replaced_only_with_force(tmp_path, saved, capsys, command):
    output = tmp_path / OUTPUT_NAMES[command]
    target = output / "training_curves.png" if command == "plot" else output
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(b"the user's file")
    assert main([*writing_command(command, saved, output), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "already exists. Pass --force" in error, error
    assert target.read_bytes() == b"the user's file"
    assert main([*writing_command(command, saved, output), "--quiet", "--force"]) == 0
    assert target.read_bytes() != b"the user's file" and target.stat().st_size > 0
    assert not [name for name in os.listdir(target.parent) if name.endswith(".tmp")]


def _python_writers(model, folder: Path) -> dict:
    """Each Python function that writes a file, as a call taking (output, overwrite)."""
    from aekit.plots import plot_training_curves
    from aekit.report import write_report

    data, codes = folder / "data.csv", folder / "codes.csv"
    return {
        "encode_file": lambda out, overwrite: encode_file(model, data, out, overwrite=overwrite),
        "reconstruct_file": lambda out, overwrite: reconstruct_file(model, data, out, overwrite=overwrite),
        "score_file": lambda out, overwrite: score_file(model, data, out, overwrite=overwrite),
        "decode_file": lambda out, overwrite: decode_file(model, codes, out, overwrite=overwrite),
        "write_data": lambda out, overwrite: write_data(out, np.ones((2, 2)), overwrite=overwrite),
        "to_onnx": lambda out, overwrite: model.to_onnx(out.with_suffix(".onnx"), overwrite=overwrite),
        "write_report": lambda out, overwrite: write_report(model, out, overwrite=overwrite),
        "plot_training_curves": lambda out, overwrite: plot_training_curves(model.history_, out, overwrite=overwrite),
    }


@pytest.mark.parametrize("function", ["encode_file", "reconstruct_file", "score_file", "decode_file", "write_data",
                                      "to_onnx", "write_report", "plot_training_curves"])
def test_python_writers_take_overwrite_false(tmp_path, saved, table_model, function):
    pytest.importorskip("onnx") if function == "to_onnx" else None
    write = _python_writers(table_model[1], saved)[function]
    output = tmp_path / "out.csv"
    output = output.with_suffix(".onnx") if function == "to_onnx" else output
    output.write_bytes(b"keep me")
    with pytest.raises(InvalidInputError, match=r"already exists\. Pass overwrite=True to replace it"):
        write(output, False)
    assert output.read_bytes() == b"keep me"
    write(output, True)
    assert output.read_bytes() != b"keep me"


@pytest.mark.parametrize("name", ["data.csv", "model/weights.safetensors", "model", "plain"])
def test_export_writes_only_an_onnx_name(tmp_path, saved, capsys, name):
    pytest.importorskip("onnx")
    (tmp_path / "data.csv").write_bytes((saved / "data.csv").read_bytes())
    shutil.copytree(saved / "model", tmp_path / "model")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert main(["export", str(tmp_path / "model"), "-o", str(tmp_path / name), "--force"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "an ONNX file's name ends in .onnx" in error, error
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


CHECKPOINT_FOLDER = "checkpoints/ckpt-e000001-s000000000"


@pytest.mark.parametrize("inside", ["model", "model-link", CHECKPOINT_FOLDER])
@pytest.mark.parametrize("command", sorted(OUTPUT_NAMES))
def test_nothing_is_written_inside_a_model_or_checkpoint_folder(tmp_path, saved, capsys, command, inside):
    from aekit.training.checkpoint import save_checkpoint

    shutil.copytree(saved / "model", tmp_path / "model")
    (tmp_path / "model-link").symlink_to(tmp_path / "model")
    save_checkpoint(tmp_path / "checkpoints", {"w": torch.zeros(1)}, epoch=1, step=0)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    output = tmp_path / inside / ("sub/" if command == "plot" else "") / OUTPUT_NAMES[command]
    argv = writing_command(command, saved, output)
    argv[1] = str(tmp_path / "model") if command != "decode" else argv[1]  # the model being used, too
    for force in ([], ["--force"]):
        assert main([*argv, "--quiet", *force]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "an aekit model or checkpoint folder" in error, error
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
    assert not (tmp_path / "model" / "sub").exists()


def test_image_rows_are_never_written_into_a_model_folder(tmp_path, image_folders, capsys):
    fit_file(image_folders / "gray", tmp_path / "model", **OUTPUTS_FIT)
    before = sorted(os.listdir(tmp_path / "model"))
    for output in (tmp_path / "model", tmp_path / "model" / "pngs"):
        assert main(["reconstruct", str(tmp_path / "model"), str(image_folders / "gray"), "-o", f"{output}/"]) == 2
        assert "an aekit model or checkpoint folder" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / "model")) == before


def test_success_lines_escape_control_characters_in_paths(tmp_path, saved, capsys):
    name = "out\x1b]0;owned\x07\x1b[2J"
    for command, output in (("score", f"{name}.csv"), ("export", f"{name}.onnx"), ("report", f"{name}.html"),
                            ("plot", name), ("encode", f"{name}.npy")):
        if command == "export":
            pytest.importorskip("onnx")
        assert main(writing_command(command, saved, tmp_path / output)) == 0
        out = capsys.readouterr().out
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", out), repr(out)
        assert "out\\x1b]0;owned\\x07\\x1b[2J" in out, out


def test_a_plot_that_fails_on_a_full_disk_leaves_no_folder(tmp_path, saved, capsys, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    assert main(["plot", str(saved / "model"), str(saved / "data.csv"), "-o", str(tmp_path / "new" / "plots")]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_a_plot_that_fails_halfway_removes_only_what_it_wrote(tmp_path, saved, monkeypatch):
    from aekit.plots import model as plots_model
    from aekit.plots import write_model_plots

    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "notes.txt").write_text("mine")

    def refuse(*args, **kwargs):
        raise InvalidInputError("disk full")

    monkeypatch.setattr(plots_model, "plot_error_histogram", refuse)  # the third picture fails
    with pytest.raises(InvalidInputError, match="disk full"):
        write_model_plots(aekit.load(saved / "model"), tmp_path / "plots", read_data(saved / "data.csv").X)
    assert os.listdir(tmp_path / "plots") == ["notes.txt"]


# Every kind of thing an output path may name; a device node only where this user may make one (root).
TARGET_KINDS = ["absent", "file", "fifo", "folder", "socket", "link-to-file", "link-to-fifo", "dangling-link",
                "inside-model", "inside-model-link", "inside-checkpoint", "the-model", "a-model-file",
                *(["device", "link-to-device"] if os.geteuid() == 0 else [])]
NAMES = st.text(st.sampled_from("ab-_.é\x1b[]\x07\t\u202e "), min_size=1, max_size=8).filter(
    lambda name: name.strip(".") != "" and "/" not in name)


def _place_target(root: Path, command: str, kind: str, name: str) -> tuple[Path, Path | None]:
    """Make the output path of `command` name a `kind` of thing under `root`; return it and the node to watch."""
    from aekit.training.checkpoint import save_checkpoint

    suffix = {"encode": ".npy", "reconstruct": ".parquet", "score": ".csv", "decode": ".csv", "export": ".onnx",
              "report": ".html", "plot": ""}[command]
    where = {"inside-model": root / "model", "inside-model-link": root / "model-link",
             "inside-checkpoint": root / CHECKPOINT_FOLDER}.get(kind, root)
    if kind.startswith("inside-checkpoint"):
        save_checkpoint(root / "checkpoints", {"w": torch.zeros(1)}, epoch=1, step=0)
    output = where / (name + suffix)
    if kind == "the-model":
        output = root / "model"
    elif kind == "a-model-file":
        output = root / "model" / ("weights.safetensors" if command != "export" else "config.onnx")
    node = output / "training_curves.png" if command == "plot" else output
    if kind in ("absent", "the-model", "a-model-file") or kind.startswith("inside"):
        return output, None
    node.parent.mkdir(parents=True, exist_ok=True)
    make_node(node, kind)
    return output, node


@given(command=st.sampled_from(sorted(OUTPUT_NAMES)), kind=st.sampled_from(TARGET_KINDS), force=st.booleans(),
       name=NAMES)
def test_output_targets_of_every_kind(saved, tmp_path_factory, command, kind, force, name):
    """Any writing command, onto any kind of target, with and without --force: written only onto a new name or
    (with --force) a regular file; otherwise one line, exit 2, and every file and node left as it was."""
    root = tmp_path_factory.mktemp("target")
    shutil.copytree(saved / "model", root / "model")
    (root / "model-link").symlink_to(root / "model")
    output, node = _place_target(root, command, kind, name)
    argv = writing_command(command, saved, output)
    argv[1] = str(root / "model") if command != "decode" else argv[1]  # the model being used, in harm's way
    before = {path: (os.lstat(path).st_ino, path.read_bytes() if path.is_file() and not path.is_symlink() else None)
              for path in root.rglob("*")}
    stream = io.StringIO()
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        code = main([*argv, *(["--force"] if force else [])])
    printed = stream.getvalue()
    writable = kind == "absent" or (kind == "file" and force)
    assert code == (0 if writable else 2), (kind, force, printed)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", printed), repr(printed)  # names shown escaped
    if not writable:
        assert printed.count("\n") == 1 and printed.startswith(f"aekit {command}: error: "), printed
        after = {path: (os.lstat(path).st_ino, path.read_bytes() if path.is_file() and not path.is_symlink() else None)
                 for path in root.rglob("*")}
        assert after == before
    else:
        written = output / "training_curves.png" if command == "plot" else output
        assert stat.S_ISREG(os.lstat(written).st_mode) and written.stat().st_size > 0
    assert sorted(os.listdir(root / "model")) == sorted(os.listdir(saved / "model"))
    assert not [path for path in root.rglob("*.tmp")]
    shutil.rmtree(root)


@pytest.mark.parametrize("file_id", ["/tmp/aekit-escaped", "../escaped", "a/../../escaped"])
def test_image_ids_from_the_data_never_leave_the_output_folder(tmp_path, image_folders, capsys, file_id):
    fit_file(image_folders / "gray", tmp_path / "model", **OUTPUTS_FIT)
    model = aekit.load(tmp_path / "model")
    codes = model.transform(read_data(image_folders / "gray").X)[:1]
    write_data(tmp_path / "codes.csv", codes, columns=["latent0"], ids=[file_id], id_name="file")
    assert main(["decode", str(tmp_path / "model"), str(tmp_path / "codes.csv"), "-o", f"{tmp_path / 'out'}/"]) == 2
    error = capsys.readouterr().err.splitlines()[-1]  # (after any warning of the decoding)
    assert error.startswith("aekit decode: error: ") and "its name leaves the folder" in error, error
    assert not Path("/tmp/aekit-escaped.png").exists() and not (tmp_path / "escaped.png").exists()
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ strict JSON
def test_info_json_is_strict_when_there_was_no_validation(tmp_path, capsys):
    X = np.random.default_rng(0).normal(size=(20, 3))
    aekit.Autoencoder(**{**OUTPUTS_FIT, "validation_fraction": 0.0}).fit(X).save(tmp_path / "model")
    assert main(["info", str(tmp_path / "model"), "--json"]) == 0
    info = strict_json(capsys.readouterr().out)
    assert info["training"]["val_loss"] is None and info["training"]["best_val_loss"] is None
    assert math.isfinite(info["training"]["train_loss"])


JSON_LEAVES = (st.floats() | st.integers(-10**20, 10**20) | st.booleans() | st.none() | st.text(max_size=5)
               | st.floats(width=32).map(np.float32) | st.floats().map(np.float64) | st.integers(-99, 99).map(np.int64))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=12)


def _expected(value):
    """An independent statement of the mapping: finite numbers kept, NaN and infinities None."""
    if isinstance(value, dict):
        return {str(key): _expected(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_expected(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and (value != value or value in (math.inf, -math.inf)):
        return None
    return value


@given(value=JSON_VALUES)
def test_any_summary_prints_as_strict_json(value):
    from aekit.cli import to_json

    assert strict_json(to_json({"summary": value})) == {"summary": _expected(value)}


# ------------------------------------------------------------------------------ the terminal
def test_info_escapes_control_characters_in_column_names(tmp_path, capsys):
    names = ["a\x1b]0;owned\x07", "b\x1b[2J", "c\u202ed", "tab\there"]
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 4)), columns=names)
    aekit.Autoencoder(**OUTPUTS_FIT).fit(X).save(tmp_path / "model")
    assert main(["info", str(tmp_path / "model")]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", out), repr(out)
    assert "a\\x1b]0;owned\\x07" in out and "b\\x1b[2J" in out and "c\\u202ed" in out and "tab\\there" in out


def test_error_lines_escape_control_characters(tmp_path, capsys):
    path = tmp_path / "data\x1b[31mred\x07.csv"  # named in the message as it is: "No such file ..."
    assert main(["fit", str(path), "-o", str(tmp_path / "model"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "\x1b" not in error and "\x07" not in error and "data\\x1b[31mred\\x07.csv" in error
    assert error.count("\n") == 1


@given(text=st.text())
def test_printable_leaves_no_control_character_and_keeps_printable_text(text):
    from aekit.cli import printable

    shown = printable(text)
    assert all(c.isprintable() or c == " " for c in shown)
    if all(c.isprintable() or c == " " for c in text):
        assert shown == text
    else:
        assert shown != text and "\\" in shown


# ------------------------------------------------------------------------------ images
@pytest.fixture(scope="module")
def image_folders(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name, shape in (("gray", (8, 8)), ("rgb", (8, 8, 3))):
        (folder / name).mkdir()
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8)).save(folder / name / f"{i}.png")
    return folder


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
@pytest.mark.parametrize("trained, given", [("gray", "rgb"), ("rgb", "gray")])
def test_gray_and_rgb_images_name_the_channels(tmp_path, image_folders, architecture, trained, given):
    from aekit.workflows import fit_file

    options = {"architecture": architecture} if architecture == "conv" else {"hidden_dims": [4]}
    fit_file(image_folders / trained, tmp_path / "model", **{**OUTPUTS_FIT, **options})
    names = {"gray": "1-channel (grayscale)", "rgb": "3-channel (RGB)"}
    mode = {"gray": "'L'", "rgb": "'RGB'"}[trained]
    with pytest.raises(InvalidInputError, match=re.escape(f"trained on {names[trained]} images; the images in "
                                                          f"{image_folders / given} are {names[given]}. Convert "
                                                          f"them (Pillow: Image.open(f).convert({mode})")):
        encode_file(tmp_path / "model", image_folders / given, tmp_path / "codes.csv")
    assert not (tmp_path / "codes.csv").exists()


@pytest.mark.parametrize("command, output", [("plot", "plots"), ("report", "report.html")])
@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_image_models_can_be_plotted_and_reported(tmp_path, image_folders, capsys, command, output, architecture):
    options = ["--architecture", "conv"] if architecture == "conv" else []
    assert main(["fit", str(image_folders / "rgb"), "-o", str(tmp_path / "model"), "--latent-dim", "2",
                 "--epochs", "2", "--quiet", *options]) == 0
    code = main([command, str(tmp_path / "model"), str(image_folders / "rgb"), "-o", str(tmp_path / output),
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = strict_json(captured.out)
    pictures = summary["files"] if command == "plot" else summary["figures"]
    assert "reconstructions" in pictures and "latent" in pictures


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(0)
    kinds = np.array(["cat", "dog", "fish"])[rng.integers(0, 3, size=60)]
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["x", "y", "z"]).assign(kind=kinds)
    frame.to_csv(folder / "data.csv", index=False)
    frame.to_parquet(folder / "data.parquet")
    aekit.Autoencoder(**{**OUTPUTS_FIT, "latent_dim": 2}).fit(frame[["x", "y", "z"]]).save(folder / "model")
    return folder, kinds


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("command, output", [("plot", "plots"), ("report", "report.html")])
def test_text_labels_colour_the_latent_scatter(tmp_path, labelled, capsys, suffix, command, output):
    folder, kinds = labelled
    code = main([command, str(folder / "model"), str(folder / f"data{suffix}"), "--label-column", "kind",
                 "-o", str(tmp_path / output), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / output).exists()


def test_text_labels_are_drawn_as_categories(tmp_path, labelled):
    from aekit.data import read_labels
    from aekit.plots import plot_latent

    folder, kinds = labelled
    labels = read_labels(folder / "data.csv", "kind")
    assert labels.tolist() == kinds.tolist()
    codes = np.random.default_rng(1).normal(size=(60, 2))
    drawn = plot_latent(codes, tmp_path / "latent.png", labels=labels, label_name="kind")
    expected = np.searchsorted(np.unique(kinds), kinds)  # categories sorted by name: cat 0, dog 1, fish 2
    np.testing.assert_array_equal(drawn["colors"], expected)


def test_a_label_column_on_an_image_folder_is_one_line(tmp_path, image_folders, capsys):
    assert main(["fit", str(image_folders / "gray"), "-o", str(tmp_path / "model"), "--latent-dim", "2",
                 "--epochs", "1", "--quiet"]) == 0
    assert main(["plot", str(tmp_path / "model"), str(image_folders / "gray"), "--label-column", "kind",
                 "-o", str(tmp_path / "plots")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "folder of images, which has no columns" in error


def test_plots_name_the_channels_too(tmp_path, image_folders, capsys):
    assert main(["fit", str(image_folders / "gray"), "-o", str(tmp_path / "model"), "--latent-dim", "2",
                 "--epochs", "1", "--quiet"]) == 0
    assert main(["plot", str(tmp_path / "model"), str(image_folders / "rgb"), "-o", str(tmp_path / "plots")]) == 2
    assert "1-channel (grayscale)" in capsys.readouterr().err
    assert not Path(tmp_path / "plots" / "latent.png").exists()


@pytest.mark.parametrize("command", ["sweep-plot", "report-on-data", "report-in-model", "plot-on-model"])
def test_pictures_and_reports_never_replace_the_data_or_the_model(tmp_path, table_model, capsys, command):
    folder, model = table_model
    model.save(tmp_path / "model")
    data = tmp_path / "data.csv"
    data.write_bytes((folder / "data.csv").read_bytes())
    before = {path: path.read_bytes() for path in [data, *sorted((tmp_path / "model").iterdir())]}
    argv = {"sweep-plot": ["sweep", str(data), "--dims", "1", "--epochs", "1", "--plot", str(data)],
            "report-on-data": ["report", str(tmp_path / "model"), str(data), "-o", str(data)],
            "report-in-model": ["report", str(tmp_path / "model"), str(data), "-o",
                                str(tmp_path / "model" / "config.json")],
            "plot-on-model": ["plot", str(tmp_path / "model"), str(data), "-o", str(tmp_path / "model")]}[command]
    assert main([*argv, "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and ("is the input file" in error or "an aekit model or checkpoint" in error), error
    assert {path: path.read_bytes() for path in before} == before
    assert sorted((tmp_path / "model").iterdir()) == sorted(path for path in before if path != data)


@pytest.mark.parametrize("inside", ["model", "model-link", CHECKPOINT_FOLDER])
def test_no_model_is_saved_inside_a_model_or_checkpoint_folder(tmp_path, saved, table_model, capsys, inside):
    from aekit.training.checkpoint import save_checkpoint

    shutil.copytree(saved / "model", tmp_path / "model")
    (tmp_path / "model-link").symlink_to(tmp_path / "model")
    save_checkpoint(tmp_path / "checkpoints", {"w": torch.zeros(1)}, epoch=1, step=0)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    with pytest.raises(InvalidInputError, match="an aekit model or checkpoint folder"):
        table_model[1].save(tmp_path / inside / "nested")
    assert main(["fit", str(saved / "data.csv"), "-o", str(tmp_path / inside / "nested"), "--epochs", "1",
                 "--quiet"]) == 2
    assert "an aekit model or checkpoint folder" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
