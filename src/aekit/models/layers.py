"""``Linear``: ``nn.Linear`` whose float32 CPU products take the faster of two kernels, measured here.

PyTorch runs a float32 ``nn.Linear`` on the CPU through MKL; it also ships oneDNN, which picks its
kernels by the processor's instruction sets. Which is faster depends on the processor, the layer's
shape, the batch and the thread count: on an AMD Zen 5, MKL takes its AVX2 path and oneDNN's
products for a 256-row batch through a 784x1000 layer ran at ~440 GFLOP/s against MKL's ~200; on an
AMD EPYC without AVX-512, oneDNN was the slower one; for small layers oneDNN's per-call overhead
outweighs any kernel. So, as cuDNN's benchmark mode does, ``Linear`` times both on the machine at
hand the first time it meets a (layer shape, batch size bucket, training or inference, thread count)
and keeps the faster one (:func:`choose`): forward + both backward products, a few milliseconds per
shape. oneDNN must win by more than 3% to be chosen; ties go to PyTorch's default.

The choices are kept for the process and written to a JSON cache
(``$XDG_CACHE_HOME/aekit/linear-kernels.json``, default ``~/.cache``), keyed by the processor, the
ISA PyTorch dispatches to, the ISA caps in the environment and the PyTorch version, so that later
processes reuse them without timing anything. That also keeps seeded runs reproducible: the two
kernels differ by float32 rounding (the order of the sums), so a run's exact numbers depend on the
choice, and a choice made once and reused never changes between two runs on the same machine. Where
the cache cannot be written, each process measures afresh and close calls could go either way: set
``AEKIT_LINEAR_KERNEL`` to pin the kernel (``auto``, the default; ``onednn``; ``default`` for
``F.linear``). A timing taken while other work kept the cores busy is marked ``"steady": false``
(its two fastest of five rounds differ by more than 10%). It is written all the same, so that runs on
a busy machine keep making one choice, but each later process times that shape again, and the first
steady timing replaces it (one change, towards the choice a quiet machine makes); a second busy
timing leaves the file's choice in place.

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

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from aekit import hardware
from aekit._files import atomic_write_text
from aekit.exceptions import AekitError, InvalidParameterValue, did_you_mean

__all__ = ["KERNELS", "KERNEL_VARIABLE", "Linear", "cache_path", "choices", "choose", "onednn_available",
           "bucket", "describe", "measured_choice", "onednn_linear", "requested_kernel", "reset", "settle",
           "timings"]

KERNELS = ("auto", "onednn", "default")
KERNEL_VARIABLE = "AEKIT_LINEAR_KERNEL"
# oneDNN must be this much faster to be chosen: closer calls are noise, and PyTorch's default is the safer one.
MARGIN = 1.03
# Batches from this many rows on share one choice (and are timed at this size): the kernels' speeds
# have settled there, and timing the 8,192-row evaluation batches of a wide layer would cost ~0.1 s.
MAX_BUCKET = 512
# Products of less work than this (floating-point operations of the forward product) are left to
# F.linear without timing: oneDNN's per-call overhead (~10-20 us, and a wake-up of every thread)
# outweighs any kernel there (W2's 64x10 layer at 256 rows: 0.3 MFLOP, oneDNN 0.6x on two processors).
MIN_FLOPS = 1_000_000
CACHE_FORMAT = 1

_choices: dict[str, dict] = {}  # this process's choices, by key (see _key)
_disk: dict[str, dict] | None = None  # the cache file's choices for this machine, read once
_others: dict[str, dict] = {}  # other measured choices kept in the same file (the training precision), by key


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


def _onednn_product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    x = x.contiguous()
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
        return _OneDNNLinear.apply(x, weight, bias)
    return onednn_linear(x, weight, bias)


def requested_kernel() -> str:
    """The kernel ``AEKIT_LINEAR_KERNEL`` asks for: ``auto`` (measured; the default), ``onednn`` or ``default``.

    Examples
    --------
    >>> requested_kernel() in KERNELS
    True
    """
    value = os.environ.get(KERNEL_VARIABLE, "auto").strip().lower() or "auto"
    if value not in KERNELS:
        raise InvalidParameterValue(
            f"The {KERNEL_VARIABLE} environment variable must be one of {KERNELS}. Got {value!r} instead."
            + did_you_mean(value, KERNELS)
        )
    return value


def bucket(rows: int) -> int:
    """``rows`` rounded up to a power of two, at most ``MAX_BUCKET``."""
    return min(1 << max(rows - 1, 0).bit_length(), MAX_BUCKET)


def _key(in_features: int, out_features: int, rows: int, training: bool) -> str:
    return (f"{in_features}x{out_features}/rows{bucket(rows)}/{'train' if training else 'infer'}"
            f"/threads{torch.get_num_threads()}")


def cache_path() -> Path:
    """The kernel-choice cache file: ``$XDG_CACHE_HOME/aekit/linear-kernels.json`` (``~/.cache`` by default)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "aekit" / "linear-kernels.json"


