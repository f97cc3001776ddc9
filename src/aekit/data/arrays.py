"""NumPy arrays: ``.npy`` (memory-mapped, so a slice of rows reads only those rows) and ``.npz``.

Read chunk by chunk, a ``.npy`` file's pages are unmapped once each chunk is copied, so a process's
resident memory holds its chunks, not every page of the file it has read.

Nothing here unpickles: an array of Python objects is refused.
"""

from __future__ import annotations

import mmap
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from aekit.data.common import Dataset, make_dataset, open_regular, select_columns
from aekit.exceptions import InvalidInputError, did_you_mean


def load_array(path: Path, key: str | None) -> np.ndarray:
    """The .npy array (memory-mapped) or the chosen .npz array; never unpickles.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.npy"
    >>> np.save(path, np.arange(8.0).reshape(4, 2))
    >>> type(load_array(path, None)).__name__, load_array(path, None).shape
    ('memmap', (4, 2))
    """
    with open_regular(path) as file:
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


def _release_pages(array: np.ndarray, start: int, stop: int) -> None:
    """Unmap the pages of a memory-mapped ``.npy`` array's rows ``start`` to ``stop`` once they are copied.

    Pages of a mapped file that a process has read count in its resident memory until it unmaps the
    file: reading a large file chunk by chunk would grow it by the whole range read. Released, they
    stay in the kernel's page cache (a later read finds them there) but leave this process's
    memory, which then stays at the chunks'. Only C-ordered mappings; nothing where ``madvise`` is
    missing.
    """
    mapping = array.base
    if not (isinstance(array, np.memmap) and isinstance(mapping, mmap.mmap) and array.flags.c_contiguous):
        return
    if not hasattr(mapping, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    row_bytes = array.strides[0]
    begin = array.offset - array.offset % mmap.ALLOCATIONGRANULARITY  # where the mapping starts in the file
    first_byte = array.offset - begin + start * row_bytes
    last_byte = array.offset - begin + stop * row_bytes
    first_page = first_byte - first_byte % mmap.PAGESIZE  # madvise takes a page-aligned start
    if last_byte > first_page:
        mapping.madvise(mmap.MADV_DONTNEED, first_page, last_byte - first_page)


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


def array_chunks(path: Path, key: str | None, columns, chunk_rows: int | None, *, first: int = 0,
                 stop: int | None = None) -> Iterator[Dataset]:
    """Chunks of rows ``first`` to ``stop`` (all when None); a ``.npy`` file's other rows are never read.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.npy"
    >>> np.save(path, np.arange(8.0).reshape(4, 2))
    >>> [chunk.X.tolist() for chunk in array_chunks(path, None, ["col1"], None, first=2)]
    [[[5.0], [7.0]]]
    """
    array = load_array(path, key)
    source = path if key is None else f"{path}[{key!r}]"
    image_shape = _image_shape_of_array(array, source)
    n_features = int(np.prod(array.shape[1:]))
    names = [f"{'col' if image_shape is None else 'px'}{j}" for j in range(n_features)]
    indices = None
    if columns is not None:
        if image_shape is not None:
            raise InvalidInputError(f"columns cannot select pixels of the images in {source}. Drop --columns.")
        position = {name: j for j, name in enumerate(names)}
        names = select_columns(columns, names, source)
        indices = [position[name] for name in names]
    stop = len(array) if stop is None else min(stop, len(array))
    step = chunk_rows or max(stop - first, 1)
    for start in range(first, stop, step):
        with np.errstate(over="ignore"):  # beyond float32 range: inf, which make_dataset reports
            X = np.array(array[start:min(start + step, stop)], dtype=np.float32, order="C").reshape(-1, n_features)
        _release_pages(array, start, min(start + step, stop))
        yield make_dataset(X if indices is None else X[:, indices], names, None, None, source, start,
                            image_shape)
