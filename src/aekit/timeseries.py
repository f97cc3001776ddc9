"""Time series: sliding windows, the dominant period, and window scores mapped back to time steps.

A series is an array with one row per time step and one column per channel (a 1-d array is one
channel). :class:`SlidingWindows` turns it into windows of ``window`` consecutive steps, each
flattened to one row (step by step, the channels of a step side by side), starting every ``stride``
steps; when the last start does not reach the end, one more window ending at the last step is added,
so every step is covered. Optionally each window is normalised on its own (``normalize``): "level"
removes each channel's mean over the window, "zscore" also divides by its standard deviation, so a
trend or a level shift does not swamp the window's shape. :class:`aekit.SeriesAutoencoder` learns
the windows and scores time steps.

**Window length** (:func:`dominant_period`): the lag of the highest peak of the series' autocorrelation
(linear trend removed, averaged over channels) after its first zero crossing, between ``MIN_WINDOW``
steps and the smaller of ``MAX_WINDOW`` and an eighth of the series; ``FALLBACK_WINDOW`` (clipped to
those bounds) when no peak reaches ``MIN_AUTOCORRELATION``.

**A window's level** (:func:`window_levels`, :func:`level_spread`, :func:`level_scores`): what
"level" normalisation removes, scored on its own by :class:`aekit.SeriesAutoencoder`: each
channel's mean over the window against the median and robust spread of the training windows'.

**Back to time steps** (:func:`step_scores`): the score of a step is the **mean of the scores of the
windows that cover it**. An anomaly of a few steps raises every window over it, so its steps get the
highest means; a step at the edge of the series, covered by fewer windows, is not favoured.

**Flags and segments**: a step is an outlier when its score is above the threshold, and a flagged
segment is a run of consecutive flagged steps (:func:`top_segments`, ranked by their highest score).
The threshold is a quantile of *step* scores, so the steps of a segment are each above the printed
threshold and ``contamination`` is the share of steps flagged on series like the training one.

Examples
--------
>>> import numpy as np
>>> from sklearn.pipeline import make_pipeline
>>> from aekit import Autoencoder
>>> t = np.arange(2000)
>>> series = np.sin(t / 10.0)
>>> series[1500:1510] += 2.0  # a bump
>>> windows = SlidingWindows(50, stride=5)
>>> model = make_pipeline(windows, Autoencoder(latent_dim=4, epochs=30, random_state=0)).fit(series)
>>> scores = windows.to_steps(model[-1].outlier_scores(windows.transform(series)), len(series))
>>> 1450 <= int(np.argmax(scores)) < 1560
True
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from aekit.exceptions import InvalidInputError, plural, validate_parameters

NORMALIZATIONS = ("level", "zscore")  # per-window normalisations (see the module's docstring)
MIN_WINDOW = 8  # bounds of window="auto" (dominant_period)
MAX_WINDOW = 512
FALLBACK_WINDOW = 64  # window="auto" on a series without a clear period
MIN_AUTOCORRELATION = 0.2  # a peak of the autocorrelation below this is no period
PERIOD_STEPS = 100_000  # the autocorrelation is computed on the first steps of a longer series


def as_series(X) -> np.ndarray:
    """A series as a 2-d float array, (n_steps, n_channels); a 1-d array is one channel."""
    X = np.asarray(X) if not hasattr(X, "to_numpy") else X.to_numpy()
    if X.ndim == 1:
        X = X[:, None]
    try:
        return check_array(X, dtype=[np.float64, np.float32], input_name="series")
    except ValueError as error:
        raise InvalidInputError(f"{error} A series has one row per time step and one column per channel.") from None


def window_starts(n_steps: int, window: int, stride: int) -> np.ndarray:
    """First step of each window; the last window ends at the last step.

    Examples
    --------
    >>> window_starts(10, 4, 3).tolist()
    [0, 3, 6]
    >>> window_starts(11, 4, 3).tolist()  # 6 + 4 < 11: one more window, ending at step 10
    [0, 3, 6, 7]
    """
    if window > n_steps:
        raise InvalidInputError(
            f"The window ({window} steps) is longer than the series ({n_steps} time steps). Choose a window of "
            f"at most {n_steps} steps (--window), or a longer series."
        )
    starts = np.arange(0, n_steps - window + 1, stride)
    if starts[-1] + window < n_steps:
        starts = np.append(starts, n_steps - window)
    return starts


def step_scores(window_scores: np.ndarray, n_steps: int, window: int, stride: int) -> np.ndarray:
    """Each step's score: the mean of the scores of the windows covering it (float64, length ``n_steps``).

    Examples
    --------
    >>> step_scores(np.array([1.0, 3.0]), 5, 3, 2).tolist()  # windows over steps 0-2 and 2-4
    [1.0, 1.0, 2.0, 3.0, 3.0]
    """
    starts = window_starts(n_steps, window, stride)
    window_scores = np.asarray(window_scores, dtype=np.float64)
    if len(window_scores) != len(starts):
        raise InvalidInputError(
            f"Got {len(window_scores)} window scores for a series of {n_steps} steps with window {window} and stride "
            f"{stride}, which has {len(starts)} windows. Score the windows of this very series."
        )
    # each window adds its score over [start, start + window): two difference arrays, one cumulative sum each
    totals, counts = np.zeros(n_steps + 1), np.zeros(n_steps + 1)
    np.add.at(totals, starts, window_scores)
    np.add.at(totals, starts + window, -window_scores)
    np.add.at(counts, starts, 1.0)
    np.add.at(counts, starts + window, -1.0)
    return np.cumsum(totals)[:n_steps] / np.cumsum(counts)[:n_steps]


def window_bounds(n_steps: int) -> tuple[int, int]:
    """The shortest and longest window ``window="auto"`` may choose for a series of ``n_steps`` steps.

    Examples
    --------
    >>> window_bounds(20_000), window_bounds(100), window_bounds(20)
    ((8, 512), (8, 12), (2, 2))
    """
    longest = max(2, min(MAX_WINDOW, n_steps // 8))
    return min(MIN_WINDOW, longest), longest


def dominant_period(series) -> dict:
    """The window ``window="auto"`` takes: the series' dominant period, from its autocorrelation.

    Each channel's linear trend is removed and its autocorrelation computed (by FFT, over the first
    ``PERIOD_STEPS`` steps); the channels' autocorrelations are averaged. The window is the lag of the
    highest local maximum between the bounds of :func:`window_bounds` that comes after the
    autocorrelation first drops below zero (a smooth series' slow decay has bumps that are no period);
    when no such maximum reaches ``MIN_AUTOCORRELATION``, the series has no clear period and the
    window is ``FALLBACK_WINDOW`` clipped to the bounds.

    Returns
    -------
    dict
        ``window``, ``rule`` ("period" or "no period"), ``autocorrelation`` at the chosen lag (the
        peak's height; None without a period), ``bounds``.

    Examples
    --------
    >>> t = np.arange(5000)
    >>> dominant_period(np.sin(2 * np.pi * t / 50))["window"]
    50
    >>> dominant_period(np.random.default_rng(0).normal(size=5000))["rule"]
    'no period'
    """
    values = as_series(series)[:PERIOD_STEPS].astype(np.float64)
    lowest, highest = window_bounds(len(as_series(series)))
    steps = np.arange(len(values), dtype=np.float64)
    design = np.column_stack([np.ones_like(steps), steps])
    residuals = values - design @ np.linalg.lstsq(design, values, rcond=None)[0]
    spread = residuals.std(axis=0)
    residuals = residuals[:, spread > 0] / spread[spread > 0]
    fallback = {"window": int(np.clip(FALLBACK_WINDOW, lowest, highest)), "rule": "no period",
                "autocorrelation": None, "bounds": [lowest, highest]}
    if residuals.shape[1] == 0 or len(values) < 4:
        return fallback
    size = 1 << int(2 * len(residuals) - 1).bit_length()
    power = np.abs(np.fft.rfft(residuals, size, axis=0)) ** 2
    autocorrelation = np.fft.irfft(power, size, axis=0)[: highest + 2].mean(axis=1)
    autocorrelation /= autocorrelation[0]
    # a period's peak comes after the autocorrelation has first dropped below zero: before that, a bump is
    # the slow decay of a smooth series, not a repetition
    below = np.flatnonzero(autocorrelation < 0)
    first = max(lowest, 1, int(below[0]) if len(below) else len(autocorrelation))
    lags = np.arange(first, min(highest, len(autocorrelation) - 2) + 1)
    peaks = lags[(autocorrelation[lags] > autocorrelation[lags - 1])
                 & (autocorrelation[lags] >= autocorrelation[lags + 1])
                 & (autocorrelation[lags] >= MIN_AUTOCORRELATION)]
    if len(peaks) == 0:
        return fallback
    best = int(peaks[np.argmax(autocorrelation[peaks])])
    return {"window": best, "rule": "period", "autocorrelation": round(float(autocorrelation[best]), 4),
            "bounds": [lowest, highest]}


def window_rows(series: np.ndarray, starts: np.ndarray, window: int, normalize: str | None) -> np.ndarray:
    """The windows of ``series`` (n_steps, n_channels) starting at ``starts``, flattened and normalised.

    One row per start, ``window * n_channels`` values, step by step; ``normalize`` as
    :class:`SlidingWindows`. A window whose channel does not vary (standard deviation at most 1e-8
    times its level, or 1e-12) is not divided by it under "zscore".

    Examples
    --------
    >>> window_rows(np.arange(6.0)[:, None], np.array([0, 3]), 3, "level").tolist()
    [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]
    """
    views = np.lib.stride_tricks.sliding_window_view(series, window, axis=0)[starts]  # (n, channels, window)
    rows = views.astype(np.float64 if series.dtype == np.float64 else np.float32, copy=False)  # views[starts]: a copy
    if normalize is not None:
        level = rows.mean(axis=2, keepdims=True)
        rows -= level
        if normalize == "zscore":
            spread = rows.std(axis=2, keepdims=True)
            rows /= np.where(spread > np.maximum(1e-8 * np.abs(level), 1e-12), spread, 1.0)
    return np.ascontiguousarray(rows.transpose(0, 2, 1).reshape(len(starts), -1))


def window_levels(series: np.ndarray, window: int) -> np.ndarray:
    """Each channel's mean over every window (stride 1) of ``series`` (n_steps, n_channels): (n_windows, n_channels).

    Examples
    --------
    >>> window_levels(np.arange(5.0)[:, None], 3).ravel().tolist()
    [1.0, 2.0, 3.0]
    """
    totals = np.concatenate([np.zeros((1, series.shape[1])), np.cumsum(series, axis=0, dtype=np.float64)])
    return (totals[window:] - totals[:-window]) / window


def level_spread(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each channel's median window level and robust spread (1.4826 x the median absolute deviation).

    Where most windows share one level (a spread of 0), the standard deviation is the spread, and
    where that is 0 too, a floor of 1e-8 times the level (at least 1e-12): a level never seen then
    scores high.

    Examples
    --------
    >>> center, spread = level_spread(np.array([[1.0], [2.0], [3.0], [10.0]]))
    >>> center.tolist(), spread.round(4).tolist()
    ([2.5], [1.4826])
    """
    center = np.median(levels, axis=0)
    floor = np.maximum(1e-8 * np.abs(center), 1e-12)
    spread = 1.4826 * np.median(np.abs(levels - center), axis=0)
    spread = np.where(spread > floor, spread, levels.std(axis=0))
    return center, np.where(spread > floor, spread, floor)


def level_scores(levels: np.ndarray, center: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """How unusual each window's level is: ``|level - center| / spread``, averaged over the channels.

    Examples
    --------
    >>> level_scores(np.array([[1.0, 0.0], [3.0, 4.0]]), np.array([1.0, 0.0]), np.array([1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return (np.abs(levels - center) / spread).mean(axis=1)


def top_segments(scores: np.ndarray, flags, k: int = 5) -> list[dict]:
    """The ``k`` runs of consecutive flagged steps with the highest peaks of ``scores``.

    ``flags`` is one bool per step, or a threshold: the steps scored above it.

    Returns
    -------
    list of dict
        ``start`` and ``end`` (first and last step, inclusive), ``peak`` (the step of the highest
        score) and ``peak_score``, highest peak first.

    Examples
    --------
    >>> top_segments(np.array([0, 5, 6, 0, 0, 9, 0.0]), 1.0)
    [{'start': 5, 'end': 5, 'peak': 5, 'peak_score': 9.0}, {'start': 1, 'end': 2, 'peak': 2, 'peak_score': 6.0}]
    """
    scores = np.asarray(scores)
    flags = scores > flags if np.ndim(flags) == 0 else np.asarray(flags, dtype=bool)
    above = np.concatenate([[False], flags, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    segments = []
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        peak = int(start + np.argmax(scores[start:stop]))
        segments.append({"start": int(start), "end": int(stop - 1), "peak": peak, "peak_score": float(scores[peak])})
    return sorted(segments, key=lambda segment: -segment["peak_score"])[:k]


class SlidingWindows(TransformerMixin, BaseEstimator):
    """Windows of ``window`` consecutive time steps, one flattened row each (see the module's docstring).

    Parameters
    ----------
    window : int >= 1, default=32
        Steps per window.
    stride : int >= 1, default=1
        Steps between the starts of consecutive windows.
    normalize : {"level", "zscore"} or None, default=None
        Remove each window's level (each channel's mean over the window), and with "zscore" also
        divide by each channel's standard deviation over the window (see :func:`window_rows`).

    Attributes
    ----------
    n_features_in_ : int
        Channels of the series seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> SlidingWindows(3, stride=2).fit_transform(np.arange(7.0)).tolist()
    [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [4.0, 5.0, 6.0]]
    """

    _parameter_constraints: dict = {
        "window": [Interval(Integral, 1, None, closed="left")],
        "stride": [Interval(Integral, 1, None, closed="left")],
        "normalize": [StrOptions(set(NORMALIZATIONS)), None],
    }

    def __init__(self, window=32, *, stride=1, normalize=None):
        self.window = window
        self.stride = stride
        self.normalize = normalize

    def fit(self, X, y=None):
        """Check the parameters and the series (``y`` is ignored)."""
        validate_parameters(self)  # scikit-learn's check, the parameter at fault named in the error's fields
        series = as_series(X)
        window_starts(len(series), self.window, self.stride)  # refuses a window longer than the series
        self.n_features_in_ = series.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        """The windows of the series ``X``: shape (n_windows, window * n_channels)."""
        check_is_fitted(self)
        series = as_series(X)
        if series.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"The series has {plural(series.shape[1], 'channel')}; these windows were fitted on "
                f"{self.n_features_in_}."
            )
        return window_rows(series, window_starts(len(series), self.window, self.stride), self.window, self.normalize)

    def to_steps(self, window_scores: np.ndarray, n_steps: int) -> np.ndarray:
        """Scores of the windows of a series of ``n_steps`` steps mapped back to its steps (:func:`step_scores`)."""
        return step_scores(window_scores, n_steps, self.window, self.stride)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``t0_c0, t0_c1, ...``: the step within the window, then the channel."""
        check_is_fitted(self)
        return np.asarray([f"t{t}_c{c}" for t in range(self.window) for c in range(self.n_features_in_)], dtype=object)
