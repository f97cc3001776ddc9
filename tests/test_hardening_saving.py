"""Save targets, tried as a careless user and as an attacker: saving replaces an aekit model folder or an
empty folder, and nothing else; two processes saving to one place never both succeed silently.

Also the run-level errors that come with saving a fit: a diverged fit, a stray ``RANK``, devices this
machine lacks, tensors that require grad, and what ``aekit.save`` takes.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import aekit
from aekit import persistence
from aekit.cli import main as cli_main
from aekit.exceptions import InvalidInputError, InvalidInputTypeError, InvalidParameterValue, TrainingError
from aekit.workflows import fit_file
from conftest import TINY_FIT, write_consistent


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(60, 5))


@pytest.fixture(scope="module")
def model(data) -> aekit.Autoencoder:
    return aekit.Autoencoder(latent_dim=2, **TINY_FIT).fit(data)


def _one_line_error(capsys, command: str) -> str:
    error = capsys.readouterr().err
    assert error.startswith(f"aekit {command}: error: ") and error.count("\n") == 1, error
    return error


# ------------------------------------------------------------------------------- what may be replaced
def _user_folder(where: Path) -> Path:
    folder = where / "out"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    return folder


@pytest.mark.parametrize("overwrite", [False, True])
def test_save_never_deletes_a_folder_that_is_not_a_model(model, tmp_path, overwrite):
    folder = _user_folder(tmp_path)
    with pytest.raises(InvalidInputError, match=r"exists and is not an aekit model folder .*holds notes.txt\): aekit "
                                                r"replaces only model folders and empty folders"):
        model.save(folder, overwrite=overwrite)
    assert os.listdir(folder) == ["notes.txt"] and (folder / "notes.txt").read_text() == "my notes"
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging folder left


def test_an_extra_file_inside_a_model_folder_makes_it_no_model_folder(model, tmp_path):
    model.save(tmp_path / "model")
    (tmp_path / "model" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match=r"files that are not in its manifest: \['notes.txt'\]"):
        model.save(tmp_path / "model", overwrite=True)
    assert (tmp_path / "model" / "notes.txt").read_text() == "mine"


def test_a_model_folder_whose_files_do_not_match_its_manifest_is_not_replaced(model, tmp_path):
    model.save(tmp_path / "model")
    (tmp_path / "model" / "history.json").write_text("{}")
    with pytest.raises(InvalidInputError, match="history.json does not match the manifest"):
        model.save(tmp_path / "model", overwrite=True)
    assert (tmp_path / "model" / "history.json").read_text() == "{}"


def test_an_existing_model_needs_overwrite_and_the_error_names_it(model, data, tmp_path):
    model.save(tmp_path / "model")
    with pytest.raises(InvalidInputError, match=r"already exists\. Pass overwrite=True to replace it"):
        model.save(tmp_path / "model")
    with pytest.raises(InvalidInputError, match=r"already exists\. Pass overwrite=True to replace it"):
        aekit.save(model, tmp_path / "model")
    other = aekit.Autoencoder(latent_dim=3, **TINY_FIT).fit(data)
    aekit.save(other, tmp_path / "model", overwrite=True)
    assert aekit.load(tmp_path / "model").latent_dim == 3


def test_an_empty_folder_is_filled(model, tmp_path):
    (tmp_path / "model").mkdir()
    model.save(tmp_path / "model")
    assert aekit.load(tmp_path / "model").latent_dim == 2


@pytest.mark.parametrize("kind", ["file", "symlink-to-model", "symlink-to-user-folder", "dangling-symlink"])
def test_files_and_symlinks_at_the_target_are_refused_and_left_alone(model, tmp_path, kind):
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("precious")
    elif kind == "symlink-to-model":
        model.save(tmp_path / "real")
        target.symlink_to(tmp_path / "real")
    elif kind == "symlink-to-user-folder":
        target.symlink_to(_user_folder(tmp_path))
    else:
        target.symlink_to(tmp_path / "nowhere")
    before = os.readlink(target) if target.is_symlink() else target.read_text()
    with pytest.raises(InvalidInputError, match="exists and is (a file|a symbolic link), not a model folder"):
        model.save(target, overwrite=True)
    assert (os.readlink(target) if target.is_symlink() else target.read_text()) == before


def test_cli_fit_force_refuses_a_user_folder_before_training(data, tmp_path, capsys):
    np.save(tmp_path / "x.npy", data)
    folder = _user_folder(tmp_path)
    code = cli_main(["fit", str(tmp_path / "x.npy"), "-o", str(folder), "--force", "--epochs", "1", "--device", "cpu"])
    assert code == 2 and "is not an aekit model folder" in _one_line_error(capsys, "fit")
    assert os.listdir(folder) == ["notes.txt"]


def test_cli_fit_names_force_and_replaces_a_model_with_it(data, tmp_path, capsys):
    np.save(tmp_path / "x.npy", data)
    argv = ["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "model"), "--epochs", "1", "--device", "cpu",
            "--quiet"]
    assert cli_main(argv) == 0
    assert cli_main(argv) == 2
    assert "Pass --force to replace it" in _one_line_error(capsys, "fit")
    assert cli_main([*argv, "--force", "--latent-dim", "3"]) == 0
    assert aekit.load(tmp_path / "model").latent_dim == 3


def test_cli_demo_refuses_a_user_folder_and_an_existing_model_without_force(tmp_path, capsys, model):
    folder = _user_folder(tmp_path)
    assert cli_main(["demo", "-o", str(folder), "--force"]) == 2  # refused before the digits are even loaded
    assert "is not an aekit model folder" in _one_line_error(capsys, "demo")
    model.save(tmp_path / "model")
    assert cli_main(["demo", "-o", str(tmp_path / "model")]) == 2
    assert "Pass --force to replace it" in _one_line_error(capsys, "demo")
    assert os.listdir(folder) == ["notes.txt"] and aekit.load(tmp_path / "model").latent_dim == 2


def test_a_model_saved_by_someone_else_during_training_is_not_replaced(data, tmp_path, monkeypatch, model):
    """The target is checked before training and again at the rename: a model that appeared meanwhile stays."""
    np.save(tmp_path / "x.npy", data)
    target = tmp_path / "model"
    real_fit = aekit.Autoencoder.fit

    def fit_while_another_process_saves(self, X, y=None):
        fitted = real_fit(self, X, y)
        model.save(target)  # the other run finishes first
        return fitted

    monkeypatch.setattr(aekit.Autoencoder, "fit", fit_while_another_process_saves)
    with pytest.raises(InvalidInputError, match="already exists"):
        fit_file(tmp_path / "x.npy", target, latent_dim=3, **TINY_FIT)
    assert aekit.load(target).latent_dim == 2


def _save_in_a_child(model, target: Path, report: Path) -> int:
    """Fork a process that saves `model` to `target` and writes its outcome to `report`."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            model.save(target)
            report.write_text("saved")
        except InvalidInputError as error:
            report.write_text(f"refused: {error}")
        finally:
            os._exit(0)
    return pid


