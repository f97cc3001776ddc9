"""Scaling: scikit-learn's scalers, fitted, applied and saved in one place for every path.

- ``scaler="auto"`` (the default) decides per table, by :func:`shares_one_scale`, between one scale
  for every column (:class:`SharedScaler`: pixels, a sensor array, spectra, lengths in one unit) and
  each column standardised on its own (``StandardScaler``: columns in different units).
- :func:`fit_scaler` fits one to rows in memory or read in chunks from a file (the same code), and
  summarises the rows on the way (count, each feature's range: the loss choice and the checks); its
  two steps, :func:`scaler_statistics` and :func:`fitted_scaler`, let statistics of other rows (other
  processes' shares) be merged in between.
- :func:`scale` applies it to an array (numpy in, numpy out); :func:`batch_scaling` applies it to
  each training batch on its way into the model, with the same values.
- :func:`scaler_state` and :func:`scaler_from_state` save and rebuild a fitted one without pickle.

Arrays in and out are numpy; torch only supplies its threads for the arithmetic on large arrays.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from aekit.exceptions import InvalidParameterValue, ModelFileError, did_you_mean, parameter_error
from aekit.statistics import RowStatistics

# "auto" scales a table's columns together when no column varies more than this many times the median
# column (standard deviations), and the table's values span at most this many median columns' ranges
SHARED_SPREAD_RATIO = 5.0


class SharedScaler(StandardScaler):
    """Each column centred on its mean, every column divided by one common scale.

    A ``StandardScaler`` whose ``scale_`` is the same number in every column: the root mean square of
    the columns' standard deviations (1 when no column varies; a column scikit-learn finds constant,
    whose variance is rounding, counts as 0), so the columns keep their relative
    spreads, and the average column's variance is 1 as after standardising. The squared error in its
    space is the squared error in the data's own units divided by ``scale**2``: what a model
    minimises there is what it would minimise on the raw values. scikit-learn's ``transform``,
    ``inverse_transform`` and ``partial_fit`` apply and fit it (NaN cells left out, as there); it is
    exported and applied batch by batch as a ``StandardScaler``.

    Examples
    --------
    >>> SharedScaler().fit(np.array([[0.0, 1.0], [2.0, 7.0]])).transform([[2.0, 7.0]]).round(3).tolist()
    [[0.447, 1.342]]
    """

    def partial_fit(self, X, y=None, sample_weight=None):
        """scikit-learn's statistics per column, then one scale for all (see the class)."""
        super().partial_fit(X, y, sample_weight)
        self.scale_ = common_scale(_varying(self.var_, self.mean_, self.n_samples_seen_))
        return self


def common_scale(var: np.ndarray) -> np.ndarray:
    """:class:`SharedScaler`'s ``scale_`` for columns of variances ``var``: their root mean square standard
    deviation in every column (1 when none varies).

    Examples
    --------
    >>> common_scale(np.array([1.0, 9.0, 0.0])).tolist()
    [1.8257418583505538, 1.8257418583505538, 1.8257418583505538]
    """
    scale = float(np.sqrt(np.mean(var)))
    return np.full(len(var), scale if scale > 0 else 1.0)


SCALERS = {"standard": StandardScaler, "shared": SharedScaler, "minmax": MinMaxScaler}
SCALER_OPTIONS = ("auto", *SCALERS)  # the values of the 'scaler' parameter besides None
AUTO_CHOICES = ("shared", "standard")  # what "auto" decides between
# The fitted attributes each scaler needs to transform and inverse-transform, and the values a fit gives them:
# a number per feature, finite, and >= 0 ("nonnegative": variances, ranges) or > 0 ("positive": the divisors).
_STATE_ARRAYS = {
    "standard": {"mean_": "finite", "var_": "nonnegative", "scale_": "positive"},
    "shared": {"mean_": "finite", "var_": "nonnegative", "scale_": "positive"},  # one value in scale_
    "minmax": {"min_": "finite", "scale_": "positive", "data_min_": "finite", "data_max_": "finite",
               "data_range_": "nonnegative"},
}
_STATE_KEYS = {"name", "n_features_in", "n_samples_seen"}  # besides the arrays
_VALUE_CHECKS = {"finite": lambda a: True, "nonnegative": lambda a: bool(np.all(a >= 0)),
                 "positive": lambda a: bool(np.all(a > 0))}
