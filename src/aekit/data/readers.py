"""Read any supported input by its name: one door (:func:`read_data`, :func:`iter_chunks`) for every format.

The checks of the path and the options are made here, once, before the format's module reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from aekit.data.arrays import array_chunks, load_array
from aekit.data.audio import is_audio_input
from aekit.data.common import CHUNK_ROWS, IMAGE_SUFFIXES, READ_SUFFIXES, Dataset
from aekit.data.images import check_image_size, image_chunks, image_files
from aekit.data.parquet import count_parquet_rows, parquet_chunks, parquet_columns, read_parquet_column
from aekit.data.text import count_csv_rows, csv_chunks, csv_columns, read_csv_column, table_format
from aekit.exceptions import InvalidInputError, Setting, Words, did_you_mean, parameter_error

_SUPPORTED = f"{', '.join(READ_SUFFIXES)} or a folder of images ({', '.join(IMAGE_SUFFIXES)})"


def read_data(path, *, columns: Sequence[str] | None = None, key: str | None = None,
              image_size: tuple[int, int] | str | None = None, sep: str | None = None,
              rows: tuple[int, int | None] | None = None) -> Dataset:
    """Read a data file or image folder into a float32 :class:`Dataset`, dispatching on the extension.

    Parameters
    ----------
    path : str or path-like
        A ``.csv`` (header row required), ``.parquet``, ``.npy`` or ``.npz`` file, or a folder of
        PNG/JPEG/BMP/PGM/PPM images (subfolders included, sorted by relative path).
    columns : list of str, optional
        Columns to read, in this order (tables; ``col0``, ... for 2-D arrays). Default: every feature.
    key : str, optional
        The array to read from a ``.npz`` file; needed when it holds several.
    image_size : (H, W) or "HxW", optional
        Resize every image to this size (Pillow bilinear); needed when the images' sizes differ.
    sep : str, optional
        The field separator of a text table; default by its name: a tab for ``.tsv`` (and
        ``.tsv.gz``), a comma for ``.csv`` (and ``.csv.gz``, read through gzip).
    rows : (start, stop), optional
        Read only rows ``start`` to ``stop`` (``stop`` excluded, None: to the end), as numbered in the
        whole file; their ids keep those numbers. See :func:`iter_chunks` for what each format reads.

    Returns
    -------
    Dataset
        3-D ``.npy``/``.npz`` arrays (N, H, W) become images of shape (1, H, W) and 4-D arrays are
        taken as (N, C, H, W). Grayscale and RGB images mixed in one folder all become RGB; alpha is
        dropped; 8-bit pixels are divided by 255 and 16-bit ones by 65535.

    Raises
    ------
    InvalidInputError
        Missing path, unsupported format, non-numeric or missing values, unknown or duplicated
        columns, images that cannot be decoded or differ in size; the message says what to do.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from aekit.data import write_data
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.csv"
    >>> write_data(path, np.array([[1.0, 2.0], [3.0, 4.0]]), columns=["a", "b"])
    >>> data = read_data(path, columns=["b"])
    >>> data.X, data.columns, data.ids
    (array([[2.],
           [4.]], dtype=float32), ['b'], array([0, 1]))
    """
    chunks = _chunks(path, None, columns, key, image_size, sep, rows)
    try:
        return next(chunks)
    finally:
        chunks.close()


def iter_chunks(path, *, chunk_rows: int = CHUNK_ROWS, columns: Sequence[str] | None = None,
                key: str | None = None, image_size: tuple[int, int] | str | None = None,
                sep: str | None = None, rows: tuple[int, int | None] | None = None) -> Iterator[Dataset]:
    """Yield consecutive chunks of at most `chunk_rows` rows, validated as :func:`read_data` does.

    Memory stays bounded by the chunk size for ``.csv``, ``.parquet``, ``.npy`` (memory-mapped) and
    image folders (whose chunks also stay under 256 MB of pixels, so they may hold fewer rows); a
    ``.npz`` array is loaded whole. Row ids continue across chunks; counts in error messages are for
    the chunk where the problem was found.

    With ``rows=(start, stop)`` only those rows are read (``stop`` excluded; None: to the end), so
    that each process of a distributed run can read its own share of one file (see
    :func:`shard_rows`): a ``.npy`` file maps just those rows, Parquet reads only the row groups
    holding them, an image folder decodes only those images (all headers are still checked); a CSV
    is parsed from its start up to ``stop`` (text has no index to seek by) and a ``.npz`` array is
    loaded whole. Row ids are the rows' numbers in the whole file.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.npy"
    >>> np.save(path, np.arange(10.0).reshape(5, 2))
    >>> [chunk.ids.tolist() for chunk in iter_chunks(path, chunk_rows=2)]
    [[0, 1], [2, 3], [4]]
    >>> [chunk.ids.tolist() for chunk in iter_chunks(path, chunk_rows=2, rows=(1, 4))]
    [[1, 2], [3]]
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int | np.integer) or chunk_rows < 1:
        raise parameter_error("chunk_rows", chunk_rows, "an int in the range [1, inf)", of="iter_chunks")
    return _chunks(path, int(chunk_rows), columns, key, image_size, sep, rows)


