"""aekit.imputation: the linear (conditional-Gaussian) fill of missing cells and its blend weights."""

import numpy as np
import pytest

from aekit.imputation import LinearFill, blend_weights


@pytest.fixture(scope="module")
def gaussian():
    """Rows of a known 5-dimensional Gaussian, 20% of their cells missing at random."""
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(5, 5))
    covariance = factors @ factors.T + 0.1 * np.eye(5)
    mean = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    rows = rng.multivariate_normal(mean, covariance, size=4000)
    gappy = np.where(rng.random(rows.shape) < 0.2, np.nan, rows)
    return mean, covariance, rows, gappy


def exact_conditional_means(rows: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Each missing value's conditional mean under the true Gaussian, ``mu_H + S_HO S_OO^-1 (x_O - mu_O)``,
    row by row (the textbook form, in covariances, not precisions)."""
    result = rows.copy()
    for i, row in enumerate(rows):
        hidden, seen = np.isnan(row), ~np.isnan(row)
        if hidden.any():
            gain = covariance[np.ix_(hidden, seen)] @ np.linalg.inv(covariance[np.ix_(seen, seen)])
            result[i, hidden] = mean[hidden] + gain @ (row[seen] - mean[seen])
    return result


def test_the_fill_is_the_conditional_mean_of_the_rows_gaussian(gaussian):
    mean, covariance, rows, gappy = gaussian
    filled = LinearFill.fit(gappy).fill(gappy)
    exact = exact_conditional_means(gappy, mean, covariance)
    missing = np.isnan(gappy)
    np.testing.assert_array_equal(filled[~missing], gappy[~missing])  # observed cells untouched
    # estimated from 4,000 rows with gaps and a ridge of 1% of the variances: close to the truth's fill
    spread = np.sqrt(np.mean((rows[missing] - exact[missing]) ** 2))  # the fill's own error
    assert np.sqrt(np.mean((filled[missing] - exact[missing]) ** 2)) < 0.1 * spread
    assert np.sqrt(np.mean((filled[missing] - rows[missing]) ** 2)) < 1.02 * spread


def test_a_row_with_nothing_observed_gets_the_mean(gaussian):
    mean, _, _, gappy = gaussian
    fill = LinearFill.fit(gappy)
    np.testing.assert_allclose(fill.fill(np.full((2, 5), np.nan)), np.tile(fill.mean, (2, 1)))
    np.testing.assert_allclose(fill.mean, mean, atol=0.15)


def test_the_state_round_trips_and_bad_state_is_refused(gaussian):
    fill = LinearFill.fit(gaussian[3])
    fill.model_weight = np.array([0.0, 1.0, 0.5])
    again = LinearFill.from_dict(fill.to_dict())
    np.testing.assert_array_equal(again.fill(gaussian[3]), fill.fill(gaussian[3]))
    np.testing.assert_array_equal(again.model_weight, fill.model_weight)
    with pytest.raises(ValueError, match="n x n precision"):
        LinearFill.from_dict({**fill.to_dict(), "precision": [[1.0]]})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LinearFill.from_dict({**fill.to_dict(), "model_weight": [2.0]})


def test_blend_weights_minimise_each_columns_squared_error_drawn_to_the_pooled_weight():
    rng = np.random.default_rng(3)
    truth = rng.normal(size=(200, 4))
    model = truth + rng.normal(scale=[0.2, 1.0, 0.5, 0.5], size=(200, 4))
    linear = truth + rng.normal(scale=[1.0, 0.2, 0.5, 0.5], size=(200, 4))
    truth[rng.random(truth.shape) < 0.3] = np.nan  # not measured
    slot_column = np.array([0, 1, 2, 2])  # the last two slots are one column's
    weights = blend_weights(model, linear, truth, slot_column, 3)
    # a brute-force search of the documented objective, for reference
    grid = np.linspace(0.0, 1.0, 1001)
    error = np.array([np.nansum((w * model + (1 - w) * linear - truth) ** 2, axis=0) for w in grid])  # (grid, slots)
    per_column = np.stack([error[:, slot_column == column].sum(axis=1) for column in range(3)], axis=1)
    pooled = grid[int(np.argmin(per_column.sum(axis=1)))]
    prior = np.mean([np.nansum(np.where(np.isnan(truth), np.nan, model - linear)[:, slot_column == column] ** 2)
                     for column in range(3)])
    for column in range(3):
        objective = per_column[:, column] + prior * (grid - pooled) ** 2
        assert weights[column] == pytest.approx(grid[int(np.argmin(objective))], abs=2e-3)
    assert weights[0] > 0.6 and weights[1] < 0.4 and weights[0] - weights[1] > 0.4
    # kept in [0, 1]; a column with nothing measured keeps the model's fill
    assert blend_weights(truth + 1.0, truth - 1.0, truth, np.arange(4), 5).tolist()[4] == 1.0
    assert blend_weights(np.nan_to_num(truth) + 2, np.nan_to_num(truth) + 1, truth, np.arange(4), 4).max() == 0.0
