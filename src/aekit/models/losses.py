"""Reconstruction losses, each paired with the output activation it needs.

BCE is computed from the decoder's logits (``binary_cross_entropy_with_logits``), which stays finite
however saturated the output is; the sigmoid is applied only when a reconstruction is returned.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aekit.exceptions import InvalidParameterValue, did_you_mean

# Which output activation turns the decoder's raw output into a reconstruction, per loss.
OUTPUT_ACTIVATION = {"mse": "identity", "bce": "sigmoid"}


def reconstruction_loss(name: str, raw_output: torch.Tensor, target: torch.Tensor, *, per_row: bool = False):
    """Loss between the decoder's raw output (logits for BCE) and the target.

    Returns the mean over all elements, or with ``per_row=True`` the mean over features of each row.

    Examples
    --------
    >>> import torch
    >>> float(reconstruction_loss("mse", torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 1.0]])))
    2.5
    """
    if name == "mse":
        function = F.mse_loss
    elif name == "bce":
        function = F.binary_cross_entropy_with_logits
    else:
        raise InvalidParameterValue(
            f"The loss must be one of {sorted(OUTPUT_ACTIVATION)}. Got {name!r} instead."
            + did_you_mean(name, OUTPUT_ACTIVATION)
        )
    if per_row:
        return function(raw_output, target, reduction="none").flatten(1).mean(dim=1)
    return function(raw_output, target)  # the fused mean: no elementwise tensor kept for the step