_CORRUPT = "The model folder is corrupt: save the model again."


def make_scaler(name: str | None) -> StandardScaler | MinMaxScaler | None:
    """Return an unfitted scaler for ``name`` ("standard", "shared", "minmax" or None; "auto" is decided
    from the data: :func:`fit_scaler`, :func:`fit_observed`).

    Examples
    --------
    >>> make_scaler("minmax")
    MinMaxScaler()
    >>> make_scaler(None) is None
    True
    """
    if name is None:
        return None
    if name not in SCALERS:
        raise parameter_error("scaler", name, f"one of {sorted(SCALER_OPTIONS)} or None",
                              hint=did_you_mean(name, SCALER_OPTIONS).strip() or None)
    return SCALERS[name]()


def scaler_name(scaler: Any) -> str | None:
    """The name of a scaler of :data:`SCALERS` ("standard", "shared" or "minmax"; None for None).

    Examples
    --------
    >>> scaler_name(SharedScaler()), scaler_name(None)
    ('shared', None)
    """
    if scaler is None:
        return None
    return next(name for name, kind in SCALERS.items() if type(scaler) is kind)


def fitted_as_asked(asked: str | None, fitted: str | None) -> bool:
    """Whether a fitted scaler named ``fitted`` is what ``scaler=asked`` fits ("auto": one of :data:`AUTO_CHOICES`).

    Examples
    --------
    >>> fitted_as_asked("auto", "shared"), fitted_as_asked("minmax", "standard")
    (True, False)
    """
    return fitted == asked or (asked == "auto" and fitted in AUTO_CHOICES)


def describe_scaling(scaler: Any, parameter: str | None) -> str:
    """What the fitted ``scaler`` does, in one line for a fit summary (``parameter``: the 'scaler' asked for).

    Examples
    --------
    >>> describe_scaling(SharedScaler().fit([[0.0, 2.0]]), "auto")
    'scaling: one scale for all 2 columns (their spreads and ranges agree; scaler=auto)'
    """
    name = scaler_name(scaler)
    why = {"auto": "their spreads and ranges agree; " if name == "shared" else "their spreads or ranges differ; "}
    what = {None: "none, the data's own values", "minmax": "each column's range to [0, 1]",
            "standard": f"each of the {getattr(scaler, 'n_features_in_', 0)} columns standardised on its own",
            "shared": f"one scale for all {getattr(scaler, 'n_features_in_', 0)} columns"}[name]
    return f"scaling: {what} ({why.get(parameter, '')}scaler={parameter})"


def shares_one_scale(std: np.ndarray, low: np.ndarray, high: np.ndarray) -> bool:
    """Whether ``scaler="auto"`` scales a table's columns together, from each column's standard deviation
    and range.

    Columns that share a unit and a range (pixels, a sensor array, spectra, lengths in one unit) vary
    on comparable scales; columns in different units (grams beside millimetres) differ by orders of
    magnitude. Among the columns that vary, the table's columns are scaled together when **no column's
    standard deviation exceeds** ``SHARED_SPREAD_RATIO`` (5) **times the median column's, and the
    table's values span at most 5 times the median column's range** (a column of years beside
    counts of similar spread fails the second test). The median of an even number of columns is the
    lower middle one (of two columns, the smaller). Columns that vary much less than the others
    (a picture's border pixels) do not count against it: in a shared unit they matter less. The rule
    sees numbers, not units: a table whose columns are in different units with similar spreads is
    scaled together (pass ``scaler="standard"``), and one in a shared unit whose columns differ
    widely is scaled per column (pass ``scaler="shared"``).

    Examples
    --------
    >>> lengths = np.array([[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]])
    >>> shares_one_scale(lengths.std(axis=0), lengths.min(axis=0), lengths.max(axis=0))
    True
    >>> grams_and_mm = np.array([[3750.0, 39.1], [3800.0, 39.5], [3250.0, 40.3]])
    >>> shares_one_scale(grams_and_mm.std(axis=0), grams_and_mm.min(axis=0), grams_and_mm.max(axis=0))
    False
    """
    varying = np.asarray(high) > np.asarray(low)
    if varying.sum() < 2:
        return True
    spread, low, high = np.asarray(std)[varying], np.asarray(low)[varying], np.asarray(high)[varying]
    middle = (len(spread) - 1) // 2  # the median column; of an even count the lower middle one (of two: the smaller)
    typical_spread, typical_range = np.sort(spread)[middle], np.sort(high - low)[middle]
    return bool(spread.max() <= SHARED_SPREAD_RATIO * typical_spread
                and high.max() - low.min() <= SHARED_SPREAD_RATIO * typical_range)


