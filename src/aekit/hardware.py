"""What the processor at hand offers, and how many of its cores this process may use.

The kernel choices in :mod:`aekit.models.layers`, ``precision="auto"`` and the estimator's ``n_jobs`` all
start from here: the CPU's model and instruction sets (``/proc/cpuinfo``'s flags on Linux, and the
ISA PyTorch dispatches to, which ``ATEN_CPU_CAPABILITY`` can lower), whether it computes bfloat16
natively, and the cores this process is allowed to run on (``os.sched_getaffinity``: a container's
or ``taskset``'s limit, not the machine's count).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from collections.abc import Iterator

import torch

__all__ = ["bf16_native", "cpu_flags", "cpu_model", "fingerprint", "summary", "threads", "usable_cores"]

# Environment variables that change which kernels oneDNN, MKL and ATen run: part of the fingerprint.
ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's entry of ``/proc/cpuinfo`` (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            for line in file:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """The processor's name (``platform.processor()`` where ``/proc/cpuinfo`` is absent)."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags the kernel reports (``avx2``, ``avx512f``, ``avx512_bf16``, ``amx_bf16``...)."""
    return frozenset(_cpuinfo().get("flags", "").split())


def bf16_native(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 products in hardware (else they are emulated, many times slower).

    On a GPU, ``torch.cuda.is_bf16_supported()``; on a CPU, oneDNN's own test (AVX512-BF16 or AMX
    within the ISA ``ONEDNN_MAX_CPU_ISA`` allows it), else the kernel's flags.

    Examples
    --------
    >>> isinstance(bf16_native("cpu"), bool)
    True
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if probe is not None:
        return bool(probe())
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), not the machine's count.

    Examples
    --------
    >>> usable_cores() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


@contextlib.contextmanager
def threads(n_jobs: int | None) -> Iterator[int]:
    """Run the block with ``n_jobs`` intra-op threads (None: PyTorch's own count, which already follows
    ``OMP_NUM_THREADS`` and the affinity), restoring the previous count after it; yields the count used.

    ``n_jobs=-1`` means every usable core, ``-2`` all but one, as in scikit-learn.

    Examples
    --------
    >>> with threads(1) as n:
    ...     n, torch.get_num_threads()
    (1, 1)
    """
    previous = torch.get_num_threads()
    if n_jobs is None:
        wanted = min(previous, usable_cores())
    elif n_jobs < 0:
        wanted = max(1, usable_cores() + 1 + n_jobs)
    else:
        wanted = n_jobs
    if wanted != previous:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def fingerprint() -> str:
    """What a measured kernel choice depends on: processor, PyTorch's ISA and version, ISA caps, threads."""
    caps = ",".join(f"{name}={os.environ[name]}" for name in ISA_VARIABLES if os.environ.get(name))
    return (f"{cpu_model()}|{torch.backends.cpu.get_cpu_capability()}|torch {torch.__version__}|"
            f"threads {torch.get_num_threads()}|{caps}")


def summary() -> dict:
    """The facts above as one JSON-ready dict (``aekit info`` prints it).

    Examples
    --------
    >>> sorted(summary())
    ['bf16_native', 'cpu', 'isa', 'threads', 'usable_cores']
    """
    return {"cpu": cpu_model(), "isa": torch.backends.cpu.get_cpu_capability(), "bf16_native": bf16_native("cpu"),
            "usable_cores": usable_cores(), "threads": torch.get_num_threads()}
