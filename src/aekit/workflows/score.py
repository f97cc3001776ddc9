"""Scoring files: each row's reconstruction error, outlier score and flag, against a threshold."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aekit import detect
from aekit.data import CHUNK_ROWS, Dataset, check_output_path, read_data
from aekit.estimator import Autoencoder
from aekit.exceptions import InvalidInputError, InvalidParameterValue
from aekit.timeseries import SlidingWindows, top_segments
from aekit.workflows.matching import (
    ARRAY_SUFFIXES,
    as_model,
    column_order,
    feature_chunks,
    output_feature_names,
)
from aekit.workflows.output import kept_columns, write_rows


def outlier_threshold(model: Autoencoder, *, contamination: float | str | None = None,
                      threshold: float | None = None) -> tuple[float, str]:
    """The outlier score above which a row is an outlier, and where it came from.

    By default the model's ``threshold_``: the ``1 - contamination`` quantile of the score on
    held-out training rows, computed at fit time. Another `contamination` reads the same quantile
    off the stored distribution of held-out scores (``error_quantiles_``, 1001 quantiles at levels
    0, 0.001, ..., 1: exact for multiples of 0.001, linear in between); ``"auto"`` applies
    :func:`aekit.detect.auto_threshold` to it. An explicit `threshold` is used as it is.

    Examples
    --------
    >>> import numpy as np, aekit
    >>> X = np.random.default_rng(0).normal(size=(200, 4))
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> outlier_threshold(ae)[0] == ae.threshold_
    True
    >>> outlier_threshold(ae, contamination=0.2)[0] < ae.threshold_
    True
    """
    if contamination is not None and threshold is not None:
        raise InvalidParameterValue("Give contamination or threshold, not both (--contamination or --threshold).")
    if threshold is not None:
        if not np.isfinite(threshold) or threshold < 0:
            raise InvalidParameterValue(
                f"The threshold must be a finite outlier score >= 0. Got {threshold!r} instead."
            )
        return float(threshold), "given"
    if contamination is None or contamination == model.contamination:
        return float(model.threshold_), f"learned at fit, contamination {model.contamination}"
    if contamination != "auto" and not 0 < contamination <= 0.5:  # the range Autoencoder(contamination=...) takes
        raise InvalidParameterValue(
            "The 'contamination' parameter must be a float in the range (0.0, 0.5] or a str among {'auto'}. "
            f"Got {contamination!r} instead."
        )
    quantiles = getattr(model, "error_quantiles_", None)
    if quantiles is None:
        raise InvalidInputError(
            "This model was saved without the distribution of its held-out errors, so it only knows the "
            f"threshold for contamination {model.contamination}. Refit it with this aekit, or give --threshold X."
        )
    if contamination == "auto":
        return detect.auto_threshold(quantiles), "held-out scores, contamination auto (robust 3-sigma on log scores)"
    levels = np.linspace(0.0, 1.0, len(quantiles))
    value = float(np.interp(1.0 - contamination, levels, quantiles))
    return value, f"held-out scores, contamination {contamination:g}"


def score_file(model, data, output, *, contamination: float | None = None, threshold: float | None = None,
               per_feature: bool = False, columns: Sequence[str] | None = None, key: str | None = None,
               image_size=None, chunk_rows: int = CHUNK_ROWS, verbose: int = 0, top_k: int = 5,
               keep_columns: Sequence[str] | None = None, sep: str | None = None) -> dict:
    """Write each row's reconstruction error, outlier score and outlier flag (integer: 1 = outlier, 0 = not) to
    `output`.

    The error is the mean squared error of the row in the scaled space the model was trained in
    (:meth:`~aekit.Autoencoder.reconstruction_error`), the score the model's
    :meth:`~aekit.Autoencoder.outlier_scores`; a row is an outlier when its score is above the
    threshold of :func:`outlier_threshold`. With `per_feature`, one ``error_<column>`` column per
    feature follows, so that one can see which columns made a row odd. `output` None writes no file:
    the summary alone. `keep_columns` as for :func:`encode_file`.

    A model fitted on a time series (``fit_file(..., window=W)``) scores `data` as a series: each
    time step gets ``outlier_score``, the mean score of the windows covering it, and ``outlier``
    (a quarter or more of those windows are above the threshold: :func:`aekit.timeseries.step_flags`);
    the summary adds ``window``, ``stride``, ``peak_step`` and ``segments``, the `top_k` runs of
    outlying steps (:func:`aekit.timeseries.top_segments`).

    Returns
    -------
    dict
        ``output``, ``n_rows``, ``n_outliers``, ``outlier_fraction``, ``threshold``,
        ``threshold_source``, ``mean_error``, ``max_error``.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, aekit
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> X = np.random.default_rng(0).normal(size=(200, 4))
    >>> np.save(folder / "x.npy", X)
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> summary = score_file(ae, folder / "x.npy", folder / "scores.csv", threshold=0.5)
    >>> summary["n_rows"], summary["threshold"]
    (200, 0.5)
    """
    model = as_model(model)
    if output is not None:
        check_output_path(output, data)
    limit, source = outlier_threshold(model, contamination=contamination, threshold=threshold)
    if getattr(model, "window_", None) is not None:
        return _score_series(model, data, output, limit, source, columns=columns, key=key, top_k=top_k)
    names = ["reconstruction_error", "outlier_score", "outlier"]
    if per_feature:
        names += [f"error_{name}" for name in output_feature_names(model)]
    totals = {"outliers": 0, "error": 0.0, "largest": 0.0}

    def scored() -> Iterator[tuple[Dataset, np.ndarray]]:
        for chunk, features in feature_chunks(model, data, columns=columns, key=key, image_size=image_size,
                                               chunk_rows=chunk_rows, verbose=verbose, sep=sep):
            squared = model.reconstruction_error(features, per_feature=True)
            errors = squared.mean(axis=1)  # as reconstruction_error(features), without a second pass
            scores = errors if model.anomaly_score == "error" else model.outlier_scores(features)
            flags = scores > limit
            totals["outliers"] += int(flags.sum())
            totals["error"] += float(errors.sum(dtype=np.float64))
            totals["largest"] = max(totals["largest"], float(errors.max()))
            frame = pd.DataFrame({"reconstruction_error": errors.astype(np.float64),
                                  "outlier_score": scores.astype(np.float64), "outlier": flags.astype(np.int8)})
            if per_feature:
                frame = pd.concat([frame, pd.DataFrame(squared.astype(np.float64), columns=names[3:])], axis=1)
            yield chunk, frame

    n_rows = write_rows(output, names, scored(), kept=kept_columns(data, keep_columns, chunk_rows, sep))
    n_outliers = totals["outliers"]
    return {
        "output": None if output is None else str(output), "n_rows": n_rows, "n_outliers": n_outliers,
        "outlier_fraction": n_outliers / n_rows, "threshold": limit, "threshold_source": source,
        "mean_error": totals["error"] / n_rows, "max_error": totals["largest"],
    }


def _score_series(model: Autoencoder, data, output, limit: float, source: str, *, columns, key, top_k: int) -> dict:
    """:func:`score_file` for a model trained on a series' windows: one score per time step."""
    window = model.window_
    dataset = read_data(data, columns=columns, key=key)
    order = column_order(dataset.columns, window["columns"], len(window["columns"]), data,
                          positional=Path(data).suffix.lower() in ARRAY_SUFFIXES, what="the model",
                          hint="Select the series' channels with --columns a,b,c (Python: columns=[...]).")
    series = dataset.X if order is None else dataset.X[:, order]
    windows = SlidingWindows(window["window"], stride=window["stride"]).fit(series)
    window_scores = model.outlier_scores(windows.transform(series))
    scores = windows.to_steps(window_scores, len(series))
    flags = windows.flags_to_steps(window_scores, limit, len(series))  # a vote of the windows, not the mean
    n_rows = write_rows(output, ["outlier_score", "outlier"], iter([(dataset, np.column_stack([scores, flags]))]))
    return {
        "output": str(output), "n_rows": n_rows, "n_outliers": int(flags.sum()),
        "outlier_fraction": float(flags.mean()), "threshold": limit, "threshold_source": source,
        "mean_score": float(scores.mean()), "max_score": float(scores.max()),
        "window": window["window"], "stride": window["stride"], "peak_step": int(np.argmax(scores)),
        "segments": top_segments(scores, flags, top_k),
    }
