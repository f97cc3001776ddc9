"""When training stops early: on a signal (Ctrl-C, SIGTERM) after the current step, or when the monitored
loss has not improved for ``patience`` epochs (keeping the best weights)."""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["EarlyStopping", "StopRequest", "stop_on_signal"]


class StopRequest:
    """Set by :func:`stop_on_signal`'s handler; the trainer reads ``requested`` after each step."""

    requested = False


@contextmanager
def stop_on_signal(enabled: bool) -> Iterator[StopRequest | None]:
    """Turn the first Ctrl-C (SIGINT) or SIGTERM into a request to stop after the current step.

    A second Ctrl-C interrupts at once. Only in the main thread (Python allows no handler elsewhere);
    yields None when not enabled or not there. The previous handlers come back on exit.

    Examples
    --------
    >>> with stop_on_signal(True) as stop:
    ...     stop.requested
    False
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield None
        return
    stop = StopRequest()

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


class EarlyStopping:
    """The best monitored loss so far, the weights that had it, and the epochs since it improved.

    With ``enabled`` False it still tracks the best loss (for the history) but keeps no weights and
    never asks to stop. Its three numbers go into checkpoints as ``best_loss``, ``best_state`` and
    ``epochs_without_improvement``.

    Examples
    --------
    >>> watch = EarlyStopping(enabled=True, patience=2)
    >>> [watch.consider(loss, state=f"weights of {loss}") for loss in (3.0, 2.0, 2.5, 2.1)]
    [True, True, False, False]
    >>> watch.should_stop, watch.best_state
    (True, 'weights of 2.0')
    """

    def __init__(self, *, enabled: bool, patience: int) -> None:
        self.enabled, self.patience = enabled, patience
        self.best_loss, self.best_state, self.epochs_without_improvement = math.inf, None, 0

    def start_from(self, loss: float, state) -> None:
        """The starting weights as the first candidate (scored before any step); a non-finite loss is none."""
        if math.isfinite(loss):
            self.best_loss = loss
            if self.enabled:
                self.best_state = state
        else:
            self.best_loss = math.inf

    def consider(self, loss: float, state) -> bool:
        """Record an epoch's monitored ``loss`` and its weights ``state``; True when it improved on the best."""
        if loss < self.best_loss:
            self.best_loss, self.epochs_without_improvement = loss, 0
            if self.enabled:
                self.best_state = state
            return True
        self.epochs_without_improvement += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.enabled and self.epochs_without_improvement >= self.patience

    def state(self) -> dict:
        return {"best_loss": self.best_loss, "best_state": self.best_state,
                "epochs_without_improvement": self.epochs_without_improvement}

    def load(self, saved: dict) -> None:
        self.best_loss, self.best_state = saved["best_loss"], saved["best_state"]
        self.epochs_without_improvement = saved["epochs_without_improvement"]
