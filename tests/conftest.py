"""Shared fixtures: tiny seeded datasets (module scope) and the numerics helper."""

from __future__ import annotations

import os

# as the `aekit` command sets it: OpenMP threads sleep while they wait, so that tests on a busy machine do
# not crawl (set before torch loads OpenMP)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings

# Property-based tests: a short run in `make test` ("ci"), a long one in `make fuzz` ("long").
_HYPOTHESIS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow], "database": None}
settings.register_profile("ci", max_examples=40, **_HYPOTHESIS)
settings.register_profile("long", max_examples=1000, **_HYPOTHESIS)
settings.load_profile(os.environ.get("AEKIT_HYPOTHESIS_PROFILE", "ci"))


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
