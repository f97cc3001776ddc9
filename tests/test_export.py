"""ONNX export: the exported graph, run by onnxruntime, against the estimator it came from."""

import json
import sys

import numpy as np
import pandas as pd
import pytest

import aekit
from aekit.cli import main
from aekit.exceptions import MissingDependencyError
from aekit.export import OUTPUT_NAMES, export_onnx
from conftest import assert_close

ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the exported graphs")
onnx = pytest.importorskip("onnx", reason="onnx writes the exported graphs")

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def _run_graph(path, X: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), {"X": X}), strict=True))


def _check_against_estimator(ae, X: np.ndarray, path) -> dict[str, np.ndarray]:
    out = _run_graph(path, X)
    assert_close(out["latent"], ae.transform(X), **TOLERANCE, what="latent vs transform")
    assert_close(out["reconstruction"], ae.reconstruct(X), **TOLERANCE, what="reconstruction vs reconstruct")
    assert_close(out["reconstruction_error"], ae.reconstruction_error(X), **TOLERANCE,
                 what="reconstruction_error")
    assert_close(out["outlier_score"], ae.outlier_scores(X), **TOLERANCE, what="outlier_score")
    # the flags agree except where a score lies within float32 rounding of the threshold
    undecided = np.abs(ae.outlier_scores(X) - ae.threshold_) <= 1e-5 * max(1.0, ae.threshold_)
    np.testing.assert_array_equal(out["outlier"][~undecided], (ae.predict(X) == -1)[~undecided])
    return out


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(0)
    wide = (rng.normal(size=(120, 3)) @ rng.normal(size=(3, 10)) * 50 + 300).astype(np.float32)
    unit = rng.uniform(size=(120, 64)).astype(np.float32)
    return {"wide": wide, "unit": unit}


@pytest.mark.parametrize(("params", "data", "loss"), [
    ({"architecture": "mlp", "scaler": "standard"}, "wide", "mse"),
    ({"architecture": "mlp", "scaler": "minmax", "loss": "mse"}, "wide", "mse"),
    ({"architecture": "mlp", "scaler": None}, "wide", "mse"),
    ({"architecture": "linear", "scaler": "standard"}, "wide", "mse"),
    ({"architecture": "linear", "scaler": None}, "unit", "bce"),
    ({"architecture": "mlp", "scaler": "minmax", "loss": "bce"}, "unit", "bce"),
    ({"architecture": "conv", "input_shape": (1, 8, 8), "hidden_dims": (4, 8), "scaler": "minmax"}, "unit", "bce"),
    ({"architecture": "conv", "input_shape": (1, 8, 8), "hidden_dims": (4,), "scaler": "standard"}, "unit", "mse"),
])
def test_graph_matches_the_estimator(tables, tmp_path, params, data, loss):
    X = tables[data]
    params = {"hidden_dims": (16,), **params}
    ae = aekit.Autoencoder(latent_dim=3, epochs=3, batch_size=32, random_state=0, device="cpu", **params).fit(X)
    assert ae.loss_ == loss
    path = ae.to_onnx(tmp_path / "model.onnx")
    out = _check_against_estimator(ae, X, path)
    assert out["latent"].shape == (len(X), 3) and out["reconstruction_error"].shape == (len(X),)
    # any batch size: the row axis is dynamic
    assert_close(_run_graph(path, X[:1])["latent"], ae.transform(X[:1]), **TOLERANCE)


def test_the_latent_modes_of_the_combined_score_export_with_it(tmp_path):
    rng = np.random.default_rng(5)
    groups = rng.normal(size=(600, 2)) * 0.3 + np.repeat([[-3.0, 0.0], [3.0, 1.0], [0.0, 4.0]], 200, axis=0)
    X = (groups @ rng.normal(size=(2, 8)) + 0.05 * rng.normal(size=(600, 8))).astype(np.float32)
    ae = aekit.Autoencoder(latent_dim=2, epochs=3, random_state=0, device="cpu").fit(X)
    assert len(ae.score_state_.modes.weights) > 1  # the mixture, not the single Mahalanobis distance
    X_new = np.vstack([X[:50], X[:50].mean(axis=0) + rng.normal(size=(50, 8)).astype(np.float32)])
    _check_against_estimator(ae, X_new, ae.to_onnx(tmp_path / "model.onnx"))


