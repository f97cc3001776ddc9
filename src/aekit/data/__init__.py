"""Read and write aekit's data files: one module, chosen by file extension, for the library and the CLI.

Read: ``.csv`` (header row), ``.parquet``, ``.npy``, ``.npz`` and folders of images; everything
becomes a float32 :class:`Dataset`. Write: ``.csv`` and ``.parquet`` (an id column, then the named
columns) and ``.npy`` (the plain array), always atomically. :func:`iter_chunks` and
:func:`open_chunk_writer` do the same in bounded memory, for data bigger than memory.

A table whose first column is named ``row`` or ``file`` (what :func:`write_data` writes), or has an
empty name (the index that ``DataFrame.to_csv`` writes), holds row ids, not a feature.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import stat
import tokenize
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from aekit._files import atomic_write, atomic_write_bytes
from aekit.exceptions import InvalidInputError, InvalidParameterValue, did_you_mean

__all__ = [
    "MAX_IMAGE_PIXELS", "ChunkWriter", "Dataset", "PixelNames", "count_rows", "iter_chunks", "open_chunk_writer",
    "check_output_path", "parse_image_size", "read_data", "read_labels", "table_format", "write_data", "write_images",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm")
# The only Pillow decoders an image file may reach, whatever its content says: Pillow picks the decoder
# from the bytes, not the name, and some (EPS, PDF) run external programs such as Ghostscript.
# "PPM" also reads PGM and PBM.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "PPM")
# Pixels (height x width) one image may declare, or --image-size ask for: 4096 x 4096. Checked on the
# header, before anything is decoded, so that a small file declaring a huge image costs nothing.
MAX_IMAGE_PIXELS = 4096 * 4096
# iter_chunks' chunks of images stay under this many bytes of float32, whatever chunk_rows asks.
_IMAGE_CHUNK_BYTES = 256 * 2**20
READ_SUFFIXES = (".csv", ".parquet", ".npy", ".npz")
WRITE_SUFFIXES = (".csv", ".parquet", ".npy")
ID_NAMES = ("row", "file")
# "Unnamed: 0" is the name we (like pandas) give an empty first header: the index of df.to_csv().
_ID_COLUMNS = (*ID_NAMES, "Unnamed: 0")
# DecompressionBombError: Pillow refuses images of more than Image.MAX_IMAGE_PIXELS pixels.
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_GRAY_MODES = ("1", "L", "LA", *_SIXTEEN_BIT_MODES)
_SUPPORTED = f"{', '.join(READ_SUFFIXES)} or a folder of images ({', '.join(IMAGE_SUFFIXES)})"
_SELECT_HINT = "Select numeric columns with --columns a,b,c (Python: columns=[...])."


@dataclass(frozen=True, eq=False)
class Dataset:
    """Rows of features read from one file or folder.

    Attributes
    ----------
    X : ndarray of shape (n_rows, n_features), float32, C-contiguous
        The features; an image is flattened in (C, H, W) order, pixels scaled to [0, 1].
    columns : list of str, or PixelNames for images
        Feature names (``px0``, ``px1``, ... for images, made one at a time when asked for;
        ``col0``, ... for plain arrays).
    ids : ndarray of shape (n_rows,)
        Row numbers 0..n-1 (continuing across chunks), the file's id column, or for images the
        file names relative to the folder.
    id_name : {"row", "file"}
        What `ids` are; the name of the id column when written out.
    image_shape : tuple (C, H, W) or None
        The shape of one image, for image data.
    """

    X: np.ndarray
    columns: Sequence[str]
    ids: np.ndarray
    id_name: str = "row"
    image_shape: tuple[int, int, int] | None = None


class PixelNames(Sequence[str]):
    """The names ``px0``, ``px1``, ... of an image's values, made when asked for rather than stored.

    A 4096x4096 RGB image has 50 million values; their names as Python strings would take gigabytes.
    Compares equal to the list of the same names.

    Examples
    --------
    >>> names = PixelNames(3)
    >>> names[-1], list(names), names == ["px0", "px1", "px2"], names.index("px1")
    ('px2', ['px0', 'px1', 'px2'], True, 1)
    """

    def __init__(self, n_values: int) -> None:
        self._n_values = int(n_values)

    def __len__(self) -> int:
        return self._n_values

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [f"px{j}" for j in range(*index.indices(self._n_values))]
        return f"px{range(self._n_values)[index]}"

    def __iter__(self) -> Iterator[str]:
        return (f"px{j}" for j in range(self._n_values))

    def index(self, name, start: int = 0, stop: int | None = None) -> int:
        match = re.fullmatch(r"px(0|[1-9][0-9]*)", name) if isinstance(name, str) else None
        if match and int(match[1]) in range(self._n_values)[start:stop]:
            return int(match[1])
        raise ValueError(f"{name!r} is not in the pixel names")

    def __contains__(self, name) -> bool:
        try:
            self.index(name)
        except ValueError:
            return False
        return True

    def __eq__(self, other) -> bool:
        if isinstance(other, PixelNames):
            return len(other) == len(self)
        if isinstance(other, list | tuple):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # like the list it stands for

    def __repr__(self) -> str:
        return f"PixelNames({self._n_values})"


def read_data(path, *, columns: Sequence[str] | None = None, key: str | None = None,
              image_size: tuple[int, int] | str | None = None, sep: str | None = None) -> Dataset:
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
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.csv"
    >>> write_data(path, np.array([[1.0, 2.0], [3.0, 4.0]]), columns=["a", "b"])
    >>> data = read_data(path, columns=["b"])
    >>> data.X, data.columns, data.ids
    (array([[2.],
           [4.]], dtype=float32), ['b'], array([0, 1]))
    """
    chunks = _chunks(path, None, columns, key, image_size, sep)
    try:
        return next(chunks)
    finally:
        chunks.close()


