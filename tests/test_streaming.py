"""Streaming: bounded shuffle buffer, first-pass scaler, fit and apply over files chunk by chunk."""

from __future__ import annotations

import os
import signal

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import aekit
import aekit.estimator.inference
from aekit.data import DataSpec, read_data, shard_rows
from aekit.exceptions import InvalidInputError, InvalidParameterValue
from aekit.models.mlp import MLPAutoencoder
from aekit.preprocess import fit_scaler
from aekit.training import distributed
from aekit.training.checkpoint import Checkpointer
from aekit.training.config import TrainConfig
from aekit.training.loop import fit_module
from aekit.training.sources import ValidationSplit
from aekit.training.streaming import FileData, fit_stream, should_stream
from aekit.workflows import encode_file
from conftest import assert_close, calls_to


@pytest.fixture(scope="module")
def npy_file(tmp_path_factory, low_rank_data):
    path = tmp_path_factory.mktemp("stream") / "data.npy"
    np.save(path, low_rank_data.astype(np.float32))
    return path


def _source(path, *, chunk_rows=32, buffer_chunks=3, part="all", fraction=0.0):
    """The file's training source ("train"), validation source ("validation") or all its rows ("all")."""
    data = FileData(path, chunk_rows=chunk_rows, buffer_chunks=buffer_chunks)
    split = ValidationSplit(300, fraction, seed=0)
    if part == "all":
        split = ValidationSplit(300, 0.0, seed=0)
    train, validation = data.sources(split, None, torch.device("cpu"))
    return validation if part == "validation" else train


