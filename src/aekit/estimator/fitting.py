"""The fit: from a data set (rows in memory or a file) to a trained, thresholded estimator.

``Autoencoder.fit`` and ``Autoencoder.fit_stream`` differ only in the data set they pass to
:func:`fit_data` (see :mod:`aekit.training.sources`). In order: the scaler and a summary of the rows
(:func:`aekit.preprocess.fit_scaler`); the checks and warnings that summary allows (too few rows,
float32 overflow, the loss, identical rows); the validation split; for the anchored model or
``latent_dim="auto"`` PCA of the training rows; the module, trained by
:func:`aekit.training.loop.fit_module` with checkpoints; the outlier threshold from the held-out rows.
Everything learned is set on the estimator, ending in ``_``.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from aekit import detect, geometry, hardware, preprocess
from aekit.estimator import inference
from aekit.exceptions import InvalidInputError, InvalidParameterValue, TrainingError
from aekit.models import build_model
from aekit.models.anchored import AnchoredAutoencoder, choose_latent_dim, principal_components, replaces_pca
from aekit.models.losses import OUTPUT_ACTIVATION, reconstruction_loss
from aekit.models.mlp import AutoencoderModule
from aekit.preprocess import tensor_view
from aekit.training import distributed, loop
from aekit.training.checkpoint import Checkpointer
from aekit.training.devices import device_of, resolve_device
from aekit.training.loop import TrainConfig, resolve_precision
from aekit.training.precision import training_threads
from aekit.training.sources import ValidationSplit

# The combined score's normalisers are means over rows (each feature's squared error, the codes' mean
# and covariance): on more rows, a uniform sample of this many estimates them well enough (relative
# standard error sqrt(2 / n) = 1.4 % for the mean of a chi-square-like squared error) and keeps the pass
# over them from growing with the data (it was a third of a one-epoch fit's training work).
SCORE_STATE_ROWS = 10_000
SCORE_STATE_STREAM = 3  # the sample's seed is drawn from (seed_, this): apart from the validation split's draws
# The combined score's parts of each validation row (squared errors and codes) are kept from the pass over the
# final weights, for the threshold's scores, while they take at most this much memory; above, another pass
KEEP_PARTS_BYTES = 256 * 2**20
UNIT_INTERVAL_SLACK = 1e-6  # data within [-1e-6, 1 + 1e-6] counts as in [0, 1] (BCE targets; float32 rounding)
# Levels of error_quantiles_: 0, 0.001, ..., 1, so any contamination can pick its threshold later.
ERROR_QUANTILE_LEVELS = np.linspace(0.0, 1.0, 1001)
# batch_size="auto": at least this many steps per epoch on small data, batches of at least AUTO_BATCH_MIN
# rows, at most AUTO_BATCH_MAX (the batch of larger data)
AUTO_BATCH_STEPS = 4
AUTO_BATCH_MIN = 16
AUTO_BATCH_MAX = 256


def auto_batch_size(n_rows: int) -> int:
    """``batch_size="auto"``: the largest power of two giving ``AUTO_BATCH_STEPS`` steps per epoch over
    ``n_rows`` training rows, within [``AUTO_BATCH_MIN``, ``AUTO_BATCH_MAX``].

    Examples
    --------
    >>> auto_batch_size(45), auto_batch_size(400), auto_batch_size(60000)
    (16, 64, 256)
    """
    target = max(1, n_rows // AUTO_BATCH_STEPS)
    return int(min(AUTO_BATCH_MAX, max(AUTO_BATCH_MIN, 2 ** int(np.log2(target)))))


def fit_data(estimator, data):
    """Fit ``estimator`` (its parameters checked) on ``data`` (a data set of :mod:`aekit.training.sources`)."""
    if estimator.geometry is not None and not data.in_memory:
        raise InvalidParameterValue(
            f"geometry={estimator.geometry!r} embeds all training rows at once with Isomap, which a streaming fit "
            "cannot do. Use fit on data in memory, or geometry=None."
        )
    device = resolve_device(estimator.device)
    distributed.setup(device)  # joins the process group under torchrun; nothing otherwise
    device = device_of(device)  # "cuda" as cuda:N (this process's GPU under torchrun), as its tensors say it
    estimator.seed_ = int(check_random_state(estimator.random_state).randint(np.iinfo(np.int32).max))
    # one seed, so one validation split, in every process (random_state=None draws one in each)
    estimator.seed_ = distributed.min_over_ranks(estimator.seed_)
    spinning = hardware.spinning_threads_warning(torch.get_num_threads()) if device.type == "cpu" else None
    if spinning:
        warnings.warn(spinning, UserWarning, stacklevel=4)
    # each process's statistics are merged when each reads only its own rows (a file under torchrun)
    combine = distributed.reduce_over_ranks if data.sharded else None
    # StandardScaler.fit would hold a float64 copy of the rows, twice their size
    estimator.scaler_, rows = preprocess.fit_scaler(estimator.scaler, data.blocks(), combine=combine)
    if rows.n_rows < 2:
        raise InvalidInputError(
            f"{data.name} holds {rows.n_rows} sample(s) while a minimum of 2 is required: one to train on, one to "
            "check it. Give more rows."
        )
    _check_rows(estimator, rows, data)
    _check_model_size(estimator, device)
    split = ValidationSplit(rows.n_rows, estimator.validation_fraction, estimator.seed_)
    pca = targets = None
    if estimator.geometry is not None:  # each row carries its target code in extra columns
        X = data.scaled(estimator.scaler_)  # PCA, and latent_dim="auto", before Isomap needs d
        train_rows, _ = split.rows()
        pca = _principal_components(estimator, tensor_view(X[train_rows]))
        targets = geometry.isomap_target(
            X, train_rows, n_components=pca[2] if pca else estimator.latent_dim,
            n_neighbors=estimator.geometry_neighbors, rng=np.random.default_rng([estimator.seed_, 2]),
        )
    train_data, val_data = data.sources(split, estimator.scaler_, device, targets=targets)
    held_out_errors, held_out_parts = _train(estimator, train_data, val_data, estimator.n_features_in_, device,
                                             pca=pca)
    held_out = data.arrays(split, "validation" if split.n_validation else "train")
    no_rows = [np.empty(0, dtype=np.float32)]  # a process's share may hold no held-out row
    if estimator.anomaly_score == "combined":  # normalisers from (a sample of) all rows, threshold from held-out ones
        inference.fit_score_state(estimator, _score_state_rows(data, split, estimator.seed_), scale=True,
                                  combine=combine, gather=distributed.gather_over_ranks if data.sharded else None)
        if held_out_parts is not None:  # as outlier_scores gives them (float32), from the last validation pass
            errors, codes = inference.split_parts(estimator, held_out_parts)
            held_out_errors = detect.combined_scores(errors, codes, estimator.score_state_).astype(np.float32)
        else:
            held_out_errors = np.concatenate([inference.outlier_scores(estimator, X, scale=True) for X in held_out]
                                             or no_rows)
    elif held_out_errors is None:  # not kept from training (see _train): another pass over the rows
        held_out_errors = np.concatenate([inference.row_errors(estimator, X, scale=True) for X in held_out]
                                         or no_rows)
    if data.sharded:  # each process scored its own rows: the threshold is read off all of them
        held_out_errors = distributed.gather_over_ranks(held_out_errors)
    _set_threshold(estimator, held_out_errors)
    return estimator


def _score_state_rows(data, split: ValidationSplit, seed: int):
    """The rows the combined score's normalisers are learned from: all of them, or on more than
    ``SCORE_STATE_ROWS`` rows that many drawn uniformly at random (by their index in the whole data,
    so the same rows however they arrive and however many processes share them)."""
    if split.n_rows <= SCORE_STATE_ROWS:
        return data.arrays(split, "all")
    sample_seed = int(np.random.default_rng([seed, SCORE_STATE_STREAM]).integers(np.iinfo(np.int32).max))
    sample = ValidationSplit(split.n_rows, SCORE_STATE_ROWS / split.n_rows, sample_seed)
    return data.arrays(sample, "validation")  # the sample's "held-out" rows are the ones drawn


def _check_rows(estimator, rows, data) -> None:
    """What the first pass over the rows tells: their names and size, the loss, and what to warn about."""
    estimator.n_features_in_ = len(rows.low)
    if data.feature_names is not None:
        estimator.feature_names_in_ = data.feature_names
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    # the scaled range, from each feature's minimum and maximum: scaling is monotone, rounding included
    estimator.loss_ = _choose_loss(estimator, inference.scale_rows(estimator, np.stack([rows.low, rows.high])))
    if estimator.latent_dim != "auto" and estimator.latent_dim >= estimator.n_features_in_:
        warnings.warn(
            f"latent_dim={estimator.latent_dim} >= n_features={estimator.n_features_in_}: the autoencoder is "
            "overcomplete and can learn the identity. Choose latent_dim < n_features for a compressed representation.",
            UserWarning,
            stacklevel=5,
        )
    if rows.all_rows_equal:  # one distinct row: every row gets the same code
        warnings.warn(
            f"All {rows.n_rows} rows of {data.name} are identical: there is nothing to learn and every row will "
            "get the same code. Check that the data was read correctly.",
            UserWarning,
            stacklevel=5,
        )


# Training holds each parameter four times in float32: the weights, their gradients and Adam's two moments.
TRAINING_BYTES_PER_PARAMETER = 16


def _check_model_size(estimator, device: torch.device) -> None:
    """Refuse, before anything is built, widths whose training cannot fit in the memory ``device`` has free.

    The parameters are counted on the meta device (no memory); with ``latent_dim="auto"`` at its smallest, 1.
    """
    latent_dim = 1 if estimator.latent_dim == "auto" else int(estimator.latent_dim)
    config = _module_config(estimator, estimator.n_features_in_, estimator.loss_, latent_dim)
    try:
        with torch.device("meta"):
            n_parameters = sum(p.numel() for p in build_model(estimator.architecture, **config).parameters())
    except RuntimeError:  # sizes whose product overflows torch's integers
        n_parameters = None
    available = hardware.available_memory(device)
    needed = None if n_parameters is None else n_parameters * TRAINING_BYTES_PER_PARAMETER
    if needed is None or (available is not None and needed > available):
        size = "more parameters than torch can count" if n_parameters is None else (
            f"{n_parameters:,} parameters, and training them needs {needed / 2**30:.3g} GiB (weights, gradients and "
            f"Adam's two moments, float32) where this machine has {available / 2**30:.3g} GiB free")
        raise InvalidParameterValue(
            f"The 'hidden_dims' parameter of Autoencoder is too wide for this machine: {tuple(estimator.hidden_dims)} "
            f"on {estimator.n_features_in_} features gives the {estimator.architecture} model {size}. Choose smaller "
            "widths."
        )


def _choose_loss(estimator, X_scaled: np.ndarray) -> str:
    low, high = float(X_scaled.min()), float(X_scaled.max())
    # a few float32 rounding steps of slack: MinMaxScaler maps a float32 column's maximum to 1.0000001
    in_unit_interval = low >= -UNIT_INTERVAL_SLACK and high <= 1.0 + UNIT_INTERVAL_SLACK
    if estimator.loss == "bce" and estimator.architecture == "anchored":
        raise InvalidParameterValue(
            "loss='bce' does not go with architecture='anchored': the anchored model starts at PCA, the "
            "least-squares solution, and is trained with MSE. Use loss='mse' (or 'auto'), or architecture='mlp'."
        )
    if estimator.loss == "auto":
        return "bce" if in_unit_interval and estimator.architecture != "anchored" else "mse"
    if estimator.loss == "bce" and not in_unit_interval:
        raise InvalidInputError(
            f"loss='bce' needs data in [0, 1], but after scaler={estimator.scaler!r} it lies in "
            f"[{low:.4g}, {high:.4g}]. Use scaler='minmax' or loss='mse'."
        )
    return estimator.loss


def _module_config(estimator, n_features: int, loss: str, latent_dim: int) -> dict:
    config = {
        "input_dim": n_features,
        "latent_dim": int(latent_dim),
        "output_activation": OUTPUT_ACTIVATION[loss],
    }
    if estimator.architecture in ("mlp", "anchored"):
        config.update(hidden_dims=[int(h) for h in estimator.hidden_dims], activation=estimator.activation)
    elif estimator.architecture == "conv":
        if estimator.input_shape is None:
            raise InvalidParameterValue(
                "architecture='conv' needs input_shape=(channels, height, width), the shape of the images "
                f"each row was flattened from (rows have {n_features} features). Got input_shape=None."
            )
        config.update(
            input_shape=[int(s) for s in estimator.input_shape],
            channels=[int(h) for h in estimator.hidden_dims],
            activation=estimator.activation,
        )
    return config


def _principal_components(estimator, train_data, combine=None) -> tuple | None:
    """PCA of the training rows and the latent dimension, when the model or ``latent_dim="auto"``
    needs them: ``(pca, rule, latent_dim)`` (``rule`` None for a given ``latent_dim``), else None.
    ``combine``: each process holds its share of the rows, and the PCA is of all of them."""
    anchored = estimator.architecture == "anchored"
    if not anchored and estimator.latent_dim != "auto":
        return None
    n_rows = _n_rows(train_data)
    max_dim = max(1, min(estimator.n_features_in_ - 1, n_rows))
    wanted = None if estimator.latent_dim == "auto" else int(estimator.latent_dim)
    if wanted is None and distributed.world_size() > 1:  # each process sees its own rows: d could differ
        raise InvalidParameterValue(
            "latent_dim='auto' chooses d from the rows one process sees, so under torchrun the processes could "
            "choose differently. Pass latent_dim (e.g. the latent_dim_ of a fit in one process)."
        )
    pca = principal_components(train_data, max_components=wanted, combine=combine)
    if wanted is not None:
        return pca, None, wanted
    latent_dim, rule = choose_latent_dim(pca, max_dim=max_dim)
    return pca, rule, latent_dim


def _train(estimator, train_data, val_data, n_features: int, device: torch.device,
           pca=None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Build the module and train it on tensors or data sources (``fit`` and streaming fits).

    The anchored model starts at PCA of the training rows (``pca``: from :meth:`_principal_components`,
    computed here when None). Returns, from the validation pass that chose the final weights, the mean
    squared error of each validation row and, for the combined score (within ``KEEP_PARTS_BYTES``),
    each one's squared errors and codes side by side (n_val x (n_features + latent_dim)); each is None
    when that pass did not give it in this process (no validation rows, a resumed run that ended on
    an earlier epoch's weights, PCA refitted, DDP): then compute them anew.
    """
    if pca is None:  # of every process's training rows (each holds its own share), as one process would
        combine = distributed.reduce_over_ranks if distributed.world_size() > 1 else None
        pca = _principal_components(estimator, train_data, combine=combine)
    latent_dim = estimator.latent_dim if pca is None else pca[2]
    anchored = estimator.architecture == "anchored"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(estimator.seed_)
        config = _module_config(estimator, n_features, estimator.loss_, latent_dim)
        estimator.module_ = build_model(estimator.architecture, **config)
        if anchored:
            estimator.module_.anchor(pca[0].mean, _padded(pca[0].components[:latent_dim], latent_dim))
        estimator.module_ = estimator.module_.to(device)
    loss_name = estimator.loss_
    n_train = _n_rows(train_data)
    batch_size = auto_batch_size(n_train) if estimator.batch_size == "auto" else int(estimator.batch_size)
    estimator.precision_ = resolve_precision(estimator.precision, estimator.module_, device, batch_rows=batch_size)
    # n_jobs=None on a CPU: the training steps take the threads that make them fastest here (a small
    # model's steps are fastest on one); the passes before and after keep all of them
    steps_threads = None
    if estimator.n_jobs is None and device.type == "cpu" and distributed.world_size() == 1:
        chosen = training_threads(estimator.module_, device, batch_size, estimator.precision_)
        steps_threads = chosen["threads"]
        if estimator.verbose and steps_threads != torch.get_num_threads() and "step_ms" in chosen:  # timed
            timed = ", ".join(f"{n}: {ms:.3g} ms" for n, ms in chosen["step_ms"].items())
            print(f"training steps on {steps_threads} of {torch.get_num_threads()} threads (one step by thread "
                  f"count: {timed}; n_jobs sets them)", file=sys.stderr)
    if batch_size >= n_train > AUTO_BATCH_MIN:
        warnings.warn(
            f"batch_size={batch_size} is not smaller than the {n_train} training rows: one step per epoch, too "
            "few to learn more than the mean. Use batch_size='auto' or a batch a fraction of the rows.",
            UserWarning,
            stacklevel=5,
        )

    weight = float(estimator.geometry_weight)
    # each validation row's error, kept from the pass over the final weights: the threshold's errors
    # without another forward pass (not under DDP, where each process validates only its share)
    keep_errors = distributed.world_size() == 1
    n_val = 0 if val_data is None else _n_rows(val_data)
    keep_parts = (keep_errors and estimator.anomaly_score == "combined"
                  and n_val * (n_features + latent_dim) * 4 <= KEEP_PARTS_BYTES)
    pass_errors: list[torch.Tensor] = []
    kept: list[torch.Tensor] = []
    pass_parts: list[torch.Tensor] = []  # keep_parts: each validation row's squared errors and codes
    kept_parts: list[torch.Tensor] = []

    def loss_fn(module: AutoencoderModule, batch: torch.Tensor) -> torch.Tensor:
        if estimator.geometry is None:
            rows = batch
            raw, latent = module(rows, logits=True)
            loss = reconstruction_loss(loss_name, raw, rows)
        else:
            rows, target = batch[:, :n_features].contiguous(), batch[:, n_features:]  # see fit
            raw, latent = module(rows, logits=True)
            geometric = reconstruction_loss("mse", latent.float(), target)  # distance to Isomap's codes
            loss = reconstruction_loss(loss_name, raw, rows) + weight * geometric
        if keep_errors and not module.training:  # a validation pass: the threshold's errors
            reconstruction = module.output(raw)
            pass_errors.append(inference.row_mse(reconstruction, rows))
            if keep_parts:
                pass_parts.append(inference.joined_parts(reconstruction, rows, latent))
        return loss

    def start_loss(module: AnchoredAutoencoder, rows: torch.Tensor) -> torch.Tensor:
        """The anchored model's starting loss: its branches add exactly zero there, so its reconstruction is
        its linear maps' (PCA's), at a fraction of a forward pass's cost."""
        reconstruction = module.linear_reconstruction(rows)
        if keep_errors:
            pass_errors.append(inference.row_mse(reconstruction, rows))
        return reconstruction_loss(loss_name, reconstruction, rows)

    pca_errors: list[torch.Tensor] = []  # the anchored model's start (PCA): each validation row's error

    def on_epoch_end(epoch: int, final_so_far: bool) -> None:
        if epoch < 0:
            pca_errors[:] = pass_errors
        if final_so_far:
            kept[:], kept_parts[:] = pass_errors, pass_parts
        pass_errors.clear()
        pass_parts.clear()

    config = TrainConfig(
        epochs=estimator.epochs,
        batch_size=batch_size,
        lr=estimator.lr,
        lr_schedule=estimator.lr_schedule,
        early_stopping=estimator.early_stopping,
        patience=estimator.patience,
        seed=estimator.seed_,
        verbose=bool(estimator.verbose),
        precision=estimator.precision_,
        run=_run_description(estimator, train_data, val_data, n_features),
    )
    checkpointer = None
    if estimator.checkpoint_dir is not None:
        checkpointer = Checkpointer(
            estimator.checkpoint_dir, every=estimator.checkpoint_every, resume=estimator.resume,
            writer=distributed.is_main_process(),
        )
    try:
        with hardware.threads(steps_threads):
            history = loop.fit_module(
                estimator.module_, loss_fn, train_data, val_data, config, checkpointer=checkpointer,
                on_epoch_end=on_epoch_end,
                # with geometry, the loss also weighs the codes' distance to their targets: the full pass
                initial_candidate=anchored and (start_loss if estimator.geometry is None else True),
            )
    except TrainingError as error:  # say what this estimator can do about it, and that nothing was fitted
        stem = str(error)[: getattr(error, "advice_at", len(str(error)))]
        scale = "" if estimator.scaler == "standard" else " Scaling the data (scaler='standard') may also help."
        for name in [name for name in vars(estimator) if name.endswith("_") and not name.startswith("_")]:
            delattr(estimator, name)  # neither this half-trained module nor a previous fit's attributes remain
        raise TrainingError(f"{stem}{scale} The fit failed: no model was fitted or saved.") from None
    estimator.history_ = history.to_dict()
    estimator.history_["batch_size"] = batch_size
    if pca is not None and pca[1] is not None:
        estimator.history_["latent_dim_rule"] = pca[1]
    if anchored:
        estimator.history_["pca"] = _pca_verdict(history, latent_dim, estimator.geometry is not None)
        may_refit = estimator.early_stopping and estimator.geometry is None and distributed.world_size() == 1
        pca_wins = history.best_epoch == 0
        if may_refit and val_data is not None and not pca_wins and pca_errors and kept:  # paired, same rows
            pca_wins = not replaces_pca(estimator.history_["pca"], torch.cat(kept).cpu(), torch.cat(pca_errors).cpu())
        if may_refit and pca_wins and val_data is not None:
            history.best_epoch = estimator.history_["best_epoch"] = 0
            # PCA won: the final model is PCA of all the rows, the better estimate of the same model. The
            # threshold keeps the validation rows' errors under the training rows' PCA (out of sample). When
            # pca[0] kept the training rows' covariance, only the validation rows are read again.
            if pca[0].covariance is not None:
                refit = principal_components(val_data, max_components=latent_dim, previous=pca[0])
            else:  # wide rows
                refit = principal_components(train_data, val_data, max_components=latent_dim)
            estimator.module_.anchor(refit.mean, _padded(refit.components[:latent_dim], latent_dim))
            kept.clear()  # the threshold's errors are then those of this model: a fresh pass
            kept_parts.clear()
    estimator.n_iter_ = len(history.train_loss)
    _warn_not_converged(history, estimator.early_stopping)
    return (torch.cat(kept).cpu().numpy() if kept else None,
            torch.cat(kept_parts).cpu().numpy() if kept_parts else None)


