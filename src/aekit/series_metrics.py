"""How well per-step anomaly scores find labelled ranges: VUS-PR, the volume under the range-based PR surface.

A point-wise PR-AUC treats every labelled step alike and gives no credit to a score that peaks just
before or after a labelled range, although a detector of windows must smear its score over a window.
VUS-PR (Paparrizos, Boniol, Palpanas, Tsay, Elmore and Franklin, "Volume Under the Surface: A New
Accuracy Evaluation Measure for Time-Series Anomaly Detection", PVLDB 15(11), 2022; the ranking
metric of the TSB-AD benchmark, Liu and Paparrizos, NeurIPS 2024) extends each labelled range by a
**buffer** on both sides in which a step counts partly, computes a range-based PR curve for every
buffer length from 0 to ``L``, and averages their areas.

For one buffer length ``b`` (``h = b // 2`` steps on each side of every labelled range):

- **Soft labels**: a labelled step weighs 1; a step ``d`` steps after a range's last step (``1 <= d
  <= h``) or ``d`` steps before its first weighs ``sqrt(1 - d / b)``; overlapping contributions add,
  capped at 1; every other step weighs 0.
- **Thresholds**: the ``THRESHOLDS`` (250) scores at evenly spaced ranks of the scores sorted from
  the highest (``np.linspace(0, n - 1, 250)`` rounded down); at each, the steps scoring at least it
  are predicted.
- **At one threshold**: ``TP`` = the soft labels of the predicted steps; ``N_labels`` = the labelled
  steps (``P``) plus the soft labels of the predicted buffer steps; recall = ``min(TP / ((P +
  N_labels) / 2), 1)``; precision = ``TP / predicted steps``; the recall is multiplied by the share
  of extended ranges (ranges widened by ``h`` and merged where they share a step) holding a predicted step.
- **Area**: the sum over thresholds, from the highest, of the recall's increase times the precision
  (from recall 0).

VUS-PR is the mean of the areas over ``b = 0, 1, ..., L``. This follows the authors' reference code
(TSB-AD's ``RangeAUC_volume_opt``, thresholds and all); with ``L = 0`` and a single labelled range
whose steps' scores are all distinct, on a series of at most 250 steps, it is the point-wise average
precision.

Examples
--------
>>> import numpy as np
>>> labels = np.zeros(100, dtype=int)
>>> labels[40:45] = 1
>>> scores = np.zeros(100)
>>> scores[40:45] = 1.0  # the labelled steps score highest
>>> vus_pr(labels, scores, 10)
1.0
"""

from __future__ import annotations

import numpy as np

from aekit.exceptions import InvalidInputError

THRESHOLDS = 250  # thresholds per PR curve, as the authors' code


def labelled_ranges(labels: np.ndarray) -> np.ndarray:
    """First and last step (inclusive) of each run of labelled steps, shape (n_ranges, 2).

    Examples
    --------
    >>> labelled_ranges(np.array([1, 0, 0, 1, 1, 0, 1])).tolist()
    [[0, 0], [3, 4], [6, 6]]
    """
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(labels, dtype=np.int8), [0]])))
    return np.column_stack([edges[::2], edges[1::2] - 1])


def buffer_labels(labels: np.ndarray, ranges: np.ndarray, buffer: int) -> np.ndarray:
    """The soft labels of buffer length ``buffer`` (see the module's docstring), float64.

    Examples
    --------
    >>> buffer_labels(np.array([0, 0, 1, 0, 0]), np.array([[2, 2]]), 4).round(3).tolist()
    [0.707, 0.866, 1.0, 0.866, 0.707]
    """
    soft = np.asarray(labels, dtype=np.float64).copy()
    n_steps, half = len(soft), buffer // 2
    for first, last in ranges:
        after = np.arange(last + 1, min(last + half + 1, n_steps))
        soft[after] += np.sqrt(1.0 - (after - last) / buffer)
        before = np.arange(max(first - half, 0), first)
        soft[before] += np.sqrt(1.0 - (first - before) / buffer)
    return np.minimum(soft, 1.0)


