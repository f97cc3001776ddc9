"""``--help`` answers without loading the library, shows the library's own defaults, and errors point to it.

The defaults ``--help`` prints are read from the source files (``aekit.cli.options.source_defaults``):
these tests check them against the imported objects, so a default changed in the library cannot
leave an old value in ``--help``.
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from aekit.cli import build_parser, main
from aekit.cli.options import EstimatorDefault
from aekit.exceptions import plural
from aekit.workflows.matching import column_order

HEAVY = ("torch", "sklearn", "numpy", "scipy", "pandas", "matplotlib")


def test_every_help_loads_none_of_the_heavy_libraries():
    commands = [[], *[[name] for name in build_parser().commands]]
    script = f"""
import sys
from aekit.cli import main
for words in {commands!r}:
    try:
        main([*words, "--help"])
    except SystemExit as exit:
        assert exit.code == 0, (words, exit.code)
print(sorted(name for name in {HEAVY!r} if name in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]", f"--help imported {result.stdout.splitlines()[-1]}"


def library_defaults() -> dict:
    """Each EstimatorDefault source's values, from the imported library (the reference)."""
    from aekit import Autoencoder
    from aekit.analysis import compare_with_pca, default_autoencoder, sweep_latent_dims
    from aekit.demo import run_demo
    from aekit.spectrogram import LogMelFrames

    def signature(function) -> dict:
        return {name: p.default for name, p in inspect.signature(function).parameters.items()}

    return {"_estimator_defaults": Autoencoder().get_params(), "_template_defaults": default_autoencoder().get_params(),
            "_compare_defaults": signature(compare_with_pca), "_sweep_defaults": signature(sweep_latent_dims),
            "_demo_defaults": signature(run_demo), "_feature_defaults": LogMelFrames().get_params()}


def test_help_prints_the_defaults_the_library_has():
    reference = library_defaults()
    checked = 0
    for command, parser in build_parser().commands.items():
        for action in parser._actions:
            if isinstance(action.default, EstimatorDefault):
                values = reference[action.default.source.__name__]
                assert str(action.default) == str(EstimatorDefault(action.default.name, lambda v=values: v)), (
                    f"aekit {command} {action.option_strings[0]}: --help shows {action.default}, the library has "
                    f"{values[action.default.name]!r}")
                checked += 1
    assert checked >= 25


@pytest.mark.parametrize(("words", "command", "unknown"), [
    (["score", "model", "data.csv", "--forse"], "aekit score", "--forse"),
    (["fit", "data.csv", "-o", "m", "--learning-rate", "0.1"], "aekit fit", "--learning-rate 0.1"),
    (["--bogus"], "aekit", "--bogus"),
])
def test_an_unknown_option_points_to_the_help_of_its_command(capsys, words, command, unknown):
    with pytest.raises(SystemExit) as exit:
        main(words)
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"{command}: error: unrecognized arguments: {unknown} ")
    assert error.rstrip().endswith(f"(see {command} --help)")
    assert error.count("\n") == 1


def test_counts_of_one_are_singular():
    assert plural(1, "column") == "1 column"
    assert plural(2, "picture") == "2 pictures"
    with pytest.raises(ValueError, match=r"^data\.csv has 1 column; the model takes 3\."):
        column_order(["a"], None, 3, "data.csv", positional=False, what="the model", hint="")


def test_compare_pca_does_not_warn_about_its_own_defaults_and_takes_a_batch_size(tmp_path, capsys):
    """505 rows: 404 training rows, on which the default linear autoencoder trains full-batch (2,000 steps)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.normal(size=(505, 2)) @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(505, 5))
    pd.DataFrame(X, columns=list("abcde")).to_csv(tmp_path / "data.csv", index=False)
    assert main(["compare-pca", str(tmp_path / "data.csv"), "--latent-dim", "2", "--linear-only"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "linear autoencoder" in captured.out
    assert main(["compare-pca", str(tmp_path / "data.csv"), "--latent-dim", "2", "--batch-size", "0"]) == 2
    assert "error: --batch-size must be an int in the range [1, inf)" in capsys.readouterr().err
