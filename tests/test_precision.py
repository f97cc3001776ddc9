"""The bf16 (autocast) path: numerically close to fp32 within bf16's precision, and finite; the
"auto" precision rule and the warning for emulated bf16; the estimator's n_jobs."""

import json
import math

import numpy as np
import pytest
import torch

import aekit.training.loop
import aekit.training.precision
from aekit import Autoencoder, hardware, load
from aekit.exceptions import InvalidParameterValue
from aekit.models.mlp import MLPAutoencoder
from aekit.training.config import TrainConfig
from aekit.training.loop import fit_module
from aekit.training.precision import BF16_MIN_WEIGHTS, autocast, resolve_precision

# bf16 keeps 8 significant bits: one rounding is a relative error of at most 2**-9 ~ 0.2%; a forward
# pass through a few layers, with sums accumulated in float32, stays within a few percent.
BF16_RTOL = 3e-2


def mse(module, batch):
    return ((module(batch)[0] - batch) ** 2).mean()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(400, 3))
    return np.tanh(codes @ rng.normal(size=(3, 12))).astype(np.float32)


def _numpy_forward(module: MLPAutoencoder, X: np.ndarray) -> np.ndarray:
    """The MLP's forward pass in float64 numpy: the independent reference."""
    out = X.astype(np.float64)
    for part in (module.encoder, module.decoder):
        for layer in part:
            if isinstance(layer, torch.nn.Linear):
                out = out @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()
            else:
                out = np.maximum(out, 0.0)
    return out


