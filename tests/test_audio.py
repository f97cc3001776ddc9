"""aekit.data.audio: sound files read as mono waveforms at one rate, with the same refusals as image folders."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
import soundfile
import soxr

from aekit.data.audio import MAX_CHANNELS, SAMPLE_RATE, audio_clips, audio_files, read_audio
from aekit.exceptions import InvalidInputError, InvalidParameterValue

RATE = 8000


def tone(frequency: float, seconds: float = 0.25, rate: int = RATE) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)


@pytest.mark.parametrize("suffix, subtype", [(".wav", "PCM_16"), (".wav", "FLOAT"), (".flac", "PCM_16"),
                                             (".ogg", "VORBIS")])
def test_formats_read_as_written_then_resampled(tmp_path, suffix, subtype):
    wave = tone(440.0, rate=SAMPLE_RATE)
    path = tmp_path / f"a{suffix}"
    soundfile.write(path, wave, SAMPLE_RATE, subtype=subtype)
    read = read_audio(path)
    assert read.dtype == np.float32 and read.shape == wave.shape
    # PCM_16 and FLAC are exact to a quantisation step; Vorbis is lossy: only close in energy
    tolerance = 0.05 if subtype == "VORBIS" else 1.0 / 2**15
    if subtype == "VORBIS":
        assert abs(np.sqrt(np.mean(read**2)) - np.sqrt(np.mean(wave**2))) < tolerance
    else:
        np.testing.assert_allclose(read, wave, atol=tolerance)


def test_resampling_matches_soxr_and_keeps_the_pitch(tmp_path):
    wave = tone(440.0, seconds=0.5)
    soundfile.write(tmp_path / "a.wav", wave, RATE, subtype="FLOAT")
    read = read_audio(tmp_path / "a.wav")  # 8 kHz -> 16 kHz
    np.testing.assert_allclose(read, soxr.resample(wave.astype(np.float32), RATE, SAMPLE_RATE, quality="HQ"),
                               atol=1e-6)
    assert len(read) == 2 * len(wave)
    spectrum = np.abs(np.fft.rfft(read))
    assert np.fft.rfftfreq(len(read), 1 / SAMPLE_RATE)[np.argmax(spectrum)] == pytest.approx(440.0, abs=2.0)


def test_channels_are_averaged(tmp_path):
    left, right = tone(300.0), tone(500.0)
    soundfile.write(tmp_path / "s.wav", np.stack([left, right], axis=1), RATE, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(tmp_path / "s.wav", RATE), (left + right) / 2, atol=1e-6)


def test_folder_ids_and_order(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.wav", "a.flac", "sub/c.wav", ".hidden.wav", "notes.txt"):
        if name.endswith((".wav", ".flac")):
            soundfile.write(tmp_path / name, tone(200.0), RATE)
        else:
            (tmp_path / name).write_text("x")
    assert [file.name for file in audio_files(tmp_path)] == ["a.flac", "b.wav", "c.wav"]
    assert [name for name, _ in audio_clips(tmp_path, RATE)] == ["a.flac", "b.wav", "sub/c.wav"]
    assert [name for name, _ in audio_clips(tmp_path / "b.wav", RATE)] == ["b.wav"]


def _wav_bytes(wave, rate=RATE, subtype="PCM_16") -> bytearray:
    import io
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, rate, format="WAV", subtype=subtype)
    return bytearray(buffer.getvalue())


def refusal(path) -> str:
    with pytest.raises(InvalidInputError) as caught:
        read_audio(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_empty_file(tmp_path):
    (tmp_path / "e.wav").write_bytes(b"")
    assert "empty (0 bytes)" in refusal(tmp_path / "e.wav")


def test_renamed_non_audio_file(tmp_path):
    (tmp_path / "a.wav").write_text("time,value\n1,2\n" * 50)
    assert "not a WAV" in refusal(tmp_path / "a.wav")


def test_a_container_outside_the_allow_list(tmp_path):
    soundfile.write(tmp_path / "a.wav", tone(200.0), RATE, format="AIFF")  # AIFF content under a .wav name
    assert "AIFF audio" in refusal(tmp_path / "a.wav")


def test_no_samples(tmp_path):
    soundfile.write(tmp_path / "a.wav", np.zeros(0), RATE)
    assert "no samples" in refusal(tmp_path / "a.wav")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_float_samples(tmp_path, bad):
    wave = tone(200.0).astype(np.float32)
    wave[7] = bad
    soundfile.write(tmp_path / "a.wav", wave, RATE, subtype="FLOAT")
    assert "NaN or infinite samples (at sample 7)" in refusal(tmp_path / "a.wav")


def test_too_many_channels(tmp_path):
    soundfile.write(tmp_path / "a.wav", np.zeros((10, 300), dtype=np.float32), RATE, subtype="FLOAT")
    assert f"300 channels: over aekit's limit of {MAX_CHANNELS}" in refusal(tmp_path / "a.wav")


def test_an_odd_sample_rate_in_the_header(tmp_path):
    data = _wav_bytes(tone(200.0))
    data[24:28] = struct.pack("<I", 3)  # the fmt chunk's sample rate: 3 Hz
    data[28:32] = struct.pack("<I", 6)
    (tmp_path / "a.wav").write_bytes(bytes(data))
    assert "sample rate of 3 Hz" in refusal(tmp_path / "a.wav")


def test_a_header_declaring_hours_is_refused_before_decoding(tmp_path):
    # a FLAC header states the total number of samples: 2**35 at 8 kHz is about 50 days
    soundfile.write(tmp_path / "a.flac", tone(200.0), RATE)
    data = bytearray((tmp_path / "a.flac").read_bytes())
    streaminfo = 8  # "fLaC", then the STREAMINFO block's 4-byte header
    # bytes 13-17 of STREAMINFO: 20 bits rate, 3 channels, 5 bits per sample, 36 bits total samples
    packed = int.from_bytes(data[streaminfo + 10:streaminfo + 18], "big")
    packed = (packed & ~((1 << 36) - 1)) | (1 << 35)
    data[streaminfo + 10:streaminfo + 18] = packed.to_bytes(8, "big")
    (tmp_path / "a.flac").write_bytes(bytes(data))
    assert "minutes of sound: over aekit's limit" in refusal(tmp_path / "a.flac")


def test_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "pipe.wav")
    assert "FIFO" in refusal(tmp_path / "pipe.wav")


def test_empty_folder_and_bad_rate(tmp_path):
    with pytest.raises(InvalidInputError, match="Found no sound files"):
        list(audio_clips(tmp_path))
    with pytest.raises(InvalidParameterValue, match="'sample_rate' parameter of read_audio must be an int"):
        read_audio(tmp_path / "x.wav", sample_rate=10)
