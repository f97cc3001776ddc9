"""What every reader of aekit.data shares: the :class:`Dataset` they return and the checks they all make.

Each format's module (:mod:`.text`, :mod:`.parquet`, :mod:`.arrays`, :mod:`.images`) opens its input
with :func:`open_regular`, picks columns with :func:`select_columns` / :func:`table_plan`, and builds
every chunk with :func:`make_dataset`, so the refusals and messages are one and the same for all.
"""

from __future__ import annotations

import os
import re
import stat
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from aekit.exceptions import InvalidInputError, did_you_mean

# Rows per chunk when data is read (or written, or scored) in bounded memory: the one default that
# iter_chunks, streaming training and the file workflows share.
CHUNK_ROWS = 65536
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
READ_SUFFIXES = (".csv", ".parquet", ".npy", ".npz")
ID_NAMES = ("row", "file")
# "Unnamed: 0" is the name we (like pandas) give an empty first header: the index of df.to_csv().
_ID_COLUMNS = (*ID_NAMES, "Unnamed: 0")
SELECT_HINT = "Select numeric columns with --columns a,b,c (Python: columns=[...])."


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


_FILE_TYPES = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def open_regular(path: Path) -> BinaryIO:
    """Open `path` for binary reading, refusing anything but a regular file.

    The check is made on the open descriptor (not the path, which could be swapped in between), and
    the open does not block: a FIFO named ``x.csv`` would otherwise wait forever for a writer, and
    ``/dev/zero`` would be read without end.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = path.write_text("a\\n1\\n")
    >>> with open_regular(path) as file:
    ...     file.read()
    b'a\\n1\\n'
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


def files_under(folder: Path, suffixes: Sequence[str], what: str) -> list[Path]:
    """Files under `folder` whose extension (any case) is one of `suffixes`, sorted by relative path.

    Hidden files and folders are skipped. Walked with an explicit stack (a folder thousands of levels
    deep would exhaust Python's recursion limit); linked folders are followed once each, so a link
    loop ends. `what` ("image", "audio") names the folder in the error.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.WAV", "a.wav", ".hidden.wav", "notes.txt"):
    ...     _ = (folder / name).write_bytes(b"")
    >>> [file.name for file in files_under(folder, (".wav",), "audio")]
    ['a.wav', 'b.WAV']
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
                    elif Path(entry.name).suffix.lower() in suffixes and entry.is_file():
                        files.append(Path(entry.path))
        except OSError as error:
            raise InvalidInputError(
                f"Cannot list the {what} folder {current}: {error.strerror}. Check the folder and its permissions."
            ) from None
    return sorted(files, key=lambda file: file.relative_to(folder).as_posix())


def file_id(file: Path, folder: Path) -> str:
    """The file's path relative to the folder, as text that any output can hold.

    A name that is not valid UTF-8 (bytes kept as lone surrogates by Python) is shown with ``\\xNN``
    escapes for those bytes, as ``ls -b`` would, rather than failing the CSV or Parquet writer.

    Examples
    --------
    >>> from pathlib import Path
    >>> file_id(Path("/data/sounds/a/b.wav"), Path("/data/sounds"))
    'a/b.wav'
    """
    name = file.relative_to(folder).as_posix()
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def select_columns(columns: Sequence[str] | str, available: Sequence[str], source) -> list[str]:
    """Check the requested column names against those available; return them in the order asked.

    Examples
    --------
    >>> select_columns(["c", "a"], ["a", "b", "c"], "data.csv")
    ['c', 'a']
    """
    requested = column_names(columns)
    if not requested:
        raise InvalidInputError(f"columns=[] selects nothing from {source}. Name at least one column.")
    repeated = repeated_names(requested)
    if repeated:
        raise InvalidInputError(f"Columns {repeated} are selected more than once from {source}. List each once.")
    known = set(available)
    for name in requested:
        if name not in known:
            raise InvalidInputError(
                f"Column {name!r} not found in {source}.{did_you_mean(name, available)} "
                f"Its columns are: {preview_names(available)}."
            )
    return requested


def table_plan(names: list[str], columns: Sequence[str] | None, source) -> tuple[str | None, list[str]]:
    """Return (id column or None, feature columns) for a table with these column names.

    Examples
    --------
    >>> table_plan(["row", "x", "y"], None, "data.csv"), table_plan(["x", "y"], ["y"], "data.csv")
    (('row', ['x', 'y']), (None, ['y']))
    """
    repeated = repeated_names(names)
    if repeated:
        raise InvalidInputError(
            f"{source} has duplicated column names: {', '.join(map(repr, repeated))}. "
            "Rename the columns so that each name is unique (if the first line is data, add a header row)."
        )
    requested = None if columns is None else select_columns(columns, names, source)
    id_column = names[0] if names and names[0] in _ID_COLUMNS and names[0] not in (requested or ()) else None
    features = requested or [name for name in names if name != id_column]
    if not features:
        raise InvalidInputError(
            f"{source} has no feature columns, only the id column {id_column!r}. aekit needs at least one column "
            "of numbers."
        )
    return id_column, features


def make_dataset(X, columns: Sequence[str], ids, id_column: str | None, source, start: int,
                 image_shape: tuple[int, int, int] | None = None) -> Dataset:
    """One chunk as a :class:`Dataset`: float32, C-contiguous, every value finite (else a clear error).

    `ids` None numbers the rows from `start`, the chunk's first row in the whole input.

    Examples
    --------
    >>> make_dataset([[1, 2], [3, 4]], ["a", "b"], None, None, "data.csv", start=10).ids
    array([10, 11])
    """
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
    # the count is of the rows read so far (a chunk, or the one row read to size the data), never the file's
    span = f"in row {start}" if len(X) == 1 else f"among rows {start} to {start + len(X) - 1}"
    raise InvalidInputError(
        f"Column {columns[bad_columns[0]]!r} in {source} has {len(rows)} missing or infinite value(s) (NaN, empty "
        f"cell, null or inf) {span}, first at row {start + rows[0]}"
        + (f"; so do {preview_names(others)}" if others else "")
        + ". Drop or fill those rows first (pandas: df.dropna())."
    )


def column_names(columns: Sequence[str] | str) -> list[str]:
    """Column names as a list of str; a lone string is one name.

    Examples
    --------
    >>> column_names("a"), column_names(["a", 1])
    (['a'], ['a', '1'])
    """
    return [columns] if isinstance(columns, str) else [str(name) for name in columns]


def repeated_names(names: Sequence[str]) -> list[str]:
    """The names that occur more than once.

    Examples
    --------
    >>> repeated_names(["a", "b", "a"])
    ['a']
    """
    return [name for name, count in Counter(names).items() if count > 1]


def preview_names(names: Sequence[str], limit: int = 10) -> str:
    """The first `limit` names for a message, and how many there are in all when that is more.

    Examples
    --------
    >>> preview_names(["a", "b", "c"], limit=2)
    'a, b, ... (3 in all)'
    """
    shown = ", ".join(map(str, names[:limit]))
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