def test_autocast_runs_matrix_products_in_bf16_and_fp32_is_untouched():
    a, b = torch.ones(2, 3), torch.ones(3, 1)
    with autocast(torch.device("cpu"), "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert (a @ b).dtype == torch.float32


def test_unknown_precision_names_the_value_and_the_choices():
    with pytest.raises(InvalidParameterValue, match=r"must be one of \('auto', 'fp32', 'bf16'\). Got 'bf61' instead"):
        autocast(torch.device("cpu"), "bf61")


def test_bf16_forward_matches_a_float64_numpy_reference_within_bf16_precision(data):
    torch.manual_seed(0)
    module = MLPAutoencoder(12, 3, hidden_dims=(16,)).eval()
    reference = _numpy_forward(module, data)
    with torch.no_grad(), autocast(torch.device("cpu"), "bf16"):
        output = module(torch.from_numpy(data))[0].float().numpy()
    scale = np.abs(reference).max()
    np.testing.assert_allclose(output, reference, rtol=BF16_RTOL, atol=BF16_RTOL * scale)
    # and it is really bf16, not fp32 by accident: fp32 would agree to ~1e-6
    assert np.abs(output - reference).max() > 1e-5 * scale


def test_bf16_training_gives_finite_losses_close_to_fp32(data):
    X = torch.from_numpy(data)
    histories = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        module = MLPAutoencoder(12, 3, hidden_dims=(16,))
        config = TrainConfig(epochs=15, batch_size=32, lr=3e-3, early_stopping=False, precision=precision)
        histories[precision] = fit_module(module, mse, X[:320], X[320:], config)
    bf16, fp32 = histories["bf16"], histories["fp32"]
    assert all(math.isfinite(v) for v in bf16.train_loss + bf16.val_loss)
    assert bf16.val_loss[-1] < 0.5 * bf16.val_loss[0]  # it learns
    # same seed, same batches: the two runs differ only by bf16 rounding, so the final losses agree
    assert bf16.val_loss[-1] == pytest.approx(fp32.val_loss[-1], rel=0.1)


def test_estimator_precision_is_used_for_inference_and_saved(data, tmp_path):
    fitted = {
        p: Autoencoder(3, hidden_dims=(16,), epochs=10, random_state=0, precision=p).fit(data) for p in ("fp32", "bf16")
    }
    Z = fitted["bf16"].transform(data)
    assert Z.dtype == np.float32 and np.isfinite(Z).all()
    errors = {p: float(model.reconstruction_error(data).mean()) for p, model in fitted.items()}
    assert errors["bf16"] == pytest.approx(errors["fp32"], rel=0.1)
    # inference of the bf16 model runs in bf16: not bitwise the fp32 forward of the same weights
    as_fp32 = fitted["bf16"].set_params(precision="fp32").transform(data)
    np.testing.assert_allclose(as_fp32, Z, rtol=BF16_RTOL, atol=BF16_RTOL * np.abs(as_fp32).max())
    assert not np.array_equal(as_fp32, Z)
    fitted["bf16"].set_params(precision="bf16").save(tmp_path / "model")
    loaded = load(tmp_path / "model")
    assert loaded.precision == "bf16"
    np.testing.assert_array_equal(loaded.transform(data), Z)


def test_estimator_rejects_an_unknown_precision(data):
    with pytest.raises(InvalidParameterValue, match="The 'precision' parameter of Autoencoder must be a str among"):
        Autoencoder(precision="fp16").fit(data)


CPU = torch.device("cpu")


@pytest.mark.parametrize("native", [True, False])
def test_auto_takes_bf16_only_for_large_layers_on_a_device_that_computes_it(native, monkeypatch):
    monkeypatch.setattr(hardware, "bf16_native", lambda device: native)
    large = MLPAutoencoder(BF16_MIN_WEIGHTS // 256, 8, hidden_dims=(256,))  # a weight matrix of BF16_MIN_WEIGHTS
    small = MLPAutoencoder(BF16_MIN_WEIGHTS // 256 - 1, 8, hidden_dims=(256,))
    assert resolve_precision("auto", large, CPU) == ("bf16" if native else "fp32")
    assert resolve_precision("auto", small, CPU) == "fp32"
    assert resolve_precision("fp32", large, CPU) == "fp32"
    # on a GPU the rule keeps fp32: this library's models are launch-bound there (docs/performance.md)
    assert resolve_precision("auto", large, torch.device("cuda")) == "fp32"


def test_bf16_where_it_is_emulated_warns(monkeypatch):
    monkeypatch.setattr(hardware, "bf16_native", lambda device: False)
    monkeypatch.setattr(aekit.training.precision, "_warned_emulated_bf16", set())
    module = MLPAutoencoder(64, 4, hidden_dims=(32,))
    with pytest.warns(UserWarning, match=r"without native bfloat16 .* emulated here, many times slower than fp32"):
        assert resolve_precision("bf16", module, CPU) == "bf16"  # still what was asked for


def test_the_estimator_defaults_to_auto_and_says_what_it_used(data):
    model = Autoencoder(3, hidden_dims=(16,), epochs=2, random_state=0).fit(data)
    assert model.precision == "auto"
    assert model.precision_ == "fp32"  # 12 x 16 weights: far below the bf16 rule's size
    reference = Autoencoder(3, hidden_dims=(16,), epochs=2, random_state=0, precision="fp32").fit(data)
    np.testing.assert_array_equal(model.transform(data), reference.transform(data))


def test_a_loaded_model_runs_in_the_precision_it_was_fitted_in_whatever_this_machine_would_pick(
        data, tmp_path, monkeypatch):
    # the fit's machine computes bf16 natively and its rule picks bf16 for layers this wide
    monkeypatch.setattr(hardware, "bf16_native", lambda device: True)
    monkeypatch.setattr(aekit.training.precision, "BF16_MIN_WEIGHTS", 1)
    model = Autoencoder(3, hidden_dims=(16,), epochs=2, random_state=0).fit(data)
    assert model.precision == "auto" and model.precision_ == "bf16"
    Z = model.transform(data)
    model.save(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["fitted"]["precision"] == "bf16"
    # the loading machine's rule would pick fp32: the model still runs in bf16, as its threshold was computed
    monkeypatch.setattr(hardware, "bf16_native", lambda device: False)
    assert resolve_precision("auto", model.module_, CPU) == "fp32"
    loaded = load(tmp_path / "model")
    assert loaded.precision_ == "bf16"
    np.testing.assert_array_equal(loaded.transform(data), Z)
    np.testing.assert_array_equal(loaded.outlier_scores(data), model.outlier_scores(data))
    as_fp32 = loaded.set_params(precision="fp32").transform(data)  # an explicit precision is used as set
    assert not np.array_equal(as_fp32, Z)


def threads_of_the_training_steps(monkeypatch) -> list[int]:
    """A list that gets torch's thread count at each call of the trainer (the training steps' threads)."""
    seen: list[int] = []
    real_fit_module = aekit.training.loop.fit_module

    def recording_fit_module(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_fit_module(*args, **kwargs)

    monkeypatch.setattr(aekit.training.loop, "fit_module", recording_fit_module)
    return seen


@pytest.mark.parametrize("n_jobs", [1, -1, None])
def test_n_jobs_sets_the_threads_of_fit_and_transform_and_restores_them(n_jobs, data, monkeypatch):
    seen = threads_of_the_training_steps(monkeypatch)
    monkeypatch.setattr(hardware, "usable_cores", lambda: 1)  # as under `taskset -c 0`
    before = torch.get_num_threads()
    model = Autoencoder(3, hidden_dims=(16,), epochs=1, random_state=0, n_jobs=n_jobs).fit(data)
    assert seen == [1]  # 1, all (one) usable core, or PyTorch's count capped at the usable cores
    assert torch.get_num_threads() == before
    model.transform(data)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("n_jobs", [1, None])
def test_n_jobs_caps_the_blas_and_openmp_pools_that_fit_uses_beside_torch(n_jobs, data, monkeypatch):
    from threadpoolctl import threadpool_info

    pools: list[list[int]] = []
    real = aekit.detect.fit_latent_modes  # numpy's BLAS and scikit-learn's OpenMP, in the score's modes

    def recording(*args, **kwargs):
        pools.append([pool["num_threads"] for pool in threadpool_info()])
        return real(*args, **kwargs)

    monkeypatch.setattr(aekit.detect, "fit_latent_modes", recording)
    before = [pool["num_threads"] for pool in threadpool_info()]
    Autoencoder(3, hidden_dims=(16,), epochs=1, random_state=0, n_jobs=n_jobs, device="cpu").fit(data)
    assert len(pools) == 1
    assert pools[0] == ([1] * len(before) if n_jobs == 1 else before)
    assert [pool["num_threads"] for pool in threadpool_info()] == before  # restored


def test_n_jobs_zero_is_refused(data):
    with pytest.raises(InvalidParameterValue, match="The 'n_jobs' parameter of Autoencoder must be"):
        Autoencoder(n_jobs=0).fit(data)


def test_a_step_below_the_floor_trains_on_one_thread_and_n_jobs_overrides_it(data, monkeypatch):
    import aekit.training.precision as precision

    small = MLPAutoencoder(12, 3, hidden_dims=(16,))
    assert 6 * 256 * sum(p.numel() for p in small.parameters() if p.dim() >= 2) < precision.THREADS_MIN_FLOPS
    seen = threads_of_the_training_steps(monkeypatch)
    monkeypatch.setattr(hardware, "usable_cores", lambda: 2)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cpu = {"hidden_dims": (16,), "epochs": 2, "random_state": 0, "device": "cpu"}  # threads are a CPU's
        chosen = Autoencoder(3, **cpu).fit(data)
        assert torch.get_num_threads() == 2  # restored after the steps
        one = Autoencoder(3, **cpu, n_jobs=1).fit(data)
        two = Autoencoder(3, **cpu, n_jobs=2).fit(data)
    finally:
        torch.set_num_threads(previous)
    assert seen == [1, 1, 2]  # the default's steps on one thread; n_jobs is what it says
    assert [model.history_["training_threads"] for model in (chosen, one, two)] == [1, 1, 2]  # recorded
    # the same threads, the same products: the default's weights are n_jobs=1's, bit for bit
    for name, value in chosen.module_.state_dict().items():
        assert torch.equal(value, one.module_.state_dict()[name]), name
    assert two.n_iter_ == 2


def test_a_step_above_the_floor_or_a_convolution_trains_on_every_thread():
    from aekit.models.conv import ConvAutoencoder
    from aekit.training.precision import THREADS_MIN_FLOPS, training_threads

    large = MLPAutoencoder(784, 30, hidden_dims=(1000, 500, 250))
    assert 6 * 256 * sum(p.numel() for p in large.parameters() if p.dim() >= 2) >= THREADS_MIN_FLOPS
    conv = ConvAutoencoder(64, 2, (1, 8, 8), channels=(4,))  # little work, but each weight is reused at every position
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert training_threads(large, CPU, 256) == training_threads(conv, CPU, 256) == 2
        assert training_threads(large, CPU, 1) == 1  # one row: below the floor
    finally:
        torch.set_num_threads(previous)
