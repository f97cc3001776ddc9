"""Autoencoder modules: an encoder ``z = f(x)`` to a linear bottleneck and a decoder back.

Every model here subclasses :class:`AutoencoderModule`: ``.encoder`` and ``.decoder`` are
``nn.Module``s, the decoder returns raw values (logits when the output activation is a sigmoid),
and ``forward(x)`` returns ``(reconstruction, latent)``. ``config()`` returns the constructor
arguments, so a model can be rebuilt from JSON with :func:`build_model`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from aekit.exceptions import did_you_mean, parameter_error
from aekit.models.layers import Linear

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity}
OUTPUT_ACTIVATIONS = {"identity": nn.Identity, "sigmoid": nn.Sigmoid}


def _choose(kind: str, name: str, choices: dict):
    if name not in choices:
        raise parameter_error(kind, name, f"one of {sorted(choices)}", hint=did_you_mean(name, choices).strip() or None)
    return choices[name]


class AutoencoderModule(nn.Module):
    """Base class: subclasses set ``self.encoder`` and ``self.decoder`` in ``__init__``."""

    encoder: nn.Module
    decoder: nn.Module

    def __init__(self, output_activation: str = "identity") -> None:
        super().__init__()
        self.output_activation = output_activation
        self.output = _choose("output_activation", output_activation, OUTPUT_ACTIVATIONS)()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent codes of ``x``."""
        return self.encoder(x)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Reconstructions (after the output activation) of latent codes."""
        return self.output(self.decoder(latent))

    def forward(self, x: torch.Tensor, *, logits: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(reconstruction, latent)``; with ``logits=True`` the reconstruction is the raw
        decoder output, before the output activation (what a logits-form loss needs)."""
        latent = self.encoder(x)
        raw = self.decoder(latent)
        return (raw if logits else self.output(raw)), latent

    def config(self) -> dict:
        """Constructor arguments, JSON-ready; ``build_model(**config)`` rebuilds the architecture."""
        raise NotImplementedError


def _mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers through ``sizes``, with the activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def check_sizes(input_dim: int, latent_dim: int, hidden_dims: Sequence[int], activation: str) -> tuple[int, ...]:
    """Validate an MLP-style model's sizes and activation; return ``hidden_dims`` as a tuple."""
    _choose("activation", activation, ACTIVATIONS)
    for name, value in (("input_dim", input_dim), ("latent_dim", latent_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise parameter_error(name, value, "an int >= 1")
    hidden_dims = tuple(hidden_dims)
    if not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden_dims):
        raise parameter_error("hidden_dims", hidden_dims, "a sequence of ints >= 1")
    return hidden_dims


class MLPAutoencoder(AutoencoderModule):
    """Fully connected autoencoder: ``input -> hidden_dims -> latent -> reversed(hidden_dims) -> input``.

    The bottleneck is linear (no activation on the latent layer); the decoder mirrors the encoder.

    Parameters
    ----------
    input_dim : int
        Number of input features D.
    latent_dim : int
        Size d of the bottleneck.
    hidden_dims : sequence of int, default=(64,)
        Widths of the encoder's hidden layers; the decoder uses them in reverse.
    activation : {"relu", "sigmoid", "tanh", "gelu", "identity"}, default="relu"
        Activation after every hidden layer.
    output_activation : {"identity", "sigmoid"}, default="identity"
        Applied to the decoder's output ("sigmoid" goes with a BCE loss).

    Examples
    --------
    >>> import torch
    >>> model = MLPAutoencoder(input_dim=128, latent_dim=10)
    >>> reconstruction, latent = model(torch.randn(8, 128))
    >>> tuple(reconstruction.shape), tuple(latent.shape)
    ((8, 128), (8, 10))
    """

    def __init__(
        self,
        input_dim: int,
        latent_dim: int,
        hidden_dims: Sequence[int] = (64,),
        activation: str = "relu",
        output_activation: str = "identity",
    ) -> None:
        super().__init__(output_activation)
        hidden_dims = check_sizes(input_dim, latent_dim, hidden_dims, activation)
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.hidden_dims, self.activation = hidden_dims, activation
        self.encoder = _mlp((input_dim, *hidden_dims, latent_dim), activation)
        self.decoder = _mlp((latent_dim, *reversed(hidden_dims), input_dim), activation)

    def config(self) -> dict:
        return {
            "architecture": "mlp",
            "input_dim": self.input_dim,
            "latent_dim": self.latent_dim,
            "hidden_dims": list(self.hidden_dims),
            "activation": self.activation,
            "output_activation": self.output_activation,
        }


class LinearAutoencoder(MLPAutoencoder):
    """The PCA-equivalent model: one linear encoder layer and one linear decoder layer, no activations.

    Trained with MSE on centred data it spans the subspace of the first ``latent_dim`` principal
    components (its weights need not be orthogonal).

    Examples
    --------
    >>> model = LinearAutoencoder(input_dim=64, latent_dim=5)
    >>> model.encoder
    Sequential(
      (0): Linear(in_features=64, out_features=5, bias=True)
    )
    """

    def __init__(self, input_dim: int, latent_dim: int, output_activation: str = "identity") -> None:
        super().__init__(
            input_dim, latent_dim, hidden_dims=(), activation="identity", output_activation=output_activation
        )

    def config(self) -> dict:
        return {
            "architecture": "linear",
            "input_dim": self.input_dim,
            "latent_dim": self.latent_dim,
            "output_activation": self.output_activation,
        }
