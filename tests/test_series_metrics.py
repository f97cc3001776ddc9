"""VUS-PR against a hand-computed case, scikit-learn's average precision, and a plain loop over the definition."""

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from aekit.exceptions import InvalidInputError
from aekit.series_metrics import THRESHOLDS, buffer_labels, extended_ranges, labelled_ranges, vus_pr


def looped_vus_pr(labels, scores, max_buffer):
    """VUS-PR step by step as the definition reads: one buffer, one threshold, one range at a time."""
    labels = np.asarray(labels)
    n_steps, n_labelled = len(labels), labels.sum()
    ranked = np.sort(scores)[::-1]
    areas = []
    for buffer in range(max_buffer + 1):
        half = buffer // 2
        soft = labels.astype(float)
        for first, last in labelled_ranges(labels):
            for step in range(max(first - half, 0), first):
                soft[step] += math.sqrt(1 - (first - step) / buffer)
            for step in range(last + 1, min(last + half + 1, n_steps)):
                soft[step] += math.sqrt(1 - (step - last) / buffer)
        soft = np.minimum(soft, 1.0)
        extended = extended_ranges(labelled_ranges(labels), half, n_steps)
        area, previous_rate = 0.0, 0.0
        for rank in np.linspace(0, n_steps - 1, THRESHOLDS).astype(int):
            predicted = scores >= ranked[rank]
            true_positive = sum(soft[step] for step in range(n_steps) if predicted[step])
            in_labels = n_labelled + sum(soft[step] for step in range(n_steps) if predicted[step] and not labels[step])
            recall = min(true_positive / ((n_labelled + in_labels) / 2), 1.0)
            hit = sum(bool(predicted[start:end + 1].any()) for start, end in extended)
            rate = recall * hit / len(extended)
            area += (rate - previous_rate) * true_positive / predicted.sum()
            previous_rate = rate
        areas.append(area)
    return float(np.mean(areas))


LABELS = np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 0])
SCORES = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.7, 0.8, 0.15, 0.25, 0.35])


def test_hand_computed_case():
    # Buffers 0 and 1 add no step: the ranking 4 (hit), 6 (miss), 5 (hit) gives 1/2 * 1 + 1/2 * 2/3.
    plain = 0.5 * 1.0 + 0.5 * 2.0 / 3.0
    # Buffer 2 adds steps 3 and 6 at sqrt(1/2). After steps 4 and 6: TP = 1 + w, N_labels = 2 + w,
    # recall = (1 + w) / ((2 + 2 + w) / 2), precision (1 + w) / 2; after step 5: recall 1, precision (2 + w) / 3.
    w = math.sqrt(0.5)
    recall = (1 + w) / ((4 + w) / 2)
    buffered = 0.5 * 1.0 + (recall - 0.5) * (1 + w) / 2 + (1.0 - recall) * (2 + w) / 3
    assert vus_pr(LABELS, SCORES, 0) == pytest.approx(plain, rel=1e-12)
    assert vus_pr(LABELS, SCORES, 2) == pytest.approx((2 * plain + buffered) / 3, rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_no_buffer_one_range_is_average_precision(seed):
    rng = np.random.default_rng(seed)
    labels = np.zeros(200, dtype=int)
    start = int(rng.integers(0, 180))
    labels[start:start + int(rng.integers(1, 20))] = 1
    scores = rng.normal(size=200) + labels
    assert vus_pr(labels, scores, 0) == pytest.approx(average_precision_score(labels, scores), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_matches_the_definition_step_by_step(seed):
    rng = np.random.default_rng(seed)
    n_steps = int(rng.integers(30, 300))
    labels = np.zeros(n_steps, dtype=int)
    for _ in range(int(rng.integers(1, 4))):
        start = int(rng.integers(0, n_steps))
        labels[start:start + int(rng.integers(1, 15))] = 1
    scores = np.round(rng.random(n_steps) + 0.5 * labels, 1)  # rounded: ties across thresholds
    max_buffer = int(rng.integers(0, 12))
    assert vus_pr(labels, scores, max_buffer) == pytest.approx(looped_vus_pr(labels, scores, max_buffer), abs=1e-12)


def test_perfect_scores_give_one_and_ranks_alone_matter():
    labels = np.zeros(500, dtype=int)
    labels[100:110] = labels[300:302] = 1
    assert vus_pr(labels, labels.astype(float), 40) == 1.0
    scores = np.random.default_rng(0).normal(size=500) + 2 * labels
    assert vus_pr(labels, np.exp(scores), 30) == pytest.approx(vus_pr(labels, scores, 30), abs=1e-12)


def test_helpers():
    assert labelled_ranges(np.array([1, 1, 0, 1])).tolist() == [[0, 1], [3, 3]]
    np.testing.assert_allclose(buffer_labels(np.array([0, 1, 0, 0]), np.array([[1, 1]]), 2),
                               [math.sqrt(0.5), 1.0, math.sqrt(0.5), 0.0], rtol=1e-12)


@pytest.mark.parametrize(("labels", "scores", "max_buffer", "message"), [
    ([0, 1], [0.1], 0, "Got 2 labels and 1 scores"),
    ([0, 1], [0.1, np.nan], 0, "NaN or infinite"),
    ([0, 0], [0.1, 0.2], 0, "at least one 1"),
    ([0, 2], [0.1, 0.2], 0, "must be 0 or 1"),
    ([0, 1], [0.1, 0.2], -1, "max_buffer must be an integer >= 0; got -1."),
])
def test_bad_input(labels, scores, max_buffer, message):
    with pytest.raises(InvalidInputError, match=message):
        vus_pr(labels, scores, max_buffer)
