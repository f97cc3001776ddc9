"""Text tables: ``.csv`` and ``.tsv``, either one gzip-compressed (``.gz``), read with pandas in chunks.

pandas would silently drop the extra cells of a row longer than the header; here such a row is refused.
"""

from __future__ import annotations

import csv
import gzip
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from aekit.data.common import (
    CHUNK_ROWS,
    SELECT_HINT,
    Dataset,
    make_dataset,
    open_regular,
    preview_names,
    select_columns,
    table_plan,
)
from aekit.exceptions import InvalidInputError

# Text tables by the end of their name, and their default separator; ".gz" ones are read through gzip.
_TEXT_TABLES = {".csv": ",", ".tsv": "\t", ".csv.gz": ",", ".tsv.gz": "\t"}


def table_format(path, *, suffix: bool = False) -> str | None:
    """``".csv"`` for a text table (``.csv``, ``.tsv``, either ``.gz``), ``".parquet"``, or None.

    With ``suffix``, the text table's own ending (``".tsv.gz"``, ...) instead of ``".csv"``.

    Examples
    --------
    >>> table_format("data.tsv.gz"), table_format("data.tsv.gz", suffix=True), table_format("x.npy")
    ('.csv', '.tsv.gz', None)
    """
    name = Path(path).name.lower()
    for ending in sorted(_TEXT_TABLES, key=len, reverse=True):
        if name.endswith(ending):
            return ending if suffix else ".csv"
    return ".parquet" if name.endswith(".parquet") else None


@contextmanager
def _open_text_table(path: Path) -> Iterator[BinaryIO]:
    """A text table opened as :func:`open_regular` does, read through gzip when its name ends in ``.gz``."""
    with open_regular(path) as file:
        if not path.name.lower().endswith(".gz"):
            yield file
            return
        with gzip.GzipFile(fileobj=file, mode="rb") as unzipped:
            yield unzipped


def _csv_header(file: BinaryIO, path: Path, sep: str = ",") -> list[str]:
    """The header row of the open CSV `file` (left open, at an undefined position)."""
    text = io.TextIOWrapper(file, newline="", encoding="utf-8-sig")
    try:
        header = next((row for row in csv.reader(text, delimiter=sep) if row), None)
    except (UnicodeDecodeError, csv.Error, OSError, EOFError) as error:  # OSError, EOFError: a damaged .gz
        raise InvalidInputError(f"{path} is not readable UTF-8 CSV text ({error}). Save it as UTF-8 CSV.") from error
    finally:
        text.detach()  # closing the wrapper would close `file`
    if not header:
        raise InvalidInputError(f"{path} is empty. A CSV needs a header row naming the columns, then a row per sample.")
    separator = next((other for other in ";\t|," if other != sep and len(header) == 1
                      and len(header[0].split(other)) > 1 and all(part.strip() for part in header[0].split(other))),
                     None)
    if separator is not None:
        raise InvalidInputError(
            f"{path} has one column named {header[0]!r}: it looks separated by {separator!r}, and aekit read it "
            f"as separated by {sep!r}. Pass --sep {separator!r} (Python: sep={separator!r})."
        )
    # Whole numbers can be column names ("1", "2", ...); a header of decimals is a data row.
    if all(_is_number(name) for name in header) and not all(name.strip().isdigit() for name in header):
        raise InvalidInputError(
            f"The first line of {path} ({preview_names(header, 5)}) looks like data, not a header. "
            "Add a header row naming the columns."
        )
    return [name or f"Unnamed: {j}" for j, name in enumerate(header)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_chunks(path: Path, columns, chunk_rows: int | None, sep: str | None = None, *, first: int = 0,
               stop: int | None = None) -> Iterator[Dataset]:
    """Chunks of the table's rows ``first`` to ``stop`` (all when None), separated by `sep` or by its name's default.

    Text has no index to seek by: the rows before ``first`` are parsed and dropped, the rows after
    ``stop`` are never read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.csv"
    >>> _ = path.write_text("x,kind\\n1.5,cat\\n2.5,dog\\n4.0,cat\\n")
    >>> [chunk.ids.tolist() for chunk in csv_chunks(path, ["x"], 1, first=1)]
    [[1], [2]]
    """
    sep = sep or _TEXT_TABLES[table_format(path, suffix=True)]
    with _open_text_table(path) as file:
        names = _csv_header(file, path, sep)
        file.seek(0)
        yield from _csv_datasets(file, path, names, columns, chunk_rows, sep, first, stop)


def csv_columns(path: Path, sep: str | None = None) -> list[str]:
    """The header of a text table, with the checks :func:`csv_chunks` makes (empty file, another separator,
    a data row in its place)."""
    with _open_text_table(path) as file:
        return _csv_header(file, path, sep or _TEXT_TABLES[table_format(path, suffix=True)])


def count_csv_rows(path: Path) -> int:
    """The non-blank lines after the header (a quoted cell that spans lines counts more than once).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.csv"
    >>> _ = path.write_text("x,kind\\n1.5,cat\\n2.5,dog\\n4.0,cat\\n")
    >>> count_csv_rows(path)
    3
    """
    with _open_text_table(path) as file:
        return max(sum(1 for line in file if line.strip()) - 1, 0)


def read_csv_column(path: Path, column: str) -> np.ndarray:
    """One column of the table as pandas parses it (numbers or text).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.csv"
    >>> _ = path.write_text("x,kind\\n1.5,cat\\n2.5,dog\\n4.0,cat\\n")
    >>> read_csv_column(path, "kind").tolist()
    ['cat', 'dog', 'cat']
    """
    sep = _TEXT_TABLES[table_format(path, suffix=True)]
    with _open_text_table(path) as file:
        names = _csv_header(file, path, sep)
        select_columns([column], names, path)
        file.seek(0)
        try:
            frame = _parsed(lambda: pd.read_csv(file, index_col=False, encoding="utf-8-sig", sep=sep), path, names)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, gzip.BadGzipFile,
                EOFError) as error:
            raise InvalidInputError(f"{path} is not a well-formed UTF-8 CSV file: {error}") from error
    if len(frame.columns) != len(names):
        raise InvalidInputError(f"{path}: the header does not match the rows below it. Check the first line.")
    frame.columns = names
    return frame[column].to_numpy()


