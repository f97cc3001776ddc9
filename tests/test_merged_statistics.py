"""Statistics merged over processes that each saw only their own rows: the figures of all the rows.

The processes of a distributed fit are simulated by threads here, each with its own uneven share of
the rows, read in blocks; ``merge`` is what :func:`aekit.training.distributed.merged_over_ranks`
does between real processes (tests/test_distributed_shards.py runs it under torchrun).
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from aekit import detect, preprocess
from aekit.models.anchored import COVARIANCE_MAX_FEATURES, principal_components
from conftest import assert_close, flat_state

SHARES = [(0, 50), (50, 51), (51, 400)]  # uneven, one of a single row


class ThreadRanks:
    """``merge(statistics)`` for processes simulated by threads, as
    :func:`aekit.training.distributed.merged_over_ranks` does between real processes: every rank's
    statistics merged in rank order; each call waits for all of them."""

    def __init__(self, n_ranks: int) -> None:
        self.barrier, self.slots = threading.Barrier(n_ranks, timeout=30), [None] * n_ranks

    def merge_for(self, rank: int):
        def merge(statistics):
            self.slots[rank] = statistics
            self.barrier.wait()
            merged = functools.reduce(lambda a, b: a.merge(b), self.slots)
            self.barrier.wait()  # everyone has read the slots before the next call writes them
            return merged

        return merge


def run_ranks(work):
    """``work(rank, start, stop, merge)`` in one thread per share; the results in rank order."""
    ranks = ThreadRanks(len(SHARES))
    with ThreadPoolExecutor(len(SHARES)) as pool:
        futures = [pool.submit(work, rank, start, stop, ranks.merge_for(rank))
                   for rank, (start, stop) in enumerate(SHARES)]
        return [future.result() for future in futures]


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) * [1, 10, 1e3, 1e-2, 1, 5] + [0, 1e4, -3, 0, 7, 1]
    return X.astype(np.float32)


def blocks(X: np.ndarray, block_rows: int = 32):
    return [X[start : start + block_rows] for start in range(0, len(X), block_rows)]


@pytest.mark.parametrize("name", ["standard", "minmax", "shared", "auto"])
def test_a_scaler_fitted_on_shares_and_combined_is_the_scaler_of_all_rows(rows, name):
    def fit_share(rank, start, stop, merge):
        merged = merge(preprocess.scaler_statistics(name, blocks(rows[start:stop])))
        return preprocess.fitted_scaler(name, merged), merged

    results = run_ranks(fit_share)
    reference, summary = preprocess.fit_scaler(name, blocks(rows))
    for scaler, merged in results:
        assert merged.n_rows == summary.n_rows == len(rows)
        assert np.array_equal(merged.low, rows.min(axis=0)) and np.array_equal(merged.high, rows.max(axis=0))
        assert type(scaler) is type(reference)  # "auto" decides the same from the merged statistics
        if name != "minmax":
            X64 = rows.astype(np.float64)
            assert_close(scaler.mean_, X64.mean(axis=0), rtol=1e-12, atol=0, what="mean_")
            assert_close(scaler.var_, X64.var(axis=0), rtol=1e-12, atol=0, what="var_")
            assert scaler.n_samples_seen_ == len(rows)
        # the scaled rows are those of the scaler fitted in one pass
        assert_close(preprocess.scale(scaler, rows), preprocess.scale(reference, rows), rtol=1e-6, atol=1e-6)


def test_pca_of_shares_combined_is_the_pca_of_all_rows(rows):
    scaled = torch.from_numpy(preprocess.scale(preprocess.fit_scaler("standard", rows)[0], rows))
    results = run_ranks(lambda rank, start, stop, merge: principal_components(scaled[start:stop], merge=merge))
    whole = principal_components(scaled)
    for pca in results:
        assert pca.n_rows == whole.n_rows == len(rows)
        assert_close(pca.mean, whole.mean, rtol=1e-9, atol=1e-12, what="mean")
        assert_close(pca.explained_variance, whole.explained_variance, rtol=1e-9, atol=1e-12, what="variances")
        assert pca.total_variance == pytest.approx(whole.total_variance, rel=1e-9)
        assert_close(pca.components, whole.components, rtol=1e-6, atol=1e-9, what="components")


def test_pca_of_wide_shares_combined_is_the_pca_of_all_rows():
    """Rows wider than the covariance's limit: each subspace iteration's product is summed over the shares
    (float32 products, summed in another order: agreement to float32 rounding)."""
    rng = np.random.default_rng(5)
    wide = rng.normal(size=(400, 3)) * [3.0, 2.0, 1.0] @ rng.normal(size=(3, COVARIANCE_MAX_FEATURES + 1)) + 1.0
    wide = torch.from_numpy(wide + 0.05 * rng.normal(size=wide.shape))
    results = run_ranks(lambda rank, start, stop, merge: principal_components(
        wide[start:stop], max_components=3, merge=merge))
    whole = principal_components(wide, max_components=3)
    for pca in results:
        assert pca.n_rows == whole.n_rows == len(wide)
        assert_close(pca.mean, whole.mean, rtol=1e-9, atol=1e-12, what="mean")
        assert_close(pca.explained_variance, whole.explained_variance, rtol=1e-6, atol=0, what="variances")
        assert pca.total_variance == pytest.approx(whole.total_variance, rel=1e-6)
        assert_close(pca.components, whole.components, rtol=0, atol=1e-6, what="components")


def test_score_normalisers_of_shares_combined_are_those_of_all_rows(rows):
    rng = np.random.default_rng(4)
    errors, codes = rng.random((len(rows), 6)), rng.normal(size=(len(rows), 2))
    codes[::3] += [8.0, 0.0]  # a second mode: the latent modes are a mixture, fitted on all the codes
    results = run_ranks(lambda rank, start, stop, merge: detect.score_state_from(
        merge(detect.ScoreStatistics.of([(errors[start:stop], codes[start:stop])]))))
    whole = flat_state(detect.fit_score_state([(errors, codes)]).to_dict())
    assert len(whole["latent_modes.weights"]) > 1
    for state in results:
        for key, value in flat_state(state.to_dict()).items():
            assert_close(value, whole[key], rtol=1e-9, atol=1e-12, what=key)
