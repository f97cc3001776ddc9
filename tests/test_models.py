import numpy as np
import pytest
import torch
from torch import nn

from aekit.exceptions import InvalidParameterValue
from aekit.models import build_model
from aekit.models.mlp import ACTIVATIONS, LinearAutoencoder, MLPAutoencoder
from conftest import assert_close


def _layout(sequential: nn.Sequential) -> list:
    return [
        (type(layer).__name__, layer.in_features, layer.out_features)
        if isinstance(layer, nn.Linear)
        else type(layer).__name__
        for layer in sequential
    ]


def test_seed_example_architecture_and_shapes():
    model = MLPAutoencoder(input_dim=128, latent_dim=10)
    assert _layout(model.encoder) == [("Linear", 128, 64), "ReLU", ("Linear", 64, 10)]
    assert _layout(model.decoder) == [("Linear", 10, 64), "ReLU", ("Linear", 64, 128)]
    reconstruction, latent = model(torch.randn(8, 128))
    assert reconstruction.shape == torch.Size([8, 128])
    assert latent.shape == torch.Size([8, 10])


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_is_used_between_hidden_layers(activation):
    model = MLPAutoencoder(6, 2, hidden_dims=(5, 4), activation=activation)
    expected = type(ACTIVATIONS[activation]()).__name__
    assert _layout(model.encoder) == [("Linear", 6, 5), expected, ("Linear", 5, 4), expected, ("Linear", 4, 2)]
    assert _layout(model.decoder) == [("Linear", 2, 4), expected, ("Linear", 4, 5), expected, ("Linear", 5, 6)]


def test_unknown_activation_suggests_the_closest():
    with pytest.raises(InvalidParameterValue, match=r"Got 'rleu' instead\. Did you mean 'relu'\?"):
        MLPAutoencoder(4, 2, activation="rleu")


def test_linear_autoencoder_has_no_activation_and_matches_numpy():
    model = LinearAutoencoder(5, 2)
    assert _layout(model.encoder) == [("Linear", 5, 2)]
    assert _layout(model.decoder) == [("Linear", 2, 5)]
    x = torch.randn(7, 5)
    reconstruction, latent = model(x)
    W1, b1 = model.encoder[0].weight.detach().numpy(), model.encoder[0].bias.detach().numpy()
    W2, b2 = model.decoder[0].weight.detach().numpy(), model.decoder[0].bias.detach().numpy()
    z = x.numpy() @ W1.T + b1
    assert_close(latent, z, rtol=1e-5, atol=1e-6)
    assert_close(reconstruction, z @ W2.T + b2, rtol=1e-5, atol=1e-6)


def test_mlp_forward_matches_numpy_reference():
    model = MLPAutoencoder(4, 2, hidden_dims=(3,), activation="tanh")
    x = torch.randn(5, 4)
    weights = [
        (layer.weight.detach().numpy(), layer.bias.detach().numpy())
        for layer in [*model.encoder, *model.decoder]
        if isinstance(layer, nn.Linear)
    ]
    h = np.tanh(x.numpy() @ weights[0][0].T + weights[0][1])
    z = h @ weights[1][0].T + weights[1][1]
    h = np.tanh(z @ weights[2][0].T + weights[2][1])
    out = h @ weights[3][0].T + weights[3][1]
    reconstruction, latent = model(x)
    assert_close(latent, z, rtol=1e-5, atol=1e-6)
    assert_close(reconstruction, out, rtol=1e-5, atol=1e-6)


def test_sigmoid_output_and_logits():
    model = MLPAutoencoder(6, 2, output_activation="sigmoid")
    x = torch.randn(4, 6)
    reconstruction, latent = model(x)
    logits, _ = model(x, logits=True)
    assert_close(reconstruction, torch.sigmoid(logits), rtol=1e-6, atol=1e-7)
    assert_close(model.decode(latent), reconstruction, rtol=1e-6, atol=1e-7)
    assert torch.all((reconstruction >= 0) & (reconstruction <= 1))


@pytest.mark.parametrize(
    "model", [MLPAutoencoder(9, 3, hidden_dims=(7, 5), activation="gelu"), LinearAutoencoder(9, 3)]
)
def test_config_rebuilds_the_same_architecture(model):
    rebuilt = build_model(**model.config())
    assert type(rebuilt) is type(model)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "kwargs", [{"input_dim": 0, "latent_dim": 2}, {"input_dim": 3, "latent_dim": 2, "hidden_dims": (0,)}]
)
def test_bad_sizes_are_rejected(kwargs):
    with pytest.raises(InvalidParameterValue, match="Got"):
        MLPAutoencoder(**kwargs)


@pytest.mark.parametrize("module", ["aekit.models.mlp", "aekit.models.conv", "aekit.models.anchored",
                                    "aekit.models"])
def test_each_model_module_imports_first_on_its_own(module):
    """No import cycle between the model modules: each can be the first one a program imports."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
