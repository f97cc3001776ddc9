"""Training checkpoints that survive a crash: safetensors for the tensors, JSON for the rest.

A checkpoint is a folder ``ckpt-e<epoch>-s<step>`` inside the checkpoint folder. It holds
``tensors.safetensors`` (weights, optimizer moments, RNG states: every tensor of the state),
``state.json`` (everything else: epoch, step, history, optimizer hyper-parameters, with a reference
in place of each tensor) and ``manifest.json`` (size and SHA-256 of both files). The folder is built
under a hidden temporary name, the manifest is written last, and the folder is renamed into place,
so a checkpoint without a manifest, or whose files do not match it, is a half-written one: it is
never picked up. Nothing is ever unpickled; a state is rebuilt from JSON and safetensors only.

This module knows nothing of the trainer: it stores and returns nested states (dicts, lists,
tuples, numbers, strings and tensors), such as ``module.state_dict()`` or
``optimizer.state_dict()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

from aekit._files import file_kind, whole_folder_around, write_folder
from aekit.exceptions import InvalidInputError, ModelFileError, Setting, Words

__all__ = ["Checkpointer", "decode_state", "encode_state", "list_checkpoints", "load_checkpoint", "remove_checkpoints",
           "save_checkpoint"]

FORMAT = "aekit-checkpoint"
FORMAT_VERSION = 1
TENSORS, STATE, MANIFEST = "tensors.safetensors", "state.json", "manifest.json"
_NAME = re.compile(r"^ckpt-e(\d{6,})-s(\d{9,})$")
# what write_folder leaves beside a checkpoint when a process dies while saving: its staging or replaced folder
_LEFTOVER = re.compile(r"^\.ckpt-e\d{6,}-s\d{9,}\.(?:old-)?[0-9a-f]{12}\.tmp$")
_FIX = "Delete that checkpoint folder, or resume from another checkpoint folder."


# ------------------------------------------------------------------------------------ encoding
def encode_state(value: Any, tensors: dict[str, torch.Tensor], key: str = "state") -> Any:
    """Turn a nested state into JSON-ready values, moving every tensor into ``tensors``.

    A tensor becomes ``{"__tensor__": name}``; a tuple ``{"__tuple__": [...]}``; a dict whose keys
    are not all plain strings (optimizer states are keyed by parameter index)
    ``{"__items__": [[key, value], ...]}``. :func:`decode_state` reverses it exactly.

    Examples
    --------
    >>> import torch
    >>> tensors = {}
    >>> encode_state({"step": 3, "betas": (0.9, 0.999), "w": torch.zeros(2)}, tensors)
    {'step': 3, 'betas': {'__tuple__': [0.9, 0.999]}, 'w': {'__tensor__': 'state.w'}}
    >>> list(tensors)
    ['state.w']
    """
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode_state(v, tensors, f"{key}.{k}") for k, v in value.items()}
        return {"__items__": [[_plain_key(k), encode_state(v, tensors, f"{key}.{k}")] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [encode_state(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode_state(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise InvalidInputError(
        f"Cannot checkpoint {key!r}: a value of type {type(value).__name__} has no safe (JSON or tensor) form. "
        "Checkpoints hold numbers, strings, lists, dicts and tensors only."
    )


def _plain_key(key: Any) -> Any:
    if key is None or isinstance(key, (bool, int, float, str)):
        return key
    raise InvalidInputError(f"Cannot checkpoint a dict keyed by {type(key).__name__} ({key!r}).")


def decode_state(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Rebuild a state encoded by :func:`encode_state` (tensors come back on the CPU).

    Examples
    --------
    >>> import torch
    >>> tensors = {}
    >>> state = {0: {"step": torch.tensor(2.0)}, "betas": (0.9, 0.999)}
    >>> decode_state(encode_state(state, tensors), tensors)
    {0: {'step': tensor(2.)}, 'betas': (0.9, 0.999)}
    """
    if isinstance(value, list):
        return [decode_state(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"__tensor__"}:
        name = value["__tensor__"]
        if name not in tensors:
            raise ModelFileError(f"The checkpoint refers to tensor {name!r}, which {TENSORS} does not hold. {_FIX}")
        return tensors[name]
    if set(value) == {"__tuple__"}:
        return tuple(decode_state(v, tensors) for v in value["__tuple__"])
    if set(value) == {"__items__"}:
        return {k: decode_state(v, tensors) for k, v in value["__items__"]}
    return {k: decode_state(v, tensors) for k, v in value.items()}


# ------------------------------------------------------------------------------------ one checkpoint
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checkpoint_name(epoch: int, step: int) -> str:
    """``ckpt-e<epoch>-s<step>``: names sort in training order."""
    return f"ckpt-e{epoch:06d}-s{step:09d}"


def save_checkpoint(folder: str | os.PathLike, state: dict, *, epoch: int, step: int) -> Path:
    """Write ``state`` as the checkpoint of (``epoch``, ``step``) inside ``folder``, atomically.

    ``epoch`` counts the epochs finished and ``step`` the steps done in the next one, so
    (3, 0) is "after epoch 3" and (3, 17) "17 steps into epoch 4".

    Examples
    --------
    >>> import tempfile, torch
    >>> folder = tempfile.mkdtemp()
    >>> path = save_checkpoint(folder, {"w": torch.ones(2), "note": "hi"}, epoch=1, step=0)
    >>> path.name
    'ckpt-e000001-s000000000'
    >>> load_checkpoint(path)["note"]
    'hi'
    """
    folder = Path(folder)
    tensors: dict[str, torch.Tensor] = {}
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "epoch": epoch, "step": step,
                "state": encode_state(state, tensors)}
    contents = {
        TENSORS: safetensors.torch.save(tensors, metadata={"format": "pt"}),
        STATE: json.dumps(document, indent=1, allow_nan=True).encode("utf-8"),
    }
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "epoch": epoch, "step": step,
                "files": {name: {"bytes": len(data), "sha256": _sha256(data)} for name, data in contents.items()}}
    contents[MANIFEST] = json.dumps(manifest, indent=1).encode("utf-8")  # last: marks it whole
    # the same point saved again (a resumed run) replaces its checkpoint
    return write_folder(folder / checkpoint_name(epoch, step), contents, check_existing=_is_checkpoint,
                        what="checkpoint")