def test_layers_big_enough_for_onednn_export_as_plain_products(tmp_path):
    """aekit.models.layers.Linear may route wide layers through a private oneDNN operator with no ONNX form."""
    X = np.random.default_rng(1).normal(size=(64, 256)).astype(np.float32)
    ae = aekit.Autoencoder(latent_dim=4, architecture="mlp", hidden_dims=(128,), epochs=2, random_state=0,
                           device="cpu").fit(X)
    path = export_onnx(ae, tmp_path / "big.onnx")
    operators = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "Gemm" in operators or "MatMul" in operators, operators
    assert all(node.domain in ("", "ai.onnx") for node in onnx.load(str(path)).graph.node)
    _check_against_estimator(ae, X, path)
    assert type(ae.module_.encoder[0]).__module__ == "aekit.models.layers"  # the estimator's module is left as it was


def test_metadata_names_the_columns_and_threshold(tmp_path):
    frame = pd.DataFrame(np.random.default_rng(2).normal(size=(60, 4)), columns=["w", "x", "y", "z"])
    ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0, contamination=0.1).fit(frame)
    graph = onnx.load(str(ae.to_onnx(tmp_path / "m.onnx")))
    metadata = {prop.key: prop.value for prop in graph.metadata_props}
    assert json.loads(metadata["feature_names"]) == ["w", "x", "y", "z"]
    assert float(metadata["threshold"]) == ae.threshold_
    assert [i.name for i in graph.graph.input] == ["X"]
    assert [o.name for o in graph.graph.output] == list(OUTPUT_NAMES)


def test_without_onnx_the_error_names_the_install(tmp_path, monkeypatch):
    ae = aekit.Autoencoder(latent_dim=2, epochs=1, random_state=0).fit(np.random.default_rng(0).normal(size=(40, 4)))
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install onnx"):
        ae.to_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export_round_trip(tmp_path, capsys, monkeypatch):
    X = np.random.default_rng(3).normal(size=(80, 5)).astype(np.float32)
    ae = aekit.Autoencoder(latent_dim=2, epochs=3, random_state=0, device="cpu").fit(X)
    ae.save(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), "-o", str(tmp_path / "model.onnx")]) == 0
    out = capsys.readouterr().out
    assert "model.onnx" in out and "latent, reconstruction, reconstruction_error, outlier_score, outlier" in out
    _check_against_estimator(aekit.load(tmp_path / "model"), X, tmp_path / "model.onnx")

    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", str(tmp_path / "model"), "-o", str(tmp_path / "other.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install onnx" in err and err.startswith("aekit export: error:"), err