def _valid(choice: object) -> bool:
    return isinstance(choice, dict) and choice.get("kernel") in ("onednn", "default")


def _read_cache() -> dict:
    """The whole cache file, or an empty one if it is absent or unreadable (a cache is never worth an error)."""
    try:
        content = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"format": CACHE_FORMAT, "machines": {}}
    if not isinstance(content, dict) or content.get("format") != CACHE_FORMAT or not isinstance(
            content.get("machines"), dict):
        return {"format": CACHE_FORMAT, "machines": {}}
    return content


def _disk_entries() -> dict[str, dict]:
    """Every entry the cache file holds for this machine, read once per process."""
    global _disk
    if _disk is None:
        mine = _read_cache()["machines"].get(hardware.fingerprint(), {})
        _disk = {key: value for key, value in mine.items() if isinstance(value, dict)} if isinstance(mine, dict) else {}
    return _disk


def _disk_choices() -> dict[str, dict]:
    return {key: choice for key, choice in _disk_entries().items() if _valid(choice)}


def measured_choice(key: str, valid: Callable[[dict], bool], measure: Callable[[], dict]) -> dict:
    """A measured choice other than a kernel (e.g. ``"precision/..."``), by the kernels' rules: this
    process's once made (final for the process, so that every fit in it takes the same one); else the
    cache file's, when ``valid`` and timed on a quiet machine; else ``measure()``'s, settled against a
    busy cached one (:func:`settle`) and written to the cache file when it is kept."""
    if key in _others:
        return _others[key]
    cached = _disk_entries().get(key)
    cached = cached if cached is not None and valid(cached) else None
    if cached is not None and cached.get("steady", True):
        choice = cached
    else:
        choice = settle(cached, measure())
        if choice is not cached:
            _write_choice(key, choice)
    _others[key] = choice
    return choice


def _write_choice(key: str, choice: dict) -> None:
    """Add one choice to the cache file (re-read first, so that other processes' choices are kept)."""
    content = _read_cache()
    content["machines"].setdefault(hardware.fingerprint(), {})[key] = choice
    try:
        cache_path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache_path(), json.dumps(content, indent=1, sort_keys=True))
    except (OSError, AekitError):
        pass  # a read-only home: the choice still holds for this process


def timings(candidates: dict, budget: float = 0.001, rounds: int = 5) -> dict[str, list[float]]:
    """Seconds per call of each candidate in each of ``rounds`` rounds, sorted; the candidates are
    interleaved in each round (so that a burst of other work on the machine slows both), each round
    repeating a candidate to fill ``budget`` seconds."""
    calls = {}
    for name, run in candidates.items():
        run()  # first call: allocations, oneDNN's kernel generation and primitive cache
        started = time.perf_counter()
        run()
        once = time.perf_counter() - started
        calls[name] = max(1, min(50, int(budget / max(once, 1e-7))))
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, run in candidates.items():
            started = time.perf_counter()
            for _ in range(calls[name]):
                run()
            seconds[name].append((time.perf_counter() - started) / calls[name])
    return {name: sorted(values) for name, values in seconds.items()}


def _measure(in_features: int, out_features: int, rows: int, training: bool) -> dict:
    """Time ``F.linear`` and oneDNN (forward, and both backward products when ``training``) at this shape."""
    rows = bucket(rows)
    if 2 * rows * in_features * out_features < MIN_FLOPS:
        return {"kernel": "default", "onednn_speedup": None, "steady": True}
    generator = torch.Generator().manual_seed(0)  # not the global generator: measuring must not move seeded runs
    x = torch.randn(rows, in_features, generator=generator)
    weight = torch.randn(out_features, in_features, generator=generator) / in_features**0.5
    bias = torch.zeros(out_features)
    grad = torch.randn(rows, out_features, generator=generator)
    if training:
        for tensor in (x, weight, bias):
            tensor.requires_grad_()

    def timed(product):
        def run():
            out = product(x, weight, bias)
            if training:
                torch.autograd.grad(out, (x, weight, bias), grad)
        return run

    with torch.inference_mode(False), torch.set_grad_enabled(training):
        seconds = timings({"default": timed(F.linear), "onednn": timed(_onednn_product)})
    # the fastest round of each: the one least disturbed by other work
    speedup = seconds["default"][0] / seconds["onednn"][0]
    # steady: each candidate's two fastest rounds agree within 10% (else the machine was busy; see the module)
    steady = all(values[1] <= 1.1 * values[0] for values in seconds.values())
    return {"kernel": "onednn" if speedup > MARGIN else "default", "onednn_speedup": round(speedup, 3),
            "steady": steady}


