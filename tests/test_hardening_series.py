"""Window scoring of a time-series model under any series and any chunk size (``make fuzz`` runs it at length)."""

from __future__ import annotations

from functools import cache
from unittest import mock

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import aekit
from aekit.estimator import series as series_module
from aekit.timeseries import window_rows

WINDOW = 12


@cache
def fitted(normalize: str | None) -> aekit.SeriesAutoencoder:
    """A small two-channel series model, fitted once per normalisation."""
    steps = np.arange(600)
    series = np.column_stack([np.sin(2 * np.pi * steps / WINDOW), np.cos(2 * np.pi * steps / 30)])
    autoencoder = aekit.Autoencoder(latent_dim=2, hidden_dims=(8,), epochs=3, random_state=0)
    return aekit.SeriesAutoencoder(WINDOW, normalize=normalize, autoencoder=autoencoder).fit(series)


def reference_step_scores(model: aekit.SeriesAutoencoder, series: np.ndarray) -> np.ndarray:
    """Every window scored in one call, its level scored by a plain loop, then each step's mean over the windows
    that cover it, by a plain loop."""
    n_windows = len(series) - WINDOW + 1
    window_scores = model.autoencoder_.outlier_scores(
        window_rows(series, np.arange(n_windows), WINDOW, model.normalize)).astype(np.float64)
    if model.level_ is not None:
        level = model.level_
        levels = np.array([np.mean(np.abs(series[start:start + WINDOW].mean(axis=0) - level["center"])
                                   / level["spread"]) for start in range(n_windows)])
        window_scores = window_scores / level["shape_scale"] + levels / level["level_scale"]
    totals, counts = np.zeros(len(series)), np.zeros(len(series))
    for start, score in enumerate(window_scores):
        totals[start:start + WINDOW] += score
        counts[start:start + WINDOW] += 1
    return totals / counts


@given(
    n_steps=st.integers(WINDOW, 400),
    chunk_values=st.integers(1, 3 * WINDOW * 2 * 7),
    level=st.floats(-1e4, 1e4),
    scale=st.floats(1e-3, 1e2),
    normalize=st.sampled_from(["level", "zscore", None]),
    seed=st.integers(0, 2**16),
)
def test_window_scores_in_any_chunks_match_one_pass_over_every_window(n_steps, chunk_values, level, scale,
                                                                      normalize, seed):
    """Any series length, level and scale, any chunk size (down to one window a chunk): one finite score per
    step, equal to scoring every window at once (rtol 1e-5: float32 products in batches of other sizes)."""
    model = fitted(normalize)
    series = level + scale * np.random.default_rng(seed).normal(size=(n_steps, 2))
    with mock.patch.object(series_module, "SCORE_VALUES", chunk_values):
        scores = model.outlier_scores(series)
    assert scores.shape == (n_steps,) and np.isfinite(scores).all()
    np.testing.assert_allclose(scores, reference_step_scores(model, series), rtol=1e-5, atol=1e-6)
    flags = model.predict(series)
    assert flags.dtype.kind == "i" and set(np.unique(flags)) <= {-1, 1}
