"""Bad input to the estimator, tried systematically: a correct result or aekit's own error, nothing else.

Hypothesis draws arrays of any shape and dtype (NaN, inf, huge and tiny values, constant columns,
0 or 1 rows, 0 columns), DataFrames with any column names and column kinds, and learning rates
and magnitudes that diverge. The rules checked:

- integer, bool and float16 data just work, exactly as the same values in float64;
- finite data with 2+ rows and 1+ columns trains (with a scaler), and gives finite codes;
- anything else raises an ``AekitError`` whose one-line message names the problem;
- training never returns NaN codes: it raises ``TrainingError`` instead.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aekit import Autoencoder
from aekit.exceptions import AekitError, InvalidInputError, InvalidParameterValue, TrainingError
from conftest import TINY_FIT

SMALLEST_FIT = {**TINY_FIT, "hidden_dims": (3,), "batch_size": 8}
DTYPES = st.sampled_from(
    [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64, np.bool_]
)
EDGE_FLOATS = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-300, -1e-45, 1e-8, 3e38, -3e38, 1e300, np.nan, np.inf, -np.inf])


def fit_quietly(X, **params) -> Autoencoder:
    """Fit with warnings (overcomplete, identical rows) silenced: they are tested on their own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Autoencoder(**{"latent_dim": 1, **SMALLEST_FIT, **params}).fit(X)


def assert_clear_error(error: Exception) -> None:
    message = str(error)
    assert isinstance(error, AekitError), f"{type(error).__name__} is not an aekit error: {message}"
    assert message and "\n" not in message.strip(), f"not one line: {message!r}"
    assert len(message) < 600, f"too long ({len(message)} characters): {message[:200]}..."


def fit_outcome(X, **params) -> Autoencoder | None:
    """The fitted model (then checked: finite codes of the right shape), or None after a clear error."""
    try:
        model = fit_quietly(X, **params)
    except AekitError as error:
        assert_clear_error(error)
        return None
    codes = model.transform(X)
    assert codes.shape == (len(X), 1) and codes.dtype == np.float32 and np.isfinite(codes).all()
    assert np.isfinite(model.history_["train_loss"]).all()
    return model


# ------------------------------------------------------------------------------------------ arrays
@st.composite
def arrays_of_any_kind(draw):
    dtype = np.dtype(draw(DTYPES))
    shape = draw(st.tuples(st.integers(0, 6), st.integers(0, 4)))
    if dtype.kind == "f":
        elements = st.floats(width=8 * dtype.itemsize, allow_nan=True, allow_infinity=True) | EDGE_FLOATS.map(
            lambda value: np.array(value).astype(dtype).item())
    else:
        elements = None
    return draw(hnp.arrays(dtype, shape, elements=elements))


@given(X=arrays_of_any_kind(), scaler=st.sampled_from(["standard", "minmax", None]))
# a missing cell makes it a table model, whose scaling overflowed without a word and left no score to threshold
@example(X=np.array([[0.0], [0.0], [0.0], [0.0], [1.4990385e154], [np.nan]]), scaler="standard")
def test_any_array_trains_or_gives_a_clear_error(X, scaler):
    with np.errstate(all="ignore"):
        finite = X.size == 0 or bool(np.isfinite(X.astype(np.float64)).all())
    model = fit_outcome(X, scaler=scaler)
    with np.errstate(all="ignore"):
        spreads = np.ptp(X.astype(np.float64), axis=0) if finite and X.size else np.zeros(0)
    # float32 cannot divide by a spread below ~1e-38; a variance (a square) overflows float64 beyond ~1e154
    largest = np.abs(X.astype(np.float64)).max() if finite and X.size else 0.0
    resolvable = bool(np.all((spreads == 0) | (spreads > 1e-30))) and largest < 1e150
    if scaler is not None and finite and resolvable and X.shape[0] >= 2 and X.shape[1] >= 1:
        assert model is not None, "finite data with 2+ rows must train under a scaler"
    with np.errstate(all="ignore"):
        infinite = X.size > 0 and bool(np.isinf(X.astype(np.float64)).any())
    if infinite or X.shape[0] < 2 or X.shape[1] < 1:  # NaN alone is a missing cell: a table model may train
        assert model is None


