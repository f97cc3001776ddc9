"""Model files bounded by what aekit writes: every array of config.json's score state has the shape and the range of
values a fit can give it, scaler.json and the module description hold nothing else, and scores reach no output as
inf or NaN.

A hostile file is refused at load with one line naming the field; what loads costs what a fitted model costs and
scores every finite row finitely (or says that the row overflows float32).
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import aekit
from aekit import detect, persistence
from aekit.exceptions import InvalidInputError, ModelFileError
from conftest import TINY_FIT, copy_model, write_consistent


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(60, 5)) @ rng.normal(size=(5, 5))


@pytest.fixture(scope="module")
def template(data, tmp_path_factory) -> Path:
    """A saved model with the combined score (its state in config.json) and the standard scaler."""
    folder = tmp_path_factory.mktemp("template") / "model"
    aekit.Autoencoder(latent_dim=2, architecture="mlp", scaler="standard", **TINY_FIT).fit(data).save(folder)
    return folder


def edited(template: Path, where: Path, name: str, edit) -> Path:
    document = json.loads((template / name).read_text())
    edit(document)
    folder = copy_model(template, where)
    write_consistent(folder, name, json.dumps(document, allow_nan=True).encode())
    return folder


def state_of(config: dict) -> dict:
    return config["fitted"]["score_state"]


def modes_of(config: dict) -> dict:
    return state_of(config)["latent_modes"]


def _many_modes(count: int):
    def edit(config):
        modes = modes_of(config)
        rank = len(modes["means"][0])
        modes.update(weights=[1.0 / count] * count, means=[[0.0] * rank] * count, variances=[[1.0] * rank] * count)
    return edit


# ------------------------------------------------------------------------------- the score state, field by field
REFUSED = [
    (_many_modes(detect.LATENT_MODES + 1), r"latent_modes.weights has 6 entries along its modes axis; a fit writes "
                                           r"1 to 5"),
    (_many_modes(200_000), "latent_modes.weights has 200000 entries along its modes axis"),
    (lambda c: modes_of(c).update(variances=[[1e-300] * len(row) for row in modes_of(c)["variances"]]),
     r"latent_modes.variances must be m x r number\(s\) \(2 x 2\) in \[5e-07, 1e\+06\]: it holds values out of"),
    (lambda c: state_of(c).update(feature_scale=[1e-300] * 5), r"score_state.feature_scale must be n number\(s\) "
                                                               r"\(5\) in \[1e-12, 3.4e\+38\]"),
    (lambda c: modes_of(c).update(whitening=[[1e300, 0.0], [0.0, 1e300]]), "latent_modes.whitening must be"),
    (lambda c: state_of(c).update(latent_divisor=1e-320), r"score_state.latent_divisor must be one number\(s\) "
                                                          r"\(\) in \[1e-12, 2\], got 1e-320"),
    (lambda c: state_of(c).update(code_scale="3.0"), "score_state.code_scale must be one number.*got '3.0'"),
    (lambda c: state_of(c).update(latent_divisor=True), "score_state.latent_divisor must be .*got True"),
    (lambda c: state_of(c).update(code_mean=[0.0, 0.0, 0.0]), r"score_state.code_mean must be d number\(s\) \(2\)"),
    (lambda c: state_of(c).update(evil=[1.0]), r"score_state holds unknown keys \['evil'\]"),
    (lambda c: modes_of(c).update(evil=1), "score_state.latent_modes must be an object of exactly"),
    (lambda c: modes_of(c).pop("variances"), "score_state.latent_modes must be an object of exactly"),
    (lambda c: state_of(c).pop("code_mean"), r"score_state lacks \['code_mean'\]"),
    (lambda c: modes_of(c).update(whitening=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
     "latent_modes.whitening has 3 entries along its rank axis; a fit writes 0 to 2"),
    (lambda c: modes_of(c).update(whitening=[[1.0, 0.0], [0.0]]), "latent_modes.whitening .*its rows differ"),
    (lambda c: modes_of(c).update(weights=[0.7, 0.7], means=[[0.0, 0.0]] * 2, variances=[[1.0, 1.0]] * 2),
     "latent_modes.weights sum to more than 1"),
    (lambda c: modes_of(c).update(weights=[0.01]), r"latent_modes.weights must be m number\(s\) \(1\) in \[0.1, 1\]"),
    (lambda c: state_of(c).update(code_scale=1e9), r"score_state.code_scale must be one number\(s\) \(\) in "
                                                   r"\[1e-12, 2\], got 1000000000.0"),
]


@pytest.mark.parametrize(("edit", "pattern"), REFUSED, ids=[
    "6-modes", "200000-modes", "variances-1e-300", "feature-scale-1e-300", "whitening-1e300", "divisor-1e-320",
    "code-scale-text", "divisor-bool", "code-mean-shape", "extra-state-key", "extra-modes-key",
    "missing-modes-key", "missing-state-key", "rank-above-d", "ragged", "weights-above-1", "tiny-weight",
    "code-scale-huge"])
def test_a_score_state_beyond_what_a_fit_writes_is_refused_with_the_field_named(template, tmp_path, edit, pattern):
    folder = edited(template, tmp_path, "config.json", edit)
    with pytest.raises(ModelFileError, match=pattern) as excinfo:
        aekit.load(folder)
    assert str(excinfo.value).startswith("config.json: ") and str(excinfo.value).endswith(persistence.DAMAGED)


def test_the_fitted_state_is_within_its_bounds_and_loads_to_the_same_scores(template, data):
    model = aekit.load(template)
    config = json.loads((template / "config.json").read_text())
    state = persistence.checks.check_score_state(state_of(config), 5, 2)  # what load accepts
    np.testing.assert_array_equal(state.feature_scale, model.score_state_.feature_scale)
    assert np.isfinite(model.outlier_scores(data)).all()


# ------------------------------------------------------------------------------- scaler.json and the module
@pytest.mark.parametrize(("name", "edit", "pattern"), [
    ("scaler.json", lambda s: s.update(evil=1), r"The standard scaler's state holds unknown keys \['evil'\]"),
    ("scaler.json", lambda s: s.update(var_=[-1.0] * 5), "Scaler field 'var_' holds negative values"),
    ("scaler.json", lambda s: s.update(mean_=["1.0"] * 5), "Scaler field 'mean_' must be a list of 5 finite numbers"),
    ("scaler.json", lambda s: s.update(scale_=[True] * 5), "Scaler field 'scale_' must be a list of 5 finite numbers"),
    ("scaler.json", lambda s: s.update(n_features_in=7), "n_features_in must be 5"),
    ("scaler.json", lambda s: s.update(n_samples_seen="60"), "n_samples_seen null or an integer >= 1"),
    ("config.json", lambda c: c["module"].update(activation="tanh"), "the module's activation 'tanh' differs from the "
                                                                     "parameter activation='relu'"),
    ("config.json", lambda c: c["module"].update(hidden_dims=[5]), r"the module's hidden_dims \[5\] differs from the "
                                                                   r"parameter hidden_dims=\[4\]"),
    ("config.json", lambda c: c["fitted"].update(feature_names_in=["a", "a", "b", "c", "d"]),
     "feature_names_in must be null or one distinct string per feature"),
], ids=["scaler-extra-key", "negative-var", "text-mean", "bool-scale", "scaler-features", "text-samples",
        "module-activation", "module-hidden-dims", "repeated-names"])
def test_scaler_and_module_fields_the_docs_refuse_are_refused(template, tmp_path, name, edit, pattern):
    folder = edited(template, tmp_path, name, edit)
    with pytest.raises(ModelFileError, match=pattern):
        aekit.load(folder)


@pytest.mark.parametrize("shape", [["a", "b"], [[[[[[1]]]]]], "deep", [1, 2], [0, 4, 4], [1.5, 2, 2], [1, 2, 2]],
                         ids=["text", "nested", "400-deep", "two-sizes", "zero", "float", "not-5-features"])
def test_an_input_shape_that_is_not_3_sizes_is_refused_at_load(template, tmp_path, shape):
    deep = shape == "deep"  # written as text: json.dumps would recurse that deep
    folder = edited(template, tmp_path, "config.json",
                    lambda c: c["params"].update(input_shape="DEEP" if deep else shape))
    if deep:
        text = (folder / "config.json").read_text().replace('"DEEP"', "[" * 400 + "1" + "]" * 400)
        write_consistent(folder, "config.json", text.encode())
    with pytest.raises(ModelFileError, match="input_shape"):
        aekit.load(folder)


def test_a_model_saved_with_more_threads_than_this_machine_has_loads_and_runs(template, data, tmp_path):
    """n_jobs is this machine's limit when fitting; a model from a bigger machine still loads and scores."""
    folder = edited(template, tmp_path, "config.json", lambda c: c["params"].update(n_jobs=10**6))
    model = aekit.load(folder)
    assert model.n_jobs == 10**6
    np.testing.assert_array_equal(model.outlier_scores(data), aekit.load(template).outlier_scores(data))


