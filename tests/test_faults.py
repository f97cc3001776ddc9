"""Faults: SIGKILL at any moment of a save or an encode, a full disk, a read-only folder.

A killed writer must leave the old complete file (or folder) or the new complete one, never a
partial one that reads as valid; a full or read-only disk gives aekit's error and leaves no partial
output. Kills are real: a child process (forked from this one, so nothing is imported again, or a
fresh ``python`` for the end-to-end case) writes in a loop and gets SIGKILL after a random delay.
``AEKIT_FUZZ_KILLS`` sets how many kills per test (default 12; ``make fuzz`` runs 200).
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import aekit
from aekit import _files, persistence
from aekit.cli import main as cli_main
from aekit.data import read_data, write_data
from aekit.exceptions import InvalidInputError, ModelFileError
from conftest import QUICK_FIT

KILLS = int(os.environ.get("AEKIT_FUZZ_KILLS", "12"))
FAULTS_FIT = {**QUICK_FIT, "hidden_dims": (16,), "epochs": 2}


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(200, 12))


@pytest.fixture(scope="module")
def models(data) -> dict[str, aekit.Autoencoder]:
    """Two different models: "old" is on disk before each kill, the child keeps saving both."""
    return {"old": aekit.Autoencoder(latent_dim=2, **FAULTS_FIT).fit(data),
            "new": aekit.Autoencoder(latent_dim=3, **FAULTS_FIT).fit(data)}


@pytest.fixture
def scratch(tmp_path_factory) -> Path:
    """A folder apart from the test's own, for the child's warm-up output."""
    return tmp_path_factory.mktemp("scratch")


def kill_at_random(work, seconds: float, seed: int, warm_up=None) -> None:
    """Fork a child that runs ``work(i)`` for i = 0, 1, ... and SIGKILL it after a random delay.

    The delay starts when the child is ready: after ``warm_up()`` (the same work on scratch output, so
    that the first real call runs as fast as the calls ``seconds`` was timed with, not slowed by
    what a forked process does once) and never before the child is on one thread, as the timing was.
    """
    delay = random.Random(seed).uniform(0.0, seconds)
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write until killed, never return into pytest
        try:
            os.close(ready_read)
            torch.set_num_threads(1)  # a thread pool inherited through fork would hang the child
            if warm_up is not None:
                warm_up()
            os.write(ready_write, b"r")
            os.close(ready_write)
            for i in range(10**9):
                work(i)
        finally:
            os._exit(1)
    os.close(ready_write)
    try:
        ready = os.read(ready_read, 1)  # b"" if the child died first
    finally:
        os.close(ready_read)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert ready == b"r", "the child died before it was ready"
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "the child died on its own"


def visible_entries(folder: Path) -> list[str]:
    """What a user sees: temporary files and folders are hidden (their names start with a dot)."""
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


def seconds_per(work, repeats: int = 3) -> float:
    """Seconds per call of ``work`` on one thread, as the killed child runs it (after one untimed call)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        work(0)
        start = time.perf_counter()
        for i in range(repeats):
            work(i)
        return (time.perf_counter() - start) / repeats
    finally:
        torch.set_num_threads(previous)


# ------------------------------------------------------------------------------------ SIGKILL: save
def test_sigkill_at_any_moment_of_save_leaves_the_old_or_the_new_model(models, data, tmp_path, scratch):
    expected = {name: model.transform(data) for name, model in models.items()}
    target = tmp_path / "model"
    order = ("new", "old")

    def save(i: int) -> None:
        models[order[i % 2]].save(target, overwrite=True)

    def warm_up() -> None:  # the same saves, elsewhere
        for name in order:
            models[name].save(scratch / "model", overwrite=True)

    window = 3 * seconds_per(save)  # the kill lands anywhere in the first few saves
    outcomes = set()
    for kill in range(KILLS):
        models["old"].save(target, overwrite=True)
        kill_at_random(save, window, seed=kill, warm_up=warm_up)
        assert visible_entries(tmp_path) == ["model"]
        loaded = aekit.load(target)  # never partial: a ModelFileError here fails the test
        codes = loaded.transform(data)
        matches = [name for name, reference in expected.items() if np.array_equal(codes, reference)]
        assert len(matches) == 1, "the folder holds neither the old nor the new model"
        outcomes.add(matches[0])
        for hidden in tmp_path.glob(".*"):  # leftovers of a killed save: hidden, and cleaned by the next save
            assert hidden.name.startswith(".model.")
    print(f"{KILLS} kills during save: the folder held {sorted(outcomes)}")
    assert "new" in outcomes, "no kill landed after a complete save: the window is too short to test anything"


