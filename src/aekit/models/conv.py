"""A convolutional autoencoder for images, on flat rows like every other aekit model.

The estimator and the trainer see ``(n, C*H*W)`` rows; the model reshapes them to ``(n, C, H, W)``
itself, so scaling, splitting, saving and scoring are the same code as for the MLP. Strided
convolutions halve the image (rounding up) down to a flat linear latent; transposed convolutions
with a per-layer ``output_padding`` bring back exactly the recorded sizes, so any height and width
(28, 25, 112 x 92, ...) round-trips.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from aekit.exceptions import InvalidParameterValue, parameter_error
from aekit.models.layers import Linear
from aekit.models.mlp import ACTIVATIONS, AutoencoderModule, _choose

KERNEL_SIZE = 3


def _halved(size: int) -> int:
    """Output size of a stride-2, padding-1, kernel-3 convolution: ceil(size / 2)."""
    return (size + 2 - KERNEL_SIZE) // 2 + 1


def _positive_ints(name: str, values: Sequence, length: int | None = None) -> tuple[int, ...]:
    values = tuple(values)
    valid = all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)
    if not valid or (length is not None and len(values) != length):
        what = f"a sequence of {length} ints >= 1" if length else "a sequence of ints >= 1"
        raise parameter_error(name, values, what)
    return values


class ConvAutoencoder(AutoencoderModule):
    """Convolutional autoencoder on flat rows of images: ``C*H*W -> latent_dim -> C*H*W``.

    Encoder: ``len(channels)`` stride-2 3x3 convolutions (each halves height and width, rounding
    up), then one linear layer to the latent code. Decoder: one linear layer back to the smallest
    feature map, then transposed convolutions that restore each recorded size exactly.

    Parameters
    ----------
    input_dim : int
        ``C * H * W``; checked against ``input_shape``.
    latent_dim : int
        Size d of the (linear) bottleneck.
    input_shape : sequence of 3 ints
        ``(C, H, W)``: channels, height, width of each image (rows are in C-order, as
        ``images.reshape(n, -1)`` gives them).
    channels : sequence of int, default=(32, 64)
        Feature maps of the encoder's convolutions; the decoder uses them in reverse.
    activation : {"relu", "sigmoid", "tanh", "gelu", "identity"}, default="relu"
    output_activation : {"identity", "sigmoid"}, default="identity"
        "sigmoid" for pixels in [0, 1] (goes with the BCE loss).

    Examples
    --------
    >>> import torch
    >>> model = ConvAutoencoder(input_dim=3 * 25 * 30, latent_dim=8, input_shape=(3, 25, 30))
    >>> reconstruction, latent = model(torch.rand(4, 3 * 25 * 30))
    >>> tuple(reconstruction.shape), tuple(latent.shape)
    ((4, 2250), (4, 8))
    """

    def __init__(
        self,
        input_dim: int,
        latent_dim: int,
        input_shape: Sequence[int],
        channels: Sequence[int] = (32, 64),
        activation: str = "relu",
        output_activation: str = "identity",
    ) -> None:
        super().__init__(output_activation)
        act = _choose("activation", activation, ACTIVATIONS)
        input_shape = _positive_ints("input_shape", input_shape, length=3)
        channels = _positive_ints("channels", channels)
        (latent_dim,) = _positive_ints("latent_dim", (latent_dim,))
        n_channels, height, width = input_shape
        if input_dim != n_channels * height * width:
            raise InvalidParameterValue(
                f"input_shape={input_shape} holds {n_channels * height * width} values per image, but the rows have "
                f"{input_dim} features. Pass the (channels, height, width) of the images the rows were flattened from."
            )
        sizes = [(height, width)]
        for _ in channels:
            sizes.append((_halved(sizes[-1][0]), _halved(sizes[-1][1])))
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.input_shape, self.channels, self.activation = input_shape, channels, activation

        encoder: list[nn.Module] = [nn.Unflatten(1, input_shape)]
        for fan_in, fan_out in zip((n_channels, *channels[:-1]), channels, strict=True):
            encoder += [nn.Conv2d(fan_in, fan_out, KERNEL_SIZE, stride=2, padding=1), act()]
        bottom = (channels[-1], *sizes[-1])
        flat = channels[-1] * sizes[-1][0] * sizes[-1][1]
        encoder += [nn.Flatten(), Linear(flat, latent_dim)]
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = [Linear(latent_dim, flat), act(), nn.Unflatten(1, bottom)]
        outputs = (*reversed(channels[:-1]), n_channels)
        for step, (fan_in, fan_out) in enumerate(zip(reversed(channels), outputs, strict=True)):
            (in_h, in_w), (out_h, out_w) = sizes[-1 - step], sizes[-2 - step]
            # a stride-2 transposed convolution gives 2*in - 1 (+ output_padding): pad to the recorded size
            padding = (out_h - (2 * in_h - 1), out_w - (2 * in_w - 1))
            decoder.append(nn.ConvTranspose2d(fan_in, fan_out, KERNEL_SIZE, 2, padding=1, output_padding=padding))
            if step < len(channels) - 1:
                decoder.append(act())
        decoder.append(nn.Flatten())
        self.decoder = nn.Sequential(*decoder)

    def config(self) -> dict:
        return {
            "architecture": "conv",
            "input_dim": self.input_dim,
            "latent_dim": self.latent_dim,
            "input_shape": list(self.input_shape),
            "channels": list(self.channels),
            "activation": self.activation,
            "output_activation": self.output_activation,
        }
