import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

import aekit.estimator.inference
from aekit import Autoencoder
from aekit.exceptions import AekitError, InvalidInputError, InvalidParameterValue, TrainingError
from aekit.preprocess import SharedScaler
from aekit.training.sources import ValidationSplit
from conftest import QUICK_FIT, assert_close, calls_to, flat_state

# the plain MLP: these tests are about the estimator's mechanics and its loss choice (tests/test_models_anchored.py
# has the anchored default's)
MLP_FIT = {**QUICK_FIT, "architecture": "mlp"}


@parametrize_with_checks([Autoencoder(latent_dim=2, **MLP_FIT)])
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # overcomplete warnings on the checks' 1-2 feature data
        check(estimator)


def _weights(ae):
    return {k: v.clone() for k, v in ae.module_.state_dict().items()}


def test_fit_returns_self_and_learned_attributes(low_rank_data):
    ae = Autoencoder(latent_dim=3, **MLP_FIT)
    assert ae.fit(low_rank_data) is ae
    assert ae.n_features_in_ == 12 and ae.n_iter_ == 3 and ae.loss_ == "mse"
    assert len(ae.history_["train_loss"]) == len(ae.history_["val_loss"]) == 3
    assert not hasattr(ae, "feature_names_in_")


def test_same_random_state_gives_bitwise_identical_weights(low_rank_data):
    first = _weights(Autoencoder(latent_dim=3, **MLP_FIT).fit(low_rank_data))
    second = _weights(Autoencoder(latent_dim=3, **MLP_FIT).fit(low_rank_data))
    third = _weights(Autoencoder(latent_dim=3, **{**MLP_FIT, "random_state": 1}).fit(low_rank_data))
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in first)


def test_linear_autoencoder_reconstructs_low_rank_data_in_original_units(low_rank_data):
    ae = Autoencoder(
        latent_dim=3,
        architecture="linear",
        epochs=300,
        batch_size=300,
        lr=0.02,
        validation_fraction=0.0,
        random_state=0,
        device="cpu",
    ).fit(low_rank_data)
    X_hat = ae.inverse_transform(ae.transform(low_rank_data))
    assert_close(ae.reconstruct(low_rank_data), X_hat, rtol=1e-6, atol=1e-3)
    # PCA (independent reference) on the same data: near-perfect at rank 3; the AE must be close to it
    pca = PCA(3).fit(low_rank_data)
    pca_mse = np.mean((pca.inverse_transform(pca.transform(low_rank_data)) - low_rank_data) ** 2)
    ae_mse = np.mean((X_hat - low_rank_data) ** 2)
    assert ae_mse < 10 * pca_mse + 1e-2 * low_rank_data.var()
    assert np.abs(X_hat.mean(axis=0) - low_rank_data.mean(axis=0)).max() < 5.0  # offsets of ~1000 are restored


def test_reconstruction_error_matches_numpy_in_scaled_space(low_rank_data):
    ae = Autoencoder(latent_dim=2, anomaly_score="error", **MLP_FIT).fit(low_rank_data)
    X = low_rank_data[:50]
    scaled = (X - X.mean(axis=0) * 0 - ae.scaler_.mean_) / ae.scaler_.scale_  # StandardScaler by hand
    with torch.no_grad():
        reconstruction = ae.module_(torch.tensor(scaled, dtype=torch.float32))[0].numpy()
    expected = (scaled - reconstruction) ** 2
    assert_close(ae.reconstruction_error(X, per_feature=True), expected, rtol=1e-4, atol=1e-5)
    assert_close(ae.reconstruction_error(X), expected.mean(axis=1), rtol=1e-4, atol=1e-5)
    assert_close(ae.score_samples(X), -expected.mean(axis=1), rtol=1e-4, atol=1e-5)
    assert ae.score(X) == pytest.approx(-expected.mean(), rel=1e-4)


