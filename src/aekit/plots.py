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
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from aekit._files import atomic_write_bytes
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
    axis_names = ("axis 0", "axis 1")
    if latent.shape[1] > 2:  # more axes than a page has: the codes' own first two principal components
        title = f"{title}, d={latent.shape[1]}: PCA of the codes"
        latent, axis_names = _principal_projection(latent), ("PC 1 of the codes", "PC 2 of the codes")
    drawn = _draw_embedding(axes, latent, labels, label_name, title, axis_names=axis_names)
    key = _colour_key(figure, axes, drawn, label_name)
    return {"x": drawn["x"], "y": drawn["y"], "colors": drawn["colors"], "classes": drawn["classes"],
            "colour_key": key, "title": title, "path": _save(figure, path)}


MAX_CLASSES = 20  # integer labels with at most this many values are classes (a legend), others a scale
_PALETTE = [f"C{i}" for i in range(10)] + [
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
]


def _principal_projection(codes: np.ndarray) -> np.ndarray:
    """The codes projected on their first two principal components (centred; numpy's SVD)."""
    centred = codes - codes.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T


def _classes(labels, n_rows: int) -> tuple[np.ndarray, list[str] | None, np.ndarray | None]:
    """The colour value of each row, and for class labels the class names and their colour values.

    Text labels, and integer labels with at most ``MAX_CLASSES`` values, are classes: one colour each
    and a legend (integer classes keep their values as colour values, text classes their positions).
    Other numbers are a continuous scale (names and values None).
    """
    values = np.asarray(labels).reshape(-1)
    if len(values) != n_rows:
        raise InvalidInputError(f"Got {len(values)} labels for {n_rows} rows; pass one label per row.")
    if values.dtype.kind in "biuf":
        values = values.astype(np.float64)
        levels = np.unique(values)
        if not np.isfinite(values).all() or not np.array_equal(levels, np.round(levels)) or len(levels) > MAX_CLASSES:
            return values, None, None
        return values, [str(int(level)) for level in levels], levels
    names, positions = np.unique(values.astype(str), return_inverse=True)
    return positions.astype(np.float64), [str(name) for name in names], np.arange(len(names), dtype=np.float64)


def _draw_embedding(axes, codes: np.ndarray, labels, label_name: str, title: str,
                    axis_names: tuple[str, str] = ("axis 0", "axis 1")) -> dict:
    """One scatter of the first two columns of ``codes`` (a 1-D code is drawn against zero)."""
    from matplotlib.colors import BoundaryNorm

    x = codes[:, 0]
    y = codes[:, 1] if codes.shape[1] > 1 else np.zeros(len(codes))
    colors, classes, levels = (None, None, None) if labels is None else _classes(labels, len(codes))
    options: dict = {} if colors is None else {"cmap": "viridis"}
    if levels is not None:  # one colour per class: a qualitative palette, boundaries between the class values
        palette = ListedColormap([_PALETTE[i % len(_PALETTE)] for i in range(len(levels))])
        bounds = np.concatenate([[levels[0] - 0.5], (levels[:-1] + levels[1:]) / 2, [levels[-1] + 0.5]])
        options = {"cmap": palette, "norm": BoundaryNorm(bounds, palette.N)}
    artist = axes.scatter(x, y, c=colors, s=6, alpha=0.8, **options)
    axes.set(xlabel=axis_names[0], ylabel=axis_names[1] if codes.shape[1] > 1 else "", title=title)
    drawn_x, drawn_y = _scatter_values(artist)
    drawn_colors = None if colors is None else np.asarray(artist.get_array(), dtype=np.float64)
    return {"x": drawn_x, "y": drawn_y, "colors": drawn_colors, "artist": artist, "classes": classes,
            "levels": levels}


def _colour_key(figure: Figure, axes, drawn: dict, label_name: str) -> str | None:
    """A legend of the classes (one marker per class), or a colourbar for a continuous label; which one."""
    if drawn["colors"] is None:
        return None
    if drawn["classes"] is None:
        figure.colorbar(drawn["artist"], ax=axes, label=label_name)
        return "colorbar"
    artist = drawn["artist"]
    handles = [axes.scatter([], [], s=20, color=artist.cmap(artist.norm(level)), label=name)
               for level, name in zip(drawn["levels"], drawn["classes"], strict=True)]
    axes.legend(handles=handles, title=label_name, fontsize=7, title_fontsize=8, loc="center left",
                bbox_to_anchor=(1.01, 0.5), frameon=False)
    return "legend"


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
        grid[0, column].set_title(f"row {column}", fontsize=8)
    grid[0, 0].set_ylabel("original")
    grid[1, 0].set_ylabel("reconstruction")
    figure.suptitle(f"The first {count} rows (top) and the autoencoder's reconstructions of them (bottom)",
                    fontsize=9)
    return {
        "title": figure.get_suptitle(),
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
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of rows: whole numbers
    axes.set(xlabel="reconstruction error (mean squared, scaled space)", ylabel="rows", title="Reconstruction error")
    drawn_counts = np.asarray([patch.get_height() for patch in patches], dtype=np.float64)
    return {
        "yticks": np.asarray(axes.get_yticks(), dtype=np.float64),
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
    suggested: int | None = None,
) -> dict:
    """Reconstruction error against latent dimension (the elbow plot), PCA's beside it when given.

    The d axis is logarithmic (sweeps double d) with a tick at each d tried; ``suggested`` is
    marked by a vertical line.

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
    if suggested is not None:
        axes.axvline(suggested, color="grey", linestyle=":", label=f"suggested d = {suggested}")
    axes.set_xscale("log", base=2)
    axes.set_xticks(dims, [str(int(d)) for d in dims])
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set(xlabel="latent dimension d (log scale)", ylabel=ylabel, title="Latent-dimension sweep")
    axes.legend()
    return {
        "suggested": suggested,
        "xscale": axes.get_xscale(),
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
        drawn[name] = {key: result[key] for key in ("x", "y", "colors", "classes")}
    if result["colors"] is not None and result["classes"] is None:
        figure.colorbar(result["artist"], ax=[left, right], label=label_name)
    else:
        _colour_key(figure, right, result, label_name)
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
    shown, how = (latent, "its codes") if latent.shape[1] <= 2 else (
        _principal_projection(latent), "PCA of its codes")
    written["ae_vs_pca"] = plot_ae_vs_pca(
        shown, pca_codes, out_dir / "ae_vs_pca.png", labels=labels, label_name=label_name,
        titles=(f"autoencoder (d={latent.shape[1]}, {how})", "PCA of the data (2 components)"),
    )["path"]
    image_shape = image_shape_of(estimator, X.shape[1]) if image_shape is None else tuple(image_shape)
    if image_shape is not None:
        written["reconstructions"] = plot_reconstructions(
            X, estimator.reconstruct(features), image_shape, out_dir / "reconstructions.png"
        )["path"]
    return written
