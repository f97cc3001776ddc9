"""The aekit command line end to end, in a temporary folder: every command, every format, the bad inputs.

Commands run in-process through ``main([...])`` for speed; two run as real ``python -m aekit``
processes to check the exit code and the single stderr line without a traceback.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import aekit
import aekit.workflows
from aekit.cli import main
from aekit.data import read_data
from conftest import QUICK_FIT_2D, assert_close, fit_flags
from conftest import cli_fails as fails
from conftest import cli_run as run

FIT_FLAGS = fit_flags(QUICK_FIT_2D)
COLUMNS = ["a", "b", "c", "d"]
COMMANDS = ["fit", "encode", "decode", "reconstruct", "score", "info", "demo"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Data in every input format with the same rows, and a model fitted on the CSV by `aekit fit`."""
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(80, 2)) @ rng.normal(size=(2, 4)) + 0.1 * rng.normal(size=(80, 4))).astype(np.float32)
    frame = pd.DataFrame(X, columns=COLUMNS)
    frame.to_csv(folder / "data.csv", index=False)
    frame[COLUMNS[::-1]].to_parquet(folder / "data.parquet", index=False)  # another column order
    np.save(folder / "data.npy", X)
    np.savez(folder / "data.npz", features=X)
    assert main(["fit", str(folder / "data.csv"), "-o", str(folder / "model"), "--quiet", *FIT_FLAGS]) == 0
    return folder, frame


def test_fit_prints_a_summary_and_json(workspace, tmp_path, capsys):
    folder, frame = workspace
    code, out, err = run(capsys, "fit", folder / "data.csv", "-o", tmp_path / "m", *FIT_FLAGS)
    # stderr is not a terminal: no progress bar, a line per epoch group instead (3 epochs: one each)
    progress = [line.split(":")[0] for line in err.splitlines() if not line.startswith("aekit fit: warning: ")]
    assert code == 0 and progress == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]  # and warnings, one line each
    assert "trained on 80 rows x 4 features" in out and f"model saved to {tmp_path / 'm'}" in out
    code, out, _ = run(capsys, "fit", folder / "data.npy", "-o", tmp_path / "m2", "--json", *FIT_FLAGS)
    summary = json.loads(out)
    assert code == 0 and summary["n_rows"] == 80 and summary["epochs"] == 3 and summary["model_dir"] == str(
        tmp_path / "m2")
    assert summary["threshold"] == aekit.load(tmp_path / "m2").threshold_
    assert run(capsys, "fit", folder / "data.csv", "-o", tmp_path / "m3", "--quiet", *FIT_FLAGS)[1] == ""


