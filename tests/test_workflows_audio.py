"""Sound through the file workflows and the CLI: fit on a folder's log-mel frames, score per clip and per moment."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile

import aekit
from aekit.data import DataSpec, read_data
from aekit.estimator.train import auto_epochs
from aekit.exceptions import InvalidInputError
from aekit.spectrogram import LogMelFrames
from aekit.workflows import fit_file, model_info, score_file
from aekit.workflows.audio import audio_rows

RATE = 16000
FEATURES = {"n_mels": 16, "frames": 3, "n_fft": 512, "hop_length": 256}
PARAMS = {"latent_dim": 3, "hidden_dims": (16,), "epochs": 15, "random_state": 0}


def hum(frequency: float, rng, seconds: float = 0.3) -> np.ndarray:
    """A machine-like hum: a tone and its second harmonic, with a little noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * frequency * t) + 0.1 * np.sin(4 * np.pi * frequency * t)
            + 0.01 * rng.normal(size=t.size))


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    """A training folder of 24 hums, and a new folder with two more hums and two odd clips."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("sounds")
    train, new = root / "train", root / "new"
    (train / "sub").mkdir(parents=True)
    new.mkdir()
    for k in range(24):
        soundfile.write(train / ("sub" if k % 2 else ".") / f"hum{k:02d}.wav", hum(200 + 5 * k, rng), RATE)
    soundfile.write(new / "hum_a.wav", hum(230, rng), RATE)
    soundfile.write(new / "hum_b.flac", hum(250, rng), RATE)
    soundfile.write(new / "noise.wav", 0.3 * rng.normal(size=RATE // 3), RATE)
    squeal = np.sin(2 * np.pi * 3000 * np.arange(RATE // 2) / 8000)  # at 8 kHz: resampled on reading
    soundfile.write(new / "squeal.wav", 0.5 * squeal, 8000)
    model_dir = root / "model"
    summary = fit_file(train, model_dir, audio=FEATURES, **PARAMS)
    return train, new, model_dir, summary


def test_fit_trains_on_the_frames_and_stores_the_features(sounds):
    train, _, model_dir, summary = sounds
    model = aekit.load(model_dir)
    X, counts, names = audio_rows(LogMelFrames(**FEATURES).fit(), train)
    assert names[:2] == ["hum00.wav", "hum02.wav"] and "sub/hum01.wav" in names and len(names) == 24
    assert summary["n_rows"] == len(X) == counts.sum() and summary["n_clips"] == 24
    from aekit.cli.fit import describe

    assert describe(summary).startswith(f"trained on {len(X)} rows (the frames of 24 clips) x 48 features")
    assert model.n_features_in_ == 16 * 3 and model.anomaly_score == "error"
    assert {key: model.audio_[key] for key in FEATURES} == FEATURES
    assert model.audio_["n_clips"] == 24 and len(model.audio_["clip_quantiles"]) == 1001
    info = model_info(model_dir)["audio"]
    assert info["n_clips"] == 24 and info["n_frames"] == len(X) and "clip_quantiles" not in info
    # the stored clip quantiles are those of the training clips' mean row errors
    clip_scores = LogMelFrames(**FEATURES).fit().to_clips(model.reconstruction_error(X), counts)
    np.testing.assert_allclose(model.audio_["clip_quantiles"][::500], np.quantile(clip_scores, [0, 0.5, 1]),
                               rtol=1e-5)
    clip_threshold = float(np.quantile(clip_scores, 0.95))  # what aekit score flags a clip above (contamination)
    np.testing.assert_allclose(summary["clip_threshold"], clip_threshold, rtol=1e-5)
    assert f"\nclip threshold {summary['clip_threshold']:.5g} (contamination 0.05, " in describe(summary)
    assert f"\na frame's threshold (--per-frame) {model.threshold_:.5g} " in describe(summary)


def test_score_per_clip_and_per_frame_agree(sounds, tmp_path):
    _, new, model_dir, _ = sounds
    clips = score_file(model_dir, new, tmp_path / "clips.csv")
    frames = score_file(model_dir, new, tmp_path / "frames.csv", per_frame=True, spec=DataSpec(chunk_rows=7))
    per_clip = pd.read_csv(tmp_path / "clips.csv")
    per_frame = pd.read_csv(tmp_path / "frames.csv")
    assert per_clip["file"].tolist() == ["hum_a.wav", "hum_b.flac", "noise.wav", "squeal.wav"]
    assert clips["n_clips"] == frames["n_clips"] == 4 and frames["n_rows"] == len(per_frame) == clips["n_frames"]
    # a clip's score is the mean of its moments' scores (batches of 7 rows cut clips apart: same result)
    means = per_frame.groupby("file", sort=False)["outlier_score"].mean()
    np.testing.assert_allclose(per_clip["outlier_score"].to_numpy(), means.to_numpy(), rtol=1e-6)
    # the first moment of a clip is centred on frame frames // 2
    first = per_frame.groupby("file", sort=False)["time"].min()
    np.testing.assert_allclose(first.to_numpy(), 1 * 256 / RATE)
    # the odd clips score above both hums, and are flagged
    hums = per_clip["outlier_score"][:2].max()
    assert (per_clip["outlier_score"][2:] > hums).all()
    assert per_clip["outlier"].tolist()[2:] == [1, 1]
    assert clips["threshold_source"].startswith("training clips' scores, contamination 0.05")


def test_options_that_do_not_apply(sounds, tmp_path):
    from aekit.exceptions import InvalidParameterValue

    train, new, model_dir, _ = sounds
    with pytest.raises(InvalidParameterValue) as caught:
        score_file(model_dir, new, tmp_path / "a.csv", per_feature=True)
    assert caught.value.param == "per_feature"
    table = tmp_path / "x.npy"
    np.save(table, np.zeros((30, 3)))
    plain = aekit.Autoencoder(latent_dim=1, epochs=1, random_state=0).fit(np.random.default_rng(0).normal(size=(30, 3)))
    with pytest.raises(InvalidParameterValue) as caught:
        score_file(plain, table, tmp_path / "b.csv", per_frame=True)
    assert caught.value.param == "per_frame" and not (tmp_path / "b.csv").exists()
    with pytest.raises(InvalidParameterValue) as caught:
        fit_file(train, tmp_path / "m", window=8, **PARAMS)
    assert caught.value.param == "window" and not (tmp_path / "m").exists()


def test_scores_survive_the_model_folder(sounds, tmp_path):
    train, new, model_dir, _ = sounds
    fitted = aekit.load(model_dir)
    X, _, _ = audio_rows(LogMelFrames(**FEATURES).fit(), new)
    reloaded = aekit.load(model_dir)
    np.testing.assert_array_equal(fitted.outlier_scores(X), reloaded.outlier_scores(X))


def test_read_data_refuses_sound_with_the_way_forward(sounds):
    train = sounds[0]
    with pytest.raises(InvalidInputError, match="is sound: clips of different lengths are not rows"):
        read_data(train)


def test_cli_fit_score_and_a_bad_clip(sounds, tmp_path):
    _, new, model_dir, _ = sounds
    run = [sys.executable, "-m", "aekit"]
    done = subprocess.run([*run, "score", str(model_dir), str(new), "-o", str(tmp_path / "s.csv")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(tmp_path / "s.csv")) == 4
    assert " of 4 clips are outliers " in done.stdout  # clips, as the file holds: not rows
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "renamed.wav").write_text("not sound at all\n" * 20)
    done = subprocess.run([*run, "score", str(model_dir), str(bad), "-o", str(tmp_path / "t.csv")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "renamed.wav" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "t.csv").exists()


def test_pictures_of_clips_and_reconstruct(sounds, tmp_path):
    from aekit.plots import write_model_plots
    from aekit.plots.sound import clip_picture
    from aekit.report import write_report
    from aekit.workflows import reconstruct_file

    _, new, model_dir, _ = sounds
    model = aekit.load(model_dir)
    written = write_model_plots(model, tmp_path / "plots", new)
    assert sorted(written) == ["clip_highest", "clip_lowest", "latent", "training_curves"]
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in written.values())
    summary = write_report(model, tmp_path / "report.html", new)
    assert summary["figures"] == ["clip_highest", "clip_lowest", "training_curves", "latent"]
    done = reconstruct_file(model_dir, new, tmp_path / "pictures")
    assert done["n_rows"] == 4
    assert sorted(path.name for path in (tmp_path / "pictures").iterdir()) == [
        "hum_a.wav.png", "hum_b.flac.png", "noise.wav.png", "squeal.wav.png"]
    # a picture's clip score is the score that score_file gives the clip
    score_file(model_dir, new, tmp_path / "clips.csv")
    scores = pd.read_csv(tmp_path / "clips.csv").set_index("file")["outlier_score"]
    drawn = clip_picture(model, LogMelFrames(**FEATURES).fit(), new / "noise.wav", tmp_path / "n.png")
    assert drawn["clip_score"] == pytest.approx(scores["noise.wav"], rel=1e-6)
    with pytest.raises(InvalidInputError, match="already exists: the reconstructions of sound clips are pictures"):
        reconstruct_file(model_dir, new, tmp_path / "pictures")


def test_scoring_batches_are_bounded_in_values(sounds, tmp_path, monkeypatch):
    import aekit.workflows.audio as audio_workflow

    _, new, model_dir, _ = sounds
    model = aekit.load(model_dir)
    score_file(model, new, tmp_path / "a.csv")
    batches = []
    scores = model.outlier_scores
    monkeypatch.setattr(model, "outlier_scores", lambda X: batches.append(len(X)) or scores(X))
    monkeypatch.setattr(audio_workflow, "BATCH_VALUES", 48 * 10)  # 10 rows of 48 values
    score_file(model, new, tmp_path / "b.csv")  # chunk_rows left at its default of 65,536 rows
    longest = int(audio_rows(LogMelFrames(**FEATURES).fit(), new)[1].max())
    assert len(batches) == 4 and max(batches) < 10 + longest  # a batch closes at the clip that fills it
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "b.csv"), pd.read_csv(tmp_path / "a.csv"))


def test_cli_sound_options_are_stored_and_refused_elsewhere(sounds, tmp_path):
    train = sounds[0]
    run = [sys.executable, "-m", "aekit", "fit"]
    done = subprocess.run([*run, str(train), "-o", str(tmp_path / "m"), "--n-mels", "8", "--frames", "2",
                           "--n-fft", "256", "--hop-length", "128", "--sample-rate", "8000", "--fmax", "3000",
                           "--epochs", "2", "--latent-dim", "2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    model = aekit.load(tmp_path / "m")
    assert {key: model.audio_[key] for key in ("n_mels", "frames", "n_fft", "hop_length", "sample_rate", "fmax")} \
        == {"n_mels": 8, "frames": 2, "n_fft": 256, "hop_length": 128, "sample_rate": 8000, "fmax": 3000.0}
    assert model.n_features_in_ == 16
    np.save(tmp_path / "x.npy", np.zeros((30, 3)))
    done = subprocess.run([*run, str(tmp_path / "x.npy"), "-o", str(tmp_path / "n"), "--n-mels", "8"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "--n-mels 8 sets the log-mel features of sound" in done.stderr and "Drop --n-mels" in done.stderr
    done = subprocess.run([*run, str(train), "-o", str(tmp_path / "n"), "--n-mels", "0"], capture_output=True,
                          text=True)
    assert done.returncode == 2 and "--n-mels must be an int in the range [1, 512]. Got 0" in done.stderr
    assert not (tmp_path / "n").exists()


def test_sound_defaults_are_the_fits_and_the_helps(sounds):
    from aekit.cli import build_parser
    from aekit.workflows.audio import MODEL_DEFAULTS

    params = aekit.load(sounds[2]).get_params()  # the fixture's fit gives hidden_dims and epochs, not the rest
    rest = ("activation", "anomaly_score", "batch_size", "lr", "lr_schedule", "scaler")
    assert [params[name] for name in rest] == [MODEL_DEFAULTS[name] for name in rest]
    sound = next(group for group in build_parser().commands["fit"]._action_groups if group.title == "sound")
    words = " ".join(sound.description.split())
    assert (f"--hidden {','.join(map(str, MODEL_DEFAULTS['hidden_dims']))}, --activation "
            f"{MODEL_DEFAULTS['activation']}, --batch-size {MODEL_DEFAULTS['batch_size']}," in words
            and f"--lr {MODEL_DEFAULTS['lr']:g} annealed over --epochs {MODEL_DEFAULTS['epochs']} "
            f"({MODEL_DEFAULTS['lr_schedule']})" in words
            and f"--scaler {MODEL_DEFAULTS['scaler']} and --anomaly-score "
            f"{MODEL_DEFAULTS['anomaly_score']}" in words), words


def test_onnx_export_of_a_sound_model_scores_clips_as_aekit(sounds, tmp_path):
    import json

    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from aekit.export import export_onnx

    _, new, model_dir, _ = sounds
    model = aekit.load(model_dir)
    path = export_onnx(model, tmp_path / "m.onnx")
    metadata = {prop.key: prop.value for prop in onnx.load(path).metadata_props}
    assert "LogMelFrames(" in metadata["audio_steps"]
    # a consumer computes the rows from the metadata alone, runs the graph and takes each clip's mean
    features = LogMelFrames.from_dict(json.loads(metadata["audio_features"]))
    X, counts, names = audio_rows(features, new)
    session = onnxruntime.InferenceSession(str(path))
    row_scores = session.run(["outlier_score"], {"X": X})[0]
    clip_scores = features.to_clips(row_scores, counts)
    score_file(model, new, tmp_path / "s.csv")
    expected = pd.read_csv(tmp_path / "s.csv")
    assert expected["file"].tolist() == names
    np.testing.assert_allclose(clip_scores, expected["outlier_score"], rtol=1e-4)
    flags = (clip_scores > float(metadata["audio_clip_threshold"])).astype(int)
    assert flags.tolist() == expected["outlier"].tolist() and flags.sum() >= 1


def test_epochs_auto_is_resolved_from_the_frames_steps(sounds, tmp_path):
    train, _, _, _ = sounds
    summary = fit_file(train, tmp_path / "m", audio=FEATURES, **{**PARAMS, "epochs": "auto", "patience": 1})
    assert summary["max_epochs"] == auto_epochs(summary["steps_per_epoch"]) >= summary["epochs"]