def test_a_staging_folder_left_by_a_kill_is_never_taken_for_the_model(models, data, tmp_path):
    """Killed right after writing its manifest, a staging folder is complete but hidden: load the target."""
    target = tmp_path / "model"
    models["old"].save(target)
    staging = tmp_path / ".model.abc123.tmp"
    models["new"].save(staging)
    assert visible_entries(tmp_path) == ["model"]
    np.testing.assert_array_equal(aekit.load(target).transform(data), models["old"].transform(data))


@pytest.mark.slow
def test_sigkill_of_a_fresh_python_saving_in_a_loop(models, data, tmp_path):
    """End to end: a separate interpreter (imports and all) saves in a loop and is killed mid-way."""
    target = tmp_path / "model"
    models["old"].save(target)
    np.save(tmp_path / "X.npy", data)
    script = (
        "import sys, numpy as np, aekit\n"
        "X = np.load(sys.argv[1])\n"
        "models = [aekit.Autoencoder(latent_dim=k, hidden_dims=(16,), epochs=2, batch_size=32, random_state=0,"
        " device='cpu').fit(X) for k in (2, 3)]\n"
        "print('ready', flush=True)\n"
        "i = 0\n"
        "while True:\n"
        "    models[i % 2].save(sys.argv[2], overwrite=True); i += 1\n"
    )
    expected = [model.transform(data) for model in (models["old"], models["new"])]
    rounds = max(2, KILLS // 6)
    for kill in range(rounds):
        child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "X.npy"), str(target)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(random.Random(kill).uniform(0.0, 0.2))
        finally:
            child.kill()
            child.wait()
        assert child.returncode == -signal.SIGKILL
        codes = aekit.load(target).transform(data)
        assert any(np.array_equal(codes, reference) for reference in expected)
        assert visible_entries(tmp_path) == ["X.npy", "model"]


# ------------------------------------------------------------------------------------ SIGKILL: encode
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_sigkill_at_any_moment_of_encode_leaves_the_old_or_the_new_output(models, data, tmp_path, suffix,
                                                                          scratch):
    """The child runs ``aekit encode`` (the CLI's own code path) over and over onto the same output."""
    model_dir, inputs, output = tmp_path / "model", tmp_path / "X.npy", tmp_path / f"codes{suffix}"
    models["new"].save(model_dir)
    big = np.tile(data, (20, 1))  # 4000 rows: the write takes long enough to be hit mid-way
    np.save(inputs, big)
    old = np.full((7, 3), -1.0, dtype=np.float32)
    new = models["new"].transform(big)

    def encode(i: int) -> None:
        assert cli_main(["encode", str(model_dir), str(inputs), "-o", str(output), "--quiet", "--force"]) == 0

    def warm_up() -> None:  # the same encode, elsewhere
        assert cli_main(["encode", str(model_dir), str(inputs), "-o", str(scratch / output.name), "--quiet",
                         "--force"]) == 0

    window = 3 * seconds_per(encode, repeats=2)
    outcomes = set()
    for kill in range(KILLS):
        write_data(output, old, columns=["latent0", "latent1", "latent2"], overwrite=True)
        kill_at_random(encode, window, seed=kill, warm_up=warm_up)
        assert visible_entries(tmp_path) == sorted(["X.npy", "model", output.name])
        values = read_data(output).X  # never partial: an error here fails the test
        if np.array_equal(values, old):
            outcomes.add("old")
        else:
            assert values.shape == new.shape  # complete: every row is there
            # the child computes on one thread, this process on several: sums differ in the last bit
            np.testing.assert_allclose(values, new, rtol=1e-5, atol=1e-6)
            outcomes.add("new")
    print(f"{KILLS} kills during encode to {suffix}: the output held {sorted(outcomes)}")
    assert "new" in outcomes, "no kill landed after a complete encode: the window is too short to test anything"


