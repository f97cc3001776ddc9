"""The PCA-anchored model: PCA at initialisation, never worse than PCA, better on curved data;
latent_dim="auto" and batch_size="auto"."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

import aekit
from aekit.exceptions import InvalidParameterValue
from aekit.models import build_model
from aekit.models.anchored import (
    AUTO_EXPLAINED,
    COVARIANCE_MAX_FEATURES,
    REPLACE_PCA_Z,
    AnchoredAutoencoder,
    choose_latent_dim,
    principal_components,
    replaces_pca,
)
from aekit.training.sources import ValidationSplit
from conftest import assert_close


@pytest.fixture(scope="module")
def subspace_data() -> np.ndarray:
    """600 x 12 Gaussian data in a 4-dimensional subspace (equal variances) plus small isotropic noise."""
    rng = np.random.default_rng(3)
    basis, _ = np.linalg.qr(rng.normal(size=(12, 4)))
    return rng.normal(size=(600, 4)) @ basis.T * 3.0 + 0.05 * rng.normal(size=(600, 12)) + 2.0


def _heldout(model: aekit.Autoencoder, X_train: np.ndarray, X_test: np.ndarray, d: int) -> tuple[float, float]:
    """The model's held-out error and PCA's at ``d``, both in the model's scaled space."""
    train, test = (model.scaler_.transform(data) for data in (X_train, X_test))
    pca = PCA(n_components=d).fit(train)
    pca_error = float(np.mean((pca.inverse_transform(pca.transform(test)) - test) ** 2))
    return float(np.mean(model.reconstruction_error(X_test), dtype=np.float64)), pca_error


def test_principal_components_match_scikit_learn(subspace_data):
    X = torch.from_numpy(subspace_data)
    ours = principal_components(X)
    theirs = PCA().fit(subspace_data)
    assert_close(ours.mean, theirs.mean_, rtol=1e-10, atol=1e-10, what="mean")
    # scikit-learn's variances divide by n - 1, ours by n; signs follow the same rule (largest loading positive)
    n = len(subspace_data)
    assert_close(ours.explained_variance * n / (n - 1), theirs.explained_variance_, rtol=1e-8, atol=1e-12)
    assert_close(ours.components[:4], theirs.components_[:4], rtol=1e-6, atol=1e-8, what="components")


def test_principal_components_add_rows_to_a_previous_pca_without_reading_its_rows_again(subspace_data):
    X = torch.from_numpy(subspace_data)
    first, rest = X[:150] * 3.0 + 1.0, X[150:]  # unequal means and spreads: the merge's cross term counts
    merged = principal_components(rest, previous=principal_components(first))
    theirs = PCA().fit(torch.cat([first, rest]).numpy())
    n = len(X)
    assert merged.n_rows == n
    assert_close(merged.mean, theirs.mean_, rtol=1e-10, atol=1e-10, what="mean")
    assert_close(merged.explained_variance * n / (n - 1), theirs.explained_variance_, rtol=1e-8, atol=1e-12)
    assert_close(merged.components[:4], theirs.components_[:4], rtol=1e-6, atol=1e-8, what="components")
    with pytest.raises(InvalidParameterValue, match="previous= needs a PCA that kept its covariance"):
        principal_components(rest[:, :5], previous=principal_components(first))