def iter_chunks(path, *, chunk_rows: int = 65536, columns: Sequence[str] | None = None,
                key: str | None = None, image_size: tuple[int, int] | str | None = None,
                sep: str | None = None) -> Iterator[Dataset]:
    """Yield consecutive chunks of at most `chunk_rows` rows, validated as :func:`read_data` does.

    Memory stays bounded by the chunk size for ``.csv``, ``.parquet``, ``.npy`` (memory-mapped) and
    image folders (whose chunks also stay under 256 MB of pixels, so they may hold fewer rows); a
    ``.npz`` array is loaded whole. Row ids continue across chunks; counts in error messages are for
    the chunk where the problem was found.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.npy"
    >>> np.save(path, np.arange(10.0).reshape(5, 2))
    >>> [chunk.ids.tolist() for chunk in iter_chunks(path, chunk_rows=2)]
    [[0, 1], [2, 3], [4]]
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int | np.integer) or chunk_rows < 1:
        raise InvalidParameterValue(
            f"The 'chunk_rows' parameter of iter_chunks must be an int in the range [1, inf). "
            f"Got {chunk_rows!r} instead."
        )
    return _chunks(path, int(chunk_rows), columns, key, image_size, sep)


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
        return len(_image_files(path))
    if kind == ".parquet":
        with _open_parquet(path) as parquet:
            return parquet.metadata.num_rows
    if kind == ".csv":
        with _open_text_table(path) as file:
            return max(sum(1 for line in file if line.strip()) - 1, 0)
    return len(_load_array(path, key))


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
        sep = _TEXT_TABLES[table_format(path, suffix=True)]
        with _open_text_table(path) as file:
            names = _csv_header(file, path, sep)
            _select([column], names, path)
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
    if kind == ".parquet":
        with _open_parquet(path) as parquet:
            _select([column], parquet.schema_arrow.names, path)
            try:
                return parquet.read(columns=[column]).column(0).to_numpy(zero_copy_only=False)
            except (pa.ArrowException, OSError) as error:
                raise InvalidInputError(f"{path} is a damaged Parquet file ({error}). Write it again.") from error
    return read_data(path, columns=[column], key=key).X[:, 0]


def check_output_path(output, data) -> None:
    """Refuse an output path that is the input `data` itself (also through a symlink or a hard link).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.csv"
    >>> _ = path.write_text("a\\n1\\n")
    >>> check_output_path(path.with_name("codes.csv"), path)  # another file: fine
    """
    try:
        same = os.path.samefile(output, data)  # same st_dev and st_ino
    except OSError:  # the output does not exist yet (or cannot be looked at: the writer will say)
        return
    if same:
        raise InvalidInputError(
            f"The output {output} is the input file {data}: writing it would replace the data being read. "
            "Choose another output path."
        )


def parse_image_size(text: str) -> tuple[int, int]:
    """Parse ``"HxW"`` (for example ``"28x28"``) into ``(H, W)``.

    Examples
    --------
    >>> parse_image_size("32x24")
    (32, 24)
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(text))
    if not match or 0 in (int(match[1]), int(match[2])):
        raise InvalidInputError(
            f"Invalid image size {text!r}: write it as HxW with positive whole numbers, e.g. 28x28."
        )
    return int(match[1]), int(match[2])


def write_data(path, array, *, columns: Sequence[str] | None = None, ids=None, id_name: str = "row") -> None:
    """Write a 2-D array atomically: ``.csv``/``.parquet`` with an id column first, or a plain ``.npy``.

    Parameters
    ----------
    path : str or path-like
        The output file; its extension picks the format.
    array : array-like of shape (n_rows, n_features)
        Numbers (bool, integer or float); their dtype is kept in ``.parquet`` and ``.npy``.
    columns : list of str, optional
        Feature names; default ``col0``, ``col1``, ...
    ids : array-like of shape (n_rows,), optional
        Row ids (numbers or names); default 0..n-1.
    id_name : {"row", "file"}
        Name of the id column, so that :func:`read_data` recognises it.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "codes.csv"
    >>> write_data(path, np.array([[0.5], [1.5]]), columns=["z0"], ids=["a.png", "b.png"], id_name="file")
    >>> print(path.read_text())
    file,z0
    a.png,0.5
    b.png,1.5
    <BLANKLINE>
    """
    array = _as_matrix(array, path)
    columns = [f"col{j}" for j in range(array.shape[1])] if columns is None else columns
    with open_chunk_writer(path, columns, id_name) as writer:
        writer.write(array, ids)


