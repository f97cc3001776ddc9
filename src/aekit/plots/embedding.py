"""Scatters of codes: the latent space, and the autoencoder's codes beside PCA's projection."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from aekit.exceptions import InvalidInputError
from aekit.plots.canvas import save, scatter_values


def plot_latent(
    latent, path: str | os.PathLike, *, labels=None, label_name: str = "label", title: str = "Latent space",
    overwrite: bool = False,
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
        latent, axis_names = principal_projection(latent), ("PC 1 of the codes", "PC 2 of the codes")
    drawn = draw_embedding(axes, latent, labels, label_name, title, axis_names=axis_names)
    key = colour_key(figure, axes, drawn, label_name)
    return {"x": drawn["x"], "y": drawn["y"], "colors": drawn["colors"], "classes": drawn["classes"],
            "colour_key": key, "title": title, "path": save(figure, path, overwrite=overwrite)}


MISSING_LABEL = "(missing)"  # the class of a text label's empty cells (None or NaN)
MAX_CLASSES = 20  # integer labels with at most this many values are classes (a legend), others a scale
_PALETTE = [f"C{i}" for i in range(10)] + [
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
]


def principal_projection(codes: np.ndarray) -> np.ndarray:
    """The codes projected on their first two principal components (centred; numpy's SVD)."""
    centred = codes - codes.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _classes(labels, n_rows: int) -> tuple[np.ndarray, list[str] | None, np.ndarray | None]:
    """The colour value of each row, and for class labels the class names and their colour values.

    Text labels, and integer labels with at most ``MAX_CLASSES`` values, are classes: one colour each
    and a legend (integer classes keep their values as colour values, text classes their positions; a
    text label's empty cells are the class ``(missing)``).
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
    text = np.array([MISSING_LABEL if _missing(value) else str(value) for value in values])
    names, positions = np.unique(text, return_inverse=True)
    return positions.astype(np.float64), [str(name) for name in names], np.arange(len(names), dtype=np.float64)


def draw_embedding(axes, codes: np.ndarray, labels, label_name: str, title: str,
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
    drawn_x, drawn_y = scatter_values(artist)
    drawn_colors = None if colors is None else np.asarray(artist.get_array(), dtype=np.float64)
    return {"x": drawn_x, "y": drawn_y, "colors": drawn_colors, "artist": artist, "classes": classes,
            "levels": levels}


def colour_key(figure: Figure, axes, drawn: dict, label_name: str) -> str | None:
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


def plot_ae_vs_pca(
    autoencoder_codes,
    pca_codes,
    path: str | os.PathLike,
    *,
    labels=None,
    label_name: str = "label",
    titles: tuple[str, str] = ("autoencoder", "PCA"),
    overwrite: bool = False,
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
        result = draw_embedding(axes, np.asarray(codes, dtype=np.float64), labels, label_name, title)
        drawn[name] = {key: result[key] for key in ("x", "y", "colors", "classes")}
    if result["colors"] is not None and result["classes"] is None:
        figure.colorbar(result["artist"], ax=[left, right], label=label_name)
    else:
        colour_key(figure, right, result, label_name)
    drawn["path"] = save(figure, path, overwrite=overwrite)
    return drawn
