"""Training data sources: one validation rule for rows in memory and rows read from a file."""

import numpy as np
import pytest
import torch

import aekit.training.sources
from aekit.training.sources import ArrayData, ValidationSplit, validation_count
from aekit.training.streaming import FileData


@pytest.mark.parametrize(("n_rows", "fraction"), [(2, 0.1), (10, 0.25), (1000, 0.1), (300, 0.0), (7, 0.99)])
def test_the_split_holds_out_round_n_times_fraction_rows_at_least_one_of_each(n_rows, fraction):
    train_rows, val_rows = ValidationSplit(n_rows, fraction, seed=3).rows()
    expected = 0 if fraction == 0 else min(max(round(n_rows * fraction), 1), n_rows - 1)
    assert len(val_rows) == validation_count(n_rows, fraction) == expected
    np.testing.assert_array_equal(np.sort(np.concatenate([train_rows, val_rows])), np.arange(n_rows))


def test_the_split_is_uniform_over_the_rows_and_seeded(monkeypatch):
    monkeypatch.setattr(aekit.training.sources, "VALIDATION_BLOCK_ROWS", 64)  # many blocks: the counts are drawn
    held = np.zeros(1000)
    for seed in range(400):
        held[ValidationSplit(1000, 0.2, seed).rows()[1]] += 1
    # each row is held out with probability 0.2: 80 times in 400 draws, binomial spread ~8
    assert abs(held.mean() - 80) < 1e-9 and held.min() > 45 and held.max() < 115
    assert np.array_equal(ValidationSplit(1000, 0.2, 1).rows()[1], ValidationSplit(1000, 0.2, 1).rows()[1])
    assert not np.array_equal(ValidationSplit(1000, 0.2, 1).rows()[1], ValidationSplit(1000, 0.2, 2).rows()[1])


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 1000])
def test_an_array_and_a_file_with_the_same_rows_hold_out_the_same_rows(tmp_path, monkeypatch, chunk_rows):
    monkeypatch.setattr(aekit.training.sources, "VALIDATION_BLOCK_ROWS", 50)  # chunks straddle blocks
    X = np.random.default_rng(0).normal(size=(333, 4)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    split = ValidationSplit(len(X), 0.15, seed=11)
    in_memory, from_file = ArrayData(X), FileData(tmp_path / "X.npy", chunk_rows=chunk_rows)
    for part in ("train", "validation", "all"):
        expected = np.concatenate(list(in_memory.arrays(split, part)))
        np.testing.assert_array_equal(np.concatenate(list(from_file.arrays(split, part))), expected)
    _, val_rows = split.rows()
    np.testing.assert_array_equal(np.concatenate(list(from_file.arrays(split, "validation"))), X[val_rows])
    # the trainer's sources: the same rows, in file order when not shuffled
    for (memory_source, file_source) in zip(in_memory.sources(split, None, torch.device("cpu")),
                                            from_file.sources(split, None, torch.device("cpu")), strict=True):
        memory_rows = memory_source if isinstance(memory_source, torch.Tensor) else torch.cat(
            list(memory_source.batches(64)))
        assert torch.equal(torch.cat(list(file_source.batches(64))), memory_rows)