def write_images(folder, rows, image_shape: Sequence[int], names: Sequence) -> list[Path]:
    """Write flat image rows (pixels in [0, 1], C-order) as 8-bit PNG files into `folder`, atomically each.

    Parameters
    ----------
    folder : str or path-like
        Created when missing (with its parents).
    rows : array-like of shape (n_rows, C*H*W)
        Pixels scaled to [0, 1], as :func:`read_data` reads images; clipped to [0, 1], then x 255.
    image_shape : (C, H, W)
        1 channel: grey PNGs; 3: RGB.
    names : sequence
        One name per row: an image's relative path (its extension becomes ``.png``) or a row id.

    Returns
    -------
    list of Path
        The files written, in row order.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> [p.name for p in write_images(folder, np.zeros((2, 4)), (1, 2, 2), [0, "a/b.jpg"])]
    ['0.png', 'b.png']
    >>> read_data(folder).X.shape
    (2, 4)
    """
    rows = np.asarray(rows, dtype=np.float64)
    channels, height, width = (int(s) for s in image_shape)
    if channels not in (1, 3) or rows.ndim != 2 or rows.shape[1] != channels * height * width:
        raise InvalidInputError(
            f"Cannot write rows of shape {rows.shape} as images of shape {tuple(image_shape)} (C, H, W): PNG output "
            "takes grey (1 channel) or RGB (3) images with C*H*W values per row."
        )
    folder = Path(folder)
    written = []
    for row, name in zip(rows, names, strict=True):
        pixels = np.rint(np.clip(row, 0.0, 1.0) * 255).astype(np.uint8).reshape(channels, height, width)
        image = Image.fromarray(pixels[0] if channels == 1 else pixels.transpose(1, 2, 0))
        target = folder / Path(str(name)).with_suffix(".png")
        if ".." in target.relative_to(folder).parts:  # an id such as "../x" must not leave the folder
            raise InvalidInputError(f"Cannot write image {str(name)!r}: its name leaves the folder {folder}.")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidInputError(f"Cannot create the folder {target.parent}: {error.strerror}.") from None
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        atomic_write_bytes(target, buffer.getvalue())
        written.append(target)
    return written


@contextmanager
def open_chunk_writer(path, columns: Sequence[str], id_name: str = "row") -> Iterator[ChunkWriter]:
    """Open a :class:`ChunkWriter` that appends chunks to a temporary file, renamed onto `path` at the end.

    Nothing exists at `path` (nor any temporary file) if the ``with`` block raises.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "big.parquet"
    >>> with open_chunk_writer(path, ["a", "b"]) as writer:
    ...     for start in range(0, 6, 2):
    ...         writer.write(np.ones((2, 2), dtype=np.float32))
    >>> read_data(path).ids.tolist()
    [0, 1, 2, 3, 4, 5]
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise InvalidInputError(
            f"Cannot write {path}: unsupported extension {suffix or '(none)'!r}. "
            f"Use one of {', '.join(WRITE_SUFFIXES)}."
        )
    columns = _output_columns(columns, id_name, path)
    with atomic_write(path, "w" if suffix == ".csv" else "wb") as file:
        writer = _WRITERS[suffix](file, path, columns, id_name)
        try:
            yield writer
            writer.close()
        finally:
            writer.release()


class ChunkWriter:
    """Writes rows chunk by chunk into an open file; made by :func:`open_chunk_writer`.

    The first chunk fixes the dtype of the values (``.parquet``/``.npy``) and the type of the ids.
    """

    _accepts_frames = True  # DataFrame chunks with a dtype per column

    def __init__(self, file, path: Path, columns: list[str], id_name: str) -> None:
        self.path, self.columns, self.id_name = path, columns, id_name
        self.n_rows = 0
        self._file = file
        self._dtype: np.dtype | None = None

    def write(self, array, ids=None) -> None:
        """Append rows; `ids` default to the row numbers continuing from the previous chunk.

        `array` may also be a DataFrame whose columns are this writer's, each with its own dtype
        (integer flags, text labels carried through): ``.csv`` and ``.parquet`` keep them as they are,
        ``.npy`` holds one dtype and takes the frame's numbers as float64.
        """
        if isinstance(array, pd.DataFrame):
            if list(map(str, array.columns)) != self.columns:
                raise InvalidInputError(f"Cannot write columns {_preview(list(array.columns))} to {self.path}, "
                                        f"opened with {_preview(self.columns)}.")
            array = array if self._accepts_frames else _as_matrix(array.to_numpy(dtype=np.float64), self.path)
        else:
            array = _as_matrix(array, self.path)
        if array.shape[1] != len(self.columns):
            raise InvalidInputError(
                f"Cannot write a chunk with {array.shape[1]} columns to {self.path}, "
                f"opened with {len(self.columns)} columns ({_preview(self.columns)})."
            )
        ids = np.arange(self.n_rows, self.n_rows + len(array)) if ids is None else np.asarray(ids)
        if ids.shape != (len(array),):
            raise InvalidInputError(
                f"Cannot write {self.path}: ids have shape {ids.shape} but the chunk has {len(array)} rows. "
                "Give one id per row."
            )
        if self._dtype is None:
            self._dtype = array.dtype if isinstance(array, np.ndarray) else np.dtype(object)
            self._begin(ids if isinstance(array, np.ndarray) else (ids, array))
        self._append(array.astype(self._dtype, copy=False) if isinstance(array, np.ndarray) else array, ids)
        self.n_rows += len(array)

    def close(self) -> None:
        """Finish the file (called by :func:`open_chunk_writer` when the block succeeds)."""
        if self._dtype is None:
            self._dtype = np.dtype(np.float32)
            self._begin(np.arange(0))
        self._end()

    def release(self) -> None:
        """Free what the format's writer holds, whether or not the file was finished."""

    def _begin(self, ids: np.ndarray) -> None:
        """Write whatever comes before the first row."""

    def _append(self, array: np.ndarray, ids: np.ndarray) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        """Write whatever comes after the last row."""


class _CsvWriter(ChunkWriter):
    def _begin(self, ids):
        pd.DataFrame(columns=[self.id_name, *self.columns]).to_csv(self._file, index=False)

    def _append(self, array, ids):
        frame = array.copy(deep=False) if isinstance(array, pd.DataFrame) else pd.DataFrame(
            array, columns=self.columns, copy=False)
        frame.insert(0, self.id_name, ids)
        frame.to_csv(self._file, header=False, index=False)


