"""Reconstruction quality on real images: PCA vs aekit's deep MLP and conv autoencoders.

MNIST and Fashion-MNIST from ``../shared/data`` (the standard 60,000 / 10,000 split). For each
latent dimension d, every model is fitted on the 60,000 training images (pixels / 255, no other
scaling) and scored on the 10,000 test images with

- **SSE / image**: squared error summed over the 784 pixels, averaged over images. The metric of
  Hinton & Salakhutdinov (Science, 2006): 3.00 for their pretrained 784-1000-500-250-30 autoencoder,
  13.87 for PCA, at d = 30.
- **BCE / pixel**: binary cross-entropy per pixel (PCA's reconstructions clipped to [1e-7, 1 - 1e-7]);
  the Keras tutorial's 784-32-784 dense autoencoder ends near 0.09-0.10.

Peers measured in the same run: PCA (scikit-learn, the reference) and the published numbers.
Wall times are for this machine, in this run (``--threads`` torch threads).

With ``--scalers auto,standard,none`` the MLP at d=30 is also fitted once per scaler with
``loss="auto"`` (MSE unless the scaled pixels lie in [0, 1], then BCE) and everything else as above:
what a user who only names the architecture gets from each scaler, ``scaler="auto"`` the default.

Run: ``python benchmarks/bench_mnist_quality.py`` (full budget, see --help), or
``python benchmarks/bench_mnist_quality.py --quick`` for a 5,000-image smoke run.
Without ``../shared/data`` it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

# as the `aekit` command sets it, before torch loads OpenMP below: its waiting threads sleep
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from sklearn.decomposition import PCA

import aekit
from aekit.plots import plot_reconstructions, plot_sweep

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
PAPER = {"ae": 3.00, "logistic_pca": 8.01, "pca": 13.87}
EPS = 1e-7


def load_idx(path: Path) -> np.ndarray:
    """A gzipped IDX file: 4-byte magic (0x0000 08 NDIM), NDIM big-endian uint32 sizes, uint8 payload."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    train = load_idx(folder / "train-images-idx3-ubyte.gz").reshape(60000, -1).astype(np.float32) / 255.0
    test = load_idx(folder / "t10k-images-idx3-ubyte.gz").reshape(10000, -1).astype(np.float32) / 255.0
    test_labels = load_idx(folder / "t10k-labels-idx1-ubyte.gz")
    return train, test, test_labels


def scores(X_test: np.ndarray, reconstruction: np.ndarray) -> dict:
    sse = float(np.mean(np.sum((reconstruction.astype(np.float64) - X_test) ** 2, axis=1)))
    p = np.clip(reconstruction.astype(np.float64), EPS, 1 - EPS)
    bce = float(np.mean(-(X_test * np.log(p) + (1 - X_test) * np.log(1 - p))))
    return {"sse_per_image": sse, "bce_per_pixel": bce}


def make_autoencoder(kind: str, latent_dim: int, epochs: int, seed: int, *, scaler: str | None = None,
                     loss: str = "bce") -> aekit.Autoencoder:
    common = dict(
        scaler=scaler, loss=loss, epochs=epochs, lr_schedule="cosine", validation_fraction=1 / 12, patience=10,
        random_state=seed,
    )
    if kind == "mlp":  # Hinton & Salakhutdinov's 784-1000-500-250-d, no pretraining
        return aekit.Autoencoder(latent_dim, architecture="mlp", hidden_dims=(1000, 500, 250), batch_size=128, lr=1e-3,
                                 **common)
    return aekit.Autoencoder(
        latent_dim, architecture="conv", input_shape=(1, 28, 28), hidden_dims=(32, 64, 128), batch_size=128,
        lr=2e-3, **common,
    )


def run(args: argparse.Namespace) -> list[dict]:
    rows = []
    for dataset in args.datasets:
        X_train, X_test, labels = load_split(args.data / dataset)
        if args.train_rows:
            X_train = X_train[: args.train_rows]
        pictures: dict[str, np.ndarray] = {}
        started = time.perf_counter()
        pca = PCA(max(args.dims), svd_solver="full").fit(X_train)  # the first d components are PCA at d
        pca_seconds = time.perf_counter() - started
        for latent_dim in args.dims:
            components = pca.components_[:latent_dim]
            reconstruction = (X_test - pca.mean_) @ components.T @ components + pca.mean_
            rows.append({"dataset": dataset, "model": "PCA", "d": latent_dim, "epochs": 0,
                         "seconds": pca_seconds, **scores(X_test, reconstruction)})
            print(_format(rows[-1]), flush=True)
            if latent_dim == 30:
                pictures["PCA"] = reconstruction[:10]
            for kind in args.models:
                epochs = args.epochs if latent_dim == 30 else args.sweep_epochs
                if dataset != "mnist":
                    epochs = args.sweep_epochs
                started = time.perf_counter()
                model = make_autoencoder(kind, latent_dim, epochs, args.seed).fit(X_train)
                seconds = time.perf_counter() - started
                reconstruction = model.reconstruct(X_test)
                rows.append({"dataset": dataset, "model": f"aekit {kind}", "d": latent_dim, "epochs": model.n_iter_,
                             "seconds": seconds, **scores(X_test, reconstruction)})
                print(_format(rows[-1]), flush=True)
                if latent_dim == 30:
                    pictures[f"aekit {kind}"] = reconstruction[:10]
        for scaler in args.scalers:  # the MLP at d=30 under each scaler, loss="auto"
            epochs = args.epochs if dataset == "mnist" else args.sweep_epochs
            started = time.perf_counter()
            model = make_autoencoder("mlp", 30, epochs, args.seed, scaler=None if scaler == "none" else scaler,
                                     loss="auto").fit(X_train)
            seconds = time.perf_counter() - started
            rows.append({"dataset": dataset, "model": f"mlp {scaler}", "d": 30, "epochs": model.n_iter_,
                         "seconds": seconds, "loss": model.loss_, **scores(X_test, model.reconstruct(X_test))})
            print(_format(rows[-1]) + f"  (loss {model.loss_})", flush=True)
        if args.figures:
            _figures(args.figures, dataset, rows, X_test, pictures)
    return rows


