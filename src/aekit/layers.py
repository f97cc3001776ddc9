"""``Linear``: ``nn.Linear`` whose float32 matrix products on an x86 CPU go through oneDNN.

PyTorch runs a float32 ``nn.Linear`` on the CPU through its BLAS, MKL, which on AMD processors takes
its AVX2 code path, not AVX-512; oneDNN, which PyTorch also ships, picks its kernels by the
processor's instruction sets. On the 2-core AMD EPYC (Zen 5) aekit is developed on, oneDNN's
products for a 256-row batch through a 784x1000 layer run at ~440 GFLOP/s against MKL's ~200, and
a training step of the 784-1000-500-250-30 autoencoder takes 14.7 ms instead of 24.6 (see the
README's performance section). ``Linear`` is a drop-in ``nn.Linear`` (same parameters, same state
dict) that sends its forward product and both backward products (input and weight gradients)
through oneDNN's linear operator, where that helps: float32 on the CPU, no autocast, 2-D input (rows > 0),
oneDNN enabled (``torch.backends.mkldnn``) and a layer of at least ``ONEDNN_MIN_WEIGHTS`` weights
(for small layers the per-call overhead outweighs the faster kernel). Everywhere else it is
``nn.Linear``. ``torch.backends.mkldnn.flags(enabled=False)`` turns it off. On Intel processors
MKL takes its AVX-512 path too, and the two should be close there (not measured: no such machine).

The operator, ``torch.ops.mkldnn._linear_pointwise``, is the one PyTorch's compiler (Inductor)
emits for linear layers on the CPU; it has no gradient of its own, so :class:`_OneDNNLinear` gives
it one. Its results differ from MKL's only by float32 rounding (the order of the sums).
"""

from __future__ import annotations

import platform

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

# in_features x out_features from which oneDNN is used. Forward + backward of one layer, batch 256, on
# the development machine: oneDNN 1.27x faster at 256x128 (32,768 weights), even at ~16,000, and
# 0.78x at 128x64 (8,192, W2's layers), where its per-call overhead outweighs the faster kernel.
ONEDNN_MIN_WEIGHTS = 32768


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
    """``x @ weight.T + bias`` and its gradients, each product one oneDNN call on transposed views
    (oneDNN makes the output gradient's transpose contiguous for the weight gradient: ~3% of a W1 step)."""

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


class Linear(nn.Linear):
    """``nn.Linear`` whose float32 CPU products run through oneDNN when that is faster (see the module).

    Examples
    --------
    >>> layer = Linear(784, 1000)
    >>> x = torch.randn(4, 784)
    >>> torch.allclose(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias), atol=1e-4)
    True
    """

    def uses_onednn(self, x: torch.Tensor) -> bool:
        """Whether ``forward(x)`` goes through oneDNN."""
        return (
            _AVAILABLE
            and self.in_features * self.out_features >= ONEDNN_MIN_WEIGHTS
            and x.dim() == 2
            and len(x) > 0  # oneDNN has no weight gradient over zero rows
            and x.device.type == "cpu"
            and x.dtype == self.weight.dtype == torch.float32
            and torch.backends.mkldnn.enabled
            and not torch.is_autocast_enabled("cpu")
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.uses_onednn(x):
            return F.linear(x, self.weight, self.bias)
        x = x.contiguous()
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, self.weight, self.bias)):
            return _OneDNNLinear.apply(x, self.weight, self.bias)
        return onednn_linear(x, self.weight, self.bias)