# ------------------------------------------------------------------------------------ full disk
def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_during_save_keeps_the_old_model_and_leaves_nothing(models, data, tmp_path, monkeypatch):
    target = tmp_path / "model"
    models["old"].save(target)
    monkeypatch.setattr(os, "fsync", _no_space)  # every write is fsync'ed: the first one reports the full disk
    with pytest.raises(InvalidInputError, match=r"Cannot write the model folder .*: No space left on device\. "
                                                r"Check space and permissions"):
        models["new"].save(target, overwrite=True)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model"]
    np.testing.assert_array_equal(aekit.load(target).transform(data), models["old"].transform(data))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_full_disk_during_encode_is_one_line_and_exit_2(models, tmp_path, monkeypatch, capsys, suffix):
    models["new"].save(tmp_path / "model")
    np.save(tmp_path / "X.npy", np.ones((5, 12)))
    output = tmp_path / f"codes{suffix}"
    output.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", _no_space)
    code = cli_main(["encode", str(tmp_path / "model"), str(tmp_path / "X.npy"), "-o", str(output), "--force"])
    monkeypatch.undo()
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "No space left on device" in error
    assert error.startswith("aekit encode: error: Cannot write")
    assert output.read_bytes() == b"old" and visible_entries(tmp_path) == sorted(["X.npy", "model", output.name])
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 64 KiB file system (root only; skipped where mounting is not allowed)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not root'})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_a_really_full_disk_gives_a_clear_error_and_keeps_the_old_model(small_tmpfs, data):
    small = aekit.Autoencoder(latent_dim=2, hidden_dims=(4,), epochs=1, random_state=0, device="cpu").fit(data)
    big = aekit.Autoencoder(latent_dim=2, hidden_dims=(2000,), epochs=1, random_state=0, device="cpu").fit(data)
    target = small_tmpfs / "model"
    small.save(target)
    with pytest.raises(InvalidInputError, match="No space left on device"):
        big.save(target, overwrite=True)  # ~200 KB of weights on a 64 KiB disk
    assert os.listdir(small_tmpfs) == ["model"]
    np.testing.assert_array_equal(aekit.load(target).transform(data), small.transform(data))
    with pytest.raises(InvalidInputError, match=r"Cannot write .*big.npy: No space left on device"):
        write_data(small_tmpfs / "big.npy", np.ones((10_000, 10)))
    assert os.listdir(small_tmpfs) == ["model"]


# ------------------------------------------------------------------------------------ read-only
@pytest.fixture(params=["chmod", "read-only-mount"])
def read_only_folder(request, tmp_path):
    """A folder nobody may write to: by permissions (skipped for root) or a read-only mount (root only)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if request.param == "chmod":
        folder.chmod(0o555)
        try:
            (folder / "probe").write_bytes(b"")
        except PermissionError:
            yield folder
            folder.chmod(0o755)
            return
        folder.chmod(0o755)
        pytest.skip("chmod does not stop this user (root) from writing")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(folder)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here ({result.stderr.strip() or 'not root'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_read_only_folder_gives_a_clear_error_for_save_write_and_encode(models, tmp_path, read_only_folder, capsys):
    with pytest.raises(InvalidInputError, match=r"Cannot create the model folder .*(Permission denied|Read-only)"):
        models["new"].save(read_only_folder / "model")
    with pytest.raises(InvalidInputError, match=r"Cannot write .*codes.csv: (Permission denied|Read-only)"):
        write_data(read_only_folder / "codes.csv", np.ones((2, 2)))
    models["new"].save(tmp_path / "model")
    np.save(tmp_path / "X.npy", np.ones((5, 12)))
    code = cli_main(["encode", str(tmp_path / "model"), str(tmp_path / "X.npy"), "-o",
                     str(read_only_folder / "codes.parquet")])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and error.startswith("aekit encode: error: Cannot write")
    assert os.listdir(read_only_folder) == []


def test_load_from_a_read_only_folder_works(models, data, tmp_path):
    """Loading writes nothing, so a model on read-only media loads."""
    target = tmp_path / "model"
    models["old"].save(target)
    for path in [*target.iterdir(), target]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        np.testing.assert_array_equal(aekit.load(target).transform(data), models["old"].transform(data))
    finally:
        target.chmod(0o755)


def test_a_model_file_replaced_mid_load_is_caught_by_the_checksum(models, tmp_path, monkeypatch):
    """A file swapped between the manifest read and the file read: refused, not half-loaded."""
    target = tmp_path / "model"
    models["old"].save(target)
    other = tmp_path / "other"
    models["new"].save(other)
    real_read = persistence.files.read_file

    def swapping_read(folder, name, limit=None, expected=None):
        if name == persistence.WEIGHTS:
            (folder / name).write_bytes((other / name).read_bytes())
        return real_read(folder, name, limit, expected)

    monkeypatch.setattr(persistence.files, "read_file", swapping_read)
    with pytest.raises(ModelFileError, match="weights.safetensors does not match its checksum"):
        aekit.load(target)


def test_replacing_a_model_swaps_the_folders_in_one_step(models, data, tmp_path, monkeypatch):
    """On Linux the old folder is never moved away first (that would leave a moment with no model)."""
    target = tmp_path / "model"
    models["old"].save(target)
    probe_a, probe_b = tmp_path / ".probe-a", tmp_path / ".probe-b"
    probe_a.mkdir(), probe_b.mkdir()
    if not _files.exchange_paths(probe_a, probe_b):
        pytest.skip("no atomic exchange of folders on this system: the two-rename fallback is used")
    probe_a.rmdir(), probe_b.rmdir()
    moved_away = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda source, *rest: (moved_away.append(Path(source)),
                                                              real_replace(source, *rest))[1])
    models["new"].save(target, overwrite=True)
    assert target not in moved_away and os.listdir(tmp_path) == ["model"]
    np.testing.assert_array_equal(aekit.load(target).transform(data), models["new"].transform(data))
