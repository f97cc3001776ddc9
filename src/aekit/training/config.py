"""What a training run is made of besides the model, the loss and the data: its settings, its history,
its optimizer and its learning-rate schedule."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from aekit.exceptions import InvalidParameterValue, plural

__all__ = ["LR_SCHEDULES", "History", "TrainConfig", "kept_losses", "make_optimizer", "make_scheduler"]

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


def kept_losses(history: dict, *, early_stopping: bool) -> dict:
    """The epoch whose weights a model kept, and its losses: ``kept_epoch``, ``kept_train_loss``, ``kept_val_loss``.

    With early stopping the best epoch's weights are restored; epoch 0 is the starting weights (for the
    anchored model PCA, whose validation loss is ``initial_loss``; it has no training loss). Without
    early stopping the last epoch's weights are kept.

    Examples
    --------
    >>> history = {"train_loss": [0.5, 0.3, 0.2], "val_loss": [0.6, 0.4, 0.45], "best_epoch": 2}
    >>> kept_losses(history, early_stopping=True)
    {'kept_epoch': 2, 'kept_train_loss': 0.3, 'kept_val_loss': 0.4}
    """
    train, val = list(history.get("train_loss") or []), list(history.get("val_loss") or [])
    kept = history.get("best_epoch") if early_stopping else len(train)
    if kept is None or kept > len(train):
        kept = len(train)
    if kept == 0:
        initial = history.get("initial_loss")
        return {"kept_epoch": 0, "kept_train_loss": None,
                "kept_val_loss": None if initial is None else float(initial)}
    return {"kept_epoch": int(kept), "kept_train_loss": float(train[kept - 1]),
            "kept_val_loss": float(val[kept - 1]) if len(val) >= kept else None}


def epochs_run(epochs: int, max_epochs: int | None, steps_per_epoch: int | None) -> str:
    """The epochs a fit ran, of how many at most (its budget: ``epochs``, or what ``epochs="auto"`` resolved to,
    ``history_["max_epochs"]``), and the optimizer steps each; the epochs alone for a model saved before the
    budget was recorded (``max_epochs`` None).

    Examples
    --------
    >>> epochs_run(3, 60, 4)
    '3 of at most 60 epochs, 4 steps each'
    >>> epochs_run(1, None, None), epochs_run(2, 5, None)
    ('1 epoch', '2 of at most 5 epochs')
    """
    if max_epochs is None:
        return plural(epochs, "epoch")
    steps = "" if steps_per_epoch is None else f", {plural(steps_per_epoch, 'step')} each"
    return f"{epochs} of at most {plural(max_epochs, 'epoch')}{steps}"


def make_optimizer(module: nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where this PyTorch supports it on ``device``."""
    try:
        return torch.optim.Adam(module.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(module.parameters(), lr=lr, foreach=device.type != "cpu")


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
