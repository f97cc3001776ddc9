"""The shell examples of the README and the docs run as written.

The transcripts of the README, the getting-started page and the PCA page (``$ command`` lines, each
followed by its output) are run line by line in an empty folder and their output compared with the one
shown, every number standing for any number and every run of spaces for any other (times, losses and
sizes vary with the machine).
The command-line page's example block is run too, on small files made for it, and every command must
succeed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?%?")


def fenced_blocks(path: Path) -> list[list[str]]:
    """The lines of each fenced block of ``path`` that has no language (shell examples and transcripts)."""
    blocks, current, fence_language = [], None, None
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            if fence_language is None:  # an opening fence
                fence_language = line[3:].strip()
                current = [] if not fence_language else None
            else:
                if current is not None:
                    blocks.append(current)
                current, fence_language = None, None
            continue
        if current is not None:
            current.append(line)
    return blocks


def transcript(path: Path) -> list[tuple[str, list[str]]]:
    """(command, output lines) for each ``$ `` line of the blocks of ``path`` that are transcripts."""
    steps = []
    for block in fenced_blocks(path):
        if not block or not block[0].startswith("$ "):
            continue
        for line in block:
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
    return steps


def pattern(line: str) -> re.Pattern:
    """``line`` with each number standing for any number, and any run of spaces for any other (columns)."""
    parts = NUMBER.split(line)
    text = NUMBER.pattern.join(re.sub(r"(\\ )+", r"\\s+", re.escape(part)) for part in parts)
    return re.compile(text + r"\Z")


def shell_environment() -> dict:
    """``aekit`` and ``python`` of this interpreter first on the PATH; no cache or thread surprises."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"}


def run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, cwd=cwd, env=shell_environment(), capture_output=True, text=True,
                          timeout=600)


def test_a_number_stands_for_any_number_and_nothing_else():
    shown = pattern("90 epochs (stop: early_stopping, best epoch 80); loss 0.031622, 25.2% lower, 16,952 bytes")
    assert shown.match("7 epochs (stop: early_stopping, best epoch 3); loss 1.5e-05, 3.0% lower, 9 bytes")
    assert not shown.match("7 epochs (stop: max_epochs, best epoch 3); loss 1.5e-05, 3.0% lower, 9 bytes")
    assert not shown.match("90 epochs (stop: early_stopping, best epoch 80); loss 0.031622, 25.2% lower")


@pytest.mark.parametrize(("page", "least"), [("README.md", 3), ("docs/pca.md", 2), ("docs/getting-started.md", 5)])
def test_the_transcripts_run_as_shown(tmp_path, page, least):
    steps = transcript(ROOT / page)
    assert len(steps) >= least, f"the command-line transcript of {page} was not found"
    for command, shown in steps:
        if command.startswith("aekit export"):
            pytest.importorskip("onnx", reason="aekit export needs the onnx package (the dev extra installs it)")
        result = run(command, tmp_path)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        printed = result.stdout.splitlines()
        assert len(printed) == len(shown), f"{command}: printed\n{result.stdout}\n{page} shows\n" + "\n".join(shown)
        for want, got in zip(shown, printed, strict=True):
            assert pattern(want).match(got), f"{command}: printed\n  {got}\n{page} shows\n  {want}"


def _cli_page_files(folder: Path) -> None:
    """The inputs the command-line page's examples name, small."""
    rng = np.random.default_rng(0)
    columns = [f"x{i}" for i in range(10)]
    signal = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 10)) + 0.1 * rng.normal(size=(300, 10))
    pd.DataFrame(signal, columns=columns).to_csv(folder / "train.csv", index=False)
    pd.DataFrame(signal[:50], columns=columns).to_csv(folder / "new.csv", index=False)
    pd.DataFrame(signal[:50], columns=columns).to_parquet(folder / "new.parquet")
    t = np.arange(1200)
    series = np.c_[np.sin(t / 10), np.cos(t / 17)] + 0.05 * rng.normal(size=(1200, 2))
    pd.DataFrame(series, columns=["a", "b"]).to_csv(folder / "series.csv", index=False)


def test_the_command_line_page_examples_run(tmp_path):
    pytest.importorskip("onnx", reason="aekit export needs the onnx package (the dev extra installs it)")
    block = next(b for b in fenced_blocks(ROOT / "docs" / "cli.md") if b and b[0].startswith("aekit fit"))
    _cli_page_files(tmp_path)
    for line in block:
        command = line.split("  #")[0].strip()
        words = shlex.split(command)
        if words[:2] == ["aekit", "fit"]:  # the examples as written, trained briefly
            command += " --epochs 3" if "--epochs" not in words else ""
            command = re.sub(r"--epochs \d+", "--epochs 3", command)
        result = run(command, tmp_path)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