def test_threshold_is_the_held_out_quantile_and_predict_uses_it():
    X = np.random.default_rng(0).normal(size=(1000, 6))
    ae = Autoencoder(latent_dim=2, contamination=0.1, anomaly_score="error", **{**MLP_FIT, "epochs": 2}).fit(X)
    errors = ae.reconstruction_error(X)
    assert 0.03 < np.mean(errors > ae.threshold_) < 0.25  # ~10% of rows, from held-out rows only
    assert np.array_equal(ae.predict(X) == -1, errors > ae.threshold_)
    assert_close(ae.decision_function(X), ae.threshold_ - errors, rtol=1e-6, atol=1e-7)


def test_loss_auto_picks_bce_for_unit_interval_data_and_mse_otherwise(unit_data):
    assert Autoencoder(latent_dim=2, scaler="minmax", **MLP_FIT).fit(unit_data).loss_ == "bce"
    assert Autoencoder(latent_dim=2, scaler=None, **MLP_FIT).fit(unit_data).loss_ == "bce"
    assert Autoencoder(latent_dim=2, scaler="standard", **MLP_FIT).fit(unit_data).loss_ == "mse"
    bce = Autoencoder(latent_dim=2, scaler="minmax", **MLP_FIT).fit(unit_data)
    assert np.all((bce.reconstruct(unit_data) >= -1e-6) & (bce.reconstruct(unit_data) <= 1 + 1e-6))


def test_bce_on_data_outside_unit_interval_is_an_error(low_rank_data):
    with pytest.raises(
        InvalidInputError, match=r"loss='bce' needs data in \[0, 1\].*Use scaler='minmax' or loss='mse'"
    ):
        Autoencoder(latent_dim=2, loss="bce", scaler="standard", **MLP_FIT).fit(low_rank_data)


def test_overcomplete_latent_dim_warns():
    with pytest.warns(UserWarning, match="latent_dim=4 >= n_features=4: the autoencoder is overcomplete"):
        Autoencoder(latent_dim=4, **MLP_FIT).fit(np.random.default_rng(0).normal(size=(40, 4)))


def test_dataframe_feature_names_set_output_and_feature_names_out(low_rank_data):
    frame = pd.DataFrame(low_rank_data, columns=[f"f{i}" for i in range(12)])
    ae = Autoencoder(latent_dim=3, **MLP_FIT).set_output(transform="pandas").fit(frame)
    assert list(ae.feature_names_in_) == list(frame.columns)
    Z = ae.transform(frame)
    assert isinstance(Z, pd.DataFrame) and list(Z.columns) == ["latent0", "latent1", "latent2"]
    assert list(ae.get_feature_names_out()) == ["latent0", "latent1", "latent2"]


def test_pipeline_clone_and_grid_search(low_rank_data):
    pipeline = make_pipeline(FunctionTransformer(np.log1p), Autoencoder(latent_dim=2, **MLP_FIT))
    assert pipeline.fit_transform(low_rank_data).shape == (300, 2)
    cloned = clone(Autoencoder(latent_dim=5, **MLP_FIT))
    assert cloned.latent_dim == 5 and not hasattr(cloned, "module_")
    search = GridSearchCV(Autoencoder(**MLP_FIT), {"latent_dim": [1, 3]}, cv=2).fit(low_rank_data)
    assert search.best_params_["latent_dim"] in (1, 3)
    assert set(search.cv_results_["param_latent_dim"]) == {1, 3}


def test_diverging_training_reports_instead_of_returning_nan():
    X = np.random.default_rng(0).normal(size=(64, 4)) * 1e20
    with pytest.raises(TrainingError, match="Try a lower learning rate"):
        Autoencoder(latent_dim=2, scaler=None, **MLP_FIT).fit(X)