# Parameters that do not change what is trained (or that TrainConfig already holds)
_NOT_IN_RUN = ("epochs", "verbose", "device", "checkpoint_dir", "checkpoint_every", "resume", "random_state",
               "contamination", "anomaly_score", "batch_size", "lr", "lr_schedule", "early_stopping", "patience",
               "precision", "n_jobs")


def _n_rows(data) -> int:
    """The rows of a tensor or a data source."""
    return data.n_rows if hasattr(data, "n_rows") else len(data)


def _run_description(estimator, train_data, val_data, n_features: int) -> dict:
    """The settings and data shape a checkpoint must share to be resumed by this fit (JSON-ready)."""
    run = {name: value for name, value in estimator.get_params().items() if name not in _NOT_IN_RUN}
    for name in ("hidden_dims", "input_shape"):  # (8,) and [8] are the same setting
        run[name] = None if run[name] is None else [int(v) for v in run[name]]
    n_val = 0 if val_data is None else _n_rows(val_data)
    # all processes' rows: each holds its own share, and a checkpoint is resumed by every process
    n_train, n_val = distributed.sum_over_ranks([train_data.n_rows, n_val])
    run.update(n_features=int(n_features), train_rows=int(n_train), validation_rows=int(n_val),
               fitted_loss=estimator.loss_)
    return run


