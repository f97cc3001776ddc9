"""Line and bar charts: training curves, the outlier-score histogram, the latent-dimension sweep."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from aekit.exceptions import InvalidInputError
from aekit.plots.canvas import save


def plot_training_curves(history: dict, path: str | os.PathLike, *, overwrite: bool = False) -> dict:
    """Training and validation loss per epoch, with the kept (best) epoch marked and PCA's level drawn.

    Parameters
    ----------
    history : dict
        ``Autoencoder.history_``: ``train_loss``, ``val_loss`` (NaN when there was no validation
        split), ``best_epoch`` (0: the starting weights were kept, for the anchored model PCA's) and,
        for the anchored model, ``pca`` (its ``val_loss`` is drawn as a horizontal line).
    path : str or path-like
        The PNG file to write (an existing one is replaced only with ``overwrite=True``, as for every
        ``plot_*`` function).

    Returns
    -------
    dict
        ``epochs``, ``train_loss``, ``val_loss`` (None when not drawn) as drawn, ``best_epoch``, and
        where their lines are drawn (None when not): ``kept_epoch`` (x) and ``pca_level`` (y); ``path``.

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
    best, kept_line, pca_line = history.get("best_epoch"), None, None
    if best is not None:  # epoch 0 too: the starting weights kept (for the anchored model, PCA)
        best = int(best)
        kept_line = axes.axvline(best, color="grey", linestyle=":", label="kept: the starting weights (epoch 0)"
                                 if best == 0 else f"kept: epoch {best}")
    pca_level = (history.get("pca") or {}).get("val_loss")
    if pca_level is not None and val_line is not None:
        pca_line = axes.axhline(pca_level, color="tab:green", linestyle="--",
                                label=f"PCA, validation ({pca_level:.4g})")
    axes.set(xlabel="epoch", ylabel="loss", title="Training curves")
    if train.min() > 0 and train.max() / train.min() > 20:
        axes.set_yscale("log")
    axes.legend(fontsize="small")
    return {
        "epochs": np.asarray(train_line.get_xdata()),
        "train_loss": np.asarray(train_line.get_ydata(), dtype=np.float64),
        "val_loss": None if val_line is None else np.asarray(val_line.get_ydata(), dtype=np.float64),
        "best_epoch": best,
        "kept_epoch": None if kept_line is None else float(kept_line.get_xdata()[0]),
        "pca_level": None if pca_line is None else float(pca_line.get_ydata()[0]),
        "path": save(figure, path, overwrite=overwrite),
    }


RECONSTRUCTION_ERROR = "reconstruction error (mean squared, scaled space)"


def plot_error_histogram(errors, threshold: float | None, path: str | os.PathLike, *, bins: int = 50,
                         score_name: str = RECONSTRUCTION_ERROR, overwrite: bool = False) -> dict:
    """Histogram of per-row scores (by default reconstruction errors) with the anomaly threshold as a vertical line.

    ``score_name`` says what ``errors`` holds: it is the x axis's label and, capitalised, the title.

    Returns
    -------
    dict
        ``counts`` and ``bin_edges`` (as drawn), ``threshold``, ``n_above`` (rows above it), ``title``, ``path``.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> drawn = plot_error_histogram(np.array([0.1, 0.2, 0.9]), 0.5, tempfile.mkdtemp() + "/h.png", bins=4)
    >>> int(drawn["counts"].sum()), drawn["n_above"]
    (3, 1)
    """
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    if errors.size == 0 or not np.isfinite(errors).all():
        raise InvalidInputError(f"Need finite values of the {score_name} to plot; got {errors.size} values.")
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    counts, edges, patches = axes.hist(errors, bins=bins, color="tab:blue", alpha=0.8)
    n_above = None
    if threshold is not None:
        n_above = int((errors > threshold).sum())
        axes.axvline(threshold, color="tab:red", label=f"threshold {threshold:.4g} ({n_above} rows above)")
        axes.legend()
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of rows: whole numbers
    title = score_name[0].upper() + score_name[1:]
    axes.set(xlabel=score_name, ylabel="rows", title=title.split(" (")[0])
    drawn_counts = np.asarray([patch.get_height() for patch in patches], dtype=np.float64)
    return {
        "yticks": np.asarray(axes.get_yticks(), dtype=np.float64),
        "counts": drawn_counts,
        "bin_edges": np.asarray(edges, dtype=np.float64),
        "threshold": threshold,
        "n_above": n_above,
        "title": axes.get_title(),
        "path": save(figure, path, overwrite=overwrite),
    }


def plot_sweep(
    latent_dims: Sequence[int],
    errors: Sequence[float],
    path: str | os.PathLike,
    *,
    pca_errors: Sequence[float] | None = None,
    ylabel: str = "held-out reconstruction error",
    suggested: int | None = None,
    overwrite: bool = False,
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
        "path": save(figure, path, overwrite=overwrite),
    }


def plot_series_scores(series, scores, threshold: float, path: str | os.PathLike, *,
                       channel_names: Sequence[str] | None = None, overwrite: bool = False) -> dict:
    """The score over time: the series above, its per-step outlier score and the threshold below, the
    flagged segments (runs of consecutive steps scored above the threshold) shaded on both.

    Returns
    -------
    dict
        ``segments`` (``(start, end)`` steps of each flagged run, inclusive), ``n_flagged``, ``threshold``, ``path``.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> scores = np.array([0.1, 0.2, 0.9, 0.8, 0.1, 0.7])
    >>> drawn = plot_series_scores(np.arange(6.0), scores, 0.5, tempfile.mkdtemp() + "/s.png")
    >>> drawn["segments"], drawn["n_flagged"]
    ([(2, 3), (5, 5)], 3)
    """
    values = np.asarray(series, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(values) or not np.isfinite(scores).all():
        raise InvalidInputError(f"Need one finite score per time step to plot; got {len(scores)} scores for "
                                f"{len(values)} steps.")
    flags = scores > threshold
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    segments = [(int(start), int(stop - 1)) for start, stop in zip(edges[::2], edges[1::2], strict=True)]
    figure = Figure(figsize=(10, 5))
    top, bottom = figure.subplots(2, 1, sharex=True)
    steps = np.arange(len(values))
    names = list(channel_names) if channel_names is not None else [f"channel {c}" for c in range(values.shape[1])]
    for channel in range(values.shape[1]):
        top.plot(steps, values[:, channel], linewidth=0.7, label=names[channel])
    bottom.plot(steps, scores, color="tab:blue", linewidth=0.7, label="outlier score")
    bottom.axhline(threshold, color="tab:red", linewidth=1, label=f"threshold {threshold:.4g}")
    for axes in (top, bottom):
        for start, end in segments:
            axes.axvspan(start - 0.5, end + 0.5, color="tab:red", alpha=0.2, linewidth=0)
    top.set(ylabel="value", title=f"Series and outlier score per time step ({len(segments)} flagged segments, "
                                  f"{int(flags.sum())} steps)")
    bottom.set(xlabel="time step", ylabel="outlier score")
    if values.shape[1] <= 8:
        top.legend(loc="upper left", fontsize="small")
    bottom.legend(loc="upper left", fontsize="small")
    return {"segments": segments, "n_flagged": int(flags.sum()), "threshold": float(threshold),
            "path": save(figure, path, overwrite=overwrite)}