@pytest.mark.parametrize("anomaly_score", ["combined", "error"])
def test_rows_with_nan_or_inf_are_flagged_as_outliers_by_the_graph(tmp_path, anomaly_score):
    """aekit refuses such rows; the graph cannot refuse, so it flags them: score +inf, outlier True."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(80, 5)).astype(np.float32)
    ae = aekit.Autoencoder(latent_dim=2, hidden_dims=(8,), epochs=2, random_state=0, device="cpu",
                           anomaly_score=anomaly_score).fit(X)
    broken = np.repeat(X[:1], 4, axis=0)
    broken[0, 0], broken[1, 4], broken[2, 2], broken[3] = np.nan, np.inf, -np.inf, np.nan
    with pytest.raises(aekit.InvalidInputError, match="NaN"):
        ae.predict(broken)  # what the estimator does with them
    rows = np.vstack([X[:10], broken])
    out = _run_graph(ae.to_onnx(tmp_path / "model.onnx"), rows)
    assert out["outlier"][10:].all() and np.isposinf(out["outlier_score"][10:]).all()
    # the finite rows are scored as before, whatever their neighbours hold
    assert_close(out["outlier_score"][:10], ae.outlier_scores(X[:10]), **TOLERANCE)
    np.testing.assert_array_equal(out["outlier"][:10], ae.predict(X[:10]) == -1)


def test_a_model_fitted_with_contamination_auto_exports(tmp_path, capsys):
    X = np.random.default_rng(7).normal(size=(80, 5)).astype(np.float32)
    ae = aekit.Autoencoder(latent_dim=2, hidden_dims=(8,), epochs=2, random_state=0, device="cpu",
                           contamination="auto").fit(X)
    ae.save(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), "-o", str(tmp_path / "model.onnx")]) == 0, capsys.readouterr().err
    graph = onnx.load(str(tmp_path / "model.onnx"))
    metadata = {prop.key: prop.value for prop in graph.metadata_props}
    assert metadata["contamination"] == "auto" and float(metadata["threshold"]) == ae.threshold_
    _check_against_estimator(aekit.load(tmp_path / "model"), X, tmp_path / "model.onnx")


# ---------------------------------------------------------------- a table model: categories and missing cells
TABLE_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


@pytest.fixture(scope="module")
def mixed():
    """A seeded table with gaps, a text column that follows the numbers, and a one-category column (which gets
    the "(other)" bucket); rows to score with a category never seen, a value for "(other)", gaps, a row with
    no cell and one far outlier."""
    rng = np.random.default_rng(8)
    n = 240
    t = rng.normal(size=n)
    X = pd.DataFrame({"a": t * 3 + 10, "kind": np.where(t > 0.3, "up", np.where(t < -0.3, "down", "flat")),
                      "b": 2 * t + rng.normal(scale=0.3, size=n), "flag": ["on"] * n, "c": rng.normal(size=n) * 100})
    for column in ("a", "kind", "b"):
        X.loc[rng.random(n) < 0.1, column] = np.nan
    new = X.iloc[:16].copy().reset_index(drop=True)
    new.loc[0, "kind"] = "sideways"  # never seen: evidence of an anomaly
    new.loc[1, "flag"] = "off"  # goes to "(other)"
    new.loc[2, :] = np.nan  # no cell: NaN score
    new.loc[3, ["a", "b", "c"]] = np.nan  # categories only
    new.loc[4, ["kind", "flag"]] = np.nan  # numbers only
    new.loc[5, "c"] = 1e4  # far out
    return X, new


def _metadata(path) -> dict:
    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}


def _table_inputs(metadata: dict, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The graph's inputs built as a consumer would, from the file's metadata alone."""
    columns = json.loads(metadata["table_columns"])
    numeric = sorted((c for c in columns if c["kind"] == "numeric"), key=lambda c: c["position"])
    categorical = sorted((c for c in columns if c["kind"] == "categorical"), key=lambda c: c["position"])

    def index(value, known: list[str]) -> int:
        if pd.isna(value):
            return int(metadata["missing_category"])
        return known.index(str(value)) if str(value) in known else int(metadata["unseen_category"])

    inputs = {}
    if numeric:
        inputs["numbers"] = frame[[c["name"] for c in numeric]].to_numpy(dtype=np.float32)
    if categorical:
        inputs["categories"] = np.array([[index(frame.at[row, c["name"]], c["categories"]) for c in categorical]
                                         for row in frame.index], dtype=np.int64).reshape(len(frame), -1)
    return inputs


def _run_table_graph(path, inputs: dict) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs), strict=True))


@pytest.mark.parametrize("anomaly_score", ["combined", "error"])
def test_a_table_model_graph_matches_the_estimator(mixed, tmp_path, anomaly_score):
    X, new = mixed
    ae = aekit.Autoencoder(latent_dim=2, hidden_dims=(8,), epochs=5, random_state=0, device="cpu",
                           anomaly_score=anomaly_score).fit(X)
    assert ae.table_.categories["flag"] == ["on", "(other)"]
    path = ae.to_onnx(tmp_path / "table.onnx")
    metadata = _metadata(path)
    out = _run_table_graph(path, _table_inputs(metadata, new))
    scores = ae.outlier_scores(new)
    assert np.isnan(scores[2]) and np.isfinite(np.delete(scores, 2)).all()
    assert_close(out["outlier_score"], scores, **TABLE_TOLERANCE, what="outlier_score (NaN where NaN)")
    assert_close(out["reconstruction_error"], ae.reconstruction_error(new), **TABLE_TOLERANCE,
                 what="reconstruction_error")
    assert_close(out["latent"], ae.transform(new), **TABLE_TOLERANCE, what="latent")
    undecided = np.abs(scores - ae.threshold_) <= 1e-4 * max(1.0, ae.threshold_)
    np.testing.assert_array_equal(out["outlier"][~undecided], (ae.predict(new) == -1)[~undecided])
    assert out["outlier"][5] and not out["outlier"][2]  # far out: flagged; no cell: no score, not flagged
    # the reconstruction in the user's columns, categories read back through the metadata's lists
    reconstruction = ae.reconstruct(new)
    columns = json.loads(metadata["table_columns"])
    numeric = [c["name"] for c in columns if c["kind"] == "numeric"]
    scale = X[numeric].std().to_numpy()
    assert_close(out["reconstructed_numbers"] / scale, reconstruction[numeric].to_numpy() / scale,
                 **TABLE_TOLERANCE, what="reconstructed numbers, in units of each column's spread")
    for c in columns:
        if c["kind"] == "categorical":
            named = np.asarray(c["categories"], dtype=object)[out["reconstructed_categories"][:, c["position"]]]
            np.testing.assert_array_equal(named, reconstruction[c["name"]].to_numpy(dtype=object))


