"""Errors carry data: the parameter at fault, the value it got, the problem and the hint, as fields."""

import numpy as np
import pytest

import aekit
from aekit.exceptions import InvalidInputError, InvalidParameterValue, TrainingError
from aekit.workflows import fit_file

TINY = {"hidden_dims": (4,), "epochs": 2, "batch_size": 16, "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def rows():
    return np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)


def test_a_parameter_error_names_the_parameter_and_its_value(rows):
    with pytest.raises(InvalidParameterValue) as caught:
        aekit.Autoencoder(latent_dim=0, **TINY).fit(rows)
    assert (caught.value.param, caught.value.value, caught.value.hint) == ("latent_dim", 0, None)
    assert str(caught.value) == ("The 'latent_dim' parameter of Autoencoder must be an int in the range [1, inf) or a "
                                 "str among {'auto'}. Got 0 instead.")
    with pytest.raises(InvalidParameterValue) as caught:  # the first at fault in scikit-learn's order, with a hint
        aekit.Autoencoder(activation="rellu", scaler="minmx", **TINY).fit(rows)
    assert (caught.value.param, caught.value.value, caught.value.hint) == ("activation", "rellu",
                                                                           "Did you mean 'relu'?")


def test_a_diverging_fit_keeps_the_loops_problem_and_hint_and_adds_its_own(rows):
    with pytest.raises(TrainingError) as caught:
        aekit.Autoencoder(latent_dim=1, scaler="minmax", **{**TINY, "lr": 1e8}).fit(rows * 1e3)
    error, loop_error = caught.value, caught.value.__cause__
    assert isinstance(loop_error, TrainingError) and loop_error.problem == error.problem
    assert error.problem.startswith("The training loss became") and (error.param, error.value) == ("lr", 1e8)
    assert error.hint == f"{loop_error.hint} Scaling the data (scaler='standard') may also help."
    assert str(error) == f"{error.problem} {error.hint} The fit failed: no model was fitted or saved."


def test_an_existing_model_folder_is_refused_in_the_callers_parameter(rows, tmp_path):
    model = aekit.Autoencoder(latent_dim=1, **TINY).fit(rows)
    model.save(tmp_path / "model")
    with pytest.raises(InvalidInputError) as caught:
        model.save(tmp_path / "model")
    assert (caught.value.param, caught.value.value) == ("overwrite", False)
    assert caught.value.problem == f"Model folder {tmp_path / 'model'} already exists."
    np.save(tmp_path / "rows.npy", rows)
    with pytest.raises(InvalidInputError) as caught:  # fit_file's parameter is overwrite too, as every writer's
        fit_file(tmp_path / "rows.npy", tmp_path / "model", latent_dim=1, **TINY)
    assert (caught.value.param, caught.value.value) == ("overwrite", False)
    assert str(caught.value) == (f"Model folder {tmp_path / 'model'} already exists. Pass overwrite=True "
                                 "to replace it, or choose another output path.")


@pytest.mark.parametrize("name", sorted(aekit.Autoencoder._parameter_constraints))
def test_a_parameter_message_is_scikit_learns_own(name, rows):
    from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

    value = object()  # satisfies no constraint
    with pytest.raises(InvalidParameterError) as reference:
        validate_parameter_constraints(aekit.Autoencoder._parameter_constraints, {name: value}, "Autoencoder")
    with pytest.raises(InvalidParameterValue) as caught:
        aekit.Autoencoder(**{name: value}).fit(rows)
    assert str(caught.value) == str(reference.value)
    assert (caught.value.param, caught.value.value) == (name, value)


def test_the_command_line_names_its_options_where_a_message_names_parameters():
    from aekit.cli import build_parser, spelling
    from aekit.exceptions import Parameter, Setting, Words

    message = Words(Parameter("validation_fraction", of="Autoencoder"), " must be < 1. Use ", Setting("scaler", None),
                    ", ", Setting("hidden_dims", (8, 4)), ", ", Setting("overwrite", True), ", ",
                    Setting("resume", False), " or ", Setting("input_shape", (1, 2, 2)), ".")
    assert str(message) == ("The 'validation_fraction' parameter of Autoencoder must be < 1. Use scaler=None, "
                            "hidden_dims=(8, 4), overwrite=True, resume=False or input_shape=(1, 2, 2).")
    parser = build_parser()
    assert message.spelled(spelling(parser, "fit")) == (  # resume=False and input_shape have no option
        "--val-fraction must be < 1. Use --scaler none, --hidden 8,4, --force, resume=False or input_shape=(1, 2, 2).")
    assert message.spelled(spelling(parser, "info")) == str(message)  # info has none of these options


def test_every_parameter_the_command_line_renames_has_its_option():
    from aekit.cli import build_parser
    from aekit.cli.fit import OPTION_PARAMETERS
    from aekit.cli.options import OPTION_DESTS, option_dest

    parser = build_parser()
    dests = {action.dest for command in parser.commands.values() for action in command._actions}
    assert set(OPTION_DESTS.values()) <= dests
    fit_dests = {action.dest for action in parser.commands["fit"]._actions}
    assert {option_dest(name) for name in OPTION_PARAMETERS} <= fit_dests
    assert set(OPTION_PARAMETERS) <= set(aekit.Autoencoder().get_params())
