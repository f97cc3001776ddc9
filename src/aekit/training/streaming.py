"""Training over files bigger than memory, chunk by chunk: the file data set of a fit.

Everything here reads with :func:`aekit.data.iter_chunks` (Parquet by record batches, ``.npy``
through a memory map, CSV in chunks) and so holds a bounded number of rows at a time.
:class:`FileData` is the file's side of the data-set interface of :mod:`aekit.training.sources`
(``Autoencoder.fit_stream`` is ``fit`` over it):

- **The scaler** is fitted in a first pass over the chunks (:func:`aekit.preprocess.fit_scaler`,
  the code that fits it to an array), which also counts the rows and records each feature's range.
- **Training** reads a :class:`StreamSource`: each epoch reads the file again and shuffles rows
  within a window of ``buffer_chunks`` consecutive chunks (a bounded shuffle buffer, not a full
  shuffle: a file sorted by some column should be shuffled once beforehand, as for any streaming reader).
- **Validation rows** are :class:`~aekit.training.sources.ValidationSplit`'s, drawn block by block
  as the chunks go by: the rows an array with the same rows would hold out, in every epoch and process.
- **Encoding, reconstruction and scoring** stream too: :mod:`aekit.workflows` (``encode_file``,
  ``reconstruct_file``, ``score_file``) reads a chunk, runs the model and appends to the output.
- **Under torchrun** each rank reads only its own contiguous range of the file's rows
  (:func:`aekit.data.shard_rows`: ranges that differ by one row at most, rank 0 first) in every
  pass: the scaler's statistics are computed on each range and merged over the ranks
  (:func:`aekit.training.distributed.merged_over_ranks`), each rank trains and validates on the
  rows of its range (validation losses summed over the ranks), and the outlier threshold is read
  off every rank's held-out scores, gathered (one number a row). A ``.npy`` file maps only the
  range, Parquet reads only the row groups holding it; a CSV is parsed from its start up to the
  range's end (text has no index to seek by). Held-out rows are chosen by their index in the whole
  file, as in one process. Ranges whose training rows differ in number are evened out by the
  trainer: every rank takes as many steps as the rank with the fewest batches, and the others
  leave their last rows of that epoch out (a different few each epoch, as the rows are shuffled).

Memory is about ``(buffer_chunks + 2) * chunk_rows * n_features * 4`` bytes of data (float32).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aekit import hardware, preprocess
from aekit.data import CHUNK_ROWS, count_rows, iter_chunks
from aekit.exceptions import InvalidInputError, InvalidParameterValue, parameter_error
from aekit.training import distributed
from aekit.training.loop import staging_tensor
from aekit.training.sources import ValidationSplit, part_rows

__all__ = ["FileData", "StreamSource", "fit_stream", "should_stream"]

DEFAULT_CHUNK_ROWS = CHUNK_ROWS
DEFAULT_BUFFER_CHUNKS = 8
PEEK_ROWS = 1024  # rows read to learn the data's width


@dataclass(frozen=True)
class _Reading:
    """How to read the file: the same for the first pass, training, validation and scoring."""

    path: Path
    chunk_rows: int
    columns: Sequence[str] | None
    key: str | None

    def chunks(self, rows: tuple[int, int] | None = None):
        return iter_chunks(self.path, chunk_rows=self.chunk_rows, columns=self.columns, key=self.key, rows=rows)


class FileData:
    """A ``.csv``, ``.parquet`` or ``.npy`` file read chunk by chunk, as a fit's data set.

    See :mod:`aekit.training.sources` for the interface; ``feature_names`` are the file's columns
    (tables) once :meth:`blocks` has run. Under ``torchrun`` every method reads only this process's
    rows (:meth:`rows`).

    Parameters
    ----------
    path : str or path-like
        Anything :func:`aekit.data.iter_chunks` reads.
    chunk_rows : int, default=65536
        Rows read at a time.
    buffer_chunks : int, default=8
        Chunks shuffled together (the shuffle buffer).
    columns : list of str, optional
        Feature columns to read (tables).
    key : str, optional
        The array of a ``.npz`` file (which is loaded whole).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.npy"
    >>> np.save(path, np.arange(10.0).reshape(5, 2))
    >>> [len(block) for block in FileData(path, chunk_rows=2).blocks()]
    [2, 2, 1]
    """

    in_memory = False

    def __init__(self, path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, buffer_chunks: int = DEFAULT_BUFFER_CHUNKS,
                 columns: Sequence[str] | None = None, key: str | None = None) -> None:
        for name, value in (("chunk_rows", chunk_rows), ("buffer_chunks", buffer_chunks)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise parameter_error(name, value, "an int in the range [1, inf)", of="fit_stream")
        self.reading = _Reading(Path(path), int(chunk_rows), columns, key)
        self.buffer_chunks, self.name, self.feature_names = int(buffer_chunks), str(path), None
        self._n_rows: int | None = None

    @property
    def sharded(self) -> bool:
        """Whether this process reads only its own rows (under torchrun)."""
        return distributed.several_processes()

    def rows(self) -> tuple[int, int] | None:
        """The rows ``(start, stop)`` of the file this process reads: its range under torchrun
        (:func:`aekit.training.distributed.row_range`), None (all) alone."""
        if not self.sharded:
            return None
        if self._n_rows is None:
            self._n_rows = count_rows(self.reading.path, key=self.reading.key)
        return distributed.row_range(self._n_rows, self.name)

    def blocks(self) -> Iterator[np.ndarray]:
        named = self.reading.path.suffix.lower() in (".csv", ".parquet")  # named columns, as a DataFrame's
        for chunk in self.reading.chunks(self.rows()):
            if named:
                self.feature_names = np.asarray(chunk.columns, dtype=object)
            yield chunk.X

    def sources(self, split: ValidationSplit, scaler, device: torch.device, *, targets=None):
        """This process's training and validation rows (None without any) as :class:`StreamSource` objects."""
        if targets is not None:
            raise InvalidParameterValue("Rows read from a file take no target columns: fit the data in memory.")
        rows = self.rows()
        if rows is not None and split.n_rows != self._n_rows:  # the same numbers in every process: all raise
            raise InvalidInputError(
                f"{self.name} has {split.n_rows} rows when read, but {self._n_rows} when counted (a quoted text "
                "cell spanning lines counts once per line), so the processes' shares of it are wrong. Convert "
                "the file to Parquet, or fit it in one process."
            )

        def source(part: str) -> StreamSource:
            return StreamSource(self.reading, scaler, part=part, split=split, buffer_chunks=self.buffer_chunks,
                                device=device, rows=rows)

        return source("train"), source("validation") if split.n_validation else None

    def arrays(self, split: ValidationSplit, part: str) -> Iterator[np.ndarray]:
        """The unscaled rows of ``part`` ("train", "validation" or "all") in this process's rows, chunk by chunk."""
        return StreamSource(self.reading, None, part=part, split=split, buffer_chunks=1,
                            device=torch.device("cpu"), rows=self.rows()).arrays()


