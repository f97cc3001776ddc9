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
