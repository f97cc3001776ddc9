"""Which precision a training step runs in, and on how many threads: fixed rules, never timings.

Both rules read only the model's size, the device and what the processor reports
(:mod:`aekit.hardware`), so a seeded fit gives the same numbers in every process on a machine,
however busy it is (cuDNN's benchmark mode is off by default for the same reason). The figures
behind the thresholds are in docs/performance.md. ``autocast`` is the context a forward pass runs under.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

from aekit import hardware
from aekit.exceptions import InvalidParameterValue, Setting, Words, did_you_mean, parameter_error

__all__ = ["BF16_MIN_WEIGHTS", "PRECISIONS", "RESOLVED_PRECISIONS", "THREADS_MIN_FLOPS", "autocast",
           "resolve_precision", "training_threads"]

PRECISIONS = ("auto", "fp32", "bf16")
RESOLVED_PRECISIONS = ("fp32", "bf16")  # what "auto" resolves to: what a fit ran in (precision_)
# precision="auto" picks bf16 on a CPU that computes it natively when the model's largest weight matrix
# has at least this many entries: below it, autocast's casts cost more than bf16's faster products save.
BF16_MIN_WEIGHTS = 131_072
# A CPU training step of less work than this (6 x rows x weights floating-point operations: forward, and
# the two products of the backward pass) runs on one thread: its products take microseconds, and waking
# other threads for each of its ~30 operations costs more than they share.
THREADS_MIN_FLOPS = 50_000_000
_warned_emulated_bf16: set[str] = set()


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise parameter_error("precision", precision, f"one of {PRECISIONS}",
                              hint=did_you_mean(precision, PRECISIONS).strip() or None)


def resolve_precision(precision: str, module: nn.Module, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"``: ``precision`` itself, or for ``"auto"`` bf16 on a CPU that computes bf16
    natively (:func:`aekit.hardware.bf16_native`: AVX512-BF16 or AMX) when ``module``'s largest weight
    tensor has at least ``BF16_MIN_WEIGHTS`` entries; fp32 otherwise, and on GPUs (where this library's
    models, small next to a GPU, are bound by kernel launches rather than products). ``"bf16"`` on a
    CPU that only emulates it warns, once per process.

    Examples
    --------
    >>> resolve_precision("auto", nn.Linear(8, 2), torch.device("cpu"))  # a small model stays in fp32
    'fp32'
    """
    _check_precision(precision)
    widest = max((p.numel() for p in module.parameters() if p.dim() >= 2), default=0)
    if precision == "auto":
        native_cpu = device.type == "cpu" and hardware.bf16_native(device)
        return "bf16" if native_cpu and widest >= BF16_MIN_WEIGHTS else "fp32"
    if precision == "bf16" and device.type == "cpu" and not hardware.bf16_native(device) \
            and "cpu" not in _warned_emulated_bf16:
        _warned_emulated_bf16.add("cpu")
        warnings.warn(Words(
            Setting("precision", "bf16"), f" on a CPU without native bfloat16 ({hardware.cpu_model()}: no AVX512-BF16 "
            "or AMX): bf16 is emulated here, many times slower than fp32. Use ", Setting("precision", "auto"),
            " or 'fp32'."), UserWarning, stacklevel=3)
    return precision


def training_threads(module: nn.Module, device: torch.device, rows: int) -> int:
    """How many of this process's intra-op threads (``torch.get_num_threads()``) a CPU training step of
    ``module`` at ``rows`` rows uses: one for a model of dense layers below ``THREADS_MIN_FLOPS`` per
    step, else all of them (and all of them on a GPU's host).

    Examples
    --------
    >>> training_threads(nn.Linear(8, 2), torch.device("cpu"), 256)
    1
    """
    most = torch.get_num_threads()
    if device.type != "cpu":
        return most
    weights = sum(p.numel() for p in module.parameters() if p.dim() >= 2)
    dense = all(p.dim() <= 2 for p in module.parameters())  # a convolution's work is not 2 x its weights a row
    return 1 if dense and 6 * rows * weights < THREADS_MIN_FLOPS else most


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
