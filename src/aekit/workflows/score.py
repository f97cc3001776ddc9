"""Scoring files: each row's reconstruction error, outlier score and flag, against a threshold."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from numbers import Real

import numpy as np
import pandas as pd

from aekit.data import Dataset, DataSpec
from aekit.detect import outlier_score, quantile_threshold
from aekit.estimator import Autoencoder, SeriesAutoencoder
from aekit.estimator.inference import observed_mean
from aekit.estimator.tabular import unseen_categories
from aekit.exceptions import InvalidParameterValue, parameter_error
from aekit.workflows.audio import is_sound_model, score_audio
from aekit.workflows.matching import (
    as_model,
    feature_chunks,
    output_feature_names,
    whole_table,
)
from aekit.workflows.output import check_output, kept_columns, write_rows
from aekit.workflows.series import score_series


def _outlier_scores(model: Autoencoder, rows, errors: np.ndarray) -> np.ndarray:
    """The outlier scores of ``rows``, whose reconstruction errors ``errors`` are already computed: those
    themselves when the model's score is the reconstruction error (no second pass over the rows)."""
    return model.outlier_scores(rows) if outlier_score(model.anomaly_score).reads_codes else errors


def _score_table(model: Autoencoder, data, output, limit: float, source: str, *, per_feature: bool, sep,
                 kept, overwrite: bool = False) -> dict:
    """:func:`score_file` for a model of a table (``table_``): the table read whole with its columns' types,
    every row scored from its observed cells (a row with none gets an empty score and is not flagged). With
    `per_feature`, each column's error (empty for a missing cell) and ``unseen_categories``: the categories of
    a row that training never saw (``column=value``), which count towards its score."""
    frame, chunk = whole_table(data, sep=sep)
    terms = model.reconstruction_error(frame, per_feature=True)
    errors = observed_mean(terms)
    scores = _outlier_scores(model, frame, errors)
    flags = scores > limit  # NaN (no observed cell) is never above it
    values = pd.DataFrame({"reconstruction_error": errors.astype(np.float64),
                           "outlier_score": scores.astype(np.float64), "outlier": flags.astype(np.int8)})
    if per_feature:
        for j, name in enumerate(output_feature_names(model)):
            values[f"error_{name}"] = terms[:, j].astype(np.float64)
        unseen = unseen_categories(model, frame)
        values["unseen_categories"] = ["; ".join(f"{name}={value}" for name, value in row.items() if value is not None)
                                       for row in unseen.to_dict("records")]
    n_rows = len(frame)
    write_rows(output, list(values.columns), iter([(chunk, values)]), kept=kept, overwrite=overwrite)
    scored = ~np.isnan(scores)
    n_outliers = int(flags.sum())
    return {
        "output": None if output is None else str(output), "n_rows": n_rows, "n_outliers": n_outliers,
        "outlier_fraction": n_outliers / n_rows, "threshold": limit, "threshold_source": source,
        "mean_error": float(np.nanmean(errors)) if scored.any() else None,
        "max_error": float(np.nanmax(errors)) if scored.any() else None,
        "n_unscored": int(n_rows - scored.sum()),
    }


