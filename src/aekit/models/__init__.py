"""Every model architecture by name, and :func:`build_model`, which builds one from its config.

:mod:`aekit.models.mlp` holds the base class and the MLPs; :mod:`aekit.models.conv` and
:mod:`aekit.models.anchored` subclass it. This module imports all three, so that none of them has to
import the others back (no import cycle).
"""

from __future__ import annotations

from aekit.models.anchored import AnchoredAutoencoder
from aekit.models.conv import ConvAutoencoder
from aekit.models.mlp import AutoencoderModule, LinearAutoencoder, MLPAutoencoder, _choose

ARCHITECTURES: dict[str, type[AutoencoderModule]] = {
    "anchored": AnchoredAutoencoder,
    "mlp": MLPAutoencoder,
    "linear": LinearAutoencoder,
    "conv": ConvAutoencoder,
}


def build_model(architecture: str, **config) -> AutoencoderModule:
    """Build the model named ``architecture`` from its ``config()`` arguments.

    Examples
    --------
    >>> build_model("linear", input_dim=4, latent_dim=2).config()["architecture"]
    'linear'
    """
    return _choose("architecture", architecture, ARCHITECTURES)(**config)