def test_a_table_model_exports_with_its_columns_in_the_metadata(mixed, tmp_path):
    X, _ = mixed
    ae = aekit.Autoencoder(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0, device="cpu").fit(X)
    path = ae.to_onnx(tmp_path / "table.onnx")  # a table model was refused before
    graph = onnx.load(str(path))
    metadata = _metadata(path)
    assert [(i.name, i.type.tensor_type.elem_type) for i in graph.graph.input] == [
        ("numbers", onnx.TensorProto.FLOAT), ("categories", onnx.TensorProto.INT64)]
    assert json.loads(metadata["table_columns"]) == [
        {"name": "a", "kind": "numeric", "input": "numbers", "position": 0},
        {"name": "kind", "kind": "categorical", "input": "categories", "position": 0,
         "categories": ae.table_.categories["kind"]},
        {"name": "b", "kind": "numeric", "input": "numbers", "position": 1},
        {"name": "flag", "kind": "categorical", "input": "categories", "position": 1, "categories": ["on", "(other)"]},
        {"name": "c", "kind": "numeric", "input": "numbers", "position": 2},
    ]
    assert (metadata["missing_category"], metadata["unseen_category"]) == ("-1", "-2")
    assert float(metadata["threshold"]) == ae.threshold_


def test_a_table_of_numbers_with_gaps_takes_numbers_only_and_flags_infinite_cells(mixed, tmp_path):
    X, new = mixed
    numbers = X[["a", "b", "c"]]
    ae = aekit.Autoencoder(latent_dim=1, hidden_dims=(8,), epochs=3, random_state=0, device="cpu").fit(numbers)
    path = ae.to_onnx(tmp_path / "numbers.onnx")
    inputs = _table_inputs(_metadata(path), new[["a", "b", "c"]])
    assert list(inputs) == ["numbers"]
    inputs["numbers"] = np.vstack([inputs["numbers"], [[np.inf, 1.0, np.nan]]]).astype(np.float32)
    out = _run_table_graph(path, inputs)
    assert "reconstructed_categories" not in out
    assert_close(out["outlier_score"][:-1], ae.outlier_scores(new[["a", "b", "c"]]), **TABLE_TOLERANCE)
    assert np.isposinf(out["outlier_score"][-1]) and out["outlier"][-1]  # aekit refuses it; the graph flags it


def test_cli_export_of_a_table_model_names_its_inputs(mixed, tmp_path, capsys):
    X, _ = mixed
    aekit.Autoencoder(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0, device="cpu").fit(X).save(
        tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), "-o", str(tmp_path / "m.onnx"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["inputs"] == [{"name": "numbers", "columns": 3, "type": "float32"},
                                 {"name": "categories", "columns": 2, "type": "int64"}]
    assert summary["outputs"] == ["latent", "reconstructed_numbers", "reconstructed_categories",
                                  "reconstruction_error", "outlier_score", "outlier"]


def test_a_table_of_categories_only_takes_categories_only(mixed, tmp_path):
    X, new = mixed
    ae = aekit.Autoencoder(latent_dim=1, hidden_dims=(8,), epochs=3, random_state=0, device="cpu").fit(
        X[["kind", "flag"]])
    path = ae.to_onnx(tmp_path / "categories.onnx")
    inputs = _table_inputs(_metadata(path), new[["kind", "flag"]])
    assert list(inputs) == ["categories"] and inputs["categories"][0, 0] == -2 and inputs["categories"][2, 0] == -1
    out = _run_table_graph(path, inputs)
    assert "reconstructed_numbers" not in out
    assert_close(out["outlier_score"], ae.outlier_scores(new[["kind", "flag"]]), **TABLE_TOLERANCE,
                 what="outlier_score (NaN where NaN)")