# --------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "X, pattern",
    [
        (np.array([[1.0, np.inf], [2.0, 3.0], [1.0, 1.0]]), r"Input X contains infinity"),
        (np.empty((0, 3)), r"0 sample\(s\)"),
        (np.ones((1, 3)), r"1 sample\(s\) \(shape=\(1, 3\)\) while a minimum of 2 is required"),
        (np.arange(5.0), r"Expected a 2-dimensional container|Expected 2D array"),
        (pd.DataFrame({"a": [1.0, np.inf, 3.0], "city": ["x", "y", "z"]}), r"Column 'a' holds an infinite value"),
    ],
    ids=["inf", "empty", "one-row", "1-d", "table-inf"],
)
def test_bad_training_data_gives_clear_errors(X, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        Autoencoder(latent_dim=1, **MLP_FIT).fit(X)


def test_wrong_number_of_features_at_transform(low_rank_data):
    ae = Autoencoder(latent_dim=2, **MLP_FIT).fit(low_rank_data)
    with pytest.raises(InvalidInputError, match="X has 5 features, but Autoencoder is expecting 12 features"):
        ae.transform(low_rank_data[:, :5])
    with pytest.raises(InvalidInputError, match="latent codes with 2 columns"):
        ae.inverse_transform(np.zeros((3, 4)))


def test_latent_dim_below_one_names_parameter_range_and_value():
    with pytest.raises(InvalidParameterValue) as info:
        Autoencoder(latent_dim=0).fit(np.ones((4, 3)))
    assert str(info.value) == (
        "The 'latent_dim' parameter of Autoencoder must be an int in the range [1, inf) or a str among {'auto'}. "
        "Got 0 instead."
    )


@pytest.mark.parametrize(
    "params, suggestion",
    [
        ({"activation": "rleu"}, "relu"),
        ({"loss": "bec"}, "bce"),
        ({"scaler": "standrad"}, "standard"),
        ({"architecture": "liner"}, "linear"),
    ],
)
def test_unknown_options_suggest_the_closest(params, suggestion):
    name, value = next(iter(params.items()))
    with pytest.raises(
        InvalidParameterValue, match=rf"The '{name}' parameter .* Got '{value}' instead\. Did you mean '{suggestion}'\?"
    ):
        Autoencoder(**params).fit(np.ones((4, 3)))


def test_hidden_dims_must_be_positive_ints():
    with pytest.raises(InvalidParameterValue, match=r"'hidden_dims' .* Got \(64, -1\) instead"):
        Autoencoder(hidden_dims=(64, -1)).fit(np.ones((4, 3)))


@pytest.mark.parametrize(
    "method",
    ["transform", "inverse_transform", "reconstruct", "reconstruction_error", "score_samples", "predict", "score"],
)
def test_methods_before_fit_raise_not_fitted(method):
    with pytest.raises(NotFittedError):
        getattr(Autoencoder(), method)(np.ones((2, 3)))


def test_all_aekit_errors_share_one_base():
    assert issubclass(InvalidInputError, AekitError) and issubclass(InvalidParameterValue, ValueError)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])  # float32: trained from the file's pages, batch by batch
def test_read_only_input_is_scaled_without_warnings(low_rank_data, tmp_path, dtype):
    """np.load(mmap_mode="r") and pandas' copy-on-write hand out read-only arrays; aekit only reads them."""
    np.save(tmp_path / "X.npy", low_rank_data.astype(dtype))
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert not X.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)  # two epochs: still improving, and that is said
        ae = Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
        codes = ae.transform(X)
    assert_close(codes, ae.transform(np.array(X)), rtol=0, atol=0, what="read-only vs writable input")
    writable = Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(np.array(X))
    for name, value in writable.module_.state_dict().items():
        assert torch.equal(ae.module_.state_dict()[name], value), name