class _ParquetWriter(ChunkWriter):
    _writer: pq.ParquetWriter | None = None

    def _begin(self, ids):
        if isinstance(ids, tuple):  # (ids, the first DataFrame chunk): a type per column, from its values
            ids, frame = ids
            types = [pa.Array.from_pandas(frame[name]).type for name in self.columns]
        else:
            types = [pa.from_numpy_dtype(self._dtype)] * len(self.columns)
        fields = [(self.id_name, pa.array(ids).type), *zip(self.columns, types, strict=True)]
        self._writer = pq.ParquetWriter(self._file, pa.schema(fields))

    def release(self):
        # Close the writer while its (temporary) file is still open, else its __del__ fails noisily.
        if self._writer is not None and self._writer.is_open:
            self._writer.close()

    def _append(self, array, ids):
        if isinstance(array, pd.DataFrame):
            types = self._writer.schema.types[1:]
            arrays = [pa.array(ids), *(pa.Array.from_pandas(array[name], type=kind)
                                       for name, kind in zip(self.columns, types, strict=True))]
            self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._writer.schema))
            return
        by_column = np.ascontiguousarray(array.T)
        arrays = [pa.array(ids), *(pa.array(values) for values in by_column)]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._writer.schema))

    def _end(self):
        self.release()


class _NpyWriter(ChunkWriter):
    """Reserves a fixed-size .npy header, appends raw rows, then rewrites the header with the row count."""

    _HEADER_BYTES = 128  # a multiple of 64, as the format asks; room for any (rows, columns) and dtype
    _accepts_frames = False

    def _begin(self, ids):
        self._file.write(self._header())

    def _append(self, array, ids):
        self._file.write(np.ascontiguousarray(array).tobytes())

    def _end(self):
        self._file.seek(0)
        self._file.write(self._header())
        self._file.seek(0, os.SEEK_END)

    def _header(self) -> bytes:
        described = {"descr": np.lib.format.dtype_to_descr(self._dtype), "fortran_order": False,
                     "shape": (self.n_rows, len(self.columns))}
        magic = np.lib.format.magic(1, 0)
        text = repr(described).ljust(self._HEADER_BYTES - len(magic) - 3) + "\n"
        return magic + len(text).to_bytes(2, "little") + text.encode("latin1")


_WRITERS = {".csv": _CsvWriter, ".parquet": _ParquetWriter, ".npy": _NpyWriter}


# ---------------------------------------------------------------- dispatch and shared checks


def _chunks(path, chunk_rows, columns, key, image_size, sep=None) -> Iterator[Dataset]:
    """Check the path and options now, then return the format's chunk generator (one chunk if None)."""
    path = Path(path)
    kind = _input_kind(path)
    if image_size is not None:  # one parser, one message for "28x28" and (28, 28) alike
        image_size = parse_image_size(image_size if isinstance(image_size, str) else "x".join(map(str, image_size)))
        if image_size[0] * image_size[1] > MAX_IMAGE_PIXELS:
            raise InvalidInputError(
                f"The image size {image_size[0]}x{image_size[1]} is {image_size[0] * image_size[1]:,} pixels, over "
                f"aekit's limit of {MAX_IMAGE_PIXELS:,} (4096x4096) per image. Choose a smaller --image-size."
            )
    _check_options(path, kind, columns, key, image_size)
    if sep is not None and kind != ".csv":
        raise InvalidInputError(f"sep={sep!r} applies only to text tables (.csv, .tsv), and {path} is not one. "
                                "Drop --sep.")
    if sep is not None and (not isinstance(sep, str) or len(sep) != 1 or sep in "\"\r\n"):
        raise InvalidParameterValue(f"The 'sep' parameter must be one character such as ';' or '\\t'. Got {sep!r} "
                                    "instead.")
    if kind == ".csv":
        chunks = _csv_chunks(path, columns, chunk_rows, sep or _TEXT_TABLES[table_format(path, suffix=True)])
    elif kind == ".parquet":
        chunks = _parquet_chunks(path, columns, chunk_rows)
    elif kind == "images":
        chunks = _image_chunks(path, image_size, chunk_rows)
    else:
        chunks = _array_chunks(path, key, columns, chunk_rows)
    return _non_empty(chunks, path)


def _non_empty(chunks: Iterator[Dataset], path: Path) -> Iterator[Dataset]:
    n_rows = 0
    for chunk in chunks:
        if len(chunk.X):
            n_rows += len(chunk.X)
            yield chunk
    if n_rows == 0:
        raise InvalidInputError(f"{path} has no data rows. aekit needs at least one sample (one row each).")


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


def _input_kind(path: Path) -> str:
    """``"images"`` for a folder, else the lower-case extension; a clear error if unusable."""
    if not path.exists():
        siblings = os.listdir(path.parent) if path.parent.is_dir() else []
        raise InvalidInputError(f"No such file or folder: {path}.{did_you_mean(path.name, siblings)} Check the path.")
    if path.is_dir():
        return "images"
    if table_format(path) == ".csv":  # .csv, .tsv and their .gz
        return ".csv"
    if path.suffix.lower() not in READ_SUFFIXES:
        raise InvalidInputError(
            f"Cannot read {path}: unsupported extension {path.suffix or '(none)'!r}. Supported: {_SUPPORTED}."
        )
    return path.suffix.lower()


@contextmanager
def _open_text_table(path: Path) -> Iterator[BinaryIO]:
    """A text table opened as :func:`_open_regular` does, read through gzip when its name ends in ``.gz``."""
    with _open_regular(path) as file:
        if not path.name.lower().endswith(".gz"):
            yield file
            return
        with gzip.GzipFile(fileobj=file, mode="rb") as unzipped:
            yield unzipped


