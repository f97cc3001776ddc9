"""Tests of aekit._files: files and folders written atomically (the old one or the whole new one)."""

from __future__ import annotations

import contextlib
import errno
import os
import re

import numpy as np
import pytest

from aekit._files import atomic_write, atomic_write_bytes, atomic_write_text, check_output_file, file_kind
from aekit.data import write_data
from aekit.exceptions import InvalidInputError, InvalidParameterValue
from conftest import make_node


def test_atomic_write_helpers(tmp_path):
    atomic_write_bytes(tmp_path / "blob", b"\x00\x01")
    atomic_write_text(tmp_path / "note.txt", "héllo\r\n")
    assert (tmp_path / "blob").read_bytes() == b"\x00\x01"
    assert (tmp_path / "note.txt").read_bytes() == "héllo\r\n".encode()
    assert sorted(os.listdir(tmp_path)) == ["blob", "note.txt"]


def test_atomic_write_uses_a_hidden_temporary_in_the_same_folder(tmp_path):
    with atomic_write(tmp_path / "out.bin") as file:
        temporaries = os.listdir(tmp_path)
        file.write(b"data")
    assert len(temporaries) == 1 and re.fullmatch(r"\.out\.bin\..+\.tmp", temporaries[0])
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_write_respects_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "out.bin", b"x")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o640


def test_atomic_write_failure_keeps_the_target(tmp_path):
    target = tmp_path / "model.json"
    target.write_text("old")
    with pytest.raises(KeyError):
        with atomic_write(target, "w", overwrite=True) as file:
            file.write("new, half written")
            raise KeyError("boom")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["model.json"]


def test_full_disk_becomes_invalid_input_error(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(InvalidInputError, match=rf"Cannot write {re.escape(str(target))}: No space left on device"):
        atomic_write_bytes(target, b"new", overwrite=True)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]


def test_missing_folder_becomes_invalid_input_error(tmp_path):
    with pytest.raises(InvalidInputError, match=r"Cannot write .*out.bin: No such file or directory"):
        atomic_write_bytes(tmp_path / "absent" / "out.bin", b"x")


def test_read_only_folder_becomes_invalid_input_error(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        try:
            (folder / "probe").write_bytes(b"")
        except PermissionError:
            pass
        else:
            pytest.skip("chmod does not stop this user (root) from writing")
        with pytest.raises(InvalidInputError, match=r"Cannot write .*out.csv: Permission denied"):
            write_data(folder / "out.csv", np.ones((2, 2)))
        assert os.listdir(folder) == []
    finally:
        folder.chmod(0o755)


def test_caller_os_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_write(tmp_path / "out.bin") as file:
            file.write((tmp_path / "missing-input").read_bytes())
    assert os.listdir(tmp_path) == []


def test_atomic_write_rejects_other_modes(tmp_path):
    with pytest.raises(InvalidParameterValue, match="'mode' parameter of atomic_write must be 'wb' or 'w'"):
        with atomic_write(tmp_path / "x", "a"):
            pass


NOT_FILES = ["fifo", "device", "folder", "socket", "link-to-fifo", "link-to-device", "link-to-folder",
             "link-to-file", "dangling-link"]


@pytest.mark.parametrize("kind", NOT_FILES)
def test_atomic_write_replaces_only_a_regular_file(tmp_path, kind):
    target = tmp_path / "out.npy"
    what = make_node(target, kind)
    before = os.lstat(target)
    with pytest.raises(InvalidInputError, match=rf"Cannot write '.*out.npy': it is {re.escape(what)}"):
        atomic_write_bytes(target, b"new")
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "link-to-file", "file"])
def test_a_name_taken_while_writing_is_judged_again_at_the_rename(tmp_path, kind):
    # the check before the work saw nothing there; what appears meanwhile is refused (a regular file replaced)
    target = tmp_path / "out.csv"
    with pytest.raises(InvalidInputError) if kind != "file" else contextlib.nullcontext():
        with atomic_write(target, "w", overwrite=True) as file:
            file.write("new")
            what = make_node(target, kind)
    if kind == "file":
        assert target.read_text() == "new"
    else:
        assert file_kind(target) == what
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]



def test_a_regular_file_that_appears_while_writing_is_kept_without_overwrite(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(InvalidInputError, match="already exists. Pass overwrite=True"):
        with atomic_write(target, "w") as file:
            file.write("new")
            target.write_text("written meanwhile by someone else")
    assert target.read_text() == "written meanwhile by someone else"
    assert os.listdir(tmp_path) == ["out.csv"]


@pytest.mark.parametrize("length", [200, 251])
def test_a_name_near_the_length_limit_is_written(tmp_path, length):
    # the temporary name is longer than the target's: it is cut to fit, the target keeps its own
    target = tmp_path / ("é" * 10 + "x" * (length - 24) + ".csv")  # é: two bytes each
    assert len(os.fsencode(target.name)) == length
    atomic_write_text(target, "a\n")
    assert target.read_text() == "a\n" and os.listdir(tmp_path) == [target.name]


def test_a_name_beyond_the_limit_and_a_nul_byte_are_one_line_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="File name too long"):
        atomic_write_text(tmp_path / ("x" * 256), "a")
    with pytest.raises(InvalidInputError, match="not empty and without NUL bytes"):
        atomic_write_text(tmp_path / "a\x00b", "a")
    with pytest.raises(InvalidInputError, match="not empty and without NUL bytes"):
        check_output_file("")
    assert os.listdir(tmp_path) == []
