"""Timing helpers shared by the benchmark scripts: round-robin repeats, median [min-max], memory.

Every contender of a benchmark is timed in the same process, one repeat of each in turn, so that
noise from other work on the machine (a shared CPU, turbo, thermal limits) is spread over all of
them; the figures are the median of the repeats with their range, and ratios are taken between
medians.
"""

from __future__ import annotations

import datetime
import gc
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT = REPO_ROOT.parent / "shared" / "data"


class Missing(Exception):
    """A contender cannot run here (a peer package is not installed); the message says why."""


def round_robin(
    contenders: dict[str, Callable[[], float | None]], repeats: int, *, warmup: int = 0
) -> dict[str, list[float]]:
    """Run each contender once per round, ``repeats`` rounds, and return the figures of each.

    A contender returns its own figure (e.g. samples/s) or None to be timed by the wall clock here
    (seconds). One that raises :class:`Missing` is reported once and dropped. The first ``warmup``
    rounds are run the same way and not counted: the first call of each contender in a process pays
    for lazy imports, thread pools and the allocator's first pages, which no later fit does.
    """
    results: dict[str, list[float]] = {name: [] for name in contenders}
    active = dict(contenders)
    for round_index in range(-warmup, repeats):
        for name, run in list(active.items()):
            gc.collect()
            started = time.perf_counter()
            try:
                figure = run()
            except Missing as reason:
                print(f"  {name}: skipped ({reason})", flush=True)
                del active[name], results[name]
                continue
            elapsed = time.perf_counter() - started
            label = "warm-up" if round_index < 0 else f"round {round_index + 1}/{repeats}"
            if round_index >= 0:
                results[name].append(elapsed if figure is None else figure)
            print(f"  {label} {name}: {elapsed if figure is None else figure:.4g}", file=sys.stderr, flush=True)
    return results


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float], unit: str = "", digits: int = 3) -> str:
    """``median [min-max] unit``, each with ``digits`` significant digits."""
    if not values:
        return "n/a"
    def fmt(value: float) -> str:
        return f"{value:,.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"
    return f"{fmt(median(values))} [{fmt(min(values))}-{fmt(max(values))}]{' ' + unit if unit else ''}"


def ratio(numerator: list[float], denominator: list[float]) -> str:
    """Ratio of two medians, ``n/a`` when either is missing."""
    if not numerator or not denominator:
        return "n/a"
    return f"{median(numerator) / median(denominator):.2f}x"


def print_table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    """A plain Markdown table, ready to paste into the README."""
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    sys.stdout.flush()


def machine_line() -> str:
    """Date, CPU model, core count and library versions, for the report's heading."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as file:
            cpu = next(line.split(":", 1)[1].strip() for line in file if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{datetime.date.today().isoformat()}, {cpu}, {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, {device}; Python {platform.python_version()}, torch {torch.__version__}"
    )


# ---------------------------------------------------------------- memory
def rss_bytes() -> int:
    """The resident set size of this process now."""
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """The peak resident set size since start or since the last :func:`reset_peak_rss`."""
    try:
        with open("/proc/self/status") as file:
            for line in file:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"
