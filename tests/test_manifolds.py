"""Manifold generators and embedding scores, checked against scikit-learn and plain numpy."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import make_s_curve, make_swiss_roll
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness

from aekit.data.manifolds import continuity, evaluate_embedding, make_manifold, spearman_matrix
from aekit.exceptions import InvalidInputError, InvalidParameterValue
from conftest import assert_close


@pytest.mark.parametrize(("name", "generator"), [("swiss_roll", make_swiss_roll), ("s_curve", make_s_curve)])
def test_generators_are_scikit_learns_with_both_coordinates(name, generator):
    X, coordinates = make_manifold(name, 300, random_state=4)
    reference_X, reference_t = generator(300, random_state=4)
    assert X.dtype == np.float32 and X.shape == (300, 3) and coordinates.shape == (300, 2)
    assert_close(X, reference_X, rtol=1e-6, atol=1e-5)
    assert_close(coordinates[:, 0], reference_t, rtol=1e-6, atol=1e-5)
    assert_close(coordinates[:, 1], reference_X[:, 1], rtol=1e-6, atol=1e-5)


def test_noise_moves_points_but_not_coordinates():
    clean, coordinates = make_manifold("swiss_roll", 2000, random_state=0)
    noisy, noisy_coordinates = make_manifold("swiss_roll", 2000, noise=0.5, random_state=0)
    assert np.array_equal(coordinates, noisy_coordinates)
    assert_close(np.std(noisy - clean), 0.5, rtol=0.05, atol=0)


def test_unknown_manifold_suggests_the_closest():
    with pytest.raises(InvalidParameterValue, match=r"Got 'swissroll' instead\. Did you mean 'swiss_roll'\?"):
        make_manifold("swissroll")


def _continuity_reference(X: np.ndarray, embedding: np.ndarray, k: int) -> float:
    """Venna & Kaski's continuity, written out with numpy: penalise data neighbours that the
    embedding pushes out of the k nearest, by how far out (their rank in the embedding)."""
    n = len(X)
    data_distances, embedded_distances = cdist(X, X), cdist(embedding, embedding)
    np.fill_diagonal(data_distances, np.inf)
    np.fill_diagonal(embedded_distances, np.inf)
    data_neighbours = np.argsort(data_distances, axis=1)[:, :k]
    embedded_ranks = np.argsort(np.argsort(embedded_distances, axis=1), axis=1) + 1  # 1 = nearest
    penalty = 0.0
    for i in range(n):
        ranks = embedded_ranks[i, data_neighbours[i]]
        penalty += np.sum(np.maximum(ranks - k, 0))
    return 1.0 - 2.0 / (n * k * (2 * n - 3 * k - 1)) * penalty


def test_continuity_matches_the_definition_and_differs_from_trustworthiness():
    X, _ = make_manifold("swiss_roll", 200, random_state=1)
    embedding = X[:, [0, 2]]  # the spiral seen from above: squashes the height, keeps the roll
    expected = _continuity_reference(X, embedding, 7)
    assert_close(continuity(X, embedding, n_neighbors=7), expected, rtol=1e-10, atol=1e-12)
    assert continuity(X, embedding, n_neighbors=7) != trustworthiness(X, embedding, n_neighbors=7)


def test_spearman_matrix_is_pearson_of_ranks():
    rng = np.random.default_rng(2)
    embedding, coordinates = rng.normal(size=(100, 3)), rng.normal(size=(100, 2))
    ranks = lambda a: np.argsort(np.argsort(a, axis=0), axis=0)  # noqa: E731 (no ties in continuous data)
    expected = np.corrcoef(ranks(embedding).T, ranks(coordinates).T)[:3, 3:]
    assert_close(spearman_matrix(embedding, coordinates), expected, rtol=1e-10, atol=1e-12)


def test_evaluate_embedding_scores_a_perfect_and_a_poor_embedding():
    X, coordinates = make_manifold("swiss_roll", 800, random_state=0)
    perfect = evaluate_embedding(X, coordinates, coordinates, n_neighbors=10)
    assert_close(perfect.best_abs_spearman, [1.0, 1.0], rtol=0, atol=1e-12)
    assert perfect.trustworthiness > 0.95 and perfect.continuity > 0.95
    pca = evaluate_embedding(X, PCA(2).fit_transform(X), coordinates, n_neighbors=10)
    assert pca.best_abs_spearman[0] < 0.4  # PCA does not unroll the roll
    summary = pca.to_dict()
    assert summary["best_abs_spearman"]["position"] == pytest.approx(pca.best_abs_spearman[0])


def test_evaluate_embedding_refuses_bad_shapes_and_neighbour_counts():
    X, _ = make_manifold("s_curve", 50, random_state=0)
    with pytest.raises(InvalidInputError, match=r"got shapes \(50, 3\) and \(40, 2\)"):
        evaluate_embedding(X, X[:40, :2])
    with pytest.raises(InvalidParameterValue, match=r"'n_neighbors' parameter must be an int in \[1, n_samples / 2\)"):
        evaluate_embedding(X, X[:, :2], n_neighbors=25)


@pytest.mark.slow
def test_a_nonlinear_autoencoder_charts_the_swiss_roll_where_pca_cannot():
    """At d=2 the autoencoder reconstructs the roll almost exactly (PCA loses a whole direction) and
    keeps neighbourhoods. It does not necessarily *unroll* it: see the README (section images)."""
    import aekit

    X, coordinates = make_manifold("swiss_roll", 1000, random_state=0)
    ae = aekit.Autoencoder(
        2, hidden_dims=(64, 64, 64), activation="gelu", loss="mse", epochs=60, batch_size=32, lr=3e-3,
        lr_schedule="cosine", early_stopping=False, random_state=0,
    ).fit(X)
    scaled = ae.scaler_.transform(X)
    pca = PCA(2).fit(scaled)
    pca_error = np.mean((pca.inverse_transform(pca.transform(scaled)) - scaled) ** 2)
    assert np.mean(ae.reconstruction_error(X)) < 0.25 * pca_error
    quality = evaluate_embedding(X, ae.transform(X), coordinates)
    # trustworthiness is what a projection loses (PCA's here: 0.86); continuity it keeps (PCA's: 0.99)
    assert quality.trustworthiness > 0.97 and quality.continuity > 0.95


@pytest.mark.slow
def test_a_geometry_regularised_autoencoder_unrolls_the_swiss_roll():
    """With geometry="isomap" the chart is laid flat: one latent axis follows the roll position
    (|rho| >= 0.9 on new points) where PCA's projection does not (|rho| about 0.2-0.3), and the
    roll is still reconstructed several times better than by PCA."""
    import aekit

    X, _ = make_manifold("swiss_roll", 1500, random_state=0)
    X_new, coordinates_new = make_manifold("swiss_roll", 1000, random_state=1)
    ae = aekit.Autoencoder(
        2, hidden_dims=(64, 64, 64), activation="gelu", loss="mse", epochs=100, batch_size=32, lr=3e-3,
        lr_schedule="cosine", early_stopping=False, random_state=0, geometry="isomap",
    ).fit(X)
    ae_rho = evaluate_embedding(X_new, ae.transform(X_new), coordinates_new).best_abs_spearman
    pca = PCA(2).fit(ae.scaler_.transform(X))
    scaled_new = ae.scaler_.transform(X_new)
    pca_rho = evaluate_embedding(X_new, pca.transform(scaled_new), coordinates_new).best_abs_spearman
    assert ae_rho[0] >= 0.9 and pca_rho[0] < 0.4, (ae_rho, pca_rho)
    pca_error = np.mean((pca.inverse_transform(pca.transform(scaled_new)) - scaled_new) ** 2)
    assert np.mean(ae.reconstruction_error(X_new)) < 0.25 * pca_error
