"""Time series: windows, per-step scores, segments, and the fit/score workflow with --window."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline

import aekit
from aekit.cli import main
from aekit.exceptions import InvalidInputError
from aekit.timeseries import SlidingWindows, step_flags, step_scores, top_segments, window_starts
from aekit.workflows import fit_file, score_file
from conftest import assert_close

FAST = {"latent_dim": 3, "hidden_dims": (16,), "epochs": 15, "batch_size": 64, "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def series() -> np.ndarray:
    """Two channels of 1,200 steps: sines with noise, and a burst at steps 800-819 on the first channel."""
    t = np.arange(1200)
    rng = np.random.default_rng(0)
    X = np.column_stack([np.sin(t / 8.0), np.cos(t / 13.0)]) + 0.05 * rng.normal(size=(1200, 2))
    X[800:820, 0] += 1.5 * rng.normal(size=20)
    return X.astype(np.float32)


@pytest.mark.parametrize(("n_steps", "window", "stride"), [(10, 4, 3), (11, 4, 3), (7, 7, 2), (9, 1, 1), (50, 8, 5)])
def test_windows_and_step_scores_match_a_loop(n_steps, window, stride):
    rng = np.random.default_rng(n_steps)
    X = rng.normal(size=(n_steps, 2))
    windows = SlidingWindows(window, stride=stride).fit_transform(X)
    starts = window_starts(n_steps, window, stride)
    assert starts[0] == 0 and starts[-1] + window == n_steps and np.all(np.diff(starts) <= stride)
    for row, start in zip(windows, starts, strict=True):
        assert_close(row, X[start : start + window].ravel(), rtol=0, atol=0)  # step by step, channels side by side
    values = rng.random(len(starts))
    expected = [np.mean([v for v, s in zip(values, starts, strict=True) if s <= step < s + window])
                for step in range(n_steps)]
    assert_close(step_scores(values, n_steps, window, stride), expected, rtol=1e-12, atol=1e-12)


def test_a_window_longer_than_the_series_is_refused():
    with pytest.raises(InvalidInputError, match=r"The window \(20 steps\) is longer than the series \(12 time steps\)"):
        SlidingWindows(20).fit(np.zeros(12))


def test_top_segments_are_the_runs_above_the_threshold_by_peak():
    scores = np.array([0, 2, 3, 0, 5, 0, 0, 4, 4, 1.0])
    segments = top_segments(scores, 1.5, k=2)
    assert segments == [{"start": 4, "end": 4, "peak": 4, "peak_score": 5.0},
                        {"start": 7, "end": 8, "peak": 7, "peak_score": 4.0}]
    assert top_segments(scores, 10.0) == []


def test_a_short_burst_flagged_by_its_windows_is_flagged_at_every_step():
    # windows of 8 steps, stride 1, over 40 steps; a burst at steps 20-21: the 7 windows holding all of it
    # score 1.05 (just above the threshold 1.0), the 2 holding one of its steps 0.3, the others 0.2
    n_steps, window = 40, 8
    starts = window_starts(n_steps, window, 1)
    holds = np.array([sum(start <= step < start + window for step in (20, 21)) for start in starts])
    scores = np.select([holds == 2, holds == 1], [1.05, 0.3], 0.2)
    flags = step_flags(scores, 1.0, n_steps, window, 1)
    votes = np.array([np.mean(scores[(starts <= step) & (step < starts + window)] > 1.0) for step in range(n_steps)])
    assert flags.tolist() == (votes >= 0.25).tolist()  # a quarter of the covering windows
    assert flags[20:22].all() and not flags[:14].any() and not flags[28:].any()
    # the old rule, the mean score against the window threshold, left the burst unflagged
    assert not (step_scores(scores, n_steps, window, 1)[20:22] > 1.0).any()
    assert top_segments(step_scores(scores, n_steps, window, 1), flags, k=1)[0]["peak"] in (20, 21)


def test_a_pipeline_of_windows_and_autoencoder_finds_the_burst(series):
    windows = SlidingWindows(40, stride=4)
    model = make_pipeline(windows, aekit.Autoencoder(**FAST)).fit(series)
    per_step = windows.to_steps(-model.score_samples(series), len(series))
    assert 760 <= int(np.argmax(per_step)) < 860


def test_fit_and_score_a_series_file_per_time_step(series, tmp_path):
    pd.DataFrame(series, columns=["heart", "breath"]).to_csv(tmp_path / "series.csv", index=False)
    summary = fit_file(tmp_path / "series.csv", tmp_path / "model", window=40, stride=4, **FAST)
    assert summary["window"] == {"window": 40, "stride": 4, "columns": ["heart", "breath"]}
    model = aekit.load(tmp_path / "model")
    assert model.window_ == summary["window"] and model.n_features_in_ == 80
    # the channels in another order are matched by name
    pd.DataFrame(series[:, ::-1], columns=["breath", "heart"]).to_parquet(tmp_path / "other.parquet")
    scored = score_file(tmp_path / "model", tmp_path / "other.parquet", tmp_path / "scores.csv", top_k=3)
    table = pd.read_csv(tmp_path / "scores.csv")
    windows = SlidingWindows(40, stride=4).fit(series)
    window_scores = model.outlier_scores(windows.transform(series))
    expected = windows.to_steps(window_scores, len(series))
    flags = step_flags(window_scores, model.threshold_, len(series), 40, 4)
    assert list(table.columns) == ["row", "outlier_score", "outlier"] and len(table) == 1200
    assert_close(table["outlier_score"], expected, rtol=1e-6, atol=1e-9)
    assert table["outlier"].tolist() == flags.astype(float).tolist() and flags[800:820].any()
    assert 760 <= scored["peak_step"] < 860 and scored["segments"][0]["start"] <= scored["peak_step"]
    assert scored["segments"] == top_segments(expected, flags, 3)


def test_cli_window_options_and_a_too_long_window(series, tmp_path, capsys):
    np.save(tmp_path / "series.npy", series[:300, :1])  # one channel
    code = main(["fit", str(tmp_path / "series.npy"), "-o", str(tmp_path / "model"), "--window", "30", "--stride",
                 "3", "--latent-dim", "3", "--hidden", "16", "--epochs", "3", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["window"]["window"] == 30
    code = main(["score", str(tmp_path / "model"), str(tmp_path / "series.npy"), "-o", str(tmp_path / "s.csv"),
                 "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["n_rows"] == 300 and summary["window"] == 30 and summary["stride"] == 3
    np.save(tmp_path / "short.npy", series[:20, :1])
    code = main(["score", str(tmp_path / "model"), str(tmp_path / "short.npy"), "-o", str(tmp_path / "t.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "longer than the series (20 time steps)" in err
