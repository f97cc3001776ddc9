"""aekit.spectrogram: log-mel frames checked against scipy's STFT and plain numpy, in a Pipeline, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from aekit import Autoencoder
from aekit.exceptions import InvalidInputError, InvalidParameterValue
from aekit.spectrogram import POWER_FLOOR, LogMelFrames, mel_filters, power_spectrogram

RATE = 16000


def tone(frequency: float, seconds: float = 0.5) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * RATE)) / RATE)


def test_power_spectrogram_matches_scipy_stft():
    wave = np.random.default_rng(0).normal(size=3001)
    n_fft, hop = 256, 100
    ours = power_spectrogram(wave, n_fft, hop)
    window = signal.get_window("hann", n_fft)
    # scipy: centred frames padded with zeros, each spectrum divided by the window's sum
    _, _, spectra = signal.stft(wave, window=window, nperseg=n_fft, noverlap=n_fft - hop, boundary="zeros",
                                padded=False, detrend=False, return_onesided=True)
    reference = np.abs(spectra.T * window.sum()) ** 2
    assert ours.shape == (1 + len(wave) // hop, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, reference[:len(ours)], rtol=1e-9, atol=1e-9)


def test_mel_filters_follow_the_htk_scale():
    filters = mel_filters(RATE, 1024, 20, fmin=100.0, fmax=7000.0)
    bins = np.fft.rfftfreq(1024, 1 / RATE)
    mel = 2595 * np.log10(1 + np.array([100.0, 7000.0]) / 700)
    centres = 700 * (10 ** (np.linspace(*mel, 22)[1:-1] / 2595) - 1)
    peaks = bins[np.argmax(filters, axis=1)]
    np.testing.assert_allclose(peaks, centres, atol=RATE / 1024)  # each band peaks at its centre, to a bin
    assert filters.max(axis=1) == pytest.approx(np.ones(20))
    assert not filters[:, bins < 100.0].any() and not filters[:, bins > 7000.0].any()


def test_a_tone_lands_in_its_band():
    features = LogMelFrames(n_mels=32).fit()
    centres = 700 * (10 ** (np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 34)[1:-1] / 2595) - 1)
    for band in (5, 20):
        spectrogram = features.log_mel(tone(centres[band]))
        assert spectrogram.shape == (1 + 8000 // 512, 32) and spectrogram.dtype == np.float32
        assert np.argmax(spectrogram[5]) == band  # a middle frame


def test_rows_join_consecutive_frames_and_clip_means():
    features = LogMelFrames(n_mels=8, frames=3, n_fft=256, hop_length=128).fit()
    clips = [tone(440.0, 0.3), np.random.default_rng(1).normal(size=2000) * 0.1]
    rows, counts = features.transform_clips(clips)
    spectrograms = [features.log_mel(clip) for clip in clips]
    assert counts.tolist() == [len(s) - 2 for s in spectrograms]
    expected = np.concatenate([np.hstack([s[:-2], s[1:-1], s[2:]]) for s in spectrograms])
    np.testing.assert_array_equal(rows, expected)
    assert features.get_feature_names_out()[:2].tolist() == ["f0_mel0", "f0_mel1"]
    scores = np.arange(len(rows), dtype=float)
    means = [block.mean() for block in np.split(scores, np.cumsum(counts)[:-1])]
    np.testing.assert_allclose(features.to_clips(scores, counts), means)
    np.testing.assert_allclose(features.row_times(3), np.array([1, 2, 3]) * 128 / RATE)


def test_silence_is_the_floor():
    spectrogram = LogMelFrames(n_mels=8).fit().log_mel(np.zeros(4000))
    np.testing.assert_array_equal(spectrogram, np.float32(10 * np.log10(POWER_FLOOR)))


def test_in_a_pipeline_with_clone():
    clips = [tone(300.0 + 10 * k, 0.25) for k in range(12)]
    pipeline = make_pipeline(LogMelFrames(n_mels=16, frames=2), Autoencoder(latent_dim=2, epochs=2, random_state=0))
    fitted = clone(pipeline).fit(clips)
    assert fitted[-1].n_features_in_ == 32
    assert fitted.transform(clips[:2]).shape[1] == 2


def test_refusals():
    features = LogMelFrames(frames=5).fit()
    with pytest.raises(InvalidInputError, match="list of clips"):
        features.transform(tone(300.0))
    with pytest.raises(InvalidInputError, match="Clip 1 is 0.0312 s long: too short for one row of 5 frames"):
        features.transform([tone(300.0), np.zeros(500)])
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        features.transform([np.array([0.0, np.nan] * 4000)])
    with pytest.raises(InvalidParameterValue, match="The 'n_mels' parameter of LogMelFrames must be an int"):
        LogMelFrames(n_mels=0).fit()
    with pytest.raises(InvalidParameterValue, match="band 0 covers no bin"):
        LogMelFrames(n_fft=32, n_mels=64).fit()


def test_centre_frames_are_the_spectrogram_inside_its_edges():
    features = LogMelFrames(n_mels=8, frames=5, n_fft=256, hop_length=128).fit()
    clip = tone(440.0, 0.3)
    spectrogram = features.log_mel(clip)
    np.testing.assert_array_equal(features.centre_frames(features.clip_rows(clip)), spectrogram[2:-2])
    assert LogMelFrames.from_dict({**features.to_dict(), "n_clips": 3}).get_params() == features.get_params()