def fit_observed(name: str | None, X: np.ndarray):
    """The scaler ``name`` fitted to ``X``'s observed cells (NaN: missing, left out), "auto" decided on them.

    For rows in memory that may hold missing cells (a table's numeric columns); :func:`fit_scaler`
    fits complete rows in one pass over blocks, in memory or read from a file.

    Examples
    --------
    >>> fit_observed("auto", np.array([[1.0, 2.0], [3.0, np.nan], [2.0, 4.0]]))
    SharedScaler()
    """
    if name == "auto" and X.shape[1]:
        with warnings.catch_warnings():  # a column without observed cells is refused by the caller
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high, std = np.nanmin(X, axis=0), np.nanmax(X, axis=0), np.nanstd(X, axis=0)
        name = AUTO_CHOICES[0] if shares_one_scale(std, low, high) else AUTO_CHOICES[1]
    scaler = make_scaler("standard" if name == "auto" else name)
    return None if scaler is None else scaler.fit(X)


def scaler_state(scaler: Any) -> dict | None:
    """The fitted state of ``scaler`` as a JSON-ready dict (lists of floats)."""
    name = scaler_name(scaler)
    if name is None:
        return None
    state: dict[str, Any] = {"name": name, "n_features_in": int(scaler.n_features_in_)}
    for attribute in _STATE_ARRAYS[name]:
        value = getattr(scaler, attribute)
        state[attribute] = None if value is None else np.asarray(value, dtype=np.float64).tolist()
    state["n_samples_seen"] = int(np.max(scaler.n_samples_seen_)) if name != "minmax" else None
    return state


def scaler_from_state(state: dict | None, n_features: int) -> StandardScaler | MinMaxScaler | None:
    """Rebuild a fitted scaler from :func:`scaler_state`'s dict, checking every field."""
    if state is None:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("name"), str) or state["name"] not in SCALERS:
        raise ModelFileError(
            f"The scaler state must be an object with 'name' in {sorted(SCALERS)}; got {state!r:.200}. "
            f"{_CORRUPT}"
        )
    name = state["name"]
    unknown = set(state) - _STATE_KEYS - set(_STATE_ARRAYS[name])
    if unknown:
        raise ModelFileError(f"The {name} scaler's state holds unknown keys {sorted(unknown)[:5]}. {_CORRUPT}")
    count = state.get("n_features_in", n_features)
    seen = state.get("n_samples_seen")
    if count != n_features or isinstance(count, bool) or not (
            seen is None or (isinstance(seen, int) and not isinstance(seen, bool) and seen >= 1)):
        raise ModelFileError(
            f"The scaler state's n_features_in must be {n_features} and n_samples_seen null or an integer >= 1; "
            f"got {count!r:.40} and {seen!r:.40}. {_CORRUPT}"
        )
    scaler = SCALERS[name]()
    for attribute, kind in _STATE_ARRAYS[name].items():
        value = state.get(attribute)
        numbers = isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        array = np.asarray(value if numbers else [], dtype=np.float64)
        if not numbers or array.shape != (n_features,) or not np.all(np.isfinite(array)):
            raise ModelFileError(
                f"Scaler field {attribute!r} must be a list of {n_features} finite numbers; got "
                f"{type(value).__name__} {value!r:.60}. {_CORRUPT}"
            )
        if not _VALUE_CHECKS[kind](array):  # a fitted scaler never divides by zero or holds a negative variance
            raise ModelFileError(
                f"Scaler field {attribute!r} holds {'zeros or ' if kind == 'positive' else ''}negative values, "
                f"which no fitted scaler has ({kind} numbers expected). {_CORRUPT}"
            )
        setattr(scaler, attribute, array)
    if name == "shared" and np.ptp(scaler.scale_) != 0:
        raise ModelFileError(f"The shared scaler's scale_ holds more than one value. {_CORRUPT}")
    scaler.n_features_in_ = n_features
    scaler.n_samples_seen_ = 1 if name == "minmax" else seen
    return scaler


