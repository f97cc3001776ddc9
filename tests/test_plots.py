"""Pictures: valid PNG files whose drawn values are the data behind them."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

import aekit
from aekit.exceptions import InvalidInputError
from aekit.plots import (
    plot_ae_vs_pca,
    plot_error_histogram,
    plot_latent,
    plot_reconstructions,
    plot_sweep,
    plot_training_curves,
    write_model_plots,
)
from conftest import assert_close

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, *, min_side: int = 100) -> None:
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_MAGIC
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= min_side


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.data[:400].astype(np.float32), data.target[:400]


@pytest.fixture(scope="module")
def fitted(digits):
    X, _ = digits
    return aekit.Autoencoder(2, hidden_dims=(32,), scaler="minmax", epochs=6, random_state=0).fit(X)


def test_training_curves_are_the_history(fitted, tmp_path):
    drawn = plot_training_curves(fitted.history_, tmp_path / "curves.png")
    assert_png(drawn["path"])
    assert drawn["train_loss"].tolist() == fitted.history_["train_loss"]
    assert drawn["val_loss"].tolist() == fitted.history_["val_loss"]
    assert drawn["epochs"].tolist() == list(range(1, fitted.n_iter_ + 1))
    assert drawn["best_epoch"] == fitted.history_["best_epoch"]


def test_training_curves_mark_the_kept_epoch_even_at_zero_and_draw_pcas_level(tmp_path):
    history = {"train_loss": [0.2, 0.15, 0.1], "val_loss": [0.3, 0.28, 0.29], "best_epoch": 0,
               "pca": {"val_loss": 0.27, "improved": False}}
    drawn = plot_training_curves(history, tmp_path / "kept_pca.png")
    assert drawn["kept_epoch"] == 0.0 and drawn["pca_level"] == 0.27
    drawn = plot_training_curves({**history, "best_epoch": 2, "pca": None}, tmp_path / "kept_2.png")
    assert drawn["kept_epoch"] == 2.0 and drawn["pca_level"] is None


def test_the_histogram_is_titled_by_the_score_it_plots(fitted, digits, tmp_path):
    from aekit.plots.model import score_name

    assert fitted.anomaly_score == "combined"
    drawn = plot_error_histogram(fitted.outlier_scores(digits[0]), fitted.threshold_, tmp_path / "h.png",
                                 score_name=score_name(fitted))
    assert drawn["title"] == "Outlier score"
    plain = aekit.Autoencoder(**{**fitted.get_params(), "anomaly_score": "error"})
    assert score_name(plain).startswith("reconstruction error")
    assert plot_error_histogram([0.1, 0.2], 0.15, tmp_path / "e.png")["title"] == "Reconstruction error"


def test_training_curves_without_validation_draw_one_line(tmp_path):
    drawn = plot_training_curves({"train_loss": [2.0, 1.0], "val_loss": [float("nan")] * 2}, tmp_path / "c.png")
    assert drawn["val_loss"] is None and drawn["train_loss"].tolist() == [2.0, 1.0]
    with pytest.raises(InvalidInputError, match="no 'train_loss' values to plot"):
        plot_training_curves({"train_loss": []}, tmp_path / "empty.png")


def test_latent_scatter_points_and_colours_are_the_codes_and_labels(fitted, digits, tmp_path):
    X, y = digits
    codes = fitted.transform(X)
    drawn = plot_latent(codes, tmp_path / "latent.png", labels=y, label_name="digit")
    assert_png(drawn["path"])
    assert_close(drawn["x"], codes[:, 0], rtol=0, atol=0)
    assert_close(drawn["y"], codes[:, 1], rtol=0, atol=0)
    assert_close(drawn["colors"], y, rtol=0, atol=0)
    with pytest.raises(InvalidInputError, match="Got 3 labels for 400 rows"):
        plot_latent(codes, tmp_path / "bad.png", labels=[1, 2, 3])


def test_reconstruction_grid_shows_the_rows_as_images(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.uniform(size=(5, 1 * 6 * 7))
    drawn = plot_reconstructions(grey, grey * 0.5, (1, 6, 7), tmp_path / "grey.png", n_images=4)
    assert_png(drawn["path"])
    assert_close(drawn["originals"], grey[:4].reshape(4, 6, 7), rtol=0, atol=0)
    assert_close(drawn["reconstructions"], 0.5 * grey[:4].reshape(4, 6, 7), rtol=0, atol=0)
    rgb = rng.uniform(size=(2, 3 * 5 * 4))
    drawn = plot_reconstructions(rgb, rgb, (3, 5, 4), tmp_path / "rgb.png")
    # C-order rows (C, H, W) are shown as (H, W, C) pictures
    assert_close(drawn["originals"], rgb.reshape(2, 3, 5, 4).transpose(0, 2, 3, 1), rtol=0, atol=0)
    with pytest.raises(InvalidInputError, match=r"image_shape=\(1, 6, 6\) holds 36 values, but rows have 42"):
        plot_reconstructions(grey, grey, (1, 6, 6), tmp_path / "bad.png")


def test_error_histogram_matches_numpy_and_counts_rows_above_threshold(tmp_path):
    errors = np.random.default_rng(1).exponential(size=500)
    drawn = plot_error_histogram(errors, 2.0, tmp_path / "hist.png", bins=30)
    assert_png(drawn["path"])
    counts, edges = np.histogram(errors, bins=30)
    assert_close(drawn["counts"], counts, rtol=0, atol=0)
    assert_close(drawn["bin_edges"], edges, rtol=1e-12, atol=0)
    assert drawn["n_above"] == int(np.sum(errors > 2.0))


def test_sweep_curve_is_the_given_errors(tmp_path):
    drawn = plot_sweep([2, 5, 10, 30], [0.4, 0.2, 0.1, 0.05], tmp_path / "sweep.png", pca_errors=[0.5, 0.3, 0.2, 0.1])
    assert_png(drawn["path"])
    assert drawn["latent_dims"].tolist() == [2, 5, 10, 30]
    assert drawn["errors"].tolist() == [0.4, 0.2, 0.1, 0.05]
    assert drawn["pca_errors"].tolist() == [0.5, 0.3, 0.2, 0.1]
    with pytest.raises(InvalidInputError, match="same length"):
        plot_sweep([2, 5], [0.4], tmp_path / "bad.png")


def test_ae_vs_pca_draws_both_projections(fitted, digits, tmp_path):
    X, y = digits
    pca_codes = PCA(2).fit_transform(X)
    drawn = plot_ae_vs_pca(fitted.transform(X), pca_codes, tmp_path / "side.png", labels=y)
    assert_png(drawn["path"])
    assert_close(drawn["pca"]["x"], pca_codes[:, 0], rtol=0, atol=0)
    assert_close(drawn["autoencoder"]["y"], fitted.transform(X)[:, 1], rtol=0, atol=0)
    assert_close(drawn["pca"]["colors"], y, rtol=0, atol=0)


def test_write_model_plots_writes_every_picture_that_applies(fitted, digits, tmp_path):
    X, y = digits
    only_history = write_model_plots(fitted, tmp_path / "a")
    assert sorted(only_history) == ["training_curves"]
    written = write_model_plots(fitted, tmp_path / "b", X, labels=y)
    # 64 features = an 8x8 image, so the reconstruction grid applies too
    assert sorted(written) == ["ae_vs_pca", "error_histogram", "latent", "reconstructions", "training_curves"]
    for path in written.values():
        assert_png(path)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(p.name for p in written.values())


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(InvalidInputError, match="Cannot write"):
        plot_sweep([1], [1.0], blocked / "sweep.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_plots_never_open_a_window():
    # pyplot is what opens windows; the library must not even import it
    code = (
        "import sys, tempfile, aekit.plots as p; p.plot_sweep([1, 2], [1.0, 0.5], tempfile.mkdtemp() + '/s.png');"
        "print('matplotlib.pyplot' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "False"


def test_class_labels_get_a_legend_and_numbers_a_colourbar(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(60, 2))
    digits = rng.integers(0, 3, 60)
    drawn = plot_latent(codes, tmp_path / "classes.png", labels=digits, label_name="digit")
    assert drawn["colour_key"] == "legend" and drawn["classes"] == ["0", "1", "2"]
    assert_close(drawn["colors"], digits, rtol=0, atol=0)
    words = np.array(["cat", "dog", "ant"])[digits]
    drawn = plot_latent(codes, tmp_path / "words.png", labels=words)
    assert drawn["colour_key"] == "legend" and drawn["classes"] == ["ant", "cat", "dog"]
    assert_close(drawn["colors"], np.searchsorted(["ant", "cat", "dog"], words), rtol=0, atol=0)
    gappy = pd.Series(words).where(digits != 1)  # a text column's empty cells: NaN (or None)
    drawn = plot_latent(codes, tmp_path / "gaps.png", labels=gappy.to_numpy(dtype=object))
    assert drawn["classes"] == ["(missing)", "ant", "cat"]
    measured = rng.uniform(size=60)
    drawn = plot_latent(codes, tmp_path / "scale.png", labels=measured)
    assert drawn["colour_key"] == "colorbar" and drawn["classes"] is None


def test_latent_codes_of_more_than_two_dimensions_are_shown_by_their_pca(tmp_path):
    codes = np.random.default_rng(1).normal(size=(80, 5)) * [5, 3, 1, 0.5, 0.1]
    drawn = plot_latent(codes, tmp_path / "latent.png")
    reference = PCA(2).fit_transform(codes)
    # principal components are defined up to their sign
    assert_close(np.abs(drawn["x"]), np.abs(reference[:, 0]), rtol=1e-6, atol=1e-9)
    assert_close(np.abs(drawn["y"]), np.abs(reference[:, 1]), rtol=1e-6, atol=1e-9)
    assert "d=5: PCA of the codes" in drawn["title"]


def test_histogram_counts_sweep_axis_and_grid_title(tmp_path):
    drawn = plot_error_histogram(np.array([0.1, 0.2, 0.25, 0.9]), 0.5, tmp_path / "h.png", bins=5)
    assert np.array_equal(drawn["yticks"], np.round(drawn["yticks"]))  # whole numbers of rows
    drawn = plot_sweep([2, 4, 8, 16], [0.4, 0.2, 0.15, 0.14], tmp_path / "s.png", suggested=8)
    assert drawn["xscale"] == "log" and drawn["suggested"] == 8
    grey = np.random.default_rng(0).uniform(size=(3, 16))
    drawn = plot_reconstructions(grey, grey, (1, 4, 4), tmp_path / "g.png")
    assert drawn["title"] == "The first 3 rows (top) and the autoencoder's reconstructions of them (bottom)"