_FILE_TYPES = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def _open_regular(path: Path) -> BinaryIO:
    """Open `path` for binary reading, refusing anything but a regular file.

    The check is made on the open descriptor (not the path, which could be swapped in between), and
    the open does not block: a FIFO named ``x.csv`` would otherwise wait forever for a writer, and
    ``/dev/zero`` would be read without end.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:  # ENXIO: a socket; ELOOP: a symlink loop
        raise InvalidInputError(f"Cannot open {path}: {error.strerror}. Check the path and its permissions.") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _FILE_TYPES if test(mode)), "not a regular file")
            raise InvalidInputError(
                f"{path} is {kind}, not a regular file; aekit reads data only from regular files. "
                "Save the data to a file first."
            )
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _check_options(path: Path, kind: str, columns, key, image_size) -> None:
    if key is not None and kind != ".npz":
        raise InvalidInputError(f"key={key!r} applies only to .npz files, and {path} is not one. Drop the key.")
    if image_size is not None and kind != "images":
        raise InvalidInputError(
            f"image_size applies only to folders of images, and {path} is not a folder. Drop --image-size."
        )
    if columns is not None and kind == "images":
        raise InvalidInputError(f"columns cannot select pixels of the images in {path}. Drop --columns.")


def _select(columns, available: list[str], source: Path) -> list[str]:
    """Check the requested column names against those available; return them in the order asked."""
    requested = _names(columns)
    if not requested:
        raise InvalidInputError(f"columns=[] selects nothing from {source}. Name at least one column.")
    repeated = _repeated(requested)
    if repeated:
        raise InvalidInputError(f"Columns {repeated} are selected more than once from {source}. List each once.")
    known = set(available)
    for name in requested:
        if name not in known:
            raise InvalidInputError(
                f"Column {name!r} not found in {source}.{did_you_mean(name, available)} "
                f"Its columns are: {_preview(available)}."
            )
    return requested


def _table_plan(names: list[str], columns, source: Path) -> tuple[str | None, list[str]]:
    """Return (id column or None, feature columns) for a table with these column names."""
    repeated = _repeated(names)
    if repeated:
        raise InvalidInputError(
            f"{source} has duplicated column names: {', '.join(map(repr, repeated))}. "
            "Rename the columns so that each name is unique (if the first line is data, add a header row)."
        )
    requested = None if columns is None else _select(columns, names, source)
    id_column = names[0] if names and names[0] in _ID_COLUMNS and names[0] not in (requested or ()) else None
    features = requested or [name for name in names if name != id_column]
    if not features:
        raise InvalidInputError(
            f"{source} has no feature columns, only the id column {id_column!r}. aekit needs at least one column "
            "of numbers."
        )
    return id_column, features


def _make_dataset(X, columns: list[str], ids, id_column: str | None, source: Path, start: int,
                  image_shape=None) -> Dataset:
    X = np.ascontiguousarray(X, dtype=np.float32)
    _check_finite(X, columns, source, start)
    ids = np.arange(start, start + len(X)) if ids is None else np.asarray(ids)
    if ids.dtype == object:
        ids = ids.astype(str)
    columns = columns if isinstance(columns, PixelNames) else list(columns)
    return Dataset(X, columns, ids, "file" if id_column == "file" else "row", image_shape)


def _check_finite(X: np.ndarray, columns: list[str], source: Path, start: int) -> None:
    # Fast path without an X-sized mask: a float64 column sum of float32 values cannot overflow, so it
    # is finite exactly when every value is.
    with np.errstate(invalid="ignore"):  # inf + -inf
        if np.isfinite(np.add.reduce(X, axis=0, dtype=np.float64)).all():
            return
    bad = ~np.isfinite(X)
    bad_columns = np.flatnonzero(bad.any(axis=0))
    rows = np.flatnonzero(bad[:, bad_columns[0]])
    others = [columns[j] for j in bad_columns[1:]]
    raise InvalidInputError(
        f"Column {columns[bad_columns[0]]!r} in {source} has {len(rows)} missing or infinite value(s) "
        f"(NaN, empty cell, null or inf), first at row {start + rows[0]}"
        + (f"; so do {_preview(others)}" if others else "")
        + ". Drop or fill those rows first (pandas: df.dropna())."
    )


def _names(columns) -> list[str]:
    """Column names as a list of str; a lone string is one name."""
    return [columns] if isinstance(columns, str) else [str(name) for name in columns]


def _repeated(names: list[str]) -> list[str]:
    return [name for name, count in Counter(names).items() if count > 1]


def _preview(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(map(str, names[:limit]))
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _as_matrix(array, path) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise InvalidInputError(f"Cannot write {path}: values have dtype {array.dtype}; give numbers.")
    if array.ndim != 2:
        raise InvalidInputError(
            f"Cannot write {path}: need a 2-D array (n_rows, n_columns), got shape {array.shape}. "
            "Reshape it, e.g. values.reshape(-1, 1) for one column."
        )
    return array


def _output_columns(columns, id_name: str, path: Path) -> list[str]:
    if id_name not in ID_NAMES:
        raise InvalidParameterValue(
            f"The 'id_name' parameter of write_data must be one of {ID_NAMES}. Got {id_name!r} instead."
        )
    names = _names(columns)
    repeated = _repeated([id_name, *names])
    if repeated:
        raise InvalidInputError(
            f"Cannot write {path}: column names {repeated} appear twice (the id column is {id_name!r}). "
            "Give unique names."
        )
    return names


# ---------------------------------------------------------------- CSV and Parquet


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
            f"The first line of {path} ({_preview(header, 5)}) looks like data, not a header. "
            "Add a header row naming the columns."
        )
    return [name or f"Unnamed: {j}" for j, name in enumerate(header)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_chunks(path: Path, columns, chunk_rows: int | None, sep: str = ",") -> Iterator[Dataset]:
    with _open_text_table(path) as file:
        names = _csv_header(file, path, sep)
        file.seek(0)
        yield from _csv_datasets(file, path, names, columns, chunk_rows, sep)


def _csv_datasets(file: BinaryIO, path: Path, names: list[str], columns, chunk_rows: int | None, sep: str
                  ) -> Iterator[Dataset]:
    id_column, features = _table_plan(names, columns, path)
    # index_col=False: never take the first column as an index. Never usecols: with it pandas silently
    # drops the extra cells of a row longer than the header; every column is parsed, then selected.
    options = {"index_col": False, "encoding": "utf-8-sig", "sep": sep}
    start = 0
    try:
        for frame in _csv_frames(file, path, names, options, chunk_rows):
            if len(frame) == 0:  # a header-only file; reported as "no data rows"
                continue
            if len(frame.columns) != len(names):  # pandas skipped a header line of blanks only
                raise InvalidInputError(
                    f"{path}: the header {_preview(names, 5)!r} does not match the rows below it "
                    f"({len(frame.columns)} fields). Check the first line of the file."
                )
            frame.columns = names
            for name in features:
                _check_numeric_series(frame[name], name, path)
            ids = frame[id_column].to_numpy() if id_column else None
            with np.errstate(over="ignore"):  # beyond float32 range: inf, which _check_finite reports
                X = frame[features].to_numpy(dtype=np.float32, na_value=np.nan)
            yield _make_dataset(X, features, ids, id_column, path, start)
            start += len(frame)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, gzip.BadGzipFile, EOFError) as error:
        raise InvalidInputError(f"{path} is not a well-formed UTF-8 CSV file: {error}") from error


def _csv_frames(file: BinaryIO, path: Path, names: list[str], options: dict, chunk_rows: int | None
                ) -> Iterator[pd.DataFrame]:
    if chunk_rows is None:
        yield _parsed(lambda: pd.read_csv(file, **options), path, names)
        return
    with _parsed(lambda: pd.read_csv(file, chunksize=chunk_rows, **options), path, names) as reader:
        while (frame := _parsed(lambda: next(reader, None), path, names)) is not None:
            yield frame


def _parsed(parse, path: Path, names: list[str]):
    """Call pandas' `parse`, refusing rows longer than the header (pandas would drop their extra cells)."""
    with warnings.catch_warnings():  # only around pandas' own work, never across a yield
        warnings.filterwarnings("error", category=pd.errors.ParserWarning)
        try:
            return parse()
        except pd.errors.ParserWarning as warning:
            raise InvalidInputError(
                f"{path} has rows with more cells than its header has names ({len(names)}: {_preview(names, 5)}); "
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
        f"at row {row}). {_SELECT_HINT}"
    )


