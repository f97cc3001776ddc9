"""Every picture that applies to a fitted autoencoder, written into one folder."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from aekit import detect
from aekit._files import output_folder
from aekit.analysis.errors import fit_pca, model_space
from aekit.plots.charts import RECONSTRUCTION_ERROR, plot_error_histogram, plot_series_scores, plot_training_curves
from aekit.plots.embedding import plot_ae_vs_pca, plot_latent, principal_projection
from aekit.plots.images import image_shape_of, plot_reconstructions
from aekit.plots.sound import sound_pictures


def write_model_plots(estimator, out_dir: str | os.PathLike, X=None, *, labels=None, label_name: str = "label",
                      image_shape: Sequence[int] | None = None, overwrite: bool = False) -> dict:
    """Write every picture that applies to a fitted autoencoder; return ``{name: path}``.

    Always the training curves. A model trained on sound, with a sound file or folder ``X``: its highest- and
    lowest-scored clips' spectrograms, reconstructions and scores over time, and the map of its clips
    (:func:`aekit.plots.sound.sound_pictures`). A :class:`~aekit.SeriesAutoencoder` with a series ``X``: the
    score over time (:func:`aekit.plots.plot_series_scores`). Another model, with data ``X``: the latent scatter
    (first two axes, coloured by ``labels``: numbers, or text drawn as categories) and the outlier-score
    histogram with ``threshold_`` (for a table model, its rows that have a score: these two only), the
    autoencoder-vs-PCA projections, and for image rows (``image_shape`` (C, H, W) when
    given, else ``input_shape``, or a square number of features) the originals-vs-reconstructions grid.
    Pictures already in ``out_dir`` are replaced only with ``overwrite=True``; if one picture cannot be
    written, those written by this call (and the folder, when it made it) are removed again.

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> X = np.random.default_rng(0).normal(size=(120, 6))
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=3, random_state=0).fit(X)
    >>> sorted(write_model_plots(ae, tempfile.mkdtemp(), X))
    ['ae_vs_pca', 'error_histogram', 'latent', 'training_curves']
    """
    out_dir = Path(out_dir)
    written: dict[str, Path] = {}
    with output_folder(out_dir) as files:
        for name, path in _pictures(estimator, out_dir, X, labels, label_name, image_shape, overwrite):
            written[name] = path
            files.append(path)
    return written


def _pictures(estimator, out_dir: Path, X, labels, label_name: str, image_shape,
              overwrite: bool) -> Iterator[tuple[str, Path]]:
    """Draw each picture that applies, yielding its name and file as soon as it is written."""
    series_model = getattr(estimator, "autoencoder_", None)  # a SeriesAutoencoder: X is a series
    history = (series_model or estimator).history_
    yield "training_curves", plot_training_curves(history, out_dir / "training_curves.png",
                                                  overwrite=overwrite)["path"]
    if X is None:
        return
    if getattr(estimator, "audio_", None) is not None:  # a sound model: X is a sound file or folder
        yield from sound_pictures(estimator, X, out_dir, overwrite=overwrite).items()
        return
    if series_model is not None:
        names = getattr(estimator, "feature_names_in_", None)
        yield "series_scores", plot_series_scores(X, estimator.outlier_scores(X), estimator.threshold_,
                                                  out_dir / "series_scores.png", channel_names=names,
                                                  overwrite=overwrite)["path"]
        return
    features = X  # as given to the estimator: a DataFrame keeps the column names it was fitted with
    latent = estimator.transform(features)
    yield "latent", plot_latent(latent, out_dir / "latent.png", labels=labels, label_name=label_name,
                                overwrite=overwrite)["path"]
    errors = estimator.outlier_scores(features)  # the score threshold_ is on
    scored = np.isfinite(errors)  # a table's row with every cell missing has no score
    yield "error_histogram", plot_error_histogram(errors[scored], estimator.threshold_,
                                                  out_dir / "error_histogram.png", score_name=score_name(estimator),
                                                  overwrite=overwrite)["path"]
    if getattr(estimator, "table_", None) is not None:  # the rest compares or draws rows of numbers
        return
    X = np.asarray(X, dtype=np.float32)
    scaled = model_space(estimator, X)  # PCA of the rows the autoencoder sees, fitted as every comparison fits it
    pca_codes = fit_pca(scaled, 2).transform(scaled)
    shown, how = (latent, "its codes") if latent.shape[1] <= 2 else (
        principal_projection(latent), "PCA of its codes")
    yield "ae_vs_pca", plot_ae_vs_pca(
        shown, pca_codes, out_dir / "ae_vs_pca.png", labels=labels, label_name=label_name,
        titles=(f"autoencoder (d={latent.shape[1]}, {how})", "PCA of the data (2 components)"), overwrite=overwrite,
    )["path"]
    image_shape = image_shape_of(estimator, X.shape[1]) if image_shape is None else tuple(image_shape)
    if image_shape is not None:
        yield "reconstructions", plot_reconstructions(
            X, estimator.reconstruct(features), image_shape, out_dir / "reconstructions.png", overwrite=overwrite
        )["path"]


def score_name(estimator) -> str:
    """What ``estimator.outlier_scores`` measures, in a few words (an axis label)."""
    if detect.outlier_score(getattr(estimator, "anomaly_score", "error")).reads_codes:
        return "outlier score (combined: reconstruction error per feature and distance of the codes)"
    return RECONSTRUCTION_ERROR
