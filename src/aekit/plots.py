"""Pictures of what a model learned, written as PNG files (matplotlib's Agg canvas; never a window).

Every ``plot_*`` function draws one figure, writes it atomically to ``path`` and returns the values
it drew, read back from the figure's own artists (line points, scatter offsets, bar heights, image
pixels), so a test can check the picture against the data behind it. :func:`write_model_plots`
writes every picture that applies to a fitted :class:`~aekit.estimator.Autoencoder`.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from aekit._atomic import atomic_write_bytes
from aekit.exceptions import InvalidInputError

DPI = 100


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    """Render ``figure`` to PNG in memory and write it atomically (a crash leaves no half file)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _scatter_values(collection) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.asarray(collection.get_offsets(), dtype=np.float64)
    return offsets[:, 0], offsets[:, 1]


def plot_training_curves(history: dict, path: str | os.PathLike) -> dict:
    """Training and validation loss per epoch, with the restored best epoch marked.

    Parameters
    ----------
    history : dict
        ``Autoencoder.history_``: ``train_loss``, ``val_loss`` (NaN when there was no validation
        split) and ``best_epoch``.
    path : str or path-like
        The PNG file to write.

    Returns
    -------
    dict
        ``epochs``, ``train_loss``, ``val_loss`` (None when not drawn) as drawn, ``best_epoch``, ``path``.

    Examples
    --------
    >>> import tempfile
    >>> drawn = plot_training_curves({"train_loss": [3.0, 2.0], "val_loss": [3.5, 2.5], "best_epoch": 2},
    ...                              tempfile.mkdtemp() + "/curves.png")
    >>> drawn["train_loss"].tolist()
    [3.0, 2.0]
    """
    train = np.asarray(history.get("train_loss", []), dtype=np.float64)
    if train.size == 0:
        raise InvalidInputError("The history has no 'train_loss' values to plot; fit the model first.")
    val = np.asarray(history.get("val_loss", [math.nan] * len(train)), dtype=np.float64)
    epochs = np.arange(1, len(train) + 1)
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    (train_line,) = axes.plot(epochs, train, label="train")
    val_line = None
    if np.isfinite(val).any():
        (val_line,) = axes.plot(epochs, val, label="validation")
    best = int(history.get("best_epoch") or 0)
    if best:
        axes.axvline(best, color="grey", linestyle=":", label=f"best epoch ({best})")
    axes.set(xlabel="epoch", ylabel="loss", title="Training curves")
    if train.min() > 0 and train.max() / train.min() > 20:
        axes.set_yscale("log")
    axes.legend()
    return {
        "epochs": np.asarray(train_line.get_xdata()),
        "train_loss": np.asarray(train_line.get_ydata(), dtype=np.float64),
        "val_loss": None if val_line is None else np.asarray(val_line.get_ydata(), dtype=np.float64),
        "best_epoch": best,
        "path": _save(figure, path),
    }


def plot_latent(
    latent, path: str | os.PathLike, *, labels=None, label_name: str = "label", title: str = "Latent space"
) -> dict:
    """Scatter of the first two latent axes, coloured by ``labels`` when given.

    Returns
    -------
    dict
        ``x``, ``y`` (the scatter's points), ``colors`` (the values coloured by, or None), ``path``.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> drawn = plot_latent(np.array([[0.0, 1.0], [2.0, 3.0]]), tempfile.mkdtemp() + "/latent.png")
    >>> drawn["y"].tolist()
    [1.0, 3.0]
    """
    latent = np.asarray(latent, dtype=np.float64)
    if latent.ndim != 2 or latent.shape[1] < 1:
        raise InvalidInputError(f"Latent codes must be a 2-D array (n_samples, latent_dim); got shape {latent.shape}.")
    figure = Figure(figsize=(5.5, 4.5))
    axes = figure.subplots()
    drawn = _draw_embedding(axes, latent, labels, label_name, title)
    if labels is not None:
        _colorbar(figure, drawn, axes, label_name)
    return {"x": drawn["x"], "y": drawn["y"], "colors": drawn["colors"], "path": _save(figure, path)}


_MAX_CATEGORY_TICKS = 20