@pytest.mark.parametrize("scaler", ["standard", None])
@pytest.mark.parametrize("validation_fraction", [0.2, 0.0])
def test_float32_fit_scales_batch_by_batch_to_the_weights_of_scaling_first(scaler, validation_fraction, monkeypatch):
    """float32 rows are not copied and scaled as a whole: each batch is scaled on its way in, to the same values."""
    import aekit.preprocess

    # the threshold's errors without validation rows, in several batches
    monkeypatch.setattr(aekit.estimator.inference, "INFERENCE_BATCH_ROWS", 64)
    X = (np.random.default_rng(5).normal(size=(400, 9)) * 40 + 7).astype(np.float32)
    X[:, 5:] = X[:, :4] ** 2 / 50  # something to learn
    before = X.copy()
    scaled_rows = []
    original = aekit.preprocess.scale
    monkeypatch.setattr(aekit.preprocess, "scale", lambda s, A: scaled_rows.append(len(A)) or original(s, A))
    params = dict(latent_dim=3, hidden_dims=(16,), epochs=4, batch_size=32, scaler=scaler, random_state=0,
                  validation_fraction=validation_fraction, patience=2)
    per_batch = Autoencoder(**params).fit(X)
    assert len(X) not in scaled_rows  # no scaled copy of X
    np.testing.assert_array_equal(X, before)  # and X itself is left as it was
    scaled_first = Autoencoder(**params).fit(np.asfortranarray(X))  # not C-contiguous: scaled into one array first
    if scaler is not None:
        assert len(X) in scaled_rows
    assert per_batch.loss_ == scaled_first.loss_ == "mse"
    for name, value in scaled_first.module_.state_dict().items():
        assert torch.equal(per_batch.module_.state_dict()[name], value), name
    assert per_batch.history_["train_loss"] == scaled_first.history_["train_loss"]
    assert per_batch.history_["val_loss"] == pytest.approx(scaled_first.history_["val_loss"], nan_ok=True, rel=0)
    assert per_batch.threshold_ == scaled_first.threshold_
    np.testing.assert_array_equal(per_batch.score_quantiles_, scaled_first.score_quantiles_)


def test_float32_fit_finds_the_loss_and_overflow_from_the_scaled_range(unit_data):
    X = unit_data.astype(np.float32)
    assert Autoencoder(latent_dim=2, scaler=None, **MLP_FIT).fit(X).loss_ == "bce"
    assert Autoencoder(latent_dim=2, scaler="standard", **MLP_FIT).fit(X).loss_ == "mse"
    with pytest.raises(InvalidInputError, match=r"loss='bce' needs data in \[0, 1\], but after scaler='standard'"):
        Autoencoder(latent_dim=2, scaler="standard", loss="bce", **MLP_FIT).fit(X)
    # a feature whose spread, 7e-46, is below float32's smallest number: its scale becomes 0 in float32
    tiny = np.zeros((20, 3), dtype=np.float32)
    tiny[::2, 0] = np.float32(1.4e-45)
    tiny[:, 1:] = np.random.default_rng(0).normal(size=(20, 2))
    for data in (tiny, np.asfortranarray(tiny)):  # from the range, and from a scaled copy: the same error
        with pytest.raises(InvalidInputError, match=r"too large for float32 after scaling \(scaler='standard'\)"):
            Autoencoder(latent_dim=1, scaler="standard", **MLP_FIT).fit(data)