def extended_ranges(ranges: np.ndarray, half: int, n_steps: int) -> np.ndarray:
    """``ranges`` widened by ``half`` steps on each side (within the series), merged where they overlap.

    Two ranges merge when they share a step (ranges that only touch stay apart).

    Examples
    --------
    >>> extended_ranges(np.array([[2, 3], [7, 7], [12, 12], [20, 21]]), 2, 23).tolist()
    [[0, 9], [10, 14], [18, 22]]
    """
    merged = []
    for first, last in ranges:
        start, end = max(first - half, 0), min(last + half, n_steps - 1)
        if merged and merged[-1][1] >= start:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return np.asarray(merged, dtype=np.int64).reshape(-1, 2)


def vus_pr(labels, scores, max_buffer: int) -> float:
    """VUS-PR: the mean area under the range-based PR curves of buffer lengths 0 to ``max_buffer``.

    Parameters
    ----------
    labels : array-like of shape (n_steps,)
        1 (or True) for an anomalous step, 0 for the others; at least one step must be labelled.
    scores : array-like of shape (n_steps,)
        Per-step anomaly scores, higher = more anomalous; finite.
    max_buffer : int >= 0
        The longest buffer ``L``. The TSB-AD benchmark takes the series' period (its detectors' window).

    Returns
    -------
    float
        In [0, 1]; 1 when every labelled step scores above every other step.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 0])
    >>> scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.7, 0.8, 0.15, 0.25, 0.35])
    >>> round(vus_pr(labels, scores, 0), 4)  # no buffer, one range: the average precision
    0.8333
    >>> round(vus_pr(labels, scores, 2), 4)  # the step just after the range counts partly
    0.869
    """
    labels, scores = _checked(labels, scores)
    if int(max_buffer) != max_buffer or max_buffer < 0:
        raise InvalidInputError(f"max_buffer must be an integer >= 0; got {max_buffer!r}.")
    ranges = labelled_ranges(labels)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    thresholds = ranked[np.linspace(0, len(scores) - 1, THRESHOLDS).astype(int)]
    n_predicted = np.searchsorted(-ranked, -thresholds, side="right")
    areas = [_area(labels, ranges, order, scores, thresholds, n_predicted, buffer)
             for buffer in range(int(max_buffer) + 1)]
    return float(np.mean(areas))


def _area(labels, ranges, order, scores, thresholds, n_predicted, buffer: int) -> float:
    """One buffer's area, every threshold at once (``order``: the steps from the highest score)."""
    n_steps, n_labelled = len(labels), float(labels.sum())
    soft = buffer_labels(labels, ranges, buffer)
    before = np.concatenate([[0.0], np.cumsum(soft[order])])  # soft labels of the first k ranked steps
    in_buffer = np.concatenate([[0.0], np.cumsum((soft * (labels == 0))[order])])
    true_positive = before[n_predicted]
    labelled_total = n_labelled + in_buffer[n_predicted]
    recall = np.minimum(true_positive / ((n_labelled + labelled_total) / 2.0), 1.0)
    extended = extended_ranges(ranges, buffer // 2, n_steps)
    peaks = np.array([scores[start:end + 1].max() for start, end in extended])  # a range is hit at its peak
    existence = (peaks[None, :] >= thresholds[:, None]).mean(axis=1)
    rate = recall * existence
    precision = true_positive / n_predicted
    return float(np.sum(np.diff(np.concatenate([[0.0], rate])) * precision))


def _checked(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if len(labels) != len(scores):
        raise InvalidInputError(f"Got {len(labels)} labels and {len(scores)} scores; give one of each per time step.")
    if not np.isfinite(scores).all():
        raise InvalidInputError("The scores hold NaN or infinite values; give a finite score to every time step.")
    if not np.isin(labels, (0, 1)).all() or not labels.any():
        raise InvalidInputError("The labels must be 0 or 1, with at least one 1 (an anomalous step).")
    return labels.astype(np.int8), scores
