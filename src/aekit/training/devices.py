"""Devices: which one a fit uses, which one a tensor or a module is on, whether the data fits on it.

The one place that turns a ``device`` parameter into a ``torch.device``. A device is always named
with its index once resolved (``cuda`` as ``cuda:N``, as a tensor on it reports its own), so under
``torchrun``, where :func:`aekit.training.distributed.setup` makes each process's GPU the current
one, ``device_of("cuda")`` is that process's GPU.
"""

from __future__ import annotations

import torch
from torch import nn

from aekit.exceptions import InvalidParameterValue, Parameter, Setting, Words, parameter_error

__all__ = ["DEVICE_DATA_FRACTION", "data_fits_on", "device_of", "module_device", "resolve_device"]

DEVICE_DATA_FRACTION = 0.5  # training data may take this much of a GPU's free memory; the rest is for training


def resolve_device(device: str) -> torch.device:
    """The ``device`` parameter as a torch device: ``"auto"`` is CUDA when available, else CPU; anything
    else must be a device this machine has (:class:`~aekit.exceptions.InvalidParameterValue` otherwise).

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise parameter_error("device", device, "'auto' or a torch device such as 'cpu' or 'cuda:0'") from None
    if resolved.type == "meta":  # meta tensors hold no data: nothing could be trained or computed
        raise parameter_error("device", device, "a device that holds data, such as 'cpu' or 'cuda'")
    if resolved.type != "cpu":
        _check_available(resolved, device)
    return resolved


def _check_available(resolved: torch.device, device: str) -> None:
    """Refuse a device this machine lacks (an MPS, XPU, HPU... device on a machine without one, cuda:7 on one GPU)."""
    backend = torch.backends.mps if resolved.type == "mps" else getattr(torch, resolved.type, None)
    is_available = getattr(backend, "is_available", None)
    try:
        available = bool(is_available()) if callable(is_available) else False
        count = getattr(backend, "device_count", None)
        n_devices = int(count()) if available and callable(count) and resolved.type != "mps" else None
    except (RuntimeError, AssertionError):  # a backend compiled in but unusable here
        available, n_devices = False, None
    name = "CUDA" if resolved.type == "cuda" else resolved.type.upper()
    if not available:
        raise InvalidParameterValue(
            problem=Words(Parameter("device"), f" is {device!r} but {name} is not available on this machine."),
            hint=Words("Use ", Setting("device", "auto"), " or 'cpu'."), param="device", value=device)
    if n_devices is not None and resolved.index is not None and resolved.index >= n_devices:
        raise InvalidParameterValue(
            problem=Words(Parameter("device"), f" is {device!r} but this machine has {n_devices} {name} device(s), "
                          "numbered from 0."),
            hint=Words("Use ", Setting("device", "auto"), f" or '{resolved.type}:0'."), param="device", value=device)


def device_of(device: torch.device | str) -> torch.device:
    """``device`` as a tensor on it reports its own: a GPU with its index ("cuda" is the current one,
    this process's GPU under torchrun).

    Examples
    --------
    >>> device_of("cpu")
    device(type='cpu')
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def module_device(module: nn.Module) -> torch.device:
    """The device ``module``'s parameters are on (the CPU for a module without any).

    Examples
    --------
    >>> module_device(nn.Linear(2, 1))
    device(type='cpu')
    """
    return next((parameter.device for parameter in module.parameters()), torch.device("cpu"))


def data_fits_on(device: torch.device, nbytes: int) -> bool:
    """Whether ``nbytes`` of training data should live on ``device`` for the whole fit.

    Always on the CPU. On a GPU when they take at most ``DEVICE_DATA_FRACTION`` of its free memory,
    leaving the rest for the model, its gradients, Adam's state and the activations; otherwise the
    data stays in host memory and each batch is copied over through pinned memory.
    """
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_DATA_FRACTION * free