def test_two_processes_saving_to_one_folder_never_both_succeed(data, tmp_path, monkeypatch):
    """Both pass the early check, then reach the rename together (slowed there): one saves, one is refused."""
    from aekit import _files

    models = [aekit.Autoencoder(latent_dim=k, **TINY_FIT).fit(data) for k in (2, 3)]
    real_install = _files.install_folder

    def slow_install(*args):
        time.sleep(0.5)
        return real_install(*args)

    monkeypatch.setattr(_files, "install_folder", slow_install)
    target = tmp_path / "out" / "model"
    pids = [_save_in_a_child(model, target, tmp_path / f"report{i}") for i, model in enumerate(models)]
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    outcomes = [(tmp_path / f"report{i}").read_text() for i in range(2)]
    assert sorted(outcome.split(":")[0] for outcome in outcomes) == ["refused", "saved"], outcomes
    assert "already exists. Pass overwrite=True" in next(o for o in outcomes if o.startswith("refused"))
    winner = outcomes.index("saved")
    np.testing.assert_array_equal(aekit.load(target).transform(data), models[winner].transform(data))
    assert os.listdir(tmp_path / "out") == ["model"]


# ------------------------------------------------------------------------------- what is written
def test_folders_and_files_honour_the_umask(model, tmp_path):
    old = os.umask(0o022)
    try:
        model.save(tmp_path / "model")
        aekit.Autoencoder(latent_dim=2, **TINY_FIT, checkpoint_dir=str(tmp_path / "ckpt")).fit(np.eye(6, 5) + 1)
    finally:
        os.umask(old)
    checkpoint = sorted((tmp_path / "ckpt").iterdir())[-1]
    for folder in (tmp_path / "model", checkpoint):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder
        for path in folder.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_weights_bytes_are_the_same_between_saves_and_processes(model, tmp_path):
    """safetensors writes its header in hash-map order, which changes from one map (and process) to the next."""
    for i in range(6):
        model.save(tmp_path / f"a{i}")
    script = "import sys, aekit; aekit.load(sys.argv[1]).save(sys.argv[2])"
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "a0"), str(tmp_path / "b")], check=True,
                   env={**os.environ, "PYTHONHASHSEED": "7"})
    for name in ("weights.safetensors", "config.json", "scaler.json"):
        reference = (tmp_path / "a0" / name).read_bytes()
        for other in [*(f"a{i}" for i in range(1, 6)), "b"]:
            assert (tmp_path / other / name).read_bytes() == reference, (other, name)
    header_length = int.from_bytes((tmp_path / "a0" / "weights.safetensors").read_bytes()[:8], "little")
    header = json.loads((tmp_path / "a0" / "weights.safetensors").read_bytes()[8 : 8 + header_length])
    assert list(header) == sorted(header) and list(header["__metadata__"]) == sorted(header["__metadata__"])