@contextmanager
def _open_parquet(path: Path) -> Iterator[pq.ParquetFile]:
    with _open_regular(path) as file:
        try:
            # pre_buffer (the default) holds whole row groups' column chunks in Arrow's pool on top of the
            # batches (hundreds of MB); it pays off on object stores, not on local files read in chunks.
            parquet = pq.ParquetFile(file, pre_buffer=False)
        except (pa.ArrowException, OSError, ValueError) as error:  # ValueError: damaged, non-UTF-8 metadata
            raise InvalidInputError(f"{path} cannot be read as a Parquet file ({error}).") from error
        with parquet:
            yield parquet


def _parquet_chunks(path: Path, columns, chunk_rows: int | None) -> Iterator[Dataset]:
    with _open_parquet(path) as parquet:
        try:
            schema = parquet.schema_arrow
            # A pandas index saved with the table (__index_level_0__, ...) labels rows; it is no feature.
            pandas_metadata = schema.pandas_metadata or {}
        except (pa.ArrowException, OSError, ValueError) as error:  # ValueError: damaged (non-UTF-8) metadata
            raise InvalidInputError(f"{path} is a damaged Parquet file ({error}). Write it again.") from error
        index_columns = pandas_metadata.get("index_columns", []) if isinstance(pandas_metadata, dict) else []
        index = {name for name in index_columns if isinstance(name, str)}
        id_column, features = _table_plan([name for name in schema.names if name not in index], columns, path)
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
                    f"Column {name!r} in {path} is not numeric (Parquet type {kind}). {_SELECT_HINT}"
                )
        wanted = ([id_column] if id_column else []) + features
        start = 0
        try:
            batches = [parquet.read(columns=wanted)] if chunk_rows is None else (
                parquet.iter_batches(batch_size=chunk_rows, columns=wanted))
            for batch in batches:
                yield _arrow_dataset(batch, id_column, features, path, start)
                start += batch.num_rows
        except (pa.ArrowException, OSError) as error:  # a damaged data page, found only when read
            raise InvalidInputError(f"{path} is a damaged Parquet file ({error}). Write it again.") from error


