"""Training and encoding speed of aekit against what users would pick instead, and against the GEMM ceiling.

Workloads (batch 256, Adam, lr 1e-3, MSE):

- W1: the 784-1000-500-250-30 ReLU MLP autoencoder (mirrored decoder) on 60,000 x 784 float32 rows
  (MNIST's training images in [0, 1] when ``--data DIR`` holds mnist/, uniform noise of that shape otherwise).
- W2: the 128-64-10-64-128 ReLU autoencoder on 100,000 x 128 rows (seeded, a curved 10-d manifold plus noise).

Contenders, timed in this one process, one repeat of each in turn after one untimed warm-up round
(see ``_common.round_robin``):

- aekit: ``Autoencoder.fit`` as a user calls it: standard scaling, 10% validation rows evaluated every
  epoch, early stopping, the progress bar on. Its samples/s counts only the training rows, and its
  time is the whole of ``fit``, so the validation and scaling costs count against it.
  Its ``precision`` is the default, ``"auto"`` (bf16 only where native and the model is large enough),
  and its linear layers take the kernel of the default rule (``AEKIT_LINEAR_KERNEL=auto``).
- aekit fp32, aekit F.linear, aekit oneDNN: the same with ``precision="fp32"``, and with each kernel
  forced (``AEKIT_LINEAR_KERNEL``): aekit must be within 3% of the better kernel and of fp32.
- aekit bf16 (W1): the same with ``precision="bf16"`` (autocast); timed only where bf16 is native
  unless ``--bf16 always`` (emulated, one epoch of W1 takes many minutes, and ``"auto"`` never picks it).
- idiomatic: ``DataLoader(TensorDataset(X), batch_size=256, shuffle=True)``, ``torch.optim.Adam``,
  ``loss.item()`` per step, on the same architecture written in plain ``torch.nn`` (``nn.Linear``,
  ``nn.ReLU``), as a user's own loop has it (skorch and the lean loop train that module too).
- PyOD: ``pyod.models.auto_encoder.AutoEncoder`` with the same layers (``hidden_neuron_list``), no
  batch norm, no dropout, no weight decay; its training alone (the steps of its ``fit`` before it
  scores the training rows).
- skorch: ``skorch.NeuralNet`` wrapping that torch module, no validation split.
- GEMM ceilings: only the matrix products of one training step (forward, grad-input, grad-weight at
  the same shapes), once through ``torch.mm`` (MKL on the CPU) with preallocated outputs, once
  through oneDNN's linear operator (what aekit's layers call on the CPU; on AMD processors MKL takes
  its AVX2 path and oneDNN its AVX-512 one). The target is a fraction of the faster of the two.
- lean loop, for context (no target; its own ratios beside it): the loop the speed targets were
  measured with (one tensor, a permutation per epoch, ``index_select`` batches, fused Adam, the loss
  summed on the device), with no validation, scaling or checks: what aekit's validation pass and
  fixed work cost. (``validation_fraction=0`` would not show the trainer alone: the threshold then
  needs a forward pass over all the training rows, a third of an epoch's work.)

Then encoding (``transform`` against PyOD's ``decision_function`` and the bare torch encoder), and
the peak resident memory of one W1 ``fit`` against the size of the data.

Run: ``python benchmarks/bench_train.py`` (``make bench``); ``--scale 0.05 --repeats 2`` for a quick look;
``--device cuda`` trains every contender on the GPU (the memory figures stay the CPU's).
``--isa avx2,avx512`` runs the whole benchmark once per instruction-set setting, each in a fresh
process (``avx2``: oneDNN, MKL and ATen capped at AVX2 by ``ONEDNN_MAX_CPU_ISA``,
``MKL_ENABLE_INSTRUCTIONS`` and ``ATEN_CPU_CAPABILITY``, as on a processor without AVX-512 or
native bf16; ``avx512``: no cap), then prints one summary table per setting.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import gzip
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# as the `aekit` command sets it, before torch loads OpenMP below: its waiting threads sleep
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from _common import (
    DATA_ROOT,
    Missing,
    machine_line,
    median,
    mib,
    peak_rss_bytes,
    print_table,
    ratio,
    reset_peak_rss,
    round_robin,
    rss_bytes,
    spread,
)
from aekit import Autoencoder
from aekit.hardware import bf16_native
from aekit.models.layers import KERNEL_VARIABLE, onednn_available, onednn_linear

BATCH = 256
LR = 1e-3
VALIDATION_FRACTION = 0.1
DEVICE = torch.device("cpu")  # --device; every training contender runs there


def _synchronize() -> None:
    """Wait for the GPU's queued work, so that a timer read after it counts that work."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


