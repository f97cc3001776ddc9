"""The main job on a bundled dataset: scikit-learn's digits, autoencoder against PCA.

Trains an autoencoder on 80% of the 1,797 8x8 digit images, reports the held-out reconstruction
error of the autoencoder and of PCA at the same ``latent_dim`` (mean squared error per pixel, in
the data's own units: intensities 0-16), and saves the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from aekit.estimator import Autoencoder, save_model
from aekit.persistence import check_model_target
from aekit.plots import write_model_plots
from aekit.report import write_report


@dataclass
class DemoResult:
    latent_dim: int
    autoencoder_mse: float
    pca_mse: float
    epochs: int
    seconds: float
    model_dir: Path
    plots: dict | None = None  # picture name -> PNG path, plus "report" -> the HTML page

    def table(self) -> str:
        ratio = self.autoencoder_mse / self.pca_mse
        return "\n".join(
            [
                f"digits (1797 x 64), held-out 20%, latent_dim={self.latent_dim}",
                f"{'model':<14}{'held-out MSE / pixel':>22}",
                f"{'autoencoder':<14}{self.autoencoder_mse:>22.4f}",
                f"{'PCA':<14}{self.pca_mse:>22.4f}",
                f"autoencoder / PCA = {ratio:.3f}  ({self.epochs} epochs, {self.seconds:.1f} s)",
                f"model saved to {self.model_dir}",
                *([f"pictures and report in {self.plots['report'].parent}/"] if self.plots else []),
            ]
        )


def run_demo(
    model_dir: str | Path = "demo_model", *, latent_dim: int = 10, random_state: int = 0, verbose: int = 0,
    plots_dir: str | Path | None = None, overwrite: bool = False,
) -> DemoResult:
    """Train on digits, compare with PCA on held-out rows, save the model to ``model_dir``, and write
    its pictures and HTML report (on the held-out rows) to ``plots_dir`` (default: ``<model_dir>_plots``).

    An existing aekit model folder at ``model_dir`` is replaced only with ``overwrite=True`` (never a folder
    that is not an aekit model); this is checked before training.

    Examples
    --------
    >>> import tempfile
    >>> result = run_demo(tempfile.mkdtemp() + "/model", latent_dim=5)  # doctest: +SKIP
    >>> result.autoencoder_mse < result.pca_mse  # doctest: +SKIP
    True
    """
    check_model_target(model_dir, overwrite=overwrite)  # before training
    X, y = load_digits(return_X_y=True)
    X_train, X_test, _, y_test = train_test_split(X, y, test_size=0.2, random_state=random_state)
    started = time.perf_counter()
    autoencoder = Autoencoder(
        latent_dim=latent_dim,
        hidden_dims=(256, 128),
        scaler="minmax",
        epochs=300,
        batch_size=64,
        lr=2e-3,
        patience=20,
        random_state=random_state,
        verbose=verbose,
    ).fit(X_train)
    seconds = time.perf_counter() - started
    autoencoder_mse = float(np.mean((autoencoder.reconstruct(X_test) - X_test) ** 2))
    pca = PCA(n_components=latent_dim, random_state=random_state).fit(X_train)
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2))
    path = save_model(autoencoder, model_dir, overwrite=overwrite)
    plots_dir = Path(plots_dir) if plots_dir is not None else path.with_name(path.name + "_plots")
    plots = write_model_plots(autoencoder, plots_dir, X_test, labels=y_test, label_name="digit", overwrite=overwrite)
    quality = {  # the figures the console prints, so that the report shows the same comparison
        "latent_dim": latent_dim, "n_rows": len(X_test), "autoencoder_mse": autoencoder_mse, "pca_mse": pca_mse,
        "ratio": autoencoder_mse / pca_mse,
        "description": f"Mean squared error per pixel (intensities 0-16) on the {len(X_test)} held-out rows; PCA with "
        f"{latent_dim} components fitted on the {len(X_train)} training rows, as the autoencoder was.",
    }
    plots["report"] = write_report(autoencoder, plots_dir / "report.html", X_test, labels=y_test, label_name="digit",
                                   quality=quality, overwrite=overwrite)["path"]
    return DemoResult(latent_dim, autoencoder_mse, pca_mse, autoencoder.n_iter_, seconds, path, plots)
