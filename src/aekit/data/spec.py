"""How to read a data file or image folder: one small value that every command passes along."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from aekit.data.common import CHUNK_ROWS, Dataset
from aekit.data.readers import iter_chunks, read_data


@dataclass(frozen=True)
class DataSpec:
    """How to read a data file or image folder (see :func:`read_data` for each format).

    Parameters
    ----------
    columns : sequence of str, optional
        The columns of a table to read, by name (default: every column but the id column).
    key : str, optional
        The array of a ``.npz`` file (default: its only array).
    image_size : str or (int, int), optional
        ``"HxW"`` or ``(height, width)``: resize every image of a folder to it.
    sep : str, optional
        The separator of a text table (default: a tab for ``.tsv``, a comma for ``.csv``).
    chunk_rows : int or None, default=65536
        Rows per chunk where the data is read in chunks (bounded memory); None: all at once.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.npz"
    >>> np.savez(path, X=np.zeros((3, 2)), y=np.zeros(3))
    >>> DataSpec(key="X").read(path).X.shape
    (3, 2)
    """

    columns: Sequence[str] | None = None
    key: str | None = None
    image_size: tuple[int, int] | str | None = None
    sep: str | None = None
    chunk_rows: int | None = CHUNK_ROWS

    def read(self, path) -> Dataset:
        """All of `path`, as :func:`read_data` reads it."""
        return read_data(path, columns=self.columns, key=self.key, image_size=self.image_size, sep=self.sep)

    def chunks(self, path) -> Iterator[Dataset]:
        """`path` in chunks of ``chunk_rows`` rows, as :func:`iter_chunks` reads it (all at once without)."""
        if self.chunk_rows is None:
            return iter([self.read(path)])
        return iter_chunks(path, chunk_rows=self.chunk_rows, columns=self.columns, key=self.key,
                           image_size=self.image_size, sep=self.sep)