class StreamSource:
    """A trainer data source (see :class:`aekit.training.loop.TensorSource`) that reads a file chunk by chunk.

    Parameters
    ----------
    reading : _Reading
        The file and how to read it.
    scaler : fitted scaler or None
        Applied to every chunk (:func:`aekit.preprocess.scale`).
    part : {"train", "validation", "all"}
        Which rows to yield, by ``split``.
    split : ValidationSplit
        Which rows are held out.
    buffer_chunks : int
        Chunks shuffled together when training.
    device : torch.device
    rows : (start, stop) or None
        Read only these rows of the file (a process's shard under torchrun); None: all of them.
    """

    def __init__(self, reading: _Reading, scaler, *, part: str, split: ValidationSplit, buffer_chunks: int,
                 device: torch.device, rows: tuple[int, int] | None = None) -> None:
        self.reading, self.scaler, self.part, self.split = reading, scaler, part, split
        self.n_rows = part_rows(split, part, rows)
        self.buffer_chunks, self.device, self.rows = buffer_chunks, device, rows

    def arrays(self) -> Iterator[np.ndarray]:
        """The selected rows of each chunk, scaled, as float32 arrays."""
        start = 0 if self.rows is None else self.rows[0]  # the chunk's first row in the file
        for chunk in self.reading.chunks(self.rows):
            X = chunk.X
            if self.part != "all":
                held_out = self.split.mask(start, start + len(X))
                X = X[held_out if self.part == "validation" else ~held_out]
            start += len(chunk.X)
            if len(X) == 0:
                continue
            yield preprocess.scale(self.scaler, X)

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """Batches of ``batch_size`` rows (the last may be smaller); shuffled within windows of
        ``buffer_chunks`` chunks with ``generator``, in file order when it is None."""
        window_chunks = self.buffer_chunks if generator is not None else 1
        carry: list[torch.Tensor] = []  # the rows of the last window that did not fill a batch
        pending: list[np.ndarray] = []
        arrays = self.arrays()
        while True:
            array = next(arrays, None)
            if array is not None:
                pending.append(array)
                if len(pending) < window_chunks:
                    continue
            if not pending:
                break
            # one copy of the window; batches are gathered from it, never a shuffled copy of it all
            parts = carry + [torch.from_numpy(a) for a in pending]
            staged = staging_tensor((sum(len(p) for p in parts), parts[0].shape[1]), torch.float32, self.device)
            window = torch.cat(parts, out=staged).to(self.device, non_blocking=True)  # pinned for a GPU
            pending = []
            n_full = len(window) // batch_size * batch_size
            if generator is None:
                if n_full:  # split() of no rows would still yield one empty batch
                    yield from window[:n_full].split(batch_size)
                carry = [window[n_full:].cpu()]  # joins the next window's host rows (no-op on the CPU)
                continue
            order = torch.randperm(len(window), generator=generator).to(self.device)
            for start in range(0, n_full, batch_size):
                yield window.index_select(0, order[start : start + batch_size])
            carry = [window.index_select(0, order[n_full:]).cpu()]
        if carry and len(carry[0]):
            yield carry[0].to(self.device)