def wide_rows(n_rows: int, n_features: int, seed: int = 0) -> np.ndarray:
    """Rows wider than the covariance's limit: a 3-dimensional signal (variances 9, 4, 1 per loading)
    through loadings of unit scale, plus small isotropic noise, as float32."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n_rows, 3)) * [3.0, 2.0, 1.0] @ rng.normal(size=(3, n_features))
    return (signal + 0.05 * rng.normal(size=(n_rows, n_features)) + 1.0).astype(np.float32)


def assert_same_wide_pca(ours, X: np.ndarray) -> None:
    """``ours`` (aekit's PCA of wide rows, float32 products) against scikit-learn's exact PCA of ``X`` in
    float64: the mean, the signal's 3 variances, the total variance and the principal angles between the
    spans of the first 3 components (float32 rounding of sums over thousands of features: ~1e-5 degrees)."""
    k = 3
    theirs = PCA(svd_solver="full").fit(X.astype(np.float64))
    n = len(X)
    assert_close(ours.mean, theirs.mean_, rtol=1e-10, atol=1e-9, what="mean")
    # scikit-learn's variances divide by n - 1, ours by n
    assert_close(ours.explained_variance[:k] * n / (n - 1), theirs.explained_variance_[:k], rtol=1e-6, atol=0)
    assert ours.total_variance * n / (n - 1) == pytest.approx(theirs.explained_variance_.sum(), rel=1e-6)
    angles = np.degrees(subspace_angles(ours.components[:k].numpy().T, theirs.components_[:k].T))
    assert angles.max() < 1e-3, angles


@pytest.mark.parametrize("n_features", [COVARIANCE_MAX_FEATURES + 1, 20_000])
def test_principal_components_of_rows_wider_than_the_covariance_limit_match_scikit_learn(n_features):
    """Fewer rows than the sketch's directions: the first product spans every direction of the rows."""
    X = wide_rows(40, n_features)
    ours = principal_components(torch.from_numpy(X))
    assert ours.statistics is None and ours.components.shape == (40, n_features)
    assert_same_wide_pca(ours, X)


def test_principal_components_of_wide_rows_iterate_when_the_rows_outnumber_the_directions():
    """120 rows, 3 components (13 directions with the oversampling): the subspace iterations converge."""
    X = wide_rows(120, COVARIANCE_MAX_FEATURES + 1, seed=1)
    ours = principal_components(torch.from_numpy(X), max_components=3)
    assert ours.components.shape == (3, X.shape[1])
    assert_same_wide_pca(ours, X)
    with pytest.raises(InvalidParameterValue, match="Pass the earlier rows as a source instead"):
        principal_components(torch.from_numpy(X[:10]), previous=ours)


@pytest.mark.parametrize("n_features", [COVARIANCE_MAX_FEATURES + 1, 20_000])
def test_the_default_model_fits_rows_wider_than_the_covariance_limit(n_features):
    """The default estimator (anchored, latent_dim="auto") on wide rows: it finds the signal's rank and
    reconstructs as well as PCA of that rank. Columns standardised: in the rows' own units the third
    direction holds 7% of the variance, beyond the 90% within which the rank rule looks for a noise floor."""
    X = wide_rows(40, n_features)
    ae = aekit.Autoencoder(epochs=2, random_state=0, scaler="standard").fit(X)
    assert ae.n_features_in_ == n_features and ae.latent_dim_ == 3
    scaled = ae.scaler_.transform(X)
    pca = PCA(n_components=3).fit(scaled)
    pca_error = float(np.mean((pca.inverse_transform(pca.transform(scaled)) - scaled) ** 2))
    assert float(np.mean(ae.reconstruction_error(X), dtype=np.float64)) < 1.05 * pca_error


def test_at_initialisation_the_anchored_model_is_pca(subspace_data):
    X32 = subspace_data.astype(np.float32)
    pca = PCA(n_components=3).fit(subspace_data)
    expected_codes = pca.transform(subspace_data)
    expected = pca.inverse_transform(expected_codes)
    fitted = principal_components(torch.from_numpy(X32))
    model = AnchoredAutoencoder(12, 3, hidden_dims=(16,))
    model.anchor(fitted.mean, fitted.components[:3])
    with torch.no_grad():
        reconstruction, codes = model(torch.from_numpy(X32))
    # float32 rounding of values ~10 through two products of 12 terms
    assert_close(reconstruction, expected, rtol=0, atol=2e-5, what="reconstruction")
    assert_close(codes, expected_codes, rtol=0, atol=2e-5, what="codes")


def test_the_linear_reconstruction_is_the_model_s_own_at_the_anchor_only(subspace_data):
    X = torch.from_numpy(subspace_data.astype(np.float32))
    fitted = principal_components(X)
    model = AnchoredAutoencoder(12, 3, hidden_dims=(16, 8))
    model.anchor(fitted.mean, fitted.components[:3])
    with torch.no_grad():
        # the same products, other blockings: float32 rounding of values ~10
        assert_close(model.linear_reconstruction(X), model(X)[0], rtol=1e-6, atol=1e-5, what="at the anchor")
        for parameter in model.parameters():  # the branches' last layers leave zero
            parameter.add_(0.05 * torch.randn_like(parameter))
        gap = (model.linear_reconstruction(X) - model(X)[0]).abs().max()
    assert gap > 1e-2  # away from it, the branches count


def test_the_starting_loss_is_pca_s_validation_error_without_a_forward_pass_through_the_branches(
        subspace_data, monkeypatch):
    calls = []
    original = AnchoredAutoencoder.forward

    def counted(self, x, **how):
        calls.append(self.training)
        return original(self, x, **how)

    monkeypatch.setattr(AnchoredAutoencoder, "forward", counted)
    ae = aekit.Autoencoder(latent_dim=3, epochs=1, random_state=0, device="cpu").fit(subspace_data)
    train_rows, val_rows = ValidationSplit(len(subspace_data), ae.validation_fraction, ae.seed_).rows()
    steps = math.ceil(len(train_rows) / ae.history_["batch_size"])
    assert calls[: steps + 1] == [True] * steps + [False]  # the epoch's steps come first, then its validation
    scaled = ae.scaler_.transform(subspace_data)
    pca = PCA(n_components=3).fit(scaled[train_rows])
    val = scaled[val_rows]
    expected = float(np.mean((pca.inverse_transform(pca.transform(val)) - val) ** 2))
    # float32 products of values ~ 3 over 12 terms, against float64
    assert_close(ae.history_["initial_loss"], expected, rtol=1e-4, what="the starting weights' validation loss")


def test_when_pca_wins_the_estimator_is_pca_of_all_the_rows(subspace_data):
    """With a learning rate too small to move anything, the start (epoch 0) stays the best: the model is
    then refitted as PCA of all the rows, training and validation ones."""
    ae = aekit.Autoencoder(latent_dim=3, epochs=2, lr=1e-12, random_state=0).fit(subspace_data)
    scaled = ae.scaler_.transform(subspace_data)
    pca = PCA(n_components=3).fit(scaled)
    expected = ae.scaler_.inverse_transform(pca.inverse_transform(pca.transform(scaled)))
    assert_close(ae.reconstruct(subspace_data), expected, rtol=0, atol=1e-4 * np.abs(subspace_data).max())
    assert ae.history_["best_epoch"] == 0 and not ae.history_["pca"]["improved"]
    pca_loss = ae.history_["pca"]["val_loss"]
    assert ae.history_["pca"]["message"] == (f"the model is PCA (d=3): PCA's validation loss is {pca_loss:.5g}; no "
                                             "epoch of the non-linear part lowered it")


def test_on_a_linear_subspace_it_stays_within_1_percent_of_pca(subspace_data):
    X_train, X_test = train_test_split(subspace_data, test_size=0.3, random_state=0)
    ae = aekit.Autoencoder(latent_dim=2, epochs=30, random_state=0).fit(X_train)
    ours, pca = _heldout(ae, X_train, X_test, 2)
    assert ours <= 1.01 * pca, (ours, pca)


def test_on_a_curved_manifold_it_beats_pca_clearly():
    """A closed curve (a circle wound twice around a cylinder) in 3-D: one coordinate, which PCA cannot chart."""
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 2 * np.pi, size=400)
    X = np.column_stack([np.cos(t), np.sin(t), np.sin(2 * t)]) + 0.01 * rng.normal(size=(400, 3))
    X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a short run: still improving at its end
        ae = aekit.Autoencoder(latent_dim=2, epochs=15, lr=3e-3, random_state=0).fit(X_train)
    ours, pca = _heldout(ae, X_train, X_test, 2)
    assert ours < 0.5 * pca, (ours, pca)
    assert ae.history_["pca"]["improved"] and ae.history_["best_epoch"] > 0


