"""Multi-process training with PyTorch's own engine: ``torch.distributed`` and DistributedDataParallel.

All of aekit's distributed code is here, behind one branch (as in nanoGPT): a process started by
``torchrun`` has a ``RANK`` in its environment, any other process is a plain single-process run, for
which every function below is a no-op (``wrap`` returns the module, the reductions return their
input). The process group is the gloo backend on CPUs and NCCL on GPUs, initialised on first use
from torchrun's environment (``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``), so multi-node runs use torchrun's usual rendezvous options.

What the rest of aekit relies on: each rank trains on its own shard of the rows (:func:`shard`), the
gradients are averaged by DDP at every step, so the weights stay identical on every rank; losses
are summed over the ranks before any decision (early stopping, non-finite loss, Ctrl-C), so every
rank takes the same one; only the main process (rank 0) writes logs, checkpoints and the model.
"""

from __future__ import annotations

import atexit
import dataclasses
import gc
import importlib
import os
import warnings
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from aekit.data import shard_rows
from aekit.exceptions import InvalidInputError, InvalidParameterValue
from aekit.training.devices import device_of, module_device

__all__ = [
    "any_rank", "gather_over_ranks", "is_distributed", "is_main_process", "merged_over_ranks", "min_over_ranks",
    "rank", "row_range", "setup", "several_processes", "shard", "sum_over_ranks", "teardown", "world_size", "wrap",
]