def test_fit_a_csv_of_20000_columns(tmp_path, capsys):
    """Wide tables (gene expression, spectra, images as rows) fit with the default model."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2)) @ rng.normal(size=(2, 20_000)) + 0.05 * rng.normal(size=(30, 20_000))
    pd.DataFrame(X.astype(np.float32)).add_prefix("g").to_csv(tmp_path / "wide.csv", index=False)
    code, out, err = run(capsys, "fit", tmp_path / "wide.csv", "-o", tmp_path / "m", "--epochs", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["n_features"] == 20_000 and aekit.load(tmp_path / "m").latent_dim_ == 2


def test_fit_never_overwrites_a_model_folder_without_force(workspace, tmp_path, capsys):
    folder, _ = workspace
    assert run(capsys, "fit", folder / "data.csv", "-o", tmp_path / "m", "--quiet", *FIT_FLAGS)[0] == 0
    before = (tmp_path / "m" / "weights.safetensors").read_bytes()
    err = fails(capsys, "fit", folder / "data.csv", "-o", tmp_path / "m", *FIT_FLAGS)
    assert err == f"aekit fit: error: Model folder {tmp_path / 'm'} already exists. Pass --force " \
                  "to replace it, or choose another output path."
    assert (tmp_path / "m" / "weights.safetensors").read_bytes() == before
    code, _, _ = run(capsys, "fit", folder / "data.csv", "-o", tmp_path / "m", "--force", "--quiet", *FIT_FLAGS,
                     "--latent-dim", "3")
    assert code == 0 and aekit.load(tmp_path / "m").module_.latent_dim == 3


@pytest.mark.parametrize("source", ["data.csv", "data.parquet", "data.npy", "data.npz"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_encode_every_input_and_output_format(workspace, tmp_path, capsys, source, suffix):
    folder, frame = workspace
    model = aekit.load(folder / "model")
    code, out, _ = run(capsys, "encode", folder / "model", folder / source, "-o", tmp_path / f"z{suffix}", "--json")
    assert code == 0 and json.loads(out) == {"output": str(tmp_path / f"z{suffix}"), "n_rows": 80, "n_columns": 2}
    codes = read_data(tmp_path / f"z{suffix}")
    assert_close(codes.X, model.transform(frame), rtol=1e-6, atol=1e-6, what=f"{source} -> {suffix}")
    if suffix != ".npy":
        assert codes.columns == ["latent0", "latent1"] and codes.ids.tolist() == list(range(80))


def test_decode_and_reconstruct(workspace, tmp_path, capsys):
    folder, frame = workspace
    model = aekit.load(folder / "model")
    assert run(capsys, "encode", folder / "model", folder / "data.csv", "-o", tmp_path / "z.parquet")[0] == 0
    code, out, _ = run(capsys, "decode", folder / "model", tmp_path / "z.parquet", "-o", tmp_path / "x.csv")
    assert code == 0 and out.startswith("wrote the decoded data of 80 rows (4 columns)")
    decoded = pd.read_csv(tmp_path / "x.csv")
    assert list(decoded.columns) == ["row", *COLUMNS]
    assert_close(decoded[COLUMNS], model.inverse_transform(model.transform(frame)), rtol=1e-5, atol=1e-5)
    assert run(capsys, "reconstruct", folder / "model", folder / "data.parquet", "-o", tmp_path / "r.npy")[0] == 0
    assert_close(np.load(tmp_path / "r.npy"), model.reconstruct(frame), rtol=1e-5, atol=1e-5)


def test_score_threshold_contamination_and_per_feature(workspace, tmp_path, capsys):
    folder, frame = workspace
    model = aekit.load(folder / "model")
    errors = model.outlier_scores(frame)
    code, out, _ = run(capsys, "score", folder / "model", folder / "data.csv", "-o", tmp_path / "s.csv",
                       "--per-feature", "--json")
    summary, scores = json.loads(out), pd.read_csv(tmp_path / "s.csv")
    assert code == 0 and list(scores.columns) == ["row", "reconstruction_error", "outlier_score", "outlier",
                                                  *(f"error_{c}" for c in COLUMNS)]
    assert_close(scores["reconstruction_error"], model.reconstruction_error(frame), rtol=1e-6, atol=0)
    assert_close(scores["outlier_score"], errors, rtol=1e-6, atol=0)
    assert summary["threshold"] == model.threshold_ and summary["n_outliers"] == int((errors > model.threshold_).sum())
    code, out, _ = run(capsys, "score", folder / "model", folder / "data.csv", "-o", tmp_path / "s.parquet",
                       "--threshold", float(np.median(errors)), "--json")
    assert code == 0 and json.loads(out)["n_outliers"] == int((errors > np.median(errors)).sum())
    code, out, _ = run(capsys, "score", folder / "model", folder / "data.csv", "-o", tmp_path / "s.npy",
                       "--contamination", "0.3", "--json")
    assert code == 0 and json.loads(out)["threshold"] < model.threshold_
    assert np.load(tmp_path / "s.npy").shape == (80, 3)
    with pytest.raises(SystemExit) as exit_:  # a usage error: argparse exits with 2
        main(["score", str(folder / "model"), str(folder / "data.csv"), "-o", str(tmp_path / "s.csv"),
              "--threshold", "1", "--contamination", "0.1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "not allowed with argument --threshold" in err


def test_info_human_and_json(workspace, capsys):
    folder, _ = workspace
    code, out, _ = run(capsys, "info", folder / "model")
    assert code == 0 and "features    4 (a, b, c, d)" in out and "versions    aekit" in out
    code, out, _ = run(capsys, "info", folder / "model", "--json")
    info = json.loads(out)
    assert code == 0 and info["columns"] == COLUMNS and info["training"]["epochs"] == 3


def test_image_folders(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)).save(images / f"{i}.png")
    assert run(capsys, "fit", images, "-o", tmp_path / "m", "--quiet", *FIT_FLAGS)[0] == 0
    code, _, _ = run(capsys, "score", tmp_path / "m", images, "-o", tmp_path / "s.csv")
    scores = pd.read_csv(tmp_path / "s.csv")
    assert code == 0 and scores["file"].tolist() == [f"{i}.png" for i in range(10)]
    Image.fromarray(rng.integers(0, 256, size=(8, 6, 3), dtype=np.uint8)).save(images / "tall.png")
    err = fails(capsys, "encode", tmp_path / "m", images, "-o", tmp_path / "z.csv")
    assert "differ in size" in err and "--image-size HxW" in err
    code, _, _ = run(capsys, "encode", tmp_path / "m", images, "-o", tmp_path / "z.csv", "--image-size", "6x6")
    assert code == 0 and len(pd.read_csv(tmp_path / "z.csv")) == 11


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "example" in capsys.readouterr().out


def test_bad_inputs_are_one_line_errors(workspace, tmp_path, capsys):
    folder, frame = workspace
    model = folder / "model"
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "data.txt").write_text("a,b\n1,2\n")
    frame.assign(b="x").to_csv(tmp_path / "text.csv", index=False)  # a model column that is not numeric
    frame.drop(columns="d").to_csv(tmp_path / "three.csv", index=False)
    (tmp_path / "no_images").mkdir()
    (tmp_path / "no_images" / "notes.txt").write_text("nothing to see")
    cases = {
        ("encode", model, tmp_path / "missing.csv"): "No such file or folder",
        ("encode", model, tmp_path / "empty.csv"): "is empty",
        ("encode", model, tmp_path / "data.txt"): "unsupported extension '.txt'",
        ("encode", model, tmp_path / "text.csv"): "Column 'b'",
        ("encode", model, tmp_path / "three.csv"): "lacks 'd'",
        ("encode", model, tmp_path / "no_images"): "Found no images",
        ("encode", tmp_path / "no_model", folder / "data.csv"): "does not exist",
    }
    for (command, model_dir, data), expected in cases.items():
        err = fails(capsys, command, model_dir, data, "-o", tmp_path / "out.csv")
        assert err.startswith(f"aekit {command}: error: ") and expected in err, err
    assert "Use one of .csv, .parquet, .npy" in fails(capsys, "encode", model, folder / "data.csv",
                                                       "-o", tmp_path / "z.json")
    assert not (tmp_path / "out.csv").exists()
    # a text column in a table to fit is a category (the table model), no error
    assert main(["fit", str(tmp_path / "text.csv"), "-o", str(tmp_path / "m"), *FIT_FLAGS, "--quiet"]) == 0


def test_a_corrupt_model_folder_is_refused(workspace, tmp_path, capsys):
    folder, _ = workspace
    import shutil

    shutil.copytree(folder / "model", tmp_path / "model")
    weights = tmp_path / "model" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    for command in (["info"], ["encode"], ["score"]):
        extra = [] if command == ["info"] else [folder / "data.csv", "-o", tmp_path / "z.csv"]
        err = fails(capsys, *command, tmp_path / "model", *extra)
        assert "weights.safetensors does not match its checksum" in err


def test_os_errors_become_one_line(workspace, tmp_path, capsys, monkeypatch):
    import aekit.cli.info

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(aekit.workflows, "model_info", unreadable)  # imported by the command when it runs
    err = fails(capsys, "info", tmp_path / "m")
    assert err == f"aekit info: error: [Errno 13] Permission denied: '{tmp_path / 'm'}'. Check the path and its " \
                  "permissions."


def _python_m_aekit(*argv):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "aekit", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_python_m_aekit_exit_code_and_one_line_without_traceback(workspace, tmp_path):
    folder, _ = workspace
    result = _python_m_aekit("encode", folder / "model", tmp_path / "missing.csv", "-o", tmp_path / "z.csv")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"aekit encode: error: No such file or folder: {tmp_path / 'missing.csv'}.")
    debug = _python_m_aekit("encode", folder / "model", tmp_path / "missing.csv", "-o", tmp_path / "z.csv", "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "InvalidInputError" in debug.stderr


def test_python_m_aekit_runs_a_command(workspace, tmp_path):
    folder, _ = workspace
    result = _python_m_aekit("score", folder / "model", folder / "data.npz", "-o", tmp_path / "s.csv", "--json")
    assert result.returncode == 0 and result.stderr == "" and json.loads(result.stdout)["n_rows"] == 80


def test_a_closed_pipe_ends_quietly(workspace, capsys, monkeypatch):
    import aekit.cli.info

    def reader_gone(args):
        raise BrokenPipeError(32, "Broken pipe")

    folder, _ = workspace
    monkeypatch.setattr(aekit.cli.info, "run", reader_gone)
    assert main(["info", str(folder / "model")]) == 141 and capsys.readouterr().err == ""


def test_version_and_help_do_not_import_torch():
    """They answer at once: torch (seconds on a cold start) is imported only by a command that runs, or by a
    command's --help, which reads the library's defaults to show them."""
    probe = ("import sys, contextlib, io\nfrom aekit.cli import main\n"
             "for argv in (['--version'], ['--help']):\n"
             "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
             "        main(argv)\n"
             "print(sorted(m for m in ('torch', 'sklearn', 'numpy', 'pandas') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_threads(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--threads N" in capsys.readouterr().out


def test_threads_is_used_while_the_command_runs_and_restored(workspace, capsys, monkeypatch):
    import torch

    folder, _ = workspace
    seen = []
    real_model_info = aekit.workflows.model_info

    def recording_model_info(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_model_info(*args, **kwargs)

    monkeypatch.setattr(aekit.workflows, "model_info", recording_model_info)
    before = torch.get_num_threads()
    code, _, _ = run(capsys, "info", folder / "model", "--threads", "1")
    assert code == 0 and seen == [1] and torch.get_num_threads() == before
    with pytest.raises(SystemExit) as exit_:
        main(["info", str(folder / "model"), "--threads", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --threads: expected a positive number of threads such as 1 or 4, got '0'" in err


def test_info_shows_the_machine_and_fit_takes_precision(workspace, tmp_path, capsys):
    folder, _ = workspace
    code, out, _ = run(capsys, "fit", folder / "data.csv", "-o", tmp_path / "m", *FIT_FLAGS, "--precision", "fp32")
    assert code == 0 and aekit.load(tmp_path / "m").precision == "fp32"
    code, out, _ = run(capsys, "info", tmp_path / "m")
    machine = [line for line in out.splitlines() if line.startswith(("machine ", "kernels "))]
    assert code == 0 and len(machine) == 2 and " threads (" in machine[0]
    assert machine[1].startswith("kernels     auto: ")
    code, out, _ = run(capsys, "info", tmp_path / "m", "--json")
    assert set(json.loads(out)["machine"]) >= {"cpu", "isa", "bf16_native", "threads", "linear_kernel"}