def test_a_non_linear_epoch_replaces_pca_only_past_the_paired_margin():
    """The statistic is the paired t statistic (scipy's ttest_rel); PCA stays below REPLACE_PCA_Z of it."""
    rng = np.random.default_rng(0)
    pca_errors = rng.uniform(0.5, 1.5, size=40)
    noise = rng.normal(size=40)
    noise = (noise - noise.mean()) / noise.std(ddof=1)  # mean 0, sd 1: t = t_wanted
    for t_wanted, expected in ((REPLACE_PCA_Z * 1.05, True), (REPLACE_PCA_Z * 0.95, False), (-1.0, False)):
        candidate = pca_errors - 0.01 * (t_wanted / np.sqrt(40) + noise)  # differences: sd 0.01
        verdict = {"latent_dim": 3, "improved": True, "message": "improved"}
        assert replaces_pca(verdict, candidate, pca_errors) is expected
        reference = stats.ttest_rel(pca_errors, candidate)
        assert_close(verdict["gain_per_row"] / verdict["gain_standard_error"], reference.statistic, rtol=1e-9,
                     atol=0, what="paired t statistic")
        assert verdict["improved"] is expected
        if not expected:  # the bracket shows what it says: the margin, z standard errors
            standard_error = verdict["gain_standard_error"]
            assert verdict["message"].startswith("the model is PCA (d=3): the non-linear part's best validation loss "
                                                 f"was lower by {verdict['gain_per_row']:.3g} per row")
            assert verdict["message"].endswith(f"(it must exceed 2 standard errors, 2 x {standard_error:.3g} = "
                                               f"{2 * standard_error:.3g})")
    assert not replaces_pca({}, [0.1], [1.0])  # one row: no standard error, no evidence


