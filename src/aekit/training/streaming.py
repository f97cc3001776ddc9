"""Training, encoding and scoring over files bigger than memory, chunk by chunk.

Everything here reads with :func:`aekit.data.iter_chunks` (Parquet by record batches, ``.npy``
through a memory map, CSV in chunks) and so holds a bounded number of rows at a time:

- **Fitting** (:func:`fit_stream`, ``Autoencoder.fit_stream``) makes a first pass that fits the
  scaler with ``partial_fit``, counts the rows and records each feature's range (for ``loss="auto"``),
  then trains on a :class:`StreamSource`: each epoch reads the file again and shuffles rows within a
  window of ``buffer_chunks`` consecutive chunks (a bounded shuffle buffer, not a full shuffle: a
  file sorted by some column should be shuffled once beforehand, as for any streaming reader).
- **Validation rows** are picked by a seeded draw per chunk (``validation_fraction`` of them on
  average), the same rows in every epoch and every process.
- **Encoding, reconstruction and scoring** stream too: :mod:`aekit.workflows` (``encode_file``,
  ``reconstruct_file``, ``score_file``) reads a chunk, runs the model and appends to the output.
- **Under torchrun** each rank trains on every ``world_size``-th training row of each chunk (so the
  shards stay balanced however few chunks there are; every rank reads the whole file, which it
  must anyway for the first pass); the first pass and the validation rows are the same everywhere.

Memory is about ``(buffer_chunks + 2) * chunk_rows * n_features * 4`` bytes of data (float32).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.utils import check_random_state

from aekit.data import CHUNK_ROWS, count_rows, iter_chunks
from aekit.exceptions import InvalidInputError, InvalidParameterValue
from aekit.preprocess import make_scaler
from aekit.training import distributed
from aekit.training.loop import staging_tensor

__all__ = ["StreamSource", "fit_stream", "should_stream"]

DEFAULT_CHUNK_ROWS = CHUNK_ROWS
DEFAULT_BUFFER_CHUNKS = 8


@dataclass(frozen=True)
class _Reading:
    """How to read the file: the same for the first pass, training, validation and scoring."""

    path: Path
    chunk_rows: int
    columns: Sequence[str] | None
    key: str | None

    def chunks(self):
        return iter_chunks(self.path, chunk_rows=self.chunk_rows, columns=self.columns, key=self.key)


def _validation_mask(seed: int, chunk_index: int, n_rows: int, fraction: float) -> np.ndarray:
    """Which rows of a chunk are held out: a seeded draw, the same in every epoch and process."""
    if fraction <= 0:
        return np.zeros(n_rows, dtype=bool)
    return np.random.default_rng([seed, chunk_index]).random(n_rows) < fraction


class StreamSource:
    """A trainer data source (see :class:`aekit.training.loop.TensorSource`) that reads a file chunk by chunk.

    Parameters
    ----------
    reading : _Reading
        The file and how to read it.
    scaler : fitted scaler or None
        Applied to every chunk.
    part : {"train", "validation", "all"}
        Which rows to yield, by the seeded validation draw.
    seed, validation_fraction
        The validation draw.
    n_rows : int
        How many rows this source yields per pass (known from the first pass).
    buffer_chunks : int
        Chunks shuffled together when training.
    device : torch.device
    sharded : bool
        Keep only this rank's rows (every ``world_size``-th selected row of each chunk) under torchrun.
    """

    def __init__(self, reading: _Reading, scaler, *, part: str, seed: int, validation_fraction: float, n_rows: int,
                 buffer_chunks: int, device: torch.device, sharded: bool) -> None:
        self.reading, self.scaler, self.part = reading, scaler, part
        self.seed, self.validation_fraction = seed, validation_fraction
        self.n_rows, self.buffer_chunks, self.device, self.sharded = n_rows, buffer_chunks, device, sharded

    def arrays(self) -> Iterator[np.ndarray]:
        """The selected rows of each chunk, scaled, as float32 arrays."""
        rank, world = (distributed.rank(), distributed.world_size()) if self.sharded else (0, 1)
        for index, chunk in enumerate(self.reading.chunks()):
            X = chunk.X
            if self.part != "all":
                held_out = _validation_mask(self.seed, index, len(X), self.validation_fraction)
                X = X[held_out if self.part == "validation" else ~held_out]
            X = X[rank::world]
            if len(X) == 0:
                continue
            if self.scaler is not None:
                X = self.scaler.transform(X)
            yield np.ascontiguousarray(X, dtype=np.float32)

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


def _first_pass(reading: _Reading, scaler_name: str | None, seed: int, validation_fraction: float):
    """Fit the scaler with partial_fit, count train/validation rows (all and this rank's), and find
    each feature's range, reading every chunk once."""
    scaler = make_scaler(scaler_name)
    rank, world = distributed.rank(), distributed.world_size()
    counts = {"train": 0, "validation": 0, "rank_train": 0, "rank_validation": 0}
    low = high = None
    columns: list[str] = []
    for index, chunk in enumerate(reading.chunks()):
        X, columns = chunk.X, chunk.columns
        if scaler is not None:
            scaler.partial_fit(X)
        low = X.min(axis=0) if low is None else np.minimum(low, X.min(axis=0))
        high = X.max(axis=0) if high is None else np.maximum(high, X.max(axis=0))
        held_out = _validation_mask(seed, index, len(X), validation_fraction)
        n_val = int(held_out.sum())
        counts["train"] += len(X) - n_val
        counts["validation"] += n_val
        counts["rank_train"] += len((~held_out).nonzero()[0][rank::world])
        counts["rank_validation"] += len(held_out.nonzero()[0][rank::world])
    return scaler, counts, np.vstack([low, high]), columns


def fit_stream(estimator, path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, buffer_chunks: int = DEFAULT_BUFFER_CHUNKS,
               columns: Sequence[str] | None = None, key: str | None = None):
    """Fit ``estimator`` (an :class:`~aekit.Autoencoder`) on the file at ``path`` without loading it whole.

    The estimator's parameters mean what they mean for ``fit``; the scaler is fitted in a first
    pass (``partial_fit``), ``threshold_`` comes from the errors on the validation rows.

    Parameters
    ----------
    estimator : Autoencoder
    path : str or path-like
        A ``.csv``, ``.parquet`` or ``.npy`` file (anything :func:`aekit.data.iter_chunks` reads).
    chunk_rows : int, default=65536
        Rows read at a time.
    buffer_chunks : int, default=8
        Chunks shuffled together (the shuffle buffer).
    columns : list of str, optional
        Feature columns to read (tables).
    key : str, optional
        The array of a ``.npz`` file (which is loaded whole).

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
    from aekit.estimator import resolve_device

    for name, value in (("chunk_rows", chunk_rows), ("buffer_chunks", buffer_chunks)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InvalidParameterValue(
                f"The '{name}' parameter of fit_stream must be an int in the range [1, inf). Got {value!r} instead."
            )
    estimator._check_params()
    if estimator.geometry is not None:
        raise InvalidParameterValue(
            f"geometry={estimator.geometry!r} embeds all training rows at once with Isomap, which a streaming fit "
            "cannot do. Use fit on data in memory, or geometry=None."
        )
    device = resolve_device(estimator.device)
    distributed.setup(device)  # joins the process group under torchrun; nothing otherwise
    device = distributed.local_device(device)
    reading = _Reading(Path(path), int(chunk_rows), columns, key)
    estimator.seed_ = int(check_random_state(estimator.random_state).randint(np.iinfo(np.int32).max))
    fraction = float(estimator.validation_fraction)
    scaler, counts, bounds, names = _first_pass(reading, estimator.scaler, estimator.seed_, fraction)
    if counts["train"] < 2:
        raise InvalidInputError(
            f"{path} has {counts['train']} training row(s) after holding out validation rows; training needs at "
            "least 2. Use a bigger file or a smaller validation_fraction."
        )
    estimator.scaler_ = scaler
    estimator.n_features_in_ = bounds.shape[1]
    if reading.path.suffix.lower() in (".csv", ".parquet"):  # named columns, as fit() records a DataFrame's
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    estimator.loss_ = estimator._choose_loss(bounds if scaler is None else scaler.transform(bounds))

    def source(part: str, n_rows: int, sharded: bool) -> StreamSource:
        return StreamSource(reading, scaler, part=part, seed=estimator.seed_, validation_fraction=fraction,
                            n_rows=n_rows, buffer_chunks=int(buffer_chunks), device=device, sharded=sharded)

    has_val = counts["validation"] > 0
    errors = estimator._train(
        source("train", counts["rank_train"], True),
        source("validation", counts["rank_validation"], True) if has_val else None,
        estimator.n_features_in_, device,
    )
    held_out = source("validation" if has_val else "train", 0, False)
    if estimator.anomaly_score == "combined":  # its normalisers from the held-out rows: bounded memory
        estimator._fit_score_state(held_out.arrays(), scale=False)
        errors = np.concatenate([estimator._outlier_scores(X, scale=False) for X in held_out.arrays()])
    elif errors is None:  # not kept from training (see Autoencoder._train): another pass over the rows
        errors = np.concatenate([estimator._row_errors(X, scale=False) for X in held_out.arrays()])
    estimator._set_threshold(errors)
    return estimator


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
    first = next(iter_chunks(path, chunk_rows=1, columns=columns, key=key))
    needed = 3 * 4 * count_rows(path, key=key) * first.X.shape[1]
    return needed > memory_fraction * _available_memory()


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**63