def fit_stream(estimator, path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, buffer_chunks: int = DEFAULT_BUFFER_CHUNKS,
               columns: Sequence[str] | None = None, key: str | None = None):
    """``estimator.fit_stream(path, ...)``: fit an :class:`~aekit.Autoencoder` on a file without loading it whole.

    Returns
    -------
    estimator : Autoencoder
        Fitted.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, aekit
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "big.npy"
    >>> np.save(path, np.random.default_rng(0).normal(size=(500, 6)).astype("float32"))
    >>> ae = fit_stream(aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0), path, chunk_rows=100)
    >>> ae.transform(np.load(path)[:3]).shape
    (3, 2)
    """
    return estimator.fit_stream(path, chunk_rows=chunk_rows, buffer_chunks=buffer_chunks, columns=columns, key=key)


def should_stream(path, *, columns: Sequence[str] | None = None, key: str | None = None,
                  memory_fraction: float = 0.5) -> bool:
    """Whether fitting on ``path`` in memory would need more than ``memory_fraction`` of the available memory.

    The in-memory fit holds about three float32 copies of the data (as read, scaled, on the device).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "small.npy"
    >>> np.save(path, np.zeros((10, 3)))
    >>> should_stream(path)
    False
    """
    # the width from the first rows (a few, so that a problem found in them is told with a count that means something)
    first = next(iter_chunks(path, chunk_rows=PEEK_ROWS, columns=columns, key=key))
    needed = 3 * 4 * count_rows(path, key=key) * first.X.shape[1]
    available = hardware.available_memory("cpu")
    return needed > memory_fraction * (2**63 if available is None else available)
