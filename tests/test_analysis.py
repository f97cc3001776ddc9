"""PCA as the reference: principal angles, compare_with_pca, sweep_latent_dims.

References are independent of the code under test: principal angles from numpy's QR + SVD (the
code uses scipy), PCA's errors and explained variance from numpy's SVD of the centred data.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.base import clone
from sklearn.datasets import load_digits, make_s_curve
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from aekit import Autoencoder, InvalidInputError, InvalidParameterValue
from aekit.analysis import (
    LatentSweep,
    PCAComparison,
    compare_with_pca,
    default_autoencoder,
    errors_against_pca,
    orthonormality_gap,
    principal_angles,
    suggest_dim,
    sweep_latent_dims,
)
from conftest import assert_close


def reference_angles(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Principal angles (degrees, largest first) from orthonormal bases and the SVD of their product."""
    qa, _ = np.linalg.qr(A)
    qb, _ = np.linalg.qr(B)
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return np.sort(np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0))))[::-1]


def reference_pca(X: np.ndarray, d: int) -> tuple[float, np.ndarray, np.ndarray]:
    """MSE per value of the rank-d reconstruction of centred X, explained variance ratios, components."""
    centred = X - X.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    mse = variance[d:].sum() / centred.size
    return float(mse), variance[:d] / variance.sum(), vt[:d].T


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data


@pytest.fixture(scope="module")
def centred_digits(digits) -> np.ndarray:
    return digits - digits.mean(axis=0)


@pytest.fixture(scope="module")
def linear_digits(centred_digits) -> PCAComparison:
    """Linear autoencoder and PCA at d = 5 on centred digits, the defaults of compare_with_pca."""
    return compare_with_pca(centred_digits, 5, scaler=None, nonlinear=False, random_state=0)


@pytest.fixture(scope="module")
def curved_data() -> np.ndarray:
    """An S-curve (a 2-D manifold curved in 3-D) turned into 12-D by a random rotation, plus small noise."""
    points, _ = make_s_curve(800, random_state=0)
    rotation = ortho_group.rvs(12, random_state=0)[:3]
    return points @ rotation + 0.01 * np.random.default_rng(0).normal(size=(800, 12))


# ---------------------------------------------------------------- principal_angles
@pytest.mark.parametrize(("k", "m"), [(3, 3), (2, 5), (6, 4)])
def test_principal_angles_match_numpy_svd_reference(k, m):
    rng = np.random.default_rng(k * 10 + m)
    A, B = rng.normal(size=(20, k)), rng.normal(size=(20, m))
    assert_close(principal_angles(A, B), reference_angles(A, B), rtol=0, atol=1e-6, what="angles vs numpy SVD")


def test_principal_angles_known_value_and_basis_invariance():
    t = np.radians(30.0)
    line = np.array([[1.0], [0.0], [0.0]])
    tilted = np.array([[np.cos(t)], [np.sin(t)], [0.0]])
    assert_close(principal_angles(line, tilted), [30.0], rtol=0, atol=1e-9)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(10, 4))
    mixed = A @ rng.normal(size=(4, 4))  # another (non-orthogonal) basis of the same space
    assert_close(principal_angles(A, mixed), np.zeros(4), rtol=0, atol=1e-5, what="same space, other basis")


def test_principal_angles_reject_mismatched_rows_and_nan():
    with pytest.raises(InvalidInputError, match="same number of rows .* got 5 and 4"):
        principal_angles(np.ones((5, 2)), np.ones((4, 2)))
    with pytest.raises(InvalidInputError, match="NaN"):
        principal_angles([[np.nan], [1.0]], [[1.0], [0.0]])


# ---------------------------------------------------------------- errors_against_pca
@pytest.mark.parametrize("scaler", ["standard", None])
def test_errors_against_pca_match_scikit_learn_in_the_models_scaled_space(digits, scaler):
    """Against scikit-learn's ARPACK PCA on float64 rows (the code uses the LAPACK solver on float32)."""
    from sklearn.decomposition import PCA

    train, heldout = digits[:300], digits[300:400]
    model = Autoencoder(latent_dim=4, hidden_dims=(16,), epochs=3, scaler=scaler, random_state=0).fit(train)
    found = errors_against_pca(model, train, heldout)

    def scaled(rows):
        rows = rows.astype(np.float32)
        return (rows if scaler is None else model.scaler_.transform(rows)).astype(np.float64)

    pca = PCA(n_components=4, svd_solver="arpack", random_state=0).fit(scaled(train))
    for index, rows in enumerate((train, heldout)):
        expected_pca = np.mean((pca.inverse_transform(pca.transform(scaled(rows))) - scaled(rows)) ** 2)
        assert_close(found.pca[index], expected_pca, rtol=1e-4, atol=0, what="PCA MSE per value")
        expected_ae = np.mean((scaled(model.reconstruct(rows)) - scaled(rows)) ** 2)
        assert_close(found.autoencoder[index], expected_ae, rtol=1e-4, atol=1e-7, what="autoencoder MSE per value")
        assert found.ratios[index] == pytest.approx(found.autoencoder[index] / found.pca[index])
    assert found.pca[0] < found.pca[1]  # fitted on the training rows: better there than on held-out rows
    assert errors_against_pca(model, train, n_components=2).pca_model.n_components_ == 2


