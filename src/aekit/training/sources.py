"""Training data: rows in memory or rows read from a file, behind one interface, with one validation rule.

A fit reads its data through a *data set* object with this interface (:class:`ArrayData` for an
array, :class:`aekit.training.streaming.FileData` for a file read chunk by chunk):

- ``blocks()``: every row once, in order, unscaled, in blocks (the pass that fits the scaler,
  :func:`aekit.preprocess.fit_scaler`);
- ``sources(split, scaler, device, targets=None)``: this process's training and validation rows,
  scaled, as trainer data sources (see :class:`aekit.training.loop.TensorSource`);
- ``arrays(split, part)``: the rows of a part ("train", "validation" or "all"), unscaled, in blocks
  (the passes that set the outlier threshold);
- ``in_memory``, ``name`` (how messages call it) and ``feature_names`` (once ``blocks`` has run);
- ``sharded``: whether ``blocks()`` and ``arrays()`` give only this process's rows (a file under
  ``torchrun``), so that what is computed from them is combined over the processes.

Which rows are held out for validation is :class:`ValidationSplit`'s alone: it depends on the
number of rows, the fraction and the seed, never on how the rows arrive (nor on the number of
processes: a row's role follows its index in the whole data), so an array and a file with the same
rows in the same order hold out the same rows. Under ``torchrun`` an array, in every process's
memory, is shared out row by row: each process trains on every ``world_size``-th training row
(:func:`aekit.training.distributed.shard`); a file is shared out in contiguous ranges, each process
reading only its own (:class:`aekit.training.streaming.FileData`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from aekit import preprocess
from aekit.preprocess import batch_scaling, scales_batches, tensor_view
from aekit.training import distributed
from aekit.training.devices import data_fits_on
from aekit.training.loop import TensorSource

__all__ = ["ArrayData", "ValidationSplit", "part_rows", "validation_count"]

VALIDATION_BLOCK_ROWS = 65536  # the split is drawn block by block: bounded memory for any number of rows
_HYPERGEOMETRIC_LIMIT = 10**9  # numpy's hypergeometric takes fewer good and bad items than this


def validation_count(n_rows: int, fraction: float) -> int:
    """How many of ``n_rows`` rows are held out: ``round(n_rows * fraction)``, at least one and at
    most ``n_rows - 1`` when ``fraction > 0``.

    Examples
    --------
    >>> validation_count(1000, 0.1), validation_count(5, 0.01), validation_count(2, 0.9), validation_count(9, 0)
    (100, 1, 1, 0)
    """
    n_validation = int(round(n_rows * fraction))
    if fraction > 0:
        n_validation = min(max(n_validation, 1), n_rows - 1)
    return max(n_validation, 0)


class ValidationSplit:
    """Which of ``n_rows`` rows are held out: exactly :func:`validation_count` of them, uniformly at random.

    The rows are drawn block by block (``VALIDATION_BLOCK_ROWS`` rows): how many of each block are
    held out (a hypergeometric draw, so that the total is exact), then which ones, each block seeded
    by ``(seed, block)``. A block is drawn when asked for, so a file is split chunk by chunk in
    bounded memory, and the rows held out depend only on ``n_rows``, ``fraction`` and ``seed``.

    Examples
    --------
    >>> split = ValidationSplit(10, 0.2, seed=0)
    >>> train_rows, validation_rows = split.rows()
    >>> len(train_rows), len(validation_rows)
    (8, 2)
    >>> bool((split.mask(0, 10) == np.isin(np.arange(10), validation_rows)).all())
    True
    """

    def __init__(self, n_rows: int, fraction: float, seed: int) -> None:
        self.n_rows, self.seed = int(n_rows), int(seed)
        self.n_validation = validation_count(self.n_rows, fraction)
        self.n_train = self.n_rows - self.n_validation
        rng = np.random.default_rng([self.seed, 0])
        counts, held_left, rows_left = [], self.n_validation, self.n_rows
        for start in range(0, self.n_rows, VALIDATION_BLOCK_ROWS):
            size = min(VALIDATION_BLOCK_ROWS, self.n_rows - start)
            count = _held_out_in_block(rng, held_left, rows_left - held_left, size)
            counts.append(count)
            held_left, rows_left = held_left - count, rows_left - size
        self._counts = counts
        self._cached: dict[int, np.ndarray] = {}

    def _block_mask(self, block: int) -> np.ndarray:
        if block not in self._cached:
            size = min(VALIDATION_BLOCK_ROWS, self.n_rows - block * VALIDATION_BLOCK_ROWS)
            mask = np.zeros(size, dtype=bool)
            if self._counts[block]:
                mask[np.random.default_rng([self.seed, 1, block]).choice(size, self._counts[block], replace=False)] = 1
            if len(self._cached) >= 2:  # a chunk spans at most a few blocks: keep the last ones
                self._cached.pop(next(iter(self._cached)))
            self._cached[block] = mask
        return self._cached[block]

    def mask(self, start: int, stop: int) -> np.ndarray:
        """Whether each of the rows ``start`` to ``stop - 1`` is held out (a boolean array)."""
        if stop <= start:
            return np.zeros(0, dtype=bool)
        first, last = start // VALIDATION_BLOCK_ROWS, (stop - 1) // VALIDATION_BLOCK_ROWS
        masks = np.concatenate([self._block_mask(block) for block in range(first, last + 1)])
        offset = first * VALIDATION_BLOCK_ROWS
        return masks[start - offset : stop - offset]

    def count(self, start: int, stop: int) -> int:
        """How many of the rows ``start`` to ``stop - 1`` are held out (whole blocks by their drawn counts).

        Examples
        --------
        >>> split = ValidationSplit(10, 0.2, seed=0)
        >>> split.count(0, 10), split.count(3, 7) == int(split.mask(3, 7).sum())
        (2, True)
        """
        held_out = 0
        for block in range(start // VALIDATION_BLOCK_ROWS, -(-stop // VALIDATION_BLOCK_ROWS)):
            first, last = block * VALIDATION_BLOCK_ROWS, min((block + 1) * VALIDATION_BLOCK_ROWS, self.n_rows)
            if start <= first and last <= stop:
                held_out += self._counts[block]
            else:
                held_out += int(self.mask(max(start, first), min(stop, last)).sum())
        return held_out

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The training rows and the validation rows, each in increasing order."""
        held_out = self.mask(0, self.n_rows)
        return np.flatnonzero(~held_out), np.flatnonzero(held_out)


