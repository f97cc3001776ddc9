"""Which precision a training step runs in, and the kernels it was timed to use.

``precision="auto"`` resolves to bf16 only where the device computes bf16 natively and the model is
wide enough for autocast's casts to pay; ``autocast`` is the context a forward pass runs under.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

from aekit import hardware
from aekit.exceptions import InvalidParameterValue, did_you_mean
from aekit.models import layers

__all__ = ["BF16_MIN_WEIGHTS", "PRECISIONS", "autocast", "kernel_choices", "resolve_precision"]

PRECISIONS = ("auto", "fp32", "bf16")
# precision="auto" picks bf16 where the device computes it natively and the model's largest weight
# matrix has at least this many entries. Below it, autocast's casts cost more than bf16's faster
# products save: one training step at batch 256 on a Xeon with AMX, fp32 / bf16 time: 784-1000-500-250-30
# 2.7x, 784-256-64-10 2.5x, 512-512-16 1.7x, but 256-256-64-10 0.7x and 128-64-10 0.9x.
BF16_MIN_WEIGHTS = 131_072
_warned_emulated_bf16: set[str] = set()


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise InvalidParameterValue(
            f"The 'precision' parameter must be one of {PRECISIONS}. Got {precision!r} instead."
            + did_you_mean(precision, PRECISIONS)
        )


def resolve_precision(precision: str, module: nn.Module, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"``: ``precision`` itself, or for ``"auto"`` bf16 where ``device`` computes
    bf16 natively (:func:`aekit.hardware.bf16_native`) and ``module``'s largest weight tensor has at
    least ``BF16_MIN_WEIGHTS`` entries, fp32 otherwise. ``"bf16"`` on a CPU that only emulates it
    warns (once per process) with the slow-down measured on the spot at the module's largest layer.

    Examples
    --------
    >>> resolve_precision("auto", nn.Linear(8, 2), torch.device("cpu"))  # a small model stays in fp32
    'fp32'
    """
    _check_precision(precision)
    widest = max((p for p in module.parameters() if p.dim() >= 2), key=torch.Tensor.numel, default=None)
    native = hardware.bf16_native(device)
    if precision == "auto":
        return "bf16" if native and widest is not None and widest.numel() >= BF16_MIN_WEIGHTS else "fp32"
    if precision == "bf16" and not native and device.type == "cpu" and "cpu" not in _warned_emulated_bf16:
        _warned_emulated_bf16.add("cpu")
        shape = (widest.shape[0], widest[0].numel()) if widest is not None else (256, 256)
        warnings.warn(
            f"precision='bf16' on a CPU without native bfloat16 ({hardware.cpu_model()}: no AVX512-BF16 or AMX): "
            f"bf16 is emulated here, {_bf16_slowdown(*shape):.1f}x slower than fp32 for this model's largest "
            "layer (measured just now). Use precision='auto' or 'fp32'.",
            UserWarning,
            stacklevel=3,
        )
    return precision


def _bf16_slowdown(out_features: int, in_features: int, rows: int = 256) -> float:
    """How many times slower one bf16 (autocast) product of ``rows`` rows is than the fp32 one, here."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, in_features, generator=generator)
    weight = torch.randn(out_features, in_features, generator=generator)

    def fp32() -> None:
        torch.nn.functional.linear(x, weight)

    def bf16() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.functional.linear(x, weight)

    with torch.no_grad():
        seconds = layers.timings({"fp32": fp32, "bf16": bf16})
    return seconds["bf16"][0] / seconds["fp32"][0]


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context for a forward pass in ``precision`` (``"fp32"`` or ``"bf16"``, as resolved by
    :func:`resolve_precision`): bf16 autocast, or nothing at all for fp32.

    Examples
    --------
    >>> with autocast(torch.device("cpu"), "bf16"):
    ...     (torch.ones(2, 3) @ torch.ones(3, 1)).dtype
    torch.bfloat16
    """
    _check_precision(precision)
    if precision == "auto":
        raise InvalidParameterValue("autocast needs a resolved precision ('fp32' or 'bf16'): see resolve_precision.")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def kernel_choices(module: nn.Module) -> dict[str, dict]:
    """The training kernels timed for the shapes of ``module``'s linear layers (see
    :func:`aekit.models.layers.choices`); products too small to time always take ``F.linear`` and are
    not listed.

    Examples
    --------
    >>> kernel_choices(nn.Linear(4, 2))  # far too small to time
    {}
    """
    linear = [layer for layer in module.modules() if isinstance(layer, nn.Linear)]
    shapes = {f"{layer.in_features}x{layer.out_features}/" for layer in linear}
    return {key: value for key, value in layers.choices().items()
            if key[: key.index("/") + 1] in shapes and "/train/" in key and value.get("onednn_speedup") is not None}
