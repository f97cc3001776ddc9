"""``Linear``: ``nn.Linear`` whose float32 CPU products go through oneDNN where the processor favours it.

PyTorch runs a float32 ``nn.Linear`` on the CPU through MKL; it also ships oneDNN, which picks its
kernels by the processor's instruction sets. MKL takes its AVX2 path on AMD processors even where
they have AVX-512, so there oneDNN's AVX-512 kernels are the faster ones for products of any size;
elsewhere MKL is as fast or faster, and for small products oneDNN's per-call overhead outweighs any
kernel (figures in docs/performance.md). The choice is therefore a fixed rule (:func:`choose`), from
what the processor reports and the product's size, never a timing: the same data, parameters,
machine and thread count give the same numbers in every process (the two kernels differ by float32
rounding, the order of the sums). ``AEKIT_LINEAR_KERNEL`` pins it: ``auto`` (the rule, the default),
``onednn`` or ``default`` (``F.linear``).

oneDNN is used only where it can be: float32 on the CPU, no autocast, 2-D input with rows, oneDNN
enabled (``torch.backends.mkldnn``; ``torch.backends.mkldnn.flags(enabled=False)`` turns it off) and
its operator present (:func:`onednn_available`); not while tracing, scripting, compiling or
exporting to ONNX, which see ``F.linear``. Everywhere else ``Linear`` is ``nn.Linear`` (same
parameters, same state dict).

The operator, ``torch.ops.mkldnn._linear_pointwise``, is the one PyTorch's compiler (Inductor)
emits for linear layers on the CPU; it has no gradient of its own, so :class:`_OneDNNLinear` gives
it one.
"""

from __future__ import annotations

import functools
import os
import platform

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from aekit import hardware
from aekit.exceptions import EnvironmentSettingError, did_you_mean

__all__ = ["KERNELS", "KERNEL_VARIABLE", "Linear", "choose", "onednn_available", "onednn_linear", "onednn_preferred",
           "requested_kernel"]

KERNELS = ("auto", "onednn", "default")
KERNEL_VARIABLE = "AEKIT_LINEAR_KERNEL"
# Products of less work than this (floating-point operations of the forward product, 2 x rows x in x out)
# are left to F.linear: oneDNN's per-call overhead (and a wake-up of every thread) outweighs any kernel
# there (docs/performance.md).
MIN_FLOPS = 1_000_000


def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight.T + bias`` in one oneDNN call (float32 CPU tensors; ``x`` and ``weight`` may be
    transposed views). Needs :func:`onednn_available`."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def onednn_available() -> bool:
    """Whether this PyTorch can run float32 linear layers through oneDNN here (x86-64, oneDNN built in).

    Examples
    --------
    >>> isinstance(onednn_available(), bool)
    True
    """
    return (
        platform.machine().lower() in ("x86_64", "amd64")
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


_AVAILABLE = onednn_available()


class _OneDNNLinear(torch.autograd.Function):
    """``x @ weight.T + bias`` and its gradients, each product one oneDNN call on transposed views."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return onednn_linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = onednn_linear(grad, weight.t(), None) if ctx.needs_input_grad[0] else None
        grad_weight = onednn_linear(grad.t(), x.t(), None) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(dim=0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def _onednn_product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    x = x.contiguous()
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
        return _OneDNNLinear.apply(x, weight, bias)
    return onednn_linear(x, weight, bias)


def requested_kernel() -> str:
    """The kernel ``AEKIT_LINEAR_KERNEL`` asks for: ``auto`` (the rule; the default), ``onednn`` or ``default``.

    Examples
    --------
    >>> requested_kernel() in KERNELS
    True
    """
    value = os.environ.get(KERNEL_VARIABLE, "auto").strip().lower() or "auto"
    if value not in KERNELS:
        raise EnvironmentSettingError(
            problem=f"The {KERNEL_VARIABLE} environment variable must be one of {KERNELS}. Got {value!r} instead.",
            value=value, hint=did_you_mean(value, KERNELS).strip() or "Unset it, or set it to one of them.",
        )
    return value


@functools.cache
def onednn_preferred() -> bool:
    """The rule for ``AEKIT_LINEAR_KERNEL=auto``: oneDNN where PyTorch dispatches to AVX-512 on an AMD
    processor (where MKL keeps to AVX2), ``F.linear`` everywhere else.

    Examples
    --------
    >>> isinstance(onednn_preferred(), bool)
    True
    """
    return _AVAILABLE and hardware.cpu_vendor() == "AuthenticAMD" and torch.backends.cpu.get_cpu_capability() in (
        "AVX512", "AVX512_BF16", "AMX")


def choose(in_features: int, out_features: int, rows: int) -> str:
    """The kernel for a float32 CPU product of ``rows`` rows through an ``in_features x out_features``
    layer: ``"onednn"`` or ``"default"`` (``F.linear``), by ``AEKIT_LINEAR_KERNEL`` or, for ``auto``,
    by the rule (:func:`onednn_preferred`, and at least ``MIN_FLOPS`` of work).

    Examples
    --------
    >>> choose(64, 10, 256)  # 0.3 MFLOP: F.linear on every processor
    'default'
    """
    requested = requested_kernel()
    if not _AVAILABLE:
        return "default"
    if requested != "auto":
        return requested
    large = 2 * rows * in_features * out_features >= MIN_FLOPS
    return "onednn" if large and onednn_preferred() else "default"


def _exporting() -> bool:
    """Tracing, scripting, compiling or ONNX export: they must see ``F.linear``, not a private operator."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()
            or torch.onnx.is_in_onnx_export())


class Linear(nn.Linear):
    """``nn.Linear`` whose float32 CPU products take the kernel :func:`choose` names (see the module).

    Examples
    --------
    >>> layer = Linear(16, 4)
    >>> x = torch.randn(8, 16)
    >>> torch.allclose(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias), atol=1e-5)
    True
    """

    def uses_onednn(self, x: torch.Tensor) -> bool:
        """Whether ``forward(x)`` goes through oneDNN (:func:`choose`, where oneDNN can run)."""
        # every call of every layer comes here: the cheap tests first
        if not (_AVAILABLE and x.dim() == 2 and len(x) > 0  # oneDNN has no weight gradient over zero rows
                and x.device.type == "cpu" and x.dtype == self.weight.dtype == torch.float32):
            return False
        if choose(self.in_features, self.out_features, len(x)) != "onednn":
            return False
        return torch.backends.mkldnn.enabled and not torch.is_autocast_enabled("cpu") and not _exporting()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.uses_onednn(x):
            return F.linear(x, self.weight, self.bias)
        return _onednn_product(x, self.weight, self.bias)
