"""Scaling: fitting a scaler to rows in memory or in blocks, applying it to arrays and to training batches."""

import numpy as np
import pytest
import torch
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import aekit.preprocess
from aekit.preprocess import batch_scaling, fit_scaler, make_scaler, scale
from conftest import assert_close


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("with_mean", "with_std"), [(True, True), (False, True), (True, False), (False, False)])
def test_threaded_standard_scaling_equals_scikit_learn_bit_for_bit(dtype, with_mean, with_std, monkeypatch):
    monkeypatch.setattr(aekit.preprocess, "SCALE_CHUNK_ROWS", 7)  # several float64 chunks, the last one short
    rng = np.random.default_rng(3)
    X = (rng.standard_normal((50, 6)) * [1e-3, 1, 10, 1e4, 3, 0.5] + [5, -2, 0, 1e5, 7, 1]).astype(dtype)
    before = X.copy()
    scaler = StandardScaler(with_mean=with_mean, with_std=with_std).fit(X)
    expected = scaler.transform(X).astype(np.float32)
    got = scale(scaler, X)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(scale(scaler, np.asfortranarray(X)), expected)
    np.testing.assert_array_equal(X, before)  # the input is left as it was
    if dtype == np.float32:  # batch by batch on the way into training: the same values
        batches = [batch_scaling(scaler, torch.device("cpu"))(torch.from_numpy(X[s : s + 16])) for s in (0, 16, 32, 48)]
        np.testing.assert_array_equal(torch.cat(batches).numpy(), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("with_mean", "with_std"), [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("blocks", [1, 4])  # an array in memory, or the same rows read in blocks
def test_standard_scaler_statistics_match_scikit_learns_fit(dtype, with_mean, with_std, blocks, monkeypatch):
    monkeypatch.setattr(aekit.preprocess, "STATS_CHUNK_VALUES", 40)  # pieces of 5 rows of 8 values, the last short
    rng = np.random.default_rng(4)
    X = (rng.standard_normal((53, 8)) * [1e-3, 1, 10, 1e4, 3, 0.5, 1, 1] + [5, -2, 0, 1e5, 7, 1, 0, 0]).astype(dtype)
    X[:, 6] = 3.25  # a constant feature: scale 1
    X[:, 7] = 1e8 + (np.arange(53) % 2) * np.float32(8.0)  # varies, far from zero
    expected = StandardScaler(with_mean=with_mean, with_std=with_std).fit(X)
    monkeypatch.setattr(aekit.preprocess, "make_scaler", lambda name: StandardScaler(with_mean=with_mean,
                                                                                      with_std=with_std))
    got, summary = fit_scaler("standard", X if blocks == 1 else iter(np.array_split(X, blocks)))
    assert summary.n_rows == 53
    assert got.n_features_in_ == expected.n_features_in_ and got.n_samples_seen_ == expected.n_samples_seen_
    for name in ("mean_", "var_", "scale_"):
        want, have = getattr(expected, name), getattr(got, name)
        assert (want is None) == (have is None), name
        if want is not None:
            assert have.dtype == want.dtype == np.float64
            assert_close(have, want, rtol=1e-9, atol=0, what=name)
    if with_std:
        assert got.scale_[6] == 1.0 and got.scale_[7] != 1.0
        assert_close(got.transform(X), expected.transform(X), rtol=1e-6, atol=1e-9, what="transform")


@pytest.mark.parametrize("scaler", ["standard", "minmax", None])
def test_fit_scaler_summarises_each_features_range_from_its_pieces(scaler, monkeypatch):
    monkeypatch.setattr(aekit.preprocess, "STATS_CHUNK_VALUES", 40)  # pieces of 5 rows of 8 values, the last short
    X = (np.random.default_rng(6).standard_normal((53, 8)) * 100).astype(np.float32)
    X[52, 3], X[0, 5] = 1e6, -1e6  # extremes in the first and the last piece
    fitted, summary = fit_scaler(scaler, X)
    assert summary.low.dtype == summary.high.dtype == np.float32 and summary.n_rows == 53
    np.testing.assert_array_equal(np.stack([summary.low, summary.high]), np.stack([X.min(axis=0), X.max(axis=0)]))
    assert not summary.all_rows_equal
    if scaler is not None:  # fitted as well
        reference = {"standard": StandardScaler, "minmax": MinMaxScaler}[scaler]().fit(X)
        assert_close(fitted.transform(X), reference.transform(X), rtol=1e-6, atol=1e-6, what=f"{scaler} transform")
    else:
        assert fitted is None and make_scaler(None) is None


@pytest.mark.parametrize("where", [None, 1, 255, 256, 70_000, 140_000 - 1])
def test_identical_rows_are_told_apart_from_one_differing_row_anywhere(where):
    X = np.zeros((140_000, 3), dtype=np.float32)
    if where is not None:
        X[where, 1] = -0.5
    _, summary = fit_scaler(None, X)
    assert summary.all_rows_equal == np.array_equal(X.min(axis=0), X.max(axis=0)) == (where is None)


def test_no_rows_leave_the_scaler_unfitted():
    scaler, summary = fit_scaler("standard", iter([]))
    assert summary.n_rows == 0 and not hasattr(scaler, "mean_")