# ------------------------------------------------------------------------------- what aekit.save takes
def test_saving_a_pipeline_names_its_autoencoder_step(data, tmp_path):
    pipeline = make_pipeline(StandardScaler(), aekit.Autoencoder(latent_dim=2, **TINY_FIT)).fit(data)
    with pytest.raises(InvalidInputTypeError, match=r"got a Pipeline with the steps \['standardscaler', "
                                                    r"'autoencoder'\]\. Save its Autoencoder step, "
                                                    r"aekit.save\(pipeline.named_steps\['autoencoder'\], path\)"):
        aekit.save(pipeline, tmp_path / "model")
    assert not (tmp_path / "model").exists()
    aekit.save(pipeline.named_steps["autoencoder"], tmp_path / "model")


def test_saving_something_else_is_a_clear_type_error(tmp_path):
    with pytest.raises(InvalidInputTypeError, match="aekit.save saves a fitted aekit.Autoencoder; got StandardScaler"):
        aekit.save(StandardScaler(), tmp_path / "model")


# ------------------------------------------------------------------------------- tensors, devices, runs
def test_tensors_that_require_grad_are_read_as_values(model, data):
    X = torch.tensor(data, dtype=torch.float32, requires_grad=True)
    np.testing.assert_array_equal(model.transform(X), model.transform(data.astype(np.float32)))
    codes = torch.tensor(model.transform(data), requires_grad=True)
    np.testing.assert_array_equal(model.inverse_transform(codes), model.inverse_transform(codes.detach().numpy()))
    assert model.reconstruction_error(X).shape == (len(data),)


@pytest.mark.parametrize("device", ["mps", "xpu", "hpu", "xpu:1"])
def test_a_model_saved_on_an_absent_device_loads_and_runs_on_the_cpu(model, data, tmp_path, device):
    model.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["params"]["device"] = device
    write_consistent(tmp_path / "model", "config.json", json.dumps(config).encode())
    loaded = aekit.load(tmp_path / "model")
    assert next(loaded.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.transform(data), model.transform(data))


@pytest.mark.parametrize("device", ["xpu", "mps", "hpu", "cuda:7"])
def test_fitting_on_an_absent_device_is_a_clear_error(data, tmp_path, capsys, device):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(InvalidParameterValue, match=rf"The 'device' parameter is '{device}' but"):
        aekit.Autoencoder(**{**TINY_FIT, "device": device}).fit(data)
    np.save(tmp_path / "x.npy", data)
    assert cli_main(["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m"), "--device", device]) == 2
    error = _one_line_error(capsys, "fit")
    assert "is not available on this machine" in error or "device(s), numbered from 0" in error
    assert not (tmp_path / "m").exists()


def test_a_diverged_fit_says_nothing_was_fitted_and_advises_only_what_helps(data, tmp_path, capsys):
    huge = {**TINY_FIT, "lr": 1e30, "epochs": 5}
    with pytest.raises(TrainingError) as standard:
        aekit.Autoencoder(**huge).fit(data * 1e18)
    assert "scaler='standard'" not in str(standard.value)
    assert str(standard.value).endswith("The fit failed: no model was fitted or saved.")
    unscaled = aekit.Autoencoder(**huge, scaler=None)
    with pytest.raises(TrainingError, match=r"Scaling the data \(scaler='standard'\) may also help"):
        unscaled.fit(data * 1e18)
    assert not hasattr(unscaled, "module_")  # what the message says: nothing fitted
    np.save(tmp_path / "x.npy", data * 1e18)
    code = cli_main(["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m"), "--lr", "1e30", "--epochs", "5",
                     "--device", "cpu"])
    error = _one_line_error(capsys, "fit")
    assert code == 2 and "no model was fitted or saved" in error and "were kept" not in error
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("environment", "pattern"), [
    ({"RANK": "abc"}, "The environment variable RANK is 'abc', not a process number"),
    ({"RANK": "0"}, "RANK=0 is set but WORLD_SIZE, MASTER_ADDR, MASTER_PORT are not"),
    ({"RANK": "0", "WORLD_SIZE": "two", "MASTER_ADDR": "localhost", "MASTER_PORT": "1"},
     "WORLD_SIZE is 'two', not a non-negative integer"),
])
def test_a_stray_rank_is_one_line_not_a_traceback(data, tmp_path, monkeypatch, capsys, environment, pattern):
    np.save(tmp_path / "x.npy", data)
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code = cli_main(["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m"), "--epochs", "1", "--device", "cpu"])
    assert code == 2 and pattern in _one_line_error(capsys, "fit")
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------------------- fuzz: any save target
TARGET_KINDS = ("absent", "empty", "model", "user-folder", "file", "symlink-model", "symlink-dangling",
                "model-plus-file", "model-missing-file", "manifest-only", "fifo", "nested-missing-parent")