def label_colors(labels) -> tuple[np.ndarray, list[str] | None]:
    """Numbers to colour by: numeric labels as they are; text (or mixed) labels as category codes.

    Returns the colours and, for categories, their names in code order (sorted), else None.

    Examples
    --------
    >>> label_colors(["cat", "dog", "cat"])
    (array([0., 1., 0.]), ['cat', 'dog'])
    """
    values = np.asarray(labels).reshape(-1)
    if values.dtype.kind in "biuf":
        return values.astype(np.float64), None
    names, codes = np.unique(values.astype(str), return_inverse=True)  # str: None and NaN become "None", "nan"
    return codes.reshape(-1).astype(np.float64), [str(name) for name in names]


def _draw_embedding(axes, codes: np.ndarray, labels, label_name: str, title: str) -> dict:
    """One scatter of the first two columns of ``codes`` (a 1-D code is drawn against zero)."""
    x = codes[:, 0]
    y = codes[:, 1] if codes.shape[1] > 1 else np.zeros(len(codes))
    colors, categories = (None, None) if labels is None else label_colors(labels)
    if colors is not None and len(colors) != len(codes):
        raise InvalidInputError(f"Got {len(colors)} labels for {len(codes)} rows; pass one label per row.")
    options = {} if colors is None else {"cmap": "viridis"}
    if categories and len(categories) <= _MAX_CATEGORY_TICKS:  # one distinct colour per category
        palette = colormaps["tab10" if len(categories) <= 10 else "tab20"].colors[:len(categories)]
        options = {"cmap": ListedColormap(palette), "vmin": -0.5, "vmax": len(categories) - 0.5}
    artist = axes.scatter(x, y, c=colors, s=6, alpha=0.8, **options)
    axes.set(xlabel="axis 0", ylabel="axis 1" if codes.shape[1] > 1 else "", title=title)
    drawn_x, drawn_y = _scatter_values(artist)
    drawn_colors = None if colors is None else np.asarray(artist.get_array(), dtype=np.float64)
    return {"x": drawn_x, "y": drawn_y, "colors": drawn_colors, "categories": categories, "artist": artist}


def _colorbar(figure: Figure, drawn: dict, axes, label_name: str) -> None:
    """The colour scale; for a few text categories, one tick per category, named."""
    bar = figure.colorbar(drawn["artist"], ax=axes, label=label_name)
    categories = drawn["categories"]
    if categories and len(categories) <= _MAX_CATEGORY_TICKS:
        bar.set_ticks(range(len(categories)), labels=categories)


