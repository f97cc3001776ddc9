"""The :class:`SeriesAutoencoder` class: an autoencoder over a time series' windows, one score per time step.

It owns the whole job a series needs: the window length (given, or the series' dominant period),
the windows and their normalisation (:mod:`aekit.timeseries`), an :class:`~aekit.Autoencoder`
trained on them, window scores mapped back to steps, and a threshold on step scores.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from aekit import detect
from aekit.estimator.autoencoder import Autoencoder, ThresholdedScores
from aekit.estimator.fitting import SCORE_QUANTILE_LEVELS
from aekit.estimator.state import write_state
from aekit.exceptions import InvalidInputError, validate_parameters
from aekit.timeseries import (
    NORMALIZATIONS,
    SlidingWindows,
    as_series,
    dominant_period,
    level_scores,
    level_spread,
    step_scores,
    window_levels,
    window_rows,
)

TRAINING_WINDOWS = 2_000  # stride="auto" trains on about this many windows at most
SCORE_VALUES = 1 << 21  # values per chunk of windows scored at once (a few MB, whatever the series' length)


class SeriesAutoencoder(ThresholdedScores, OutlierMixin, BaseEstimator):
    """Anomalies in a time series: an autoencoder on its sliding windows, one score and flag per time step.

    ``fit`` takes a series (one row per time step, one column per channel; a 1-d array is one
    channel), cuts it into windows of ``window`` steps (each channel's level removed per window by
    default), trains ``autoencoder`` on them, and maps the windows' scores back to steps: a step's
    score is the mean score of the windows covering it (:func:`aekit.timeseries.step_scores`).

    A window's score has two parts when its level is removed (``normalize`` "level" or "zscore"):
    its **shape**, the autoencoder's outlier score of the normalised window, and its **level**, how
    far each channel's mean over the window lies from the training windows' (median and robust
    spread, :func:`aekit.timeseries.level_spread`), averaged over channels. Each is divided by its
    median over the training windows and the two are added, so a drift to a level the series has
    not held, or a jump, still counts after the normalisation removed it from the windows.
    With ``normalize=None`` the window's score is the autoencoder's alone.
    ``threshold_`` is the ``1 - contamination`` quantile of the step scores of the training series,
    so about ``contamination`` of its steps are flagged, and a step is flagged exactly when its score
    is above the threshold. A flagged segment is a run of consecutive flagged steps.

    Parameters
    ----------
    window : int >= 2 or "auto", default="auto"
        Steps per window. "auto": the series' dominant period, from its autocorrelation, between 8
        and 512 steps (and at most an eighth of the series); 64 when it has no clear period
        (:func:`aekit.timeseries.dominant_period`). ``window_rule_`` says what was found.
    stride : int >= 1 or "auto", default="auto"
        Steps between the starts of the training windows. "auto": 1, or more on a longer series so
        that about 2,000 windows are trained on (overlapping windows differ little). Scoring always
        uses every window (stride 1).
    normalize : {"level", "zscore"} or None, default="level"
        Per-window normalisation (:class:`aekit.timeseries.SlidingWindows`): "level" removes each
        channel's mean over the window, so a trend or a level shift does not swamp the window's shape;
        "zscore" also divides by its standard deviation; None keeps the raw values.
    contamination : float in (0, 0.5] or "auto", default=0.05
        Expected share of outlying steps (see above); "auto" as in :class:`~aekit.Autoencoder`, on the
        step scores (the upper group of their logs when they show one, else 15 % of the steps).
    autoencoder : Autoencoder or None, default=None
        The model of the windows (cloned in ``fit``); None: ``Autoencoder(random_state=random_state)``.
    random_state : int or None, default=None
        Seed of the default autoencoder (ignored when ``autoencoder`` is given: set its own).

    Attributes
    ----------
    autoencoder_ : Autoencoder
        The fitted model of the windows (rows of ``window_ * n_features_in_`` values).
    window_ : int
        The window length used.
    window_rule_ : dict
        How it was chosen: ``rule`` ("given", "period" or "no period"), ``window``, and for "auto" the
        autocorrelation at the chosen lag and the bounds searched.
    stride_ : int
        The training windows' stride.
    threshold_ : float
        Step score above which a step is an outlier.
    level_ : dict or None
        The level part (None with ``normalize=None``): each channel's ``center`` and ``spread`` of the
        training windows' levels, and the training medians ``shape_scale`` and ``level_scale`` the
        two parts are divided by.
    score_quantiles_ : ndarray of shape (1001,)
        Quantiles of the training series' step scores at levels 0, 0.001, ..., 1: the threshold for
        another contamination c is read off at 1 - c.
    n_features_in_ : int
        Channels of the series.
    feature_names_in_ : ndarray of str
        The channels' names, when the series was a DataFrame with string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit import Autoencoder, SeriesAutoencoder
    >>> t = np.arange(3000)
    >>> series = np.sin(2 * np.pi * t / 40) + 0.05 * np.random.default_rng(0).normal(size=len(t))
    >>> series[2000:2010] += 1.5
    >>> model = SeriesAutoencoder(autoencoder=Autoencoder(epochs=10, random_state=0)).fit(series)
    >>> model.window_, model.window_rule_["rule"]
    (40, 'period')
    >>> scores = model.outlier_scores(series)  # one per time step
    >>> len(scores), 1960 <= int(np.argmax(scores)) < 2050
    (3000, True)
    >>> model.predict(series).shape  # -1 for outlying steps, 1 for the others (also score_samples, decision_function)
    (3000,)
    """

    _parameter_constraints: dict = {
        "window": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "stride": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "normalize": [StrOptions(set(NORMALIZATIONS)), None],
        "contamination": [Interval(Real, 0, 0.5, closed="right"), StrOptions({"auto"})],
        "autoencoder": [HasMethods(["fit", "outlier_scores"]), None],
        "random_state": [Interval(Integral, 0, 2**32 - 1, closed="both"), None],
    }

    def __init__(self, window="auto", *, stride="auto", normalize="level", contamination=0.05, autoencoder=None,
                 random_state=None):
        self.window = window
        self.stride = stride
        self.normalize = normalize
        self.contamination = contamination
        self.autoencoder = autoencoder
        self.random_state = random_state

    def fit(self, X, y=None):
        """Choose the window, train the autoencoder on the series' windows and set the step threshold.

        Returns
        -------
        self : SeriesAutoencoder
        """
        validate_parameters(self, [*NORMALIZATIONS, "auto"])
        series, names = _series_and_names(X)
        if self.window == "auto":
            rule = dominant_period(series)
        else:
            rule = {"window": int(self.window), "rule": "given"}
        window = rule["window"]
        n_windows = len(series) - window + 1
        if n_windows < 2:
            raise InvalidInputError(
                f"The window ({window} steps) needs a series of at least {window + 1} time steps; this one has "
                f"{len(series)}. Choose a shorter window (window=..., --window) or give a longer series.",
                param="window", value=window
            )
        stride = int(self.stride) if self.stride != "auto" else max(1, math.ceil(n_windows / TRAINING_WINDOWS))
        autoencoder = (Autoencoder(random_state=self.random_state) if self.autoencoder is None
                       else clone(self.autoencoder))
        autoencoder.fit(SlidingWindows(window, stride=stride, normalize=self.normalize).fit_transform(series))
        level = None
        if self.normalize is not None:  # the level each window lost is scored on its own (see the class docstring)
            center, spread = level_spread(window_levels(series, window))
            level = {"center": center.tolist(), "spread": spread.tolist()}
        shapes, levels = _window_parts(autoencoder, series, window, self.normalize, level)
        if level is not None:
            level.update(shape_scale=_typical(shapes), level_scale=_typical(levels))
        scores = step_scores(_window_scores(shapes, levels, level), len(series), window, 1)
        quantiles = np.quantile(scores, SCORE_QUANTILE_LEVELS)
        threshold = (detect.auto_threshold(quantiles) if self.contamination == "auto"
                     else float(np.quantile(scores, 1.0 - self.contamination)))

        self.autoencoder_ = autoencoder
        self.window_ = int(window)
        self.window_rule_ = rule
        self.stride_ = stride
        self.threshold_ = float(threshold)
        self.score_quantiles_ = quantiles
        self.level_ = level
        self.n_features_in_ = series.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        return self

    def outlier_scores(self, X) -> np.ndarray:
        """Outlier score of each time step of the series ``X``: the mean score of the windows covering it.

        Windows are scored in chunks of about 2 million values, so memory beyond the series and the
        scores (a few float64 arrays of ``n_steps`` values) does not grow with its length.

        Returns
        -------
        ndarray of shape (n_steps,), float64
        """
        check_is_fitted(self)
        return _step_scores(self.autoencoder_, self._checked(X), self.window_, self.normalize, self.level_)

    def fit_predict(self, X, y=None) -> np.ndarray:
        """``fit(X).predict(X)``: about ``contamination`` of the steps are -1."""
        return self.fit(X, y).predict(X)

    def series_state(self) -> dict:
        """The fitted series part, as a model folder stores it beside the autoencoder (JSON-ready)."""
        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        return {
            "params": {"window": self.window, "stride": self.stride, "normalize": self.normalize,
                       "contamination": self.contamination},
            "window": self.window_,
            "stride": self.stride_,
            "columns": None if names is None else [str(name) for name in names],
            "window_rule": self.window_rule_,
            "threshold": float(self.threshold_),
            "score_quantiles": [float(q) for q in self.score_quantiles_],
            "level": self.level_,
        }

    def save(self, path, *, overwrite: bool = False) -> Path:
        """Save the fitted model to the folder ``path`` and return its path (as :meth:`aekit.Autoencoder.save`;
        ``aekit.load`` reads it)."""
        check_is_fitted(self)
        return write_state(self.autoencoder_, path, overwrite=overwrite, series=self.series_state())

    def to_onnx(self, path, *, overwrite: bool = False) -> Path:
        """Write the window model as ONNX, with what a consumer must do around it in its metadata.

        The graph scores windows (:func:`aekit.export.export_onnx`, rows of ``window_ * n_features_in_``
        values); the metadata (``series_*`` keys) and the graph's description say how to build them
        from a series (stride 1, step-major, each channel's level removed per window when
        ``normalize`` says so), how to add the level part (``series_level``) to their ``outlier_score``,
        and how to map the window scores back to steps (the mean of the windows covering a step) against
        the step threshold. An existing file is replaced only with
        ``overwrite=True``.
        """
        from aekit.export import export_onnx

        check_is_fitted(self)
        return export_onnx(self.autoencoder_, path, series=self.series_state(), overwrite=overwrite)

    def _checked(self, X) -> np.ndarray:
        """``X`` as a series of this model's channels."""
        series, _ = _series_and_names(X)
        if series.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"The series has {series.shape[1]} channels; this model was fitted on {self.n_features_in_}. "
                "Give it the channels it was trained on, in the same order."
            )
        return series

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _series_and_names(X) -> tuple[np.ndarray, np.ndarray | None]:
    """The series as a 2-d float array, and its channels' names when ``X`` is a DataFrame of named columns."""
    columns = getattr(X, "columns", None)
    names = None
    if columns is not None and len(columns) and all(isinstance(name, str) for name in columns):
        names = np.asarray(list(columns), dtype=object)
    return as_series(X), names