_LAUNCH_VARIABLES = ("WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
S = TypeVar("S")


def is_distributed() -> bool:
    """Whether this process was started by ``torchrun`` (or any launcher that sets ``RANK``).

    Raises
    ------
    InvalidParameterValue
        ``RANK`` is set but is no integer.
    """
    text = os.environ.get("RANK", "-1")
    try:
        return int(text) != -1
    except ValueError:
        raise InvalidParameterValue(
            f"The environment variable RANK is {text!r}, not a process number. Start multi-process training with "
            "torchrun (which sets it), or unset RANK for a single process."
        ) from None


def _check_launch_environment() -> None:
    """torchrun sets RANK with WORLD_SIZE, MASTER_ADDR and MASTER_PORT; RANK alone is a stray variable."""
    missing = [name for name in _LAUNCH_VARIABLES if not os.environ.get(name)]
    if missing:
        raise InvalidParameterValue(
            f"RANK={os.environ['RANK']} is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: "
            "start multi-process training with torchrun (which sets them all), or unset RANK for a single process."
        )
    for name in ("WORLD_SIZE", "MASTER_PORT", "LOCAL_RANK"):
        text = os.environ.get(name, "0")
        if not text.isdigit():
            raise InvalidParameterValue(
                f"The environment variable {name} is {text!r}, not a non-negative integer. Start multi-process "
                "training with torchrun, or unset RANK for a single process."
            )


def setup(device: torch.device | None = None) -> None:
    """Join the process group of a torchrun launch (once); nothing for a single-process run.

    NCCL when training on CUDA (``device``; by default when this machine has CUDA), gloo otherwise.
    Each process uses the GPU ``LOCAL_RANK``.
    """
    if not is_distributed() or (dist.is_available() and dist.is_initialized()):
        return
    _check_launch_environment()
    use_cuda = torch.cuda.is_available() if device is None else device.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    # DistributedDataParallel imports torch._dynamo. Imported after the process group exists, that import
    # keeps references to the group, so that destroy_process_group() no longer frees it: gloo's threads
    # then live on into interpreter shutdown, where one releasing the tensors of the last collective
    # takes the GIL and aborts the process ("terminate called without an active exception"). Imported
    # first, it holds nothing, and teardown() joins those threads.
    importlib.import_module("torch._dynamo")

    dist.init_process_group(backend="nccl" if use_cuda else "gloo", **_store_of_this_attempt())
    atexit.register(teardown)  # on every exit path that runs Python's exit handlers


def _store_of_this_attempt() -> dict:
    """The rendezvous arguments of ``init_process_group`` that keep a restarted group off the previous one's keys.

    torchrun's agent hosts one store for the whole job and hands it to every attempt of a restarted
    group (``TORCHELASTIC_USE_AGENT_STORE``). The keys a group writes there while joining, among them
    the address each gloo rank listens on, outlive its processes. A restarted rank that reads a peer's
    key before the restarted peer has written it gets the address of a process that no longer exists:
    the connection is refused (``connectFullMesh``), or, should that port be in use again, it can hang.
    Under one agent every rank of an attempt has the same ``TORCHELASTIC_RESTART_COUNT``, so the keys
    of each attempt go under their own prefix. Agents on several machines count their restarts each
    for itself, so there no prefix is safe; the agents must not share their store.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or "TORCHELASTIC_RESTART_COUNT" not in os.environ:
        return {}  # a store of this attempt's own (rank 0 hosts it) or no restarts: nothing left over
    if os.environ.get("GROUP_WORLD_SIZE", "1") != "1":
        if os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0") != "0" and os.environ.get("RANK") == "0":
            warnings.warn(
                "torchrun's agents share one store across restarts (TORCHELASTIC_USE_AGENT_STORE=True): a restarted "
                "group may read the addresses of the processes it replaces and fail to connect. Set "
                "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in torchrun's environment on every machine.",
                RuntimeWarning,
                stacklevel=3,
            )
        return {}
    store, rank_, world_size_ = next(dist.rendezvous("env://"))
    prefix = f"aekit/attempt-{os.environ['TORCHELASTIC_RESTART_COUNT']}/"
    return {"store": dist.PrefixStore(prefix, store), "rank": rank_, "world_size": world_size_}


def teardown() -> None:
    """Leave the process group: free it and join its threads while the interpreter is fully alive.

    Runs by itself at exit (registered by :func:`setup`); call it earlier to end distributed work.
    Drop DistributedDataParallel wrappers first (the trainer does): a live one holds the group. Safe to
    call more than once; nothing in a single-process run.

    Examples
    --------
    >>> teardown()  # a single process: nothing to leave
    """
    if not _active():
        return
    gc.collect()  # a wrapper or a collective's work caught in a reference cycle would hold the group
    dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    """How many processes train together (1 when not distributed)."""
    return dist.get_world_size() if _active() else 1


def is_main_process() -> bool:
    """True on rank 0 and in single-process runs: the one process that writes files and logs."""
    return rank() == 0


def shard(rows: np.ndarray) -> np.ndarray:
    """This rank's share of ``rows``: every ``world_size``-th row from its rank (all rows when alone).

    Examples
    --------
    >>> shard(np.arange(5)).tolist()  # a single process keeps everything
    [0, 1, 2, 3, 4]
    """
    return rows[rank() :: world_size()]


def several_processes() -> bool:
    """Whether other processes train with this one (each on its own share of the rows)."""
    return world_size() > 1


def row_range(n_rows: int, name: str) -> tuple[int, int] | None:
    """This rank's contiguous range ``(start, stop)`` of ``n_rows`` rows (:func:`aekit.data.shard_rows`);
    None (all of them) in a single process. ``name`` names the rows in the error.

    Raises
    ------
    InvalidInputError
        Fewer rows than processes (every process raises it, so none waits for the others).

    Examples
    --------
    >>> row_range(10, "rows.npy") is None  # a single process reads every row
    True
    """
    if not several_processes():
        return None
    if n_rows < world_size():
        raise InvalidInputError(
            f"{name} holds {n_rows} row(s), fewer than the {world_size()} processes, each of which reads "
            "rows of its own. Start fewer processes (torchrun --nproc_per_node) or give more rows."
        )
    return shard_rows(n_rows, rank(), world_size())


def wrap(module: nn.Module) -> nn.Module:
    """``module`` wrapped in DistributedDataParallel when distributed, else ``module`` itself."""
    if not _active():
        return module
    device = module_device(module)
    return nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def _reduce(values: Sequence[float], op) -> list[float]:
    if not _active():
        return [float(v) for v in values]
    device = device_of("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=op)
    return tensor.tolist()


def sum_over_ranks(values: Sequence[float]) -> list[float]:
    """Each value summed over all ranks (the values themselves when not distributed).

    Examples
    --------
    >>> sum_over_ranks([1.5, 2])
    [1.5, 2.0]
    """
    return _reduce(values, dist.ReduceOp.SUM)


def min_over_ranks(value: int) -> int:
    """The smallest ``value`` over all ranks (so that every rank runs the same number of steps)."""
    return int(_reduce([value], dist.ReduceOp.MIN)[0])


def any_rank(flag: bool) -> bool:
    """True when ``flag`` is true on at least one rank (a stop request seen anywhere stops everyone)."""
    return bool(_reduce([float(flag)], dist.ReduceOp.MAX)[0])


def gather_over_ranks(values: np.ndarray) -> np.ndarray:
    """Every rank's 1-D ``values`` (lengths may differ), concatenated in rank order, on every rank.

    For small per-row results (one number a row) that a decision needs whole, such as the quantiles
    of the held-out scores behind a threshold. Returns ``values`` when not distributed.

    Examples
    --------
    >>> gather_over_ranks(np.array([0.5, 1.5], dtype=np.float32)).tolist()
    [0.5, 1.5]
    """
    if not _active():
        return values
    parts = _every_ranks(np.asarray(values, dtype=np.float64))
    return np.concatenate(parts).astype(np.asarray(values).dtype)  # float32 round-trips float64 exactly


def merged_over_ranks(statistics: S) -> S:
    """The statistics of every rank's rows, from this rank's: each rank's merged in rank order, on every rank.

    ``statistics`` is a dataclass with a ``merge(other)`` method (such as
    :class:`aekit.statistics.RowStatistics`) whose fields are numpy arrays, numbers, None or such
    dataclasses; a rank without rows passes empty statistics. This is the one place where a fit's
    statistics cross processes: the code that computes them sees only rows. Returns ``statistics``
    when not distributed.

    Examples
    --------
    >>> from aekit.statistics import RowStatistics
    >>> merged_over_ranks(RowStatistics.of(np.array([[1.0], [3.0]]))).mean.tolist()  # a single process: its own
    [2.0]
    """
    if not _active():
        return statistics
    merged = None
    for values in _every_ranks(np.array(_encoded(statistics), dtype=np.float64)):
        other, _ = _decoded(statistics, values, 0)
        merged = other if merged is None else merged.merge(other)
    return merged


def _every_ranks(values: np.ndarray) -> list[np.ndarray]:
    """Every rank's float64 1-D ``values`` (lengths may differ), in rank order."""
    ranks, own = dist.get_world_size(), dist.get_rank()
    sizes = [int(n) for n in _reduce([len(values) if r == own else 0 for r in range(ranks)], dist.ReduceOp.SUM)]
    device = device_of("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")
    padded = torch.zeros(max(sizes), dtype=torch.float64, device=device)  # all_gather takes equal shapes
    padded[: len(values)] = torch.from_numpy(values).to(device)
    parts = [torch.empty_like(padded) for _ in range(ranks)]
    dist.all_gather(parts, padded)
    return [part[:size].cpu().numpy() for part, size in zip(parts, sizes, strict=True)]


# How a value travels between ranks: a kind, then for arrays the number of dimensions and the shape, then the values
_KINDS = (type(None), int, float, np.float64, np.float32, np.int64, np.bool_)


def _encoded(value) -> list[float]:
    if dataclasses.is_dataclass(value):
        return [v for field in dataclasses.fields(value) for v in _encoded(getattr(value, field.name))]
    if value is None:
        return [0.0]
    if isinstance(value, int | float) and not isinstance(value, np.ndarray):
        return [float(_KINDS.index(int if isinstance(value, int | np.integer) else float)), float(value)]
    array = np.asarray(value)
    return [float(_KINDS.index(array.dtype.type)), float(array.ndim), *map(float, array.shape),
            *array.ravel().astype(np.float64)]


def _decoded(template, values: np.ndarray, at: int):
    """The value that :func:`_encoded` wrote from ``values[at]`` on, shaped as ``template``; and where it ends."""
    if dataclasses.is_dataclass(template):
        fields = {}
        for field in dataclasses.fields(template):
            fields[field.name], at = _decoded(getattr(template, field.name), values, at)
        return dataclasses.replace(template, **fields), at
    kind = _KINDS[int(values[at])]
    if kind is type(None):
        return None, at + 1
    if kind in (int, float):
        return kind(values[at + 1]), at + 2
    ndim = int(values[at + 1])
    shape = tuple(int(n) for n in values[at + 2 : at + 2 + ndim])
    start = at + 2 + ndim
    size = int(np.prod(shape))
    return values[start : start + size].astype(kind).reshape(shape), start + size