def _arrow_dataset(batch: pa.Table | pa.RecordBatch, id_column, features, source: Path, start: int) -> Dataset:
    X = np.empty((batch.num_rows, len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        values = batch.column(name)
        if values.null_count:
            raise InvalidInputError(
                f"Column {name!r} in {source} has {values.null_count} null value(s). "
                "Drop or fill those rows first (pandas: df.dropna())."
            )
        with np.errstate(over="ignore"):  # beyond float32 range: inf, which _check_finite reports
            X[:, j] = values.to_numpy(zero_copy_only=False)
    ids = batch.column(id_column).to_numpy(zero_copy_only=False) if id_column else None
    return _make_dataset(X, features, ids, id_column, source, start)


# ---------------------------------------------------------------- NumPy arrays


def _load_array(path: Path, key: str | None) -> np.ndarray:
    """The .npy array (memory-mapped) or the chosen .npz array; never unpickles."""
    with _open_regular(path) as file:
        try:
            if path.suffix.lower() == ".npy":
                return _map_npy(file)
            archive = np.load(file, allow_pickle=False)
        # SyntaxError and TokenError: a damaged .npy header (numpy parses it as a Python literal)
        except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile,
                NotImplementedError) as error:  # NotImplementedError: zipfile meets an unknown zip version
            raise InvalidInputError(
                f"{path} cannot be read as a NumPy {path.suffix} file of numbers ({error}). "
                "aekit never unpickles; save a numeric array with np.save / np.savez."
            ) from error
        return _npz_member(archive, path, key)


def _map_npy(file: BinaryIO) -> np.ndarray:
    """Memory-map the .npy array in the open `file` (np.load's mmap_mode takes only a path)."""
    version = np.lib.format.read_magic(file)
    # Format 3.0 differs from 2.0 only in allowing UTF-8 in the header (structured dtypes' field names).
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(file)
    if dtype.hasobject:
        raise ValueError("the array holds Python objects, which only unpickling could read")
    if 0 in shape:  # mmap cannot map zero bytes
        return np.empty(shape, dtype=dtype)
    return np.memmap(file, dtype=dtype, mode="r", offset=file.tell(), shape=shape,
                     order="F" if fortran_order else "C")


def _npz_member(archive, path: Path, key: str | None) -> np.ndarray:
    with archive:
        keys = archive.files
        if key is None and len(keys) != 1:
            raise InvalidInputError(
                f"{path} holds {len(keys)} arrays ({', '.join(keys) or 'none'}). Choose one with --key NAME "
                "(Python: key='NAME')."
            )
        if key is not None and key not in keys:
            raise InvalidInputError(
                f"{path} has no array {key!r}.{did_you_mean(key, keys)} Its arrays are: {', '.join(keys)}."
            )
        try:
            return archive[keys[0] if key is None else key]
        except ValueError as error:
            raise InvalidInputError(
                f"Array {key!r} in {path} cannot be loaded without unpickling ({error})."
            ) from error
        except (OSError, EOFError, SyntaxError, tokenize.TokenError, MemoryError, zipfile.BadZipFile,
                zlib.error, NotImplementedError, RuntimeError) as error:
            # a damaged member, one whose header claims a huge shape, or one flagged "encrypted" (RuntimeError)
            raise InvalidInputError(f"{path} is damaged ({error}). Save the arrays again with np.savez.") from error


def _image_shape_of_array(array: np.ndarray, source: Path) -> tuple[int, int, int] | None:
    """Check an array's dtype and shape; return the image shape for 3-D and 4-D image stacks."""
    if array.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"{source} holds an array of dtype {array.dtype}; aekit needs numbers (bool, integer or float). "
            "Convert it, e.g. np.save(path, values.astype(np.float32))."
        )
    if array.ndim == 1:
        raise InvalidInputError(
            f"{source} holds a 1-D array of shape {array.shape}; aekit needs 2-D (n_samples, n_features). "
            "Save values.reshape(-1, 1) if each value is a sample (or reshape(1, -1) for one sample)."
        )
    if array.ndim not in (2, 3, 4) or 0 in array.shape[1:]:
        raise InvalidInputError(
            f"{source} holds an array of shape {array.shape}; aekit reads (n_samples, n_features), "
            "(n_images, H, W) or (n_images, C, H, W) arrays with at least one feature."
        )
    if array.ndim == 4 and array.shape[1] not in (1, 3) and array.shape[3] in (1, 3):
        raise InvalidInputError(
            f"{source} holds images of shape {array.shape}, which look channels-last (N, H, W, C); aekit "
            "reads (N, C, H, W). Save values.transpose(0, 3, 1, 2)."
        )
    return None if array.ndim == 2 else ((1, *array.shape[1:]) if array.ndim == 3 else array.shape[1:])


def _array_chunks(path: Path, key: str | None, columns, chunk_rows: int | None) -> Iterator[Dataset]:
    array = _load_array(path, key)
    source = path if key is None else f"{path}[{key!r}]"
    image_shape = _image_shape_of_array(array, source)
    n_features = int(np.prod(array.shape[1:]))
    names = [f"{'col' if image_shape is None else 'px'}{j}" for j in range(n_features)]
    indices = None
    if columns is not None:
        if image_shape is not None:
            raise InvalidInputError(f"columns cannot select pixels of the images in {source}. Drop --columns.")
        position = {name: j for j, name in enumerate(names)}
        names = _select(columns, names, source)
        indices = [position[name] for name in names]
    step = chunk_rows or max(len(array), 1)
    for start in range(0, len(array), step):
        with np.errstate(over="ignore"):  # beyond float32 range: inf, which _check_finite reports
            X = np.array(array[start:start + step], dtype=np.float32, order="C").reshape(-1, n_features)
        yield _make_dataset(X if indices is None else X[:, indices], names, None, None, source, start,
                            image_shape)


# ---------------------------------------------------------------- image folders