def _make_target(kind: str, where: Path, model) -> Path:
    target = where / "t"
    if kind == "empty":
        target.mkdir()
    elif kind in ("model", "model-plus-file", "model-missing-file", "manifest-only"):
        model.save(target)
        if kind == "model-plus-file":
            (target / "extra").write_bytes(b"x")
        elif kind == "model-missing-file":
            (target / "scaler.json").unlink()
        elif kind == "manifest-only":
            for name in os.listdir(target):
                if name != persistence.MANIFEST:
                    (target / name).unlink()
    elif kind == "user-folder":
        target.mkdir()
        (target / "a.csv").write_text("1")
    elif kind == "file":
        target.write_text("x")
    elif kind == "symlink-model":
        model.save(where / "real")
        target.symlink_to(where / "real")
    elif kind == "symlink-dangling":
        target.symlink_to(where / "nowhere")
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "nested-missing-parent":
        target = where / "a" / "b" / "t"
    return target


def _snapshot(where: Path) -> dict:
    return {str(path.relative_to(where)): (path.is_symlink(), path.read_bytes() if path.is_file() and not
                                           path.is_symlink() else None) for path in where.rglob("*")}


@given(kind=st.sampled_from(TARGET_KINDS), overwrite=st.booleans())
def test_any_save_target_is_replaced_only_when_it_is_a_model_or_empty(model, tmp_path_factory, kind, overwrite):
    where = tmp_path_factory.mktemp("target")
    target = _make_target(kind, where, model)
    before = _snapshot(where)
    replaceable = kind in ("absent", "empty", "nested-missing-parent") or (kind == "model" and overwrite)
    try:
        model.save(target, overwrite=overwrite)
    except InvalidInputError as error:
        assert not replaceable, error
        assert _snapshot(where) == before  # refused: nothing changed, nothing left behind
        return
    assert replaceable, f"{kind} was replaced"
    assert aekit.load(target).latent_dim == 2
    assert [name for name in os.listdir(target.parent) if name.startswith(".")] == []


@pytest.mark.parametrize(("target", "pattern"), [
    ("afile/model", r"Cannot create the model folder .*'afile' is a file, not a folder"),
    ("a\0b", "Cannot create the model folder .*embedded null byte"),
], ids=["under-a-file", "nul-byte"])
def test_impossible_save_paths_are_one_clear_error(model, tmp_path, monkeypatch, target, pattern):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidInputError, match=pattern):
        model.save(target)
    assert sorted(os.listdir(tmp_path)) == ["afile"]


def test_a_checkpoint_folder_that_is_a_file_is_named(data, tmp_path):
    (tmp_path / "ckpt").write_text("x")
    with pytest.raises(InvalidInputError, match="Cannot create the checkpoint .*'.*ckpt' is a file, not a folder"):
        aekit.Autoencoder(**TINY_FIT, checkpoint_dir=str(tmp_path / "ckpt")).fit(data)
    assert (tmp_path / "ckpt").read_text() == "x"


def test_a_meta_tensor_is_refused_clearly(model):
    with pytest.raises(InvalidInputError, match="meta device, which holds no values"):
        model.transform(torch.ones(2, 5, device="meta"))


@pytest.mark.parametrize("checkpoints", ["model", "model/ckpt"])
def test_checkpoints_inside_the_model_folder_are_refused_before_training(data, tmp_path, capsys, checkpoints):
    np.save(tmp_path / "x.npy", data)
    code = cli_main(["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "model"), "--checkpoint-dir",
                     str(tmp_path / checkpoints), "--epochs", "1", "--device", "cpu"])
    assert code == 2 and "is the model folder" in _one_line_error(capsys, "fit")
    assert sorted(os.listdir(tmp_path)) == ["x.npy"]
