"""aekit.models.layers.Linear: nn.Linear with oneDNN products, checked against a float64 reference; the
measured kernel choice, its cache and its override."""

import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aekit import hardware
from aekit.exceptions import InvalidParameterValue
from aekit.models import layers
from aekit.models.layers import KERNEL_VARIABLE, Linear, onednn_available
from conftest import assert_close

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="oneDNN's linear operator is not available here")


@pytest.fixture
def onednn(monkeypatch):
    """oneDNN wherever it can run, without timing."""
    monkeypatch.setenv(KERNEL_VARIABLE, "onednn")


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    """An empty kernel cache and no choices in this process (and the same again afterwards)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(KERNEL_VARIABLE, raising=False)
    layers.reset()
    yield tmp_path
    layers.reset()


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


@needs_onednn
def test_auto_measures_once_keeps_the_choice_and_the_next_process_reads_it(fresh_cache, monkeypatch):
    measure = layers._measure  # a real timing, taken as steady (a busy one is timed again: see below)
    monkeypatch.setattr(layers, "_measure", lambda *args: {**measure(*args), "steady": True})
    kernel = layers.choose(784, 500, 200, training=True)  # 200 rows: the 256-row bucket
    key = f"784x500/rows256/train/threads{torch.get_num_threads()}"
    assert layers.choices()[key]["kernel"] == kernel in ("onednn", "default")
    assert layers.choices()[key]["onednn_speedup"] > 0
    saved = json.loads(layers.cache_path().read_text())
    assert layers.cache_path().parent == fresh_cache / "aekit"
    assert saved["machines"][hardware.fingerprint()][key]["kernel"] == kernel

    def no_timing(*args):
        raise AssertionError("measured again")

    monkeypatch.setattr(layers, "_measure", no_timing)
    assert layers.choose(784, 500, 256, training=True) == kernel  # this process: kept
    layers.reset()  # as a new process: read from the cache file
    assert layers.choose(784, 500, 129, training=True) == kernel
    with pytest.raises(AssertionError, match="measured again"):  # another bucket is a new measurement
        layers.choose(784, 500, 64, training=True)


@needs_onednn
def test_a_busy_timing_in_the_cache_is_timed_again_until_a_steady_one_replaces_it(fresh_cache, monkeypatch):
    key = f"784x500/rows256/train/threads{torch.get_num_threads()}"

    def new_process_timing(kernel, steady):
        monkeypatch.setattr(layers, "_measure", lambda *args: {"kernel": kernel, "onednn_speedup": 1.5 if kernel ==
                                                               "onednn" else 0.5, "steady": steady})
        layers.reset()
        chosen = layers.choose(784, 500, 256, training=True)
        return chosen, json.loads(layers.cache_path().read_text())["machines"][hardware.fingerprint()][key]

    assert new_process_timing("onednn", steady=False) == ("onednn", {"kernel": "onednn", "onednn_speedup": 1.5,
                                                                     "steady": False})
    assert new_process_timing("default", steady=False)[0] == "onednn"  # busy again: the file's choice holds
    assert new_process_timing("default", steady=True) == ("default", {"kernel": "default", "onednn_speedup": 0.5,
                                                                      "steady": True})
    monkeypatch.setattr(layers, "_measure", lambda *args: pytest.fail("a steady choice was timed again"))
    layers.reset()
    assert layers.choose(784, 500, 256, training=True) == "default"


@needs_onednn
def test_a_cached_choice_is_what_the_layer_uses(fresh_cache):
    key = f"784x500/rows8/infer/threads{torch.get_num_threads()}"
    for kernel in ("onednn", "default"):
        layers.reset()
        layers.cache_path().parent.mkdir(parents=True, exist_ok=True)
        layers.cache_path().write_text(json.dumps(
            {"format": 1, "machines": {hardware.fingerprint(): {key: {"kernel": kernel}}}}))
        with torch.no_grad():
            assert Linear(784, 500).uses_onednn(torch.randn(8, 784)) == (kernel == "onednn")


@needs_onednn
@pytest.mark.parametrize("content", ["{not json", '{"format": 99, "machines": {}}', '{"format": 1, "machines": []}',
                                     '{"format": 1, "machines": {"FP": {"K": {"kernel": "os.system"}}}}'])
def test_a_broken_or_foreign_cache_file_is_ignored_and_replaced(fresh_cache, content):
    layers.cache_path().parent.mkdir(parents=True)
    layers.cache_path().write_text(content.replace("FP", hardware.fingerprint()))
    assert layers.choose(784, 500, 16, training=False) in ("onednn", "default")
    assert json.loads(layers.cache_path().read_text())["format"] == 1


def test_small_products_are_left_to_f_linear_without_timing(fresh_cache, monkeypatch):
    monkeypatch.setattr(layers, "timings", lambda *args: pytest.fail("timed a 64x10 layer"))
    assert layers.choose(64, 10, 256, training=True) == "default"
    assert all(choice["onednn_speedup"] is None for choice in layers.choices().values())


def test_an_unknown_kernel_name_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv(KERNEL_VARIABLE, "onedn")
    with pytest.raises(InvalidParameterValue, match=r"AEKIT_LINEAR_KERNEL environment variable must be one of "
                       r"\('auto', 'onednn', 'default'\). Got 'onedn' instead. Did you mean 'onednn'\?"):
        Linear(784, 500)(torch.randn(4, 784))


@needs_onednn
def test_tracing_and_onnx_export_see_f_linear(onednn):
    layer = Linear(784, 500)
    x = torch.randn(4, 784)
    assert layer.uses_onednn(x)
    traced = torch.jit.trace(layer, x)
    assert "mkldnn" not in str(traced.graph) and "linear" in str(traced.graph)
    assert_close(traced(x), layer(x), rtol=1e-5, atol=1e-5)


@needs_onednn
def test_verbose_training_says_which_kernel_each_layer_got(fresh_cache, capsys):
    from aekit.models.mlp import MLPAutoencoder
    from aekit.training.loop import TrainConfig, fit_module

    torch.manual_seed(0)
    model = MLPAutoencoder(300, 20, hidden_dims=(200,))
    fit_module(model, lambda m, b: F.mse_loss(m(b)[0], b), torch.randn(64, 300), None,
               TrainConfig(epochs=1, batch_size=64, verbose=True))
    err = capsys.readouterr().err
    assert "linear-layer kernels (AEKIT_LINEAR_KERNEL=auto, precision fp32):" in err
    timed = {key: choice for key, choice in layers.choices().items() if choice["onednn_speedup"] is not None}
    assert timed  # 300x200 at 64 rows is large enough to time
    for key, choice in timed.items():  # the training products of this model's layers
        assert (f"  {key}: {choice['kernel']} (" in err) == ("/train/" in key)
