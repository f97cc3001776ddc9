"""The fit: from a data set (rows in memory or a file) to a trained, thresholded estimator.

``Autoencoder.fit`` and ``Autoencoder.fit_stream`` differ only in the data set they pass to
:func:`fit_data` (see :mod:`aekit.training.sources`), which reads top to bottom: the seed; the
statistics of the rows (:func:`aekit.preprocess.scaler_statistics`, merged over the processes when
each reads its own share) and the scaler fitted from them (:func:`aekit.preprocess.fitted_scaler`);
the checks and warnings those statistics allow (too few rows, float32 overflow, the loss, identical
rows); the validation split and the data sources, with PCA of the training rows for the anchored
model or ``latent_dim="auto"``; the module, trained by :func:`aekit.training.loop.fit_module` with
checkpoints (:func:`aekit.estimator.train.train`); the outlier threshold from the held-out rows'
scores (all the rows' when too few are held out: :mod:`aekit.detect`). Steps hand plain values to
the next (small dataclasses), and everything learned is set on the estimator in one block at the
end, as scikit-learn's ``PCA._fit_full`` does.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from sklearn.utils import check_random_state

from aekit import detect, geometry, hardware, preprocess
from aekit.estimator import inference
from aekit.estimator.train import HeldOutPass, check_model_size, pca_start, train
from aekit.exceptions import InvalidInputError, InvalidParameterValue, Setting, Words
from aekit.preprocess import tensor_view
from aekit.training import distributed
from aekit.training.devices import device_of, resolve_device
from aekit.training.sources import ValidationSplit

# The combined score's normalisers are means over rows (each feature's squared error, the codes' mean
# and covariance): on more rows, a uniform sample of this many estimates them well enough (relative
# standard error sqrt(2 / n) = 1.4 % for the mean of a chi-square-like squared error) and keeps the pass
# over them from growing with the data.
SCORE_STATE_ROWS = 10_000
SCORE_STATE_STREAM = 3  # the sample's seed is drawn from (seed_, this): apart from the validation split's draws
UNIT_INTERVAL_SLACK = 1e-6  # data within [-1e-6, 1 + 1e-6] counts as in [0, 1] (BCE targets; float32 rounding)
# Levels of score_quantiles_: 0, 0.001, ..., 1, so any contamination can pick its threshold later.
SCORE_QUANTILE_LEVELS = np.linspace(0.0, 1.0, 1001)


def fit_data(estimator, data, *, criterion=None):
    """Fit ``estimator`` (its parameters checked) on ``data`` (a data set of :mod:`aekit.training.sources`).

    ``criterion``: ``data`` holds a table's encoded rows, already scaled, NaN where a cell is missing
    (:mod:`aekit.estimator.tabular`); they are trained with that masked loss
    (:class:`aekit.models.losses.TableLoss`) instead of the squared error.
    """
    if estimator.geometry is not None and not data.in_memory:
        raise InvalidParameterValue(
            problem=Words(Setting("geometry", estimator.geometry), " embeds all training rows at once with Isomap, "
                          "which a streaming fit cannot do."),
            hint=Words("Use fit on data in memory, or ", Setting("geometry", None), "."),
            param="geometry", value=estimator.geometry)
    if estimator.n_jobs is not None and estimator.n_jobs > 0:  # this machine's limit: a loaded model may hold more
        hardware.check_thread_count(int(estimator.n_jobs))
    device = resolve_device(estimator.device)
    distributed.setup(device)  # joins the process group under torchrun; nothing otherwise
    device = device_of(device)  # "cuda" as cuda:N (this process's GPU under torchrun), as its tensors say it
    seed = _draw_seed(estimator.random_state)
    if criterion is not None:
        criterion.reseed(seed)  # the cells it hides from the training input
    # StandardScaler.fit would hold a float64 copy of the rows, twice their size
    scaler_name = None if criterion is not None else estimator.scaler  # a table's encoding scales its columns
    rows = _of_all_rows(preprocess.scaler_statistics(scaler_name, data.blocks()), data)
    scaler = preprocess.fitted_scaler(scaler_name, rows)
    if rows.n_rows < 2:
        raise InvalidInputError(
            f"{data.name} holds {rows.n_rows} sample(s) while a minimum of 2 is required: one to train on, one to "
            "check it. Give more rows."
        )
    n_features = len(rows.low)
    shape = estimator.input_shape
    if shape is not None and int(np.prod(shape)) != n_features:  # any architecture: plots reshape rows by it
        raise InvalidParameterValue(
            f"input_shape={tuple(shape)} holds {int(np.prod(shape))} values per image, but the rows have {n_features} "
            "features. Pass the (channels, height, width) of the images the rows were flattened from, or "
            "input_shape=None."
        )
    # the scaled range, from each feature's minimum and maximum: scaling is monotone, rounding included
    scaled_range = inference.scale_rows(_as_fitted(estimator, scaler_=scaler), np.stack([rows.low, rows.high]))
    loss = _choose_loss(estimator, scaled_range)
    _warn_about_rows(estimator, rows, data, n_features)
    check_model_size(estimator, n_features, loss, device)

    split = ValidationSplit(rows.n_rows, estimator.validation_fraction, seed)
    train_data, val_data, start = _sources(estimator, data, split, scaler, n_features, seed, device,
                                           criterion=criterion)
    trained = train(estimator, train_data, val_data, n_features=n_features, loss=loss, seed=seed, start=start,
                     device=device, criterion=criterion)
    model = _as_fitted(estimator, n_features_in_=n_features, seed_=seed, scaler_=scaler, module_=trained.module,
                       precision_=trained.precision)
    score_state, held_out_scores = _held_out_scores(model, data, split, trained.held_out)
    if criterion is not None:
        held_out_scores = _observed_scores(model, held_out_scores, data, split)
    # the threshold, read off the held-out scores or, too few to see its tail, all rows' (see aekit.detect),
    # the quantiles of those scores (for other contaminations), and the share it flags among the fit's rows
    fit_scores = _fit_rows_scores(model, data, split)
    scores, source = detect.scores_for_threshold(held_out_scores, fit_scores, estimator.contamination)
    if not split.n_validation:  # no row was held out: the "held-out" scores are the training rows', all of them
        source = "all rows"
    score_quantiles = np.quantile(scores.astype(np.float64), SCORE_QUANTILE_LEVELS)
    if estimator.contamination == "auto":
        threshold = detect.auto_threshold(score_quantiles)
    else:
        threshold = float(np.quantile(scores, 1.0 - estimator.contamination))
    threshold_record = {"scores": source, "n_scores": len(scores), "n_rows_checked": len(fit_scores),
                        "training_share": float(np.mean(fit_scores > threshold))}
    message = detect.flagged_share_warning(threshold_record, estimator.contamination)
    if message and not rows.all_rows_equal:  # identical rows have had their own warning
        warnings.warn(message, UserWarning, stacklevel=4)

    # everything the fit learned, set in one place
    estimator.n_features_in_ = n_features
    if data.feature_names is not None:
        estimator.feature_names_in_ = data.feature_names
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    estimator.seed_ = seed
    estimator.scaler_ = scaler
    estimator.loss_ = loss
    estimator.module_ = trained.module
    estimator.precision_ = trained.precision
    estimator.history_ = {**trained.history, "threshold": threshold_record}
    estimator.n_iter_ = len(trained.history["train_loss"])
    if score_state is not None:
        estimator.score_state_ = score_state
    elif hasattr(estimator, "score_state_"):
        del estimator.score_state_
    estimator.score_quantiles_ = score_quantiles
    estimator.threshold_ = threshold
    return estimator


def _sources(estimator, data, split: ValidationSplit, scaler, n_features: int, seed: int, device: torch.device,
             criterion=None):
    """The training and validation rows as trainer data sources, and PCA of the training rows where the
    model needs it (:func:`~aekit.estimator.train.pca_start`). With a geometry each row carries its target
    code in extra columns: PCA (and latent_dim="auto") comes first, from the scaled rows in memory, as
    Isomap needs d. A table's PCA (``criterion``, its loss) is of its rows as the model reads them: missing
    cells filled (:meth:`~aekit.models.losses.TableLoss.filled`)."""
    if criterion is not None:
        train_rows, _ = split.rows()
        rows = criterion.filled(tensor_view(data.scaled(scaler)[train_rows]))
        return (*data.sources(split, scaler, device), pca_start(estimator, rows, n_features))
    if estimator.geometry is None:
        train_data, val_data = data.sources(split, scaler, device)
        # the sources are this process's share of the training rows: PCA of every process's
        return train_data, val_data, pca_start(estimator, train_data, n_features, merge=distributed.merged_over_ranks)
    X = data.scaled(scaler)
    train_rows, _ = split.rows()
    start = pca_start(estimator, tensor_view(X[train_rows]), n_features)
    targets = geometry.isomap_target(
        X, train_rows, n_components=estimator.latent_dim if start is None else start.latent_dim,
        n_neighbors=estimator.geometry_neighbors, rng=np.random.default_rng([seed, 2]),
    )
    train_data, val_data = data.sources(split, scaler, device, targets=targets)
    return train_data, val_data, start


def _observed_scores(model, held_out_scores: np.ndarray, data, split: ValidationSplit) -> np.ndarray:
    """A table's held-out scores without the NaN of rows with no observed cell; all the rows' scores when no
    held-out row has one (a threshold needs scores)."""
    held_out_scores = held_out_scores[~np.isnan(held_out_scores)]
    if not len(held_out_scores):
        every = np.concatenate([inference.outlier_scores(model, X, scale=True) for X in data.arrays(split, "all")])
        held_out_scores = every[~np.isnan(every)]
    return held_out_scores


def _draw_seed(random_state) -> int:
    """The fit's one seed: of the weights, the validation split and the shuffling. Under torchrun every
    process takes the same (the smallest drawn), so one validation split (random_state=None draws one in each)."""
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    return distributed.min_over_ranks(seed)


def _as_fitted(estimator, **fitted):
    """``estimator`` as :mod:`~aekit.estimator.inference` reads it, with this fit's values so far: a shallow
    copy, so that the fit sets nothing on the estimator itself before its last block."""
    view = copy.copy(estimator)
    vars(view).update(fitted)
    return view


def _held_out_scores(model, data, split: ValidationSplit, last_pass: HeldOutPass | None):
    """The score's normalisers (None for a kind that reads no codes: :class:`aekit.detect.OutlierScore`) and the
    outlier score of every held-out row (the training rows when there are none), which the threshold is read off.

    ``model``: the fitted estimator as inference reads it (:func:`_as_fitted`). The scores come from
    ``last_pass`` when it kept them, else from another pass over the rows.
    """
    held_out = data.arrays(split, "validation" if split.n_validation else "train")
    no_rows = [np.empty(0, dtype=np.float32)]  # a process's share may hold no held-out row
    score_state = None
    if detect.outlier_score(model.anomaly_score).reads_codes:
        # normalisers from (a sample of) all rows, threshold from held-out ones
        statistics = inference.score_statistics(model, _score_state_rows(data, split, model.seed_), scale=True)
        score_state = detect.score_state_from(_of_all_rows(statistics, data), seed=model.seed_)
        model.score_state_ = score_state
        if last_pass is not None and last_pass.parts is not None:  # as outlier_scores gives them (float32)
            errors, codes = inference.split_parts(model, last_pass.parts)
            scores = detect.combined_scores(errors, codes, score_state).astype(np.float32)
        else:
            scores = np.concatenate([inference.outlier_scores(model, X, scale=True) for X in held_out] or no_rows)
    elif last_pass is not None:
        scores = last_pass.errors
    else:
        scores = np.concatenate([inference.row_errors(model, X, scale=True) for X in held_out] or no_rows)
    if data.sharded:  # each process scored its own rows: the threshold is read off all of them
        scores = distributed.gather_over_ranks(scores)
    return score_state, scores


def _of_all_rows(statistics, data):
    """The statistics of every row of ``data`` from those of the rows this process read: merged over the
    processes when each reads only its own share (``data.sharded``, a file under torchrun)."""
    return distributed.merged_over_ranks(statistics) if data.sharded else statistics


def _fit_rows_scores(model, data, split: ValidationSplit) -> np.ndarray:
    """The outlier scores of the fit's rows, training and held-out (of a uniform sample of
    ``SCORE_STATE_ROWS`` of them on more rows, as :func:`_score_state_rows` draws it); a table's rows
    with no observed cell left out."""
    scores = [inference.outlier_scores(model, X, scale=True) for X in _score_state_rows(data, split, model.seed_)]
    scores = np.concatenate(scores or [np.empty(0, dtype=np.float32)])
    if data.sharded:
        scores = distributed.gather_over_ranks(scores)
    return scores[~np.isnan(scores)]


def _score_state_rows(data, split: ValidationSplit, seed: int):
    """The rows the combined score's normalisers are learned from: all of them, or on more than
    ``SCORE_STATE_ROWS`` rows that many drawn uniformly at random (by their index in the whole data,
    so the same rows however they arrive and however many processes share them)."""
    if split.n_rows <= SCORE_STATE_ROWS:
        return data.arrays(split, "all")
    sample_seed = int(np.random.default_rng([seed, SCORE_STATE_STREAM]).integers(np.iinfo(np.int32).max))
    sample = ValidationSplit(split.n_rows, SCORE_STATE_ROWS / split.n_rows, sample_seed)
    return data.arrays(sample, "validation")  # the sample's "held-out" rows are the ones drawn


def _warn_about_rows(estimator, rows, data, n_features: int) -> None:
    """What the first pass over the rows gives reason to warn about."""
    if estimator.latent_dim != "auto" and estimator.latent_dim >= n_features:
        warnings.warn(Words(
            Setting("latent_dim", estimator.latent_dim), f" >= n_features={n_features}: the autoencoder is "
            "overcomplete and can learn the identity. Choose ", Setting("latent_dim"), " < n_features for a compressed "
            "representation."), UserWarning, stacklevel=5)
    if rows.all_rows_equal:  # one distinct row: every row gets the same code
        warnings.warn(
            f"All {rows.n_rows} rows of {data.name} are identical: there is nothing to learn and every row will "
            "get the same code. Check that the data was read correctly.",
            UserWarning,
            stacklevel=5,
        )


def _choose_loss(estimator, X_scaled: np.ndarray) -> str:
    low, high = float(X_scaled.min()), float(X_scaled.max())
    # a few float32 rounding steps of slack: MinMaxScaler maps a float32 column's maximum to 1.0000001
    in_unit_interval = low >= -UNIT_INTERVAL_SLACK and high <= 1.0 + UNIT_INTERVAL_SLACK
    if estimator.loss == "bce" and estimator.architecture == "anchored":
        raise InvalidParameterValue(
            problem=Words(Setting("loss", "bce"), " does not go with ", Setting("architecture", "anchored"), ": the "
                          "anchored model starts at PCA, the least-squares solution, and is trained with MSE."),
            hint=Words("Use ", Setting("loss", "mse"), " (or 'auto'), or ", Setting("architecture", "mlp"), "."),
            param="loss", value="bce")
    if estimator.loss == "auto":
        return "bce" if in_unit_interval and estimator.architecture != "anchored" else "mse"
    if estimator.loss == "bce" and not in_unit_interval:
        raise InvalidInputError(
            problem=Words(Setting("loss", "bce"), " needs data in [0, 1], but after ",
                          Setting("scaler", estimator.scaler), f" it lies in [{low:.4g}, {high:.4g}]."),
            hint=Words("Use ", Setting("scaler", "minmax"), " or ", Setting("loss", "mse"), "."),
            param="loss", value="bce")
    return estimator.loss


