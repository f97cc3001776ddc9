"""Resuming a run from its newest checkpoint: every part of the saved state is checked before any of it
is used, then loaded into the module, optimizer, schedule and random generators.

A checkpoint written by another run (other settings, another architecture) or whose state is not
what the trainer writes (missing keys, wrong types, moments that do not fit) is refused with a
:class:`~aekit.exceptions.ModelFileError` or :class:`~aekit.exceptions.InvalidParameterValue` saying
which part and what to do.
"""

from __future__ import annotations

from dataclasses import asdict, fields

import torch
from torch import nn

from aekit.exceptions import InvalidParameterValue, ModelFileError, Setting, Words, joined
from aekit.training.config import History, TrainConfig

__all__ = ["restore"]


def restore(checkpointer, config: TrainConfig, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
            generator: torch.Generator) -> dict | None:
    """Load the newest checkpoint of ``checkpointer`` (when resuming) into ``module``, ``optimizer``,
    ``scheduler``, ``generator`` and torch's random state, and return the saved training state; None
    when there is nothing to resume from.

    Raises
    ------
    ModelFileError, InvalidParameterValue
        The checkpoint is not one this run can continue.
    """
    saved = None if checkpointer is None else checkpointer.latest()
    if saved is None:
        return None
    folder = checkpointer.folder
    _check_saved_state(saved, folder)
    _check_same_run(saved["config"], config, folder)
    _check_saved_tensors(saved, folder, module)
    _check_optimizer_state(saved, folder, optimizer, scheduler, config.lr)
    try:
        module.load_state_dict(saved["module"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as error:  # tampered
        raise ModelFileError(
            f"The checkpoint in {str(folder)!r} cannot be resumed: {type(error).__name__}: "
            f"{' '.join(str(error).split())[:200]}. Delete that checkpoint folder, or start afresh with "
            "resume=False."
        ) from None
    return saved


def _check_same_run(saved: dict, config: TrainConfig, folder) -> None:
    """Resuming with other settings would give a run that is neither the old one nor a new one."""
    current = asdict(config)
    saved_run = saved.get("run") if isinstance(saved.get("run"), dict) else {}
    pairs = [(k, saved.get(k), current[k]) for k in current if k not in ("epochs", "verbose", "run")]
    pairs += [(k, saved_run.get(k), config.run.get(k)) for k in sorted(set(saved_run) | set(config.run))]
    changed = [(k, then, now) for k, then, now in pairs if then != now]
    if changed:
        details = joined([Words(Setting(k, then, shown=_cut(then)), f" in the checkpoint, {now!r:.80} now")
                          for k, then, now in changed[:12]], ", ")
        raise InvalidParameterValue(Words(
            f"Cannot resume from the checkpoints in {str(folder)!r}: they were written with other settings (", details,
            "). Resume with the same settings and data, or start afresh with resume=False."))


def _cut(value) -> str | None:
    """A value's repr cut to 80 characters where it is longer (None: it is shown whole)."""
    text = repr(value)
    return text[:80] if len(text) > 80 else None


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
