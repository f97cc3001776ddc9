"""Atomic file and folder writes: a reader sees the old one or the complete new one, never half of one.

The data goes to a hidden temporary file in the target's folder (same file system, so the final
rename is atomic), is flushed and fsync'ed, then renamed onto the target; the folder is fsync'ed
last so the rename itself survives a crash. On any error the temporary file is removed and the
target is left as it was. Only a new name, or with ``overwrite=True`` a regular file, is ever
replaced: a folder, a symbolic link, a FIFO, a device or a socket at the target is refused, judged by
``lstat`` before the work and again at the rename (a name taken meanwhile is never replaced:
``renameat2(RENAME_NOREPLACE)``). Nothing is written inside a folder aekit wrote whole (a model or a
checkpoint, recognised by its ``manifest.json`` of file checksums): such a folder holds only its own files.

A folder of files (a model, a checkpoint) is built the same way under a hidden temporary name and
renamed into place by :func:`write_folder`, under a lock on the parent folder, so that two processes
writing the same target take turns and each sees what the other left. Files and folders are created
with the permissions the umask gives any new file.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from aekit.exceptions import InvalidInputError, Setting, Words, parameter_error

__all__ = [
    "REPLACE_HINT", "atomic_write", "atomic_write_bytes", "atomic_write_text", "check_output_file",
    "check_output_folder", "check_outside_whole_folders", "exchange_paths", "file_kind", "fsync_folder",
    "hidden_name", "install_folder", "locked_folder", "output_folder", "whole_folder_around", "write_folder",
    "write_synced",
]

# How a user asks to replace an existing output (a file, a model folder): the CLI words it as its --force.
REPLACE_HINT = Words("Pass ", Setting("overwrite", True), " to replace it, or choose another output path.")
MANIFEST = "manifest.json"  # written last into a model or checkpoint folder: the files' sizes and checksums



@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str = "utf-8",
                 overwrite: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces `path` when the ``with`` block ends without error.

    Parameters
    ----------
    path : str or path-like
        The file to create or replace.
    mode : {"wb", "w"}
        Binary or text (UTF-8 by default, no newline translation).
    encoding : str
        Text encoding, used only when ``mode="w"``.
    overwrite : bool, default=False
        Replace `path` when it is an existing regular file (never anything else).

    Yields
    ------
    file
        The open temporary file. Do not close it; the context manager does.

    Raises
    ------
    InvalidInputError
        The file cannot be written (missing or read-only folder, full disk, ...), or may not be replaced
        (:func:`check_output_file`); nothing is left behind.

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
        raise parameter_error("mode", mode, "'wb' or 'w'", of="atomic_write")
    path = Path(path)
    check_output_file(path, overwrite=overwrite)  # before the work; again at the rename
    fd, temporary = _create_temporary(path)
    try:
        text_options = {"encoding": encoding, "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **text_options) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        _install_file(temporary, path, overwrite)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        # Only OS errors about the file being written are write failures; an OSError raised by the
        # caller's own work inside the block (say, reading an input file) passes through as it is.
        if isinstance(error, OSError) and error.filename in (None, str(temporary), str(path)):
            raise _write_error(path, error) from error
        raise
    fsync_folder(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> None:
    """Write `data` to `path` atomically (an existing regular file replaced only with `overwrite`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "blob.bin"
    >>> atomic_write_bytes(target, b"\\x00\\x01")
    >>> target.read_bytes()
    b'\\x00\\x01'
    """
    with atomic_write(path, "wb", overwrite=overwrite) as file:
        file.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8", overwrite: bool = False) -> None:
    """Write `text` to `path` atomically (UTF-8 by default, newlines written as given; an existing regular
    file replaced only with `overwrite`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "config.json"
    >>> atomic_write_text(target, '{"latent_dim": 2}')
    >>> target.read_text()
    '{"latent_dim": 2}'
    """
    with atomic_write(path, "w", encoding=encoding, overwrite=overwrite) as file:
        file.write(text)


def file_kind(path: str | os.PathLike) -> str | None:
    """What `path` itself is, by ``lstat`` (a link is not followed): ``"a regular file"``, ``"a folder"``,
    ``"a symbolic link"``, ``"a FIFO (named pipe)"``, ``"a character device"``, ...; None when nothing is there.

    Examples
    --------
    >>> import tempfile
    >>> file_kind(tempfile.mkdtemp()), file_kind(tempfile.mkdtemp() + "/nothing")
    ('a folder', None)
    """
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return None
    kinds = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"),
             (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def check_output_file(path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Refuse an output file path that may not be written.

    Refused: anything there but a regular file (a folder, a symbolic link even to a regular file, since
    the rename would replace the link and not the file; a FIFO, a device, a socket: as coreutils'
    ``install`` refuses them); a regular file unless `overwrite` (the error names it in ``param``); a path
    inside a folder aekit wrote whole (:func:`whole_folder_around`).

    Examples
    --------
    >>> import tempfile
    >>> check_output_file(tempfile.mkdtemp() + "/new.csv")  # nothing there: fine
    >>> try:
    ...     check_output_file("/dev/null", overwrite=True)
    ... except InvalidInputError as error:
    ...     print(error)
    Cannot write '/dev/null': it is a character device, not a regular file. Choose another output path.
    """
    if not os.fspath(path) or "\x00" in os.fspath(path):
        raise InvalidInputError(f"Cannot write {str(path)!r}: an output path is a file name, not empty and without "
                                "NUL bytes. Choose another path.")
    kind = file_kind(path)
    if kind not in (None, "a regular file"):
        pointed = f" (to {os.readlink(path)!r})" if kind == "a symbolic link" else ""
        raise InvalidInputError(
            f"Cannot write {str(path)!r}: it is {kind}{pointed}, not a regular file. Choose another output path."
        )
    check_outside_whole_folders(Path(path).parent, path)
    if kind is not None and not overwrite:
        raise InvalidInputError(problem=f"{str(path)!r} already exists.", hint=REPLACE_HINT, param="overwrite",
                                value=False)


def check_output_folder(folder: str | os.PathLike) -> None:
    """Refuse a folder to write files into that is, or is inside, a folder aekit wrote whole, or is no folder.

    Examples
    --------
    >>> import tempfile
    >>> check_output_folder(tempfile.mkdtemp() + "/pictures")  # made when written: fine
    """
    kind = file_kind(folder)
    if kind not in (None, "a folder", "a symbolic link") or (kind == "a symbolic link" and not Path(folder).is_dir()):
        raise InvalidInputError(
            f"Cannot write files into {str(folder)!r}: it is {kind}, not a folder. Choose another output folder."
        )
    check_outside_whole_folders(Path(folder), folder)


@contextmanager
def output_folder(folder: str | os.PathLike) -> Iterator[list[Path]]:
    """Make `folder` (and its missing parents) for the files the ``with`` block writes into it.

    The block appends each file it writes to the list yielded. If the block raises (a full disk, a
    refused name, Ctrl-C), the files it added that were not there before and the folders made here are
    removed: a failed run leaves the place as it found it, not an empty or half-filled folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "pictures"
    >>> try:
    ...     with output_folder(folder) as written:
    ...         atomic_write_bytes(folder / "a.png", b"png")
    ...         written.append(folder / "a.png")
    ...         raise KeyboardInterrupt
    ... except KeyboardInterrupt:
    ...     pass
    >>> folder.exists()
    False
    """
    folder = Path(folder)
    check_output_folder(folder)
    made = [path for path in (folder, *folder.parents) if not os.path.lexists(path)]
    present = set(os.listdir(folder)) if not made else set()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        for path in made:  # a parent made before the failure
            with contextlib.suppress(OSError):
                path.rmdir()
        raise InvalidInputError(
            f"Cannot create the folder {str(folder)!r}: {error.strerror}. Choose another output folder."
        ) from None
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for path in written:
            if path.parent != folder or path.name not in present:
                with contextlib.suppress(OSError):
                    path.unlink()
        inner = {parent for file in written for parent in file.parents if folder in parent.parents}
        for path in [*sorted(inner, key=lambda parent: -len(parent.parts)), *made]:  # deepest first; only if empty
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def whole_folder_around(path: str | os.PathLike) -> Path | None:
    """The folder at or above `path` that aekit wrote whole (a model or a checkpoint), or None.

    Such a folder holds a ``manifest.json`` listing its files with their sizes and checksums; what
    holds it is found by following links, so a link into a model folder is found too.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> model = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (model / "manifest.json").write_text(json.dumps({"files": {"a.json": {"bytes": 2, "sha256": "..."}}}))
    >>> whole_folder_around(model / "sub" / "x.csv") == model, whole_folder_around(model.parent)
    (True, None)
    """
    try:
        start = Path(path).resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte: nothing aekit wrote
        return None
    for folder in (start, *start.parents):
        if _lists_its_files(folder / MANIFEST):
            return folder
    return None


def _lists_its_files(manifest: Path) -> bool:
    """Whether `manifest` is a regular file of aekit's manifest form: {"files": {name: {"sha256": ...}}}."""
    try:
        if not stat.S_ISREG(os.lstat(manifest).st_mode) or os.lstat(manifest).st_size > 2**20:
            return False
        fd = os.open(manifest, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            content = json.loads(handle.read(2**20))
    except (OSError, ValueError, RecursionError):  # unreadable or not JSON: no manifest of aekit's
        return False
    files = content.get("files") if isinstance(content, dict) else None
    return isinstance(files, dict) and bool(files) and all(
        isinstance(entry, dict) and isinstance(entry.get("sha256"), str) for entry in files.values()
    )


def check_outside_whole_folders(folder: str | os.PathLike, path: str | os.PathLike) -> None:
    """Refuse to write `path` (in `folder`) when `folder` is or is inside a folder aekit wrote whole."""
    whole = whole_folder_around(folder)
    if whole is not None:
        raise InvalidInputError(
            f"Cannot write {str(path)!r}: it is inside {str(whole)!r}, an aekit model or checkpoint folder, which "
            "holds only the files aekit wrote there. Choose an output path outside it."
        )


def _install_file(temporary: Path, path: Path, overwrite: bool) -> None:
    """Rename the finished `temporary` onto `path`, judging what is there at that moment (``lstat``).

    A name that is free takes the file with ``RENAME_NOREPLACE``, so that a FIFO or device made there
    meanwhile is refused, not replaced; a regular file there is replaced only with `overwrite`.
    """
    try:
        if _rename_no_replace(temporary, path):
            return
    except FileExistsError:
        pass
    check_output_file(path, overwrite=overwrite)
    os.replace(temporary, path)


def hidden_name(name: str, tag: str) -> str:
    """``.<name>.<tag>.tmp``, the name cut so that the whole fits the 255 bytes a file name may have.

    A target whose own name is near that limit is valid; its temporary file must be too.

    Examples
    --------
    >>> hidden_name("out.csv", "0a1b")
    '.out.csv.0a1b.tmp'
    >>> len(os.fsencode(hidden_name("é" * 200, "0a1b")))
    255
    """
    room = 255 - len(os.fsencode(f"..{tag}.tmp"))
    return f".{os.fsdecode(os.fsencode(name)[:room])}.{tag}.tmp"


def _create_temporary(path: Path) -> tuple[int, Path]:
    """Create an empty hidden ``.<name>.<random>.tmp`` beside `path`; return its descriptor and path."""
    # os.open with mode 0o666 lets the umask decide the permissions, as for any new file
    # (tempfile.mkstemp would leave the final file readable by its owner only).
    for _ in range(100):
        temporary = path.parent / hidden_name(path.name, secrets.token_hex(6))
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


def write_synced(path: str | os.PathLike, data: bytes) -> None:
    """Create the new file `path` (it must not exist), write `data` and fsync it; permissions from the umask.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "part.bin"
    >>> write_synced(target, b"abc")
    >>> target.read_bytes()
    b'abc'
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@contextmanager
def locked_folder(folder: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive ``flock`` on `folder` itself (no lock file left behind) for the ``with`` block.

    Every aekit process that installs a folder in `folder` takes it first, so "is the target still as I
    saw it?" and the rename are one step for them. Where folders cannot be locked (no ``fcntl``: Windows;
    some network file systems), the block runs unlocked.

    Examples
    --------
    >>> import tempfile
    >>> with locked_folder(tempfile.mkdtemp()):
    ...     pass
    """
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without flock: go on unlocked
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_folder(
    target: str | os.PathLike,
    files: Mapping[str, bytes],
    *,
    check_existing: Callable[[Path], None] | None = None,
    what: str = "folder",
) -> Path:
    """Write `files` (name -> bytes) as the new folder `target`, atomically: the old folder or the new one.

    The files are written in the order given, each fsync'ed, into a hidden ``.<name>.<random>.tmp``
    folder beside `target` (put last the file whose presence marks the folder complete). Then, holding
    :func:`locked_folder` on the parent: when `target` exists, ``check_existing(target)`` decides (it
    raises to refuse; without it an existing target is always refused), and the two folders are swapped
    in one ``renameat2(RENAME_EXCHANGE)`` on Linux (elsewhere two renames, with a moment where only a
    hidden backup exists). On any error the temporary folder is removed and `target` is left as it was.
    A target inside a folder aekit wrote whole (:func:`whole_folder_around`) is refused.

    Raises
    ------
    InvalidInputError
        The folder cannot be written (read-only place, full disk, ...), or `target` exists and may not be
        replaced.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "bundle"
    >>> write_folder(target, {"a.txt": b"1", "done": b""}).name
    'bundle'
    >>> sorted(p.name for p in target.iterdir())
    ['a.txt', 'done']
    """
    target = Path(target)
    check_outside_whole_folders(target.parent, target)  # a model inside a model (or a checkpoint) is refused
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = _create_staging_folder(target)
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        blocking = next((folder for folder in target.parents if os.path.lexists(folder)), None)
        if isinstance(error, (FileExistsError, NotADirectoryError)) and blocking and not blocking.is_dir():
            reason = f"{str(blocking)!r} is a file, not a folder"
        raise InvalidInputError(
            f"Cannot create the {what} {str(target)!r}: {reason}. Choose a writable folder."
        ) from None
    try:
        for name, data in files.items():
            write_synced(staging / name, data)
        fsync_folder(staging)
        with locked_folder(target.parent):
            backup = install_folder(staging, target, check_existing, what)
        fsync_folder(target.parent)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise InvalidInputError(
            f"Cannot write the {what} {str(target)!r}: {error.strerror or error}. Check space and permissions."
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _create_staging_folder(target: Path) -> Path:
    # os.mkdir with 0o777 lets the umask decide, as for any new folder (tempfile.mkdtemp makes it 0700)
    for _ in range(100):
        staging = target.parent / hidden_name(target.name, secrets.token_hex(6))
        try:
            os.mkdir(staging, 0o777)
            return staging
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, f"no free temporary folder name in {target.parent}")


def install_folder(staging: str | os.PathLike, target: str | os.PathLike,
                   check_existing: Callable[[Path], None] | None = None, what: str = "folder") -> Path | None:
    """Rename the finished folder `staging` to `target`; return the replaced folder, for the caller to delete.

    The step of :func:`write_folder` that needs :func:`locked_folder` on the parent held by the caller.
    An existing `target` is replaced only when ``check_existing(target)`` returns (it raises to refuse).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "staged").mkdir()
    >>> install_folder(root / "staged", root / "model") is None, [p.name for p in root.iterdir()]
    (True, ['model'])
    """
    staging, target = Path(staging), Path(target)
    if os.path.lexists(target):
        if target.is_symlink() or not target.is_dir():
            kind = "a symbolic link" if target.is_symlink() else "a file"
            raise InvalidInputError(
                f"{str(target)!r} exists and is not a folder ({kind}); aekit replaces only a {what}. "
                "Choose another path, or remove it yourself."
            )
        if check_existing is None:
            raise InvalidInputError(f"The {what} {str(target)!r} already exists. Choose another path.")
        check_existing(target)
        if exchange_paths(staging, target):  # one atomic step: old or new, always one there
            return staging
        backup = target.with_name(hidden_name(target.name, f"old-{secrets.token_hex(6)}"))
        os.replace(target, backup)  # no atomic exchange here: a crash now leaves only the hidden backup
        os.replace(staging, target)
        return backup
    # A plain rename would also replace an empty folder made meanwhile; renameat2's no-replace refuses it.
    if not _rename_no_replace(staging, target):
        os.replace(staging, target)
    return None


_AT_CURRENT_FOLDER, _RENAME_NOREPLACE, _RENAME_EXCHANGE = -100, 1, 2


def _renameat2(first: Path, second: Path, flags: int) -> bool:
    """Linux ``renameat2``; False where the system or file system lacks it, OSError when it refuses."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_CURRENT_FOLDER, os.fsencode(first), _AT_CURRENT_FOLDER, os.fsencode(second), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # old kernel or a file system without it
        return False
    raise OSError(code, os.strerror(code), str(second))


def exchange_paths(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported.

    Replacing a folder otherwise takes two renames (old away, new in), and a crash between them would
    leave no folder at the target.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "a").mkdir()
    >>> _ = (root / "b").write_text("b")
    >>> swapped = exchange_paths(root / "a", root / "b")
    >>> (root / "a").is_file() == swapped
    True
    """
    return _renameat2(first, second, _RENAME_EXCHANGE)


def _rename_no_replace(source: Path, target: Path) -> bool:
    """Rename unless `target` exists (then FileExistsError); False where ``RENAME_NOREPLACE`` is unsupported."""
    return _renameat2(source, target, _RENAME_NOREPLACE)


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # no C library to load (some embedded or non-POSIX builds)
        return None
