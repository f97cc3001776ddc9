"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

The data goes to a hidden temporary file in the target's folder (same file system, so the final
rename is atomic), is flushed and fsync'ed, then `os.replace`d onto the target; the folder is
fsync'ed last so the rename itself survives a crash. On any error the temporary file is removed
and the target is left as it was.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from aekit.exceptions import InvalidInputError, InvalidParameterValue

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "fsync_folder"]


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file that replaces `path` when the ``with`` block ends without error.

    Parameters
    ----------
    path : str or path-like
        The file to create or replace.
    mode : {"wb", "w"}
        Binary or text (UTF-8 by default, no newline translation).
    encoding : str
        Text encoding, used only when ``mode="w"``.

    Yields
    ------
    file
        The open temporary file. Do not close it; the context manager does.

    Raises
    ------
    InvalidInputError
        The file cannot be written (missing or read-only folder, full disk, ...); nothing is left behind.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_write(target, "w") as file:
    ...     _ = file.write("hello")
    >>> target.read_text()
    'hello'
    """
    if mode not in ("wb", "w"):
        raise InvalidParameterValue(f"The 'mode' parameter of atomic_write must be 'wb' or 'w'. Got {mode!r} instead.")
    path = Path(path)
    fd, temporary = _create_temporary(path)
    try:
        text_options = {"encoding": encoding, "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **text_options) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        # Only OS errors about the file being written are write failures; an OSError raised by the
        # caller's own work inside the block (say, reading an input file) passes through as it is.
        if isinstance(error, OSError) and error.filename in (None, str(temporary), str(path)):
            raise _write_error(path, error) from error
        raise
    fsync_folder(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "blob.bin"
    >>> atomic_write_bytes(target, b"\\x00\\x01")
    >>> target.read_bytes()
    b'\\x00\\x01'
    """
    with atomic_write(path, "wb") as file:
        file.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically (UTF-8 by default, newlines written as given).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "config.json"
    >>> atomic_write_text(target, '{"latent_dim": 2}')
    >>> target.read_text()
    '{"latent_dim": 2}'
    """
    with atomic_write(path, "w", encoding=encoding) as file:
        file.write(text)


def _create_temporary(path: Path) -> tuple[int, Path]:
    """Create an empty hidden ``.<name>.<random>.tmp`` beside `path`; return its descriptor and path."""
    # os.open with mode 0o666 lets the umask decide the permissions, as for any new file
    # (tempfile.mkstemp would leave the final file readable by its owner only).
    for _ in range(100):
        temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temporary
        except FileExistsError:
            continue
        except OSError as error:
            raise _write_error(path, error) from error
    raise InvalidInputError(f"Cannot write {path}: no free temporary file name in {path.parent}.")


def _write_error(path: Path, error: OSError) -> InvalidInputError:
    reason = error.strerror or str(error)
    return InvalidInputError(
        f"Cannot write {path}: {reason}. Check that the folder {path.parent} exists, "
        "is writable and has free space, or choose another output path."
    )


def fsync_folder(folder: str | os.PathLike) -> None:
    """Fsync a folder so that a rename or new file in it survives a crash.

    Best effort: some systems (Windows, some network file systems) cannot open or fsync a folder,
    and by then the file is in place anyway.

    Examples
    --------
    >>> import tempfile
    >>> fsync_folder(tempfile.mkdtemp())
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
