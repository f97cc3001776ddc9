"""Time series: windows, the dominant period, SeriesAutoencoder, and the fit/score workflow with --window."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline

import aekit
from aekit.cli import main
from aekit.estimator import series as series_module
from aekit.exceptions import InvalidInputError, InvalidParameterValue, ModelFileError
from aekit.plots import plot_series_scores
from aekit.timeseries import (
    SlidingWindows,
    dominant_period,
    step_scores,
    top_segments,
    window_bounds,
    window_rows,
    window_starts,
)
from aekit.workflows import fit_file, score_file
from conftest import SERIES_FIT, assert_close, write_consistent


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


def test_a_pipeline_of_windows_and_autoencoder_finds_the_burst(series):
    windows = SlidingWindows(40, stride=4)
    model = make_pipeline(windows, aekit.Autoencoder(**SERIES_FIT)).fit(series)
    per_step = windows.to_steps(-model.score_samples(series), len(series))
    assert 760 <= int(np.argmax(per_step)) < 860


def _windows_by_loop(X: np.ndarray, window: int, normalize) -> np.ndarray:
    rows = []
    for start in range(len(X) - window + 1):
        part = X[start : start + window].astype(np.float64)
        if normalize is not None:
            part = part - part.mean(axis=0)
            if normalize == "zscore":
                spread = part.std(axis=0)
                part = part / np.where(spread > 0, spread, 1.0)
        rows.append(part.ravel())
    return np.array(rows)


@pytest.mark.parametrize("normalize", [None, "level", "zscore"])
def test_window_rows_normalise_each_window_as_a_loop_does(normalize):
    X = np.random.default_rng(1).normal(size=(30, 2)) + np.linspace(0, 5, 30)[:, None]
    X[10:20, 1] = 3.0  # a flat stretch: zscore leaves its windows undivided
    got = window_rows(X, np.arange(30 - 6 + 1), 6, normalize)
    assert_close(got, _windows_by_loop(X, 6, normalize), rtol=1e-10, atol=1e-10)
    assert_close(SlidingWindows(6, normalize=normalize).fit_transform(X), got, rtol=0, atol=0)


def test_dominant_period_finds_the_period_within_its_bounds():
    t = np.arange(6000)
    rng = np.random.default_rng(0)
    seasonal = np.sin(2 * np.pi * t / 96) + 0.3 * rng.normal(size=len(t))
    assert dominant_period(seasonal)["window"] in (95, 96, 97)
    # a trend does not hide the season (it is removed first); two channels with the same period agree
    trending = np.column_stack([seasonal + t / 500.0, np.cos(2 * np.pi * t / 96) + 0.3 * rng.normal(size=len(t))])
    found = dominant_period(trending)
    assert found["rule"] == "period" and found["window"] in (95, 96, 97) and found["bounds"] == [8, 512]
    # a smooth series without a period: its autocorrelation decays slowly, with bumps that are no period
    walk = np.cumsum(rng.normal(size=4000))
    assert dominant_period(walk)["rule"] == "no period"
    noise = dominant_period(rng.normal(size=3000))
    assert noise == {"window": 64, "rule": "no period", "autocorrelation": None, "bounds": [8, 375]}
    # a period longer than an eighth of the series is out of bounds: the fallback, clipped
    assert dominant_period(np.sin(2 * np.pi * np.arange(400) / 100))["window"] == window_bounds(400)[1] == 50
    assert dominant_period(np.zeros(100))["rule"] == "no period"


@pytest.fixture(scope="module")
def series_model(series) -> aekit.SeriesAutoencoder:
    return aekit.SeriesAutoencoder(40, stride=2, autoencoder=aekit.Autoencoder(**SERIES_FIT)).fit(series)


def test_series_autoencoder_scores_each_step_as_the_mean_of_its_windows(series, series_model):
    model = series_model
    windows = _windows_by_loop(series, 40, "level").astype(np.float32)
    shapes = model.autoencoder_.outlier_scores(windows).astype(np.float64)
    # the level each window lost, scored on its own: robust distance to the training windows' levels
    levels = np.array([series[start:start + 40].astype(np.float64).mean(axis=0) for start in range(len(series) - 39)])
    center = np.median(levels, axis=0)
    spread = 1.4826 * np.median(np.abs(levels - center), axis=0)
    level_part = (np.abs(levels - center) / spread).mean(axis=1)
    assert_close(model.level_["center"], center, rtol=1e-9, atol=1e-12)
    assert_close(model.level_["spread"], spread, rtol=1e-9, atol=1e-12)
    assert_close(model.level_["shape_scale"], np.median(shapes), rtol=1e-5, atol=0)
    assert_close(model.level_["level_scale"], np.median(level_part), rtol=1e-6, atol=0)
    window_scores = shapes / np.median(shapes) + level_part / np.median(level_part)
    expected = [window_scores[max(0, step - 39) : step + 1].mean() for step in range(len(series))]
    scores = model.outlier_scores(series)
    assert scores.shape == (1200,) and model.stride_ == 2 and model.window_rule_ == {"window": 40, "rule": "given"}
    assert_close(scores, expected, rtol=1e-5, atol=1e-7)
    assert 760 <= int(np.argmax(scores)) < 860
    # the threshold is on step scores: about contamination of the training steps are flagged, each above it
    flagged = model.predict(series) == -1
    assert abs(flagged.mean() - 0.05) < 0.002 and set(np.unique(model.predict(series))) == {-1, 1}
    assert (scores[flagged] > model.threshold_).all() and (scores[~flagged] <= model.threshold_).all()
    assert_close(model.score_samples(series), -scores, rtol=0, atol=0)


def test_series_scoring_runs_in_chunks_with_the_same_result(series, series_model, monkeypatch):
    whole = series_model.outlier_scores(series)
    sizes = []
    real = series_model.autoencoder_.outlier_scores
    monkeypatch.setattr(series_module, "SCORE_VALUES", 40 * 2 * 100)  # 100 windows of 40 steps x 2 channels
    monkeypatch.setattr(series_model.autoencoder_, "outlier_scores", lambda rows: sizes.append(len(rows)) or real(rows))
    assert_close(series_model.outlier_scores(series), whole, rtol=1e-6, atol=1e-9)
    assert max(sizes) == 100 and sum(sizes) == 1200 - 40 + 1


def test_series_autoencoder_parameters_and_inputs_are_checked(series, series_model):
    with pytest.raises(InvalidParameterValue, match="'normalize' parameter"):
        aekit.SeriesAutoencoder(normalize="levle").fit(series)
    with pytest.raises(InvalidParameterValue, match="'window' parameter"):
        aekit.SeriesAutoencoder(window=1).fit(series)
    with pytest.raises(InvalidInputError, match="needs a series of at least 51 time steps"):
        aekit.SeriesAutoencoder(window=50).fit(series[:50])
    with pytest.raises(InvalidInputError, match="The series has 1 channels; this model was fitted on 2"):
        series_model.outlier_scores(series[:, :1])


def test_a_series_model_round_trips_and_its_state_is_checked(series, series_model, tmp_path):
    aekit.save(series_model, tmp_path / "model")
    loaded = aekit.load(tmp_path / "model")
    assert isinstance(loaded, aekit.SeriesAutoencoder) and loaded.window_ == 40 and loaded.stride_ == 2
    assert loaded.threshold_ == series_model.threshold_ and loaded.normalize == "level"
    assert np.array_equal(loaded.outlier_scores(series), series_model.outlier_scores(series))
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["fitted"]["window"]["window"] = 30  # window x channels is no longer the model's input (80 values)
    write_consistent(tmp_path / "model", "config.json", json.dumps(config).encode())
    with pytest.raises(ModelFileError, match="window x channels"):
        aekit.load(tmp_path / "model")
    config["fitted"]["window"] = {"window": 40, "stride": 2, "columns": ["a", "b"]}  # an older --window model
    write_consistent(tmp_path / "model", "config.json", json.dumps(config).encode())
    with pytest.raises(ModelFileError, match="refit it"):
        aekit.load(tmp_path / "model")


def test_the_onnx_export_of_a_series_model_says_how_to_score_steps(series, series_model, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path = series_model.to_onnx(tmp_path / "series.onnx")
    metadata = {prop.key: prop.value for prop in onnx.load(path).metadata_props}
    assert metadata["series_window"] == "40" and json.loads(metadata["series_normalize"]) == "level"
    # what the metadata tells a consumer to do gives the model's step scores
    windows = _windows_by_loop(series, 40, "level").astype(np.float32)
    window_scores = ort.InferenceSession(str(path)).run(["outlier_score"], {"X": windows})[0]
    level = json.loads(metadata["series_level"])
    assert "series_level" in metadata["series_steps"] and level == series_model.level_
    means = np.array([series[start:start + 40].astype(np.float64).mean(axis=0) for start in range(len(series) - 39)])
    level_part = (np.abs(means - level["center"]) / level["spread"]).mean(axis=1)
    window_scores = window_scores / level["shape_scale"] + level_part / level["level_scale"]
    steps = step_scores(window_scores, len(series), 40, 1)
    assert_close(steps, series_model.outlier_scores(series), rtol=1e-4, atol=1e-5)
    assert float(metadata["series_threshold"]) == series_model.threshold_


def test_fit_and_score_a_series_file_per_time_step(series, tmp_path):
    frame = pd.DataFrame(series, columns=["heart", "breath"])
    frame.insert(0, "when", pd.date_range("2024-01-01", periods=len(series), freq="h").astype(str))
    frame["ward"] = "A"
    frame.to_csv(tmp_path / "series.csv", index=False)
    summary = fit_file(tmp_path / "series.csv", tmp_path / "model", window=40, stride=2, **SERIES_FIT)
    assert summary["window"]["window"] == 40 and summary["n_features"] == 2
    model = aekit.load(tmp_path / "model")
    assert list(model.feature_names_in_) == ["heart", "breath"]
    # the channels in another order are matched by name; the timestamp column is carried, then keep-columns
    frame[["ward", "breath", "when", "heart"]].to_csv(tmp_path / "other.csv", index=False)
    scored = score_file(tmp_path / "model", tmp_path / "other.csv", tmp_path / "scores.csv", top_k=3,
                        keep_columns=["ward"])
    table = pd.read_csv(tmp_path / "scores.csv")
    expected = model.outlier_scores(series)
    assert list(table.columns) == ["row", "when", "ward", "outlier_score", "outlier"] and len(table) == 1200
    assert table["when"].tolist() == frame["when"].tolist() and table["outlier"].dtype == np.int64
    assert_close(table["outlier_score"], expected, rtol=1e-6, atol=1e-9)
    assert table["outlier"].tolist() == (expected > model.threshold_).astype(int).tolist()
    assert scored["segments"][0]["start_time"] == frame["when"][scored["segments"][0]["start"]]
    assert [(s["start"], s["end"]) for s in scored["segments"]] == [
        (s["start"], s["end"]) for s in top_segments(expected, expected > model.threshold_, 3)]
    assert all(table["outlier_score"][s["start"] : s["end"] + 1].min() > scored["threshold"]
               for s in scored["segments"])
    assert score_file(model, tmp_path / "other.csv", None)["output"] is None
    with pytest.raises(InvalidInputError, match="--keep-columns names 'wrad'"):
        score_file(model, tmp_path / "other.csv", tmp_path / "x.csv", keep_columns=["wrad"])
    with pytest.raises(InvalidParameterValue, match="--per-feature"):
        score_file(model, tmp_path / "other.csv", None, per_feature=True)
    with pytest.raises(InvalidParameterValue, match="integer >= 0"):
        score_file(model, tmp_path / "other.csv", None, top_k=-1)


def test_cli_series_options_and_errors(series, tmp_path, capsys):
    np.save(tmp_path / "series.npy", series[:300, :1])  # one channel
    code = main(["fit", str(tmp_path / "series.npy"), "-o", str(tmp_path / "model"), "--window", "auto", "--stride",
                 "3", "--latent-dim", "3", "--hidden", "16", "--epochs", "3", "--json"])
    window = json.loads(capsys.readouterr().out)["window"]
    assert code == 0 and window["rule"] in ("period", "no period") and window["stride"] == 3
    code = main(["score", str(tmp_path / "model"), str(tmp_path / "series.npy"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["n_rows"] == 300 and summary["window"] == window["window"]
    assert summary["output"] is None
    code = main(["info", str(tmp_path / "model")])
    assert code == 0 and f"window      {window['window']} steps" in capsys.readouterr().out
    if importlib.util.find_spec("onnx") is not None:
        assert main(["export", str(tmp_path / "model"), "-o", str(tmp_path / "m.onnx"), "--json"]) == 0
        exported = json.loads(capsys.readouterr().out)
        assert exported["series"]["window"] == window["window"] and exported["n_features"] == window["window"]
    for argv, message in [
        (["score", "MODEL", "series.npy", "--top-k", "-1"], "must be an integer >= 0"),
        (["encode", "MODEL", "series.npy", "-o", str(tmp_path / "z.csv")], "encode works on independent rows"),
        (["fit", "series.npy", "-o", str(tmp_path / "m2"), "--stride", "4"], "needs --window W or --window auto"),
    ]:
        argv = [str(tmp_path / "model") if a == "MODEL" else str(tmp_path / a) if a == "series.npy" else a
                for a in argv]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    np.save(tmp_path / "short.npy", series[:5, :1])
    code = main(["score", str(tmp_path / "model"), str(tmp_path / "short.npy"), "-o", str(tmp_path / "t.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "fewer than the model's window" in err


def test_plot_and_report_draw_the_score_over_time(series, tmp_path, capsys):
    frame = pd.DataFrame(series, columns=["heart", "breath"])
    frame.insert(0, "timestamp", pd.date_range("2024-01-01", periods=len(series), freq="min").astype(str))
    frame.to_csv(tmp_path / "series.csv", index=False)
    fit_file(tmp_path / "series.csv", tmp_path / "model", window=40, stride=2, **SERIES_FIT)
    assert main(["plot", str(tmp_path / "model"), str(tmp_path / "series.csv"), "-o", str(tmp_path / "plots"),
                 "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["files"]) == {"training_curves", "series_scores"}
    model = aekit.load(tmp_path / "model")
    scores = model.outlier_scores(series)
    drawn = plot_series_scores(series, scores, model.threshold_, tmp_path / "s.png", channel_names=["heart", "breath"])
    flagged = np.flatnonzero(scores > model.threshold_)
    assert drawn["n_flagged"] == len(flagged) and drawn["segments"][0][0] == flagged[0]
    assert sum(end - start + 1 for start, end in drawn["segments"]) == len(flagged)
    assert main(["report", str(tmp_path / "model"), str(tmp_path / "series.csv"), "-o", str(tmp_path / "r.html"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["figures"] == ["series_scores", "training_curves"]
    page = (tmp_path / "r.html").read_text()
    assert "Flagged segments" in page and "per-window normalisation" in page


def test_a_flat_series_fits_saves_loads_and_flags_nothing(tmp_path):
    flat = np.full(300, 7.0)
    model = aekit.SeriesAutoencoder(20, autoencoder=aekit.Autoencoder(**SERIES_FIT)).fit(flat)
    aekit.save(model, tmp_path / "model")  # its windows are all alike: the codes' modes have rank 0
    loaded = aekit.load(tmp_path / "model")
    assert np.array_equal(loaded.outlier_scores(flat), model.outlier_scores(flat))
    assert (loaded.predict(flat) == 1).all()
    # a plain array is read by position, whatever the channel names the model stored
    np.save(tmp_path / "flat.npy", flat[:, None])
    named = aekit.SeriesAutoencoder(20, autoencoder=aekit.Autoencoder(**SERIES_FIT)).fit(pd.DataFrame({"level": flat}))
    assert score_file(named, tmp_path / "flat.npy", None)["n_rows"] == 300
