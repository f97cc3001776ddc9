"""The model folder's files: names, the manifest, reading a file safely, and what may be replaced.

A folder holds ``config.json`` (format version, constructor arguments, fitted attributes, model
architecture), ``weights.safetensors``, ``scaler.json``, ``history.json``, ``environment.json`` and
``manifest.json``, which is written last and records the size and SHA-256 of every other file.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from pathlib import Path
from typing import Any

from aekit._files import REPLACE_HINT, check_outside_whole_folders, file_kind
from aekit._version import __version__
from aekit.exceptions import InvalidInputError, ModelFileError

FORMAT_VERSION = 2  # the one model-folder format this aekit writes and reads: no other version is loaded
WEIGHTS = "weights.safetensors"
MANIFEST = "manifest.json"
JSON_FILES = ("config.json", "scaler.json", "history.json", "environment.json")
MAX_JSON_BYTES = 64 * 2**20
# Ends every error about a damaged folder.
DAMAGED = "The model folder is damaged or not an aekit model: save the model again."


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, allow_nan=True, sort_keys=False).encode("utf-8") + b"\n"


def sorted_header(data: bytes) -> bytes:
    """``data`` (a safetensors file) with its JSON header's keys sorted: the same model, the same bytes.

    safetensors writes its metadata in hash-map order, which differs from one process to the next; the
    sorted header has the same length (same keys and values, compact separators), so the offsets stand.
    """
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(text) > length:  # not safetensors' compact form: keep the file as it was written
        return data
    return data[:8] + text.ljust(length, b" ") + data[8 + length :]


def check_model_target(path: str | os.PathLike, *, overwrite: bool) -> None:
    """Refuse a model folder path whose present content saving must not replace.

    Nothing there, or an empty folder: fine. An aekit model folder (manifest present and matching its
    files, nothing else inside): fine with ``overwrite``, else an error whose ``param`` is "overwrite"
    (a caller whose own parameter says it re-words the error from its fields).
    Anything else (a file, a symbolic link, a folder holding other files): always an error, since
    replacing it would delete what is not an aekit model.

    Examples
    --------
    >>> import tempfile
    >>> check_model_target(tempfile.mkdtemp() + "/new", overwrite=False)  # nothing there: fine
    """
    target = Path(path)
    check_outside_whole_folders(target.parent, target)  # a model inside a model or a checkpoint: never
    if not os.path.lexists(target):
        return
    if target.is_symlink() or not target.is_dir():
        kind = "a symbolic link" if target.is_symlink() else "a file"
        raise InvalidInputError(
            f"{str(target)!r} exists and is {kind}, not a model folder: aekit replaces only model folders and "
            "empty folders. Choose another output path."
        )
    try:
        entries = os.listdir(target)
    except OSError as error:
        raise InvalidInputError(f"Cannot read {str(target)!r}: {error.strerror}. Choose another output path.") from None
    if not entries:
        return
    problem = not_a_model_folder(target, entries)
    if problem is not None:
        shown = ", ".join(sorted(entries)[:5]) + (", ..." if len(entries) > 5 else "")
        raise InvalidInputError(
            f"{str(target)!r} exists and is not an aekit model folder ({problem}; it holds {shown}): aekit replaces "
            "only model folders and empty folders, so nothing was written. Choose another output path, or remove "
            "that folder yourself."
        )
    if not overwrite:
        raise InvalidInputError(problem=f"Model folder {target} already exists.", hint=REPLACE_HINT,
                                param="overwrite", value=False)


def not_a_model_folder(folder: Path, entries: list[str]) -> str | None:
    """What makes ``folder`` (holding ``entries``) no complete aekit model folder; None when it is one."""
    try:
        manifest = parse_json(MANIFEST, read_file(folder, MANIFEST, limit=MAX_JSON_BYTES))
    except ModelFileError:
        return "no readable manifest.json"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or set(files) != {*JSON_FILES, WEIGHTS}:
        return "manifest.json does not list a model's files"
    if set(entries) != {*files, MANIFEST}:
        return f"files that are not in its manifest: {sorted(set(entries) - {*files, MANIFEST})[:5]}"
    for name, entry in files.items():
        try:
            read_file(folder, name, expected=entry)
        except ModelFileError:
            return f"{name} does not match the manifest"
    return None


def read_file(folder: Path, name: str, limit: int | None = None, expected: dict | None = None) -> bytes:
    """Read a file that must be a regular file inside ``folder`` (no symlinks, no escaping).

    With ``expected`` (its manifest entry), the size the open file reports must be the recorded
    ``bytes`` before anything is read, and the data must match the recorded ``sha256``.
    """
    path = folder / name
    if path.is_symlink():
        raise ModelFileError(
            f"{str(path)!r} is a symbolic link; model files must be regular files inside the folder. {DAMAGED}"
        )
    kind = file_kind(path)
    if kind != "a regular file":  # a FIFO or device is refused here, before an open that could block
        what = "missing" if kind is None else f"{kind}, not a regular file"
        raise ModelFileError(f"{str(path)!r} is {what}. {DAMAGED}")
    if expected is not None:
        size = expected.get("bytes") if isinstance(expected, dict) else None
        if not is_count(size) or not isinstance(expected.get("sha256"), str):
            raise ModelFileError(f"manifest.json has no size and checksum for {name}. {DAMAGED}")
        limit = size if limit is None else min(limit, size)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise ModelFileError(f"Cannot open {str(path)!r}: {error.strerror}. {DAMAGED}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)  # the file opened, not whatever the path names by now
        if not stat.S_ISREG(info.st_mode):
            raise ModelFileError(f"{str(path)!r} is not a regular file. {DAMAGED}")
        if expected is not None and info.st_size != expected["bytes"]:
            raise ModelFileError(
                f"{name} does not match its checksum in manifest.json: it is {info.st_size} bytes, not the "
                f"{expected['bytes']} recorded (truncated or altered). {DAMAGED}"
            )
        if limit is not None and info.st_size > limit:
            raise ModelFileError(f"{str(path)!r} is {info.st_size} bytes, more than the {limit} allowed. {DAMAGED}")
        data = handle.read() if limit is None else handle.read(limit + 1)
    if limit is not None and len(data) > limit:  # it grew while being read
        raise ModelFileError(f"{str(path)!r} changed while it was read. {DAMAGED}")
    if expected is not None and hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise ModelFileError(f"{name} does not match its checksum in manifest.json (truncated or altered). {DAMAGED}")
    return data


def parse_json(name: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as error:
        reason = f"{type(error).__name__}: {str(error)[:120]}"
        raise ModelFileError(f"{name} is not valid JSON ({reason}). {DAMAGED}") from None


def expect(condition: bool, what: str, name: str = "config.json") -> None:
    if not condition:
        raise ModelFileError(f"{name}: {what}. {DAMAGED}", problem=f"{name}: {what}.", hint=DAMAGED)


def read_manifest(folder: Path) -> dict:
    if not folder.is_dir():
        raise ModelFileError(
            f"Model folder {str(folder)!r} does not exist or is not a folder. Pass the folder written by save()."
        )
    manifest = parse_json(MANIFEST, read_file(folder, MANIFEST, MAX_JSON_BYTES))
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ModelFileError(f"manifest.json must be an object with a 'files' object. {DAMAGED}")
    version = manifest.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        newer = type(version) is int and version > FORMAT_VERSION
        raise ModelFileError(
            f"The model folder has format version {version!r}; this aekit ({__version__}) reads format version "
            f"{FORMAT_VERSION} only. "
            + ("Upgrade aekit (pip install -U aekit) to load it." if newer else
               "Load it with the aekit that saved it, or fit the model again and save it with this one.")
        )
    for name in (*JSON_FILES, WEIGHTS):
        entry = manifest["files"].get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise ModelFileError(f"manifest.json has no checksum for {name}. {DAMAGED}")
    return manifest["files"]




def is_count(value: Any, low: int = 0, high: int = 2**63) -> bool:
    """An int (not a bool) in ``[low, high)``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < high
