"""A lean training loop for in-memory data, blind to which model it trains.

One contiguous tensor on the device, one permutation per epoch, batches gathered with
``index_select``: no per-sample ``DataLoader`` overhead. The loss is summed on the device and read
back once per epoch, so the inner loop never waits for the host.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn
from tqdm.auto import tqdm

from aekit import hardware
from aekit.exceptions import InvalidParameterValue, ModelFileError, TrainingError, did_you_mean
from aekit.models import layers
from aekit.training import distributed
from aekit.training.devices import device_of

LossFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]
EVAL_BATCH_ROWS = 8192
LR_SCHEDULES = ("constant", "cosine", "plateau")
PRECISIONS = ("auto", "fp32", "bf16")
# precision="auto" picks bf16 where the device computes it natively and the model's largest weight
# matrix has at least this many entries. Below it, autocast's casts cost more than bf16's faster
# products save: one training step at batch 256 on a Xeon with AMX, fp32 / bf16 time: 784-1000-500-250-30
# 2.7x, 784-256-64-10 2.5x, 512-512-16 1.7x, but 256-256-64-10 0.7x and 128-64-10 0.9x.
BF16_MIN_WEIGHTS = 131_072
_warned_emulated_bf16: set[str] = set()
PROGRESS_LINES = 10  # verbose training writes about this many lines when stderr is not a terminal
_NOTEBOOK_BAR = any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)


@dataclass
class TrainConfig:
    """How to train: everything the loop needs besides the model, the loss and the data."""

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    lr_schedule: str = "constant"  # one of LR_SCHEDULES; stepped once per epoch
    early_stopping: bool = True
    patience: int = 10
    seed: int = 0
    verbose: bool = False
    precision: str = "auto"  # one of PRECISIONS (see resolve_precision); "bf16" runs the forward pass under autocast
    # What else makes a run (the caller's model settings, the data's shape), JSON-ready: a checkpoint
    # is resumed only when it is the same; the loop itself never reads it.
    run: dict = field(default_factory=dict)


@dataclass
class History:
    """Per-epoch losses and how training ended."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stop_reason: str = "max_epochs"
    seconds: float = 0.0
    initial_loss: float | None = None  # the monitored loss of the starting weights (epoch 0), when a candidate

    def to_dict(self) -> dict:
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "best_epoch": self.best_epoch,
            "n_epochs": len(self.train_loss),
            "stop_reason": self.stop_reason,
            "seconds": self.seconds,
            "initial_loss": self.initial_loss,
        }


