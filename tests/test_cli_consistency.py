"""One set of defaults and one vocabulary: the CLI follows the estimator and speaks in options."""

import inspect

import numpy as np
import pytest

import aekit
from aekit.analysis import default_autoencoder, sweep_latent_dims
from aekit.cli import build_parser, main
from aekit.cli.fit import CLI_SEED, estimator_params


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_fit_left_at_its_defaults_builds_the_estimators_defaults():
    args = build_parser().parse_args(["fit", "data.csv", "-o", "model"])
    params = estimator_params(args)
    built = aekit.Autoencoder(**params).get_params()
    # the one deliberate exception: the CLI's seed, so that a command run twice gives the same model
    expected = aekit.Autoencoder(random_state=CLI_SEED, verbose=params["verbose"]).get_params()
    assert built == expected
    assert set(params) <= {"verbose", "random_state", "checkpoint_dir", "resume"}  # nothing else copied


def test_help_texts_read_the_library_values(capsys):
    estimator = aekit.Autoencoder()
    text = _help(capsys, "fit")
    for option, value in (("--epochs", estimator.epochs), ("--batch-size", estimator.batch_size),
                          ("--patience", estimator.patience), ("--contamination", estimator.contamination),
                          ("--latent-dim", estimator.latent_dim)):
        assert f"(default: {value})" in text.split(option, 2)[2][:400], option
    assert f"(default: {','.join(map(str, estimator.hidden_dims))})" in text
    template = default_autoencoder()
    text = _help(capsys, "compare-pca")
    assert f"(default: {template.epochs})" in text and f"(default: {','.join(map(str, template.hidden_dims))})" in text
    dims = inspect.signature(sweep_latent_dims).parameters["dims"].default
    assert f"(default: {','.join(map(str, dims))})" in _help(capsys, "sweep")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("consistency")
    np.save(folder / "x.npy", np.random.default_rng(0).normal(size=(60, 4)))
    assert main(["fit", str(folder / "x.npy"), "-o", str(folder / "model"), "--epochs", "2", "--quiet"]) == 0
    return folder


def test_messages_name_options_not_python_parameters(model, capsys):
    assert main(["fit", str(model / "x.npy"), "-o", str(model / "m0"), "--latent-dim", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "aekit fit: error: --latent-dim must be an int in the range [1, inf). Got 0 instead.\n"
    assert main(["fit", str(model / "x.npy"), "-o", str(model / "m1"), "--val-fraction", "1.5"]) == 2
    assert capsys.readouterr().err.startswith("aekit fit: error: --val-fraction must be")


def test_warnings_are_one_clean_line(model, capsys):
    assert main(["fit", str(model / "x.npy"), "-o", str(model / "m2"), "--latent-dim", "4", "--epochs", "1",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aekit fit: warning: --latent-dim 4 >= n_features=4"), err
    assert ".py" not in err and "UserWarning" not in err


def test_fit_and_score_take_the_same_contamination_range(model, capsys):
    assert main(["fit", str(model / "x.npy"), "-o", str(model / "m3"), "--contamination", "0.7"]) == 2
    fit_error = capsys.readouterr().err.split("error: ", 1)[1]
    assert main(["score", str(model / "model"), str(model / "x.npy"), "-o", str(model / "s.csv"),
                 "--contamination", "0.7"]) == 2
    score_error = capsys.readouterr().err.split("error: ", 1)[1]
    assert fit_error == score_error == "--contamination must be a float in the range (0.0, 0.5]. Got 0.7 instead.\n"
    assert main(["score", str(model / "model"), str(model / "x.npy"), "-o", str(model / "s.csv"),
                 "--contamination", "0.5", "--quiet"]) == 0
