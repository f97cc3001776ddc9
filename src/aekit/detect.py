"""Outlier scores from a fitted autoencoder, whatever its architecture, and what to do with them.

The *combined* score of a row adds two terms:

- the **normalised reconstruction error**: each feature's squared error divided by that feature's
  mean squared error over the rows the model was fitted on (a uniform sample of 10,000 of them when
  there are more), averaged over the features (it averages 1 over those rows). A feature the model
  reconstructs well counts as much as one it reconstructs badly, so an error in a column that is
  usually exact stands out instead of drowning in the noise of the loose columns;
- the **codes' distance to the dense places of the training codes**, divided by ``sqrt(2 k)``, ``k``
  the codes' rank: rows that the model reconstructs well but maps to an unusual place in the latent
  space (a rare combination of normal-looking values) are caught too. The codes are whitened (their
  covariance's pseudo-inverse square root) and their density is a mixture of at most
  ``LATENT_MODES`` Gaussians with diagonal covariances, their number chosen by BIC (scikit-learn's
  ``GaussianMixture``); a mode holding under ``MODE_MIN_SHARE`` (10 %) of the rows is a cluster of
  the outliers among the training rows, and is left out. The distance is ``-2 log`` of the density
  over its upper bound (``sum_j w_j N_j(mean_j)``), so it is >= 0; for one mode it is exactly the
  squared **Mahalanobis distance**, which spreads as a chi-square with ``k`` degrees of freedom,
  standard deviation ``sqrt(2 k)``: the term moves by one for a one-standard-deviation change,
  whatever the bottleneck's size. Several modes see what one cannot: codes in clusters (digits,
  classes, operating regimes) put an empty place between them, where a single Gaussian is densest.

It needs only per-feature errors and codes, so it applies to any :class:`~aekit.models.mlp.AutoencoderModule`.
How each part was chosen, and what the score reaches against the plain error and its peers on the
ODDS and ADBench sets (``benchmarks/bench_anomaly.py``), is in docs/anomaly-detection.md.

Thresholds and probabilities are read off the distribution of the scores of the rows a fit held
out (its 1001 quantiles, ``Autoencoder.score_quantiles_``), when they are enough to see the tail: at
least ``THRESHOLD_TAIL_ROWS`` (10) held-out rows are expected above the threshold, i.e. 200 held-out
rows at ``contamination=0.05`` (:func:`threshold_rows_needed`). With fewer, a quantile at 0.95 of a few
rows is little more than their largest (6 held-out rows of a 61-row table flagged 36 % of it), so the
threshold is read off the scores of all the fit's rows (:func:`scores_for_threshold`), as scikit-learn's
``IsolationForest`` and PyOD read theirs off the training rows. Its error can be stated: read off ``n``
scores, the share of rows like them above the ``1 - c`` quantile has a standard error of about
``sqrt(c (1 - c) / n)`` (:func:`share_standard_error`: 5 % +- 2.8 % on 61 rows, +- 1.5 % on 200), and the
training rows' own scores, from the model fitted on them, are somewhat lower than new rows' (new rows
are flagged a little more often than ``c``).

``contamination="auto"`` (:func:`auto_threshold`) assumes that outliers, when a data set has them, make
a separate, smaller group of high scores: a mixture of two Gaussians is fitted to the log scores, and
when its two components are well apart (Ashman's ``D = sqrt(2) |m1 - m2| / sqrt(s1^2 + s2^2)`` at least
``AUTO_SEPARATION``, 2: the usual reading of two distinct groups rather than one skewed one) and the upper
one is the smaller (at most ``AUTO_OUTLIER_SHARE``, half, of the rows), a row is an outlier where that
component is the more likely one (the lowest such log score above the median). When the log scores show
no such group, it flags ``AUTO_CONTAMINATION`` (15 %) of the rows. docs/anomaly-detection.md gives the rules
measured beside it on ODDS and ADBench (``benchmarks/bench_auto_threshold.py``).

The outlier probability is the logistic ``1 / (1 + exp(-(log s - log threshold) / sigma))`` for the
robust spread ``sigma = (q75 - q25) / 1.349`` of the log scores (the interquartile range of a normal
distribution in units of its standard deviation): 0.5 at the threshold, so it agrees with ``predict``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from aekit.statistics import RowStatistics

# A threshold is read off held-out scores when at least this many of them are expected above it (see the
# module's docstring): the share of rows flagged then has a relative standard error of at most about 1 / sqrt(10).
THRESHOLD_TAIL_ROWS = 10
# contamination="auto" (see the module's docstring): how far apart the two Gaussians of the log scores must be
# (Ashman's D), the largest share of the rows their upper one may hold, and the share flagged when the scores show
# no such group. Its threshold is read off the held-out scores when as many are held out as for a contamination of
# AUTO_SMALLEST_GROUP: THRESHOLD_TAIL_ROWS of them expected in a group of that share.
AUTO_SEPARATION = 2.0
AUTO_OUTLIER_SHARE = 0.5
AUTO_CONTAMINATION = 0.15
AUTO_SMALLEST_GROUP = 0.05


@dataclass(frozen=True)
class OutlierScore:
    """A kind of outlier score (a value of the estimator's ``anomaly_score``) and what it reads.

    The one place a kind is defined: computing, learning, saving and exporting a score ask the kind
    (:func:`outlier_score`) what to do, never compare its name.

    Attributes
    ----------
    name : str
        The ``anomaly_score`` value.
    reads_codes : bool
        True: the score reads each row's codes beside its squared errors (:func:`contributions`), through
        normalisers learned at fit (:class:`ScoreState`, the estimator's ``score_state_``, saved and exported
        with the model). False: the score is the row's mean squared error (the estimator's
        ``reconstruction_error``), and nothing is learned for it.

    Examples
    --------
    >>> outlier_score("combined").reads_codes
    True
    """

    name: str
    reads_codes: bool


OUTLIER_SCORES = {kind.name: kind for kind in (OutlierScore("combined", reads_codes=True),
                                               OutlierScore("error", reads_codes=False))}


def outlier_score(name: str) -> OutlierScore:
    """The kind of outlier score named ``name`` (a validated ``anomaly_score``: one of :data:`OUTLIER_SCORES`)."""
    return OUTLIER_SCORES[name]


# A feature's error scale is floored at this share of the mean scale: a feature the model reconstructs
# exactly (a constant column) would otherwise turn any later deviation into an infinite score.
_SCALE_FLOOR = 1e-3
MIN_FEATURE_SCALE = 1e-12  # and at this, whatever the mean
_NORMAL_IQR = 1.3489795  # interquartile range of the standard normal
# The latent term's density: a mixture of at most LATENT_MODES Gaussians (their number by BIC), each fitted on at
# least MODE_MIN_ROWS rows a mode; a mode holding under MODE_MIN_SHARE of the rows is a cluster of outliers
# (they are among the rows fitted), not a normal mode, and is left out of the density.
LATENT_MODES = 5
MODE_MIN_ROWS = 5
MODE_MIN_SHARE = 0.1
# The modes are fitted on at most this many of the rows (evenly spaced among them), which bounds the mixture's
# cost; docs/anomaly-detection.md compares it with a fit on all the rows.
MODE_FIT_ROWS = 3000
MODE_VARIANCE_FLOOR = 1e-6  # scikit-learn's reg_covar, in the whitened codes' units (variance 1)
# The codes' covariance keeps the directions of eigenvalue above 1e-6 of the largest and above this: a direction in
# which float32 codes vary by less than 1e-12 is a constant, and its whitening (1 / sqrt of the eigenvalue, at most
# 1e12) stays within float32, as the exported graph computes it.
MIN_CODE_VARIANCE = 1e-24


@dataclass
class LatentModes:
    """The codes' density: Gaussian modes with diagonal covariances, in the whitened codes.

    ``whitening`` (latent_dim x r) maps centred codes to r coordinates of unit covariance (r: the codes'
    rank); ``weights`` (m,), ``means`` and ``variances`` (m x r) are the modes kept. One mode of mean 0
    and variance 1 is the plain Mahalanobis distance.
    """

    whitening: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray

    def log_peaks(self) -> np.ndarray:
        """Each mode's log weight plus its log density at its mean, less the modes' common ``r/2 log(2 pi)``."""
        return np.log(self.weights) - 0.5 * np.log(self.variances).sum(axis=1)

    def distance(self, centred: np.ndarray) -> np.ndarray:
        """``-2 log`` of the density at the codes over its upper bound ``sum_j w_j N_j(mean_j)``: >= 0, and the
        squared Mahalanobis distance for one standard mode."""
        z = centred @ self.whitening
        peaks = self.log_peaks()
        quadratic = np.stack([(((z - mean) ** 2) / variance).sum(axis=1)
                              for mean, variance in zip(self.means, self.variances, strict=True)], axis=1)
        return np.maximum(2.0 * (logsumexp(peaks) - logsumexp(peaks - 0.5 * quadratic, axis=1)), 0.0)

    def to_dict(self) -> dict:
        return {name: getattr(self, name).tolist() for name in ("whitening", "weights", "means", "variances")}

    @classmethod
    def from_dict(cls, state: dict) -> LatentModes:
        """Rebuild from :meth:`to_dict` (a saved state is checked first: :mod:`aekit.persistence.checks`)."""
        return cls(*(np.asarray(state[name], dtype=np.float64) for name in ("whitening", "weights", "means",
                                                                                "variances")))


def fit_latent_modes(centred: np.ndarray, covariance: np.ndarray, seed: int) -> LatentModes:
    """The codes' modes (see :class:`LatentModes`) from the centred codes of the training rows.

    The codes are whitened (eigenvectors of ``covariance`` over the square roots of its eigenvalues,
    those above 1e-6 of the largest and above ``MIN_CODE_VARIANCE``: the pseudo-inverse's rank), then
    Gaussian mixtures with diagonal covariances and 1 to ``LATENT_MODES`` modes are fitted (scikit-learn's
    ``GaussianMixture``, ``random_state=seed``) on at most ``MODE_FIT_ROWS`` of them, evenly spaced;
    the one of lowest BIC is kept, less its modes holding under ``MODE_MIN_SHARE`` of the rows (the
    largest always stays). When one mode wins, it is the whitened codes' own: mean 0, variance 1, the
    Mahalanobis distance.
    """
    values, vectors = np.linalg.eigh(covariance)
    rank = values > max(1e-6 * float(values.max(initial=0.0)), MIN_CODE_VARIANCE)
    whitening = vectors[:, rank] / np.sqrt(values[rank])
    if len(centred) > MODE_FIT_ROWS:
        centred = centred[np.linspace(0, len(centred) - 1, MODE_FIT_ROWS).astype(int)]
    z = centred @ whitening
    standard = LatentModes(whitening, np.ones(1), np.zeros((1, z.shape[1])), np.ones((1, z.shape[1])))
    if z.shape[1] == 0 or len(z) < 2 * MODE_MIN_ROWS:
        return standard
    best, best_bic = None, np.inf
    for count in range(1, min(LATENT_MODES, len(z) // MODE_MIN_ROWS) + 1):
        mixture = GaussianMixture(count, covariance_type="diag", reg_covar=MODE_VARIANCE_FLOOR, random_state=seed)
        with warnings.catch_warnings():  # EM stopped at max_iter: still a valid mixture, judged by its BIC
            warnings.simplefilter("ignore", ConvergenceWarning)
            mixture.fit(z)
        bic = mixture.bic(z)
        if bic < best_bic:
            best, best_bic = mixture, bic
    if best.n_components == 1:
        return standard
    keep = (best.weights_ >= MODE_MIN_SHARE) | (best.weights_ == best.weights_.max())
    return LatentModes(whitening, best.weights_[keep], best.means_[keep], best.covariances_[keep])


@dataclass
class ScoreState:
    """What the combined score learned from the training rows (all float64 numpy arrays)."""

    feature_scale: np.ndarray  # (n_features,) mean squared error of each feature
    code_mean: np.ndarray  # (latent_dim,)
    code_scale: float  # mean squared Mahalanobis distance of the training codes (their rank)
    latent_divisor: float  # the codes' distance is divided by this: sqrt(2 code_scale)
    modes: LatentModes  # the codes' density

    def to_dict(self) -> dict:
        return {
            "feature_scale": self.feature_scale.tolist(), "code_mean": self.code_mean.tolist(),
            "code_scale": float(self.code_scale), "latent_divisor": float(self.latent_divisor),
            "latent_modes": self.modes.to_dict(),
        }

    @classmethod
    def from_dict(cls, state: dict) -> ScoreState:
        """Rebuild from :meth:`to_dict` (a saved state is checked first: :mod:`aekit.persistence.checks`)."""
        return cls(
            np.asarray(state["feature_scale"], dtype=np.float64), np.asarray(state["code_mean"], dtype=np.float64),
            float(state["code_scale"]), float(state["latent_divisor"]), LatentModes.from_dict(state["latent_modes"]),
        )


@dataclass
class ScoreStatistics:
    """What the combined score's normalisers are learned from: each feature's squared errors (their mean over
    the observed ones), the codes' count, mean and scatter, and the codes themselves (the latent modes are
    fitted on them: a fit gives at most 10,000 rows). Those of two sets of rows :meth:`merge`."""

    errors: RowStatistics
    codes: RowStatistics
    code_rows: np.ndarray

    @classmethod
    def of(cls, parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> ScoreStatistics:
        """The statistics of ``(squared_errors, codes)`` chunks of rows (NaN: a missing cell's error), in one pass."""
        statistics = cls(RowStatistics(), RowStatistics(), np.empty((0, 0)))  # of no rows
        for errors, codes in parts:
            codes = codes.astype(np.float64)
            part = cls(RowStatistics.of(errors, missing=True), RowStatistics.of(codes, scatter="matrix"), codes)
            statistics = statistics.merge(part)
        return statistics

    def merge(self, other: ScoreStatistics) -> ScoreStatistics:
        code_rows = [rows for rows in (self.code_rows, other.code_rows) if len(rows)] or [self.code_rows]
        return ScoreStatistics(self.errors.merge(other.errors), self.codes.merge(other.codes),
                               np.concatenate(code_rows))


def fit_score_state(parts: Iterable[tuple[np.ndarray, np.ndarray]], *, seed: int = 0) -> ScoreState:
    """Learn the combined score's normalisers from ``(squared_errors, codes)`` chunks of the training rows:
    :func:`score_state_from` their :class:`ScoreStatistics`. ``seed`` seeds the modes' fit.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> errors, codes = rng.random((100, 3)), rng.normal(size=(100, 2))
    >>> state = fit_score_state([(errors, codes)])
    >>> round(float(combined_scores(errors, codes, state).mean()), 6)  # 1 + 2 / sqrt(2 * 2): the distance over sqrt(4)
    2.0
    """
    return score_state_from(ScoreStatistics.of(parts), seed=seed)


def score_state_from(statistics: ScoreStatistics, *, seed: int = 0) -> ScoreState:
    """The combined score's normalisers from the statistics of the training rows (:class:`ScoreStatistics`,
    of all of them: those of several shares merged). ``seed`` seeds the modes' fit."""
    feature_scale = statistics.errors.mean
    feature_scale = np.maximum(feature_scale, max(_SCALE_FLOOR * float(feature_scale.mean()), MIN_FEATURE_SCALE))
    code_mean = statistics.codes.mean
    covariance = statistics.codes.variance
    covariance = (covariance + covariance.T) / 2
    modes = fit_latent_modes(statistics.code_rows - code_mean, covariance, seed)
    code_scale = max(float(modes.whitening.shape[1]), 1e-12)  # the codes' rank: their mean squared distance
    return ScoreState(feature_scale, code_mean, code_scale, float(np.sqrt(2.0 * code_scale)), modes)


def contributions(errors: np.ndarray, codes: np.ndarray, state: ScoreState) -> np.ndarray:
    """Each feature's share of the combined score, then the latent distance's: shape (n, n_features + 1).

    The row sums are :func:`combined_scores`. A missing cell's error is NaN (a table with gaps): its share is
    NaN, and a row's other errors are averaged over its observed cells, so rows with gaps compare with
    complete ones; a row with no observed cell gets NaN shares throughout.
    """
    n_observed = errors.shape[1]
    if np.isnan(errors).any():
        n_observed = np.count_nonzero(~np.isnan(errors), axis=1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = errors.astype(np.float64) / (state.feature_scale * n_observed)
    distance = state.modes.distance(codes.astype(np.float64) - state.code_mean) / state.latent_divisor
    if np.ndim(n_observed):
        distance = np.where(n_observed[:, 0] > 0, distance, np.nan)
    return np.hstack([normalised, distance[:, None]])


def combined_scores(errors: np.ndarray, codes: np.ndarray, state: ScoreState) -> np.ndarray:
    """The combined outlier score of each row (float64; higher is more anomalous; NaN for a row of
    missing cells only: see :func:`contributions`)."""
    return row_totals(contributions(errors, codes, state))


def row_totals(shares: np.ndarray) -> np.ndarray:
    """Each row's score from its shares (:func:`contributions`): their sum over the observed cells, NaN
    for a row with none."""
    if not np.isnan(shares).any():
        return shares.sum(axis=1)
    return np.where(np.isnan(shares[:, -1]), np.nan, np.where(np.isnan(shares), 0.0, shares).sum(axis=1))


def log_location_spread(quantiles: np.ndarray) -> tuple[float, float]:
    """Median and robust spread (IQR / 1.349) of the log scores, from their quantiles at even levels."""
    levels = np.linspace(0.0, 1.0, len(quantiles))
    q25, q50, q75 = np.interp([0.25, 0.5, 0.75], levels, np.asarray(quantiles, dtype=np.float64))
    tiny = np.finfo(np.float64).tiny
    low, mid, high = np.log(np.maximum([q25, q50, q75], tiny))
    spread = (high - low) / _NORMAL_IQR
    return float(mid), float(spread) if spread > 0 else 1.0


def threshold_rows_needed(contamination: float | str) -> int:
    """How many held-out scores a threshold at ``contamination`` is read off: ``THRESHOLD_TAIL_ROWS`` of them
    expected above it ("auto" counts as ``AUTO_SMALLEST_GROUP``, 0.05).

    Examples
    --------
    >>> threshold_rows_needed(0.05), threshold_rows_needed(0.01), threshold_rows_needed("auto")
    (200, 1000, 200)
    """
    share = AUTO_SMALLEST_GROUP if contamination == "auto" else float(contamination)
    return math.ceil(THRESHOLD_TAIL_ROWS / share - 1e-9)


def scores_for_threshold(held_out: np.ndarray, every: np.ndarray, contamination: float | str) -> tuple[np.ndarray, str]:
    """The scores a threshold is read off, and which they are: the held-out rows' when there are
    :func:`threshold_rows_needed` of them, else ``every`` row's (see the module's docstring)."""
    if len(held_out) >= threshold_rows_needed(contamination):
        return held_out, "held-out rows"
    return every, "all rows"


def share_standard_error(contamination: float, n_scores: int) -> float:
    """Standard error of the share of rows flagged by the ``1 - contamination`` quantile of ``n_scores`` scores,
    on rows like them: ``sqrt(c (1 - c) / n)`` (the binomial's; a quantile's coverage has about that spread).

    Examples
    --------
    >>> round(share_standard_error(0.05, 61), 4)
    0.0279
    """
    return math.sqrt(contamination * (1.0 - contamination) / max(n_scores, 1))


def flagged_share_warning(record: dict, contamination: float | str) -> str | None:
    """What to tell the user when the threshold flags a share of the fit's own rows far from ``contamination``
    (under half of it or over twice it); None when it does not, and for "auto" (no share is promised).

    ``record`` says how the threshold was read (``Autoencoder.history_["threshold"]``): ``scores`` ("held-out
    rows" or "all rows"), ``n_scores``, ``training_share`` (of ``n_rows_checked`` of the fit's rows).

    Examples
    --------
    >>> record = {"scores": "held-out rows", "n_scores": 300, "n_rows_checked": 3000, "training_share": 0.004}
    >>> flagged_share_warning(record, 0.05).split(": ")[0]
    'The outlier threshold flags 0.4% of the 3000 rows the model was fitted on, far from contamination=0.05'
    >>> flagged_share_warning({**record, "training_share": 0.06}, 0.05) is None
    True
    """
    share = record["training_share"]
    if contamination == "auto" or contamination / 2 <= share <= 2 * contamination:
        return None
    if record["scores"] == "held-out rows":
        closer = " (it fits them more closely)" if share < contamination else ""
        why = (f"it was read off the {record['n_scores']} held-out rows, and the model scores the rows it was "
               f"trained on {'lower' if share < contamination else 'higher'} than those{closer}; rows like the "
               f"held-out ones are flagged at about {contamination:g}")
    else:  # the threshold is a quantile of these very scores: only ties move the share away
        why = "many rows share the same score (repeated rows), so a quantile cannot split them"
    return (f"The outlier threshold flags {share:.1%} of the {record['n_rows_checked']} rows the model was fitted "
            f"on, far from contamination={contamination:g}: {why}. Check the flags of fit_predict before relying "
            "on them, or set the threshold yourself (--threshold, outlier_threshold).")


def threshold_at(quantiles: np.ndarray, contamination: float | str) -> float:
    """The threshold for ``contamination`` (a share, or "auto") read off score quantiles at even levels 0 ... 1."""
    if contamination == "auto":
        return auto_threshold(quantiles)
    levels = np.linspace(0.0, 1.0, len(quantiles))
    return float(np.interp(1.0 - contamination, levels, np.asarray(quantiles, dtype=np.float64)))


def auto_threshold(quantiles: np.ndarray) -> float:
    """The contamination="auto" threshold, from score quantiles at even levels 0 ... 1 (see the module's docstring).

    A two-Gaussian mixture on the log quantiles (``random_state=0``); when its components are at least
    ``AUTO_SEPARATION`` apart (Ashman's D) and the upper one holds at most ``AUTO_OUTLIER_SHARE`` of the
    rows, the lowest log score above the median where that component's posterior passes 0.5; otherwise
    the ``1 - AUTO_CONTAMINATION`` quantile.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> levels = np.linspace(0, 1, 1001)
    >>> inliers = np.exp(rng.normal(size=700))
    >>> grouped = np.concatenate([inliers, np.exp(rng.normal(6.0, 0.5, size=300))])  # 30 % far above
    >>> float(np.mean(grouped > auto_threshold(np.quantile(grouped, levels))))
    0.3
    >>> plain = np.exp(rng.normal(size=1000))  # no group of outliers: 15 % of the rows
    >>> float(np.round(np.mean(plain > auto_threshold(np.quantile(plain, levels))), 3))
    0.15
    """
    quantiles = np.asarray(quantiles, dtype=np.float64)
    fallback = threshold_at(quantiles, AUTO_CONTAMINATION)
    log_scores = np.log(np.maximum(quantiles, np.finfo(np.float64).tiny))
    if np.ptp(log_scores) <= 0:
        return fallback
    with warnings.catch_warnings():  # EM stopped at max_iter, or collapsed on repeated values: judged below
        warnings.simplefilter("ignore", ConvergenceWarning)
        mixture = GaussianMixture(2, random_state=0).fit(log_scores[:, None])
    means, variances = mixture.means_.ravel(), mixture.covariances_.ravel()
    upper = int(np.argmax(means))
    separation = math.sqrt(2.0) * abs(means[1] - means[0]) / math.sqrt(variances.sum())
    if separation < AUTO_SEPARATION or mixture.weights_[upper] > AUTO_OUTLIER_SHARE:
        return fallback
    median = float(np.median(log_scores))
    grid = np.linspace(median, log_scores.max(), 2001)
    outlying = grid[mixture.predict_proba(grid[:, None])[:, upper] > 0.5]
    return float(np.exp(outlying.min())) if len(outlying) else fallback


def quantile_threshold(quantiles, contamination: float | str, what: str) -> tuple[float, str]:
    """The threshold read off stored score quantiles (at levels 0 ... 1) for `contamination`, and its source.

    Examples
    --------
    >>> quantile_threshold(np.linspace(0.0, 10.0, 11), 0.05, "clip scores")
    (9.5, 'clip scores, contamination 0.05')
    """
    value = threshold_at(quantiles, contamination)
    if contamination == "auto":
        return value, f"{what}, contamination auto (a separate group of high log scores, else 15% of rows)"
    return value, f"{what}, contamination {contamination:g}"


def outlier_probability(scores: np.ndarray, threshold: float, quantiles: np.ndarray) -> np.ndarray:
    """Probability that each score is an outlier's: a logistic in the log score, 0.5 at ``threshold``."""
    _, spread = log_location_spread(quantiles)
    tiny = np.finfo(np.float64).tiny
    z = (np.log(np.maximum(scores.astype(np.float64), tiny)) - np.log(max(threshold, tiny))) / spread
    return 0.5 * (1.0 + np.tanh(z / 2.0))  # the logistic, without overflow for large |z|
