"""ConvAutoencoder, the estimator's architecture="conv", and the learning-rate schedules deep models use."""

import math

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.datasets import load_digits

import aekit
from aekit.exceptions import InvalidParameterValue
from aekit.models import build_model
from aekit.models.conv import ConvAutoencoder
from aekit.training.config import TrainConfig, make_scheduler
from conftest import assert_close


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """scikit-learn's 8x8 digits as flat rows in [0, 1]."""
    return (load_digits().data / 16.0).astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 25, 30), (1, 112, 92), (2, 7, 5), (1, 1, 1)])
def test_any_image_size_round_trips_to_the_same_shape(shape):
    n_values = math.prod(shape)
    model = ConvAutoencoder(n_values, latent_dim=3, input_shape=shape, channels=(4, 8, 8))
    reconstruction, latent = model(torch.rand(2, n_values))
    assert reconstruction.shape == (2, n_values)
    assert latent.shape == (2, 3)


def _numpy_strided_conv(images: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Stride-2, padding-1 cross-correlation, written with numpy windows (the reference)."""
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = sliding_window_view(padded, weight.shape[-2:], axis=(2, 3))[:, :, ::2, ::2]
    return np.einsum("nchwij,ocij->nohw", windows, weight) + bias[None, :, None, None]


def test_first_convolution_matches_numpy_reference():
    model = ConvAutoencoder(2 * 9 * 6, latent_dim=2, input_shape=(2, 9, 6), channels=(3,))
    x = torch.rand(4, 2 * 9 * 6)
    conv = model.encoder[1]
    actual = conv(model.encoder[0](x))  # unflatten, then the strided convolution
    expected = _numpy_strided_conv(
        x.numpy().reshape(4, 2, 9, 6), conv.weight.detach().numpy(), conv.bias.detach().numpy()
    )
    assert actual.shape == (4, 3, 5, 3)
    assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_each_transposed_convolution_is_the_adjoint_of_a_convolution():
    # <conv(x), y> == <conv_transpose(y), x> for shared weights and no bias: the defining identity
    model = ConvAutoencoder(1 * 11 * 8, latent_dim=2, input_shape=(1, 11, 8), channels=(3, 5))
    for layer in (m for m in model.decoder if isinstance(m, torch.nn.ConvTranspose2d)):
        fan_in, fan_out = layer.in_channels, layer.out_channels
        out_h, out_w = 6, 4  # any output size; output_padding picks it among 2*in-1 and 2*in
        x = torch.rand(2, fan_out, out_h, out_w, dtype=torch.float64)
        weight = layer.weight.detach().double()
        y = torch.rand(2, fan_in, 3, 2, dtype=torch.float64)
        forward = torch.nn.functional.conv2d(x, weight, stride=2, padding=1)
        backward = torch.nn.functional.conv_transpose2d(y, weight, stride=2, padding=1, output_padding=(1, 1))
        assert_close((forward * y).sum(), (backward * x).sum(), rtol=1e-10, atol=1e-10)


def test_config_round_trips_through_build_model():
    model = ConvAutoencoder(3 * 10 * 13, latent_dim=4, input_shape=(3, 10, 13), channels=(5, 7), activation="gelu")
    rebuilt = build_model(**model.config())
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(3, 3 * 10 * 13)
    assert rebuilt.config() == model.config()
    assert torch.equal(rebuilt(x)[0], model(x)[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_shape": (1, 8, 9)}, r"input_shape=\(1, 8, 9\) holds 72 values per image, but the rows have 64"),
        ({"input_shape": (8, 8)}, r"'input_shape' parameter must be a sequence of 3 ints >= 1. Got \(8, 8\)"),
        ({"input_shape": (1, 8, 8), "channels": (0,)}, r"'channels' parameter must be a sequence of ints >= 1"),
        ({"input_shape": (1, 8, 8), "activation": "rleu"}, r"Did you mean 'relu'\?"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, message):
    with pytest.raises(InvalidParameterValue, match=message):
        ConvAutoencoder(64, 2, **kwargs)


def test_estimator_conv_needs_input_shape(digits):
    with pytest.raises(InvalidParameterValue, match=r"architecture='conv' needs input_shape=\(channels, height"):
        aekit.Autoencoder(2, architecture="conv", epochs=1).fit(digits)


def test_estimator_conv_trains_saves_and_loads(digits, tmp_path):
    ae = aekit.Autoencoder(
        8, architecture="conv", input_shape=(1, 8, 8), hidden_dims=(8, 16), scaler=None, epochs=15, lr=3e-3,
        random_state=0,
    ).fit(digits)
    assert isinstance(ae.module_, ConvAutoencoder) and ae.loss_ == "bce"
    assert ae.history_["train_loss"][-1] < 0.8 * ae.history_["train_loss"][0]
    ae.save(tmp_path / "model")
    loaded = aekit.load(tmp_path / "model")
    assert loaded.get_params()["input_shape"] == [1, 8, 8]
    for name, tensor in ae.module_.state_dict().items():
        assert torch.equal(tensor, loaded.module_.state_dict()[name])
    assert np.array_equal(loaded.transform(digits), ae.transform(digits))


def test_seeded_conv_fits_are_identical(digits):
    params = dict(architecture="conv", input_shape=(1, 8, 8), hidden_dims=(4,), epochs=2, random_state=3)
    first = aekit.Autoencoder(3, **params).fit(digits[:300]).transform(digits[:50])
    second = aekit.Autoencoder(3, **params).fit(digits[:300]).transform(digits[:50])
    assert np.array_equal(first, second)


def test_cosine_schedule_follows_the_closed_form():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = make_scheduler(optimizer, TrainConfig(epochs=10, lr=0.1, lr_schedule="cosine"))
    rates = []
    for _ in range(10):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    expected = [0.1 * (1 + math.cos(math.pi * epoch / 10)) / 2 for epoch in range(1, 11)]
    assert_close(rates, expected, rtol=1e-9, atol=1e-12)


def test_plateau_schedule_halves_after_patience_without_improvement():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = make_scheduler(optimizer, TrainConfig(lr=0.1, patience=6, lr_schedule="plateau"))  # waits 2
    rates = []
    for loss in (1.0, 0.5, 0.5, 0.5, 0.5):
        scheduler.step(loss)
        rates.append(optimizer.param_groups[0]["lr"])
    assert_close(rates, [0.1, 0.1, 0.1, 0.1, 0.05], rtol=1e-12, atol=0)


def test_unknown_schedule_is_refused_by_the_estimator(digits):
    with pytest.raises(InvalidParameterValue, match=r"'lr_schedule' parameter of Autoencoder must be a str among"):
        aekit.Autoencoder(2, lr_schedule="cosin", epochs=1).fit(digits)
