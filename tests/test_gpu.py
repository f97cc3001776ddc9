"""The CUDA paths: data on the GPU once, or kept on the host and sent batch by batch through pinned memory.

Skipped where there is no GPU (CI); `benchmarks/gpu_check.sh` runs them on a machine with an NVIDIA GPU.
"""

import numpy as np
import pytest
import torch

import aekit.training.devices
from aekit import Autoencoder
from aekit.training.streaming import fit_stream
from conftest import assert_close

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")

PARAMS = dict(latent_dim=3, hidden_dims=(32,), epochs=4, batch_size=32, random_state=0)


def _weights(ae):
    return {name: value.detach().cpu() for name, value in ae.module_.state_dict().items()}


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 12)) @ rng.normal(size=(12, 12)) * 5 + 3
    return X.astype(np.float32)


def test_fit_on_the_gpu_learns_what_the_cpu_learns(data):
    gpu = Autoencoder(device="cuda", **PARAMS).fit(data)
    cpu = Autoencoder(device="cpu", **PARAMS).fit(data)
    assert next(gpu.module_.parameters()).device.type == "cuda"
    assert_close(gpu.history_["train_loss"], cpu.history_["train_loss"], rtol=1e-3, what="training losses")
    assert_close(gpu.transform(data), cpu.transform(data), rtol=1e-2, atol=1e-3, what="codes")


def test_data_kept_on_the_host_trains_as_data_on_the_gpu(data, monkeypatch):
    on_device = Autoencoder(device="cuda", **PARAMS).fit(data)
    monkeypatch.setattr(aekit.training.devices, "DEVICE_DATA_FRACTION", 0.0)  # nothing fits: every batch goes over
    staged = Autoencoder(device="cuda", **PARAMS).fit(data)
    for name, value in _weights(on_device).items():  # the same rows in the same order: the same arithmetic
        assert_close(_weights(staged)[name], value, rtol=1e-5, atol=1e-6, what=name)
    assert staged.threshold_ == pytest.approx(on_device.threshold_, rel=1e-5)


def test_fit_stream_on_the_gpu_with_validation_rows(data, tmp_path):
    path = tmp_path / "data.npy"
    np.save(path, data)
    # 70-row chunks and 32-row batches: every window leaves rows over for the next one
    streamed = fit_stream(Autoencoder(device="cuda", validation_fraction=0.2, **PARAMS), path, chunk_rows=70)
    assert np.isfinite(streamed.threshold_)
    assert streamed.history_["val_loss"][-1] < streamed.history_["val_loss"][0]
