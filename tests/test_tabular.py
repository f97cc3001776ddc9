"""aekit.estimator.tabular: the Autoencoder on tables with categorical columns and missing cells."""

import numpy as np
import pandas as pd
import pytest

import aekit
from aekit import Autoencoder
from aekit.tables import OTHER
from conftest import TABLE_FIT


def mixed_table(n: int, seed: int) -> pd.DataFrame:
    """Two latent factors drive three numbers and two text columns; an id and a date ride along."""
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n)
    s = rng.normal(size=n)
    return pd.DataFrame({
        "id": np.arange(n) + 1000,
        "day": [f"2024-01-{1 + i % 28:02d}" for i in range(n)],
        "a": t + 0.1 * rng.normal(size=n),
        "b": 2 * t - s + 0.1 * rng.normal(size=n),
        "c": 10 * s + rng.normal(size=n),
        "kind": np.where(t > 0.3, "high", np.where(t < -0.3, "low", "mid")),
        "flag": s > 0,
    })


@pytest.fixture(scope="module")
def table():
    frame = mixed_table(400, 0)
    rng = np.random.default_rng(1)
    gaps = frame.copy()
    for name in ("a", "b", "c", "kind"):
        gaps.loc[rng.random(len(frame)) < 0.1, name] = np.nan
    return frame, gaps


@pytest.fixture(scope="module")
def model(table):
    return Autoencoder(latent_dim=2, **TABLE_FIT).fit(table[1])


def test_the_model_types_the_columns_and_keeps_the_callers_shape(model, table):
    assert model.table_.plan.summary() == ("3 numeric, 2 categorical (kind, flag); left out: id (identifier), "
                                           "day (date/time)")
    assert model.n_features_in_ == 7 and list(model.feature_names_in_) == list(table[1].columns)
    assert model.transform(table[1]).shape == (400, 2)


def test_every_row_gets_a_score_and_a_row_of_gaps_gets_nan(model, table):
    frame, gaps = table
    scores = model.outlier_scores(gaps)
    assert np.isfinite(scores).all()
    empty = gaps.head(3).astype({"flag": object})
    empty.loc[0, ["a", "b", "c", "kind", "flag"]] = np.nan
    scores = model.outlier_scores(empty)
    assert np.isnan(scores[0]) and np.isfinite(scores[1:]).all()
    shares = model.outlier_scores(empty, per_feature=True)
    assert shares.shape == (3, 6)  # a, b, c, kind, flag and the latent distance
    np.testing.assert_allclose(np.nansum(shares[1:], axis=1), scores[1:], rtol=1e-5)


def test_gaps_are_averaged_out_of_the_score(model, table):
    """A row's error is the mean over its observed cells: hiding a cell the model reconstructs as well as
    the others leaves the row's error where it was (compared with NumPy's nanmean of the per-cell terms)."""
    frame = table[0].head(50)
    terms = model.reconstruction_error(frame, per_feature=True)
    np.testing.assert_allclose(model.reconstruction_error(frame), terms.mean(axis=1), rtol=1e-5)
    hidden = frame.copy()
    hidden.loc[:, "c"] = np.nan
    hidden_terms = model.reconstruction_error(hidden, per_feature=True)
    assert np.isnan(hidden_terms[:, 2]).all()
    np.testing.assert_allclose(model.reconstruction_error(hidden), np.nanmean(hidden_terms, axis=1), rtol=1e-5)


def test_an_unseen_category_raises_the_score_and_is_no_error(model, table):
    rows = table[0].head(20).copy()
    base = model.outlier_scores(rows)
    rows["kind"] = "extreme"
    unseen = model.outlier_scores(rows)
    assert (unseen > base).all()
    shares = model.outlier_scores(rows, per_feature=True)
    assert (np.argmax(shares[:, :-1], axis=1) == 3).mean() > 0.9  # "kind" explains the score
    assert aekit.estimator.tabular.unseen_categories(model, rows)["kind"].eq("extreme").all()


def test_imputation_fills_gaps_only_and_beats_the_mean(model, table):
    frame, gaps = table
    filled = model.impute(gaps)
    assert list(filled.columns) == list(gaps.columns) and not filled[["a", "b", "c", "kind"]].isna().any().any()
    observed = gaps.notna()
    pd.testing.assert_frame_equal(filled.where(observed), gaps.where(observed), check_dtype=False)
    hidden = gaps["b"].isna()
    model_error = np.sqrt(np.mean((filled.loc[hidden, "b"] - frame.loc[hidden, "b"]) ** 2))
    mean_error = np.sqrt(np.mean((gaps["b"].mean() - frame.loc[hidden, "b"]) ** 2))
    assert model_error < 0.7 * mean_error
    hidden = gaps["kind"].isna()
    assert (filled.loc[hidden, "kind"] == frame.loc[hidden, "kind"]).mean() > 0.6
    assert set(filled["flag"]) <= {True, False}


def test_reconstruction_speaks_the_users_columns(model, table):
    frame = table[0].head(30)
    rebuilt = model.reconstruct(frame)
    assert list(rebuilt.columns) == ["a", "b", "c", "kind", "flag"]
    assert set(rebuilt["kind"]) <= {"high", "low", "mid"}
    assert (rebuilt["kind"] == frame["kind"]).mean() > 0.7
    decoded = model.inverse_transform(model.transform(frame))
    pd.testing.assert_frame_equal(decoded, rebuilt.reset_index(drop=True), check_exact=False, rtol=1e-4)


