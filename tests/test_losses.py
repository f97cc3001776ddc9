import numpy as np
import pytest
import torch

from aekit.exceptions import InvalidParameterValue
from aekit.models.losses import reconstruction_loss
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