def _image_files(folder: Path) -> list[Path]:
    """Image files under `folder`, sorted by relative path; hidden files and folders are skipped.

    Walked with an explicit stack (a folder thousands of levels deep would exhaust Python's recursion
    limit); linked folders are followed once each, so a link loop ends.
    """
    files, pending, seen = [], [folder], set()
    while pending:
        current = pending.pop()
        try:
            identity = (current.stat().st_dev, current.stat().st_ino)
            if identity in seen:
                continue
            seen.add(identity)
            with os.scandir(current) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir():
                        pending.append(Path(entry.path))
                    elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
                        files.append(Path(entry.path))
        except OSError as error:
            raise InvalidInputError(
                f"Cannot list the image folder {current}: {error.strerror}. Check the folder and its permissions."
            ) from None
    return sorted(files, key=lambda file: file.relative_to(folder).as_posix())


def _file_id(file: Path, folder: Path) -> str:
    """The file's path relative to the folder, as text that any output can hold.

    A name that is not valid UTF-8 (bytes kept as lone surrogates by Python) is shown with ``\\xNN``
    escapes for those bytes, as ``ls -b`` would, rather than failing the CSV or Parquet writer.
    """
    name = file.relative_to(folder).as_posix()
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _bad_image(file: Path, error: Exception) -> InvalidInputError:
    return InvalidInputError(f"Cannot read image {file}: {str(error).rstrip('.')}. Replace or remove the file.")


@contextmanager
def _open_image(file: Path) -> Iterator[Image.Image]:
    """Open an image through the allowed decoders only, its size checked against the pixel budget."""
    with _open_regular(file) as stream:
        try:
            with warnings.catch_warnings():  # Pillow's bomb warning: the stricter budget below decides
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(stream, formats=IMAGE_FORMATS)
        except Image.UnidentifiedImageError:
            raise InvalidInputError(
                f"Cannot read image {file}: its content is not a {', '.join(IMAGE_FORMATS)} image (whatever its "
                "name says), and aekit decodes no other format. Convert it to PNG, or remove it."
            ) from None
        except _IMAGE_ERRORS as error:
            raise _bad_image(file, error) from error
        with image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InvalidInputError(
                    f"Image {file} declares {height}x{width} pixels (HxW), {width * height:,} in all: over aekit's "
                    f"limit of {MAX_IMAGE_PIXELS:,} (4096x4096) per image. Shrink it first, or remove it."
                )
            yield image


def _scan_images(folder: Path, image_size) -> tuple[list[Path], tuple[int, int, int]]:
    """Read the headers only: check sizes agree, decide gray (1 channel) or RGB (3); return the shape."""
    files = _image_files(folder)
    if not files:
        raise InvalidInputError(
            f"Found no images in {folder} (looked for {', '.join(IMAGE_SUFFIXES)}, subfolders included). "
            f"Point to a folder of images, or to a file: {', '.join(READ_SUFFIXES)}."
        )
    color, first_size = False, None
    for file in files:
        try:
            with _open_image(file) as image:
                size, mode = image.size, image.mode
        except InvalidInputError:
            raise
        except _IMAGE_ERRORS as error:
            raise _bad_image(file, error) from error
        color = color or mode not in _GRAY_MODES
        first_size = first_size or size
        if image_size is None and size != first_size:
            first = f"{first_size[1]}x{first_size[0]}"
            raise InvalidInputError(
                f"Images in {folder} differ in size: {files[0].relative_to(folder)} is {first} and "
                f"{file.relative_to(folder)} is {size[1]}x{size[0]} (HxW). Resize them all with --image-size "
                f"HxW (Python: image_size=(H, W)), e.g. --image-size {first}."
            )
    height, width = image_size or (first_size[1], first_size[0])
    return files, (3 if color else 1, height, width)


def _decode_image(file: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """One image as float32 (C, H, W) in [0, 1], converted and resized to `shape`."""
    channels, height, width = shape
    try:
        with _open_image(file) as image:
            image.load()
            if image.mode in _SIXTEEN_BIT_MODES:
                planes = np.asarray(image, dtype=np.float32)[None] / 65535
            else:  # convert() drops alpha (LA -> L, RGBA -> RGB) and expands palettes
                image = image.convert("L" if channels == 1 else "RGB")
                planes = np.asarray(image, dtype=np.float32).reshape(image.height, image.width, -1)
                planes = planes.transpose(2, 0, 1) / 255
    except InvalidInputError:
        raise
    except _IMAGE_ERRORS as error:
        raise _bad_image(file, error) from error
    if len(planes) != channels:  # a 16-bit gray image among RGB ones
        planes = np.repeat(planes, channels, axis=0)
    if planes.shape[1:] != (height, width):
        planes = np.stack([np.asarray(Image.fromarray(plane).resize((width, height), Image.Resampling.BILINEAR))
                           for plane in planes])
    return planes


def _image_chunks(folder: Path, image_size, chunk_rows: int | None) -> Iterator[Dataset]:
    files, shape = _scan_images(folder, image_size)
    columns = PixelNames(int(np.prod(shape)))
    ids = np.array([_file_id(file, folder) for file in files])
    step = chunk_rows or len(files)
    if chunk_rows is not None:  # bounded memory means bytes: 65,536 large images would be hundreds of GB
        step = max(1, min(step, _IMAGE_CHUNK_BYTES // (4 * len(columns))))
    for start in range(0, len(files), step):
        batch = files[start:start + step]
        try:
            X = np.empty((len(batch), len(columns)), dtype=np.float32)
        except MemoryError:
            raise InvalidInputError(
                f"The {len(batch)} images in {folder} take {4 * len(batch) * len(columns) / 1e9:.1f} GB as float32 "
                f"({'x'.join(map(str, shape))} values each), more than this machine can hold. Use fewer or smaller "
                "images (--image-size HxW)."
            ) from None
        for row, file in enumerate(batch):
            X[row] = _decode_image(file, shape).ravel()
        yield Dataset(X, columns, ids[start:start + len(batch)], "file", shape)
