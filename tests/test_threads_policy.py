"""OpenMP's wait policy: ``import aekit`` makes waiting threads sleep (unless torch came first or the
variable is set), and a fit whose threads may spin on a busy machine says so."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from aekit import Autoencoder, hardware


def _policy_after(imports: str, preset: str | None) -> str:
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if preset is not None:
        env["OMP_WAIT_POLICY"] = preset
    code = f"{imports}; import os; print(os.environ.get('OMP_WAIT_POLICY'))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize(("imports", "preset", "expected"), [
    ("import aekit", None, "PASSIVE"),
    ("import aekit", "ACTIVE", "ACTIVE"),  # the user's choice is kept
    ("import torch, aekit", None, "None"),  # too late: libgomp read its default when torch loaded
])
def test_import_aekit_makes_openmp_threads_sleep_unless_too_late_or_chosen(imports, preset, expected):
    assert _policy_after(imports, preset) == expected


def test_others_running_reads_the_run_queue():
    count = hardware.others_running()
    assert count is None or count >= 0
    if os.path.exists("/proc/loadavg"):
        assert isinstance(count, int)


def test_the_warning_names_the_fix_only_for_spinning_threads_on_a_busy_machine(monkeypatch):
    cores = hardware.usable_cores()
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(hardware, "others_running", lambda samples=3: cores)
    message = hardware.spinning_threads_warning(2)
    assert message is not None and "Import aekit before torch" in message and "n_jobs=1" in message
    assert hardware.spinning_threads_warning(1) is None  # one thread has no barrier to spin at
    monkeypatch.setattr(hardware, "others_running", lambda samples=3: cores - 1)
    assert hardware.spinning_threads_warning(2) is None  # a core is free
    monkeypatch.setattr(hardware, "others_running", lambda samples=3: cores)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert hardware.spinning_threads_warning(2) is None


def test_a_fit_warns_when_its_threads_may_spin_on_a_busy_machine(monkeypatch):
    X = np.random.default_rng(0).normal(size=(200, 5))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(hardware, "others_running", lambda samples=3: hardware.usable_cores())
    with pytest.warns(UserWarning, match="PyTorch's threads spin while they wait"):
        Autoencoder(2, epochs=1, n_jobs=2, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Autoencoder(2, epochs=1, n_jobs=1, random_state=0, early_stopping=False).fit(X)
