"""aekit.models.layers.Linear: nn.Linear with oneDNN products, checked against a float64 reference; the
kernel rule and its override."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aekit import hardware
from aekit.exceptions import EnvironmentSettingError
from aekit.models import layers
from aekit.models.layers import KERNEL_VARIABLE, Linear, onednn_available
from conftest import assert_close

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="oneDNN's linear operator is not available here")


@pytest.fixture
def onednn(monkeypatch):
    """oneDNN wherever it can run, without timing."""
    monkeypatch.setenv(KERNEL_VARIABLE, "onednn")


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
def test_onednn_forward_and_gradients_match_a_float64_reference(bias, input_grad, onednn):
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
def test_other_inputs_go_through_nn_linear_unchanged(make_input, why, onednn):
    layer = Linear(784, 500).to(make_input().dtype)
    x = make_input()
    assert not layer.uses_onednn(x), why
    out = layer(x)
    assert torch.equal(out, F.linear(x, layer.weight, layer.bias))
    out.sum().backward()  # and its gradients, also over zero rows
    assert layer.weight.grad.shape == layer.weight.shape


def test_autocast_and_disabled_onednn_use_nn_linear(onednn):
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
def test_training_through_onednn_is_bitwise_reproducible(onednn):
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


@pytest.mark.parametrize("how", ["AEKIT_LINEAR_KERNEL=default", "operator unavailable"])
def test_the_fallback_gives_the_results_of_onednn_up_to_rounding(how, monkeypatch):
    torch.manual_seed(0)
    layer = Linear(300, 200)
    x = torch.randn(64, 300, requires_grad=True)
    grad = torch.randn(64, 200)
    monkeypatch.setenv(KERNEL_VARIABLE, "onednn")
    with_onednn = layer(x)
    with_onednn.backward(grad)
    onednn_grads = x.grad.clone(), layer.weight.grad.clone()
    x.grad, layer.weight.grad, layer.bias.grad = None, None, None
    if how == "operator unavailable":  # as on an ARM processor or a PyTorch built without oneDNN
        monkeypatch.setattr(layers, "_AVAILABLE", False)
    else:
        monkeypatch.setenv(KERNEL_VARIABLE, "default")
    assert not layer.uses_onednn(x)
    fallback = layer(x)
    assert torch.equal(fallback, F.linear(x, layer.weight, layer.bias))  # the fallback is F.linear itself
    fallback.backward(grad)
    # float32 products of length 300 (forward), 200 (input gradient), 64 (weight gradient)
    assert_close(fallback, with_onednn, rtol=1e-5, atol=1e-5, what="output")
    assert_close(x.grad, onednn_grads[0], rtol=1e-5, atol=1e-5, what="input gradient")
    assert_close(layer.weight.grad, onednn_grads[1], rtol=1e-5, atol=1e-5, what="weight gradient")


@pytest.mark.parametrize(("vendor", "isa", "expected"), [
    ("AuthenticAMD", "AVX512", "onednn"),  # MKL keeps to AVX2 on AMD: oneDNN's AVX-512 kernels
    ("AuthenticAMD", "AVX2", "default"),
    ("GenuineIntel", "AVX512", "default"),
])
def test_auto_is_a_rule_of_the_processor_and_the_product_size(vendor, isa, expected, monkeypatch):
    monkeypatch.delenv(KERNEL_VARIABLE, raising=False)
    monkeypatch.setattr(layers, "_AVAILABLE", True)
    monkeypatch.setattr(hardware, "cpu_vendor", lambda: vendor)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: isa)
    layers.onednn_preferred.cache_clear()
    try:
        assert layers.choose(784, 500, 256) == expected
        assert layers.choose(64, 10, 256) == "default"  # 0.3 MFLOP: under MIN_FLOPS on every processor
        monkeypatch.setenv(KERNEL_VARIABLE, "onednn")  # the override wins over the rule
        assert layers.choose(784, 500, 256) == "onednn"
    finally:
        layers.onednn_preferred.cache_clear()


def test_choosing_a_kernel_times_nothing_and_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(KERNEL_VARIABLE, raising=False)
    layer = Linear(784, 500)
    layer(torch.randn(256, 784, requires_grad=True)).sum().backward()
    assert list(tmp_path.rglob("*")) == []
    assert not hasattr(layers, "timings") and not hasattr(layers, "cache_path")


def test_an_unknown_kernel_name_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv(KERNEL_VARIABLE, "onedn")
    with pytest.raises(EnvironmentSettingError, match=r"AEKIT_LINEAR_KERNEL environment variable must be one of "
                       r"\('auto', 'onednn', 'default'\). Got 'onedn' instead. Did you mean 'onednn'\?") as caught:
        Linear(784, 500)(torch.randn(4, 784))
    assert (caught.value.param, caught.value.value) == (None, "onedn")  # a setting of the machine, not a parameter


@needs_onednn
def test_tracing_and_onnx_export_see_f_linear(onednn):
    layer = Linear(784, 500)
    x = torch.randn(4, 784)
    assert layer.uses_onednn(x)
    traced = torch.jit.trace(layer, x)
    assert "mkldnn" not in str(traced.graph) and "linear" in str(traced.graph)
    assert_close(traced(x), layer(x), rtol=1e-5, atol=1e-5)