def _has_checkpoint_manifest(path: Path) -> bool:
    """Whether ``path`` was written by :func:`save_checkpoint` (complete or not, its manifest says so)."""
    try:
        manifest = json.loads(_read(path / MANIFEST, 2**20))
    except (ModelFileError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def _is_checkpoint(path: Path) -> None:
    """Replace only what is a checkpoint (it has a checkpoint manifest), never a folder a user put there."""
    if not _has_checkpoint_manifest(path):
        raise InvalidInputError(
            f"{str(path)!r} exists and is not an aekit checkpoint; it was left as it is. Choose another "
            "checkpoint folder."
        )


def _read(path: Path, limit: int | None = None) -> bytes:
    if path.is_symlink() or not path.is_file():
        raise ModelFileError(f"{str(path)!r} is missing or not a regular file: the checkpoint is incomplete. {_FIX}")
    if limit is not None and path.stat().st_size > limit:
        raise ModelFileError(f"{str(path)!r} is larger than {limit} bytes. {_FIX}")
    return path.read_bytes()


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and verify one checkpoint folder; return its state (tensors on the CPU).

    Raises
    ------
    ModelFileError
        When the manifest is missing (a half-written checkpoint), a file does not match its
        checksum, or the format is unknown.
    """
    path = Path(path)
    try:
        manifest = json.loads(_read(path / MANIFEST, 2**20))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{str(path / MANIFEST)!r} is not valid JSON ({error}). {_FIX}") from None
    is_checkpoint = isinstance(manifest, dict) and manifest.get("format") == FORMAT
    if not is_checkpoint or not isinstance(manifest.get("files"), dict):
        raise ModelFileError(f"{str(path)!r} is not an aekit checkpoint (its manifest has no 'format': {FORMAT!r}).")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"Checkpoint {str(path)!r} has format version {manifest.get('format_version')!r}; this aekit reads "
            f"version {FORMAT_VERSION}. Resume with the aekit version that wrote it."
        )
    contents = {}
    for name in (TENSORS, STATE):
        data = _read(path / name)
        entry = manifest["files"].get(name)
        if not isinstance(entry, dict) or entry.get("sha256") != _sha256(data):
            raise ModelFileError(f"{str(path / name)!r} does not match its checksum in {MANIFEST}. {_FIX}")
        contents[name] = data
    try:
        tensors = safetensors.torch.load(contents[TENSORS])
        document = json.loads(contents[STATE])
        is_count = [isinstance(document.get(key), int) and not isinstance(document.get(key), bool)
                    and document[key] >= 0 for key in ("epoch", "step")] if isinstance(document, dict) else [False]
        if not all(is_count) or "state" not in document:
            raise ValueError(f"{STATE} must be an object with 'state' and an 'epoch' and 'step' >= 0")
        return decode_state(document["state"], tensors)
    except (safetensors.SafetensorError, UnicodeDecodeError, ValueError, RecursionError, TypeError) as error:
        # RecursionError: nesting deeper than Python's stack; TypeError: an '__items__' that is no list of pairs
        raise ModelFileError(
            f"Checkpoint {str(path)!r} cannot be decoded ({type(error).__name__}: {str(error)[:160]}). {_FIX}"
        ) from None


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Checkpoint folders in ``folder``, oldest first (complete or not: see :func:`load_checkpoint`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(tuple(map(int, match.groups())), entry) for entry in folder.iterdir()
             if (match := _NAME.match(entry.name)) and entry.is_dir() and not entry.is_symlink()]
    return [entry for _, entry in sorted(found)]


# ------------------------------------------------------------------------------------ a run's checkpoints
class Checkpointer:
    """The checkpoints of one training run, in one folder.

    Parameters
    ----------
    folder : str or path-like
        Where checkpoints go (made when missing). A fresh run (``resume=False``) removes the checkpoints
        of an earlier run there, file by file: only the files aekit writes (``tensors.safetensors``,
        ``state.json``, ``manifest.json``) in folders it names (``ckpt-e<epoch>-s<step>``, and the hidden
        ones a crash while saving leaves), with a warning that lists them. A folder holding anything else
        is refused before training, and nothing in it is removed.
    every : int, default=1
        Save after every ``every`` epochs; the trainer also saves once training ends.
    resume : bool, default=False
        Start from the newest complete checkpoint in ``folder`` (or from scratch when there is none).
    keep : int, default=2
        How many of the newest checkpoints to keep; older ones are deleted after each save.
    writer : bool, default=True
        Whether this process writes (in distributed training only rank 0 does; every rank reads).

    Examples
    --------
    >>> import tempfile, torch
    >>> checkpoints = Checkpointer(tempfile.mkdtemp(), every=2)
    >>> [epoch for epoch in range(1, 6) if checkpoints.due(epoch=epoch, last_epoch=5)]  # 5: saved at the end
    [2, 4]
    >>> _ = checkpoints.save({"w": torch.zeros(1)}, epoch=2, step=0)
    >>> Checkpointer(checkpoints.folder, resume=True).latest()["w"]
    tensor([0.])
    """

    def __init__(self, folder: str | os.PathLike, *, every: int = 1, resume: bool = False, keep: int = 2,
                 writer: bool = True) -> None:
        self.folder, self.every, self.resume, self.keep, self.writer = Path(folder), every, resume, keep, writer
        self.last_path: Path | None = None
        _check_folder(self.folder)
        if writer and not resume:
            removed = remove_checkpoints(self.folder)
            if removed:
                shown = ", ".join(removed[:4]) + (f" and {len(removed) - 4} more" if len(removed) > 4 else "")
                warnings.warn(Words(
                    f"A fresh run removed {len(removed)} checkpoint(s) of an earlier run from {str(self.folder)!r}: "
                    f"{shown}. Pass ", Setting("resume", True), " to continue from the checkpoints instead."),
                    UserWarning, stacklevel=2)

    def due(self, *, epoch: int, last_epoch: int) -> bool:
        """Whether to save after ``epoch`` (1-based) of a run that ends at ``last_epoch`` (saved then anyway)."""
        return epoch % self.every == 0 and epoch < last_epoch

    def latest(self) -> dict | None:
        """The state of the newest complete checkpoint, or None; incomplete ones are skipped with a warning."""
        if not self.resume:
            return None
        for path in reversed(list_checkpoints(self.folder)):
            try:
                state = load_checkpoint(path)
            except ModelFileError as error:
                warnings.warn(f"Skipping checkpoint {path.name}: {error}", RuntimeWarning, stacklevel=2)
                continue
            self.last_path = path
            return state
        return None

    def save(self, state: dict, *, epoch: int, step: int) -> Path | None:
        """Save ``state`` (when this process is the writer) and prune old checkpoints."""
        if not self.writer:
            return None
        self.last_path = save_checkpoint(self.folder, state, epoch=epoch, step=step)
        for old in list_checkpoints(self.folder)[: -self.keep]:
            if _removable(old):  # one a user put a file into stays
                _remove(old)
        return self.last_path


def _check_folder(folder: Path) -> None:
    """Refuse a checkpoint folder that is a file (or a FIFO, ...), or that is inside a model or checkpoint."""
    kind = file_kind(folder)
    if kind is not None and not folder.is_dir():
        what = "a file" if kind == "a regular file" else kind
        raise InvalidInputError(
            f"Cannot create the checkpoint folder {str(folder)!r}: {str(folder)!r} is {what}, not a folder. Choose a "
            "folder for the checkpoints (it is made when missing)."
        )
    whole = whole_folder_around(folder)
    if whole is not None:
        raise InvalidInputError(
            f"The checkpoint folder {str(folder)!r} is inside {str(whole)!r}, an aekit model or checkpoint folder, "
            "which holds only its own files. Choose a checkpoint folder elsewhere."
        )


def remove_checkpoints(folder: str | os.PathLike) -> list[str]:
    """Remove the checkpoints of an earlier run from `folder`, file by file; return the names of those removed.

    Only what :func:`save_checkpoint` writes is removed: the files ``tensors.safetensors``,
    ``state.json`` and ``manifest.json``, in a folder named ``ckpt-e<epoch>-s<step>`` whose manifest
    says it is a checkpoint, or in the hidden folder a process killed while saving leaves; then the
    emptied folder. Anything else in `folder` (another file or folder, a link, a checkpoint folder
    holding a file of the user's) is refused with an error naming it, before anything is removed.

    Examples
    --------
    >>> import tempfile, torch
    >>> folder = tempfile.mkdtemp()
    >>> _ = save_checkpoint(folder, {"w": torch.ones(1)}, epoch=1, step=0)
    >>> remove_checkpoints(folder), list_checkpoints(folder)
    (['ckpt-e000001-s000000000'], [])
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    entries = sorted(folder.iterdir())
    strangers = [entry.name for entry in entries if not _removable(entry)]
    if strangers:
        shown = ", ".join(repr(name) for name in strangers[:5]) + (", ..." if len(strangers) > 5 else "")
        raise InvalidInputError(
            f"The checkpoint folder {str(folder)!r} holds what aekit did not write there ({shown}), so a fresh run "
            "will not clear it. Choose an empty or new checkpoint folder, pass resume=True (--resume) to continue "
            "from its checkpoints, or move those files away."
        )
    for entry in entries:
        _remove(entry)
    return [entry.name for entry in entries]


def _remove(entry: Path) -> None:
    for name in (MANIFEST, STATE, TENSORS):  # the manifest first: a half-removed checkpoint is never loaded
        (entry / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # something put there meanwhile stays, and so does its folder
        entry.rmdir()


def _removable(entry: Path) -> bool:
    """Whether `entry` is a checkpoint folder (or a crash's leftover of one) holding only checkpoint files."""
    if entry.is_symlink() or not entry.is_dir():
        return False
    if not (_NAME.match(entry.name) and _has_checkpoint_manifest(entry)) and not _LEFTOVER.match(entry.name):
        return False
    return all(child.name in (TENSORS, STATE, MANIFEST) and child.is_file() and not child.is_symlink()
               for child in entry.iterdir())