def _set_threshold(estimator, held_out_errors: np.ndarray) -> None:
    """``threshold_`` and the quantiles of the held-out scores behind it (other contaminations)."""
    estimator.error_quantiles_ = np.quantile(held_out_errors.astype(np.float64), ERROR_QUANTILE_LEVELS)
    if estimator.contamination == "auto":
        estimator.threshold_ = detect.auto_threshold(estimator.error_quantiles_)
    else:
        estimator.threshold_ = float(np.quantile(held_out_errors, 1.0 - estimator.contamination))


PCA_IMPROVEMENT = 1e-3  # the non-linear part "improved on PCA" when it lowers the validation loss by more


def _pca_verdict(history, latent_dim: int, with_geometry: bool) -> dict:
    """Whether training improved on the anchored model's start (PCA), in numbers and in words."""
    pca_loss = history.initial_loss
    losses = [loss for loss in history.val_loss if np.isfinite(loss)] or history.train_loss
    best = min([pca_loss, *losses]) if pca_loss is not None else None
    improved = bool(best is not None and history.best_epoch > 0 and best < pca_loss * (1 - PCA_IMPROVEMENT))
    where = "validation" if any(np.isfinite(history.val_loss)) else "training"
    if pca_loss is None:
        message = f"the model started at PCA (d={latent_dim}); its starting loss was not recorded (resumed run)"
    elif improved:
        message = (f"the non-linear part improved on PCA at d={latent_dim}: {where} loss {best:.5g} against PCA's "
                   f"{pca_loss:.5g} ({1 - best / pca_loss:.1%} lower)")
    else:
        message = f"the non-linear part did not improve on PCA at d={latent_dim} on this data: the model is PCA"
    if with_geometry:
        message += " (losses include the geometry term)"
    return {"latent_dim": latent_dim, "val_loss": pca_loss, "best_val_loss": best, "improved": improved,
            "message": message}


def _padded(components: torch.Tensor, latent_dim: int) -> torch.Tensor:
    """``latent_dim`` rows: more codes than PCA has components start at 0 (the model is still PCA)."""
    missing = latent_dim - len(components)
    return components if missing <= 0 else torch.cat([components, components.new_zeros(missing, components.shape[1])])


def _warn_not_converged(history, early_stopping: bool) -> None:
    """Training that was still improving at its last epoch stopped too soon: say so."""
    n_epochs = len(history.train_loss)
    if early_stopping and n_epochs > 1 and history.best_epoch == n_epochs and history.stop_reason == "max_epochs":
        warnings.warn(
            f"The validation loss was still improving at the last epoch ({n_epochs}): training has not converged. "
            "Raise epochs (or the learning rate) for a better model.",
            ConvergenceWarning,
            stacklevel=6,
        )
