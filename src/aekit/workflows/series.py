"""Time series files: the channels and the timestamp column of a series table, and scoring it step by step.

A series file has one row per time step. In a table (``.csv``, ``.parquet``) the **timestamp column**
is recognised (:func:`time_column`) and carried to the outputs; the channels are the columns the model
stored (read by name), else the ones asked for, else every numeric column but the timestamp.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aekit.data import CHUNK_ROWS, Dataset, read_data, table_format
from aekit.estimator import SeriesAutoencoder
from aekit.exceptions import InvalidInputError
from aekit.timeseries import top_segments
from aekit.workflows.matching import ARRAY_SUFFIXES, default_sep, quoted, table_columns
from aekit.workflows.output import kept_columns, write_rows

TIME_NAMES = ("timestamp", "time", "date", "datetime", "ds")  # a column of one of these names is the time
SNIFF_ROWS = 50  # rows read to recognise the columns' types


def time_column(data, sep: str | None = None) -> str | None:
    """The name of the timestamp column of the table `data`, or None.

    The first column named ``timestamp``, ``time``, ``date``, ``datetime`` or ``ds`` (any case), else
    the first non-numeric column whose first 50 values all read as dates (pandas' ``to_datetime``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "s.csv"
    >>> _ = path.write_text("when,value\\n2024-01-01,1.0\\n2024-01-02,2.5\\n")
    >>> time_column(path)
    'when'
    """
    sample = _sample(data, sep)
    if sample is None:
        return None
    for name in sample.columns:
        if str(name).lower() in TIME_NAMES:
            return str(name)
    for name in sample.columns:
        values = sample[name].dropna()
        if len(values) and not pd.api.types.is_numeric_dtype(values):
            if pd.api.types.is_datetime64_any_dtype(values) or _all_dates(values):
                return str(name)
    return None


def _all_dates(values: pd.Series) -> bool:
    try:
        return bool(pd.to_datetime(values.astype(str), errors="coerce", format="mixed").notna().all())
    except (TypeError, ValueError):
        return False


def _sample(data, sep: str | None) -> pd.DataFrame | None:
    """The first rows of a table (None for any other file)."""
    path = Path(data)
    if table_format(path) is None or not path.is_file():
        return None
    if table_format(path) == ".csv":
        return pd.read_csv(path, nrows=SNIFF_ROWS, sep=sep or default_sep(path), encoding="utf-8-sig")
    import pyarrow.parquet as pq

    return next(pq.ParquetFile(path).iter_batches(batch_size=SNIFF_ROWS)).to_pandas()


def series_channels(data, columns: Sequence[str] | None, sep: str | None = None) -> list[str] | None:
    """The channels to read from `data`: `columns`, or a table's numeric columns but its timestamp (None: all)."""
    if columns:
        return list(columns)
    sample = _sample(data, sep)
    if sample is None:
        return None
    timestamp = time_column(data, sep)
    numeric = [str(name) for name in sample.columns
               if str(name) != timestamp and pd.api.types.is_numeric_dtype(sample[name])]
    if not numeric:
        raise InvalidInputError(
            f"{data} has no numeric column besides its timestamp column {timestamp!r} to read as a series (columns: "
            f"{quoted(table_columns(data, sep))}). Give a table with one numeric column per channel."
        )
    return numeric


def read_series(data, *, columns: Sequence[str] | None = None, key: str | None = None,
                sep: str | None = None) -> Dataset:
    """The series in `data`: one row per time step, its channels (:func:`series_channels`) as float32."""
    return read_data(data, columns=series_channels(data, columns, sep), key=key, sep=sep)


def score_series(model: SeriesAutoencoder, data, output, limit: float, source: str, *, columns, key, top_k: int,
                 keep_columns: Sequence[str] | None = None, sep: str | None = None,
                 chunk_rows: int = CHUNK_ROWS, overwrite: bool = False) -> dict:
    """:func:`aekit.workflows.score_file` for a :class:`~aekit.SeriesAutoencoder`: one score and flag per step.

    The model's stored channel names are read by name from a table (`columns` when it stored none; a
    ``.npy``/``.npz`` array's channels are taken in order, checked by their count); a timestamp
    column (:func:`time_column`) is written before the scores, then `keep_columns`.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is not None and Path(data).suffix.lower() not in ARRAY_SUFFIXES:  # an array's columns have no names
        columns = list(names)
    dataset = read_series(data, columns=columns, key=key, sep=sep)
    scores = model.outlier_scores(dataset.X)
    flags = scores > limit
    timestamp = time_column(data, sep)
    carried = [timestamp] if timestamp is not None and timestamp not in (keep_columns or []) else []
    carried += list(keep_columns or [])

    def chunks() -> Iterator[tuple[Dataset, pd.DataFrame]]:
        for start in range(0, len(scores), chunk_rows):
            part = slice(start, start + chunk_rows)
            yield (Dataset(dataset.X[part], dataset.columns, dataset.ids[part], dataset.id_name),
                   pd.DataFrame({"outlier_score": scores[part], "outlier": flags[part].astype(np.int8)}))

    n_rows = write_rows(output, ["outlier_score", "outlier"], chunks(),
                        kept=kept_columns(data, carried, chunk_rows, sep), overwrite=overwrite)
    segments = top_segments(scores, flags, top_k)
    if timestamp is not None and segments:
        times = pd.concat(kept_columns(data, [timestamp], chunk_rows, sep), ignore_index=True)[timestamp]
        for segment in segments:
            segment.update(start_time=str(times[segment["start"]]), end_time=str(times[segment["end"]]))
    return {
        "output": None if output is None else str(output), "n_rows": n_rows, "n_outliers": int(flags.sum()),
        "outlier_fraction": float(flags.mean()), "threshold": limit, "threshold_source": source,
        "mean_score": float(scores.mean()), "max_score": float(scores.max()),
        "window": model.window_, "normalize": model.normalize, "peak_step": int(np.argmax(scores)),
        "n_segments": int(np.count_nonzero(np.diff(np.concatenate([[0], flags.astype(np.int8)])) == 1)),
        "segments": segments, "time_column": timestamp,
    }