# ------------------------------------------------------------------------------- no inf or NaN in an output
@pytest.mark.parametrize("anomaly_score", ["error", "combined"])
def test_a_row_whose_score_overflows_float32_is_an_error_not_an_inf(data, tmp_path, capsys, anomaly_score):
    from aekit.cli import main

    aekit.Autoencoder(latent_dim=2, architecture="mlp", anomaly_score=anomaly_score, **TINY_FIT).fit(data).save(
        tmp_path / "model")
    model = aekit.load(tmp_path / "model")
    rows = data[:3].copy()
    rows[1] = 1e30  # finite, and its squared error overflows float32
    with pytest.raises(InvalidInputError, match=r"1 row\(s\) of X \(first: row 1\).* overflow float32"):
        model.outlier_scores(rows)
    with pytest.raises(InvalidInputError, match=r"1 row\(s\) of X \(first: row 1\).* overflow float32"):
        model.reconstruction_error(rows, per_feature=True)
    with pytest.raises(InvalidInputError, match="overflow float32"):
        model.predict(rows)
    np.savetxt(tmp_path / "rows.csv", rows, delimiter=",", header="a,b,c,d,e", comments="")
    assert main(["score", str(tmp_path / "model"), str(tmp_path / "rows.csv"), "-o", str(tmp_path / "s.csv")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "overflow float32" in error, error
    assert not (tmp_path / "s.csv").exists()


# ------------------------------------------------------------------------------- every array, every size (fuzz)
def _array_positions(config: dict) -> list[tuple]:
    """Every list in config.json (the score state's arrays, their rows, quantiles, sizes), by its path."""
    positions = []

    def walk(value, path):
        if isinstance(value, list):
            positions.append(path)
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in items:
            if isinstance(child, (dict, list)):
                walk(child, (*path, key))

    walk(config, ())
    return positions


NUMBERS = (st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 1.0, -1.0, 1e-320, 1e-300, 1e300,
                                                                             3.5e38, 1e-12, 0.1, 2**31])
           | st.integers(-(2**40), 2**40) | st.booleans() | st.sampled_from(["1.0", None]))