def test_every_row_once_per_epoch_in_full_batches_shuffled_within_the_buffer(npy_file, low_rank_data):
    source = _source(npy_file, chunk_rows=32, buffer_chunks=3)  # windows of 96 rows
    batches = list(source.batches(25, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [25] * 12  # 300 rows: full batches carry over between windows
    rows = torch.cat(batches).numpy()
    expected = low_rank_data.astype(np.float32)
    assert_close(np.sort(rows, axis=0), np.sort(expected, axis=0), rtol=0, atol=0, what="same multiset of rows")
    order = [int(np.flatnonzero((expected == row).all(axis=1))[0]) for row in rows]
    assert order != sorted(order)  # shuffled
    assert max(order[:75]) < 96  # the first 75 rows all come from the first window of 3 chunks
    again = torch.cat(list(source.batches(25, torch.Generator().manual_seed(0))))
    assert torch.equal(again, torch.from_numpy(rows))  # reproducible with the same seed
    in_order = list(source.batches(64))
    assert [len(b) for b in in_order] == [64] * 4 + [44]
    assert torch.equal(torch.cat(in_order), torch.from_numpy(expected))
    assert [len(b) for b in _source(npy_file, chunk_rows=10).batches(64)] == [64] * 4 + [44]  # no empty batch


def test_a_streamed_run_interrupted_mid_epoch_resumes_bit_for_bit(tmp_path, npy_file):
    def mse(module, batch):
        return ((module(batch)[0] - batch) ** 2).mean()

    def model():
        torch.manual_seed(0)
        return MLPAutoencoder(12, 3, hidden_dims=(8,))

    def sources():
        return (_source(npy_file, part="train", fraction=0.2, buffer_chunks=2),
                _source(npy_file, part="validation", fraction=0.2))

    config = TrainConfig(epochs=3, batch_size=16, early_stopping=False, lr=1e-4)
    plain = model()
    fit_module(plain, mse, *sources(), config)
    steps = {"n": 0}

    def interrupted(module, batch):
        steps["n"] += module.training
        if steps["n"] == 20 and module.training:  # epoch 2: a shuffle window and a carry-over already used
            os.kill(os.getpid(), signal.SIGINT)
        return mse(module, batch)

    with pytest.raises(KeyboardInterrupt):
        fit_module(model(), interrupted, *sources(), config, checkpointer=Checkpointer(tmp_path))
    resumed = model()
    fit_module(resumed, mse, *sources(), config, checkpointer=Checkpointer(tmp_path, resume=True))
    for name, value in plain.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name


def test_validation_rows_are_the_same_every_pass_and_disjoint_from_training(npy_file):
    train = _source(npy_file, part="train", fraction=0.2)
    val = _source(npy_file, part="validation", fraction=0.2)
    train_rows, val_rows = np.concatenate(list(train.arrays())), np.concatenate(list(val.arrays()))
    assert len(train_rows) + len(val_rows) == 300 and len(val_rows) == train.split.n_validation == 60
    assert train.n_rows == 240 and val.n_rows == 60
    assert np.array_equal(val_rows, np.concatenate(list(val.arrays())))
    assert not (set(map(bytes, train_rows)) & set(map(bytes, val_rows)))


@pytest.mark.parametrize("name, reference", [("standard", StandardScaler), ("minmax", MinMaxScaler)])
def test_first_pass_scaler_matches_scikit_learn_fitted_on_everything(npy_file, low_rank_data, name, reference):
    scaler, summary = fit_scaler(name, FileData(npy_file, chunk_rows=47).blocks())
    expected = reference().fit(low_rank_data.astype(np.float32))
    assert_close(scaler.transform(low_rank_data), expected.transform(low_rank_data), rtol=1e-5, atol=1e-5)
    assert summary.n_rows == 300
    assert_close([summary.low, summary.high], [low_rank_data.min(axis=0), low_rank_data.max(axis=0)], rtol=1e-6)


def test_fit_stream_with_one_window_equals_the_in_memory_fit_bit_for_bit(npy_file, low_rank_data):
    params = dict(latent_dim=3, epochs=4, batch_size=32, validation_fraction=0.0, random_state=0, device="cpu")
    in_memory = aekit.Autoencoder(**params).fit(low_rank_data.astype(np.float32))
    streamed = fit_stream(aekit.Autoencoder(**params), npy_file, chunk_rows=100, buffer_chunks=3)
    for name, value in in_memory.module_.state_dict().items():
        assert torch.equal(streamed.module_.state_dict()[name], value), name
    assert streamed.threshold_ == pytest.approx(in_memory.threshold_, rel=1e-5)
    assert streamed.history_["train_loss"] == pytest.approx(in_memory.history_["train_loss"], rel=1e-12)


def test_fit_stream_from_csv_learns_and_is_reproducible_by_function_or_method(tmp_path, low_rank_data):
    path = tmp_path / "data.csv"
    pd.DataFrame(low_rank_data, columns=[f"f{j}" for j in range(12)]).to_csv(path, index=False)
    params = dict(latent_dim=3, epochs=10, lr=2e-2, batch_size=32, random_state=1, device="cpu")
    first = fit_stream(aekit.Autoencoder(**params), path, chunk_rows=40, buffer_chunks=2)
    second = aekit.Autoencoder(**params).fit_stream(path, chunk_rows=40, buffer_chunks=2)  # the method form
    for name, value in first.module_.state_dict().items():
        assert torch.equal(second.module_.state_dict()[name], value), name
    # learned: most of the (rank-3) variance is reconstructed, in the standard-scaled space
    frame = pd.DataFrame(low_rank_data, columns=[f"f{j}" for j in range(12)])
    assert first.reconstruction_error(frame).mean() < 0.1
    assert first.history_["val_loss"][-1] < first.history_["val_loss"][0]


def test_a_streamed_model_encodes_files_in_chunks_matching_columns_by_name(tmp_path, low_rank_data):
    names = [f"f{j}" for j in range(12)]
    frame = pd.DataFrame(low_rank_data, columns=names)
    frame.to_parquet(tmp_path / "train.parquet", row_group_size=50)
    ae = fit_stream(aekit.Autoencoder(latent_dim=3, epochs=3, random_state=0, device="cpu"),
                    tmp_path / "train.parquet", chunk_rows=64)
    assert list(ae.feature_names_in_) == names
    frame[names[::-1]].to_csv(tmp_path / "reordered.csv", index=False)
    summary = encode_file(ae, tmp_path / "reordered.csv", tmp_path / "codes.parquet", spec=DataSpec(chunk_rows=70))
    codes = read_data(tmp_path / "codes.parquet")
    assert summary["n_rows"] == 300 and codes.columns == ["latent0", "latent1", "latent2"]
    assert_close(codes.X, ae.transform(frame), rtol=1e-5, atol=1e-5)


def test_bad_streaming_arguments_are_named(npy_file):
    ae = aekit.Autoencoder()
    with pytest.raises(InvalidParameterValue, match=r"^The 'chunk_rows' parameter of fit_stream must be an int in "
                       r"the range \[1, inf\)\. Got 0 instead\.$"):
        fit_stream(ae, npy_file, chunk_rows=0)


def test_should_stream_compares_the_data_size_with_available_memory(npy_file):
    assert should_stream(npy_file) is False
    assert should_stream(npy_file, memory_fraction=1e-12) is True


@pytest.mark.parametrize(("anomaly_score", "scoring"), [("error", "row_errors"), ("combined", "outlier_scores")])
def test_fit_stream_threshold_comes_from_the_validation_pass_without_rereading(npy_file, monkeypatch, anomaly_score,
                                                                              scoring):
    monkeypatch.setattr(aekit.detect, "THRESHOLD_TAIL_ROWS", 1)  # the 60 held-out rows set the threshold
    calls = calls_to(monkeypatch, aekit.estimator.inference, scoring)
    ae = fit_stream(aekit.Autoencoder(latent_dim=3, architecture="mlp", epochs=3, batch_size=32,
                                      validation_fraction=0.2, random_state=0, device="cpu",
                                      anomaly_score=anomaly_score),
                    npy_file, chunk_rows=50)
    # the validation rows were not read and scored once more: the only pass is over all 300 rows, in chunks, for
    # the share flagged among them (outlier_scores; the error score's does not go through row_errors)
    assert calls == ([50] * 6 if scoring == "outlier_scores" else [])
    monkeypatch.undo()
    val_rows = np.concatenate(list(FileData(npy_file, chunk_rows=50).arrays(ValidationSplit(300, 0.2, ae.seed_),
                                                                              "validation")))
    assert len(val_rows) == 60
    assert_close(ae.threshold_, np.quantile(ae.outlier_scores(val_rows), 0.95), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------- one process's shard (torchrun)
@pytest.mark.parametrize("world", [2, 3])
def test_a_rank_reads_its_shard_and_holds_out_the_rows_one_process_holds_out(tmp_path, monkeypatch, world):
    X = np.random.default_rng(1).normal(size=(101, 3)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    split = ValidationSplit(len(X), 0.2, seed=4)
    _, val_rows = split.rows()
    held_out = np.isin(np.arange(len(X)), val_rows)
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    parts = {"train": [], "validation": [], "all": []}
    for rank in range(world):
        monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
        data = FileData(tmp_path / "X.npy", chunk_rows=7)
        start, stop = data.rows()
        assert (start, stop) == shard_rows(len(X), rank, world) and data.sharded
        in_shard = np.zeros(len(X), dtype=bool)
        in_shard[start:stop] = True
        train_source, val_source = data.sources(split, None, torch.device("cpu"))
        for part, mask, source in (("train", in_shard & ~held_out, train_source),
                                   ("validation", in_shard & held_out, val_source), ("all", in_shard, None)):
            rows = np.concatenate(list(data.arrays(split, part)) or [np.empty((0, 3), np.float32)])
            np.testing.assert_array_equal(rows, X[mask])  # this shard's rows of the part, in file order
            parts[part].append(rows)
            if source is not None:
                assert source.n_rows == mask.sum() == len(torch.cat(list(source.batches(16))))
    # the shards' parts together: the one-process split of the whole file
    np.testing.assert_array_equal(np.concatenate(parts["train"]), X[~held_out])
    np.testing.assert_array_equal(np.concatenate(parts["validation"]), X[held_out])
    np.testing.assert_array_equal(np.concatenate(parts["all"]), X)


def test_a_file_with_fewer_rows_than_processes_is_refused(tmp_path, monkeypatch):
    np.save(tmp_path / "X.npy", np.zeros((2, 3), dtype=np.float32))
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    with pytest.raises(InvalidInputError, match=r"holds 2 row\(s\), fewer than the 4 processes"):
        list(FileData(tmp_path / "X.npy").blocks())