@given(
    X=hnp.arrays(np.int64, st.tuples(st.integers(2, 8), st.integers(1, 4)), elements=st.integers(-1000, 1000)),
    dtype=st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.float16, np.bool_]),
)
def test_integer_bool_and_float16_data_give_exactly_what_float64_gives(X, dtype):
    with np.errstate(all="ignore"):
        X = X.astype(dtype)
    reference = fit_quietly(X.astype(np.float64))
    model = fit_quietly(X)
    for name, tensor in reference.module_.state_dict().items():
        assert torch.equal(model.module_.state_dict()[name], tensor), name
    np.testing.assert_array_equal(model.transform(X), reference.transform(X.astype(np.float64)))


@given(
    n_rows=st.integers(2, 12),
    constant=st.floats(-1e6, 1e6),
    free=hnp.arrays(np.float64, st.tuples(st.just(12), st.integers(1, 3)), elements=st.floats(-100, 100)),
)
def test_constant_columns_just_work_and_reconstruct_their_value(n_rows, constant, free):
    """Every scaler maps a constant column to one finite value (StandardScaler: 0, scale 1; the shared scale: its
    place in the table's range), and inverse_transform brings the constant back."""
    X = np.column_stack([free[:n_rows], np.full(n_rows, constant)])
    model = fit_outcome(X)
    assert model is not None
    scaled = model.scaler_.transform(X)
    assert np.isfinite(scaled).all() and np.ptp(scaled[:, -1]) == 0
    np.testing.assert_allclose(model.scaler_.inverse_transform(scaled)[:, -1], constant, rtol=1e-9, atol=1e-6)
    reconstruction = model.reconstruct(X)
    assert np.isfinite(reconstruction).all() and reconstruction.shape == X.shape


def test_a_single_repeated_row_warns_and_gives_one_code_for_all():
    X = np.repeat([[3.0, -2.0, 1e4]], 40, axis=0)
    with pytest.warns(UserWarning, match="All 40 rows of X are identical: there is nothing to learn"):
        model = Autoencoder(latent_dim=1, **SMALLEST_FIT).fit(X)
    codes, errors = model.transform(X), model.reconstruction_error(X)
    assert np.isfinite(codes).all() and np.all(codes == codes[0])
    assert np.isfinite(errors).all() and np.all(errors == errors[0])


@pytest.mark.parametrize(
    ("X", "pattern"),
    [
        (np.ones((4, 2), dtype=complex), r"^Complex data not supported: aekit needs real numbers\. Pass X\.real"),
        (np.array([["a", "b"], ["c", "d"]]), r"could not convert string to float: .*drop or encode text columns"),
        (np.array([[1, "x"], [2, "y"]], dtype=object), r"could not convert string .*OneHotEncoder"),
        ([[1.0, 2.0], [3.0]], r"inhomogeneous .*every row the same length"),
        (np.ones((3, 2, 2)), r"Found array with dim 3"),
        (np.empty((5, 0)), r"0 feature\(s\) \(shape=\(5, 0\)\)"),
        (None, r"Expected 2D array, got scalar array instead: .*reshape\(-1, 1\)"),
        (scipy.sparse.random(6, 3, density=0.5, format="csr", random_state=0), r"Sparse data .*\.toarray\(\)"),
    ],
    ids=["complex", "strings", "object-mixed", "ragged-rows", "3-d", "no-columns", "none", "sparse"],
)
def test_unusable_arrays_name_the_problem_and_the_fix(X, pattern):
    with pytest.raises(InvalidInputError, match=pattern) as excinfo:
        fit_quietly(X)
    assert_clear_error(excinfo.value)


# ------------------------------------------------------------------------------------------ DataFrames
COLUMN_KINDS = ("float", "int", "bool", "Int64", "Int64-with-NA", "text", "number-text", "category", "datetime",
                "timedelta", "float-with-NaN")
PLAIN_KINDS = {"float", "int", "Int64", "number-text"}


def make_column(kind: str, n_rows: int, rng: np.random.Generator):
    values = rng.normal(size=n_rows)
    return {
        "float": values,
        "int": rng.integers(-5, 5, n_rows),
        "bool": values > 0,
        "Int64": pd.array(rng.integers(0, 9, n_rows), dtype="Int64"),
        "Int64-with-NA": pd.array([None, *rng.integers(0, 9, n_rows - 1)], dtype="Int64"),
        "text": np.array(["x", "y"] * n_rows, dtype=object)[:n_rows],
        "number-text": np.array([f"{v:.3f}" for v in values], dtype=object),
        "category": pd.Categorical(["a", "b"] * n_rows)[:n_rows],
        "datetime": pd.date_range("2020-01-01", periods=n_rows),
        "timedelta": pd.to_timedelta(np.arange(n_rows), unit="s"),
        "float-with-NaN": np.r_[np.nan, values[1:]],
    }[kind]