def _window_parts(autoencoder: Autoencoder, series: np.ndarray, window: int, normalize: str | None,
                  level: dict | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Every window's (stride 1) shape score, scored in chunks, and level score (None without ``level``)."""
    n_windows = len(series) - window + 1
    if n_windows < 1:
        raise InvalidInputError(
            f"The series has {len(series)} time steps, fewer than the model's window of {window}. Score a series "
            f"of at least {window} steps."
        )
    chunk = max(1, SCORE_VALUES // (window * series.shape[1]))
    shapes = np.empty(n_windows, dtype=np.float64)
    levels = None if level is None else np.empty(n_windows, dtype=np.float64)
    for start in range(0, n_windows, chunk):
        stop = min(start + chunk, n_windows)
        shapes[start:stop] = autoencoder.outlier_scores(window_rows(series, np.arange(start, stop), window, normalize))
        if level is not None:
            levels[start:stop] = level_scores(window_levels(series[start:stop + window - 1], window),
                                              np.asarray(level["center"]), np.asarray(level["spread"]))
    return shapes, levels


def _step_scores(autoencoder: Autoencoder, series: np.ndarray, window: int, normalize: str | None,
                 level: dict | None) -> np.ndarray:
    """Each step's score: the mean over the windows covering it of their shape score plus level score, each
    divided by its typical value on the training series (the shape score alone without ``level``)."""
    shapes, levels = _window_parts(autoencoder, series, window, normalize, level)
    return step_scores(_window_scores(shapes, levels, level), len(series), window, 1)


def _window_scores(shapes: np.ndarray, levels: np.ndarray | None, level: dict | None) -> np.ndarray:
    """A window's score: its shape score, plus with ``level`` its level score, each over its training size.

    Computed in place in ``shapes`` (and ``levels``), so that scoring a long series holds no extra arrays.
    """
    if level is not None:
        shapes /= level["shape_scale"]
        levels /= level["level_scale"]
        shapes += levels
    return shapes


def _typical(scores: np.ndarray) -> float:
    """A score's typical size on the training windows: their median, else their mean, else 1 (never 0)."""
    for value in (np.median(scores), scores.mean()):
        if value > 0:
            return float(value)
    return 1.0
