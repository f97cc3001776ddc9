"""Parquet tables, read by record batches (or only the row groups that hold the rows asked for)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from aekit.data.common import SELECT_HINT, Dataset, make_dataset, open_regular, select_columns, table_plan
from aekit.exceptions import InvalidInputError


@contextmanager
def _open_parquet(path: Path) -> Iterator[pq.ParquetFile]:
    with open_regular(path) as file:
        try:
            # pre_buffer (the default) holds whole row groups' column chunks in Arrow's pool on top of the
            # batches (hundreds of MB); it pays off on object stores, not on local files read in chunks.
            parquet = pq.ParquetFile(file, pre_buffer=False)
        except (pa.ArrowException, OSError, ValueError) as error:  # ValueError: damaged, non-UTF-8 metadata
            raise InvalidInputError(f"{path} cannot be read as a Parquet file ({error}).") from error
        with parquet:
            yield parquet


def parquet_chunks(path: Path, columns, chunk_rows: int | None, *, first: int = 0, stop: int | None = None
                   ) -> Iterator[Dataset]:
    """Chunks of the table's rows ``first`` to ``stop`` (all when None); only the row groups holding them are read.

    Examples
    --------
    >>> import tempfile, pathlib, pyarrow as pa, pyarrow.parquet as pq
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.parquet"
    >>> pq.write_table(pa.table({"x": [1.5, 2.5, 4.0], "kind": ["cat", "dog", "cat"]}), path)
    >>> [chunk.X[:, 0].tolist() for chunk in parquet_chunks(path, ["x"], None, first=1, stop=2)]
    [[2.5]]
    """
    with _open_parquet(path) as parquet:
        try:
            schema = parquet.schema_arrow
            # A pandas index saved with the table (__index_level_0__, ...) labels rows; it is no feature.
            pandas_metadata = schema.pandas_metadata or {}
        except (pa.ArrowException, OSError, ValueError) as error:  # ValueError: damaged (non-UTF-8) metadata
            raise InvalidInputError(f"{path} is a damaged Parquet file ({error}). Write it again.") from error
        index_columns = pandas_metadata.get("index_columns", []) if isinstance(pandas_metadata, dict) else []
        index = {name for name in index_columns if isinstance(name, str)}
        id_column, features = table_plan([name for name in schema.names if name not in index], columns, path)
        id_type = schema.field(id_column).type if id_column else None
        if id_type is not None and (pa.types.is_nested(id_type) or pa.types.is_binary(id_type)
                                    or pa.types.is_large_binary(id_type) or pa.types.is_fixed_size_binary(id_type)):
            raise InvalidInputError(
                f"The id column {id_column!r} in {path} has Parquet type {id_type}; row ids must be numbers or "
                "text, one per row. Convert the column, or rename it if it is not an id column."
            )
        for name in features:
            kind = schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
                raise InvalidInputError(
                    f"Column {name!r} in {path} is not numeric (Parquet type {kind}). {SELECT_HINT}"
                )
        wanted = ([id_column] if id_column else []) + features
        try:
            groups, skip = _row_groups(parquet.metadata, first, stop)
            if not groups:
                batches = []
            elif chunk_rows is None:
                batches = [parquet.read_row_groups(groups, columns=wanted)]
            else:
                batches = parquet.iter_batches(batch_size=chunk_rows, row_groups=groups, columns=wanted)
            start, remaining = first, None if stop is None else stop - first
            for batch in batches:
                if skip >= batch.num_rows:  # rows before `first` in the first row group
                    skip -= batch.num_rows
                    continue
                batch, skip = batch.slice(skip, remaining), 0
                yield _arrow_dataset(batch, id_column, features, path, start)
                start += batch.num_rows
                if remaining is not None:
                    remaining -= batch.num_rows
                    if remaining <= 0:
                        break
        except (pa.ArrowException, OSError) as error:  # a damaged data page, found only when read
            raise InvalidInputError(f"{path} is a damaged Parquet file ({error}). Write it again.") from error


def _row_groups(metadata: pq.FileMetaData, first: int, stop: int | None) -> tuple[list[int], int]:
    """The row groups that hold rows ``first`` to ``stop``, and how many of their leading rows to skip."""
    groups, skip, offset = [], 0, 0
    for group in range(metadata.num_row_groups):
        size = metadata.row_group(group).num_rows
        if offset + size > first and (stop is None or offset < stop):
            if not groups:
                skip = first - offset
            groups.append(group)
        offset += size
    return groups, skip


def _arrow_dataset(batch: pa.Table | pa.RecordBatch, id_column, features, source: Path, start: int) -> Dataset:
    X = np.empty((batch.num_rows, len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        values = batch.column(name)
        if values.null_count:
            raise InvalidInputError(
                f"Column {name!r} in {source} has {values.null_count} null value(s). "
                "Drop or fill those rows first (pandas: df.dropna())."
            )
        with np.errstate(over="ignore"):  # beyond float32 range: inf, which make_dataset reports
            X[:, j] = values.to_numpy(zero_copy_only=False)
    ids = batch.column(id_column).to_numpy(zero_copy_only=False) if id_column else None
    return make_dataset(X, features, ids, id_column, source, start)


def parquet_columns(path: Path) -> list[str]:
    """The column names of a Parquet file, opened as :func:`parquet_chunks` opens it."""
    with _open_parquet(path) as parquet:
        return list(parquet.schema_arrow.names)


def count_parquet_rows(path: Path) -> int:
    """The row count from the file's metadata; no data page is read.

    Examples
    --------
    >>> import tempfile, pathlib, pyarrow as pa, pyarrow.parquet as pq
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.parquet"
    >>> pq.write_table(pa.table({"x": [1.5, 2.5, 4.0], "kind": ["cat", "dog", "cat"]}), path)
    >>> count_parquet_rows(path)
    3
    """
    with _open_parquet(path) as parquet:
        return parquet.metadata.num_rows


def read_parquet_column(path: Path, column: str) -> np.ndarray:
    """One column as it is stored (numbers or text).

    Examples
    --------
    >>> import tempfile, pathlib, pyarrow as pa, pyarrow.parquet as pq
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.parquet"
    >>> pq.write_table(pa.table({"x": [1.5, 2.5, 4.0], "kind": ["cat", "dog", "cat"]}), path)
    >>> read_parquet_column(path, "kind").tolist()
    ['cat', 'dog', 'cat']
    """
    with _open_parquet(path) as parquet:
        select_columns([column], parquet.schema_arrow.names, path)
        try:
            return parquet.read(columns=[column]).column(0).to_numpy(zero_copy_only=False)
        except (pa.ArrowException, OSError) as error:
            raise InvalidInputError(f"{path} is a damaged Parquet file ({error}). Write it again.") from error