NAMES = st.text(min_size=0, max_size=6) | st.sampled_from(["é", "日本", "🙂", "a b", "", "a", "0"])


@given(
    kinds=st.lists(st.sampled_from(COLUMN_KINDS), min_size=1, max_size=4),
    names=st.lists(NAMES, min_size=4, max_size=4),
    n_rows=st.integers(2, 10),
)
@example(kinds=["float", "float"], names=["\n", "\n", "", ""], n_rows=2)  # a repeated name must not break the line
def test_any_dataframe_trains_or_names_the_column_at_fault(kinds, names, n_rows):
    rng = np.random.default_rng(0)
    names = names[: len(kinds)]
    frame = pd.DataFrame({j: make_column(kind, n_rows, rng) for j, kind in enumerate(kinds)})
    frame.columns = names
    unique_names = len(set(names)) == len(names)
    model = fit_outcome(frame)
    if not unique_names or set(kinds) <= {"datetime", "timedelta"}:  # nothing left to learn from
        assert model is None
        return
    assert model is not None
    assert list(model.feature_names_in_) == names
    if set(kinds) <= PLAIN_KINDS:  # a complete table of numbers trains as an array
        assert getattr(model, "table_", None) is None
        np.testing.assert_array_equal(model.transform(frame), model.transform(frame.to_numpy(dtype=np.float64)))
    else:  # categorical, left-out or gappy columns: the table's encoding
        assert model.table_.plan.columns == names
        assert np.isfinite(model.transform(frame)).all()


@pytest.mark.parametrize(
    ("frame", "pattern"),
    [
        (pd.DataFrame({"when": pd.date_range("2020", periods=4)}),
         r"No column of X is left to learn from \(0 numeric; left out: when \(date/time\)\)"),
        (pd.DataFrame(np.ones((3, 2)), columns=["a", "a"]), r"The table's column names repeat \('a'\)"),
        (pd.DataFrame([[1.0, "x"], [2.0, "y"]], columns=["a", "a"]), r"The table's column names repeat \('a'\)"),
        (pd.DataFrame(np.ones((3, 2)), columns=["a", 1]), "Feature names are only supported if all input features"),
    ],
    ids=["datetime-only", "duplicated-names", "duplicated-names-text", "mixed-name-types"],
)
def test_dataframe_problems_name_the_column_and_the_fix(frame, pattern):
    with pytest.raises(InvalidInputError, match=pattern) as excinfo:
        fit_quietly(frame)
    assert_clear_error(excinfo.value)


def test_type_errors_stay_type_errors_for_scikit_learn_callers():
    X = scipy.sparse.random(6, 3, density=0.5, format="csr", random_state=0)
    with pytest.raises(TypeError, match=r"Sparse data .*\.toarray\(\)") as excinfo:
        fit_quietly(X)
    assert isinstance(excinfo.value, InvalidInputError)


def test_unicode_column_names_are_kept():
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(8, 3)), columns=["é", "日本", "🙂"])
    model = fit_quietly(frame)
    assert list(model.feature_names_in_) == ["é", "日本", "🙂"]
    with pytest.raises(InvalidInputError, match="Feature names unseen at fit time"):
        model.transform(frame.rename(columns={"é": "e"}))


# ------------------------------------------------------------------------------------------ divergence
@given(
    log_lr=st.floats(-6, 12),
    log_scale=st.floats(-30, 37),
    scaler=st.sampled_from(["standard", None]),
)
def test_any_learning_rate_and_magnitude_trains_or_reports_instead_of_nan(log_lr, log_scale, scaler):
    X = np.random.default_rng(0).normal(size=(24, 3)) * 10.0**log_scale
    model = fit_outcome(X, lr=10.0**log_lr, scaler=scaler, epochs=3)
    if model is not None:  # trained: the weights are usable, nothing is NaN
        assert all(torch.isfinite(p).all() for p in model.module_.parameters())


