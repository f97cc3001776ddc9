"""Row statistics that merge: any split of the rows, merged, gives numpy's figures for all of them."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from aekit import detect
from aekit.statistics import RowStatistics
from aekit.training import distributed
from conftest import assert_close


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4)) * [1.0, 1e3, 1e-2, 5.0] + [0.0, 1e5, -3.0, 2.0]
    return X.astype(np.float32)


def merged_over(parts, **kwargs) -> RowStatistics:
    return functools.reduce(RowStatistics.merge, [RowStatistics.of(part, **kwargs) for part in parts])


@pytest.mark.parametrize("cuts", [[150], [1, 2, 299], [0, 100, 100, 300]])  # a single row, empty parts
def test_merged_statistics_of_parts_are_those_of_all_rows(rows, cuts):
    X64 = rows.astype(np.float64)
    columns = merged_over(np.split(rows, cuts), scatter="columns", extremes=True)
    assert columns.count == columns.n_rows == len(rows)
    assert_close(columns.mean, X64.mean(axis=0), rtol=1e-12, atol=1e-12, what="mean")
    assert_close(columns.variance, X64.var(axis=0), rtol=1e-9, atol=0, what="variance")
    assert np.array_equal(columns.low, rows.min(axis=0)) and np.array_equal(columns.high, rows.max(axis=0))
    assert columns.low.dtype == np.float32
    matrix = merged_over(np.split(rows, cuts), scatter="matrix")
    assert_close(matrix.variance, np.cov(X64, rowvar=False, bias=True), rtol=1e-9, atol=1e-9, what="covariance")


def test_missing_values_are_left_out_column_by_column(rows):
    X = rows.astype(np.float64)
    X[::3, 1] = np.nan
    X[:, 2] = np.nan  # a column with no value at all: count 0, mean 0
    merged = merged_over(np.split(X, [7, 200]), missing=True, scatter="columns")
    assert merged.count.tolist() == [300, 200, 0, 300]
    assert_close(merged.mean[[0, 1, 3]], np.nanmean(X[:, [0, 1, 3]], axis=0), rtol=1e-12, atol=0, what="mean")
    assert merged.mean[2] == 0.0
    assert_close(merged.variance[[0, 1, 3]], np.nanvar(X[:, [0, 1, 3]], axis=0), rtol=1e-9, atol=0, what="variance")


def test_no_rows_merge_to_the_other_side(rows):
    some = RowStatistics.of(rows, scatter="columns")
    for merged in (RowStatistics().merge(some), some.merge(RowStatistics())):
        assert merged.n_rows == len(rows) and np.array_equal(merged.mean, some.mean)
    assert not RowStatistics().all_rows_equal


def test_statistics_travel_between_processes_unchanged(rows):
    """What :func:`aekit.training.distributed.merged_over_ranks` sends between processes (a private unit, tested
    here without a process group): nested statistics, None, counts and arrays of every dtype come back equal."""
    errors = np.abs(rows[:50].astype(np.float64))
    errors[3, 0] = np.nan
    statistics = detect.ScoreStatistics.of([(errors, rows[:50, :2])])
    values = np.array(distributed._encoded(statistics), dtype=np.float64)
    copy, end = distributed._decoded(statistics, values, 0)
    assert end == len(values)
    for name in ("errors", "codes"):
        ours, theirs = getattr(statistics, name), getattr(copy, name)
        for field in ("count", "mean", "scatter", "low", "high"):
            want, got = getattr(ours, field), getattr(theirs, field)
            assert (want is None) == (got is None), field
            if want is not None:
                assert np.array_equal(want, got) and np.asarray(want).dtype == np.asarray(got).dtype, field
    assert np.array_equal(copy.code_rows, statistics.code_rows)


def test_the_range_of_rows_with_missing_values_leaves_them_out(rows):
    gaps = rows.astype(np.float64)
    gaps[::3, 1] = np.nan
    gaps[:100, 2] = np.nan  # no value of a column in the first part
    merged = merged_over(np.split(gaps, [100, 200]), missing=True, extremes=True)
    np.testing.assert_array_equal(merged.low, np.nanmin(gaps, axis=0))
    np.testing.assert_array_equal(merged.high, np.nanmax(gaps, axis=0))
