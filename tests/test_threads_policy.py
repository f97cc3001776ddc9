"""No state around the library: importing and fitting change no environment variable and write no file
outside the user's outputs; the ``aekit`` command makes OpenMP's waiting threads sleep (documented)."""

import os
import subprocess
import sys

import pytest

FIT = ("import numpy as np; from aekit import Autoencoder; "
       "Autoencoder(2, epochs=1, random_state=0).fit(np.random.default_rng(0).normal(size=(200, 5)))")


def _run(code: str, env: dict) -> str:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def _clean_env(home, **extra) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_WAIT_POLICY", "XDG_CACHE_HOME")}
    return env | {"HOME": str(home)} | extra


def test_importing_and_fitting_change_no_environment_variable_and_write_nothing_outside_outputs(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # the libraries' own: scikit-learn sets KMP_* on import, torch TORCHINDUCTOR_CACHE_DIR when its
    # compiler's modules load (the fused optimiser)
    code = (f"import os, sklearn, torch; before = dict(os.environ); import aekit, aekit.estimator; {FIT}; "
            "print(sorted(key for key in set(before) | set(os.environ) if before.get(key) != os.environ.get(key) "
            "and not key.startswith('TORCHINDUCTOR_')))")
    assert _run(code, _clean_env(home)) == "[]"
    assert list(home.rglob("*")) == []  # no cache, no settings file


@pytest.mark.parametrize(("preset", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_command_makes_openmp_threads_sleep_unless_the_user_chose(tmp_path, preset, expected):
    code = ("import os; from aekit.cli import main; main(['info', 'no-such-model']); "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    env = _clean_env(tmp_path, **({} if preset is None else {"OMP_WAIT_POLICY": preset}))
    assert _run(code, env).splitlines()[-1] == expected
