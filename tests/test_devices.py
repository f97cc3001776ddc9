"""Devices: the device parameter, the device of a tensor or a module, whether training data fits on a GPU."""

import pytest
import torch
from torch import nn

from aekit.exceptions import InvalidParameterValue
from aekit.training.devices import data_fits_on, device_of, module_device, resolve_device


def test_device_of_names_a_gpu_with_its_index_as_its_tensors_do(monkeypatch):
    """TensorSource and fit compare the target device with X.device: "cuda" must equal "cuda:0" there."""
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert device_of("cuda") == torch.device("cuda", 1)
    assert device_of(torch.device("cuda", 0)) == torch.device("cuda", 0)
    assert device_of("cpu") == torch.device("cpu") != torch.device("cuda", 1)


def test_resolve_device_takes_auto_and_refuses_what_holds_no_data_or_is_missing(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InvalidParameterValue, match=r"^The 'device' parameter must be 'auto' or a torch device"):
        resolve_device("gpu0")
    with pytest.raises(InvalidParameterValue, match="must be a device that holds data"):
        resolve_device("meta")
    with pytest.raises(InvalidParameterValue, match=r"'cuda:1' but CUDA is not available on this machine"):
        resolve_device("cuda:1")


def test_module_device_is_where_its_parameters_are():
    assert module_device(nn.Linear(3, 2)) == torch.device("cpu")
    assert module_device(nn.ReLU()) == torch.device("cpu")  # no parameters


def test_data_stays_on_the_host_when_it_would_take_over_half_a_gpus_free_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 4000))
    assert data_fits_on(torch.device("cuda"), 500)
    assert not data_fits_on(torch.device("cuda"), 501)
    assert data_fits_on(torch.device("cpu"), 10**15)