# ---------------------------------------------------------------- compare_with_pca: linear equivalence
def test_linear_autoencoder_spans_pca_subspace_on_centred_digits(linear_digits):
    # The subspace is the invariant; the weights need not be orthonormal, and nothing is asserted on them.
    assert linear_digits.max_angle < 1.0, linear_digits.table()
    linear, pca = linear_digits.errors["linear autoencoder"], linear_digits.errors["PCA"]
    assert abs(linear["train"] / pca["train"] - 1) < 0.01, linear_digits.table()
    assert abs(linear["heldout"] / pca["heldout"] - 1) < 0.01, linear_digits.table()


def test_pca_side_matches_numpy_svd_reference(linear_digits, centred_digits):
    from sklearn.model_selection import train_test_split

    train, heldout = train_test_split(centred_digits, test_size=0.2, random_state=0)
    mse, ratios, components = reference_pca(train, 5)
    assert_close(linear_digits.errors["PCA"]["train"], mse, rtol=1e-4, atol=0, what="PCA train MSE")
    assert_close(linear_digits.explained_variance_ratio, ratios, rtol=1e-4, atol=0, what="explained variance")
    centred_heldout = heldout - train.mean(axis=0)
    heldout_mse = np.mean((centred_heldout - centred_heldout @ components @ components.T) ** 2)
    assert_close(linear_digits.errors["PCA"]["heldout"], heldout_mse, rtol=1e-4, atol=0, what="PCA held-out MSE")
    assert (linear_digits.n_train, linear_digits.n_heldout, linear_digits.n_features) == (1437, 360, 64)


def test_orthonormality_gap_is_the_frobenius_distance_of_the_gram_matrix_to_identity():
    orthonormal = ortho_group.rvs(6, random_state=0)[:, :3]
    assert_close(orthonormality_gap(orthonormal), 0.0, rtol=0, atol=1e-12)
    # 2Q: W^T W = 4 I, so ||3 I||_F = 3 sqrt(3); same subspace, so the angles stay 0
    assert_close(orthonormality_gap(2 * orthonormal), 3 * np.sqrt(3), rtol=1e-12, atol=0)
    assert_close(principal_angles(orthonormal, 2 * orthonormal), np.zeros(3), rtol=0, atol=1e-6)


def test_comparison_result_as_dict_frame_and_table(linear_digits):
    as_dict = json.loads(json.dumps(linear_digits.to_dict()))
    assert as_dict["latent_dim"] == 5
    assert as_dict["max_principal_angle_deg"] == pytest.approx(max(as_dict["principal_angles_deg"]))
    assert as_dict["explained_variance"] == pytest.approx(sum(as_dict["explained_variance_ratio"]))
    frame = linear_digits.to_frame()
    assert list(frame.index) == ["PCA", "linear autoencoder"]
    assert frame.loc["PCA", "heldout_vs_pca"] == 1.0
    assert frame.loc["linear autoencoder", "train_mse"] == linear_digits.errors["linear autoencoder"]["train"]
    table = str(linear_digits)
    assert "principal angles" in table and "linear autoencoder" in table and "explained variance" in table


def test_compare_is_reproducible_with_a_seed():
    X = np.random.default_rng(3).normal(size=(120, 8))
    first = compare_with_pca(X, 2, nonlinear=False, random_state=1)
    second = compare_with_pca(X, 2, nonlinear=False, random_state=1)
    assert first.errors == second.errors
    np.testing.assert_array_equal(first.principal_angles, second.principal_angles)


def test_compare_with_given_heldout_rows_and_templates(curved_data):
    template = Autoencoder(hidden_dims=(8,), epochs=3, scaler="minmax", loss="bce", random_state=0)
    result = compare_with_pca(curved_data[:100], 2, X_val=curved_data[100:150], autoencoder=template)
    assert (result.n_train, result.n_heldout) == (100, 50)
    assert set(result.errors) == {"PCA", "linear autoencoder", "autoencoder"}
    with pytest.raises(NotFittedError):  # cloned, never fitted itself
        check_is_fitted(template)


# ---------------------------------------------------------------- compare_with_pca: non-linear beats PCA on curves
def test_nonlinear_autoencoder_beats_pca_on_a_curved_manifold(curved_data):
    result = compare_with_pca(curved_data, 2, random_state=0)
    autoencoder, pca = result.errors["autoencoder"]["heldout"], result.errors["PCA"]["heldout"]
    assert autoencoder < 0.5 * pca, result.table()


