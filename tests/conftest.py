"""Shared fixtures: tiny seeded datasets (module scope) and the numerics helper."""

from __future__ import annotations

import os

# as the `aekit` command sets it: OpenMP threads sleep while they wait, so that tests on a busy machine do
# not crawl (set before torch loads OpenMP)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import copy  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import stat  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from aekit._files import file_kind

# Property-based tests: a short run in `make test` ("ci"), a long one in `make fuzz` ("long").
_HYPOTHESIS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow], "database": None}
settings.register_profile("ci", max_examples=40, **_HYPOTHESIS)
settings.register_profile("long", max_examples=1000, **_HYPOTHESIS)
settings.load_profile(os.environ.get("AEKIT_HYPOTHESIS_PROFILE", "ci"))


# ------------------------------------------------------------------------------------- training settings
# Small seeded fits, named by what a test needs of the model; a test file takes one by name and says how its
# own differs ({**QUICK_FIT, "architecture": "mlp"}).
QUICK_FIT = {"hidden_dims": (8,), "epochs": 3, "batch_size": 32, "random_state": 0, "device": "cpu"}  # to use
QUICK_FIT_2D = {**QUICK_FIT, "latent_dim": 2}  # the same with two codes (files, the command line)
TINY_FIT = {"hidden_dims": (4,), "epochs": 2, "batch_size": 16, "random_state": 0, "device": "cpu"}  # a file to attack
SCORING_FIT = {**QUICK_FIT, "latent_dim": 2, "hidden_dims": (16,), "epochs": 20}  # scores that separate planted rows
SERIES_FIT = {**QUICK_FIT, "latent_dim": 3, "hidden_dims": (16,), "epochs": 15, "batch_size": 64}  # windows
TABLE_FIT = {"epochs": 40, "random_state": 0, "n_jobs": 1}  # a table's columns learned from each other
_FLAGS = {"hidden_dims": "--hidden", "random_state": "--seed"}  # the others: --name-with-dashes


def fit_flags(fit: dict) -> list[str]:
    """The options of ``aekit fit`` that give the settings ``fit`` (hidden widths as ``W1,W2``)."""
    flags = []
    for name, value in fit.items():
        text = ",".join(str(v) for v in value) if isinstance(value, tuple | list) else str(value)
        flags += [_FLAGS.get(name, "--" + name.replace("_", "-")), text]
    return flags


# ------------------------------------------------------------------------------------- model folders
def write_consistent(folder: Path, name: str, data: bytes) -> None:
    """Replace a file of a model folder and update the manifest to match: a hostile but self-consistent folder."""
    (folder / name).write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def edit_config(folder: Path, edit) -> None:
    """Change a saved model's config.json with ``edit(config)`` (in place), and its manifest entry to match."""
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    write_consistent(folder, "config.json", json.dumps(config).encode())


def copy_model(template: Path, where: Path) -> Path:
    """A copy of the model folder ``template`` at ``where / "model"``."""
    folder = where / "model"
    shutil.copytree(template, folder)
    return folder


# ------------------------------------------------------------------------------------- hostile values
def leaf_paths(value, prefix=()) -> list[tuple]:
    """Every position (keys and indices) in a JSON document, containers included."""
    paths = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += leaf_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += leaf_paths(child, (*prefix, index))
    return paths


def replace_at(document, path: tuple, new_value):
    """A copy of ``document`` with the value at ``path`` (from :func:`leaf_paths`) replaced."""
    if not path:
        return new_value
    document = copy.deepcopy(document)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new_value
    return document


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["mlp", "linear", "conv", "relu", "standard", "minmax", "bce", "mse", "cuda:7", "meta",
                       "__import__('os')", "../../etc/passwd"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children,
                                                                                     max_size=4), max_leaves=8
)


def make_node(path, kind: str) -> str:
    """Put a `kind` of thing at `path` (as an attacker or a careless user would); return its lstat kind."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
        except PermissionError:
            pytest.skip("creating a device node needs root (CAP_MKNOD)")
    elif kind == "folder":
        os.mkdir(path)
    elif kind == "socket":
        import socket

        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(path))
    elif kind.startswith("link-to-"):
        make_node(path.with_name("pointed"), kind.removeprefix("link-to-"))
        os.symlink(path.with_name("pointed"), path)
    elif kind == "dangling-link":
        os.symlink(path.with_name("nowhere"), path)
    else:  # a regular file
        path.write_bytes(b"old")
    return file_kind(path)


# ------------------------------------------------------------------------------------- numerics
def assert_close(actual, expected, *, rtol: float = 1e-5, atol: float = 1e-6, what: str = "") -> None:
    """Compare numerics against an independent reference with explicit tolerances (the one helper)."""
    actual = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    expected = expected.detach().cpu().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def calls_to(monkeypatch, module, name: str) -> list[int]:
    """Record the number of rows of every call to ``module.name(estimator, X, ...)`` (the list fills as it runs)."""
    calls: list[int] = []
    original = getattr(module, name)

    def counted(estimator, X, **how):
        calls.append(len(X))
        return original(estimator, X, **how)

    monkeypatch.setattr(module, name, counted)
    return calls


def flat_state(state: dict, prefix: str = "") -> dict:
    """A saved state's numbers by dotted key (``{"a": {"b": [1]}}`` -> ``{"a.b": [1]}``), to compare key by key."""
    flat = {}
    for key, value in state.items():
        if isinstance(value, dict):
            flat.update(flat_state(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


@pytest.fixture(scope="module")
def low_rank_data() -> np.ndarray:
    """300 x 12 data of rank 3 plus small noise, in large units with an offset (needs scaling)."""
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(300, 3))
    loadings = rng.normal(size=(3, 12))
    return (factors @ loadings + 0.01 * rng.normal(size=(300, 12))) * 100.0 + 1000.0


@pytest.fixture(scope="module")
def unit_data() -> np.ndarray:
    """200 x 10 values in [0, 1]."""
    return np.random.default_rng(1).uniform(size=(200, 10))


def cli_run(capsys, *argv) -> tuple[int, str, str]:
    """Run the aekit command line in-process: its exit code, stdout and stderr."""
    from aekit.cli import main

    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def cli_fails(capsys, *argv) -> str:
    """Run a command that must fail as a user error: exit code 2 and one line on stderr, returned."""
    code, out, err = cli_run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()