def make_optimizer(module: nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where this PyTorch supports it on ``device``."""
    try:
        return torch.optim.Adam(module.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(module.parameters(), lr=lr, foreach=device.type != "cpu")


def staging_tensor(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An empty host tensor to gather rows into on their way to ``device``: pinned (page-locked) for a
    GPU, so that ``.to(device, non_blocking=True)`` copies it while the host goes on. PyTorch's caching
    host allocator does not hand a pinned block out again before the copies from it have finished, so
    the tensor may be dropped as soon as the copy is queued.

    Examples
    --------
    >>> staging_tensor((2, 3), torch.float32, torch.device("cpu")).is_pinned()
    False
    """
    return torch.empty(shape, dtype=dtype, pin_memory=device.type == "cuda")


class TensorSource:
    """Rows held in one tensor on the device: the in-memory data source of :func:`fit_module`.

    A data source has ``n_rows``, ``device`` and ``batches(batch_size, generator)``, which yields the
    rows in batches: shuffled with ``generator`` (here one permutation per epoch, gathered with
    ``index_select``), or in order when it is None. ``aekit.training.streaming.StreamSource`` is the other one.
    With ``rows`` (indices into ``X``), only those rows, in that order, without copying them out of
    ``X``: a training split of a data set costs no memory (``rows`` lives where ``X`` does). With
    ``transform``, each batch is passed through it on its way out, on ``device`` (e.g. scaling, so
    that ``X`` need not be scaled as a whole); it must not change its argument, which can be a view
    of ``X``. With a ``device`` other than ``X``'s (data too large for a GPU's memory), ``X`` stays
    where it is: each batch is gathered into pinned memory (:func:`staging_tensor`) and copied over
    without the host waiting for it.
    """

    def __init__(
        self,
        X: torch.Tensor,
        rows: torch.Tensor | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.X, self.rows, self.transform = X, rows, transform
        self.device = X.device if device is None else device_of(device)
        self.staged = X.device != self.device  # X stays where it is; each batch goes over on its own
        self.n_rows = len(X) if rows is None else len(rows)

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        for batch in self._rows(batch_size, generator):
            if self.staged:
                batch = batch.to(self.device, non_blocking=True)
            yield batch if self.transform is None else self.transform(batch)

    def _rows(self, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
        if generator is None and self.rows is None:
            for start in range(0, self.n_rows, batch_size):
                yield self.X[start : start + batch_size]
            return
        if generator is None:
            order = self.rows
        else:
            order = torch.randperm(self.n_rows, generator=generator).to(self.X.device)
            order = order if self.rows is None else self.rows[order]
        for start in range(0, self.n_rows, batch_size):
            index = order[start : start + batch_size]
            if self.staged:
                out = staging_tensor((len(index), *self.X.shape[1:]), self.X.dtype, self.device)
                yield torch.index_select(self.X, 0, index, out=out)
            else:
                yield self.X.index_select(0, index)


def as_source(data):
    """A tensor becomes a :class:`TensorSource`; a data source is returned as it is."""
    return data if hasattr(data, "batches") else TensorSource(data)


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


@torch.no_grad()
def _loss_sum(module: nn.Module, loss_fn: LossFn, source, precision: str = "fp32") -> tuple[float, int]:
    """Summed loss and row count over a data source, in eval mode, in large batches."""
    was_training = module.training
    module.eval()
    total = torch.zeros((), dtype=torch.float64, device=source.device)
    rows = 0
    for batch in source.batches(EVAL_BATCH_ROWS):
        with autocast(source.device, precision):
            loss = loss_fn(module, batch)
        total.add_(loss, alpha=len(batch))
        rows += len(batch)
    module.train(was_training)
    return float(total), rows


def evaluate(module: nn.Module, loss_fn: LossFn, X) -> float:
    """Mean loss over all rows of ``X`` (a tensor or a data source), in eval mode, in large batches."""
    total, rows = _loss_sum(module, loss_fn, as_source(X))
    return total / max(rows, 1)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """The per-epoch learning-rate schedule named by ``config.lr_schedule`` (None for "constant")."""
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(1, config.patience // 3))
    if config.lr_schedule != "constant":
        raise InvalidParameterValue(
            f"The 'lr_schedule' parameter must be one of {LR_SCHEDULES}. Got {config.lr_schedule!r} instead."
        )
    return None


def _module_choices(module: nn.Module) -> dict[str, dict]:
    """The training kernels timed for the shapes of ``module``'s linear layers (see
    :func:`aekit.models.layers.choices`);
    products too small to time always take ``F.linear`` and are not listed."""
    linear = [layer for layer in module.modules() if isinstance(layer, nn.Linear)]
    shapes = {f"{layer.in_features}x{layer.out_features}/" for layer in linear}
    return {key: value for key, value in layers.choices().items()
            if key[: key.index("/") + 1] in shapes and "/train/" in key and value.get("onednn_speedup") is not None}


def _state_copy(module: nn.Module) -> dict:
    return copy.deepcopy(module.state_dict())


class _StopRequest:
    requested = False


@contextmanager
def _stop_on_signal(enabled: bool) -> Iterator[_StopRequest | None]:
    """Turn the first Ctrl-C (SIGINT) or SIGTERM into a request to stop after the current step.

    A second Ctrl-C interrupts at once. Only in the main thread (Python allows no handler elsewhere).
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield None
        return
    stop = _StopRequest()

    def request(signum, frame):
        if stop.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.requested = True

    previous = {number: signal.signal(number, request) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _check_same_run(saved: dict, config: TrainConfig, folder) -> None:
    """Resuming with other settings would give a run that is neither the old one nor a new one."""
    current = asdict(config)
    saved_run = saved.get("run") if isinstance(saved.get("run"), dict) else {}
    pairs = [(k, saved.get(k), current[k]) for k in current if k not in ("epochs", "verbose", "run")]
    pairs += [(k, saved_run.get(k), config.run.get(k)) for k in sorted(set(saved_run) | set(config.run))]
    changed = [(k, then, now) for k, then, now in pairs if then != now]
    if changed:
        details = ", ".join(f"{k}={then!r:.80} in the checkpoint, {now!r:.80} now" for k, then, now in changed[:12])
        raise InvalidParameterValue(
            f"Cannot resume from the checkpoints in {str(folder)!r}: they were written with other settings "
            f"({details}). Resume with the same settings and data, or start afresh with resume=False."
        )


_SAVED_STATE = {  # what a checkpoint of this loop holds, and the type of each entry
    "epoch": int, "step": int, "config": dict, "module": dict, "optimizer": dict, "scheduler": (dict, type(None)),
    "generator": torch.Tensor, "torch_rng": torch.Tensor, "running": (torch.Tensor, type(None)), "rows_seen": int,
    "history": dict, "best_loss": (float, int), "best_state": (dict, type(None)), "last_good_state": dict,
    "epochs_without_improvement": int,
}


def _refuse_checkpoint(folder, what: str) -> None:
    raise ModelFileError(
        f"The checkpoint in {str(folder)!r} cannot be resumed: {what}. Delete that checkpoint folder, or start "
        "afresh with resume=False."
    )


def _check_saved_state(saved, folder) -> None:
    """Refuse a checkpoint whose state is not what this loop writes, before any of it is used."""
    def refuse(what: str) -> None:
        _refuse_checkpoint(folder, what)

    if not isinstance(saved, dict):
        refuse("its state is not an object")
    for key, kind in _SAVED_STATE.items():
        if key not in saved:
            refuse(f"{key!r} is missing")
        if not isinstance(saved[key], kind) or isinstance(saved[key], bool):
            refuse(f"{key!r} is a {type(saved[key]).__name__}")
    for key in ("epoch", "step", "rows_seen", "epochs_without_improvement"):
        if saved[key] < 0:
            refuse(f"{key!r} is {saved[key]}, below 0")
    history = saved["history"]
    if set(history) != {field.name for field in fields(History)} or not all(
        isinstance(history[key], list) and all(isinstance(v, (int, float)) for v in history[key])
        for key in ("train_loss", "val_loss")
    ) or not isinstance(history["stop_reason"], str):
        refuse("its 'history' is not a training history")
    kinds = {"best_epoch": int, "seconds": (int, float), "stop_reason": str}
    if not all(isinstance(history[key], kind) and not isinstance(history[key], bool) for key, kind in kinds.items()):
        refuse("its 'history' holds values of the wrong type")
    if saved["running"] is not None and saved["running"].numel() != 1:
        refuse("its running loss is not one number")
    if len(history["train_loss"]) != saved["epoch"]:
        refuse(f"it records {len(history['train_loss'])} epoch(s) of losses but says epoch {saved['epoch']}")


def _check_saved_tensors(saved: dict, folder, module: nn.Module) -> None:
    """The saved weights must be this module's tensors (a run with the same settings always has them)."""
    expected = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    for key in ("module", "last_good_state", *(("best_state",) if saved["best_state"] is not None else ())):
        shapes = {name: tuple(t.shape) if isinstance(t, torch.Tensor) else None for name, t in saved[key].items()}
        if shapes != expected:
            differing = sorted(k for k in set(shapes) | set(expected) if shapes.get(k) != expected.get(k))
            _refuse_checkpoint(folder, f"its {key!r} holds other tensors than this model's (first differing: "
                                       f"{differing[:3]}): another architecture")


def _same_kind(saved, fresh) -> bool:
    """Whether ``saved`` has the structure and value types of ``fresh`` (a state this code would write)."""
    if isinstance(fresh, dict):
        return isinstance(saved, dict) and set(saved) == set(fresh) and all(_same_kind(saved[k], fresh[k])
                                                                             for k in fresh)
    if isinstance(fresh, (list, tuple)):
        return (isinstance(saved, type(fresh)) and len(saved) == len(fresh)
                and all(_same_kind(a, b) for a, b in zip(saved, fresh, strict=True)))
    if isinstance(fresh, torch.Tensor):
        return isinstance(saved, torch.Tensor) and saved.shape == fresh.shape and saved.dtype == fresh.dtype
    if isinstance(fresh, bool) or fresh is None or isinstance(fresh, str):
        return type(saved) is type(fresh)
    if isinstance(fresh, float):
        return isinstance(saved, (int, float)) and not isinstance(saved, bool)
    return type(saved) is type(fresh)


def _check_optimizer_state(saved: dict, folder, optimizer: torch.optim.Optimizer, scheduler, lr: float) -> None:
    """Adam's and the scheduler's saved states must be what they write: hyper-parameters and moments alike."""
    fresh = optimizer.state_dict()
    state, groups = saved["optimizer"].get("state"), saved["optimizer"].get("param_groups")
    if set(saved["optimizer"]) != set(fresh) or not _same_kind(groups, fresh["param_groups"]):
        _refuse_checkpoint(folder, "its optimizer state is not Adam's for this model")
    if not all(0 < group["lr"] <= lr for group in groups):  # schedules only ever lower the rate
        _refuse_checkpoint(folder, f"its learning rate is outside (0, {lr:g}]")
    fixed = [(key, value) for group in fresh["param_groups"] for key, value in group.items() if key != "lr"]
    if [(key, value) for group in groups for key, value in group.items() if key != "lr"] != fixed:
        _refuse_checkpoint(folder, "its optimizer hyper-parameters (betas, eps, ...) are not the ones aekit uses")
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    for index, moments in (state.items() if isinstance(state, dict) else [(None, None)]):
        if not (isinstance(index, int) and 0 <= index < len(parameters) and isinstance(moments, dict)):
            _refuse_checkpoint(folder, "its optimizer state is not keyed by this model's parameters")
        shape = parameters[index].shape
        expected = {"step": torch.zeros(()), "exp_avg": torch.zeros(shape), "exp_avg_sq": torch.zeros(shape)}
        if not (_same_kind(moments, expected) and all(torch.isfinite(t).all() for t in moments.values())
                and moments["step"] >= 0 and bool((moments["exp_avg_sq"] >= 0).all())):
            _refuse_checkpoint(folder, f"its optimizer moments for parameter {index} do not fit it")
    if scheduler is not None:
        current = scheduler.state_dict()
        settings = {key for key in current if key not in _SCHEDULER_COUNTERS}
        if not _same_kind(saved["scheduler"], current) or any(saved["scheduler"][k] != current[k] for k in settings):
            _refuse_checkpoint(folder, "its learning-rate schedule state is not this schedule's")


# what a learning-rate scheduler's state changes as it steps; everything else is its settings
_SCHEDULER_COUNTERS = {"last_epoch", "_step_count", "_last_lr", "best", "num_bad_epochs", "cooldown_counter",
                       "_is_initial", "_get_lr_called_within_step"}


def fit_module(
    module: nn.Module,
    loss_fn: LossFn,
    X_train: torch.Tensor,
    X_val: torch.Tensor | None,
    config: TrainConfig,
    *,
    checkpointer=None,
    on_epoch_end: Callable[[int, bool], None] | None = None,
    initial_candidate: bool = False,
) -> History:
    """Train ``module`` in place on ``X_train`` and return its :class:`History`.

    Early stopping watches the validation loss (the training loss when ``X_val`` is None or empty)
    and restores the best weights. A non-finite loss restores the last good weights and raises
    :class:`~aekit.exceptions.TrainingError`.

    ``X_train`` and ``X_val`` are tensors or data sources (see :class:`TensorSource`). With a
    :class:`~aekit.training.checkpoint.Checkpointer`, the whole training state is saved every
    ``checkpointer.every`` epochs and at the end, training continues from the newest checkpoint when
    ``checkpointer.resume`` is set (bit for bit as if never stopped, on the same machine), and Ctrl-C
    or SIGTERM stops after the current step, saves, and raises ``KeyboardInterrupt`` saying how to
    resume. Under ``torchrun`` the module is wrapped in DistributedDataParallel and losses are summed
    over the ranks before every decision (see :mod:`aekit.training.distributed`).

    ``on_epoch_end(epoch, kept)``, when given, is called after each epoch's validation, with ``kept``
    True when the weights training ends with are, so far, this epoch's (it improved on the best
    loss, or early stopping is off): what a caller needs to keep numbers from the validation pass of
    the final weights instead of computing them again.

    With ``initial_candidate``, the starting weights are scored before the first step and compete
    with every epoch's as epoch 0 (``history.initial_loss``; ``best_epoch`` 0 when none beat them):
    a model that starts at a known solution (PCA) then ends no worse than it on the monitored loss.

    Examples
    --------
    >>> import torch
    >>> from aekit.models.mlp import LinearAutoencoder
    >>> model = LinearAutoencoder(4, 2)
    >>> mse = lambda m, x: ((m(x)[0] - x) ** 2).mean()
    >>> history = fit_module(model, mse, torch.randn(100, 4), None, TrainConfig(epochs=3))
    >>> len(history.train_loss)
    3
    """
    with _stop_on_signal(checkpointer is not None) as stop:
        return _train(module, loss_fn, X_train, X_val, config, checkpointer, stop, on_epoch_end, initial_candidate)


def _train(
    module, loss_fn, X_train, X_val, config: TrainConfig, checkpointer, stop, on_epoch_end, initial_candidate=False
) -> History:
    """The body of :func:`fit_module`, with the stop request (or None) installed."""
    train_source = as_source(X_train)
    val_source = as_source(X_val) if X_val is not None else None
    device = train_source.device
    precision = resolve_precision(config.precision, module, device)
    optimizer = make_optimizer(module, config.lr, device)
    scheduler = make_scheduler(optimizer, config)
    generator = torch.Generator().manual_seed(config.seed)
    history = History()
    has_val = val_source is not None and distributed.sum_over_ranks([val_source.n_rows])[0] > 0
    best_loss, best_state = math.inf, None
    last_good_state = _state_copy(module)
    epochs_without_improvement = 0
    start_epoch, skip_steps, running, rows_seen = 0, 0, None, 0
    # every rank must run the same number of steps, or DDP's all-reduce would wait forever
    steps_per_epoch = distributed.min_over_ranks(math.ceil(train_source.n_rows / config.batch_size))
    if steps_per_epoch == 0:
        raise TrainingError(
            f"No training rows{' on at least one of the processes' if distributed.world_size() > 1 else ''}: "
            "there is nothing to train on. Give more rows (or fewer processes)."
        )

    def training_state(epoch: int, step: int, generator_state: torch.Tensor, running, rows_seen: int) -> dict:
        """Everything needed to go on bit for bit from (epoch, step), for aekit.training.checkpoint."""
        return {
            "epoch": epoch, "step": step, "config": asdict(config), "module": module.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": None if scheduler is None else scheduler.state_dict(),
            "generator": generator_state, "torch_rng": torch.get_rng_state(), "running": running,
            "rows_seen": rows_seen, "history": {**asdict(history), "seconds": time.perf_counter() - started},
            "best_loss": best_loss, "best_state": best_state, "last_good_state": last_good_state,
            "epochs_without_improvement": epochs_without_improvement,
        }

    saved = None if checkpointer is None else checkpointer.latest()
    if saved is not None:
        _check_saved_state(saved, checkpointer.folder)
        _check_same_run(saved["config"], config, checkpointer.folder)
        _check_saved_tensors(saved, checkpointer.folder, module)
        _check_optimizer_state(saved, checkpointer.folder, optimizer, scheduler, config.lr)
        try:
            module.load_state_dict(saved["module"])
            optimizer.load_state_dict(saved["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(saved["scheduler"])
            generator.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as error:  # tampered
            raise ModelFileError(
                f"The checkpoint in {str(checkpointer.folder)!r} cannot be resumed: {type(error).__name__}: "
                f"{' '.join(str(error).split())[:200]}. Delete that checkpoint folder, or start afresh with "
                "resume=False."
            ) from None
        history = History(**saved["history"])
        best_loss, best_state, last_good_state = saved["best_loss"], saved["best_state"], saved["last_good_state"]
        epochs_without_improvement = saved["epochs_without_improvement"]
        start_epoch, skip_steps = saved["epoch"], saved["step"]
        running, rows_seen = saved["running"], saved["rows_seen"]
        if history.stop_reason == "early_stopping":
            start_epoch = config.epochs
    started = time.perf_counter() - history.seconds
    if initial_candidate and saved is None:  # epoch 0: the starting weights, scored like any epoch's
        total, count = distributed.sum_over_ranks(
            _loss_sum(module, loss_fn, val_source if has_val else train_source, config.precision)
        )
        best_loss = history.initial_loss = total / max(count, 1)
        if not math.isfinite(best_loss):
            best_loss = math.inf
        elif config.early_stopping:
            best_state = last_good_state
        if on_epoch_end is not None:
            on_epoch_end(-1, True)
    train_module = distributed.wrap(module)

    module.train()
    # a bar on a terminal; in a log (stderr not a terminal) a line every PROGRESS_LINES-th of the epochs
    on_terminal = sys.stderr.isatty() or _NOTEBOOK_BAR  # a notebook draws tqdm.auto's bar as a widget
    progress = tqdm(
        range(start_epoch, config.epochs), desc="training", unit="epoch",
        disable=not (config.verbose and on_terminal), leave=False,
    )
    log_every = max(1, config.epochs // PROGRESS_LINES) if config.verbose and not on_terminal else 0
    for epoch in progress:
        epoch_generator_state = generator.get_state()
        if skip_steps == 0:
            running, rows_seen = torch.zeros((), dtype=torch.float64, device=device), 0
        running = running.to(device)
        for step, batch in enumerate(train_source.batches(config.batch_size, generator)):
            if step == steps_per_epoch:
                break
            if step < skip_steps:  # resuming mid-epoch: the same permutation, minus the steps already done
                continue
            with autocast(device, precision):
                loss = loss_fn(train_module, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running.add_(loss.detach(), alpha=len(batch))  # one kernel, float64 sum; no host sync
            rows_seen += len(batch)
            if stop is not None and distributed.any_rank(stop.requested):
                state = training_state(epoch, step + 1, epoch_generator_state, running, rows_seen)
                path = checkpointer.save(state, epoch=epoch, step=step + 1)
                progress.close()
                raise KeyboardInterrupt(
                    f"Training stopped at epoch {epoch + 1}, step {step + 1}; checkpoint saved in "
                    f"{path or checkpointer.folder}. Resume with resume=True (CLI: --resume), same data and settings."
                )
        skip_steps = 0
        # chosen during the first steps; this module's layers only, not every choice the process made
        chosen = _module_choices(module) if config.verbose and epoch == start_epoch else {}
        if chosen:
            progress.write(f"linear-layer kernels ({layers.KERNEL_VARIABLE}={layers.requested_kernel()}, "
                           f"precision {precision}):\n  " + layers.describe(chosen).replace("\n", "\n  "),
                           file=sys.stderr)
        running_total, rows_total = distributed.sum_over_ranks([float(running), rows_seen])
        train_loss = running_total / max(rows_total, 1)
        if has_val:
            val_total, val_rows = distributed.sum_over_ranks(_loss_sum(module, loss_fn, val_source, precision))
        val_loss = val_total / max(val_rows, 1) if has_val else math.nan
        if not math.isfinite(train_loss) or (has_val and not math.isfinite(val_loss)):
            module.load_state_dict(last_good_state)
            history.seconds = time.perf_counter() - started
            history.stop_reason = "non_finite_loss"
            error = TrainingError(
                f"The training loss became {train_loss if not math.isfinite(train_loss) else val_loss} "
                f"at epoch {epoch + 1}. Try a lower learning rate (lr={config.lr:g} now), or check the data for "
                f"huge values. The module holds the weights of the last good epoch ({epoch})."
            )
            error.advice_at = str(error).index(" The module holds")  # where a caller may put its own ending
            raise error
        last_good_state = _state_copy(module)
        history.train_loss.append(train_loss)
        history.val_loss.append(val_loss)
        monitored = val_loss if has_val else train_loss
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(monitored)
        elif scheduler is not None:
            scheduler.step()
        progress.set_postfix(train=f"{train_loss:.4g}", val=f"{val_loss:.4g}")
        if log_every and ((epoch + 1) % log_every == 0 or epoch == 0) and distributed.is_main_process():
            print(f"epoch {epoch + 1}/{config.epochs}: train loss {train_loss:.5g}, validation loss {val_loss:.5g} "
                  f"({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
        improved = monitored < best_loss
        if improved:
            best_loss, history.best_epoch = monitored, epoch + 1
            epochs_without_improvement = 0
            if config.early_stopping:
                best_state = last_good_state
        if on_epoch_end is not None:
            on_epoch_end(epoch, improved or not config.early_stopping)
        if not improved:
            epochs_without_improvement += 1
            if config.early_stopping and epochs_without_improvement >= config.patience:
                history.stop_reason = "early_stopping"
                break
        if checkpointer is not None and checkpointer.due(epoch=epoch + 1, last_epoch=config.epochs):
            checkpointer.save(training_state(epoch + 1, 0, generator.get_state(), None, 0), epoch=epoch + 1, step=0)
    progress.close()
    if checkpointer is not None:  # the last one, whether training ran out of epochs or stopped early
        done = len(history.train_loss)
        checkpointer.save(training_state(done, 0, generator.get_state(), None, 0), epoch=done, step=0)
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    history.seconds = time.perf_counter() - started
    return history
