"""A lean training loop for in-memory data, blind to which model it trains.

One contiguous tensor on the device, one permutation per epoch, batches gathered with
``index_select``: no per-sample ``DataLoader`` overhead. The loss is summed on the device and read
back once per epoch, so the inner loop never waits for the host.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from aekit.exceptions import InvalidParameterValue, TrainingError

LossFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]
EVAL_BATCH_ROWS = 8192
LR_SCHEDULES = ("constant", "cosine", "plateau")


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


@dataclass
class History:
    """Per-epoch losses and how training ended."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stop_reason: str = "max_epochs"
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "best_epoch": self.best_epoch,
            "n_epochs": len(self.train_loss),
            "stop_reason": self.stop_reason,
            "seconds": self.seconds,
        }


def make_optimizer(module: nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where this PyTorch supports it on ``device``."""
    try:
        return torch.optim.Adam(module.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(module.parameters(), lr=lr, foreach=device.type != "cpu")


@torch.no_grad()
def evaluate(module: nn.Module, loss_fn: LossFn, X: torch.Tensor) -> float:
    """Mean loss over all rows of ``X``, in eval mode, in large batches."""
    was_training = module.training
    module.eval()
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    for start in range(0, len(X), EVAL_BATCH_ROWS):
        batch = X[start : start + EVAL_BATCH_ROWS]
        total += loss_fn(module, batch).double() * len(batch)
    module.train(was_training)
    return float(total) / max(len(X), 1)


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


def _state_copy(module: nn.Module) -> dict:
    return copy.deepcopy(module.state_dict())


def fit_module(
    module: nn.Module,
    loss_fn: LossFn,
    X_train: torch.Tensor,
    X_val: torch.Tensor | None,
    config: TrainConfig,
) -> History:
    """Train ``module`` in place on ``X_train`` and return its :class:`History`.

    Early stopping watches the validation loss (the training loss when ``X_val`` is None or empty)
    and restores the best weights. A non-finite loss restores the last good weights and raises
    :class:`~aekit.exceptions.TrainingError`.

    Examples
    --------
    >>> import torch
    >>> from aekit.models import LinearAutoencoder
    >>> model = LinearAutoencoder(4, 2)
    >>> mse = lambda m, x: ((m(x)[0] - x) ** 2).mean()
    >>> history = fit_module(model, mse, torch.randn(100, 4), None, TrainConfig(epochs=3))
    >>> len(history.train_loss)
    3
    """
    device = X_train.device
    optimizer = make_optimizer(module, config.lr, device)
    scheduler = make_scheduler(optimizer, config)
    generator = torch.Generator().manual_seed(config.seed)
    history = History()
    has_val = X_val is not None and len(X_val) > 0
    best_loss, best_state = math.inf, None
    last_good_state = _state_copy(module)
    epochs_without_improvement = 0
    started = time.perf_counter()
    n_rows = len(X_train)

    module.train()
    progress = tqdm(range(config.epochs), desc="training", unit="epoch", disable=not config.verbose, leave=False)
    for epoch in progress:
        order = torch.randperm(n_rows, generator=generator).to(device)
        running = torch.zeros((), dtype=torch.float64, device=device)
        for start in range(0, n_rows, config.batch_size):
            batch = X_train.index_select(0, order[start : start + config.batch_size])
            loss = loss_fn(module, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.detach().double() * len(batch)
        train_loss = float(running) / n_rows
        val_loss = evaluate(module, loss_fn, X_val) if has_val else math.nan
        if not math.isfinite(train_loss) or (has_val and not math.isfinite(val_loss)):
            module.load_state_dict(last_good_state)
            history.seconds = time.perf_counter() - started
            history.stop_reason = "non_finite_loss"
            raise TrainingError(
                f"The training loss became {train_loss if not math.isfinite(train_loss) else val_loss} "
                f"at epoch {epoch + 1}. Try a lower learning rate (lr={config.lr:g} now), scale the data "
                "(scaler='standard'), or check the data for huge values. The weights of the last good "
                f"epoch ({epoch}) were kept."
            )
        last_good_state = _state_copy(module)
        history.train_loss.append(train_loss)
        history.val_loss.append(val_loss)
        monitored = val_loss if has_val else train_loss
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(monitored)
        elif scheduler is not None:
            scheduler.step()
        progress.set_postfix(train=f"{train_loss:.4g}", val=f"{val_loss:.4g}")
        if monitored < best_loss:
            best_loss, history.best_epoch = monitored, epoch + 1
            epochs_without_improvement = 0
            if config.early_stopping:
                best_state = last_good_state
        else:
            epochs_without_improvement += 1
            if config.early_stopping and epochs_without_improvement >= config.patience:
                history.stop_reason = "early_stopping"
                break
    progress.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    history.seconds = time.perf_counter() - started
    return history