SIZES = st.integers(0, 12) | st.sampled_from([detect.LATENT_MODES + 1, 256, 257, 5000, 200_000])


@given(choice=st.data())
def test_any_array_of_config_json_of_any_size_loads_to_finite_scores_or_is_refused(template, data, choice):
    config = json.loads((template / "config.json").read_text())
    position = choice.draw(st.sampled_from(_array_positions(config)), label="array")
    size = choice.draw(SIZES, label="size")
    like = config
    for step in position:
        like = like[step]
    if like and isinstance(like[0], list) and choice.draw(st.booleans(), label="rows"):  # a matrix: its rows' size
        row = choice.draw(st.lists(NUMBERS, min_size=min(size, 12), max_size=min(size, 12)), label="row")
        new = [row] * min(size, 5000)
    else:
        fill = choice.draw(st.lists(NUMBERS, min_size=1, max_size=3), label="fill")
        new = [fill[i % len(fill)] for i in range(size)]
    hostile = copy.deepcopy(config)
    parent = hostile
    for step in position[:-1]:
        parent = parent[step]
    if position:
        parent[position[-1]] = new
    with tempfile.TemporaryDirectory() as where:
        folder = copy_model(template, Path(where))
        write_consistent(folder, "config.json", json.dumps(hostile, allow_nan=True).encode())
        try:
            model = aekit.load(folder)
        except ModelFileError as error:
            assert "\n" not in str(error).strip()
            event("refused at load")  # counted by `pytest --hypothesis-show-statistics`
            return
        try:
            scores = model.outlier_scores(data)
        except InvalidInputError as error:
            assert "overflow float32" in str(error) or "too large for float32" in str(error)
            event("loaded, rows reported as overflowing")
            return
        assert np.isfinite(scores).all() and set(np.unique(model.predict(data))) <= {-1, 1}
        event("loaded, finite scores")


@given(choice=st.data())
def test_any_score_state_within_the_bounds_scores_finitely(template, data, choice):
    """Values anywhere in the accepted ranges (the extremes included): scores are finite or the row is named."""
    config = json.loads((template / "config.json").read_text())
    fields = persistence.checks._score_state_fields(2)
    state, modes = state_of(config), modes_of(config)
    for table, target in ((fields, state), (persistence.checks.LATENT_MODES_FIELDS, modes)):
        for name, (_, low, high) in table.items():
            if name == "weights" or name not in target:
                continue
            value = st.sampled_from([low, high, 1.0 if low <= 1.0 <= high else low]) | st.floats(low, high)
            if isinstance(target[name], list):
                rows = target[name] if isinstance(target[name][0], list) else [target[name]]
                drawn = [[choice.draw(value) for _ in row] for row in rows]
                target[name] = drawn if isinstance(target[name][0], list) else drawn[0]
            else:
                target[name] = choice.draw(value)
    with tempfile.TemporaryDirectory() as where:
        folder = copy_model(template, Path(where))
        write_consistent(folder, "config.json", json.dumps(config).encode())
        model = aekit.load(folder)
        try:
            scores = model.outlier_scores(data)
        except InvalidInputError as error:
            assert "overflow float32" in str(error)
            event("rows reported as overflowing")
            return
        assert np.isfinite(scores).all()
        event("finite scores")
