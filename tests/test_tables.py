"""aekit.tables: column types decided once, and a table's encoding (categories, missing cells) and its inverse."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from aekit.exceptions import InvalidInputError, InvalidParameterValue, ModelFileError
from aekit.imputation import LinearFill
from aekit.preprocess import SharedScaler
from aekit.tables import MAX_CATEGORIES, OTHER, TableEncoder, category_weights, needs_table, plan_columns


@pytest.fixture(scope="module")
def census():
    """A small mixed table: an id, a date, two numbers (one with gaps), text, a boolean, a category."""
    rng = np.random.default_rng(0)
    n = 40
    mass = rng.normal(4000, 500, n)
    mass[[3, 7]] = np.nan
    sex = np.array(["male", "female"] * (n // 2), dtype=object)
    sex[5] = None
    return pd.DataFrame({
        "id": rng.permutation(n) + 100,
        "day": [f"2024-05-{1 + i % 28:02d}" for i in range(n)],
        "mass": mass,
        "length": rng.normal(40, 5, n),
        "species": rng.choice(["Adelie", "Gentoo", "Chinstrap"], n),
        "tagged": rng.random(n) > 0.5,
        "island": pd.Categorical(rng.choice(["Dream", "Biscoe"], n)),
        "sex": sex,
    })


def test_plan_types_each_column_by_its_rule(census):
    plan = plan_columns(census)
    assert plan.numeric == ["mass", "length"]
    assert plan.categorical == ["species", "tagged", "island", "sex"]
    assert plan.excluded == {"id": "identifier", "day": "date/time"}
    assert plan.kept == ["mass", "length", "species", "tagged", "island", "sex"]
    assert plan.summary() == ("2 numeric, 4 categorical (species, tagged, island, sex); left out: id (identifier), "
                              "day (date/time)")


def test_plan_follows_the_callers_lists(census):
    plan = plan_columns(census, categorical=["length"], exclude=["sex"])
    assert plan.numeric == ["mass"] and "length" in plan.categorical
    assert plan.excluded["sex"] == "excluded"
    with pytest.raises(InvalidParameterValue, match="names columns the table lacks: height"):
        plan_columns(census, categorical=["height"])
    with pytest.raises(InvalidParameterValue, match="Columns to exclude that the table lacks: height"):
        plan_columns(census, exclude=["height"])


def test_few_rows_are_no_identifier_and_numbers_as_text_are_numeric():
    frame = pd.DataFrame({"n": [1, 2, 3], "code": ["a", "b", "c"], "text_number": ["1.5", "2", None]})
    plan = plan_columns(frame)
    assert plan.numeric == ["n", "text_number"] and plan.categorical == ["code"] and not plan.excluded


def test_needs_table_only_for_what_an_array_cannot_say(census):
    assert needs_table(census)
    assert not needs_table(pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]}))
    assert needs_table(pd.DataFrame({"a": [1.0, np.nan], "b": [3, 4]}))
    assert needs_table(np.array([[1.0, np.nan], [2.0, 3.0]]))
    assert not needs_table(np.ones((3, 2)))
    assert needs_table(np.ones((3, 2)), categorical=["x0"])


def test_category_weight_is_one_over_the_entropy():
    p = np.array([0.5, 0.25, 0.25])
    assert category_weights(p) == pytest.approx(1 / (-(p * np.log(p)).sum()), rel=1e-12)
    assert np.isfinite(category_weights(np.array([1.0])))  # a constant column: the entropy's floor


def test_encoding_scales_numbers_one_hots_categories_and_keeps_gaps(census):
    plan = plan_columns(census)
    encoder = TableEncoder.fit(census, plan, "standard")
    encoded = encoder.encode(census)
    layout = {name: (start, stop) for name, start, stop in encoder.layout()}
    # numeric columns: scikit-learn's StandardScaler, which leaves NaN out of its statistics
    reference = StandardScaler().fit_transform(census[["mass", "length"]])
    np.testing.assert_allclose(encoded[:, [layout["mass"][0], layout["length"][0]]], reference, rtol=1e-5, atol=1e-6)
    start, stop = layout["species"]
    assert encoder.categories["species"] == list(census["species"].value_counts().index)
    dummies = encoded[:, start:stop]
    np.testing.assert_array_equal(dummies.sum(axis=1), 1.0)
    chosen = np.asarray(encoder.categories["species"], dtype=object)[dummies.argmax(axis=1)]
    np.testing.assert_array_equal(chosen, census["species"].to_numpy())
    start, stop = layout["sex"]
    assert np.isnan(encoded[5, start:stop]).all() and not np.isnan(np.delete(encoded[:, start:stop], 5, 0)).any()
    assert encoder.categories["tagged"] == sorted(encoder.categories["tagged"], key=lambda c: -(
        census["tagged"].astype(str) == c).sum())


def test_decode_inverts_the_encoding(census):
    encoder = TableEncoder.fit(census, plan_columns(census), "minmax")
    decoded = encoder.decode(np.nan_to_num(encoder.encode(census), nan=0.0), index=census.index)
    assert list(decoded.columns) == encoder.columns
    observed = census["mass"].notna()
    np.testing.assert_allclose(decoded.loc[observed, "mass"], census.loc[observed, "mass"], rtol=1e-5)
    assert (decoded["species"] == census["species"]).all()
    assert (decoded["island"] == census["island"].astype(str)).all()


def test_rare_categories_pool_in_other_and_unseen_ones_are_marked():
    values = [f"c{i}" for i in range(MAX_CATEGORIES + 10)] * 2 + ["c0"] * 20
    frame = pd.DataFrame({"kind": values, "x": np.arange(len(values), dtype=float) % 7})
    encoder = TableEncoder.fit(frame, plan_columns(frame), "standard")
    assert len(encoder.categories["kind"]) == MAX_CATEGORIES and encoder.categories["kind"][-1] == OTHER
    assert encoder.categories["kind"][0] == "c0"
    encoded = encoder.encode(pd.DataFrame({"kind": [f"c{MAX_CATEGORIES + 5}", "never"], "x": [1.0, 2.0]}))
    assert encoded[:, MAX_CATEGORIES - 1].tolist() == [1.0, 1.0]  # rare and unseen both go to OTHER

    small = pd.DataFrame({"kind": ["a", "b"] * 10, "x": np.arange(20.0)})
    encoder = TableEncoder.fit(small, plan_columns(small), "standard")
    new = pd.DataFrame({"kind": ["a", "zebra", None], "x": [1.0, 2.0, 3.0]})
    encoded = encoder.encode(new)
    assert encoded[1, :2].tolist() == [0.0, 0.0]  # unseen: no category, observed
    assert np.isnan(encoded[2, :2]).all()  # missing
    assert encoder.unseen(new)["kind"].tolist() == [None, "zebra", None]
    assert encoder.unseen_penalty() == pytest.approx(np.log(21))


def test_state_round_trip_and_corruption(census):
    encoder = TableEncoder.fit(census, plan_columns(census), "standard")
    again = TableEncoder.from_dict(encoder.to_dict())
    np.testing.assert_array_equal(again.encode(census), encoder.encode(census))
    state = encoder.to_dict()
    state["weights"].pop("species")
    with pytest.raises(ModelFileError, match="disagree"):
        TableEncoder.from_dict(state)


def test_bad_tables_name_the_column():
    frame = pd.DataFrame({"a": [1.0, np.inf, 2.0], "b": ["x", "y", "z"]})
    with pytest.raises(InvalidInputError, match="Column 'a' holds an infinite value"):
        TableEncoder.fit(frame, plan_columns(frame), "standard")
    frame = pd.DataFrame({"a": [np.nan, np.nan], "b": [1.0, 2.0]})
    with pytest.raises(InvalidInputError, match="Column 'a' has no value in any row"):
        TableEncoder.fit(frame, plan_columns(frame), "standard")
    encoder = TableEncoder.fit(pd.DataFrame({"b": [1.0, 2.0]}), plan_columns(pd.DataFrame({"b": [1.0, 2.0]})), None)
    with pytest.raises(InvalidInputError, match=r"lacks the column\(s\) b"):
        encoder.encode(pd.DataFrame({"c": [1.0]}))


def test_a_single_category_gets_other_beside_it():
    frame = pd.DataFrame({"b": ["x"] * 5, "a": np.arange(5.0)})
    encoder = TableEncoder.fit(frame, plan_columns(frame), "standard")
    assert encoder.categories["b"] == ["x", OTHER]
    assert encoder.encode(pd.DataFrame({"b": ["y"], "a": [1.0]}))[0, :2].tolist() == [0.0, 1.0]


def test_a_missing_cell_enters_as_its_slots_training_mean(census):
    encoder = TableEncoder.fit(census, plan_columns(census), "minmax")
    layout = {name: (start, stop) for name, start, stop in encoder.layout()}
    fill = np.asarray(encoder.input_fill)
    # numbers: the column's observed mean after scaling; categories: their training frequencies
    mass = census["mass"].dropna()
    assert fill[layout["mass"][0]] == pytest.approx((mass.mean() - mass.min()) / (mass.max() - mass.min()), rel=1e-5)
    start, stop = layout["sex"]
    frequencies = census["sex"].value_counts(normalize=True)  # of the observed cells
    np.testing.assert_allclose(fill[start:stop], frequencies[encoder.categories["sex"]].to_numpy(), rtol=1e-6)
    assert TableEncoder.from_dict(encoder.to_dict()).input_fill == encoder.input_fill
    state = encoder.to_dict()
    state["input_fill"] = [0.0] * 3
    with pytest.raises(ModelFileError, match="disagree"):
        TableEncoder.from_dict(state)
    del state["input_fill"]
    with pytest.raises(ModelFileError, match="malformed"):
        TableEncoder.from_dict(state)


def test_a_stored_linear_fill_needs_one_blend_weight_per_column(census):
    encoder = TableEncoder.fit(census, plan_columns(census), "standard")
    fill = LinearFill.fit(encoder.encode(census))  # as learned, before its blend is measured: no weights
    state = {**encoder.to_dict(), "fill": fill.to_dict()}
    with pytest.raises(ModelFileError, match="disagree"):  # impute could not blend with it
        TableEncoder.from_dict(state)
    fill.model_weight = np.full(len(encoder.columns), 0.5)
    assert TableEncoder.from_dict({**encoder.to_dict(), "fill": fill.to_dict()}).fill.model_weight.tolist() == [
        0.5] * len(encoder.columns)


def test_auto_scales_the_numeric_columns_as_their_units_say_and_the_choice_is_saved(census):
    plan = plan_columns(census)
    mixed = TableEncoder.fit(census, plan, "auto")  # grams beside millimetres: per column
    assert type(mixed.scaler) is StandardScaler
    one_unit = census.assign(mass=census["mass"] / 100)  # now both spread alike, in one range
    encoder = TableEncoder.fit(one_unit, plan, "auto")
    assert type(encoder.scaler) is SharedScaler
    numbers = one_unit[["mass", "length"]].to_numpy()
    centred = (numbers - np.nanmean(numbers, axis=0)) / np.sqrt(np.nanvar(numbers, axis=0).mean())
    layout = {name: start for name, start, _ in encoder.layout()}
    encoded = encoder.encode(one_unit)
    np.testing.assert_allclose(encoded[:, [layout["mass"], layout["length"]]], centred, rtol=1e-5, atol=1e-6)
    rebuilt = TableEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    assert type(rebuilt.scaler) is SharedScaler and rebuilt.scaler_name == "auto"
    np.testing.assert_array_equal(rebuilt.encode(one_unit), encoded)
