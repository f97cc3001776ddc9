"""Sound files (WAV, FLAC, Ogg Vorbis), decoded by libsndfile (``soundfile``) and resampled by ``soxr``.

A clip becomes one float32 waveform: **mono** (the channels are averaged, so that a source heard
equally on every channel keeps its level), **at one sample rate** (:data:`SAMPLE_RATE`, 16 kHz, the
rate of speech corpora and of the DCASE machine-sound data; other rates are resampled by soxr's
high-quality filter), samples in [-1, 1] for integer files (float files are kept as written).

Every file's header is checked before anything is decoded, as for images: its container must be one
of :data:`AUDIO_FORMATS` whatever its name says, with at most :data:`MAX_CHANNELS` channels, a sample
rate between :data:`MIN_SAMPLE_RATE` and :data:`MAX_SAMPLE_RATE` and at most
:data:`MAX_AUDIO_SECONDS` of sound. Decoding goes block by block, each block mixed down at once and
the count of samples checked as it grows, so memory stays bounded by the clip's length even when a
header lies; NaN or infinite samples (possible in float files) are refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile
import soxr

from aekit.data.common import AUDIO_SUFFIXES, IMAGE_SUFFIXES, file_id, files_under, open_regular
from aekit.exceptions import InvalidInputError, parameter_error

SAMPLE_RATE = 16000
# Containers a sound file may be, whatever its name says (libsndfile reads many more: AIFF, MAT5, ...).
AUDIO_FORMATS = ("WAV", "WAVEX", "RF64", "W64", "FLAC", "OGG")
MAX_CHANNELS = 64
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768000
# Ten minutes a clip: 9.6 million samples (38 MB of float32) at 16 kHz. Longer recordings are cut into clips first.
MAX_AUDIO_SECONDS = 600
_BLOCK_FRAMES = 65536  # frames decoded at a time: at most 64 channels x 65,536 x 4 bytes = 16 MB


def audio_files(folder: Path) -> list[Path]:
    """Sound files (``.wav``, ``.flac``, ``.ogg``) under `folder`, sorted by relative path; hidden ones skipped.

    Examples
    --------
    >>> import numpy as np, soundfile, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.wav", "a.flac", ".hidden.wav"):
    ...     soundfile.write(folder / name, np.zeros(100), 8000)
    >>> [file.name for file in audio_files(folder)]
    ['a.flac', 'b.wav']
    """
    return files_under(folder, AUDIO_SUFFIXES, "audio")


def is_audio_input(path) -> bool:
    """Whether `path` is a sound file (by its extension) or a folder holding sound files and no images.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> is_audio_input(folder / "a.wav"), is_audio_input(folder / "a.csv"), is_audio_input(folder)
    (True, False, False)
    """
    path = Path(path)
    if not path.is_dir():
        return path.suffix.lower() in AUDIO_SUFFIXES
    return bool(audio_files(path)) and not files_under(path, IMAGE_SUFFIXES, "image")


def check_sample_rate(sample_rate, owner: str = "read_audio") -> int:
    """`sample_rate` as an int, refused outside [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE] Hz.

    Examples
    --------
    >>> check_sample_rate(8000)
    8000
    """
    if (isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer)
            or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE):
        raise parameter_error("sample_rate", sample_rate,
                              f"an int in the range [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] (Hz)", of=owner)
    return int(sample_rate)


def read_audio(file, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One sound file as a mono float32 waveform at `sample_rate` Hz.

    Parameters
    ----------
    file : str or path-like
        A WAV, FLAC or Ogg Vorbis file (the content decides, not the name; see :data:`AUDIO_FORMATS`).
    sample_rate : int, default=16000
        The rate to resample to (soxr, high quality); a file at this rate is not resampled.

    Returns
    -------
    ndarray of shape (n_samples,), float32
        The channels' mean; integer samples scaled to [-1, 1].

    Raises
    ------
    InvalidInputError
        An empty file, a file that is not sound, too many channels, an odd sample rate, a clip longer
        than :data:`MAX_AUDIO_SECONDS`, no samples, NaN or infinite samples; the message names the file.

    Examples
    --------
    >>> import numpy as np, soundfile, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tone.wav"
    >>> stereo = np.stack([np.full(800, 0.5), np.full(800, 0.25)], axis=1)  # 0.1 s at 8 kHz
    >>> soundfile.write(path, stereo, 8000, subtype="FLOAT")
    >>> wave = read_audio(path)  # resampled to 16 kHz
    >>> wave.dtype, len(wave), round(float(wave[800]), 3)
    (dtype('float32'), 1600, 0.375)
    """
    sample_rate = check_sample_rate(sample_rate)
    file = Path(file)
    with open_regular(file) as stream:
        if not stream.read(1):
            raise InvalidInputError(f"Cannot read sound file {file}: it is empty (0 bytes). Replace or remove it.")
        stream.seek(0)
        try:
            with soundfile.SoundFile(stream) as sound:
                wave, rate = _decode(sound, file), sound.samplerate
        except soundfile.SoundFileError as error:  # libsndfile's own refusal: not sound, damaged
            reason = getattr(error, "error_string", "refused").rstrip(".")
            raise InvalidInputError(
                f"Cannot read sound file {file}: its content is not a {', '.join(AUDIO_FORMATS)} file that "
                f"libsndfile can decode ({reason}), whatever its name says. "
                "Convert it to WAV, or remove it."
            ) from None
    if not np.isfinite(wave).all():
        raise InvalidInputError(
            f"Sound file {file} holds NaN or infinite samples (at sample {int(np.argmin(np.isfinite(wave)))}). "
            "Fix or remove the file."
        )
    if rate != sample_rate:
        wave = soxr.resample(wave, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(wave, dtype=np.float32)


def _decode(sound: soundfile.SoundFile, file: Path) -> np.ndarray:
    """The header checked, then the samples block by block, each mixed down to mono at once."""
    if sound.format not in AUDIO_FORMATS:
        raise InvalidInputError(
            f"Cannot read sound file {file}: its content is {sound.format} audio, and aekit decodes only "
            f"{', '.join(AUDIO_FORMATS)} (whatever the name says). Convert it to WAV, or remove it."
        )
    if not 1 <= sound.channels <= MAX_CHANNELS:
        raise InvalidInputError(
            f"Sound file {file} declares {sound.channels} channels: over aekit's limit of {MAX_CHANNELS} (they are "
            "averaged to one). Mix it down first (e.g. sox in.wav -c 1 out.wav), or remove it."
        )
    if not MIN_SAMPLE_RATE <= sound.samplerate <= MAX_SAMPLE_RATE:
        raise InvalidInputError(
            f"Sound file {file} declares a sample rate of {sound.samplerate} Hz, outside the {MIN_SAMPLE_RATE} to "
            f"{MAX_SAMPLE_RATE} Hz that aekit reads. Resample it, or remove it."
        )
    limit = MAX_AUDIO_SECONDS * sound.samplerate
    if sound.frames > limit:
        raise InvalidInputError(
            f"Sound file {file} declares {sound.frames / sound.samplerate / 60:,.1f} minutes of sound: over aekit's "
            f"limit of {MAX_AUDIO_SECONDS // 60} minutes a clip. Cut it into shorter clips first, or remove it."
        )
    blocks, n_frames = [], 0
    while True:  # the header may understate the length (Ogg, a damaged WAV): the count is checked as it grows
        block = sound.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
        if not len(block):
            break
        n_frames += len(block)
        if n_frames > limit:
            raise InvalidInputError(
                f"Sound file {file} holds more than {MAX_AUDIO_SECONDS // 60} minutes of sound (aekit's limit a clip). "
                "Cut it into shorter clips first, or remove it."
            )
        blocks.append(block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0])
    if not n_frames:
        raise InvalidInputError(f"Sound file {file} holds no samples. Replace or remove it.")
    return np.concatenate(blocks)


def audio_clips(path, sample_rate: int = SAMPLE_RATE) -> Iterator[tuple[str, np.ndarray]]:
    """``(id, waveform)`` for a sound file, or for each sound file of a folder in sorted order, one at a time.

    The id is the file's path relative to the folder (its name, for one file). Only one clip is in
    memory at a time.

    Examples
    --------
    >>> import numpy as np, soundfile, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.wav", "a.wav"):
    ...     soundfile.write(folder / name, np.zeros(160), 16000)
    >>> [(name, len(wave)) for name, wave in audio_clips(folder)]
    [('a.wav', 160), ('b.wav', 160)]
    """
    path = Path(path)
    sample_rate = check_sample_rate(sample_rate)
    if path.is_dir():
        files = audio_files(path)
        if not files:
            raise InvalidInputError(
                f"Found no sound files in {path} (looked for {', '.join(AUDIO_SUFFIXES)}, subfolders included). "
                "Point to a folder of sound files."
            )
        folder = path
    else:
        files, folder = [path], path.parent
    for file in files:
        yield file_id(file, folder), read_audio(file, sample_rate)