# ---------------------------------------------------------------------------------------------- fitting
STATS_CHUNK_VALUES = 2**18  # values per piece when statistics are computed (cache-sized)
SCALE_CHUNK_ROWS = 16384  # float64 input is scaled this many rows at a time (no float64 copy of all of it)


def scaler_statistics(name: str | None, blocks: np.ndarray | Iterable[np.ndarray]) -> RowStatistics:
    """What the scaler ``name`` (:func:`make_scaler`) is fitted from, in one pass over rows given in blocks.

    ``blocks`` is one array of rows (data in memory) or an iterable of arrays (a file read chunk by
    chunk): the same code reads both, and no block is copied to float64 as a whole. Every block is
    read in cache-sized pieces on torch's threads: each feature's minimum and maximum (the range,
    in the rows' dtype: scaling is monotone, float32 rounding included, so the scaled range is the
    scaled ``low`` and ``high``), and for a ``StandardScaler`` the mean (float64 sums) and the
    squared deviations from it (a second pass over the block, which is in memory). Blocks are merged
    by :meth:`aekit.statistics.RowStatistics.merge`, as statistics of other rows (another process's
    share of a file) are. scikit-learn's ``partial_fit`` over blocks gives the same figures more slowly
    (its NaN-aware sums copy every block; docs/performance.md).

    Examples
    --------
    >>> statistics = scaler_statistics("standard", np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]]))
    >>> statistics.n_rows, statistics.mean.tolist(), statistics.high.tolist()
    (3, [2.0, 1.0], [4.0, 1.0])
    """
    scaler = make_scaler(_measured_as(name))
    with_mean = isinstance(scaler, StandardScaler) and (scaler.with_mean or scaler.with_std)
    with_std = with_mean and scaler.with_std
    statistics = RowStatistics()
    for block in [blocks] if isinstance(blocks, np.ndarray) else blocks:
        statistics = statistics.merge(_block_statistics(block, with_mean, with_std))
    return statistics