@pytest.mark.parametrize(
    "params",
    [
        {"early_stopping": False},
        {"early_stopping": True, "patience": 2, "lr": 0.3},  # a large rate: the best epoch is not the last
        {"loss": "bce", "scaler": "minmax"},
        {"precision": "bf16"},
    ],
    ids=["last-epoch", "best-epoch", "bce", "bf16"],
)
def test_threshold_errors_kept_from_validation_equal_a_fresh_pass(params, monkeypatch):
    X = np.random.default_rng(1).normal(size=(600, 8)).astype(np.float32)
    X[:, 4:] = X[:, :4] ** 2  # something to learn
    monkeypatch.setattr(aekit.detect, "THRESHOLD_TAIL_ROWS", 1)  # the 60 held-out rows set the threshold
    calls = calls_to(monkeypatch, aekit.estimator.inference, "row_errors")
    ae = Autoencoder(
        latent_dim=2, architecture="mlp", hidden_dims=(16,), epochs=8, batch_size=32, random_state=0,
        anomaly_score="error", **params
    ).fit(X)
    assert calls == []  # no second pass over the held-out rows
    if params.get("early_stopping"):
        assert ae.history_["best_epoch"] < ae.n_iter_, ae.history_
    _, val_rows = ValidationSplit(len(X), ae.validation_fraction, ae.seed_).rows()
    fresh = ae.reconstruction_error(X[val_rows])
    assert_close(ae.score_quantiles_, np.quantile(fresh.astype(np.float64), np.linspace(0, 1, 1001)), rtol=1e-5,
                 atol=1e-7, what="quantiles of the kept errors vs a fresh pass")
    assert_close(ae.threshold_, np.quantile(fresh, 0.95), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "params",
    [
        {"early_stopping": False},  # the anchored model, trained to its last epoch
        {"early_stopping": True, "patience": 2, "lr": 0.03},  # the best epoch is not the last
        {"architecture": "mlp", "hidden_dims": (16,), "loss": "bce", "scaler": "minmax"},
        {"precision": "bf16"},
    ],
    ids=["anchored-last-epoch", "anchored-best-epoch", "mlp-bce", "bf16"],
)
def test_combined_threshold_scores_kept_from_validation_equal_a_fresh_pass(params, monkeypatch):
    X = np.random.default_rng(1).normal(size=(600, 8)).astype(np.float32)
    X[:, 4:] = X[:, :4] ** 2
    monkeypatch.setattr(aekit.detect, "THRESHOLD_TAIL_ROWS", 1)  # the 60 held-out rows set the threshold
    calls = calls_to(monkeypatch, aekit.estimator.inference, "outlier_scores")
    ae = Autoencoder(latent_dim=2, epochs=8, batch_size=32, random_state=0, device="cpu", **params).fit(X)
    assert ae.history_["best_epoch"] > 0, "PCA won: its refit is scored afresh, which this test is not about"
    # the held-out rows' scores came from the last validation pass; one pass over all rows counts those flagged
    assert calls == [len(X)]
    if params.get("early_stopping"):
        assert ae.history_["best_epoch"] < ae.n_iter_, ae.history_
    monkeypatch.undo()
    _, val_rows = ValidationSplit(len(X), ae.validation_fraction, ae.seed_).rows()
    fresh = ae.outlier_scores(X[val_rows]).astype(np.float64)
    assert_close(ae.score_quantiles_, np.quantile(fresh, np.linspace(0, 1, 1001)), rtol=1e-5, atol=1e-7,
                 what="quantiles of the kept scores vs a fresh pass")


def test_combined_threshold_scores_are_computed_afresh_when_pca_wins(monkeypatch):
    X = np.random.default_rng(2).normal(size=(400, 6)).astype(np.float32)  # noise: nothing beats PCA
    monkeypatch.setattr(aekit.detect, "THRESHOLD_TAIL_ROWS", 1)  # the 40 held-out rows set the threshold
    calls = calls_to(monkeypatch, aekit.estimator.inference, "outlier_scores")
    ae = Autoencoder(latent_dim=2, epochs=3, lr=0.5, random_state=0, device="cpu").fit(X)
    assert ae.history_["best_epoch"] == 0, ae.history_
    # the refitted PCA's held-out scores (the validation passes scored other weights), then all rows' for the
    # share flagged
    assert calls == [40, len(X)]
    monkeypatch.undo()
    _, val_rows = ValidationSplit(len(X), ae.validation_fraction, ae.seed_).rows()
    assert_close(ae.score_quantiles_, np.quantile(ae.outlier_scores(X[val_rows]).astype(np.float64),
                                                  np.linspace(0, 1, 1001)), rtol=1e-6, atol=1e-8)