# ---------------------------------------------------------------- compare_with_pca: bad input
def test_compare_rejects_bad_parameters_naming_them(digits):
    with pytest.raises(InvalidParameterValue) as error:
        compare_with_pca(digits, 65)
    assert str(error.value) == (
        "The 'latent_dim' parameter of compare_with_pca must be an int in the range [1, 64] (at most the number "
        "of features and of training rows). Got 65 instead."
    )
    with pytest.raises(InvalidParameterValue, match="'heldout_fraction' .* range \\(0, 1\\). Got 1.5"):
        compare_with_pca(digits, 2, heldout_fraction=1.5)
    with pytest.raises(InvalidParameterValue, match="'autoencoder' .* unfitted aekit.Autoencoder .* Got PCA"):
        from sklearn.decomposition import PCA

        compare_with_pca(digits, 2, autoencoder=PCA())
    with pytest.raises(InvalidInputError, match="X_val has 3 columns but X has 64"):
        compare_with_pca(digits, 2, X_val=np.ones((4, 3)))
    with pytest.raises(InvalidInputError, match="X cannot be used: .*NaN"):
        compare_with_pca(np.full((10, 3), np.nan), 1)


# ---------------------------------------------------------------- sweep_latent_dims
def test_sweep_heldout_error_falls_as_d_grows_on_digits(digits):
    sweep = sweep_latent_dims(digits, [2, 6, 16], random_state=0)
    assert np.all(np.diff(sweep.autoencoder_heldout) < 0), sweep.table()
    assert np.all(np.diff(sweep.pca_heldout) < 0), sweep.table()
    assert sweep.suggested_dim == suggest_dim(sweep.dims, sweep.autoencoder_heldout, sweep.tolerance)
    # PCA's figures are in the autoencoder's scaled space (pixels: centred, one scale for all): check one
    # against numpy
    from sklearn.model_selection import train_test_split

    train, _ = train_test_split(digits, test_size=0.2, random_state=0)
    mse, _, _ = reference_pca((train - train.mean(axis=0)) / np.sqrt(train.var(axis=0).mean()), 6)
    assert_close(sweep.pca_train[1], mse, rtol=1e-4, atol=0, what="PCA train MSE at d=6")


def test_sweep_gap_grows_with_d_on_a_tiny_noisy_training_set(digits):
    noisy = digits + np.random.default_rng(0).normal(scale=4.0, size=digits.shape)
    template = default_autoencoder().set_params(scaler=None, hidden_dims=(32,), architecture="mlp")
    sweep = sweep_latent_dims(noisy[:50], [2, 40], X_val=noisy[1000:], estimator=template)
    small, large = sweep.gap
    assert large > 2 * small > 0, sweep.table()


def test_sweep_uses_clone_and_set_params_and_leaves_the_template_unfitted():
    X = np.random.default_rng(0).normal(size=(80, 6))
    template = Autoencoder(hidden_dims=(8,), epochs=2, random_state=0)
    sweep = sweep_latent_dims(X, [3, 1], estimator=template)
    assert isinstance(sweep, LatentSweep) and sweep.dims == [1, 3]
    assert template.latent_dim == "auto"  # the template's own value (the default), untouched
    with pytest.raises(NotFittedError):
        check_is_fitted(template)
    assert clone(template).get_params() == template.get_params()


def test_sweep_result_as_dict_frame_and_table():
    X = np.random.default_rng(0).normal(size=(80, 6))
    sweep = sweep_latent_dims(X, [1, 2], estimator=Autoencoder(hidden_dims=(8,), epochs=2, random_state=0))
    as_dict = json.loads(json.dumps(sweep.to_dict()))
    assert as_dict["dims"] == [1, 2] and as_dict["suggested_dim"] in (1, 2)
    assert_close(as_dict["gap"], np.subtract(as_dict["autoencoder_heldout_mse"], as_dict["autoencoder_train_mse"]))
    frame = sweep.to_frame()
    assert list(frame.index) == [1, 2] and "pca_heldout_mse" in frame
    assert "<- suggested" in sweep.table()


@pytest.mark.parametrize(
    ("errors", "tolerance", "expected"),
    [([0.5, 0.21, 0.2, 0.22], 0.1, 4), ([0.5, 0.21, 0.2, 0.22], 0.0, 8), ([0.3, 0.4, 0.5, 0.6], 0.1, 2)],
)
def test_suggest_dim_rule(errors, tolerance, expected):
    assert suggest_dim([2, 4, 8, 16], errors, tolerance) == expected


def test_sweep_rejects_bad_dims_and_tolerance():
    X = np.random.default_rng(0).normal(size=(50, 6))
    with pytest.raises(InvalidParameterValue) as error:
        sweep_latent_dims(X, [2, 7])
    assert str(error.value) == (
        "The 'dims' parameter of sweep_latent_dims must be a non-empty list of distinct ints in the range [1, 6] "
        "(at most the number of features and of training rows). Got [2, 7] instead."
    )
    for dims in ([], [2, 2], [0], "abc", 3):
        with pytest.raises(InvalidParameterValue, match="'dims' parameter"):
            sweep_latent_dims(X, dims)
    with pytest.raises(InvalidParameterValue, match="'tolerance' .* Got -0.1"):
        sweep_latent_dims(X, [2], tolerance=-0.1)