def test_on_few_rows_a_chance_winner_on_the_validation_rows_does_not_replace_pca(monkeypatch):
    """105 training rows of 40 features near a 6-dimensional subspace, four seeds: without the margin, the
    validation rows (11 of them) pick a non-linear epoch that is worse than PCA on held-out rows for some
    seed; with it, the model is PCA for every seed."""
    rng = np.random.default_rng(2)
    basis, _ = np.linalg.qr(rng.normal(size=(40, 6)))
    X = rng.normal(size=(150, 6)) * np.linspace(3, 1, 6) @ basis.T + 0.3 * rng.normal(size=(150, 40))
    X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)
    worse_by_chance = []
    for seed in range(4):
        monkeypatch.setattr(aekit.models.anchored, "REPLACE_PCA_Z", 2.0)
        ae = aekit.Autoencoder(latent_dim=4, random_state=seed).fit(X_train)
        ours, pca = _heldout(ae, X_train, X_test, 4)
        assert ours <= 1.01 * pca, (seed, ours, pca)
        assert ae.history_["best_epoch"] == 0 and not ae.history_["pca"]["improved"], ae.history_["pca"]
        monkeypatch.setattr(aekit.models.anchored, "REPLACE_PCA_Z", 0.0)  # any lower validation loss replaces PCA
        chance = aekit.Autoencoder(latent_dim=4, random_state=seed).fit(X_train)
        if chance.history_["best_epoch"] > 0 and _heldout(chance, X_train, X_test, 4)[0] > 1.01 * pca:
            worse_by_chance.append(seed)
    assert worse_by_chance, "without the margin no seed picked a chance epoch: the data does not test the margin"


def test_latent_dim_auto_recovers_the_rank(subspace_data):
    ae = aekit.Autoencoder(epochs=1, random_state=0).fit(subspace_data)
    assert ae.latent_dim_ == 4 and ae.transform(subspace_data[:3]).shape == (3, 4)
    assert "chose d=4" in ae.history_["latent_dim_rule"]
    mlp = aekit.Autoencoder(architecture="mlp", epochs=1, random_state=0).fit(subspace_data)
    assert mlp.latent_dim_ == 4


@pytest.mark.parametrize("rank", [1, 2, 3, 4])
def test_choose_latent_dim_recovers_ranks_up_to_four_with_noise(rank):
    rng = np.random.default_rng(rank)
    basis, _ = np.linalg.qr(rng.normal(size=(20, rank)))
    X = rng.normal(size=(500, rank)) @ basis.T * 3.0 + 0.05 * rng.normal(size=(500, 20))
    d, _ = choose_latent_dim(principal_components(torch.from_numpy(X)), max_dim=19)
    assert d == rank


