"""Write tables, arrays and images, always atomically; and refuse an output that is the input itself.

An existing output file is replaced only with ``overwrite=True``, and never when it is anything but a
regular file (see :func:`aekit._files.check_output_file`).

``.csv`` and ``.parquet`` get an id column first, then the named columns; ``.npy`` is the plain array.
:func:`open_chunk_writer` writes chunk by chunk in bounded memory, into a temporary file renamed
into place when the block ends.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from aekit._files import atomic_write, atomic_write_bytes, check_output_folder
from aekit.data.common import ID_NAMES, column_names, preview_names, repeated_names
from aekit.exceptions import InvalidInputError, parameter_error

WRITE_SUFFIXES = (".csv", ".parquet", ".npy")


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


def write_data(path, array, *, columns: Sequence[str] | None = None, ids=None, id_name: str = "row",
               overwrite: bool = False) -> None:
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
    overwrite : bool, default=False
        Replace `path` when it is an existing regular file.

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
    with open_chunk_writer(path, columns, id_name, overwrite=overwrite) as writer:
        writer.write(array, ids)


def write_images(folder, rows, image_shape: Sequence[int], names: Sequence, *, overwrite: bool = False) -> list[Path]:
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
    overwrite : bool, default=False
        Replace PNG files that exist (regular files only).

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
    >>> from aekit.data import read_data
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
    check_output_folder(folder)  # never into a model folder, whatever the rows' names
    targets = [folder / _image_name(name, folder) for name in names]  # every name checked before any write
    first_row = {}
    for row_index, target in enumerate(targets):
        earlier = first_row.setdefault(target, row_index)
        if earlier != row_index:
            raise InvalidInputError(
                f"Rows {earlier} and {row_index} would both be written to {str(target)!r} (their ids "
                f"{names[earlier]!r} and {names[row_index]!r} give one PNG name). Give every row a distinct id."
            )
    written = []
    for row, target in zip(rows, targets, strict=True):
        pixels = np.rint(np.clip(row, 0.0, 1.0) * 255).astype(np.uint8).reshape(channels, height, width)
        image = Image.fromarray(pixels[0] if channels == 1 else pixels.transpose(1, 2, 0))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidInputError(f"Cannot create the folder {target.parent}: {error.strerror}.") from None
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        atomic_write_bytes(target, buffer.getvalue(), overwrite=overwrite)
        written.append(target)
    return written


def _image_name(name, folder: Path) -> Path:
    """A row's id as a relative ``.png`` path inside `folder`; an id from the data ("../x", "/etc/x", "")
    that would leave it, or name no file, is refused."""
    text = str(name)
    try:
        relative = Path(text).with_suffix(".png")
    except ValueError:  # "", ".", "a/": no file name to give a suffix
        relative = None
    if relative is None or relative.is_absolute() or ".." in relative.parts or "\x00" in text:
        raise InvalidInputError(
            f"Cannot write image {text!r}: its name leaves the folder {str(folder)!r} or is no file name. Give the "
            "rows ids that are relative file names (as an image folder's are), or write a .csv, .parquet or .npy file."
        )
    return relative


@contextmanager
def open_chunk_writer(path, columns: Sequence[str], id_name: str = "row", *,
                      overwrite: bool = False) -> Iterator[ChunkWriter]:
    """Open a :class:`ChunkWriter` that appends chunks to a temporary file, renamed onto `path` at the end.

    Nothing exists at `path` (nor any temporary file) if the ``with`` block raises; an existing regular
    file at `path` is replaced only with `overwrite`.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "big.parquet"
    >>> with open_chunk_writer(path, ["a", "b"]) as writer:
    ...     for start in range(0, 6, 2):
    ...         writer.write(np.ones((2, 2), dtype=np.float32))
    >>> from aekit.data import read_data
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
    with atomic_write(path, "w" if suffix == ".csv" else "wb", overwrite=overwrite) as file:
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
                raise InvalidInputError(f"Cannot write columns {preview_names(list(array.columns))} to {self.path}, "
                                        f"opened with {preview_names(self.columns)}.")
            array = array if self._accepts_frames else _as_matrix(array.to_numpy(dtype=np.float64), self.path)
        else:
            array = _as_matrix(array, self.path)
        if array.shape[1] != len(self.columns):
            raise InvalidInputError(
                f"Cannot write a chunk with {array.shape[1]} columns to {self.path}, "
                f"opened with {len(self.columns)} columns ({preview_names(self.columns)})."
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
        raise parameter_error("id_name", id_name, f"one of {ID_NAMES}", of="write_data")
    names = column_names(columns)
    repeated = repeated_names([id_name, *names])
    if repeated:
        raise InvalidInputError(
            f"Cannot write {path}: column names {repeated} appear twice (the id column is {id_name!r}). "
            "Give unique names."
        )
    return names
