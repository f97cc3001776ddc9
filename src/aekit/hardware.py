"""What the processor at hand reports, and how many of its cores this process may use.

The default rules (docs/performance.md, "Defaults") start from here: the linear-layer kernel
(:mod:`aekit.models.layers`), ``precision="auto"`` and the training threads
(:mod:`aekit.training.precision`). They read the CPU's vendor, model and instruction sets
(``/proc/cpuinfo`` on Linux, and the ISA PyTorch dispatches to, which ``ATEN_CPU_CAPABILITY`` can
lower), whether it computes bfloat16 natively, and the cores this process is allowed to run on
(``os.sched_getaffinity``: a container's or ``taskset``'s limit, not the machine's count): facts
about the machine, never how busy it is.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aekit.exceptions import InvalidParameterValue, Setting, Words

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions that use it: the command line checks a thread count (max_threads)
# before torch loads, since its thread pools are sized then

__all__ = ["available_memory", "bf16_native", "check_thread_count", "cpu_flags", "cpu_model", "cpu_vendor",
           "max_threads",
           "summary", "threads", "usable_cores"]


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


def cpu_vendor() -> str:
    """The processor's vendor as the kernel reports it (``AuthenticAMD``, ``GenuineIntel``; empty where unknown)."""
    return _cpuinfo().get("vendor_id", "")


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
    import torch

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


# Threads a process may ask for, per core of the machine: beyond that they only wait for a core (and by the ten
# thousand their stacks exhaust the address space: torch, or the next library loaded, fails to start).
THREADS_PER_CORE = 8


def max_threads() -> int:
    """The most threads ``n_jobs`` or ``--threads`` may ask for: ``THREADS_PER_CORE`` per core of the machine.

    Examples
    --------
    >>> max_threads() >= THREADS_PER_CORE
    True
    """
    return THREADS_PER_CORE * (os.cpu_count() or 1)


def check_thread_count(count: int) -> None:
    """Refuse a thread count above :func:`max_threads` (the error's ``param``: ``n_jobs``)."""
    if count > max_threads():
        raise InvalidParameterValue(
            problem=Words(Setting("n_jobs", count), " asks for more threads than this machine can run usefully: it has "
                          f"{os.cpu_count()} cores, and aekit allows at most {THREADS_PER_CORE} threads per core "
                          f"({max_threads()})."),
            hint=Words(f"Use at most {max_threads()}, or leave ", Setting("n_jobs"), " unset (the default)."),
            param="n_jobs", value=count)


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes of memory free for a new allocation on ``device``: the kernel's ``MemAvailable`` on a CPU (else the
    free pages), ``torch.cuda.mem_get_info`` on a GPU; None where it cannot be told.

    Examples
    --------
    >>> available_memory("cpu") is None or available_memory("cpu") > 0
    True
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0]) if torch.cuda.is_available() else None
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@contextlib.contextmanager
def threads(n_jobs: int | None) -> Iterator[int]:
    """Run the block with ``n_jobs`` intra-op threads (None: PyTorch's own count, which already follows
    ``OMP_NUM_THREADS`` and the affinity), restoring the previous count after it; yields the count used.

    ``n_jobs=-1`` means every usable core, ``-2`` all but one, as in scikit-learn. A given ``n_jobs``
    also caps the thread pools of the BLAS and OpenMP libraries behind numpy, SciPy and scikit-learn
    (``threadpoolctl``), which the fit uses beside PyTorch (PCA's covariance, the score's modes).

    Examples
    --------
    >>> import torch
    >>> with threads(1) as n:
    ...     n, torch.get_num_threads()
    (1, 1)
    """
    import torch

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
        if n_jobs is None:
            yield wanted
        else:
            with _thread_pools().limit(limits=wanted):
                yield wanted
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


@functools.cache
def _thread_pools():
    """The BLAS and OpenMP libraries loaded with numpy, SciPy, scikit-learn and torch, found once (finding
    them takes milliseconds; limiting them afterwards, microseconds)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def summary() -> dict:
    """The facts above as one JSON-ready dict (``aekit info`` prints it).

    Examples
    --------
    >>> sorted(summary())
    ['bf16_native', 'cpu', 'isa', 'threads', 'usable_cores']
    """
    import torch

    return {"cpu": cpu_model(), "isa": torch.backends.cpu.get_cpu_capability(), "bf16_native": bf16_native("cpu"),
            "usable_cores": usable_cores(), "threads": torch.get_num_threads()}
