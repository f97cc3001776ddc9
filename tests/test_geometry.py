"""aekit.geometry and Autoencoder(geometry="isomap"): codes regularised towards scikit-learn's Isomap embedding."""

import numpy as np
import pandas as pd
import pytest
from sklearn.manifold import Isomap

import aekit
from aekit import geometry
from aekit import load as load_model
from aekit.data.manifolds import evaluate_embedding, make_manifold
from aekit.exceptions import InvalidParameterValue
from aekit.training.sources import ValidationSplit
from conftest import assert_close


def _fitted_on_s_curve(**params) -> tuple[aekit.Autoencoder, np.ndarray, np.ndarray]:
    X, coordinates = make_manifold("s_curve", 400, random_state=0)
    settings = dict(epochs=40, batch_size=32, lr=3e-3, early_stopping=False, random_state=0, geometry="isomap")
    return aekit.Autoencoder(2, hidden_dims=(32, 32), **{**settings, **params}).fit(X), X, coordinates


def test_target_is_isomaps_embedding_centred_and_scaled_by_one_factor():
    X, _ = make_manifold("s_curve", 300, random_state=0)
    ae = aekit.Autoencoder(2, epochs=1, random_state=0, geometry="isomap", geometry_neighbors=8).fit(X)
    X_scaled = ae.scaler_.transform(X).astype(np.float32)
    train_rows = np.arange(200)
    target = geometry.isomap_target(X_scaled, train_rows, n_components=2, n_neighbors=8, rng=np.random.default_rng(0))

    reference = Isomap(n_neighbors=8, n_components=2).fit(X_scaled[:200]).transform(X_scaled)
    reference -= reference[:200].mean(axis=0)
    reference /= np.sqrt(np.mean(reference[:200] ** 2))
    # eigenvector signs are a convention: compare each axis up to its sign
    signs = np.sign(np.sum(target * reference, axis=0))
    assert_close(target * signs, reference, rtol=0, atol=1e-4, what="target vs scikit-learn's Isomap, scaled")
    assert_close(np.mean(target[:200] ** 2), 1.0, rtol=1e-5, what="unit mean square on the training rows")
    assert target.dtype == np.float32


def test_a_heavy_weight_pulls_the_codes_onto_the_target():
    ae, X, _ = _fitted_on_s_curve(geometry_weight=100.0)
    X_scaled = ae.scaler_.transform(X).astype(np.float32)
    train_rows, _ = ValidationSplit(len(X), ae.validation_fraction, ae.seed_).rows()
    target = geometry.isomap_target(X_scaled, train_rows, n_components=2, n_neighbors=10, rng=np.random.default_rng(0))
    codes = ae.transform(X)
    # the target has unit mean square: a code within 0.05 of it (root mean square) follows it closely
    assert np.sqrt(np.mean((codes - target) ** 2)) < 0.05


def test_geometry_lays_the_s_curve_flat_where_the_plain_loss_does_not_have_to():
    plain, X, coordinates = _fitted_on_s_curve(geometry=None)
    regularised, _, _ = _fitted_on_s_curve()
    X_new, coordinates_new = make_manifold("s_curve", 300, random_state=1)
    rho = evaluate_embedding(X_new, regularised.transform(X_new), coordinates_new).best_abs_spearman
    assert rho.min() > 0.95, rho  # both intrinsic coordinates, on rows never seen in training
    plain_rho = evaluate_embedding(X_new, plain.transform(X_new), coordinates_new).best_abs_spearman
    assert plain_rho.min() < 0.9, plain_rho  # the same network, seed and budget without it: a curled chart


def test_training_on_more_rows_than_isomap_takes_uses_a_sample_and_extends_it(monkeypatch):
    monkeypatch.setattr(geometry, "FIT_ROWS", 200)  # of 360 training rows
    fitted_shapes = []
    original_fit = Isomap.fit
    monkeypatch.setattr(Isomap, "fit", lambda self, X, y=None: fitted_shapes.append(X.shape) or original_fit(self, X))
    # a sparser sample needs fewer neighbours; some draws of 200 rows of this small S still leave a gap that
    # Isomap's 6-neighbour graph bridges (a seed's draw, not the sampling itself): a draw that does not, with
    # the coordinates standardised each on its own (the graph's distances depend on the scaling)
    ae, X, coordinates = _fitted_on_s_curve(geometry_neighbors=6, random_state=1, scaler="standard")
    assert fitted_shapes == [(200, 3)]
    rho = evaluate_embedding(X, ae.transform(X), coordinates).best_abs_spearman
    assert rho.min() > 0.9, rho


def test_geometry_runs_are_reproducible_and_survive_save_and_load(tmp_path):
    first, X, _ = _fitted_on_s_curve(epochs=3)
    second, _, _ = _fitted_on_s_curve(epochs=3)
    assert np.array_equal(first.transform(X), second.transform(X))
    first.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert loaded.get_params()["geometry"] == "isomap" and loaded.get_params()["geometry_weight"] == 1.0
    assert np.array_equal(loaded.transform(X), first.transform(X))


def test_bad_geometry_settings_say_what_to_change(tmp_path):
    X, _ = make_manifold("s_curve", 40, random_state=0)
    with pytest.raises(InvalidParameterValue, match=r"geometry_neighbors below .* \(36\)\. Got geometry_neighbors=36"):
        aekit.Autoencoder(2, epochs=1, geometry="isomap", geometry_neighbors=36).fit(X)
    with pytest.raises(InvalidParameterValue, match=r"'geometry' param.* Got 'isomapp' .* Did you mean 'isomap'\?"):
        aekit.Autoencoder(2, geometry="isomapp").fit(X)
    with pytest.raises(InvalidParameterValue, match=r"'geometry_weight' parameter .* Got 0"):
        aekit.Autoencoder(2, geometry="isomap", geometry_weight=0).fit(X)
    path = tmp_path / "rows.npy"
    np.save(path, X.astype(np.float32))
    with pytest.raises(InvalidParameterValue, match=r"a streaming fit cannot do\. Use fit on data in memory"):
        aekit.Autoencoder(2, geometry="isomap").fit_stream(path)


def test_cli_fit_with_geometry_trains_in_memory_even_when_asked_to_choose(tmp_path, capsys):
    from aekit.cli import main

    X, coordinates = make_manifold("s_curve", 400, random_state=0)
    np.save(tmp_path / "curve.npy", X.astype(np.float32))
    argv = ["fit", str(tmp_path / "curve.npy"), "-o", str(tmp_path / "model"), "--quiet", "--latent-dim", "2",
            "--hidden", "32,32", "--epochs", "40", "--batch-size", "32", "--lr", "3e-3", "--seed", "0",
            "--geometry", "isomap", "--geometry-weight", "2"]
    assert main(argv) == 0
    model = aekit.load(tmp_path / "model")
    assert model.geometry == "isomap" and model.geometry_weight == 2.0
    codes = model.transform(pd.DataFrame(X, columns=model.feature_names_in_)) if hasattr(
        model, "feature_names_in_") else model.transform(X)
    assert evaluate_embedding(X, codes, coordinates).best_abs_spearman.min() > 0.95
    assert main(argv[:4] + ["--force", "--quiet", "--geometry", "isomapp"]) == 2
    assert "Did you mean 'isomap'?" in capsys.readouterr().err
