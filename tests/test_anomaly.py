"""Outlier scoring: the combined score against numpy, probabilities, thresholds, persistence, the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.stats import multivariate_normal, norm
from sklearn.covariance import EmpiricalCovariance
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

import aekit
from aekit import detect
from aekit.report import top_outliers, write_report
from aekit.training.sources import ValidationSplit
from aekit.workflows import outlier_threshold, score_file
from conftest import QUICK_FIT_2D, SCORING_FIT, assert_close, edit_config


@pytest.fixture(scope="module")
def planted():
    """600 rows near a 2-d plane in 6 features; the last 40 are outliers, 20 off the plane and 20 far along it."""
    rng = np.random.default_rng(0)
    factors, loadings = rng.normal(size=(600, 2)), rng.normal(size=(2, 6))
    factors[580:] = 6.0 * factors[580:] / np.linalg.norm(factors[580:], axis=1, keepdims=True)  # far along the plane
    X = factors @ loadings + 0.05 * rng.normal(size=(600, 6))
    X[560:580] += rng.normal(scale=1.0, size=(20, 6))  # off the plane: a reconstruction error
    is_outlier = np.arange(600) >= 560
    return X, is_outlier


@pytest.fixture(scope="module")
def combined(planted):
    return aekit.Autoencoder(**SCORING_FIT).fit(planted[0])


def test_score_state_and_scores_match_numpy_and_sklearn():
    rng = np.random.default_rng(1)
    errors, codes = rng.random((200, 5)) ** 2, rng.normal(size=(200, 3)) @ rng.normal(size=(3, 3))
    state = detect.fit_score_state([(errors[:70], codes[:70]), (errors[70:], codes[70:])])  # in two chunks
    assert_close(state.feature_scale, errors.mean(axis=0), rtol=1e-12, atol=0)
    distance = EmpiricalCovariance().fit(codes).mahalanobis(codes)  # squared distance, the independent reference
    expected = (errors / errors.mean(axis=0)).mean(axis=1) + distance / np.sqrt(2 * distance.mean())
    assert_close(detect.combined_scores(errors, codes, state), expected, rtol=1e-8, atol=1e-10)
    assert_close(state.code_scale, 3.0, rtol=1e-9, atol=0, what="the mean distance is the codes' rank")
    shares = detect.contributions(errors, codes, state)
    assert shares.shape == (200, 6)
    assert_close(shares.sum(axis=1), expected, rtol=1e-8, atol=1e-10)


def _two_modes_and_a_few_outliers(seed: int = 0) -> np.ndarray:
    """Codes in two clusters (70 % and 27 % of 1,000 rows) and a tight group of 3 % far off: correlated axes."""
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=(700, 2)) * 0.5 + [-3.0, 0.0], rng.normal(size=(270, 2)) * 0.5 + [3.0, 0.0],
             rng.normal(size=(30, 2)) * 0.1 + [0.0, 6.0]]
    return np.concatenate(parts) @ np.array([[1.0, 0.5], [0.0, 1.0]])


def test_latent_modes_are_the_densest_mixture_by_bic_less_its_small_modes_against_scikit_learn():
    codes = _two_modes_and_a_few_outliers()
    mean, covariance = codes.mean(axis=0), np.cov(codes.T, bias=True)
    modes = detect.fit_latent_modes(codes - mean, covariance, seed=0)
    # the 3 % group is fitted as a mode of its own, then left out; the clusters take a mode or two each
    assert_close(modes.weights.sum(), 0.97, rtol=0, atol=1e-6)
    assert modes.weights.min() >= detect.MODE_MIN_SHARE
    # independent reference: scikit-learn's mixture of lowest BIC on the whitened codes, its kept modes' densities
    z = (codes - mean) @ modes.whitening
    assert_close(z.T @ z / len(z), np.eye(2), rtol=0, atol=1e-10, what="whitened codes have unit covariance")
    mixtures = [GaussianMixture(count, covariance_type="diag", reg_covar=1e-6, random_state=0).fit(z)
                for count in range(1, 6)]
    reference = min(mixtures, key=lambda mixture: mixture.bic(z))
    kept = reference.weights_ >= detect.MODE_MIN_SHARE
    log_density = np.log(sum(weight * multivariate_normal(mean_, np.diag(variance)).pdf(z)
                             for weight, mean_, variance in zip(reference.weights_[kept], reference.means_[kept],
                                                                reference.covariances_[kept], strict=True)))
    bound = np.log(sum(weight * multivariate_normal(mean_, np.diag(variance)).pdf(mean_)
                       for weight, mean_, variance in zip(reference.weights_[kept], reference.means_[kept],
                                                          reference.covariances_[kept], strict=True)))
    assert_close(modes.distance(codes - mean), -2 * (log_density - bound), rtol=1e-6, atol=1e-8)
    assert modes.distance(codes - mean).min() >= 0
    # the rows of the small group and a row between the modes score far above the modes' own rows
    distance = modes.distance(np.array([[0.0, 6.0], [0.0, 0.0], [-3.0, 0.0], [3.0, 0.0]])
                              @ np.array([[1.0, 0.5], [0.0, 1.0]]) - mean)
    assert distance[0] > 5 * distance[2:].max() and distance[1] > 5 * distance[2:].max(), distance


def test_on_many_rows_the_modes_are_fitted_on_evenly_spaced_ones(monkeypatch):
    codes = _two_modes_and_a_few_outliers(2)
    mean, covariance = codes.mean(axis=0), np.cov(codes.T, bias=True)
    monkeypatch.setattr(detect, "MODE_FIT_ROWS", 250)
    modes = detect.fit_latent_modes(codes - mean, covariance, seed=0)
    monkeypatch.setattr(detect, "MODE_FIT_ROWS", 10_000)
    every_fourth = detect.fit_latent_modes(codes[np.linspace(0, 999, 250).astype(int)] - mean, covariance, seed=0)
    for name in ("whitening", "weights", "means", "variances"):
        assert_close(getattr(modes, name), getattr(every_fourth, name), rtol=1e-12, atol=1e-12, what=name)
    assert not np.allclose(modes.weights.sum(), detect.fit_latent_modes(codes - mean, covariance, 0).weights.sum())


def test_between_two_modes_the_modes_see_an_outlier_that_the_mahalanobis_distance_misses():
    codes = _two_modes_and_a_few_outliers(1)
    state = detect.fit_score_state([(np.ones((len(codes), 3)), codes)])
    middle = codes[:970].mean(axis=0, keepdims=True)  # between the clusters: the codes' mean, an empty place
    inliers = codes[:970]
    latent = lambda state, rows: detect.contributions(np.ones((len(rows), 3)), rows, state)[:, -1]  # noqa: E731
    assert (latent(state, middle) > latent(state, inliers)).mean() > 0.99
    mahalanobis = EmpiricalCovariance().fit(codes).mahalanobis  # one Gaussian: the squared Mahalanobis distance
    assert (mahalanobis(middle) > mahalanobis(inliers)).mean() < 0.05


def test_one_gaussian_mode_is_the_mahalanobis_distance_exactly():
    rng = np.random.default_rng(3)
    codes = rng.normal(size=(2000, 3)) @ rng.normal(size=(3, 3)) + 5.0
    state = detect.fit_score_state([(np.ones((2000, 2)), codes)])
    assert len(state.modes.weights) == 1
    distance = EmpiricalCovariance().fit(codes).mahalanobis(codes)
    assert_close(detect.contributions(np.ones((2000, 2)), codes, state)[:, -1] * state.latent_divisor, distance,
                 rtol=1e-8, atol=1e-8)


def test_damaged_latent_modes_are_refused_when_a_model_loads(combined, tmp_path):
    assert combined.score_state_.modes is not None
    for damage in ({"weights": [-1.0]}, {"variances": [[0.0, 1.0]]}, {"means": [[1.0]]}, {"whitening": "x"}):
        combined.save(tmp_path / "model", overwrite=True)
        edit_config(tmp_path / "model", lambda config, damage=damage: config["fitted"]["score_state"]["latent_modes"]
                     .update(damage))
        with pytest.raises(aekit.exceptions.ModelFileError, match="score_state"):
            aekit.load(tmp_path / "model")


def test_a_constant_feature_does_not_divide_by_zero():
    errors = np.zeros((50, 3))
    errors[:, 1:] = np.random.default_rng(0).random((50, 2))
    state = detect.fit_score_state([(errors, np.random.default_rng(1).normal(size=(50, 2)))])
    assert state.feature_scale[0] > 0 and np.isfinite(state.feature_scale).all()


def test_outlier_scores_are_the_combined_score_of_the_models_errors_and_codes(combined, planted):
    X = planted[0]
    errors, codes = combined.reconstruction_error(X, per_feature=True), combined.transform(X)
    expected = detect.combined_scores(errors, codes, combined.score_state_)
    assert_close(combined.outlier_scores(X), expected, rtol=1e-4, atol=1e-6)
    assert_close(combined.score_samples(X), -expected, rtol=1e-4, atol=1e-6)
    assert_close(combined.outlier_scores(X, per_feature=True).sum(axis=1), expected, rtol=1e-4, atol=1e-5)
    shares = combined.outlier_scores(X, per_feature=True)  # the state was learned on all of X (under 10,000 rows)
    assert_close(shares[:, :-1].sum(axis=1).mean(), 1.0, rtol=0.02, atol=0, what="the error term averages 1")
    assert shares[:, -1].min() >= 0


def test_the_combined_score_finds_the_planted_outliers_better_than_the_error(combined, planted):
    X, is_outlier = planted
    combined_auc = roc_auc_score(is_outlier, combined.outlier_scores(X))
    error_auc = roc_auc_score(is_outlier, combined.reconstruction_error(X))
    assert combined_auc > 0.95 and combined_auc > error_auc, (combined_auc, error_auc)


def test_predict_proba_is_calibrated_on_the_held_out_scores_and_agrees_with_predict(combined, planted):
    X = planted[0]
    proba = combined.predict_proba(X)
    assert proba.shape == (600, 2) and proba.dtype == np.float32
    assert_close(proba.sum(axis=1), np.ones(600), rtol=0, atol=1e-6)
    assert np.array_equal(proba[:, 1] > 0.5, combined.predict(X) == -1)
    scores = combined.outlier_scores(X).astype(np.float64)
    # the documented rule, from numpy's own quantiles of the stored distribution
    q25, q75 = np.interp([0.25, 0.75], np.linspace(0, 1, 1001), combined.score_quantiles_)
    sigma = (np.log(q75) - np.log(q25)) / 1.3489795
    expected = 1 / (1 + np.exp(-(np.log(scores) - np.log(combined.threshold_)) / sigma))
    assert_close(proba[:, 1], expected, rtol=1e-4, atol=1e-6)


def _auto_reference(scores: np.ndarray) -> tuple[float, bool]:
    """The documented "auto" rule, solved with scipy: a two-Gaussian mixture on the log of numpy's 1001 quantiles;
    with its components at least 2 apart in Ashman's D (sqrt(2) |m1 - m2| / sqrt(s1^2 + s2^2)) and its upper one
    at most half the rows, the root above the median where that component's posterior is 0.5 (the densities
    written out); else the 0.85 quantile. Also says whether the group was found."""
    log_scores = np.log(np.quantile(scores.astype(np.float64), np.linspace(0, 1, 1001)))
    mixture = GaussianMixture(2, random_state=0).fit(log_scores[:, None])
    weights, means, sds = mixture.weights_, mixture.means_.ravel(), np.sqrt(mixture.covariances_.ravel())
    upper = int(np.argmax(means))
    ashman = np.sqrt(2) * abs(means[0] - means[1]) / np.hypot(sds[0], sds[1])
    if ashman < 2 or weights[upper] > 0.5:
        return float(np.quantile(np.exp(log_scores), 0.85)), False

    def posterior_less_half(x):
        density = weights * norm.pdf(x, means, sds)
        return density[upper] / density.sum() - 0.5

    median = np.median(log_scores)
    grid = np.linspace(median, log_scores.max(), 10001)
    first = int(np.argmax([posterior_less_half(x) > 0 for x in grid]))
    return float(np.exp(brentq(posterior_less_half, grid[first - 1], grid[first]))), True


def test_contamination_auto_of_a_fitted_model_follows_the_documented_rule(planted):
    X, is_outlier = planted
    model = aekit.Autoencoder(**SCORING_FIT, contamination="auto", validation_fraction=0.0).fit(X)  # all held out
    scores = model.outlier_scores(X)
    expected, grouped = _auto_reference(scores)
    # the inliers' log scores are skewed: the mixture's second component takes their upper tail with the 40 planted
    # outliers (23 % of the rows, Ashman's D about 0.9), no separate group: 15 % of the rows are flagged
    assert not grouped
    assert_close(model.threshold_, expected, rtol=1e-5, atol=0)
    assert_close(outlier_threshold(model, contamination="auto")[0], model.threshold_, rtol=1e-9, atol=0)
    flagged = scores > model.threshold_
    assert flagged.mean() == pytest.approx(0.15, abs=1 / 600)
    assert flagged[is_outlier].all(), "the planted outliers are among the 15 % highest scores"


@pytest.mark.filterwarnings("ignore:The validation loss was still improving")
def test_contamination_auto_without_a_group_of_outliers_flags_fifteen_percent():
    X = np.random.default_rng(3).normal(size=(400, 5))  # one Gaussian cloud: no group of high scores
    model = aekit.Autoencoder(**SCORING_FIT, contamination="auto", validation_fraction=0.0).fit(X)
    scores = model.outlier_scores(X)
    expected, grouped = _auto_reference(scores)
    assert not grouped
    assert_close(model.threshold_, expected, rtol=1e-5, atol=0)
    assert np.mean(scores > model.threshold_) == pytest.approx(0.15, abs=1 / 400)


@pytest.mark.parametrize("share", [0.05, 0.3, 0.45])
def test_auto_flags_a_separate_group_of_high_scores_up_to_half_the_rows(share):
    """Log scores of inliers N(0, 1) and of a group of outliers N(5, 0.5) (Ashman's D = 6.9): the group is flagged
    whatever its share up to half, within a few rows (the Gaussians' overlap), checked against the reference."""
    rng = np.random.default_rng(1)
    n_out = int(share * 2000)
    scores = np.exp(np.concatenate([rng.normal(size=2000 - n_out), rng.normal(5.0, 0.5, size=n_out)]))
    threshold = detect.auto_threshold(np.quantile(scores, np.linspace(0, 1, 1001)))
    expected, grouped = _auto_reference(scores)
    assert grouped
    assert_close(np.log(threshold), np.log(expected), rtol=0, atol=np.ptp(np.log(scores)) / 2000)
    assert np.mean(scores > threshold) == pytest.approx(share, abs=0.005)


@pytest.mark.parametrize("case", ["one Gaussian", "skewed", "two overlapping groups", "upper group of 70 %"])
def test_auto_flags_the_fallback_share_when_the_scores_show_no_separate_smaller_group(case):
    """No outlying group: one Gaussian of log scores, a skewed one (a log-gamma), two groups 1 standard deviation
    apart (Ashman's D = 1), or a separate upper group holding most rows (the inliers, then): 15 % of the rows."""
    rng = np.random.default_rng(2)
    log_scores = {
        "one Gaussian": rng.normal(size=2000),
        "skewed": np.log(rng.gamma(2.0, size=2000)),
        "two overlapping groups": np.concatenate([rng.normal(size=1400), rng.normal(1.0, 1.0, size=600)]),
        "upper group of 70 %": np.concatenate([rng.normal(size=600), rng.normal(6.0, 0.5, size=1400)]),
    }[case]
    scores = np.exp(log_scores)
    threshold = detect.auto_threshold(np.quantile(scores, np.linspace(0, 1, 1001)))
    assert not _auto_reference(scores)[1]
    assert np.mean(scores > threshold) == pytest.approx(detect.AUTO_CONTAMINATION, abs=1 / 1000)
    assert detect.AUTO_CONTAMINATION == 0.15


@pytest.fixture(scope="module")
def small_table():
    """60 rows of 6 correlated heavy-tailed features (Student's t, 3 degrees of freedom): 6 rows are held out."""
    rng = np.random.default_rng(0)
    return rng.standard_t(3, size=(60, 6)) @ rng.normal(size=(6, 6))


def test_without_validation_rows_the_threshold_record_says_it_read_all_rows():
    # validation_fraction=0 holds no row out: the scores the threshold is read off are the training rows',
    # all of them, and the record (the fit summary, the flagged-share warning) must not call them held-out
    X = np.random.default_rng(0).normal(size=(400, 4))
    model = aekit.Autoencoder(**{**SCORING_FIT, "validation_fraction": 0.0}).fit(X)
    assert model.history_["threshold"]["scores"] == "all rows"
    assert model.history_["threshold"]["n_scores"] == 400
    assert_close(model.threshold_, np.quantile(model.outlier_scores(X), 0.95), rtol=1e-6, atol=0)


def test_with_few_held_out_rows_the_threshold_is_read_off_all_rows(small_table):
    X = small_table
    model = aekit.Autoencoder(**SCORING_FIT).fit(X)
    scores = model.outlier_scores(X)
    _, held_out = ValidationSplit(len(X), 0.1, model.seed_).rows()
    assert len(held_out) == 6 and detect.threshold_rows_needed(0.05) == 200
    # the 0.95 quantile of the 6 held-out scores (the rule before) flags far more than 5 % of this table
    assert np.mean(scores > np.quantile(scores[held_out], 0.95)) > 0.08
    assert_close(model.threshold_, np.quantile(scores, 0.95), rtol=1e-6, atol=0)
    assert_close(model.score_quantiles_, np.quantile(scores.astype(np.float64), np.linspace(0, 1, 1001)),
                 rtol=1e-6, atol=0)
    flagged = np.mean(model.predict(X) == -1)
    assert 0.03 <= flagged <= 0.08
    assert model.history_["threshold"] == {"scores": "all rows", "n_scores": 60, "n_rows_checked": 60,
                                           "training_share": pytest.approx(flagged)}


def test_a_share_flagged_far_from_contamination_is_warned_about(small_table, monkeypatch):
    monkeypatch.setattr(detect, "THRESHOLD_TAIL_ROWS", 0.1)  # the 6 held-out rows are enough: the rule before
    with pytest.warns(UserWarning, match=r"The outlier threshold flags \d+\.\d% of the 60 rows the model was "
                      r"fitted on, far from contamination=0.05: it was read off the 6 held-out rows, and the model "
                      r"scores the rows it was trained on higher than those; rows like the held-out ones are flagged "
                      r"at about 0.05\."):
        model = aekit.Autoencoder(**SCORING_FIT).fit(small_table)
    record = model.history_["threshold"]
    assert record["scores"] == "held-out rows" and record["n_scores"] == 6
    assert record["training_share"] == pytest.approx(np.mean(model.predict(small_table) == -1))
    assert record["training_share"] > 0.1


def test_error_score_is_the_reconstruction_error(planted):
    X = planted[0]
    model = aekit.Autoencoder(**SCORING_FIT, anomaly_score="error").fit(X)
    assert not hasattr(model, "score_state_")
    assert_close(model.outlier_scores(X), model.reconstruction_error(X), rtol=0, atol=0)
    assert_close(model.outlier_scores(X, per_feature=True).sum(axis=1), model.reconstruction_error(X), rtol=1e-5,
                 atol=1e-7)


@pytest.mark.parametrize("kind", sorted(detect.OUTLIER_SCORES))
def test_each_score_kind_is_computed_thresholded_saved_and_written_as_its_definition_says(kind, planted, tmp_path):
    X = planted[0][:300]
    reads_codes = detect.outlier_score(kind).reads_codes
    model = aekit.Autoencoder(**QUICK_FIT_2D, anomaly_score=kind, contamination=0.1, validation_fraction=0.0).fit(X)
    assert hasattr(model, "score_state_") == reads_codes  # normalisers learned only for a score that reads codes
    errors = model.reconstruction_error(X, per_feature=True)
    expected = (detect.combined_scores(errors, model.transform(X), model.score_state_) if reads_codes
                else errors.mean(axis=1))
    scores = model.outlier_scores(X)
    assert_close(scores, expected, rtol=1e-4, atol=1e-6)
    # the threshold is read off the held-out rows' scores of this kind (all rows here)
    assert_close(model.threshold_, np.quantile(scores, 0.9), rtol=1e-4, atol=0)
    config = json.loads((model.save(tmp_path / "model") / "config.json").read_text())
    assert (config["fitted"]["score_state"] is not None) == reads_codes
    loaded = aekit.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.outlier_scores(X), scores)
    np.save(tmp_path / "X.npy", X)
    score_file(loaded, tmp_path / "X.npy", tmp_path / "scores.csv")
    # as the file rounds them, from batches of another size (float32 rounding of tiny residuals)
    written = pd.read_csv(tmp_path / "scores.csv")["outlier_score"].to_numpy()
    assert_close(written, scores, rtol=1e-5, atol=1e-5 * float(scores.max()))


def test_bad_settings_are_refused():
    with pytest.raises(aekit.exceptions.InvalidParameterValue, match="'anomaly_score' parameter"):
        aekit.Autoencoder(anomaly_score="mahalanobis").fit(np.zeros((10, 3)))
    with pytest.raises(aekit.exceptions.InvalidParameterValue, match="'contamination' parameter"):
        aekit.Autoencoder(contamination="often").fit(np.zeros((10, 3)))


def test_save_and_load_keep_the_score(combined, planted, tmp_path):
    X = planted[0]
    combined.save(tmp_path / "model")
    loaded = aekit.load(tmp_path / "model")
    assert loaded.anomaly_score == "combined"
    np.testing.assert_array_equal(loaded.outlier_scores(X), combined.outlier_scores(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), combined.predict_proba(X))


def test_report_lists_the_top_outliers_with_their_largest_parts(combined, planted, tmp_path):
    X = planted[0].copy()
    X[5, 3] += 40.0  # one feature far off
    top = top_outliers(combined, X, n_rows=3)
    scores = combined.outlier_scores(X)
    assert [entry["row"] for entry in top] == np.argsort(-scores, kind="stable")[:3].tolist()
    assert top[0]["row"] == 5 and top[0]["parts"][0][0] == "x3" and top[0]["outlier"]
    assert_close(top[0]["probability"], combined.predict_proba(X[5:6])[0, 1], rtol=1e-5, atol=1e-6)
    summary = write_report(combined, tmp_path / "report.html", X)
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Top outliers</h2>" in page and summary["top_outliers"][0]["row"] == 5


def test_cli_fit_chooses_the_score_and_contamination_auto(planted, tmp_path, capsys):
    from aekit.cli import main

    np.save(tmp_path / "x.npy", planted[0][:200])
    options = ["--latent-dim", "2", "--hidden", "8", "--epochs", "2", "--json"]
    assert main(["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m"), "--anomaly-score", "error",
                 "--contamination", "auto", *options]) == 0
    summary = json.loads(capsys.readouterr().out)
    model = aekit.load(tmp_path / "m")
    assert model.anomaly_score == "error" and model.contamination == "auto" and summary["contamination"] == "auto"
    assert main(["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "n"), "--anomaly-score", "combnied",
                 *options]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--anomaly-score must be" in err and "combnied" in err
    assert "Did you mean 'combined'?" in err