def test_without_validation_rows_the_threshold_comes_from_the_training_rows(monkeypatch):
    X = np.random.default_rng(1).normal(size=(300, 6)).astype(np.float32)
    ae = Autoencoder(latent_dim=2, epochs=2, validation_fraction=0, random_state=0).fit(X)
    assert_close(ae.threshold_, np.quantile(ae.outlier_scores(X), 0.95), rtol=1e-6, atol=1e-8)


def test_minmax_scaled_float32_data_counts_as_unit_interval_despite_rounding():
    X = np.random.default_rng(1).normal(size=(600, 8)).astype(np.float32)
    X[:, 4:] = X[:, :4] ** 2
    from sklearn.preprocessing import MinMaxScaler

    assert MinMaxScaler().fit_transform(X).max() > 1.0  # float32 rounding: 1.0000001
    assert Autoencoder(latent_dim=2, scaler="minmax", **MLP_FIT).fit(X).loss_ == "bce"
    assert Autoencoder(latent_dim=2, scaler="minmax", loss="bce", **MLP_FIT).fit(X).loss_ == "bce"


@pytest.mark.parametrize("scaler", ["standard", "minmax", None])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_scales_batch_by_batch_to_the_same_codes(scaler, dtype, monkeypatch):
    monkeypatch.setattr(aekit.estimator.inference, "INFERENCE_BATCH_ROWS", 64)  # several batches, the last one short
    X = (np.random.default_rng(2).normal(size=(300, 7)) * 50 + 10).astype(dtype)
    ae = Autoencoder(latent_dim=3, scaler=scaler, **MLP_FIT).fit(X)
    scaled = X if scaler is None else ae.scaler_.transform(X)  # scikit-learn's own transform, all at once
    with torch.inference_mode():
        expected = np.concatenate([ae.module_.encode(torch.from_numpy(scaled[s : s + 64].astype(np.float32))).numpy()
                                   for s in range(0, 300, 64)])
    assert_close(ae.transform(X), expected, rtol=1e-6, atol=1e-6, what="codes, batch-wise scaling vs all at once")
    if dtype == np.float64:  # finite in float64, not in float32: found in the batch that holds it
        with pytest.raises(InvalidInputError, match="too large for float32 after scaling"):
            ae.transform(np.vstack([X[:100], np.full((1, 7), 1e300)]))


def test_fit_predict_is_fit_then_predict():
    X = np.random.default_rng(0).normal(size=(120, 5))
    X[:3] *= 20  # three rows far out
    labels = Autoencoder(latent_dim=2, epochs=3, random_state=2).fit_predict(X)
    fitted = Autoencoder(latent_dim=2, epochs=3, random_state=2).fit(X)
    np.testing.assert_array_equal(labels, fitted.predict(X))
    # the far rows are training rows here (one among the held-out rows would raise the threshold above the others)
    assert not {0, 1, 2} & set(ValidationSplit(len(X), 0.1, fitted.seed_).rows()[1])
    assert set(np.unique(labels)) <= {-1, 1} and (labels[:3] == -1).all()


# ---------------------------------------------------------------------------------- fit and fit_stream: one fit
ONE_WINDOW = {"chunk_rows": 100, "buffer_chunks": 4}  # every row of a 300-row file in one shuffle window


def _as_file(X, tmp_path, name="X.npy"):
    np.save(tmp_path / name, X)
    return tmp_path / name