def test_diverging_learning_rate_is_reported_and_leaves_no_half_fitted_model():
    model = Autoencoder(latent_dim=1, **{**SMALLEST_FIT, "lr": 1e8})
    with pytest.raises(TrainingError, match=r"The training loss became (nan|inf) at epoch 1\. Try a lower learning"
                                            r".* The fit failed: no model was fitted or saved\.$"):
        model.fit(np.random.default_rng(0).normal(size=(64, 4)))
    assert not hasattr(model, "module_") and not hasattr(model, "threshold_")  # nothing half-trained is left


def test_values_beyond_float32_train_under_a_scaler_and_are_refused_without_one():
    X = np.array([[1.0, 3.5e38], [2.0, -3.5e38], [1.0, 0.0]])  # float32 tops out at 3.4e38
    assert fit_outcome(X) is not None  # scaled in float64 first: fine
    with pytest.raises(InvalidInputError, match=r"too large for float32 after scaling \(scaler=None\)"):
        fit_quietly(X, scaler=None)


# ------------------------------------------------------------------------------------------ inference
@pytest.fixture(scope="module")
def fitted() -> Autoencoder:
    return fit_quietly(np.random.default_rng(0).normal(size=(40, 3)), epochs=3)


@given(X=arrays_of_any_kind())
def test_inference_on_any_array_gives_finite_codes_or_a_clear_error(fitted, X):
    with np.errstate(all="ignore"):
        finite = X.size == 0 or bool(np.isfinite(X.astype(np.float64)).all())
        # values that must score without error: the outlier score's squared errors are float32, which
        # overflow from about 1.8e19 (the fitted data's scale is ~1); a margin of 1e4 for the model's weights
        small = finite and (X.size == 0 or np.abs(X.astype(np.float64)).max() < 1e15)
    for method in (fitted.transform, fitted.reconstruct, fitted.reconstruction_error, fitted.predict):
        try:
            result = method(X)
        except AekitError as error:
            assert_clear_error(error)
            assert not (small and X.ndim == 2 and X.shape[0] >= 1 and X.shape[1] == 3), str(error)
            continue
        assert X.shape[0] >= 1 and X.shape[1] == 3 and finite
        assert not np.isnan(result).any()


def test_inference_that_overflows_is_reported_not_returned():
    model = fit_quietly(np.random.default_rng(0).normal(size=(40, 3)), scaler=None, architecture="mlp")
    with torch.no_grad():
        model.module_.encoder[0].weight.fill_(1e30)  # huge but finite weights: 1e10 inputs overflow
    with pytest.raises(InvalidInputError, match=r"NaN or infinite values for 1 row\(s\) of X \(first: row 1\)"):
        model.transform(np.array([[0.0, 0.0, 0.0], [1e10, 1e10, 1e10]]))


@given(log_scale=st.floats(-45, 38), latent=st.integers(1, 2))
def test_inverse_transform_of_any_codes_is_finite_or_reported(fitted, log_scale, latent):
    Z = np.full((2, latent), 10.0**log_scale, dtype=np.float64)
    try:
        result = fitted.inverse_transform(Z)
    except AekitError as error:
        assert_clear_error(error)
        return
    assert latent == fitted.module_.latent_dim and np.isfinite(result).all()


# ------------------------------------------------------------------------------- parameters that cannot work
@pytest.mark.parametrize(("params", "pattern"), [
    ({"latent_dim": True}, r"The 'latent_dim' parameter of Autoencoder must be an int, not a bool\. Got True instead"),
    ({"epochs": True}, "The 'epochs' parameter of Autoencoder must be an int, not a bool"),
    ({"hidden_dims": (), "architecture": "anchored"}, r"must hold at least one width for architecture='anchored'"),
    ({"hidden_dims": (), "architecture": "conv", "input_shape": (1, 2, 3)}, "at least one width for architecture="
                                                                            "'conv'"),
    ({"input_shape": ["a", "b"]}, r"The 'input_shape' parameter of Autoencoder must be None or 3 ints >= 1, "
                                  r"\(channels, height, width\)\. Got \['a', 'b'\] instead"),
    ({"input_shape": (1, 2, 3, 4)}, "'input_shape' parameter .* Got \\(1, 2, 3, 4\\)"),
    ({"input_shape": [[[[1]]]]}, "'input_shape' parameter .* Got a list holding lists instead"),
    ({"n_jobs": 100_000}, r"n_jobs=100000 asks for more threads than this machine can run usefully: it has \d+ cores"),
    ({"hidden_dims": (1_000_000_000,), "architecture": "mlp"},
     r"The model is too large for this machine: hidden_dims \(1000000000,\) and latent_dim 2 on 6 features give "
     r"the mlp model 1\d,\d{3},\d{3},\d{3} parameters, and training "
     r"them needs \d+ GiB .* where this machine has [\d.]+ GiB free\. Choose smaller widths"),
    ({"latent_dim": 10**12, "architecture": "mlp"}, r"too large for this machine: hidden_dims \(3,\) and latent_dim "
                                                     r"1000000000000 on 6 features"),
    ({"input_shape": (1, 2, 2), "architecture": "mlp"}, r"input_shape=\(1, 2, 2\) holds 4 values per image, but the "
                                                        r"rows have 6 features"),
], ids=["latent-dim-bool", "epochs-bool", "no-hidden-anchored", "no-hidden-conv", "input-shape-text",
        "input-shape-4", "input-shape-nested", "threads-100000", "hidden-1e9", "latent-1e12", "input-shape-mlp"])
