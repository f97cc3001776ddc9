"""A lean training loop for in-memory data, blind to which model it trains.

One contiguous tensor on the device, one permutation per epoch, batches gathered with
``index_select``: no per-sample ``DataLoader`` overhead. The loss is summed on the device and read
back once per epoch, so the inner loop never waits for the host.

The loop's neighbours each own a part of a run: :mod:`~aekit.training.config` (settings, history,
optimizer, schedule), :mod:`~aekit.training.precision` (bf16 or fp32, kernels),
:mod:`~aekit.training.stopping` (signals, early stopping), :mod:`~aekit.training.resume` (checking
and loading a checkpoint) and :mod:`~aekit.training.distributed` (nothing in one process).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict

import torch
from torch import nn
from tqdm.auto import tqdm

from aekit.exceptions import Setting, TrainingError, Words
from aekit.training import distributed
from aekit.training.config import History, TrainConfig, make_optimizer, make_scheduler
from aekit.training.devices import device_of
from aekit.training.precision import autocast, resolve_precision
from aekit.training.resume import restore
from aekit.training.stopping import EarlyStopping, stop_on_signal

__all__ = ["EVAL_BATCH_ROWS", "LossFn", "TensorSource", "as_source", "evaluate", "fit_module", "staging_tensor",
           "steps_per_epoch"]

LossFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]
EVAL_BATCH_ROWS = 8192
PROGRESS_LINES = 10  # verbose training writes about this many lines when stderr is not a terminal
PROGRESS_EPOCHS = 10  # ... and one at least every this many epochs: early stopping often ends a long budget early
_NOTEBOOK_BAR = any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)


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


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    """The optimizer steps of an epoch over ``n_rows`` rows (this process's) in batches of ``batch_size``:
    under torchrun the fewest any process has, which every process runs (DDP's all-reduce waits for all).

    Examples
    --------
    >>> steps_per_epoch(400, 64)
    7
    """
    return distributed.min_over_ranks(math.ceil(n_rows / batch_size))


def _state_copy(module: nn.Module) -> dict:
    """The module's weights, cloned (as deepcopy would, at a fraction of its cost)."""
    state = module.state_dict()
    copied = type(state)((name, value.detach().clone()) for name, value in state.items())
    copied._metadata = getattr(state, "_metadata", None)  # the version numbers load_state_dict may read
    return copied


def fit_module(
    module: nn.Module,
    loss_fn: LossFn,
    X_train: torch.Tensor,
    X_val: torch.Tensor | None,
    config: TrainConfig,
    *,
    checkpointer=None,
    start_loss_fn: LossFn | None = None,
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

    With ``start_loss_fn``, the starting weights are scored with it before the first step and compete
    with every epoch's as epoch 0 (``history.initial_loss``; ``best_epoch`` 0 when none beat them):
    a model that starts at a known solution (PCA) then ends no worse than it on the monitored loss.
    It is ``loss_fn`` itself, or a function that gives the starting weights' loss for less (the
    anchored model's PCA reconstruction, without its branches' products).

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
    with stop_on_signal(checkpointer is not None) as stop:
        return _train(module, loss_fn, X_train, X_val, config, checkpointer, stop, start_loss_fn)


def _train(
    module, loss_fn, X_train, X_val, config: TrainConfig, checkpointer, stop, start_loss_fn: LossFn | None = None,
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
    watch = EarlyStopping(enabled=config.early_stopping, patience=config.patience)
    last_good_state = _state_copy(module)
    start_epoch, skip_steps, running, rows_seen = 0, 0, None, 0
    n_steps = steps_per_epoch(train_source.n_rows, config.batch_size)
    if n_steps == 0:
        raise TrainingError(
            f"No training rows{' on at least one of the processes' if distributed.several_processes() else ''}: "
            "there is nothing to train on. Give more rows (or fewer processes)."
        )

    def training_state(epoch: int, step: int, generator_state: torch.Tensor, running, rows_seen: int) -> dict:
        """Everything needed to go on bit for bit from (epoch, step), for aekit.training.checkpoint."""
        return {
            "epoch": epoch, "step": step, "config": asdict(config), "module": module.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": None if scheduler is None else scheduler.state_dict(),
            "generator": generator_state, "torch_rng": torch.get_rng_state(), "running": running,
            "rows_seen": rows_seen, "history": {**asdict(history), "seconds": time.perf_counter() - started},
            **watch.state(), "last_good_state": last_good_state,
        }

    saved = restore(checkpointer, config, module, optimizer, scheduler, generator)
    if saved is not None:
        history = History(**saved["history"])
        watch.load(saved)
        last_good_state = saved["last_good_state"]
        start_epoch, skip_steps = saved["epoch"], saved["step"]
        running, rows_seen = saved["running"], saved["rows_seen"]
        if history.stop_reason == "early_stopping":
            start_epoch = config.epochs
    started = time.perf_counter() - history.seconds
    if start_loss_fn is not None and saved is None:  # epoch 0: the starting weights, scored like any epoch's
        total, count = distributed.sum_over_ranks(
            _loss_sum(module, start_loss_fn, val_source if has_val else train_source, config.precision)
        )
        history.initial_loss = total / max(count, 1)
        watch.start_from(history.initial_loss, last_good_state)

    module.train()
    # a bar on a terminal; in a log (stderr not a terminal) a line every PROGRESS_LINES-th of the epochs,
    # or every PROGRESS_EPOCHS epochs if that comes sooner
    on_terminal = sys.stderr.isatty() or _NOTEBOOK_BAR  # a notebook draws tqdm.auto's bar as a widget
    progress = tqdm(
        range(start_epoch, config.epochs), desc="training", unit="epoch",
        disable=not (config.verbose and on_terminal), leave=False,
    )
    logging = config.verbose and not on_terminal
    log_every = max(1, min(config.epochs // PROGRESS_LINES, PROGRESS_EPOCHS)) if logging else 0
    train_module = distributed.wrap(module)
    try:
        for epoch in progress:
            epoch_generator_state = generator.get_state()
            if skip_steps == 0:
                running, rows_seen = torch.zeros((), dtype=torch.float64, device=device), 0
            running = running.to(device)
            for step, batch in enumerate(train_source.batches(config.batch_size, generator)):
                if step == n_steps:
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
                    raise KeyboardInterrupt(
                        f"Training stopped at epoch {epoch + 1}, step {step + 1}; checkpoint saved in "
                        f"{path or checkpointer.folder}. Resume with resume=True (CLI: --resume), same data and "
                        "settings."
                    )
            skip_steps = 0
            running_total, rows_total = distributed.sum_over_ranks([float(running), rows_seen])
            train_loss = running_total / max(rows_total, 1)
            if has_val:
                val_total, val_rows = distributed.sum_over_ranks(_loss_sum(module, loss_fn, val_source, precision))
            val_loss = val_total / max(val_rows, 1) if has_val else math.nan
            if not math.isfinite(train_loss) or (has_val and not math.isfinite(val_loss)):
                module.load_state_dict(last_good_state)
                history.seconds = time.perf_counter() - started
                history.stop_reason = "non_finite_loss"
                raise _non_finite(train_loss if not math.isfinite(train_loss) else val_loss, epoch, config.lr)
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
                print(f"epoch {epoch + 1}/{config.epochs}: train loss {train_loss:.5g}, validation loss "
                      f"{val_loss:.5g} ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
            improved = watch.consider(monitored, last_good_state)
            if improved:
                history.best_epoch = epoch + 1
            if watch.should_stop:
                history.stop_reason = "early_stopping"
                break
            if checkpointer is not None and checkpointer.due(epoch=epoch + 1, last_epoch=config.epochs):
                state = training_state(epoch + 1, 0, generator.get_state(), None, 0)
                checkpointer.save(state, epoch=epoch + 1, step=0)
    finally:
        # On every way out (an error's traceback keeps this frame): a live DDP wrapper holds the process
        # group, which distributed.teardown() can then not free.
        del train_module
        progress.close()
    if checkpointer is not None:  # the last one, whether training ran out of epochs or stopped early
        done = len(history.train_loss)
        checkpointer.save(training_state(done, 0, generator.get_state(), None, 0), epoch=done, step=0)
    if watch.best_state is not None:
        module.load_state_dict(watch.best_state)
    module.eval()
    history.seconds = time.perf_counter() - started
    return history


def _non_finite(loss: float, epoch: int, lr: float) -> TrainingError:
    problem = f"The training loss became {loss} at epoch {epoch + 1}."
    hint = Words("Try a lower learning rate (", Setting("lr", lr, shown=f"{lr:g}"), " now), or check the data for huge "
                 "values.")
    return TrainingError(Words(problem, " ", hint, f" The module holds the weights of the last good epoch ({epoch})."),
                         problem=problem, param="lr", value=lr, hint=hint)