@pytest.mark.parametrize("anomaly_score", ["error", "combined"])
def test_fit_and_fit_stream_hold_out_the_same_rows_and_set_the_same_threshold(low_rank_data, tmp_path, anomaly_score):
    """With one shuffle window the two fits see the same batches: any other validation row would change the
    validation losses, the weights chosen by early stopping and the threshold."""
    X = low_rank_data.astype(np.float32)
    params = dict(latent_dim=3, hidden_dims=(8,), epochs=6, batch_size=32, validation_fraction=0.2, patience=2,
                  random_state=4, device="cpu", anomaly_score=anomaly_score, contamination=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = Autoencoder(**params).fit(X)
        streamed = Autoencoder(**params).fit_stream(_as_file(X, tmp_path), **ONE_WINDOW)
    assert streamed.history_["val_loss"] == pytest.approx(in_memory.history_["val_loss"], rel=1e-6)
    assert streamed.history_["best_epoch"] == in_memory.history_["best_epoch"]
    for name, value in in_memory.module_.state_dict().items():
        assert torch.equal(streamed.module_.state_dict()[name], value), name
    _, val_rows = ValidationSplit(len(X), 0.2, in_memory.seed_).rows()
    assert len(val_rows) == 60
    # the threshold: the 1 - contamination quantile of all rows' scores, as 60 held-out rows are too few for a
    # tail of 10% (6 of them expected above it; aekit.detect.threshold_rows_needed)
    for ae in (in_memory, streamed):
        assert ae.history_["threshold"]["scores"] == "all rows"
        assert_close(ae.threshold_, np.quantile(ae.outlier_scores(X), 0.9), rtol=1e-5, atol=1e-7)
    assert_close(streamed.score_quantiles_, in_memory.score_quantiles_, rtol=1e-5, atol=1e-7, what="quantiles")


def test_on_many_rows_the_score_normalisers_come_from_a_uniform_sample_the_same_in_fit_and_fit_stream(
        low_rank_data, tmp_path, monkeypatch):
    """Above SCORE_STATE_ROWS rows the combined score's normalisers are those of that many rows drawn by
    their index in the whole data: the same rows from an array and from a file read in chunks."""
    from aekit.estimator import fitting, inference

    monkeypatch.setattr(fitting, "SCORE_STATE_ROWS", 100)
    X = low_rank_data.astype(np.float32)
    params = dict(latent_dim=3, hidden_dims=(8,), epochs=3, batch_size=32, validation_fraction=0.2,
                  random_state=4, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = Autoencoder(**params).fit(X)
        streamed = Autoencoder(**params).fit_stream(_as_file(X, tmp_path), chunk_rows=70, buffer_chunks=8)
    seed = int(np.random.default_rng([in_memory.seed_, fitting.SCORE_STATE_STREAM]).integers(np.iinfo(np.int32).max))
    _, sample = ValidationSplit(len(X), 100 / len(X), seed).rows()
    _, val_rows = ValidationSplit(len(X), 0.2, in_memory.seed_).rows()
    assert len(sample) == 100 and len(set(sample) & set(val_rows)) < 60  # not the validation rows again
    states = [flat_state(ae.score_state_.to_dict()) for ae in (in_memory, streamed)]
    for key, value in states[0].items():  # the same rows, in the same order (by index), from either source
        assert_close(states[1][key], value, rtol=1e-6, atol=1e-9, what=key)
    inference.fit_score_state(in_memory, [X[sample]], scale=True)  # numpy sums over exactly those rows
    for key, value in flat_state(in_memory.score_state_.to_dict()).items():
        assert_close(states[0][key], value, rtol=1e-6, atol=1e-9, what=key)
    inference.fit_score_state(in_memory, [X], scale=True)  # all rows: another state
    assert not np.allclose(in_memory.score_state_.feature_scale, states[0]["feature_scale"], rtol=1e-3)


def _tiny_spread():
    X = np.zeros((20, 3), dtype=np.float32)
    X[::2, 0] = np.float32(1.4e-45)  # its scale is 0 in float32
    X[:, 1:] = np.random.default_rng(0).normal(size=(20, 2))
    return X


@pytest.mark.parametrize(
    ("X", "params", "error"),
    [
        (np.ones((1, 3), dtype=np.float32), {}, r"1 sample\(s\).* minimum of 2 is required"),
        (_tiny_spread(), {"latent_dim": 1, "scaler": "standard"},
         r"too large for float32 after scaling \(scaler='standard'\)"),
        (np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32), {"loss": "bce", "scaler": "standard"},
         r"loss='bce' needs data in \[0, 1\], but after scaler='standard'"),
        (np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32), {"geometry": "isomap"}, None),
    ],
    ids=["one-row", "float32-overflow", "bce-range", "geometry"],
)
def test_fit_and_fit_stream_refuse_the_same_bad_data(tmp_path, X, params, error):
    ae = Autoencoder(**{**MLP_FIT, "latent_dim": 2, **params})
    if error is None:  # Isomap embeds all the rows at once: fit only
        ae.fit(X)
        with pytest.raises(InvalidParameterValue, match=r"geometry='isomap' .* a streaming fit cannot do"):
            ae.fit_stream(_as_file(X, tmp_path))
        return
    with pytest.raises(InvalidInputError, match=error):
        ae.fit(X)
    with pytest.raises(InvalidInputError, match=error):
        ae.fit_stream(_as_file(X, tmp_path), chunk_rows=7)


