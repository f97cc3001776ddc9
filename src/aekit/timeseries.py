"""Time series: sliding windows in, one outlier score per time step and the top anomalous segments out.

A series is an array with one row per time step and one column per channel (a 1-d array is one
channel). :class:`SlidingWindows` turns it into windows of ``window`` consecutive steps, each
flattened to one row (step by step, the channels of a step side by side), starting every ``stride``
steps; when the last start does not reach the end, one more window ending at the last step is added,
so every step is covered. An :class:`~aekit.Autoencoder` then learns the windows like any table.

**Back to time steps** (:func:`step_scores`): the score of a step is the **mean of the scores of the
windows that cover it**. An anomaly of a few steps raises every window over it, so its steps get the
highest means; a step at the edge of the series, covered by fewer windows, is not favoured.

**Flags** (:func:`step_flags`): a step is an outlier when **at least a quarter of the windows covering
it** (``STEP_QUORUM``) score above the window threshold. The threshold is a quantile of *window*
scores; a step's mean averages the windows that catch an anomaly with those that hold only its edge
or catch it less well, so the mean of a short burst can stay under the threshold although windows
over it are flagged (comparing the mean with the threshold left such bursts unflagged; so did a
majority of the windows, where a burst is caught from some window positions only). A quarter, not
any one window: at contamination 0.05 one window in twenty is flagged on normal data, and a stray
one would otherwise flag a whole window's worth of steps. The peak of the mean score still locates
an anomaly.

**Segments** (:func:`top_segments`): runs of consecutive flagged steps, ranked by their highest score.

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
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.validation import check_array, check_is_fitted

from aekit.exceptions import InvalidInputError, InvalidParameterValue

STEP_QUORUM = 0.25  # share of a step's windows that must be flagged to flag the step (see the module's docstring)


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


def step_flags(window_scores: np.ndarray, threshold: float, n_steps: int, window: int, stride: int) -> np.ndarray:
    """Which steps are outliers: a quarter or more of their covering windows score above ``threshold`` (bool).

    See the module's docstring for why a vote of the windows and not the mean score.

    Examples
    --------
    >>> scores = np.array([0.5, 1.2, 1.2, 1.2, 0.5])  # windows of 3 steps, stride 1, over 7 steps
    >>> step_flags(scores, 1.0, 7, 3, 1).astype(int).tolist()
    [0, 1, 1, 1, 1, 1, 0]
    >>> (step_scores(scores, 7, 3, 1) > 1.0).astype(int).tolist()  # the mean: the burst's edges drop out
    [0, 0, 0, 1, 0, 0, 0]
    """
    flagged = (np.asarray(window_scores, dtype=np.float64) > threshold).astype(np.float64)
    return step_scores(flagged, n_steps, window, stride) >= STEP_QUORUM


def top_segments(scores: np.ndarray, flags, k: int = 5) -> list[dict]:
    """The ``k`` runs of consecutive flagged steps with the highest peaks of ``scores``.

    ``flags`` is one bool per step (:func:`step_flags`), or a threshold: the steps scored above it.

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
    }

    def __init__(self, window=32, *, stride=1):
        self.window = window
        self.stride = stride

    def fit(self, X, y=None):
        """Check the parameters and the series (``y`` is ignored)."""
        try:
            self._validate_params()
        except InvalidParameterError as error:
            raise InvalidParameterValue(str(error)) from None
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
                f"The series has {series.shape[1]} channels; these windows were fitted on {self.n_features_in_}."
            )
        starts = window_starts(len(series), self.window, self.stride)
        views = np.lib.stride_tricks.sliding_window_view(series, self.window, axis=0)  # (n, channels, window)
        return np.ascontiguousarray(views[starts].transpose(0, 2, 1).reshape(len(starts), -1))

    def to_steps(self, window_scores: np.ndarray, n_steps: int) -> np.ndarray:
        """Scores of the windows of a series of ``n_steps`` steps mapped back to its steps (:func:`step_scores`)."""
        return step_scores(window_scores, n_steps, self.window, self.stride)

    def flags_to_steps(self, window_scores: np.ndarray, threshold: float, n_steps: int) -> np.ndarray:
        """Which of the ``n_steps`` steps are outliers, from their windows' scores (:func:`step_flags`)."""
        return step_flags(window_scores, threshold, n_steps, self.window, self.stride)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``t0_c0, t0_c1, ...``: the step within the window, then the channel."""
        check_is_fitted(self)
        return np.asarray([f"t{t}_c{c}" for t in range(self.window) for c in range(self.n_features_in_)], dtype=object)