def choose(in_features: int, out_features: int, rows: int, training: bool) -> str:
    """The kernel for a float32 CPU product of ``rows`` rows through an ``in_features x out_features``
    layer: ``"onednn"`` or ``"default"`` (``F.linear``), measured on first use (see the module).

    Examples
    --------
    >>> choose(64, 10, 256, training=True)  # 0.3 MFLOP: F.linear, without timing
    'default'
    """
    requested = requested_kernel()
    if requested != "auto" or not _AVAILABLE:
        return requested if _AVAILABLE else "default"
    key = _key(in_features, out_features, rows, training)
    choice = _choices.get(key)
    if choice is None:
        cached = _disk_entries().get(key)
        choice = cached if _valid(cached) and cached.get("steady", True) else None
        if choice is None:
            measured = _measure(in_features, out_features, rows, training)
            choice = settle(cached if _valid(cached) else None, measured)
            if choice is measured and measured["onednn_speedup"] is not None:  # an untimed one is a fixed rule
                _write_choice(key, measured)
        _choices[key] = choice
    return choice["kernel"]


def settle(cached: dict | None, measured: dict) -> dict:
    """The choice to keep when a shape's cached timing was taken on a busy machine (or is absent) and
    it was just timed again: the new timing when it is steady or there is none, else the cached one."""
    return measured if cached is None or measured.get("steady", True) else cached


def choices() -> dict[str, dict]:
    """The choices this process has made or read so far, by ``"INxOUT/rowsB/train|infer/threadsT"``: each
    the kernel and oneDNN's measured speed-up over ``F.linear`` (absent when read from an older cache)."""
    return dict(_choices)


def describe(chosen: dict[str, dict]) -> str:
    """Choices as one line each: ``784x1000/rows256/train/threads2: onednn (oneDNN 1.31x F.linear)``.

    Examples
    --------
    >>> print(describe({"784x1000/rows256/train/threads2": {"kernel": "onednn", "onednn_speedup": 1.31}}))
    784x1000/rows256/train/threads2: onednn (oneDNN 1.31x F.linear)
    """
    lines = []
    for key, choice in sorted(chosen.items()):
        speedup = choice.get("onednn_speedup")
        why = "not timed: too small a product" if speedup is None else f"oneDNN {speedup:.2f}x F.linear"
        lines.append(f"{key}: {choice['kernel']} ({why}{'' if choice.get('steady', True) else ', busy machine'})")
    return "\n".join(lines)


def reset() -> None:
    """Forget this process's choices and the cache file's, as read (they are measured or read again on next use)."""
    global _disk
    _choices.clear()
    _others.clear()
    _disk = None


def cached_choices() -> dict[str, dict]:
    """The choices the cache file holds for this machine (processor, ISA, PyTorch version)."""
    return dict(_disk_choices())


def _exporting() -> bool:
    """Tracing, scripting, compiling or ONNX export: they must see ``F.linear``, not a private operator."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()
            or torch.onnx.is_in_onnx_export())


class Linear(nn.Linear):
    """``nn.Linear`` whose float32 CPU products take the faster kernel of this machine (see the module).

    Examples
    --------
    >>> layer = Linear(16, 4)
    >>> x = torch.randn(8, 16)
    >>> torch.allclose(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias), atol=1e-5)
    True
    """

    def uses_onednn(self, x: torch.Tensor) -> bool:
        """Whether ``forward(x)`` goes through oneDNN (deciding, by a measurement, the first time)."""
        # every call of every layer comes here: the cheap tests first (on a small model they were 16% of a fit)
        if not (_AVAILABLE and x.dim() == 2 and len(x) > 0  # oneDNN has no weight gradient over zero rows
                and x.device.type == "cpu" and x.dtype == self.weight.dtype == torch.float32):
            return False
        requested = requested_kernel()
        if requested == "default" or (
                requested == "auto" and 2 * bucket(len(x)) * self.in_features * self.out_features < MIN_FLOPS):
            return False  # what choose() would answer, without timing
        if not torch.backends.mkldnn.enabled or torch.is_autocast_enabled("cpu") or _exporting():
            return False
        training = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        return choose(self.in_features, self.out_features, len(x), training) == "onednn"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.uses_onednn(x):
            return F.linear(x, self.weight, self.bias)
        return _onednn_product(x, self.weight, self.bias)
