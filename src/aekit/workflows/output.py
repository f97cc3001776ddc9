"""Writing a job's rows: one file (.csv, .parquet, .npy) or a folder of PNG images, with the input's ids
and any columns carried over from it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from aekit._files import check_output_file, check_output_folder, output_folder
from aekit.data import Dataset, check_output_path, open_chunk_writer, table_format, write_images
from aekit.estimator import Autoencoder
from aekit.exceptions import InvalidInputError
from aekit.workflows.matching import default_sep, quoted, table_columns


def kept_columns(data, keep_columns: Sequence[str] | None, chunk_rows: int,
                  sep: str | None = None) -> Iterator[pd.DataFrame] | None:
    """The input's `keep_columns` (any type: ids, labels, text), chunk by chunk, to carry into the output."""
    if not keep_columns:
        return None
    path = Path(data)
    if table_format(path) is None:
        raise InvalidInputError(
            f"--keep-columns (Python: keep_columns) carries columns of a table, and {path} is not a .csv or "
            ".parquet file. Drop --keep-columns."
        )
    keep = list(keep_columns)
    available = table_columns(path, sep)
    missing = [name for name in keep if name not in available]
    if missing:
        raise InvalidInputError(
            f"--keep-columns names {quoted(missing)}, which {path} lacks. Its columns are {quoted(available)}."
        )
    return _read_kept(path, keep, chunk_rows, sep)


def _read_kept(path: Path, keep: list[str], chunk_rows: int, sep: str | None) -> Iterator[pd.DataFrame]:
    if table_format(path) == ".csv":
        with pd.read_csv(path, usecols=keep, chunksize=chunk_rows, sep=sep or default_sep(path)) as reader:
            for frame in reader:
                yield frame[keep]
    else:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=keep):
            yield batch.to_pandas()[keep]


def _take_rows(frames: Iterator[pd.DataFrame], buffer: list[pd.DataFrame], n_rows: int) -> pd.DataFrame:
    """The next `n_rows` rows of `frames` (whose chunks need not line up with the features')."""
    have = sum(len(frame) for frame in buffer)
    while have < n_rows:
        frame = next(frames)
        buffer.append(frame)
        have += len(frame)
    joined = pd.concat(buffer, ignore_index=True) if len(buffer) > 1 else buffer[0].reset_index(drop=True)
    buffer[:] = [joined.iloc[n_rows:]] if len(joined) > n_rows else []
    return joined.iloc[:n_rows].reset_index(drop=True)


def check_output(output, data, *, overwrite: bool) -> None:
    """Refuse, before any work, an `output` that :func:`write_rows` may not write: the input `data` itself,
    anything but a new name or (with `overwrite`) a regular file, a place inside a model folder."""
    if output is None:  # a summary without a file
        return
    check_output_path(output, data)
    if is_folder(output) and os.fspath(output):  # "" is no folder: the file check names it
        check_output_folder(output)
    else:
        check_output_file(output, overwrite=overwrite)


def write_rows(output, names: list[str], rows: Iterator[tuple[Dataset, np.ndarray | pd.DataFrame]], *,
                kept: Iterator[pd.DataFrame] | None = None, image_shape=None, overwrite: bool = False) -> int:
    """Write each chunk's values with its ids (the id column named as the input's); return the row count.

    `kept`: columns of the input carried through, written between the ids and the values. Without an
    `output`, the rows are only counted (a summary without a file). An `output` that names a folder
    (``out/``, or an existing folder) gets one PNG per row, named by its id, when the values are
    images of `image_shape`. An existing file is replaced only with `overwrite`; if the PNG files cannot
    all be written, those written are removed again.
    """
    # The first chunk is read before the output is opened: it tells whether the ids are rows or files.
    # read_data's chunks are never empty, so there is a first one (or an error that says why not).
    first = next(rows)
    if output is None:
        return len(first[0].X) + sum(len(chunk.X) for chunk, _ in rows)
    if is_folder(output):
        if image_shape is None:
            raise InvalidInputError(
                f"{output} names a folder: only images are written as a folder of PNG files (reconstruct or decode "
                "with a model trained on images). Write a .csv, .parquet or .npy file instead."
            )
        n_rows = 0
        with output_folder(output) as written:
            for chunk, values in itertools.chain([first], rows):
                written += write_images(output, values, image_shape, chunk.ids, overwrite=overwrite)
                n_rows += len(chunk.X)
        return n_rows
    if kept is not None and Path(output).suffix.lower() not in (".csv", ".parquet"):
        raise InvalidInputError(
            f"--keep-columns (Python: keep_columns) needs a .csv or .parquet output, where columns have names and "
            f"types of their own; {output} is not one. Write a .csv or .parquet file."
        )
    buffer: list[pd.DataFrame] = []
    with open_chunk_writer(output, _with_kept(names, kept, first, buffer), first[0].id_name,
                           overwrite=overwrite) as writer:
        for chunk, values in itertools.chain([first], rows):
            if kept is not None:
                carried = _take_rows(kept, buffer, len(chunk.X))
                frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(values, columns=names)
                values = pd.concat([carried, frame.reset_index(drop=True)], axis=1)
            writer.write(values, chunk.ids)
    return writer.n_rows


def is_folder(output) -> bool:
    """Whether `output` names a folder (a trailing slash, or an existing folder): one PNG file per row."""
    return str(output).endswith(("/", os.sep)) or Path(output).is_dir()


def model_image_shape(model: Autoencoder) -> tuple[int, int, int] | None:
    """The (C, H, W) of the model's rows when they are images (see :func:`aekit.plots.image_shape_of`)."""
    from aekit.plots import image_shape_of  # matplotlib only when PNG files are asked for

    return image_shape_of(model, model.n_features_in_)


def _with_kept(names: list[str], kept, first, buffer: list[pd.DataFrame]) -> list[str]:
    """The output's column names: the kept columns (peeked from their first chunk), then `names`."""
    if kept is None:
        return names
    peek = next(kept)
    buffer.append(peek)
    return [str(name) for name in peek.columns] + names