def test_choose_latent_dim_raises_d_to_the_rank_at_a_noise_floor():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(10, 4)))
    signal = rng.normal(size=(2000, 4)) * np.sqrt([5.0, 4.0, 3.0, 2.0])  # 3 components explain ~86 %, not 4's 100 %
    X = torch.from_numpy(signal @ basis.T + 0.01 * rng.normal(size=(2000, 10)))
    d, rule = choose_latent_dim(principal_components(X), max_dim=9)
    assert d == 4 and "raised to the rank" in rule, rule
    without_floor = torch.from_numpy(signal @ basis.T + 0.3 * rng.normal(size=(2000, 10)))  # noise near the signal
    assert choose_latent_dim(principal_components(without_floor), max_dim=9)[0] == 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_choose_latent_dim_matches_sklearn_pca_at_the_same_share(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 12)) * np.geomspace(4.0, 0.2, 12)  # a smooth spectrum: no obvious rank
    d, rule = choose_latent_dim(principal_components(torch.from_numpy(X)), max_dim=11)
    expected = PCA(n_components=AUTO_EXPLAINED, svd_solver="full").fit(X).n_components_
    assert d == expected and f"chose d={d}" in rule and "training rows" in rule, (d, expected, rule)


def test_choose_latent_dim_is_capped_at_max_dim():
    X = torch.randn(300, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # isotropic
    d, rule = choose_latent_dim(principal_components(X), max_dim=3)
    assert d == 3 and "capped at 3" in rule


def test_batch_size_auto_gives_small_data_several_steps_an_epoch():
    X = np.random.default_rng(0).normal(size=(50, 6))
    ae = aekit.Autoencoder(latent_dim=2, epochs=2, validation_fraction=0.2, random_state=0).fit(X)
    assert ae.history_["batch_size"] == 16  # 40 training rows: 3 steps an epoch, not 1
    with pytest.warns(UserWarning, match=r"batch_size=256 is not smaller than the 40 training rows"):
        aekit.Autoencoder(latent_dim=2, epochs=1, batch_size=256, validation_fraction=0.2).fit(X)


def test_a_run_still_improving_at_its_last_epoch_warns():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 8))
    with pytest.warns(ConvergenceWarning, match="still improving at the last epoch"):
        aekit.Autoencoder(latent_dim=2, architecture="mlp", epochs=3, random_state=0).fit(X)


def test_bce_does_not_go_with_the_anchored_model(unit_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = aekit.Autoencoder(latent_dim=2, scaler="minmax", epochs=1).fit(unit_data)
    assert auto.loss_ == "mse"
    with pytest.raises(InvalidParameterValue, match=r"loss='bce' does not go with architecture='anchored'"):
        aekit.Autoencoder(latent_dim=2, scaler="minmax", loss="bce").fit(unit_data)


def test_the_anchored_model_round_trips_through_a_model_folder(subspace_data, tmp_path):
    ae = aekit.Autoencoder(epochs=3, random_state=0).fit(subspace_data)
    ae.save(tmp_path / "model")
    loaded = aekit.load(tmp_path / "model")
    assert loaded.module_.config() == ae.module_.config() and loaded.module_.config()["architecture"] == "anchored"
    assert np.array_equal(loaded.transform(subspace_data), ae.transform(subspace_data))
    assert loaded.latent_dim_ == ae.latent_dim_ and loaded.history_["pca"] == ae.history_["pca"]


def test_build_model_rebuilds_the_anchored_architecture():
    model = AnchoredAutoencoder(10, 3, hidden_dims=(8, 4), activation="tanh")
    rebuilt = build_model(**model.config())
    assert rebuilt.config() == model.config()
    with pytest.raises(InvalidParameterValue, match="output_activation='sigmoid'"):
        AnchoredAutoencoder(10, 3, output_activation="sigmoid")
