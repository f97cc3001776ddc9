"""aekit.layers.Linear: nn.Linear with oneDNN products, checked against a float64 reference."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aekit.layers import ONEDNN_MIN_WEIGHTS, Linear, onednn_available
from conftest import assert_close

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="oneDNN's linear operator is not available here")


def _reference(layer: nn.Linear, x: torch.Tensor, grad: torch.Tensor):
    """Output and gradients in float64 through plain autograd: the independent reference."""
    x64 = x.detach().double().requires_grad_(x.requires_grad)
    weight = layer.weight.detach().double().requires_grad_()
    bias = None if layer.bias is None else layer.bias.detach().double().requires_grad_()
    out = F.linear(x64, weight, bias)
    out.backward(grad.double())
    return out, x64.grad, weight.grad, None if bias is None else bias.grad


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("input_grad", [True, False])  # the first layer of a model needs no input gradient
def test_onednn_forward_and_gradients_match_a_float64_reference(bias, input_grad):
    torch.manual_seed(0)
    layer = Linear(784, 500, bias=bias)
    x = torch.randn(96, 784, requires_grad=input_grad)
    grad = torch.randn(96, 500)
    assert layer.uses_onednn(x)
    out = layer(x)
    out.backward(grad)
    want_out, want_x, want_weight, want_bias = _reference(layer, x, grad)
    # float32 products of length 784 (forward), 500 (input gradient) and 96 (weight gradient)
    assert_close(out, want_out, rtol=1e-4, atol=1e-4, what="output")
    assert_close(layer.weight.grad, want_weight, rtol=1e-4, atol=1e-4, what="weight gradient")
    if bias:
        assert_close(layer.bias.grad, want_bias, rtol=1e-4, atol=1e-4, what="bias gradient")
    if input_grad:
        assert_close(x.grad, want_x, rtol=1e-4, atol=1e-4, what="input gradient")
    else:
        assert x.grad is None
    with torch.no_grad():  # inference: the operator without the autograd node, the same numbers
        assert torch.equal(layer(x), out.detach())


@pytest.mark.parametrize(
    ("make_input", "why"),
    [
        (lambda: torch.randn(8, 784, dtype=torch.float64), "float64"),
        (lambda: torch.randn(2, 8, 784), "3-d input"),
        (lambda: torch.randn(0, 784, requires_grad=True), "no rows"),
    ],
)
def test_other_inputs_go_through_nn_linear_unchanged(make_input, why):
    layer = Linear(784, 500).to(make_input().dtype)
    x = make_input()
    assert not layer.uses_onednn(x), why
    out = layer(x)
    assert torch.equal(out, F.linear(x, layer.weight, layer.bias))
    out.sum().backward()  # and its gradients, also over zero rows
    assert layer.weight.grad.shape == layer.weight.shape


def test_small_layers_autocast_and_disabled_onednn_use_nn_linear():
    small = Linear(128, 64)
    assert 128 * 64 < ONEDNN_MIN_WEIGHTS and not small.uses_onednn(torch.randn(4, 128))
    layer, x = Linear(784, 500), torch.randn(8, 784)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not layer.uses_onednn(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's note about TF32 on Intel GPUs
        with torch.backends.mkldnn.flags(enabled=False):
            assert not layer.uses_onednn(x)
            assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))


def test_same_parameters_and_state_dict_as_nn_linear():
    layer = Linear(784, 500)
    plain = nn.Linear(784, 500)
    assert isinstance(layer, nn.Linear)
    assert layer.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(8, 784)
    assert_close(layer(x), plain(x), rtol=1e-5, atol=1e-5, what="oneDNN vs MKL products")


@needs_onednn
def test_training_through_onednn_is_bitwise_reproducible():
    def train() -> dict:
        torch.manual_seed(0)
        model = nn.Sequential(Linear(784, 100), nn.ReLU(), Linear(100, 784))
        assert model[0].uses_onednn(torch.randn(2, 784)) and model[2].uses_onednn(torch.randn(2, 100))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        data = torch.randn(64, 784, generator=torch.Generator().manual_seed(1))
        for start in range(0, 64, 16):
            batch = data[start : start + 16]
            optimizer.zero_grad()
            F.mse_loss(model(batch), batch).backward()
            optimizer.step()
        return {name: value.clone() for name, value in model.state_dict().items()}

    first, second = train(), train()
    assert all(torch.equal(first[name], second[name]) for name in first)
