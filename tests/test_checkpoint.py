"""Checkpoints: safe encoding, atomic folders, resume bit for bit (also after SIGKILL), Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import safetensors.torch
import torch

import aekit
from aekit.exceptions import InvalidParameterValue, ModelFileError
from aekit.models.mlp import MLPAutoencoder
from aekit.training.checkpoint import (
    Checkpointer,
    decode_state,
    encode_state,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from aekit.training.config import TrainConfig
from aekit.training.loop import fit_module


def mse(module, batch):
    return ((module(batch)[0] - batch) ** 2).mean()


def _data(n=130, d=6):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(0))


def _model():
    torch.manual_seed(0)
    return MLPAutoencoder(6, 2, hidden_dims=(5,))


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def _config(**overrides):
    return TrainConfig(**{"epochs": 6, "batch_size": 16, "seed": 3, "patience": 100, **overrides})


@pytest.fixture(scope="module")
def uninterrupted():
    """Weights and history of a 6-epoch run with no checkpoints."""
    model = _model()
    history = fit_module(model, mse, _data()[:100], _data()[100:], _config())
    return model.state_dict(), history


def test_optimizer_state_round_trips_exactly_through_json_and_safetensors():
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        mse(model, _data()).backward()
        optimizer.step()
    tensors: dict = {}
    document = encode_state(optimizer.state_dict(), tensors)
    import json

    restored = decode_state(json.loads(json.dumps(document)), safetensors.torch.load(safetensors.torch.save(tensors)))
    fresh = torch.optim.Adam(_model().parameters(), lr=0.5)
    fresh.load_state_dict(restored)
    expected, got = optimizer.state_dict(), fresh.state_dict()
    assert got["param_groups"] == expected["param_groups"]
    for index, state in expected["state"].items():
        for key, value in state.items():
            assert torch.equal(got["state"][index][key], value)


def test_unsupported_values_are_refused_rather_than_pickled():
    with pytest.raises(aekit.InvalidInputError, match=r"Cannot checkpoint 'state.f': a value of type object"):
        encode_state({"f": object()}, {})


def test_half_written_or_corrupt_checkpoints_are_never_picked_up(tmp_path):
    save_checkpoint(tmp_path, {"w": torch.ones(3)}, epoch=1, step=0)
    no_manifest = save_checkpoint(tmp_path, {"w": torch.full((3,), 2.0)}, epoch=2, step=0)
    corrupt = save_checkpoint(tmp_path, {"w": torch.full((3,), 3.0)}, epoch=3, step=0)
    (no_manifest / "manifest.json").unlink()  # as if killed before the manifest was written
    data = (corrupt / "tensors.safetensors").read_bytes()
    (corrupt / "tensors.safetensors").write_bytes(data[:-4])  # truncated
    (tmp_path / ".ckpt-e000004-s000000000.abc.tmp").mkdir()  # a staging folder left by a crash
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "ckpt-e000001-s000000000", "ckpt-e000002-s000000000", "ckpt-e000003-s000000000"
    ]
    with pytest.raises(ModelFileError, match="does not match its checksum"):
        load_checkpoint(corrupt)
    with pytest.warns(RuntimeWarning, match="Skipping checkpoint"):
        state = Checkpointer(tmp_path, resume=True).latest()
    assert torch.equal(state["w"], torch.ones(3))


def test_keeps_only_the_newest_checkpoints_and_a_fresh_run_clears_old_ones(tmp_path):
    checkpoints = Checkpointer(tmp_path, keep=2)
    for epoch in range(1, 5):
        checkpoints.save({"epoch": epoch}, epoch=epoch, step=0)
    assert [load_checkpoint(p)["epoch"] for p in list_checkpoints(tmp_path)] == [3, 4]
    with pytest.warns(UserWarning, match=r"removed 2 checkpoint\(s\) of an earlier run .*ckpt-e000003-s000000000"):
        Checkpointer(tmp_path, resume=False)
    assert list_checkpoints(tmp_path) == [] and os.listdir(tmp_path) == []


def _files_under(folder) -> dict:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("stranger", ["notes.txt in a checkpoint", "notes.txt", "a folder", "ckpt-e000009-s000000000",
                                      "a link to a checkpoint", "a checkpoint name without manifest"])
def test_a_fresh_run_refuses_a_checkpoint_folder_holding_anything_else(tmp_path, stranger):
    for epoch in (1, 2):
        save_checkpoint(tmp_path, {"w": torch.ones(2)}, epoch=epoch, step=0)
    first = list_checkpoints(tmp_path)[0]
    if stranger == "notes.txt in a checkpoint":
        (first / "notes.txt").write_text("mine")
    elif stranger == "notes.txt":
        (tmp_path / "notes.txt").write_text("mine")
    elif stranger == "a folder":
        (tmp_path / "results").mkdir()
    elif stranger == "ckpt-e000009-s000000000":  # a checkpoint's name on a plain file
        (tmp_path / stranger).write_text("mine")
    elif stranger == "a link to a checkpoint":
        (tmp_path / "ckpt-e000005-s000000000").symlink_to(first)
    else:
        (tmp_path / "ckpt-e000007-s000000000").mkdir()
        (tmp_path / "ckpt-e000007-s000000000" / "state.json").write_text("{}")
    before = _files_under(tmp_path)
    with pytest.raises(aekit.InvalidInputError, match=r"holds what aekit did not write there \(.+\), so a fresh run "
                                                      r"will not clear it.*--resume"):
        Checkpointer(tmp_path, resume=False)
    assert _files_under(tmp_path) == before


def test_a_fresh_run_removes_the_leftovers_of_a_killed_save(tmp_path):
    save_checkpoint(tmp_path, {"w": torch.ones(2)}, epoch=1, step=0)
    leftover = tmp_path / ".ckpt-e000002-s000000000.0123456789ab.tmp"  # a save killed before its rename
    leftover.mkdir()
    (leftover / "tensors.safetensors").write_bytes(b"half")
    with pytest.warns(UserWarning, match=r"removed 2 checkpoint"):
        Checkpointer(tmp_path, resume=False)
    assert os.listdir(tmp_path) == []


def test_resume_removes_nothing_and_pruning_spares_a_users_file(tmp_path):
    checkpoints = Checkpointer(tmp_path, keep=1)
    checkpoints.save({"epoch": 1}, epoch=1, step=0)
    (list_checkpoints(tmp_path)[0] / "notes.txt").write_text("mine")
    checkpoints.save({"epoch": 2}, epoch=2, step=0)  # prunes epoch 1, but not the user's file
    assert (tmp_path / "ckpt-e000001-s000000000" / "notes.txt").read_text() == "mine"
    before = _files_under(tmp_path)
    Checkpointer(tmp_path, resume=True)
    assert _files_under(tmp_path) == before


@pytest.mark.parametrize("kind", ["file", "inside-a-model"])
def test_a_checkpoint_folder_that_is_a_file_or_inside_a_model_is_refused_before_training(tmp_path, capsys, kind):
    from aekit.cli import main

    X = np.random.default_rng(0).normal(size=(40, 3))
    np.save(tmp_path / "x.npy", X)
    aekit.Autoencoder(latent_dim=1, hidden_dims=[4], epochs=1, random_state=0).fit(X).save(tmp_path / "model")
    checkpoints = tmp_path / "x.npy" if kind == "file" else tmp_path / "model" / "ckpt"
    before = _files_under(tmp_path)
    assert main(["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "new"), "--epochs", "1", "--latent-dim", "1",
                 "--checkpoint-dir", str(checkpoints), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert ("is a file, not a folder" if kind == "file" else "an aekit model or checkpoint folder") in error, error
    assert _files_under(tmp_path) == before and not (tmp_path / "new").exists()


def test_fit_help_says_what_a_fresh_run_removes(capsys):
    from aekit.cli import main

    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Without --resume, a fit first removes the checkpoints an earlier run left in DIR" in text
    assert "a DIR holding anything else is refused before training" in text


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_interrupted_and_resumed_run_keeps_the_learning_rate_schedule(tmp_path, schedule):
    config = _config(lr_schedule=schedule, patience=3, lr=0.05)
    plain = _model()
    fit_module(plain, mse, _data()[:100], _data()[100:], config)
    calls = {"n": 0}

    def interrupted(module, batch):
        calls["n"] += module.training
        if calls["n"] == 25 and module.training:
            os.kill(os.getpid(), signal.SIGINT)
        return mse(module, batch)

    with pytest.raises(KeyboardInterrupt):
        fit_module(_model(), interrupted, _data()[:100], _data()[100:], config, checkpointer=Checkpointer(tmp_path))
    resumed = _model()
    fit_module(resumed, mse, _data()[:100], _data()[100:], config, checkpointer=Checkpointer(tmp_path, resume=True))
    _assert_same_weights(resumed.state_dict(), plain.state_dict())


def test_resuming_a_finished_shorter_run_gives_the_uninterrupted_weights(tmp_path, uninterrupted):
    weights, history = uninterrupted
    model = _model()
    fit_module(model, mse, _data()[:100], _data()[100:], _config(epochs=4), checkpointer=Checkpointer(tmp_path))
    model = _model()  # a fresh process would build the module anew
    resumed = fit_module(
        model, mse, _data()[:100], _data()[100:], _config(), checkpointer=Checkpointer(tmp_path, resume=True)
    )
    _assert_same_weights(model.state_dict(), weights)
    assert resumed.train_loss == history.train_loss and resumed.val_loss == history.val_loss


def test_ctrl_c_stops_after_the_step_saves_and_resume_matches(tmp_path, uninterrupted):
    weights, history = uninterrupted
    calls = {"n": 0}

    def interrupted_at_step_20(module, batch):
        calls["n"] += module.training  # training steps only, not validation batches
        if calls["n"] == 20 and module.training:  # epoch 3 (7 steps per epoch), step 6
            os.kill(os.getpid(), signal.SIGINT)
        return mse(module, batch)

    with pytest.raises(KeyboardInterrupt, match=r"stopped at epoch 3, step 6; checkpoint saved in .*resume=True"):
        fit_module(_model(), interrupted_at_step_20, _data()[:100], _data()[100:], _config(),
                   checkpointer=Checkpointer(tmp_path, every=100))
    assert list_checkpoints(tmp_path)[-1].name == "ckpt-e000002-s000000006"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    model = _model()
    resumed = fit_module(model, mse, _data()[:100], _data()[100:], _config(),
                         checkpointer=Checkpointer(tmp_path, resume=True))
    _assert_same_weights(model.state_dict(), weights)
    assert resumed.train_loss == history.train_loss


def test_resume_with_other_settings_is_refused(tmp_path):
    fit_module(_model(), mse, _data(), None, _config(epochs=1), checkpointer=Checkpointer(tmp_path))
    with pytest.raises(InvalidParameterValue, match=r"other settings \(batch_size=16 in the checkpoint, 32 now\)"):
        fit_module(
            _model(), mse, _data(), None, _config(batch_size=32), checkpointer=Checkpointer(tmp_path, resume=True)
        )


@pytest.mark.parametrize("epochs", [200, "auto"])
def test_estimator_resume_after_early_stopping_does_not_train_further(tmp_path, low_rank_data, epochs):
    params = dict(latent_dim=2, epochs=epochs, lr=0.05, patience=2, batch_size=32, random_state=0, device="cpu",
                  checkpoint_dir=str(tmp_path))
    first = aekit.Autoencoder(**params).fit(low_rank_data)
    assert first.history_["stop_reason"] == "early_stopping"
    again = aekit.Autoencoder(**params, resume=True).fit(low_rank_data)
    assert again.history_["n_epochs"] == first.history_["n_epochs"]
    np.testing.assert_array_equal(again.transform(low_rank_data), first.transform(low_rank_data))


_CHILD = textwrap.dedent(
    """
    import pathlib, sys, time
    import numpy as np, safetensors.torch
    import aekit, aekit.training.loop

    out, checkpoint_dir, pause_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    real_fit_module = aekit.training.loop.fit_module

    def fit_module_that_pauses(module, loss_fn, *args, **kwargs):
        steps = [0]

        def loss_then_pause(m, batch):
            steps[0] += 1
            if steps[0] == pause_at:  # tell the parent we are mid-epoch, then wait to be killed
                pathlib.Path(out + ".ready").touch()
                time.sleep(300)
            return loss_fn(m, batch)

        return real_fit_module(module, loss_then_pause, *args, **kwargs)

    aekit.training.loop.fit_module = fit_module_that_pauses
    X = np.random.default_rng(0).normal(size=(600, 8)) @ np.random.default_rng(1).normal(size=(8, 8))
    ae = aekit.Autoencoder(latent_dim=3, hidden_dims=(16,), epochs=5, batch_size=50, random_state=0, device="cpu",
                           early_stopping=False, checkpoint_dir=checkpoint_dir, resume=True).fit(X)
    safetensors.torch.save_file({k: v.contiguous() for k, v in ae.module_.state_dict().items()}, out)
    """
)


@pytest.mark.slow
def test_run_killed_with_sigkill_mid_epoch_resumes_to_identical_weights(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)

    def run(out, checkpoint_dir, pause_at, kill=False):
        command = [sys.executable, str(script), str(out), str(checkpoint_dir), str(pause_at)]
        if not kill:
            subprocess.run(command, check=True, timeout=300)
            return
        child = subprocess.Popen(command)
        deadline = time.monotonic() + 240
        while not (tmp_path / f"{out.name}.ready").exists():
            assert child.poll() is None and time.monotonic() < deadline, "the child ended before the kill point"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        assert child.returncode == -signal.SIGKILL

    # 540 training rows / 50 = 11 steps per epoch: step 30 is the 8th step of epoch 3
    run(tmp_path / "killed.safetensors", tmp_path / "resumed_ckpt", pause_at=30, kill=True)
    assert list_checkpoints(tmp_path / "resumed_ckpt")[-1].name == "ckpt-e000002-s000000000"
    run(tmp_path / "resumed.safetensors", tmp_path / "resumed_ckpt", pause_at=0)
    run(tmp_path / "plain.safetensors", tmp_path / "plain_ckpt", pause_at=0)
    _assert_same_weights(
        safetensors.torch.load_file(tmp_path / "resumed.safetensors"),
        safetensors.torch.load_file(tmp_path / "plain.safetensors"),
    )