def test_save_and_load_keep_the_table(model, table, tmp_path):
    model.save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.outlier_scores(table[1]), model.outlier_scores(table[1]))
    assert loaded.table_.plan == model.table_.plan


def test_numbers_with_gaps_in_an_array_and_nullable_integers():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    X[:, 3] = X[:, 0] + X[:, 1]
    X[::7, 2] = np.nan
    model = Autoencoder(latent_dim=2, **TABLE_FIT).fit(X)
    assert not hasattr(model, "feature_names_in_") and model.table_.columns == ["x0", "x1", "x2", "x3"]
    assert np.isfinite(model.outlier_scores(X)).all()
    frame = pd.DataFrame({"n": pd.array([1, None, 3] * 10, dtype="Int64"), "x": np.arange(30.0) % 4})
    assert np.isfinite(Autoencoder(latent_dim=1, **TABLE_FIT).fit(frame).transform(frame)).all()


def test_a_complete_numeric_table_trains_as_an_array():
    X = np.random.default_rng(0).normal(size=(120, 5))
    frame = pd.DataFrame(X, columns=list("abcde"))
    from_frame = Autoencoder(latent_dim=2, **TABLE_FIT).fit(frame)
    from_array = Autoencoder(latent_dim=2, **TABLE_FIT).fit(X)
    assert getattr(from_frame, "table_", None) is None
    np.testing.assert_array_equal(from_frame.transform(frame), from_array.transform(X))
    with pytest.raises(aekit.exceptions.InvalidInputError, match="trained on complete numeric rows"):
        from_array.impute(X)


def test_rare_categories_and_the_categorical_list():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"code": rng.integers(0, 3, 300), "x": rng.normal(size=300)})
    model = Autoencoder(latent_dim=1, categorical=["code"], **TABLE_FIT).fit(frame)
    assert model.table_.plan.categorical == ["code"] and OTHER not in model.table_.categories["code"]
    filled = model.impute(frame.assign(code=[np.nan] + list(frame["code"][1:])))
    assert filled.loc[0, "code"] in (0, 1, 2)


def test_impute_file_refuses_an_existing_file_without_overwrite_and_any_path_inside_a_model(model, table, tmp_path):
    from aekit.exceptions import InvalidInputError
    from aekit.workflows import impute_file

    data = tmp_path / "table.csv"
    table[1].to_csv(data, index=False)  # the table with gaps
    model.save(tmp_path / "model")
    existing = tmp_path / "filled.csv"
    existing.write_text("the user's file\n")
    with pytest.raises(InvalidInputError, match="already exists. Pass overwrite=True"):
        impute_file(model, data, existing)
    assert existing.read_text() == "the user's file\n"
    with pytest.raises(InvalidInputError, match="inside .*an aekit model or checkpoint folder"):
        impute_file(model, data, tmp_path / "model" / "filled.csv")
    assert not (tmp_path / "model" / "filled.csv").exists()
    assert impute_file(model, data, existing, overwrite=True)["n_rows"] == len(table[1])


@pytest.fixture(scope="module")
def near_linear():
    """Eight numbers, each a mix of three factors plus a little noise, 15% of the cells hidden; and a model
    with a one-wide bottleneck, which alone cannot carry what the other cells tell of one."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(300, 3)) @ rng.normal(size=(3, 8)) + 0.2 * rng.normal(size=(300, 8)),
                         columns=[f"v{j}" for j in range(8)])
    gaps = frame.mask(rng.random(frame.shape) < 0.15)
    gaps.iloc[0] = np.nan  # a row with nothing observed
    return frame, gaps, Autoencoder(latent_dim=1, **TABLE_FIT).fit(gaps)


def hidden_rmse(filled: pd.DataFrame, frame: pd.DataFrame, gaps: pd.DataFrame) -> float:
    hidden = gaps.isna().to_numpy()
    return float(np.sqrt(np.mean(((filled.to_numpy() - frame.to_numpy()) / frame.std().to_numpy())[hidden] ** 2)))


def test_imputation_is_level_with_iterative_imputer_on_near_linear_columns(near_linear):
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    frame, gaps, model = near_linear
    filled = model.impute(gaps)
    reference = pd.DataFrame(IterativeImputer(max_iter=10, random_state=0).fit_transform(gaps), columns=gaps.columns)
    model_only = model.table_.decode(aekit.estimator.inference.reconstruct_encoded(model, model.table_.encode(gaps)))
    model_only = gaps.where(gaps.notna(), model_only)  # the autoencoder's own fill, without the linear one
    ours, theirs, alone = (hidden_rmse(f, frame, gaps) for f in (filled, reference, model_only))
    assert ours <= 1.05 * theirs, (ours, theirs)
    assert alone > 1.5 * theirs, (alone, theirs)  # what the blend adds: the bottleneck alone is far behind
    assert (model.table_.fill.model_weight < 0.5).all()  # the measured weights lean on the linear fill here
    observed = gaps.notna()
    pd.testing.assert_frame_equal(filled.where(observed), gaps.where(observed))
    np.testing.assert_allclose(filled.iloc[0], frame.iloc[1:].mean(), atol=0.5 * frame.std().min())


def test_a_saved_model_imputes_the_same(near_linear, tmp_path):
    _, gaps, model = near_linear
    model.save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.impute(gaps), model.impute(gaps), check_exact=True)
    np.testing.assert_array_equal(loaded.table_.fill.precision, model.table_.fill.precision)
