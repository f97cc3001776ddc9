"""Log-mel spectrogram frames of sound clips: the rows an autoencoder learns sound from.

:class:`LogMelFrames` turns each clip (a mono waveform at ``sample_rate``, or a sound file read by
:func:`aekit.data.audio.read_audio`) into rows, as the DCASE challenge's task-2 (anomalous machine
sound) baseline does:

1. **Short-time spectrum.** The clip is cut into frames of ``n_fft`` samples every ``hop_length``
   samples (the clip padded with ``n_fft // 2`` zeros at both ends, so that frame ``t`` is centred
   on sample ``t * hop_length``), each weighted by a Hann window; its power spectrum is ``|rfft|^2``.
2. **Mel bands.** ``n_mels`` triangular filters, evenly spaced on the mel scale
   (``mel = 2595 log10(1 + f / 700)``, the HTK formula) from ``fmin`` to ``fmax`` Hz, each with a
   peak of 1, sum the power spectrum into bands.
3. **Log.** ``10 log10(max(band, 1e-10))``: decibels relative to a full-scale sine's power, floored at
   -100 dB, so that silent bands (above the Nyquist frequency of a clip recorded at a lower rate
   and resampled) are constant rather than noise.
4. **Context.** Each row joins ``frames`` consecutive frames (frame-major: the ``n_mels`` bands of
   the first frame, then the next), one row per frame step: a clip of ``T`` frames gives
   ``T - frames + 1`` rows of ``n_mels * frames`` values.

**Clip scores** (:meth:`LogMelFrames.to_clips`): a clip's score is the **mean** of its rows' scores,
as in the DCASE baseline. A clip is judged on the whole of it; a maximum would hang on the one row of
a breath or a click, and rows of silence, alike in all clips, shift every clip's mean by about the
same amount. **Moments** (:meth:`LogMelFrames.row_times`): row ``i`` of a clip is centred on frame
``i + frames // 2``, at ``(i + frames // 2) * hop_length / sample_rate`` seconds.

Examples
--------
>>> import numpy as np
>>> from sklearn.pipeline import make_pipeline
>>> from aekit import Autoencoder
>>> t = np.arange(8000) / 16000
>>> clips = [np.sin(2 * np.pi * f * t) for f in (300, 320, 340, 360)] * 8
>>> features = LogMelFrames(n_mels=16, frames=3)
>>> model = make_pipeline(features, Autoencoder(latent_dim=2, epochs=5, random_state=0)).fit(clips)
>>> rows, counts = features.transform_clips([np.sin(2 * np.pi * 2000 * t)])
>>> scores = features.to_clips(model[-1].reconstruction_error(rows), counts)
>>> scores.shape
(1,)
"""

from __future__ import annotations

from numbers import Integral, Real
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from aekit.data.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SAMPLE_RATE, read_audio
from aekit.exceptions import InvalidInputError, InvalidParameterValue, validate_parameters

POWER_FLOOR = 1e-10  # -100 dB: the log's floor (see the module's docstring)


def mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters, shape (n_mels, n_fft // 2 + 1), each peaking at 1 (HTK mel scale).

    Raises when a filter would cover no frequency bin (too many bands for ``n_fft``).

    Examples
    --------
    >>> filters = mel_filters(16000, 512, 40)
    >>> filters.shape, float(filters.max())
    ((40, 257), 1.0)
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise InvalidParameterValue(
            f"The mel bands need 0 <= fmin < fmax <= sample_rate / 2 ({sample_rate / 2:g} Hz). Got fmin={fmin!r} and "
            f"fmax={fmax!r} instead."
        )
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    filters = np.maximum(0.0, np.minimum((bins - lower) / (centre - lower), (upper - bins) / (upper - centre)))
    peaks = filters.max(axis=1)
    if (peaks == 0).any():
        raise InvalidParameterValue(
            f"With n_fft={n_fft} at {sample_rate} Hz the frequency bins are {sample_rate / n_fft:g} Hz apart, too far "
            f"apart for {n_mels} mel bands: band {int(np.argmin(peaks))} covers no bin. Choose fewer bands (n_mels) "
            "or a longer n_fft."
        )
    return filters / peaks[:, None]


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def power_spectrogram(wave: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Hann-windowed power spectra of centred frames, shape (1 + len(wave) // hop_length, n_fft // 2 + 1), float64.

    Examples
    --------
    >>> power_spectrogram(np.ones(1000), 256, 100).shape
    (11, 129)
    """
    padded = np.pad(np.asarray(wave, dtype=np.float64), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann, as scipy's get_window
    spectrum = np.fft.rfft(frames * window, axis=1)
    return spectrum.real ** 2 + spectrum.imag ** 2


class LogMelFrames(TransformerMixin, BaseEstimator):
    """Log-mel frames with context, one row per frame step of each clip (see the module's docstring).

    Parameters
    ----------
    sample_rate : int, default=16000
        The clips' rate in Hz; sound files are resampled to it on reading.
    n_fft : int, default=1024
        Samples per analysis frame (64 ms at 16 kHz).
    hop_length : int, default=512
        Samples between frames (32 ms at 16 kHz).
    n_mels : int, default=128
        Mel bands per frame.
    frames : int, default=5
        Consecutive frames joined into one row (the context).
    fmin, fmax : float, default=0 and None
        The mel bands' range in Hz; None is ``sample_rate / 2``.

    The defaults are the DCASE 2020 task-2 baseline's (128 bands, 5 frames of 64 ms every 32 ms: rows
    of 640 values, a context of 192 ms); on spoken digits fewer bands told a novel word apart less well
    (the measurements are in the documentation's Sound page, ``docs/audio.md``).

    Attributes
    ----------
    filters_ : scipy.sparse.csr_array of shape (n_mels, n_fft // 2 + 1)
        The mel filters (:func:`mel_filters`).
    n_features_out_ : int
        ``n_mels * frames``, the values of a row.

    Examples
    --------
    >>> import numpy as np
    >>> features = LogMelFrames(n_mels=8, frames=3).fit(None)
    >>> features.transform([np.zeros(16000), np.zeros(8000)]).shape  # 32 + 16 frames, 2 fewer rows each
    (44, 24)
    """

    _parameter_constraints: dict = {
        "sample_rate": [Interval(Integral, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE, closed="both")],
        "n_fft": [Interval(Integral, 16, 65536, closed="both")],
        "hop_length": [Interval(Integral, 1, None, closed="left")],
        "n_mels": [Interval(Integral, 1, 512, closed="both")],
        "frames": [Interval(Integral, 1, 64, closed="both")],
        "fmin": [Interval(Real, 0, None, closed="left")],
        "fmax": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, *, sample_rate=SAMPLE_RATE, n_fft=1024, hop_length=512, n_mels=128, frames=5, fmin=0.0,
                 fmax=None):
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.frames = frames
        self.fmin = fmin
        self.fmax = fmax

    def fit(self, X=None, y=None):
        """Check the parameters and build the mel filters (``X`` and ``y`` are ignored: nothing is learned)."""
        validate_parameters(self)  # scikit-learn's check, the parameter at fault named in the error's fields
        # sparse: a frequency bin feeds two bands at most, and the sparse product starts no BLAS threads,
        # which contend with each other on a busy machine over a clip's small matrices
        self.filters_ = sparse.csr_array(mel_filters(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax))
        self.n_features_out_ = self.n_mels * self.frames
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "filters_")

    def log_mel(self, clip) -> np.ndarray:
        """One clip's log-mel spectrogram, shape (n_frames, n_mels), float32 (dB).

        `clip` is a waveform at ``sample_rate`` or a sound file's path.
        """
        return self._log_mel(self._wave(clip))

    def clip_rows(self, clip, name: str = "The clip") -> np.ndarray:
        """One clip's rows: each joins ``frames`` consecutive log-mel frames, shape (n_rows, n_mels * frames)."""
        wave = self._wave(clip)
        spectrogram = self._log_mel(wave)
        if len(spectrogram) < self.frames:
            shortest = (self.frames - 1) * self.hop_length / self.sample_rate
            raise InvalidInputError(
                f"{name} is {len(wave) / self.sample_rate:.3g} s long: too short for one row of {self.frames} frames, "
                f"{self.hop_length} samples apart (at least {shortest:.3g} s). Drop it, or choose fewer frames."
            )
        windows = np.lib.stride_tricks.sliding_window_view(spectrogram, self.frames, axis=0)  # (rows, mels, frames)
        return np.ascontiguousarray(windows.transpose(0, 2, 1).reshape(len(windows), -1))

    def _wave(self, clip) -> np.ndarray:
        check_is_fitted(self)
        wave = read_audio(clip, self.sample_rate) if isinstance(clip, str | Path) else np.asarray(clip)
        if wave.ndim != 1 or not len(wave) or not np.issubdtype(wave.dtype, np.number):
            raise InvalidInputError(
                f"A clip must be a 1-d array of samples (mono, at {self.sample_rate} Hz) or a sound file's path. Got "
                f"an array of shape {wave.shape} and dtype {wave.dtype} instead."
            )
        if not np.isfinite(wave).all():
            raise InvalidInputError("A clip holds NaN or infinite samples. Fix or drop the clip.")
        return wave

    def _log_mel(self, wave: np.ndarray) -> np.ndarray:
        power = power_spectrogram(wave, self.n_fft, self.hop_length)
        bands = (self.filters_ @ power.T).T
        return (10.0 * np.log10(np.maximum(bands, POWER_FLOOR))).astype(np.float32)

    def transform_clips(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The rows of every clip of `X` stacked, and how many rows each clip gave (to split them again)."""
        check_is_fitted(self)
        rows = [self.clip_rows(clip, f"Clip {index}") for index, clip in enumerate(_clips(X))]
        counts = np.array([len(block) for block in rows], dtype=np.int64)
        return np.concatenate(rows), counts

    def transform(self, X) -> np.ndarray:
        """The rows of every clip of `X` (a list of waveforms or sound files), shape (n_rows, n_mels * frames)."""
        return self.transform_clips(X)[0]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``f{frame}_mel{band}``: the frame within the context, the mel band."""
        check_is_fitted(self)
        return np.array([f"f{frame}_mel{band}" for frame in range(self.frames) for band in range(self.n_mels)],
                        dtype=object)

    def to_clips(self, row_scores, counts) -> np.ndarray:
        """Each clip's score: the mean of its rows' scores (float64, one per clip; see the module's docstring)."""
        row_scores = np.asarray(row_scores, dtype=np.float64)
        counts = np.asarray(counts, dtype=np.int64)
        if counts.sum() != len(row_scores) or (counts < 1).any():
            raise InvalidInputError(
                f"Got {len(row_scores)} row scores for clips of {counts.sum()} rows in all. Score the rows that "
                "transform_clips gave for these very clips."
            )
        return np.add.reduceat(row_scores, np.cumsum(counts) - counts) / counts

    def centre_frames(self, rows) -> np.ndarray:
        """The centre frame of each row (frame ``frames // 2`` of its context), shape (n_rows, n_mels).

        Of a clip's rows, the log-mel spectrogram from frame ``frames // 2`` to ``frames // 2`` before
        the end; of its reconstructed rows, the reconstructed spectrogram over the same moments.
        """
        rows = np.asarray(rows)
        return rows.reshape(len(rows), self.frames, self.n_mels)[:, self.frames // 2]

    def row_times(self, n_rows: int) -> np.ndarray:
        """The time in seconds at the centre of each of a clip's `n_rows` rows."""
        return (np.arange(n_rows) + self.frames // 2) * self.hop_length / self.sample_rate

    @classmethod
    def from_dict(cls, params: dict) -> LogMelFrames:
        """The fitted features a model folder's parameters describe (other keys are ignored)."""
        return cls(**{key: params[key] for key in cls._get_param_names()}).fit()

    def to_dict(self) -> dict:
        """The parameters as JSON-ready values, as a model folder stores them."""
        params = self.get_params()
        return {key: (None if value is None else float(value) if key in ("fmin", "fmax") else int(value))
                for key, value in params.items()}


def _clips(X) -> list:
    """A list of clips: a single 1-d waveform or path would be taken for many clips; say so."""
    if isinstance(X, str | Path) or (isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype != object):
        raise InvalidInputError(
            "LogMelFrames takes a list of clips (waveforms or sound files' paths), not one clip. Wrap it: [clip]."
        )
    clips = list(X)
    if not clips:
        raise InvalidInputError("Got no clips: LogMelFrames needs at least one waveform or sound file.")
    return clips