def shard_rows(n_rows: int, rank: int, world_size: int) -> tuple[int, int]:
    """The rows ``(start, stop)`` that process `rank` of `world_size` reads, split as ``np.array_split`` does.

    Contiguous ranges whose sizes differ by one at most, the larger ones first.

    Examples
    --------
    >>> [shard_rows(10, rank, 3) for rank in range(3)]
    [(0, 4), (4, 7), (7, 10)]
    """
    for name, value, low in (("n_rows", n_rows, 0), ("world_size", world_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise parameter_error(name, value, f"an int in the range [{low}, inf)", of="shard_rows")
    if isinstance(rank, bool) or not isinstance(rank, int | np.integer) or not 0 <= rank < world_size:
        raise parameter_error("rank", rank, f"an int in the range [0, {world_size - 1}]", of="shard_rows")
    size, larger = divmod(int(n_rows), int(world_size))  # the first `larger` shards take one row more
    start = int(rank) * size + min(int(rank), larger)
    return start, start + size + (rank < larger)


def count_rows(path, *, key: str | None = None) -> int:
    """Count the rows (samples) of a data file or image folder without reading the data if possible.

    Parquet reads its metadata, ``.npy`` its header, a folder counts image files; a CSV counts its
    non-blank lines after the header (a quoted cell that spans lines counts more than once).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.npy"
    >>> np.save(path, np.zeros((7, 3)))
    >>> count_rows(path)
    7
    """
    path = Path(path)
    kind = _input_kind(path)
    _check_options(path, kind, None, key, None)
    if kind == "images":
        return len(image_files(path))
    if kind == ".parquet":
        return count_parquet_rows(path)
    if kind == ".csv":
        return count_csv_rows(path)
    return len(load_array(path, key))


def table_header(path, *, sep: str | None = None) -> list[str]:
    """The column names of a ``.csv``/``.tsv`` or ``.parquet`` table, checked as :func:`read_data` checks them
    (an empty file, a header split by another separator, a file that is not Parquet), without reading its rows.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.csv"
    >>> _ = path.write_text("x,kind\\n1.5,cat\\n")
    >>> table_header(path)
    ['x', 'kind']
    """
    path = Path(path)
    kind = _input_kind(path)
    if kind not in (".csv", ".parquet"):
        raise InvalidInputError(f"{path} is not a table: pass a .csv, .tsv or .parquet file.")
    return csv_columns(path, sep) if kind == ".csv" else parquet_columns(path)


def read_labels(path, column: str, *, key: str | None = None) -> np.ndarray:
    """One column of a table as it is, numbers or text: labels that colour or group rows, not features.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.csv"
    >>> _ = path.write_text("x,kind\\n1.5,cat\\n2.5,dog\\n")
    >>> read_labels(path, "kind").tolist()
    ['cat', 'dog']
    """
    path = Path(path)
    kind = _input_kind(path)
    if kind == "images":
        raise InvalidInputError(
            f"{path} is a folder of images, which has no columns to take labels from. Drop --label-column "
            "(Python: labels=None), or pass a table (.csv, .parquet)."
        )
    _check_options(path, kind, None, key, None)
    if kind == ".csv":
        return read_csv_column(path, column)
    if kind == ".parquet":
        return read_parquet_column(path, column)
    return read_data(path, columns=[column], key=key).X[:, 0]


def _chunks(path, chunk_rows, columns, key, image_size, sep=None, rows=None) -> Iterator[Dataset]:
    """Check the path and options now, then return the format's chunk generator (one chunk if None)."""
    path = Path(path)
    kind = _input_kind(path)
    if image_size is not None:
        image_size = check_image_size(image_size)
    _check_options(path, kind, columns, key, image_size)
    if sep is not None and kind != ".csv":
        raise InvalidInputError(Words(Setting("sep", sep), f" applies only to text tables (.csv, .tsv), and {path} is "
                                      "not one. Drop --sep."), param="sep", value=sep)
    if sep is not None and (not isinstance(sep, str) or len(sep) != 1 or sep in "\"\r\n"):
        raise parameter_error("sep", sep, "one character such as ';' or '\\t'")
    first, stop = _row_range(rows)
    if kind == ".csv":
        chunks = csv_chunks(path, columns, chunk_rows, sep, first=first, stop=stop)
    elif kind == ".parquet":
        chunks = parquet_chunks(path, columns, chunk_rows, first=first, stop=stop)
    elif kind == "images":
        chunks = image_chunks(path, image_size, chunk_rows, first=first, stop=stop)
    else:
        chunks = array_chunks(path, key, columns, chunk_rows, first=first, stop=stop)
    return _non_empty(chunks, path, rows)


def _row_range(rows) -> tuple[int, int | None]:
    """``(start, stop)`` checked: whole numbers, 0 <= start < stop (stop None: to the end)."""
    if rows is None:
        return 0, None
    try:
        start, stop = rows
    except (TypeError, ValueError):
        start = stop = None
    whole = [isinstance(value, int | np.integer) and not isinstance(value, bool) for value in (start, stop)]
    if not (whole[0] and (whole[1] or stop is None) and 0 <= start and (stop is None or start < stop)):
        raise parameter_error("rows", rows, "a pair (start, stop) of whole numbers with 0 <= start < stop (stop may "
                              "be None: to the end)")
    return int(start), None if stop is None else int(stop)


def _non_empty(chunks: Iterator[Dataset], path: Path, rows=None) -> Iterator[Dataset]:
    n_rows = 0
    for chunk in chunks:
        if len(chunk.X):
            n_rows += len(chunk.X)
            yield chunk
    if n_rows == 0 and rows is not None:
        raise InvalidInputError(f"{path} has no data rows in rows={tuple(rows)!r}: the range starts past its last "
                                "row. Choose a range within the file (count_rows gives its size).")
    if n_rows == 0:
        raise InvalidInputError(f"{path} has no data rows. aekit needs at least one sample (one row each).")


def _input_kind(path: Path) -> str:
    """``"images"`` for a folder, else the lower-case extension; a clear error if unusable."""
    if not path.exists():
        siblings = os.listdir(path.parent) if path.parent.is_dir() else []
        raise InvalidInputError(f"No such file or folder: {path}.{did_you_mean(path.name, siblings)} Check the path.")
    if is_audio_input(path):  # clips of any length: rows come from their features (aekit.spectrogram)
        raise InvalidInputError(
            f"{path} is sound: clips of different lengths are not rows of a table. Turn them into rows with "
            "aekit.spectrogram.LogMelFrames (aekit fit and aekit score do it for sound files and folders)."
        )
    if path.is_dir():
        return "images"
    if table_format(path) == ".csv":  # .csv, .tsv and their .gz
        return ".csv"
    if path.suffix.lower() not in READ_SUFFIXES:
        raise InvalidInputError(
            f"Cannot read {path}: unsupported extension {path.suffix or '(none)'!r}. Supported: {_SUPPORTED}."
        )
    return path.suffix.lower()


def _check_options(path: Path, kind: str, columns, key, image_size) -> None:
    if key is not None and kind != ".npz":
        raise InvalidInputError(Words(Setting("key", key), f" applies only to .npz files, and {path} is not one. Drop "
                                      "the key."), param="key", value=key)
    if image_size is not None and kind != "images":
        raise InvalidInputError(Words(Setting("image_size"), f" applies only to folders of images, and {path} is not a "
                                      "folder. Drop --image-size."), param="image_size", value=image_size)
    if columns is not None and kind == "images":
        raise InvalidInputError(f"columns cannot select pixels of the images in {path}. Drop --columns.")