def _csv_datasets(file: BinaryIO, path: Path, names: list[str], columns, chunk_rows: int | None, sep: str,
                  first: int, stop: int | None) -> Iterator[Dataset]:
    id_column, features = table_plan(names, columns, path)
    # index_col=False: never take the first column as an index. Never usecols: with it pandas silently
    # drops the extra cells of a row longer than the header; every column is parsed, then selected.
    options = {"index_col": False, "encoding": "utf-8-sig", "sep": sep}
    if stop is not None:
        options["nrows"] = stop
    start = first
    try:
        for frame in _csv_frames(file, path, names, options, chunk_rows, first):
            if len(frame) == 0:  # a header-only file; reported as "no data rows"
                continue
            if len(frame.columns) != len(names):  # pandas skipped a header line of blanks only
                raise InvalidInputError(
                    f"{path}: the header {preview_names(names, 5)!r} does not match the rows below it "
                    f"({len(frame.columns)} fields). Check the first line of the file."
                )
            frame.columns = names
            for name in features:
                _check_numeric_series(frame[name], name, path)
            ids = frame[id_column].to_numpy() if id_column else None
            with np.errstate(over="ignore"):  # beyond float32 range: inf, which make_dataset reports
                X = frame[features].to_numpy(dtype=np.float32, na_value=np.nan)
            yield make_dataset(X, features, ids, id_column, path, start)
            start += len(frame)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, gzip.BadGzipFile, EOFError) as error:
        raise InvalidInputError(f"{path} is not a well-formed UTF-8 CSV file: {error}") from error


def _csv_frames(file: BinaryIO, path: Path, names: list[str], options: dict, chunk_rows: int | None, first: int
                ) -> Iterator[pd.DataFrame]:
    """pandas' frames of the table (one when `chunk_rows` is None), less its first `first` rows."""
    if chunk_rows is None and first == 0:
        yield _parsed(lambda: pd.read_csv(file, **options), path, names)
        return
    step, skip = chunk_rows or CHUNK_ROWS, first
    with _parsed(lambda: pd.read_csv(file, chunksize=step, **options), path, names) as reader:
        # Skipped rows are parsed apart from the rows kept, so that their types (text, say) do not leak
        # into the kept rows' types.
        while skip > 0:
            skipped = _read(reader, min(skip, step), path, names)
            if skipped is None or len(skipped) == 0:
                return
            skip -= len(skipped)
        if chunk_rows is None:  # the rest at once
            frame = _read(reader, options["nrows"] - first if "nrows" in options else None, path, names)
            if frame is not None:
                yield frame
            return
        while (frame := _read(reader, step, path, names)) is not None:
            yield frame


def _read(reader, n_rows: int | None, path: Path, names: list[str]) -> pd.DataFrame | None:
    """The next `n_rows` rows (None: all the rest) of pandas' `reader`, or None at the end of the file."""
    def read():
        try:
            # get_chunk stops at read_csv's nrows; read alone would not
            return reader.read() if n_rows is None else reader.get_chunk(n_rows)
        except StopIteration:
            return None
    return _parsed(read, path, names)


def _parsed(parse, path: Path, names: list[str]):
    """Call pandas' `parse`, refusing rows longer than the header (pandas would drop their extra cells)."""
    with warnings.catch_warnings():  # only around pandas' own work, never across a yield
        warnings.filterwarnings("error", category=pd.errors.ParserWarning)
        try:
            return parse()
        except pd.errors.ParserWarning as warning:
            raise InvalidInputError(
                f"{path} has rows with more cells than its header has names ({len(names)}: {preview_names(names, 5)}); "
                f"pandas would drop the extra cells ({warning}). Name every column in the header, or remove "
                "the extra cells."
            ) from None


def _check_numeric_series(series: pd.Series, name: str, source: Path) -> None:
    dtype = series.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return
    offending = series[pd.to_numeric(series, errors="coerce").isna() & series.notna()]
    value, row = (offending.iloc[0], offending.index[0]) if len(offending) else (series.iloc[0], series.index[0])
    raise InvalidInputError(
        f"Column {name!r} in {source} is not numeric (dtype {dtype}, first non-numeric value {value!r} "
        f"at row {row}). {SELECT_HINT}"
    )
