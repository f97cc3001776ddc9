"""Scaling: fitting a scaler to rows in memory or in blocks, applying it to arrays and to training batches."""

import json

import numpy as np
import pytest
import torch
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import aekit.preprocess
from aekit import preprocess
from aekit.exceptions import ModelFileError
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


# ---------------------------------------------------------------------------------------------- scaler="auto"
def _summary(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return X.std(axis=0), X.min(axis=0), X.max(axis=0)


@pytest.fixture(scope="module")
def lengths() -> np.ndarray:
    """Four lengths in cm, as the iris table holds them: spreads from 0.4 to 1.8 cm."""
    rng = np.random.default_rng(0)
    return np.column_stack([rng.normal(5.8, 0.8, 150), rng.normal(3.0, 0.4, 150), rng.normal(3.8, 1.8, 150),
                            rng.normal(1.2, 0.8, 150)])


def test_auto_scales_columns_of_one_unit_together_and_mixed_units_per_column(lengths):
    rng = np.random.default_rng(1)
    pixels = rng.uniform(0, 255, size=(60, 64)) * (rng.uniform(size=64) > 0.2)  # dark border columns too
    pixels[:, :8] *= 0.05  # pixels that are rarely lit: they matter less, they do not split the table
    assert preprocess.shares_one_scale(*_summary(lengths))
    assert preprocess.shares_one_scale(*_summary(pixels))
    grams_and_mm = np.column_stack([rng.normal(4200, 800, 100), rng.normal(44, 5, 100), rng.normal(17, 2, 100)])
    assert not preprocess.shares_one_scale(*_summary(grams_and_mm))  # one spread 160x the median
    years_and_counts = np.column_stack([rng.integers(1950, 2000, 100), rng.poisson(30, 100), rng.poisson(25, 100)])
    assert not preprocess.shares_one_scale(*_summary(years_and_counts.astype(float)))  # spreads alike, far apart
    # the rule's edge, both tests: a spread 5x the median's shares, just above it does not
    edge = np.column_stack([np.tile([0.0, 1.0], 50), np.tile([0.0, 1.0], 50), np.tile([0.0, 5.0], 50)])
    assert preprocess.shares_one_scale(*_summary(edge))
    assert not preprocess.shares_one_scale(*_summary(edge * [1, 1, 1.01]))


def test_shared_scaler_centres_each_column_and_divides_all_by_one_scale(lengths):
    reference_scale = np.sqrt(np.mean(lengths.var(axis=0)))  # numpy: the RMS of the columns' deviations
    fitted = preprocess.SharedScaler().fit(lengths)
    assert_close(fitted.mean_, lengths.mean(axis=0), rtol=1e-12, atol=0, what="mean_")
    assert_close(fitted.scale_, np.full(4, reference_scale), rtol=1e-12, atol=0, what="scale_")
    scaled = fitted.transform(lengths)
    assert_close(scaled, (lengths - lengths.mean(axis=0)) / reference_scale, rtol=1e-12, atol=1e-12, what="scaled")
    assert np.mean(scaled.var(axis=0)) == pytest.approx(1.0)  # the average column's variance, as standardised
    assert_close(fitted.inverse_transform(scaled), lengths, rtol=1e-12, atol=1e-12, what="inverse")
    for name in ("shared", "auto"):  # the one-pass fit over blocks: the same scaler
        got, _ = fit_scaler(name, iter(np.array_split(lengths, 7)))
        assert type(got) is preprocess.SharedScaler
        assert_close(got.transform(lengths), scaled, rtol=1e-9, atol=1e-12, what=f"{name} over blocks")


def test_auto_on_observed_cells_decides_as_on_complete_rows(lengths):
    gaps = lengths.copy()
    gaps[::5, 1] = np.nan
    fitted = preprocess.fit_observed("auto", gaps)
    assert type(fitted) is preprocess.SharedScaler
    observed_var = np.nanvar(gaps, axis=0)
    assert_close(fitted.mean_, np.nanmean(gaps, axis=0), rtol=1e-12, atol=0, what="mean_ over observed cells")
    assert_close(fitted.scale_, np.full(4, np.sqrt(observed_var.mean())), rtol=1e-12, atol=0, what="scale_")
    assert np.isnan(fitted.transform(gaps)[::5, 1]).all()  # a missing cell stays missing
    mixed = np.column_stack([lengths[:, 0] * 1000, lengths[:, 1]])
    assert type(preprocess.fit_observed("auto", mixed)) is StandardScaler
    assert preprocess.fit_observed(None, mixed) is None


def test_shared_scaler_state_round_trips_and_a_damaged_one_is_refused(lengths):
    fitted, _ = fit_scaler("auto", lengths)
    state = json.loads(json.dumps(preprocess.scaler_state(fitted)))
    assert state["name"] == "shared" and len(set(state["scale_"])) == 1
    rebuilt = preprocess.scaler_from_state(state, 4)
    assert type(rebuilt) is preprocess.SharedScaler
    np.testing.assert_array_equal(rebuilt.transform(lengths), fitted.transform(lengths))
    with pytest.raises(ModelFileError, match="The shared scaler's scale_ holds more than one value"):
        preprocess.scaler_from_state({**state, "scale_": [1.0, 2.0, 1.0, 1.0]}, 4)
    assert preprocess.fitted_as_asked("auto", "shared") and preprocess.fitted_as_asked("auto", "standard")
    assert not preprocess.fitted_as_asked("auto", "minmax") and not preprocess.fitted_as_asked("standard", "shared")


@pytest.mark.parametrize("name", ["shared", "auto"])
def test_shared_scale_of_constant_columns_is_one_as_standard_scalers(name):
    # 0.1 in every row: its float64 mean is off by rounding, so the computed variance is ~1e-33, not 0;
    # scikit-learn's constant-feature rule gives such a column scale 1, and the shared scale must not
    # divide by the rounding noise's square root (~1e-17)
    constant = np.full((1000, 3), 0.1)
    reference = StandardScaler().fit(constant)
    for fitted in (fit_scaler(name, constant)[0], fit_scaler(name, iter(np.array_split(constant, 3)))[0],
                   preprocess.fit_observed(name, constant)):
        assert type(fitted) is preprocess.SharedScaler
        np.testing.assert_array_equal(fitted.scale_, reference.scale_)
    # a near-constant column beside varying ones does not change their common scale
    mixed = np.column_stack([np.arange(10.0), np.arange(10.0)[::-1], np.full(10, 0.1)])
    fitted, _ = fit_scaler(name, mixed)
    assert_close(fitted.scale_, np.full(3, np.sqrt(mixed.var(axis=0).mean())), rtol=1e-12, atol=0, what="scale_")
