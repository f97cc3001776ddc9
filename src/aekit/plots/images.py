"""Image rows: originals beside their reconstructions, and the (C, H, W) shape of a model's rows."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from aekit.exceptions import InvalidInputError
from aekit.plots.canvas import save


def _as_display_image(row: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """One flat (C*H*W) row as an image matplotlib shows: (H, W) for one channel, (H, W, 3) for RGB."""
    channels, height, width = image_shape
    image = row.reshape(channels, height, width)
    if channels == 3:
        return np.clip(image.transpose(1, 2, 0), 0.0, 1.0)
    return image[0]  # grey, or the first channel of other channel counts


def plot_reconstructions(
    originals, reconstructions, image_shape: Sequence[int], path: str | os.PathLike, *, n_images: int = 8,
    overwrite: bool = False,
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
        "path": save(figure, path, overwrite=overwrite),
    }


def image_shape_of(estimator, n_features: int) -> tuple[int, int, int] | None:
    """The (C, H, W) of a model's rows when they are images: its ``input_shape``, or a square grey image."""
    shape = getattr(estimator, "input_shape", None)
    if shape is not None:
        return tuple(int(s) for s in shape)
    side = math.isqrt(n_features)
    return (1, side, side) if side * side == n_features and side >= 8 else None