def outlier_threshold(model: Autoencoder, *, contamination: float | str | None = None,
                      threshold: float | None = None) -> tuple[float, str]:
    """The outlier score above which a row is an outlier, and where it came from.

    By default the model's ``threshold_``: the ``1 - contamination`` quantile of the score on
    held-out training rows (all the fit's rows when the held-out ones are too few: see :mod:`aekit.detect`),
    computed at fit time. Another `contamination` reads the same quantile off the stored distribution of
    those scores (``score_quantiles_``, 1001 quantiles at levels
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
        if not _is_number(threshold) or not np.isfinite(threshold) or threshold < 0:
            raise InvalidParameterValue(
                f"The threshold must be a finite outlier score >= 0. Got {threshold!r} instead.",
                param="threshold", value=threshold)
        return float(threshold), "given"
    if contamination is None or contamination == model.contamination:
        return float(model.threshold_), f"learned at fit, contamination {model.contamination}"
    # the range Autoencoder(contamination=...) takes
    if contamination != "auto" and not (_is_number(contamination) and 0 < contamination <= 0.5):
        raise parameter_error("contamination", contamination,
                              "a float in the range (0.0, 0.5] or a str among {'auto'}")
    return quantile_threshold(model.score_quantiles_, contamination, "held-out scores")


def _is_number(value) -> bool:
    """A real number, not a bool (which Python counts as one)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def score_file(model, data, output, *, contamination: float | None = None, threshold: float | None = None,
               per_feature: bool = False, spec: DataSpec = DataSpec(), verbose: int = 0, top_k: int = 5,
               keep_columns: Sequence[str] | None = None, per_frame: bool = False, overwrite: bool = False) -> dict:
    """Write each row's reconstruction error, outlier score and outlier flag (integer: 1 = outlier, 0 = not) to
    `output`.

    The error is the mean squared error of the row in the scaled space the model was trained in
    (:meth:`~aekit.Autoencoder.reconstruction_error`), the score the model's
    :meth:`~aekit.Autoencoder.outlier_scores`; a row is an outlier when its score is above the
    threshold of :func:`outlier_threshold`. With `per_feature`, one ``error_<column>`` column per
    feature follows, so that one can see which columns made a row odd. `output` None writes no file:
    the summary alone. `spec`, `keep_columns` and `overwrite` as for :func:`encode_file`.

    A :class:`~aekit.SeriesAutoencoder` (``fit_file(..., window=...)``) scores `data` as a series
    (:func:`aekit.workflows.series.score_series`): each time step gets ``outlier_score``, the mean
    score of the windows covering it, and ``outlier`` (1 when that score is above the threshold); a
    timestamp column is carried to the output; the summary adds ``window``, ``peak_step``,
    ``n_segments`` and ``segments``, the `top_k` runs of consecutive outlying steps with the highest
    peaks (:func:`aekit.timeseries.top_segments`).

    A model fitted on sound scores each clip of a sound file or folder, or each moment of each clip
    with `per_frame`: :func:`aekit.workflows.audio.score_audio`.

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
    check_output(output, data, overwrite=overwrite)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise InvalidParameterValue("The number of flagged segments to list (top_k, --top-k) must be an integer "
                                    f">= 0 (0: none). Got {top_k!r} instead.", param="top_k", value=top_k)
    limit, source = outlier_threshold(model, contamination=contamination, threshold=threshold)
    if per_frame and not is_sound_model(model):
        raise InvalidParameterValue(
            "--per-frame (Python: per_frame=True) scores each moment of a sound clip, and this model was not "
            "trained on sound. Drop --per-frame.", problem="per_frame needs a model trained on sound",
            param="per_frame", value=True, hint="Drop --per-frame.")
    if is_sound_model(model):  # one score per clip, or per moment of a clip (aekit.workflows.audio)
        if per_feature:
            raise InvalidParameterValue(
                "--per-feature (Python: per_feature=True) splits a row's error over its columns; a sound model "
                "scores clips and moments (--per-frame). Drop --per-feature.",
                problem="per_feature does not apply to a sound model", param="per_feature", value=True,
                hint="Drop --per-feature, or use --per-frame.")
        clip_limit = (limit, source) if threshold is not None else quantile_threshold(
            model.audio_["clip_quantiles"], contamination or model.contamination, "training clips' scores")
        return score_audio(model, data, output, (limit, source) if per_frame else clip_limit, per_frame=per_frame,
                           chunk_rows=spec.chunk_rows, overwrite=overwrite)
    if isinstance(model, SeriesAutoencoder):
        if per_feature:
            raise InvalidParameterValue(
                "--per-feature (Python: per_feature) splits a row's score over its columns; a time-series model "
                "scores each step from the windows covering it, which has no such split. Drop --per-feature.",
                param="per_feature", value=per_feature)
        return score_series(model, data, output, limit, source, columns=spec.columns, key=spec.key, top_k=top_k,
                            keep_columns=keep_columns, sep=spec.sep, chunk_rows=spec.chunk_rows, overwrite=overwrite)
    if getattr(model, "table_", None) is not None:
        return _score_table(model, data, output, limit, source, per_feature=per_feature, sep=spec.sep,
                            kept=kept_columns(data, keep_columns, spec.chunk_rows, spec.sep), overwrite=overwrite)
    names = ["reconstruction_error", "outlier_score", "outlier"]
    if per_feature:
        names += [f"error_{name}" for name in output_feature_names(model)]
    totals = {"outliers": 0, "error": 0.0, "largest": 0.0}

    def scored() -> Iterator[tuple[Dataset, np.ndarray]]:
        for chunk, features in feature_chunks(model, data, spec, verbose=verbose):
            squared = model.reconstruction_error(features, per_feature=True)
            errors = squared.mean(axis=1)  # as reconstruction_error(features), without a second pass
            scores = _outlier_scores(model, features, errors)
            flags = scores > limit
            totals["outliers"] += int(flags.sum())
            totals["error"] += float(errors.sum(dtype=np.float64))
            totals["largest"] = max(totals["largest"], float(errors.max()))
            frame = pd.DataFrame({"reconstruction_error": errors.astype(np.float64),
                                  "outlier_score": scores.astype(np.float64), "outlier": flags.astype(np.int8)})
            if per_feature:
                frame = pd.concat([frame, pd.DataFrame(squared.astype(np.float64), columns=names[3:])], axis=1)
            yield chunk, frame

    n_rows = write_rows(output, names, scored(), kept=kept_columns(data, keep_columns, spec.chunk_rows, spec.sep),
                        overwrite=overwrite)
    n_outliers = totals["outliers"]
    return {
        "output": None if output is None else str(output), "n_rows": n_rows, "n_outliers": n_outliers,
        "outlier_fraction": n_outliers / n_rows, "threshold": limit, "threshold_source": source,
        "mean_error": totals["error"] / n_rows, "max_error": totals["largest"],
    }