def _format(row: dict) -> str:
    return (f"{row['dataset']:<14}{row['model']:<12}{row['d']:>4}{row['sse_per_image']:>12.3f}"
            f"{row['bce_per_pixel']:>12.4f}{row['epochs']:>8}{row['seconds'] / 60:>9.1f}")


def _figures(folder: Path, dataset: str, rows: list[dict], X_test: np.ndarray, pictures: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    mine = [row for row in rows if row["dataset"] == dataset]
    dims = sorted({row["d"] for row in mine})
    pca = [next(r["sse_per_image"] for r in mine if r["model"] == "PCA" and r["d"] == d) for d in dims]
    for kind in sorted({row["model"] for row in mine} - {"PCA"}):
        errors = [next((r["sse_per_image"] for r in mine if r["model"] == kind and r["d"] == d), np.nan) for d in dims]
        slug = kind.split()[-1]
        plot_sweep(dims, errors, folder / f"{dataset}_sweep_{slug}.png", pca_errors=pca,
                   ylabel="test SSE per image (sum over 784 pixels)")
    for name, reconstruction in pictures.items():
        slug = name.split()[-1].lower()
        plot_reconstructions(X_test[:10], reconstruction, (1, 28, 28), folder / f"{dataset}_d30_{slug}.png",
                             n_images=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding mnist/ and fashion_mnist/")
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist"])
    parser.add_argument("--dims", nargs="+", type=int, default=[2, 10, 30])
    parser.add_argument("--models", nargs="*", default=["mlp", "conv"], choices=["mlp", "conv"],
                        help="autoencoders to train besides PCA (none: PCA only)")
    parser.add_argument("--epochs", type=int, default=40, help="epoch budget of MNIST at d=30 (default 40)")
    parser.add_argument("--sweep-epochs", type=int, default=8, help="epochs for d != 30 and other datasets")
    parser.add_argument("--train-rows", type=int, default=0, help="use only the first N training images")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figures", type=Path, default=None, help="write sweep and reconstruction PNGs here")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 images, d=30, 2 epochs")
    parser.add_argument("--scalers", type=lambda text: text.split(","), default=[],
                        help="also fit the MLP at d=30 with loss='auto' under each of these scalers "
                        "(comma-separated: auto, shared, standard, minmax, none)")
    args = parser.parse_args()
    if args.quick:
        args.train_rows, args.dims, args.epochs, args.sweep_epochs = 5000, [30], 2, 1
    missing = [d for d in args.datasets if not (args.data / d / "t10k-images-idx3-ubyte.gz").is_file()]
    if missing:
        print(f"skipped: {missing} not found under {args.data} (the shared real-data folder); nothing measured.")
        return
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads; train rows: {args.train_rows or 60000}; "
          f"test rows: 10000; seed {args.seed}")
    print(f"{'dataset':<14}{'model':<12}{'d':>4}{'SSE/image':>12}{'BCE/pixel':>12}{'epochs':>8}{'minutes':>9}")
    started = time.perf_counter()
    rows = run(args)
    print("\nall rows:")
    for row in rows:
        print(_format(row))
    for dataset in args.datasets:
        pca30 = [r for r in rows if r["dataset"] == dataset and r["model"] == "PCA" and r["d"] == 30]
        for row in rows:
            if row["dataset"] == dataset and row["d"] == 30 and row["model"] != "PCA" and pca30:
                line = f"{dataset} d=30 {row['model']}: SSE {row['sse_per_image']:.3f} = " \
                       f"{row['sse_per_image'] / pca30[0]['sse_per_image']:.3f} x PCA ({pca30[0]['sse_per_image']:.3f})"
                if dataset == "mnist":
                    line += f" = {row['sse_per_image'] / PAPER['ae']:.3f} x the paper's 3.00"
                print(line)
    print(f"total wall time {(time.perf_counter() - started) / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