@pytest.mark.parametrize(
    ("X", "params", "expected"),
    [
        (np.tile(np.float32([1, 2, 3]), (40, 1)), {}, [UserWarning, ConvergenceWarning]),  # identical rows
        (np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32), {"latent_dim": 3}, [UserWarning]),
        (np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32), {"batch_size": 64}, [UserWarning]),
        (np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32), {"epochs": 2}, [ConvergenceWarning]),
    ],
    ids=["identical-rows", "overcomplete", "one-batch", "not-converged"],
)
def test_fit_and_fit_stream_warn_alike(tmp_path, X, params, expected):
    ae = Autoencoder(**{**MLP_FIT, "latent_dim": 2, "lr": 1e-2, **params})
    with warnings.catch_warnings(record=True) as in_memory:
        warnings.simplefilter("always")
        ae.fit(X)
    path = _as_file(X, tmp_path)
    with warnings.catch_warnings(record=True) as streamed:
        warnings.simplefilter("always")
        ae.fit_stream(path, chunk_rows=16)
    said = [(w.category, str(w.message).replace(str(path), "X")) for w in in_memory]
    assert said == [(w.category, str(w.message).replace(str(path), "X")) for w in streamed]
    assert {category for category, _ in said} >= set(expected), said


# ------------------------------------------------------------------------------------- scaler="auto"
def _heldout(X: np.ndarray):
    from sklearn.model_selection import train_test_split

    return train_test_split(X, test_size=0.2, random_state=0)


def _pca_error(train: np.ndarray, test: np.ndarray, d: int) -> float:
    pca = PCA(n_components=d).fit(train)
    return float(np.mean((pca.inverse_transform(pca.transform(test)) - test) ** 2))


def test_the_default_on_lengths_in_one_unit_is_as_good_as_pca_in_those_units():
    """iris: four lengths in cm. The default scales them together, so its held-out error in cm is PCA's
    at most; standardising each column (the previous default) made it 1.35x PCA's here."""
    from sklearn.datasets import load_iris

    X_train, X_test = _heldout(load_iris().data)
    model = Autoencoder(latent_dim=2, random_state=0, device="cpu").fit(X_train)
    assert type(model.scaler_) is SharedScaler
    error = float(np.mean((model.reconstruct(X_test) - X_test) ** 2))
    assert error <= 1.01 * _pca_error(X_train, X_test, 2)


def test_the_default_on_columns_in_different_units_is_as_good_as_pca_on_standardised_columns():
    """wine: 13 measurements in their own units (proline in mg/L beside hue): each standardised on its own."""
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X_train, X_test = _heldout(load_wine().data)
    model = Autoencoder(latent_dim=3, random_state=0, device="cpu").fit(X_train)
    assert type(model.scaler_) is StandardScaler
    standard = StandardScaler().fit(X_train)
    error = float(np.mean(((model.reconstruct(X_test) - X_test) / standard.scale_) ** 2))
    assert error <= 1.01 * _pca_error(standard.transform(X_train), standard.transform(X_test), 3)