def _as_display_image(row: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """One flat (C*H*W) row as an image matplotlib shows: (H, W) for one channel, (H, W, 3) for RGB."""
    channels, height, width = image_shape
    image = row.reshape(channels, height, width)
    if channels == 3:
        return np.clip(image.transpose(1, 2, 0), 0.0, 1.0)
    return image[0]  # grey, or the first channel of other channel counts


def plot_reconstructions(
    originals, reconstructions, image_shape: Sequence[int], path: str | os.PathLike, *, n_images: int = 8
) -> dict:
    """A grid: originals on the top row, their reconstructions below.

    Parameters
    ----------
    originals, reconstructions : array-like of shape (n_samples, C*H*W)
        Flat images in C-order, in display units (for example pixels in [0, 1]).
    image_shape : (C, H, W)
    n_images : int, default=8
        How many of the first rows to show.

    Returns
    -------
    dict
        ``originals`` and ``reconstructions``: the arrays shown, as the figure's images hold them; ``path``.
    """
    originals = np.asarray(originals, dtype=np.float64)
    reconstructions = np.asarray(reconstructions, dtype=np.float64)
    if originals.shape != reconstructions.shape:
        raise InvalidInputError(
            f"originals {originals.shape} and reconstructions {reconstructions.shape} must have the same shape."
        )
    if math.prod(image_shape) != originals.shape[1]:
        raise InvalidInputError(
            f"image_shape={tuple(image_shape)} holds {math.prod(image_shape)} values, but rows have "
            f"{originals.shape[1]}. Pass the (C, H, W) the rows were flattened from."
        )
    count = min(n_images, len(originals))
    low, high = float(min(originals.min(), 0.0)), float(max(originals.max(), 1.0))
    figure = Figure(figsize=(1.3 * count, 2.9))
    grid = figure.subplots(2, count, squeeze=False)
    shown: dict[str, list] = {"originals": [], "reconstructions": []}
    for column in range(count):
        for row, (name, source) in enumerate((("originals", originals), ("reconstructions", reconstructions))):
            axes = grid[row, column]
            image = axes.imshow(_as_display_image(source[column], image_shape), cmap="gray", vmin=low, vmax=high)
            axes.set_xticks([])
            axes.set_yticks([])
            shown[name].append(np.asarray(image.get_array()))
        grid[0, column].set_title(str(column), fontsize=8)
    grid[0, 0].set_ylabel("original")
    grid[1, 0].set_ylabel("reconstruction")
    return {
        "originals": np.stack(shown["originals"]),
        "reconstructions": np.stack(shown["reconstructions"]),
        "path": _save(figure, path),
    }


def plot_error_histogram(errors, threshold: float | None, path: str | os.PathLike, *, bins: int = 50) -> dict:
    """Histogram of per-row reconstruction errors with the anomaly threshold as a vertical line.

    Returns
    -------
    dict
        ``counts`` and ``bin_edges`` (as drawn), ``threshold``, ``n_above`` (rows above it), ``path``.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> drawn = plot_error_histogram(np.array([0.1, 0.2, 0.9]), 0.5, tempfile.mkdtemp() + "/h.png", bins=4)
    >>> int(drawn["counts"].sum()), drawn["n_above"]
    (3, 1)
    """
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    if errors.size == 0 or not np.isfinite(errors).all():
        raise InvalidInputError(f"Need finite reconstruction errors to plot; got {errors.size} values.")
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    counts, edges, patches = axes.hist(errors, bins=bins, color="tab:blue", alpha=0.8)
    n_above = None
    if threshold is not None:
        n_above = int((errors > threshold).sum())
        axes.axvline(threshold, color="tab:red", label=f"threshold {threshold:.4g} ({n_above} rows above)")
        axes.legend()
    axes.set(xlabel="reconstruction error (mean squared, scaled space)", ylabel="rows", title="Reconstruction error")
    drawn_counts = np.asarray([patch.get_height() for patch in patches], dtype=np.float64)
    return {
        "counts": drawn_counts,
        "bin_edges": np.asarray(edges, dtype=np.float64),
        "threshold": threshold,
        "n_above": n_above,
        "path": _save(figure, path),
    }


def plot_sweep(
    latent_dims: Sequence[int],
    errors: Sequence[float],
    path: str | os.PathLike,
    *,
    pca_errors: Sequence[float] | None = None,
    ylabel: str = "held-out reconstruction error",
) -> dict:
    """Reconstruction error against latent dimension (the elbow plot), PCA's beside it when given.

    Returns
    -------
    dict
        ``latent_dims``, ``errors`` and ``pca_errors`` (None when not given) as drawn, ``path``.

    Examples
    --------
    >>> import tempfile
    >>> drawn = plot_sweep([2, 4, 8], [0.5, 0.3, 0.2], tempfile.mkdtemp() + "/sweep.png", pca_errors=[0.6, 0.4, 0.3])
    >>> drawn["pca_errors"].tolist()
    [0.6, 0.4, 0.3]
    """
    dims = np.asarray(latent_dims, dtype=np.float64)
    values = np.asarray(errors, dtype=np.float64)
    if dims.shape != values.shape or dims.ndim != 1 or dims.size == 0:
        raise InvalidInputError(
            f"latent_dims and errors must be two 1-D sequences of the same length; got {dims.shape} and {values.shape}."
        )
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    (line,) = axes.plot(dims, values, marker="o", label="autoencoder")
    pca_line = None
    if pca_errors is not None:
        (pca_line,) = axes.plot(dims, np.asarray(pca_errors, dtype=np.float64), marker="s", linestyle="--", label="PCA")
    axes.set(xlabel="latent dimension d", ylabel=ylabel, title="Latent-dimension sweep")
    axes.legend()
    return {
        "latent_dims": np.asarray(line.get_xdata(), dtype=np.float64),
        "errors": np.asarray(line.get_ydata(), dtype=np.float64),
        "pca_errors": None if pca_line is None else np.asarray(pca_line.get_ydata(), dtype=np.float64),
        "path": _save(figure, path),
    }


def plot_ae_vs_pca(
    autoencoder_codes,
    pca_codes,
    path: str | os.PathLike,
    *,
    labels=None,
    label_name: str = "label",
    titles: tuple[str, str] = ("autoencoder", "PCA"),
) -> dict:
    """The autoencoder's 2-D codes and PCA's 2-D projection side by side, coloured alike.

    Returns
    -------
    dict
        ``autoencoder`` and ``pca``: each ``{"x", "y", "colors"}`` as drawn; ``path``.
    """
    figure = Figure(figsize=(11, 4.5))
    left, right = figure.subplots(1, 2)
    drawn = {}
    for name, axes, codes, title in (
        ("autoencoder", left, autoencoder_codes, titles[0]),
        ("pca", right, pca_codes, titles[1]),
    ):
        result = _draw_embedding(axes, np.asarray(codes, dtype=np.float64), labels, label_name, title)
        drawn[name] = {key: result[key] for key in ("x", "y", "colors")}
    if labels is not None:
        _colorbar(figure, result, [left, right], label_name)
    drawn["path"] = _save(figure, path)
    return drawn


def image_shape_of(estimator, n_features: int) -> tuple[int, int, int] | None:
    """The (C, H, W) of a model's rows when they are images: its ``input_shape``, or a square grey image."""
    shape = getattr(estimator, "input_shape", None)
    if shape is not None:
        return tuple(int(s) for s in shape)
    side = math.isqrt(n_features)
    return (1, side, side) if side * side == n_features and side >= 8 else None


def write_model_plots(estimator, out_dir: str | os.PathLike, X=None, *, labels=None, label_name: str = "label",
                      image_shape: Sequence[int] | None = None) -> dict:
    """Write every picture that applies to a fitted autoencoder; return ``{name: path}``.

    Always the training curves; with data ``X``: the latent scatter (first two axes, coloured by
    ``labels``: numbers, or text drawn as categories), the outlier-score histogram with
    ``threshold_``, the autoencoder-vs-PCA projections, and for image rows (``image_shape`` (C, H, W)
    when given, else ``input_shape``, or a square number of features) the originals-vs-reconstructions grid.

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> X = np.random.default_rng(0).normal(size=(120, 6))
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=3, random_state=0).fit(X)
    >>> sorted(write_model_plots(ae, tempfile.mkdtemp(), X))
    ['ae_vs_pca', 'error_histogram', 'latent', 'training_curves']
    """
    from sklearn.decomposition import PCA

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidInputError(
            f"Cannot create the folder {str(out_dir)!r}: {error.strerror}. Choose another output folder."
        ) from None
    written = {"training_curves": plot_training_curves(estimator.history_, out_dir / "training_curves.png")["path"]}
    if X is None:
        return written
    features = X  # as given to the estimator: a DataFrame keeps the column names it was fitted with
    X = np.asarray(X, dtype=np.float32)
    latent = estimator.transform(features)
    written["latent"] = plot_latent(latent, out_dir / "latent.png", labels=labels, label_name=label_name)["path"]
    errors = estimator.outlier_scores(features)  # the score threshold_ is on
    written["error_histogram"] = plot_error_histogram(errors, estimator.threshold_, out_dir / "error_histogram.png")[
        "path"
    ]
    scaled = X if estimator.scaler_ is None else estimator.scaler_.transform(X)
    pca_codes = PCA(n_components=min(2, *scaled.shape)).fit_transform(scaled)
    written["ae_vs_pca"] = plot_ae_vs_pca(
        latent, pca_codes, out_dir / "ae_vs_pca.png", labels=labels, label_name=label_name,
        titles=(f"autoencoder (d={latent.shape[1]}, axes 0-1)", "PCA (2 components)"),
    )["path"]
    image_shape = image_shape_of(estimator, X.shape[1]) if image_shape is None else tuple(image_shape)
    if image_shape is not None:
        written["reconstructions"] = plot_reconstructions(
            X, estimator.reconstruct(features), image_shape, out_dir / "reconstructions.png"
        )["path"]
    return written