def _held_out_in_block(rng: np.random.Generator, held_left: int, kept_left: int, size: int) -> int:
    """How many of the next ``size`` rows are held out, ``held_left`` of the ``held_left + kept_left`` left being."""
    if held_left == 0 or kept_left == 0:
        return min(size, held_left)
    if held_left < _HYPERGEOMETRIC_LIMIT and kept_left < _HYPERGEOMETRIC_LIMIT:
        return int(rng.hypergeometric(held_left, kept_left, size))
    # beyond numpy's limit (over a billion rows): the binomial it tends to, kept within what is possible
    count = int(rng.binomial(size, held_left / (held_left + kept_left)))
    return min(max(count, size - kept_left), held_left, size)


def part_rows(split: ValidationSplit, part: str, rows: tuple[int, int] | None = None) -> int:
    """How many rows of ``part`` ("train", "validation", "all") lie in ``rows`` (``(start, stop)``; None: all rows).

    Examples
    --------
    >>> split = ValidationSplit(10, 0.2, seed=0)
    >>> part_rows(split, "train"), part_rows(split, "all", (2, 5))
    (8, 3)
    """
    start, stop = (0, split.n_rows) if rows is None else rows
    if part == "all":
        return stop - start
    held_out = split.n_validation if rows is None else split.count(start, stop)
    return held_out if part == "validation" else stop - start - held_out


class ArrayData:
    """Rows in memory (a validated float32 or float64 array), as a fit's data set (see the module's interface).

    float32 C-contiguous rows under a scaler that :func:`aekit.preprocess.scales_batches` are not
    copied: the trainer reads them where they are and each batch is scaled on its way into the
    model, with the operations that scale a whole array (the same values), which saves a copy the
    size of the data and the time to write it. Other rows (float64, other scalers, ``targets``) are
    scaled once into one float32 array (:meth:`scaled`).
    """

    in_memory = True
    sharded = False  # every process holds all the rows
    name = "X"

    def __init__(self, X: np.ndarray, *, feature_names: np.ndarray | None = None) -> None:
        self.X, self.feature_names = X, feature_names
        self._scaled: tuple[object, np.ndarray] | None = None

    def blocks(self) -> Iterator[np.ndarray]:
        yield self.X

    def scaled(self, scaler) -> np.ndarray:
        """All rows scaled by ``scaler``, float32 (one copy, made once)."""
        if self._scaled is None or self._scaled[0] is not scaler:
            self._scaled = (scaler, preprocess.scale(scaler, self.X))
        return self._scaled[1]

    def sources(self, split: ValidationSplit, scaler, device: torch.device, *,
                targets: np.ndarray | None = None) -> tuple[TensorSource, TensorSource | None]:
        """This process's training rows and validation rows (None without any) as :class:`TensorSource` objects.

        ``targets``: columns appended to each row (the geometry's target codes), so that batches keep
        a row and its target together. The rows go on ``device`` once when they fit there
        (:func:`data_fits_on`); otherwise they stay on the host and each batch goes over on its own.
        """
        per_batch = targets is None and self.X.dtype == np.float32 and self.X.flags.c_contiguous
        per_batch = per_batch and scales_batches(scaler)
        if per_batch:
            X, transform = tensor_view(self.X), batch_scaling(scaler, device)  # X itself: only read
        elif targets is None:
            X, transform = tensor_view(self.scaled(scaler)), None
        else:
            X, transform = torch.from_numpy(np.concatenate([self.scaled(scaler), targets], axis=1)), None
        X = X.to(device if data_fits_on(device, X.nbytes) else X.device)
        train_rows, val_rows = split.rows()
        train_part, val_part = distributed.shard(train_rows), distributed.shard(val_rows)  # all rows when alone

        def source(part: np.ndarray) -> TensorSource:  # the rows of X, not a copy of them
            return TensorSource(X, torch.from_numpy(part).to(X.device), transform, device)

        if not len(val_rows):
            return source(train_part), None
        if X.device != device:
            return source(train_part), source(val_part)
        validation = X[torch.from_numpy(val_part).to(device)]  # gathered and scaled once, not every epoch
        return source(train_part), TensorSource(validation if transform is None else transform(validation))

    def arrays(self, split: ValidationSplit, part: str) -> Iterator[np.ndarray]:
        """The unscaled rows of ``part`` ("train", "validation" or "all")."""
        if part == "all" or (part == "train" and split.n_validation == 0):
            yield self.X
            return
        train_rows, val_rows = split.rows()
        yield self.X[val_rows if part == "validation" else train_rows]