@dataclass
class Workload:
    name: str
    rows: int
    features: int
    hidden: tuple[int, ...]
    latent: int
    epochs: int

    @property
    def layers(self) -> str:
        return "-".join(str(s) for s in (self.features, *self.hidden, self.latent, *self.hidden[::-1], self.features))


# ---------------------------------------------------------------- data
def _load_idx(path) -> np.ndarray:
    with gzip.open(path, "rb") as file:
        data = file.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def mnist(data: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """MNIST train and test images (``data``/mnist) as float32 rows in [0, 1], or None when absent."""
    root = data / "mnist"
    if not (root / "train-images-idx3-ubyte.gz").exists():
        return None
    train, test = (_load_idx(root / f"{part}-images-idx3-ubyte.gz") for part in ("train", "t10k"))
    return tuple(np.ascontiguousarray(a.reshape(len(a), -1), dtype=np.float32) / np.float32(255) for a in (train, test))


def w1_data(rows: int, data: Path = DATA_ROOT) -> tuple[np.ndarray, np.ndarray | None, str]:
    images = mnist(data)
    if images is None:
        rng = np.random.default_rng(0)
        return rng.random((rows, 784), dtype=np.float32), None, f"uniform noise ({data / 'mnist'} is absent)"
    return images[0][:rows], images[1], "MNIST training images"


def w2_data(rows: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    codes = rng.normal(size=(rows, 10)).astype(np.float32)
    mixing = rng.normal(size=(10, 128)).astype(np.float32) / np.float32(math.sqrt(10))
    noise = rng.normal(scale=0.1, size=(rows, 128)).astype(np.float32)
    return np.tanh(codes @ mixing) + noise


# ---------------------------------------------------------------- contenders
class PlainAutoencoder(nn.Module):
    """The same architecture in torch.nn alone (``nn.Linear``, ``nn.ReLU``), as a user's own loop has it;
    ``forward`` returns ``(reconstruction, latent)`` as aekit's modules do."""

    def __init__(self, work: Workload) -> None:
        super().__init__()

        def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
            layers: list[nn.Module] = []
            for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
                layers += [nn.Linear(fan_in, fan_out)] + ([nn.ReLU()] if index < len(sizes) - 2 else [])
            return nn.Sequential(*layers)

        self.encoder = mlp((work.features, *work.hidden, work.latent))
        self.decoder = mlp((work.latent, *work.hidden[::-1], work.features))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.encoder(x)
        return self.decoder(latent), latent


def _module(work: Workload) -> PlainAutoencoder:
    """The peers' module: plain torch.nn (aekit's own layers would hand them oneDNN's products too)."""
    torch.manual_seed(0)
    return PlainAutoencoder(work)


def aekit_fit(X: np.ndarray, work: Workload, precision: str, keep: dict, kernel: str = "auto"):
    def run() -> float:
        os.environ[KERNEL_VARIABLE] = kernel  # read at every layer call: this fit's kernels
        estimator = Autoencoder(
            work.latent, hidden_dims=work.hidden, activation="relu", loss="mse", scaler="standard",
            epochs=work.epochs, batch_size=BATCH, lr=LR, validation_fraction=VALIDATION_FRACTION,
            early_stopping=True, random_state=0, device=str(DEVICE), verbose=1, precision=precision,
        )
        with contextlib.redirect_stderr(io.StringIO()):  # the progress bar is drawn, just not shown
            started = time.perf_counter()
            estimator.fit(X)
            elapsed = time.perf_counter() - started
        keep[f"aekit {precision}" if kernel == "auto" else f"aekit {kernel}"] = estimator
        n_train = len(X) - int(round(len(X) * VALIDATION_FRACTION))
        return n_train * estimator.n_iter_ / elapsed

    return run


def idiomatic(X: np.ndarray, work: Workload):
    def run() -> float:
        module = _module(work).to(DEVICE)
        optimizer = torch.optim.Adam(module.parameters(), lr=LR)
        loader = DataLoader(TensorDataset(torch.from_numpy(X)), batch_size=BATCH, shuffle=True,
                            pin_memory=DEVICE.type == "cuda")
        started = time.perf_counter()
        for _ in range(work.epochs):
            total = 0.0
            for (batch,) in loader:
                batch = batch.to(DEVICE, non_blocking=True)
                optimizer.zero_grad()
                loss = F.mse_loss(module(batch)[0], batch)
                loss.backward()
                optimizer.step()
                total += loss.item()
        return len(X) * work.epochs / (time.perf_counter() - started)

    return run


def lean_loop(X: np.ndarray, work: Workload):
    """The loop the speed targets were set with: one tensor, a permutation per epoch, fused Adam."""
    def run() -> float:
        module = _module(work).to(DEVICE)
        optimizer = torch.optim.Adam(module.parameters(), lr=LR, fused=True)
        started = time.perf_counter()
        data, generator = torch.from_numpy(X).to(DEVICE), torch.Generator().manual_seed(0)  # moved once, timed
        for _ in range(work.epochs):
            order = torch.randperm(len(data), generator=generator).to(DEVICE)
            total = torch.zeros((), dtype=torch.float64, device=DEVICE)
            for start in range(0, len(data), BATCH):
                batch = data.index_select(0, order[start : start + BATCH])
                loss = F.mse_loss(module(batch)[0], batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total.add_(loss.detach(), alpha=len(batch))
            float(total)  # one read of the epoch's loss, as a loop that logs it would
        return len(X) * work.epochs / (time.perf_counter() - started)

    return run


def pyod_train(X: np.ndarray, work: Workload, keep: dict):
    def run() -> float:
        try:
            from pyod.models.auto_encoder import AutoEncoder as PyODAutoEncoder
            from pyod.utils.torch_utility import TorchDataset
        except ImportError:
            raise Missing("pyod is not installed: pip install -e '.[bench]'") from None
        detector = PyODAutoEncoder(
            hidden_neuron_list=[*work.hidden, work.latent], hidden_activation_name="relu", batch_norm=False,
            dropout_rate=0.0, epoch_num=work.epochs, batch_size=BATCH, lr=LR, optimizer_params={},
            preprocessing=True, device=str(DEVICE), random_state=0, verbose=0, contamination=0.05,
        )
        started = time.perf_counter()
        # PyOD 2.x/3.x AutoEncoder.fit up to (not including) scoring the training rows
        detector._set_n_classes(None)
        detector.data_num, detector.feature_size = X.shape
        detector.build_model()
        detector.training_prepare()
        detector.X_mean, detector.X_std = np.mean(X, axis=0), np.std(X, axis=0)
        dataset = TorchDataset(X=X, y=None, mean=detector.X_mean, std=detector.X_std)
        detector.train(DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True))
        elapsed = time.perf_counter() - started
        keep["pyod"] = detector
        return (len(X) // BATCH) * BATCH * work.epochs / elapsed

    return run


class _Reconstruction(nn.Module):
    """skorch's criterion takes one output tensor; aekit's module returns (reconstruction, latent)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)[0]


def skorch_fit(X: np.ndarray, work: Workload):
    def run() -> float:
        try:
            from skorch import NeuralNet
        except ImportError:
            raise Missing("skorch is not installed: pip install -e '.[bench]'") from None
        net = NeuralNet(
            _Reconstruction(_module(work)), criterion=nn.MSELoss, optimizer=torch.optim.Adam, lr=LR,
            max_epochs=work.epochs, batch_size=BATCH, train_split=None, iterator_train__shuffle=True,
            device=str(DEVICE), verbose=0,
        )
        started = time.perf_counter()
        net.fit(X, X)
        return len(X) * work.epochs / (time.perf_counter() - started)

    return run


def gemm_ceiling(work: Workload, steps: int, dtype: torch.dtype = torch.float32, onednn: bool = False):
    """Samples/s if a training step were nothing but its matrix products: ``torch.mm`` (MKL on the
    CPU, cuBLAS on a GPU) into preallocated outputs, or with ``onednn`` oneDNN's linear operator
    (what ``aekit.models.layers.Linear`` calls on the CPU; it allocates its outputs)."""
    encoder = (work.features, *work.hidden, work.latent)
    decoder = (work.latent, *work.hidden[::-1], work.features)
    shapes = list(zip(encoder[:-1], encoder[1:], strict=True)) + list(zip(decoder[:-1], decoder[1:], strict=True))
    generator = torch.Generator().manual_seed(0)
    layers = []
    for fan_in, fan_out in shapes:
        tensors = [torch.randn(*shape, generator=generator).to(DEVICE, dtype) for shape in
                   ((BATCH, fan_in), (fan_out, fan_in), (BATCH, fan_out))]
        outputs = [torch.empty(*shape, dtype=dtype, device=DEVICE)
                   for shape in ((BATCH, fan_out), (BATCH, fan_in), (fan_out, fan_in))]
        layers.append((tensors, outputs))

    def run() -> float:
        started = time.perf_counter()
        for _ in range(steps):
            for index, ((x, weight, grad_y), (y, grad_x, grad_w)) in enumerate(layers):
                if onednn:
                    onednn_linear(x, weight, None)
                    if index > 0:  # the first layer's input needs no gradient
                        onednn_linear(grad_y, weight.t(), None)
                    onednn_linear(grad_y.t(), x.t(), None)
                    continue
                torch.mm(x, weight.t(), out=y)
                if index > 0:
                    torch.mm(grad_y, weight, out=grad_x)
                torch.mm(grad_y.t(), x, out=grad_w)
        _synchronize()
        return BATCH * steps / (time.perf_counter() - started)

    return run


# ---------------------------------------------------------------- reports
CEILING = "GEMM ceiling"  # the rows whose names start so; the target is against the faster one
TARGETS = {
    ("W1", CEILING): 0.85, ("W1", "PyOD"): 1.2, ("W1", "idiomatic"): 1.1, ("W1", "skorch"): 1.1,
    ("W2", "idiomatic"): 2.0, ("W2", "PyOD"): 3.5,
}


def training(work: Workload, X: np.ndarray, X_test: np.ndarray | None, repeats: int, warmup: int,
             bf16: str = "native") -> dict:
    fitted: dict = {}
    steps = math.ceil(len(X) / BATCH)
    contenders = {"aekit": aekit_fit(X, work, "auto", fitted), "aekit fp32": aekit_fit(X, work, "fp32", fitted)}
    if DEVICE.type == "cpu" and onednn_available():
        contenders["aekit F.linear"] = aekit_fit(X, work, "auto", fitted, kernel="default")
        contenders["aekit oneDNN"] = aekit_fit(X, work, "auto", fitted, kernel="onednn")
    if work.name == "W1" and (bf16 == "always" or (bf16 == "native" and bf16_native(DEVICE))):
        contenders["aekit bf16"] = aekit_fit(X, work, "bf16", fitted)
    elif work.name == "W1" and bf16 == "native":
        print(f"\n{work.name} aekit bf16: skipped, this {DEVICE.type} has no native bf16 (emulated, it runs at a tenth "
              "of fp32's speed or less; --bf16 always times it)")
    contenders.update({
        "idiomatic": idiomatic(X, work), "PyOD": pyod_train(X, work, fitted), "skorch": skorch_fit(X, work),
        f"{CEILING} ({'torch.mm, MKL' if DEVICE.type == 'cpu' else 'torch.mm'})": gemm_ceiling(work, steps),
    })
    if DEVICE.type == "cpu" and onednn_available():
        contenders[f"{CEILING} (oneDNN)"] = gemm_ceiling(work, steps, onednn=True)
    contenders["lean loop"] = lean_loop(X, work)  # context, no target: the targets' reference loop
    print(f"\n== {work.name}: {work.layers}, {len(X):,} x {work.features}, batch {BATCH}, {work.epochs} epoch(s)")
    results = round_robin(contenders, repeats, warmup=warmup)
    ceilings = {name: median(figures) for name, figures in results.items() if name.startswith(CEILING)}
    best_ceiling = max(ceilings, key=ceilings.get)
    rows = []
    for name, figures in results.items():
        if name == "aekit":
            versus = "-"
        else:
            versus = ratio(results["aekit"], figures)
            if name in ceilings:
                versus = f"aekit at {median(results['aekit']) / median(figures):.0%}"
        target = TARGETS.get((work.name, CEILING if name in ceilings else name))
        target_text = "" if target is None else f">= {target}x"
        if target is not None and name in ceilings:
            target_text = f">= {target:.0%} of the faster ceiling" if name == best_ceiling else ""
        if name in ("aekit fp32", "aekit F.linear", "aekit oneDNN"):
            target_text = "aekit >= 0.97x"
        if name == "aekit bf16":
            versus = f"{ratio(figures, results['idiomatic'])} the fp32 idiomatic loop"
            target_text = ">= 1.6x"
        if name == "lean loop":
            versus = (f"it: {ratio(figures, results['idiomatic'])} idiomatic, {ratio(figures, results['PyOD'])} PyOD, "
                      f"{median(figures) / ceilings[best_ceiling]:.0%} of the faster ceiling"
                      if "PyOD" in results else f"it: {ratio(figures, results['idiomatic'])} idiomatic")
        rows.append((name, spread(figures, "samples/s"), versus, target_text))
    print_table(f"{work.name} training throughput", rows, ("contender", "median [min-max]", "aekit vs it", "target"))
    fitted["_medians"] = {name: median(figures) for name, figures in results.items() if figures}
    if X_test is not None and "aekit bf16" in fitted:
        errors = {p: float(fitted[f"aekit {p}"].reconstruction_error(X_test).mean()) for p in ("fp32", "bf16", "auto")}
        print(
            f"\n{work.name} test reconstruction error (MSE per value, scaled space, after {work.epochs} epoch(s)): "
            f"fp32 {errors['fp32']:.5f}, bf16 {errors['bf16']:.5f} ({errors['bf16'] / errors['fp32'] - 1:+.1%}), "
            f"auto ({fitted['aekit auto'].precision_}) {errors['auto']:.5f}"
        )
    elif "aekit bf16" in fitted:
        print(f"\n{work.name} bf16 reconstruction error: skipped (no test images: --data holds no mnist/)")
    return fitted


def encoding(work: Workload, X: np.ndarray, fitted: dict, repeats: int, warmup: int) -> None:
    estimator = fitted.get("aekit fp32")
    if estimator is None:
        return
    X_scaled = torch.from_numpy(estimator.scaler_.transform(X).astype(np.float32))

    def bare_encoder() -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            for start in range(0, len(X_scaled), 8192):
                estimator.module_.encode(X_scaled[start : start + 8192].to(DEVICE)).cpu()  # host to host, as transform
        return len(X) / (time.perf_counter() - started)

    def aekit_transform() -> float:
        started = time.perf_counter()
        estimator.transform(X)
        return len(X) / (time.perf_counter() - started)

    def pyod_scores() -> float:
        if "pyod" not in fitted:
            raise Missing("pyod is not installed: pip install -e '.[bench]'")
        started = time.perf_counter()
        fitted["pyod"].decision_function(X)
        return len(X) / (time.perf_counter() - started)

    print(f"\n== {work.name} encoding, {len(X):,} rows")
    results = round_robin({"aekit transform": aekit_transform, "PyOD decision_function": pyod_scores,
                           "torch encoder alone": bare_encoder}, repeats, warmup=warmup)
    target = {"W1": 1.2, "W2": 10.0}[work.name]
    rows = [(name, spread(figures, "rows/s"),
             "-" if name == "aekit transform" else ratio(results["aekit transform"], figures),
             f">= {target}x" if name.startswith("PyOD") else "")
            for name, figures in results.items()]
    print_table(f"{work.name} encoding throughput", rows, ("contender", "median [min-max]", "aekit vs it", "target"))


def memory_child(work: Workload, X: np.ndarray, which: str) -> None:
    """In a fresh process: the peak resident memory of one ``fit`` above the process just before it."""
    if which == "aekit":
        estimator = Autoencoder(work.latent, hidden_dims=work.hidden, loss="mse", epochs=1, batch_size=BATCH,
                                random_state=0, device="cpu")
        fit = estimator.fit
    else:
        from pyod.models.auto_encoder import AutoEncoder as PyODAutoEncoder

        fit = PyODAutoEncoder(hidden_neuron_list=[*work.hidden, work.latent], batch_norm=False, dropout_rate=0.0,
                              epoch_num=1, batch_size=BATCH, optimizer_params={}, device="cpu", verbose=0).fit
    # a small fit first, so that code pages and thread pools loaded on first use are not counted
    warm_up = X[:512, : min(64, X.shape[1])]
    Autoencoder(2, hidden_dims=(8,), epochs=1, device="cpu").fit(warm_up)
    if which == "pyod":
        PyODAutoEncoder(hidden_neuron_list=[8, 2], epoch_num=1, device="cpu", verbose=0).fit(warm_up)
    gc.collect()
    before = rss_bytes()
    if not reset_peak_rss():
        print(json.dumps({"skipped": "this system cannot reset the peak-RSS mark (/proc/self/clear_refs)"}))
        return
    fit(X)
    print(json.dumps({"before": before, "increase": peak_rss_bytes() - before}))


def memory(work: Workload, X: np.ndarray, scale: float) -> None:
    """Peak resident memory of one W1 ``fit``, each measured in a fresh process (no reused heap)."""
    rows = []
    for which in ("aekit", "pyod"):
        if which == "pyod" and importlib.util.find_spec("pyod") is None:
            rows.append((which, "skipped (pyod is not installed: pip install -e '.[bench]')", "", ""))
            continue
        command = [sys.executable, __file__, "--memory-child", which, "--scale", str(scale)]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        try:
            result = json.loads(completed.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            rows.append((which, f"failed: {completed.stderr.strip().splitlines()[-1:]}", "", ""))
            continue
        if "skipped" in result:
            rows.append((which, f"skipped ({result['skipped']})", "", ""))
            continue
        rows.append((f"{which} fit", mib(result["increase"]), f"{result['increase'] / X.nbytes:.2f}x",
                     f"process before: {mib(result['before'])}"))
    n_params = sum(p.numel() for p in _module(work).parameters())
    state = n_params * 4 * 4  # weights, gradients, Adam's two moments, float32
    target = f"target: <= {mib(2 * X.nbytes + state)} (2 x data + model and Adam state {mib(state)})"
    print_table(f"{work.name} peak resident memory of one fit (1 epoch) above the process before it, data "
                f"{mib(X.nbytes)}; {target}", rows, ("fit", "peak increase", "vs data size", "note"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the rows to use (quick runs)")
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="folder holding mnist/ (W1's images)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed rounds first (lazy imports, thread pools, first pages; default: 1)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per training repeat")
    parser.add_argument("--workloads", default="W1,W2")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="where every contender trains: cpu (default) or cuda")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--bf16", choices=("native", "always", "never"), default="native",
                        help="the explicit precision='bf16' contender (W1): where bf16 is native (default), always "
                        "(emulated bf16 takes many minutes per epoch), or never")
    parser.add_argument("--memory-child", choices=("aekit", "pyod"), help=argparse.SUPPRESS)
    parser.add_argument("--isa", help="comma-separated instruction-set settings, each run in a fresh process: "
                        + ", ".join(ISA_SETTINGS))
    parser.add_argument("--summary-json", help=argparse.SUPPRESS)  # where an --isa child leaves its medians
    args = parser.parse_args(argv)
    if args.isa:
        isa_runs(args.isa.split(","), [a for a in (sys.argv[1:] if argv is None else argv)])
        return
    if args.memory_child:
        memory_child(Workload("W1", int(60_000 * args.scale), 784, (1000, 500, 250), 30, 1),
                     w1_data(int(60_000 * args.scale), args.data)[0], args.memory_child)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    global DEVICE
    DEVICE = torch.device(args.device)
    print(f"# aekit training benchmark: {machine_line()}; training on {DEVICE}; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    workloads = {
        "W1": Workload("W1", int(60_000 * args.scale), 784, (1000, 500, 250), 30, args.epochs),
        "W2": Workload("W2", int(100_000 * args.scale), 128, (64,), 10, args.epochs),
    }
    summary = {}
    for name in args.workloads.split(","):
        work = workloads[name]
        if name == "W1":
            X, X_test, source = w1_data(work.rows, args.data)
            print(f"W1 data: {source}")
        else:
            X, X_test = w2_data(work.rows), None
        fitted = training(work, X, X_test, args.repeats, args.warmup, args.bf16)
        summary[name] = fitted.pop("_medians")
        encoding(work, X, fitted, args.repeats, args.warmup)
        if name == "W1" and not args.skip_memory:
            memory(work, X, args.scale)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    if args.summary_json:
        with open(args.summary_json, "w") as file:
            json.dump(summary, file)


ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")
ISA_SETTINGS = {
    "avx2": dict(zip(ISA_CAPS, ("AVX2", "AVX2", "avx2"), strict=True)),  # as a CPU without AVX-512 or native bf16
    "avx512": {},  # no cap: what the processor has
}
SUMMARY_TARGETS = {("W1", "idiomatic"): 1.2, ("W1", "PyOD"): 1.2, ("W2", "idiomatic"): 2.0, ("W2", "PyOD"): 3.0}


def isa_runs(settings: list[str], argv: list[str]) -> None:
    """The benchmark once per ISA setting, each in a fresh process (the caps are read at library load),
    then one table per setting: aekit against the idiomatic loop and PyOD, the better kernel and fp32."""
    import tempfile

    unknown = [name for name in settings if name not in ISA_SETTINGS]
    if unknown:
        raise SystemExit(f"bench_train.py: unknown --isa setting(s) {unknown}; choose from {sorted(ISA_SETTINGS)}")
    child_argv = [a for i, a in enumerate(argv) if a != "--isa" and not a.startswith("--isa=")
                  and (i == 0 or argv[i - 1] != "--isa")]
    summaries = {}
    for name in settings:
        env = {key: value for key, value in os.environ.items() if key not in ISA_CAPS}
        env.update(ISA_SETTINGS[name])
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "summary.json")
            print(f"\n######## --isa {name}: {ISA_SETTINGS[name] or 'no caps'}", flush=True)
            subprocess.run([sys.executable, __file__, *child_argv, "--summary-json", path], env=env, check=True)
            with open(path) as file:
                summaries[name] = json.load(file)
    for name, summary in summaries.items():
        rows = []
        for work, medians in summary.items():
            aekit = medians["aekit"]
            kernels = [medians[k] for k in ("aekit F.linear", "aekit oneDNN") if k in medians]
            for peer in ("idiomatic", "PyOD"):
                if peer in medians:
                    rows.append((work, f"vs {peer}", f"{aekit / medians[peer]:.2f}x",
                                 f">= {SUMMARY_TARGETS[(work, peer)]}x"))
            if kernels:
                rows.append((work, "vs the better kernel forced", f"{aekit / max(kernels):.2f}x", ">= 0.97x"))
            rows.append((work, "precision auto vs fp32", f"{aekit / medians['aekit fp32']:.2f}x", ">= 0.97x"))
        print_table(f"--isa {name} ({ISA_SETTINGS[name] or 'no caps'}): aekit's training samples/s against each, "
                    "medians of one process", rows, ("workload", "aekit", "ratio", "target"))


if __name__ == "__main__":
    main()
