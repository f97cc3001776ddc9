import numpy as np
import pytest
import torch
from scipy.special import log_softmax

from aekit.exceptions import InvalidParameterValue
from aekit.models.losses import TableLoss, reconstruction_loss
from conftest import assert_close


def _bce_reference(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Stable BCE from logits, by hand: max(x, 0) - x*t + log(1 + exp(-|x|))."""
    return np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))


def test_mse_against_hand_computed():
    output = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    target = torch.tensor([[0.0, 2.0], [2.0, 1.0]])
    # squared errors: 1, 0, 4, 4 -> mean 2.25; rows 0.5 and 4
    assert float(reconstruction_loss("mse", output, target)) == pytest.approx(2.25)
    assert_close(reconstruction_loss("mse", output, target, per_row=True), [0.5, 4.0])


def test_bce_against_formula():
    rng = np.random.default_rng(0)
    logits, target = rng.normal(size=(6, 5)) * 3, rng.uniform(size=(6, 5))
    p = 1 / (1 + np.exp(-logits))
    expected = -(target * np.log(p) + (1 - target) * np.log(1 - p))
    got = reconstruction_loss("bce", torch.tensor(logits, dtype=torch.float64), torch.tensor(target), per_row=True)
    assert_close(got, expected.mean(axis=1), rtol=1e-10, atol=1e-12)


def test_bce_is_finite_for_saturated_outputs():
    logits = torch.tensor([[1e4, -1e4, 80.0, -80.0]])
    target = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    loss = reconstruction_loss("bce", logits, target, per_row=True)
    assert torch.isfinite(loss).all()
    assert_close(loss, _bce_reference(logits.double().numpy(), target.double().numpy()).mean(axis=1), rtol=1e-6)


def test_unknown_loss():
    with pytest.raises(InvalidParameterValue, match="Did you mean 'mse'"):
        reconstruction_loss("mes", torch.zeros(1, 1), torch.zeros(1, 1))


# ------------------------------------------------------------------------------------------ TableLoss
def test_table_loss_terms_against_numpy():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(6, 5)).astype(np.float32)
    rows = np.zeros((6, 5), dtype=np.float32)
    rows[:, 0] = rng.normal(size=6)
    rows[np.arange(6), 1 + rng.integers(0, 3, 6)] = 1.0  # a 3-category column
    rows[:, 4] = rng.normal(size=6)
    rows[1, 0] = np.nan  # a missing number
    rows[2, 1:4] = np.nan  # a missing category
    rows[3, 1:4] = 0.0  # a category not seen in training
    loss = TableLoss([(0, 1), (1, 4), (4, 5)], weights=[0.7], unseen_penalty=3.0)
    terms = loss.column_errors(torch.from_numpy(raw), torch.from_numpy(rows)).numpy()

    expected = np.empty((6, 3))
    expected[:, 0] = (raw[:, 0] - rows[:, 0]) ** 2
    expected[:, 2] = (raw[:, 4] - rows[:, 4]) ** 2
    expected[:, 1] = 0.7 * -(np.nan_to_num(rows[:, 1:4]) * log_softmax(raw[:, 1:4], axis=1)).sum(axis=1)
    expected[2, 1] = np.nan
    expected[3, 1] = 0.7 * 3.0
    np.testing.assert_allclose(terms, expected, rtol=1e-5, atol=1e-6)
    batch = float(loss(torch.from_numpy(raw), torch.from_numpy(rows)))
    assert batch == pytest.approx(np.nanmean(expected), rel=1e-5)
    np.testing.assert_allclose(loss.row_errors(torch.from_numpy(raw), torch.from_numpy(rows)).numpy(),
                               np.nanmean(expected, axis=1), rtol=1e-5)
    probabilities = loss.output(torch.from_numpy(raw)).numpy()
    np.testing.assert_allclose(probabilities[:, 1:4], np.exp(log_softmax(raw[:, 1:4], axis=1)), rtol=1e-5)
    np.testing.assert_array_equal(probabilities[:, [0, 4]], raw[:, [0, 4]])


def test_table_loss_gradients_skip_missing_cells():
    rows = torch.tensor([[1.0, float("nan")], [float("nan"), 2.0]])
    raw = torch.zeros(2, 2, requires_grad=True)
    TableLoss([(0, 1), (1, 2)], weights=[], unseen_penalty=1.0)(raw, rows).backward()
    # the mean over the two observed cells: d/draw (raw - x)^2 / 2 = (raw - x); missing cells get 0, never NaN
    np.testing.assert_array_equal(raw.grad.numpy(), [[-1.0, 0.0], [0.0, -2.0]])


def test_table_loss_training_input_hides_whole_columns_reproducibly():
    loss = TableLoss([(0, 1), (1, 4)], weights=[1.0], unseen_penalty=1.0, hide=0.5, seed=3)
    rows = torch.tensor([[2.0, 0.0, 1.0, 0.0]] * 400)
    hidden = loss.training_input(rows, training=True) == 0
    assert (hidden[:, 2] == hidden[:, 1:4].all(dim=1)).all()  # a category's dummies go together
    assert 0.4 < float(hidden[:, 0].float().mean()) < 0.6 and 0.4 < float(hidden[:, 2].float().mean()) < 0.6
    validation = loss.training_input(rows, training=False)
    assert torch.equal(validation, loss.training_input(rows, training=False))  # the same cells every pass
    loss.reseed(3)
    again = loss.training_input(rows, training=True)
    assert torch.equal(again == 0, hidden)
    assert torch.equal(TableLoss([(0, 1)], weights=[], unseen_penalty=1.0).training_input(rows[:, :1], training=True),
                       rows[:, :1])


def test_table_loss_fills_missing_cells_and_validates_on_the_hidden_ones():
    rng = np.random.default_rng(4)
    fill = np.array([0.5, 0.2, 0.3, 0.5, -1.0], dtype=np.float32)
    loss = TableLoss([(0, 1), (1, 4), (4, 5)], weights=[0.7], unseen_penalty=3.0, fill=fill, hide=0.3, seed=2)
    rows = np.zeros((300, 5), dtype=np.float32)
    rows[:, 0], rows[:, 4] = rng.normal(size=300), rng.normal(size=300)
    rows[np.arange(300), 1 + rng.integers(0, 3, 300)] = 1.0
    rows[::7, 1:4] = np.nan
    rows[::5, 0] = np.nan
    filled = loss.filled(torch.from_numpy(rows)).numpy()
    np.testing.assert_array_equal(filled, np.where(np.isnan(rows), fill, rows))
    # the validation input hides whole columns (their fill in place); the validation loss is the mean term
    # of the observed cells among them
    shown = loss.training_input(torch.from_numpy(rows), training=False).numpy()
    hidden = np.stack([shown[:, 0] == fill[0], (shown[:, 1:4] == fill[1:4]).all(axis=1), shown[:, 4] == fill[4]],
                      axis=1)  # (a missing cell shows its fill too: its term is NaN, out of the mean anyway)
    assert 0.2 < hidden.mean() < 0.4
    raw = torch.from_numpy(rng.normal(size=(300, 5)).astype(np.float32))
    terms = loss.column_errors(raw, torch.from_numpy(rows)).numpy()
    expected = np.nanmean(np.where(hidden, terms, np.nan))
    assert float(loss.validation_loss(raw, torch.from_numpy(rows))) == pytest.approx(expected, rel=1e-5)
    everything = TableLoss([(0, 1), (1, 4), (4, 5)], weights=[0.7], unseen_penalty=3.0)
    assert float(everything.validation_loss(raw, torch.from_numpy(rows))) == pytest.approx(np.nanmean(terms), rel=1e-5)