def test_parameters_that_cannot_work_are_refused_before_any_work(params, pattern):
    X = np.random.default_rng(0).normal(size=(30, 6))
    with pytest.raises(InvalidParameterValue, match=pattern):
        Autoencoder(**{**SMALLEST_FIT, "latent_dim": 2, **params}).fit(X)


def test_the_mlp_without_hidden_layers_still_means_one_linear_map_each_way():
    X = np.random.default_rng(0).normal(size=(30, 6))
    model = fit_quietly(X, hidden_dims=(), architecture="mlp", latent_dim=2)
    assert model.transform(X).shape == (30, 2)


@pytest.mark.parametrize(("argv", "pattern"), [
    (["--threads", "100000"], r"--threads 100000 asks for more threads than this machine can run usefully"),
    (["--hidden", "1000000000", "--architecture", "mlp"],
     r"The model is too large for this machine: --hidden \(1000000000,\) on 6 features give the mlp model "),
], ids=["threads", "hidden"])
def test_the_cli_refuses_them_in_one_line(tmp_path, capsys, argv, pattern):
    import re

    from aekit.cli import main

    np.savetxt(tmp_path / "X.csv", np.random.default_rng(0).normal(size=(30, 6)), delimiter=",",
               header="a,b,c,d,e,f", comments="")
    code = main(["fit", str(tmp_path / "X.csv"), "-o", str(tmp_path / "model"), "--epochs", "1", *argv])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and re.search(pattern, error), error
    assert not (tmp_path / "model").exists()


# ------------------------------------------------------------------------------- messages
def test_inverse_transform_of_pandas_codes_is_quiet(recwarn):
    X = np.random.default_rng(0).normal(size=(30, 6))
    model = fit_quietly(X, latent_dim=2)
    model.set_output(transform="pandas")
    codes = model.transform(X)
    recwarn.clear()
    restored = model.inverse_transform(codes)
    assert restored.shape == (30, 6) and not [str(w.message) for w in recwarn]


@pytest.mark.parametrize("scaler", ["standard", "minmax"])
def test_data_beyond_float32_after_scaling_advises_what_this_model_can_use(scaler):
    X = np.random.default_rng(0).normal(size=(30, 6)) * 1e-3  # scaling multiplies by hundreds
    model = fit_quietly(X, latent_dim=2, scaler=scaler)
    with pytest.raises(InvalidInputError, match="too large for float32 after scaling") as excinfo:
        model.transform(np.full((2, 6), 3e38))
    advice = str(excinfo.value).split(";")[-1]  # the fix, after the problem
    assert ("scaler='standard'" in advice) == (scaler != "standard"), advice


def test_a_column_missing_in_every_row_is_not_reported_as_one_missing_value(tmp_path, capsys):
    from aekit.cli import main

    X = np.random.default_rng(0).normal(size=(40, 4))
    X[:, 2] = np.nan
    pd.DataFrame(X, columns=list("abcd")).to_csv(tmp_path / "X.csv", index=False)
    assert main(["fit", str(tmp_path / "X.csv"), "-o", str(tmp_path / "model"), "--epochs", "1"]) == 2
    error = capsys.readouterr().err
    assert "Column 'c' has no value in any row" in error and "1 missing" not in error, error
    with pytest.raises(InvalidInputError, match=r"Column 'c' .* 40 missing or infinite value\(s\) .* among rows 0 to "
                                                r"39, first at row 0"):
        from aekit.data.readers import read_data

        read_data(tmp_path / "X.csv")
