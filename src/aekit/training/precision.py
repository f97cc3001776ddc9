"""Which precision a training step runs in, and the kernels it was timed to use.

``precision="auto"`` resolves to bf16 only where the device computes bf16 natively, the model is wide
enough for autocast's casts to pay at all, and one training step measured on the device itself, at the
fit's batch size, runs faster in bf16 than in fp32 by a clear margin (``BF16_MARGIN``). The
measurement is the only judge that holds on every processor and GPU: on an H200, a 784-1000-500-250-30
MLP at batch 256 trained at 0.82x fp32's speed under bf16 autocast (the step is bound by kernel launches,
not by products), where a Xeon with AMX ran it 1.6x faster. Like the kernel choice
(:mod:`aekit.models.layers`), the result is kept for the process and in the same cache file, so that
seeded runs on one machine keep making the same choice. ``autocast`` is the context a forward pass runs
under.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import warnings

import torch
from torch import nn

from aekit import hardware
from aekit.exceptions import InvalidParameterValue, did_you_mean
from aekit.models import layers
from aekit.training import distributed

__all__ = ["BF16_MARGIN", "BF16_MIN_WEIGHTS", "PRECISIONS", "THREADS_MARGIN", "THREADS_MIN_FLOPS", "autocast",
           "kernel_choices", "measured_precision", "resolve_precision", "training_threads"]

PRECISIONS = ("auto", "fp32", "bf16")
# precision="auto" picks bf16 where the device computes it natively and the model's largest weight
# matrix has at least this many entries. Below it, autocast's casts cost more than bf16's faster
# products save: one training step at batch 256 on a Xeon with AMX, fp32 / bf16 time: 784-1000-500-250-30
# 2.7x, 784-256-64-10 2.5x, 512-512-16 1.7x, but 256-256-64-10 0.7x and 128-64-10 0.9x.
BF16_MIN_WEIGHTS = 131_072
# bf16 must make a measured training step this much faster to be chosen: a closer call is noise, and
# fp32 is the more accurate of the two.
BF16_MARGIN = 1.10
# A CPU training step of less work than this (6 x rows x weights floating-point operations: forward,
# and the two products of the backward pass) runs on one thread without timing: its products take
# microseconds, and waking other threads for each of its ~30 operations costs more than they share
# (W2, 128-64-10 at 256 rows, 31 MFLOP a step: one thread 1.7x faster than two on a 2-core Xeon).
THREADS_MIN_FLOPS = 50_000_000
# More threads must make a measured training step this much faster to be chosen: fewer threads are
# the kinder choice on a shared machine, and a closer call is noise.
THREADS_MARGIN = 1.10
_warned_emulated_bf16: set[str] = set()


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise InvalidParameterValue(
            f"The 'precision' parameter must be one of {PRECISIONS}. Got {precision!r} instead."
            + did_you_mean(precision, PRECISIONS)
        )


def resolve_precision(precision: str, module: nn.Module, device: torch.device, batch_rows: int | None = None) -> str:
    """``"fp32"`` or ``"bf16"``: ``precision`` itself, or for ``"auto"`` bf16 where ``device`` computes
    bf16 natively (:func:`aekit.hardware.bf16_native`), ``module``'s largest weight tensor has at
    least ``BF16_MIN_WEIGHTS`` entries and, given ``batch_rows``, a training step of that many rows
    measured here (:func:`measured_precision`) is faster in bf16 by ``BF16_MARGIN``; fp32 otherwise.
    ``"bf16"`` on a CPU that only emulates it warns (once per process) with the slow-down measured on
    the spot at the module's largest layer.

    Examples
    --------
    >>> resolve_precision("auto", nn.Linear(8, 2), torch.device("cpu"))  # a small model stays in fp32
    'fp32'
    """
    _check_precision(precision)
    widest = max((p for p in module.parameters() if p.dim() >= 2), key=torch.Tensor.numel, default=None)
    native = hardware.bf16_native(device)
    if precision == "auto":
        if not native or widest is None or widest.numel() < BF16_MIN_WEIGHTS:
            return "fp32"
        if batch_rows is None:
            return "bf16"
        bf16 = measured_precision(module, device, batch_rows)["precision"] == "bf16"
        return "bf16" if distributed.min_over_ranks(int(bf16)) == 1 else "fp32"  # every rank trains alike
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


def _step_key(kind: str, module: nn.Module, device: torch.device, rows: int) -> str:
    """The cache key of a choice ``kind`` timed on training steps: the model's shapes, the device, the
    batch bucket and the thread count."""
    shapes = repr([(name, tuple(p.shape)) for name, p in module.named_parameters()]).encode()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    rows = layers.bucket(rows)
    return (f"{kind}/{type(module).__name__}-{hashlib.sha1(shapes).hexdigest()[:12]}/{where}/rows{rows}"
            f"/threads{torch.get_num_threads()}")


def measured_precision(module: nn.Module, device: torch.device, rows: int) -> dict:
    """Time one training step (forward, MSE, gradients of every parameter) of a copy of ``module`` on
    ``rows`` random rows, in fp32 and under bf16 autocast, on ``device``: ``{"precision": the faster
    (bf16 only by ``BF16_MARGIN``), "bf16_speedup": fp32 time / bf16 time, "steady": bool}``. Kept for
    the process and in the kernel cache file (:func:`aekit.models.layers.cache_path`), keyed by the
    model's parameter shapes, the device, the batch bucket and the thread count, under the kernels'
    rule for timings taken on a busy machine (:func:`aekit.models.layers.settle`); neither ``module``
    nor any random generator is touched.
    """
    def measure() -> dict:
        seconds, steady = _timed_steps(module, device, rows, {"fp32": ("fp32", None), "bf16": ("bf16", None)})
        speedup = seconds["fp32"] / seconds["bf16"]
        return {"precision": "bf16" if speedup > BF16_MARGIN else "fp32", "bf16_speedup": round(speedup, 3),
                "steady": steady}

    return layers.measured_choice(_step_key("precision", module, device, rows),
                                  lambda choice: choice.get("precision") in ("fp32", "bf16"), measure)


def _timed_steps(module: nn.Module, device: torch.device, rows: int,
                 settings: dict[str, tuple[str, int | None]]) -> tuple[dict[str, float], bool]:
    """Seconds of one training step (forward, MSE, gradients of every parameter) of a copy of ``module``
    on ``bucket(rows)`` random rows under each setting, ``name: (precision, threads or None for the
    current count)``, the fastest of the rounds of :func:`aekit.models.layers.timings`; and whether the
    timing was steady (each setting's second-best round within 10% of its best: a quiet machine).
    Neither ``module``, the thread count nor any random generator is changed."""
    probe = copy.deepcopy(module).to(device).train()
    parameters = [p for p in probe.parameters() if p.requires_grad]
    x = torch.rand(layers.bucket(rows), probe.input_dim, generator=torch.Generator().manual_seed(0)).to(device)
    threads_before = torch.get_num_threads()

    def step(precision: str, threads: int | None):
        def run() -> None:
            if threads is not None:
                torch.set_num_threads(threads)
            with autocast(device, precision):
                reconstruction = probe(x)[0]
            torch.autograd.grad(((reconstruction.float() - x) ** 2).mean(), parameters)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        return run

    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
                torch.inference_mode(False), torch.enable_grad():
            seconds = layers.timings({name: step(*setting) for name, setting in settings.items()},
                                     budget=0.02, rounds=5)
    finally:
        torch.set_num_threads(threads_before)
    steady = all(values[1] <= 1.1 * values[0] for values in seconds.values())
    return {name: values[0] for name, values in seconds.items()}, steady


def training_threads(module: nn.Module, device: torch.device, rows: int, precision: str) -> dict:
    """How many of this process's intra-op threads (``torch.get_num_threads()``) a CPU training step of
    ``module`` at ``rows`` rows in ``precision`` should use: ``{"threads": n, "step_ms": {threads: ms}
    (absent when not timed), "steady": bool}``.

    One thread, untimed, for a model of dense layers below ``THREADS_MIN_FLOPS`` per step; else (and
    always for convolutions, which reuse their weights at every position) one training step (forward, MSE,
    gradients) of a copy of ``module`` timed with 1, 2, 4, ... and all the threads, and the fewest
    threads within ``THREADS_MARGIN`` of the fastest taken. Kept for the process and in the kernel cache
    file like :func:`measured_precision` (same key parts, same rule for timings taken on a busy
    machine: re-timed by later processes, never within one, so that a process's fits train alike);
    neither ``module`` nor any random generator is touched. Not for a GPU (all threads).
    """
    most = torch.get_num_threads()
    if device.type != "cpu" or most <= 1:
        return {"threads": most, "steady": True}
    weights = sum(p.numel() for p in module.parameters() if p.dim() >= 2)
    dense = all(p.dim() <= 2 for p in module.parameters())  # a convolution's work is not 2 x its weights a row
    rows = layers.bucket(rows)
    if dense and 6 * rows * weights < THREADS_MIN_FLOPS:
        return {"threads": 1, "steady": True}
    counts = sorted({1, most} | {2**i for i in range(1, most.bit_length()) if 2**i < most})

    def measure() -> dict:
        seconds, steady = _timed_steps(module, device, rows, {str(n): (precision, n) for n in counts})
        fastest = min(seconds.values())
        chosen = min(n for n in counts if seconds[str(n)] <= fastest * THREADS_MARGIN)
        return {"threads": chosen, "step_ms": {str(n): round(seconds[str(n)] * 1e3, 4) for n in counts},
                "steady": steady}

    return layers.measured_choice(
        f"{_step_key('threads', module, device, rows)}/{precision}",
        lambda choice: isinstance(choice.get("threads"), int) and 1 <= choice["threads"] <= most, measure)


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