def _block_statistics(block: np.ndarray, with_mean: bool, with_std: bool) -> RowStatistics:
    """One block's range (and mean, and squared deviations from it), read in cache-sized pieces."""
    source = tensor_view(block)
    if not len(source):
        return RowStatistics()
    rows_per_piece = max(1, STATS_CHUNK_VALUES // max(source.shape[1], 1))
    pieces = source.split(rows_per_piece)
    low = high = total = None
    for piece in pieces:  # amin and amax, not aminmax, which reduces along dim 0 far more slowly on the CPU
        piece_low, piece_high = piece.amin(dim=0), piece.amax(dim=0)
        low = piece_low if low is None else torch.minimum(low, piece_low)
        high = piece_high if high is None else torch.maximum(high, piece_high)
        if with_mean:
            piece_sum = piece.sum(dim=0, dtype=torch.float64)
            total = piece_sum if total is None else total.add_(piece_sum)
    mean = scatter = None
    if with_mean:
        mean = total / len(source)
    if with_std:  # the squared deviations from the block's own mean: a second pass
        scatter = torch.zeros_like(mean)
        for piece in pieces:
            scatter += (piece.to(torch.float64) - mean).square_().sum(dim=0)
    return RowStatistics(len(source), None if mean is None else mean.numpy(),
                         None if scatter is None else scatter.numpy(), low.numpy(), high.numpy())


def fitted_scaler(name: str | None, statistics: RowStatistics):
    """The scaler ``name`` fitted from :func:`scaler_statistics` (of all the rows): None for ``name=None``,
    left unfitted when there are no rows.

    The attributes are set as scikit-learn's ``fit`` sets them (``mean_``, ``var_``, ``scale_``: 1 for
    features its rule finds indistinguishable from a constant, ``n_samples_seen_``, ``n_features_in_``),
    to within float64 rounding; a ``MinMaxScaler`` is fitted to the range. "shared": the
    ``StandardScaler``'s statistics with one scale for all (:class:`SharedScaler`); "auto": those
    statistics decide (:func:`shares_one_scale`) between a :class:`SharedScaler` and the
    ``StandardScaler``, so every path (in memory, streamed, merged over processes) decides alike.
    """
    scaler = make_scaler(_measured_as(name))
    if scaler is None or statistics.n_rows == 0:
        return scaler
    if isinstance(scaler, StandardScaler):
        _set_standard_statistics(scaler, statistics)
    else:
        scaler.partial_fit(np.stack([statistics.low, statistics.high]))
        scaler.n_samples_seen_ = statistics.n_rows
    return _one_scale_if_shared(name, scaler, statistics)


def _measured_as(name: str | None) -> str | None:
    """The scaler whose statistics ``name`` is fitted from: "auto" decides on, and "shared" is made from, the
    ``StandardScaler``'s."""
    return "standard" if name in ("auto", "shared") else name


def _one_scale_if_shared(name: str | None, scaler, statistics: RowStatistics):
    """:func:`fitted_scaler`'s ``StandardScaler`` with one scale for all (:class:`SharedScaler`) for "shared",
    and for "auto" where :func:`shares_one_scale` holds for the rows; else ``scaler`` as it is."""
    shared = name == "shared" or (name == "auto" and shares_one_scale(np.sqrt(scaler.var_), statistics.low,
                                                                     statistics.high))
    if not shared:
        return scaler
    one = SharedScaler()
    one.n_features_in_, one.n_samples_seen_ = scaler.n_features_in_, scaler.n_samples_seen_
    one.mean_, one.var_ = scaler.mean_, scaler.var_
    one.scale_ = common_scale(_varying(scaler.var_, scaler.mean_, scaler.n_samples_seen_))
    return one


def fit_scaler(name: str | None, blocks: np.ndarray | Iterable[np.ndarray]):
    """Fit the scaler ``name`` to rows given in blocks, in one pass: :func:`fitted_scaler` of
    :func:`scaler_statistics`.

    Returns
    -------
    scaler : fitted scaler or None
        None for ``name=None``; left unfitted when there are no rows.
    statistics : RowStatistics
        The rows' count and range (and what the scaler was fitted from).

    Examples
    --------
    >>> X = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    >>> scaler, statistics = fit_scaler("standard", X)
    >>> scaler.mean_.tolist(), statistics.n_rows, statistics.high.tolist()
    ([2.0, 1.0], 3, [4.0, 1.0])
    """
    statistics = scaler_statistics(name, blocks)
    return fitted_scaler(name, statistics), statistics


def _set_standard_statistics(scaler: StandardScaler, statistics: RowStatistics) -> None:
    n_rows, mean = statistics.n_rows, statistics.mean
    scaler.n_features_in_, scaler.n_samples_seen_ = len(statistics.low), np.float64(n_rows)
    scaler.mean_, scaler.var_, scaler.scale_ = mean, None, None
    if not scaler.with_std:
        return
    var = statistics.variance
    scaler.var_, scaler.scale_ = var, np.where(_varying(var, mean, n_rows) == 0, 1.0, np.sqrt(var))


def _varying(var: np.ndarray, mean: np.ndarray, n_rows) -> np.ndarray:
    """``var`` with 0 for the columns scikit-learn finds constant (``_is_constant_feature``: the variance is
    within the two-pass algorithm's error bound, rounding), whose scale is 1 (their own) or none (the shared)."""
    eps = np.finfo(np.float64).eps
    return np.where(var <= n_rows * eps * var + (n_rows * mean * eps) ** 2, 0.0, var)


# ---------------------------------------------------------------------------------------------- applying
def tensor_view(X: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy(X)``, quiet about a read-only ``X`` (np.load mmap, pandas' copy-on-write): only read.

    Examples
    --------
    >>> X = np.zeros((2, 3), dtype=np.float32)
    >>> X.setflags(write=False)
    >>> tensor_view(X).shape
    torch.Size([2, 3])
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)
        return torch.from_numpy(X)


def _standard_steps(scaler: StandardScaler, dtype) -> list[tuple[Callable, torch.Tensor]]:
    """A fitted ``StandardScaler``'s operations in scikit-learn's order: centre, then scale, both cast to ``dtype``."""
    steps = []
    if scaler.with_mean:
        steps.append((torch.sub, torch.from_numpy(scaler.mean_.astype(dtype))))
    if scaler.with_std:
        steps.append((torch.div, torch.from_numpy(scaler.scale_.astype(dtype))))
    return steps


def scale(scaler, X: np.ndarray) -> np.ndarray:
    """``scaler.transform(X)`` as a C-contiguous float32 array (``X`` as float32 for ``scaler=None``).

    For a ``StandardScaler`` these are scikit-learn's own operations (subtract ``mean_``, divide by
    ``scale_``, both cast to ``X``'s dtype, in ``X``'s precision) on torch's threads into one new
    array, so the result equals ``scaler.transform(X).astype(np.float32)`` exactly, several times
    faster on large data: scikit-learn's runs on one thread and writes a full copy in ``X``'s
    precision first. float64 input is scaled ``SCALE_CHUNK_ROWS`` rows at a time. Values that
    overflow float32 come out infinite: the caller checks.

    Examples
    --------
    >>> scaler, _ = fit_scaler("standard", np.array([[0.0], [2.0]]))
    >>> scale(scaler, np.array([[0.0], [4.0]])).tolist()
    [[-1.0], [3.0]]
    """
    if scaler is None:
        return np.ascontiguousarray(X, dtype=np.float32)
    if not isinstance(scaler, StandardScaler):
        return np.ascontiguousarray(scaler.transform(X), dtype=np.float32)
    source = tensor_view(np.ascontiguousarray(X))
    steps = _standard_steps(scaler, X.dtype)
    out = torch.empty(source.shape, dtype=torch.float32)
    in_place = source.dtype == torch.float32  # compute straight into the output
    chunk = max(len(source), 1) if in_place else SCALE_CHUNK_ROWS
    for start in range(0, len(source), chunk):
        result, target = source[start : start + chunk], out[start : start + chunk]
        for op, value in steps:
            result = op(result, value, out=target) if in_place else op(result, value)
        if result is not target:
            target.copy_(result)  # float64 to float32, or an unscaled float32 copy
    return out.numpy()


def scales_batches(scaler) -> bool:
    """Whether :func:`batch_scaling` can scale float32 batches of ``scaler``'s rows (no scaler, or a standard one)."""
    return scaler is None or isinstance(scaler, StandardScaler)


def batch_scaling(scaler, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Scale float32 batches on ``device`` as :func:`scale` scales float32 rows: the same values, batch by batch.

    For training on rows that are not scaled as a whole (no scaled copy of the data). None for
    ``scaler=None``; only scalers for which :func:`scales_batches` holds. Each step returns a new
    tensor, so a batch that is a view of the training data is left as it is.

    Examples
    --------
    >>> scaler, _ = fit_scaler("standard", np.array([[0.0], [2.0]], dtype=np.float32))
    >>> batch_scaling(scaler, torch.device("cpu"))(torch.tensor([[4.0]])).tolist()
    [[3.0]]
    """
    if scaler is None:
        return None
    if not scales_batches(scaler):
        raise InvalidParameterValue(f"{type(scaler).__name__} is not applied batch by batch; scale the rows first.")
    steps = [(op, value.to(device)) for op, value in _standard_steps(scaler, np.float32)]

    def scale_batch(batch: torch.Tensor) -> torch.Tensor:
        for op, value in steps:
            batch = op(batch, value)
        return batch

    return scale_batch
