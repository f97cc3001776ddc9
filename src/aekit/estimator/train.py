"""Training the estimator's module: built from its parameters, trained by :func:`aekit.training.loop.fit_module`.

:func:`train` is the training step of :func:`aekit.estimator.fitting.fit_data`: the module (the anchored
model started at PCA of the training rows, :func:`pca_start`), the batch size, precision and threads,
the loss, checkpoints, and for the anchored model whether PCA stays. It hands back plain values
(:class:`Trained`); the fit sets them on the estimator.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from aekit import detect, hardware
from aekit.estimator import inference
from aekit.exceptions import InvalidParameterValue, Setting, TrainingError, Words, joined
from aekit.models import build_model
from aekit.models.anchored import (
    AnchoredAutoencoder,
    PrincipalComponents,
    choose_latent_dim,
    principal_components,
    replaces_pca,
)
from aekit.models.losses import OUTPUT_ACTIVATION, reconstruction_loss
from aekit.models.mlp import AutoencoderModule
from aekit.training import distributed, loop
from aekit.training.checkpoint import Checkpointer
from aekit.training.config import History, TrainConfig
from aekit.training.loop import LossFn
from aekit.training.precision import autocast, resolve_precision, training_threads

# The combined score's parts of each validation row (squared errors and codes) are kept from the pass over the
# final weights, for the threshold's scores, while they take at most this much memory; above, another pass
KEEP_PARTS_BYTES = 256 * 2**20
# batch_size="auto": at least this many steps per epoch on small data, batches of at least AUTO_BATCH_MIN
# rows, at most AUTO_BATCH_MAX (the batch of larger data)
AUTO_BATCH_STEPS = 4
AUTO_BATCH_MIN = 16
AUTO_BATCH_MAX = 256
# epochs="auto": at least AUTO_EPOCH_STEPS optimizer steps, and at least AUTO_EPOCHS_MIN epochs (what a large
# table, whose epochs hold that many steps already, always had): a small table's epochs are a few steps each,
# and a fixed number of epochs cut its fits off still improving (docs/performance.md, "Epochs").
AUTO_EPOCH_STEPS = 10_000
AUTO_EPOCHS_MIN = 100
# Full-batch training (one step per epoch) is warned about below this many epochs; a full-batch fit with
# thousands of exact-gradient steps (aekit.analysis' linear model: 2,000) is deliberate.
FULL_BATCH_MIN_EPOCHS = 1000


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


def auto_epochs(steps_per_epoch: int) -> int:
    """``epochs="auto"``: enough epochs for ``AUTO_EPOCH_STEPS`` optimizer steps at ``steps_per_epoch`` steps
    an epoch, and at least ``AUTO_EPOCHS_MIN``; early stopping usually ends training before.

    Examples
    --------
    >>> auto_epochs(7), auto_epochs(100), auto_epochs(211)
    (1429, 100, 100)
    """
    return max(AUTO_EPOCHS_MIN, math.ceil(AUTO_EPOCH_STEPS / max(1, int(steps_per_epoch))))


@dataclass
class PcaStart:
    """PCA of the training rows, where the anchored model or ``latent_dim="auto"`` needs it."""

    pca: PrincipalComponents
    latent_dim: int
    rule: str | None  # latent_dim="auto": the rule that chose latent_dim, in words (history_["latent_dim_rule"])


@dataclass
class HeldOutPass:
    """A pass of the final weights over this process's validation rows: each row's mean squared error and,
    for the combined score, each one's squared errors and codes side by side (n_val x (n_features + latent_dim))."""

    errors: np.ndarray
    parts: np.ndarray | None


@dataclass
class Trained:
    """What training gives: the module with its final weights, and how it was trained."""

    module: AutoencoderModule
    precision: str
    history: dict
    held_out: HeldOutPass | None  # None where the scores are computed afresh (see train)


def pca_start(estimator, train_data, n_features: int, merge=None) -> PcaStart | None:
    """PCA of the training rows and the latent dimension, when the anchored model or ``latent_dim="auto"``
    needs them, else None. ``merge``: ``train_data`` is one share of the rows, and the PCA is of every
    share's (see :func:`aekit.models.anchored.principal_components`)."""
    if estimator.architecture != "anchored" and estimator.latent_dim != "auto":
        return None
    if estimator.latent_dim != "auto":
        pca = principal_components(train_data, max_components=int(estimator.latent_dim), merge=merge)
        return PcaStart(pca, int(estimator.latent_dim), None)
    # the PCA, and so d, is of every process's training rows (merged in rank order): the same in each process
    pca = principal_components(train_data, max_components=None, merge=merge)
    latent_dim, rule = choose_latent_dim(pca, max_dim=max(1, min(n_features - 1, pca.n_rows)))
    return PcaStart(pca, latent_dim, rule)


def train(estimator, train_data, val_data, *, n_features: int, loss: str, seed: int, start: PcaStart | None,
           device: torch.device, criterion=None) -> Trained:
    """Build the module and train it on tensors or data sources (``fit`` and streaming fits).

    The anchored model starts at PCA of the training rows (``start``), and its start competes with every
    epoch; with early stopping, PCA stays unless the best epoch beats it significantly, and it is then
    refitted on all the rows. ``Trained.held_out`` holds the final weights' errors on the validation rows
    for the threshold; None where there are none, under torchrun (each process validates only its share),
    and when PCA was refitted: the scores are then computed afresh. ``criterion``: a table's masked loss
    (:class:`aekit.models.losses.TableLoss`), in place of the reconstruction loss; its scores are computed
    afresh, and PCA is kept or replaced by the validation loss alone.
    """
    module = _build_module(estimator, n_features, loss, seed, start, device)
    anchored = estimator.architecture == "anchored"
    n_train = _n_rows(train_data)
    n_val = 0 if val_data is None else _n_rows(val_data)
    batch_size, steps_per_epoch, epochs = _batch_size_and_epochs(estimator, n_train)
    precision = resolve_precision(estimator.precision, module, device)
    geometry_weight = None if estimator.geometry is None else float(estimator.geometry_weight)
    loss_fn = _training_loss(loss, n_features, geometry_weight) if criterion is None else _table_loss(criterion)
    # the anchored model's start competes with every epoch; with geometry, the loss also weighs the codes'
    # distance to their targets, so the start is scored with the full loss
    start_loss_fn = None
    if anchored and criterion is not None:
        start_loss_fn = _table_start_loss(criterion)
    elif anchored:
        start_loss_fn = _start_loss if geometry_weight is None else loss_fn
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=estimator.lr,
        lr_schedule=estimator.lr_schedule,
        early_stopping=estimator.early_stopping,
        patience=estimator.patience,
        seed=seed,
        verbose=bool(estimator.verbose),
        precision=precision,
        run=_run_description(estimator, train_data, val_data, n_features, loss),
    )
    single_process = not distributed.several_processes()
    # PCA may be refitted on all the rows when it wins: a paired test of the validation rows' errors decides
    may_refit = (anchored and estimator.early_stopping and estimator.geometry is None and criterion is None
                 and single_process and n_val > 0)

    # the passes over the validation rows run on the training steps' threads: the numbers of the loop's passes
    steps_threads = _steps_threads(estimator, module, device, batch_size)
    with hardware.threads(steps_threads):
        pca_errors = _pca_errors(module, val_data, precision) if may_refit else None
        history = _fit_module(estimator, module, loss_fn, train_data, val_data, config, start_loss_fn)
        pca_wins = anchored and history.best_epoch == 0
        held_out = None
        if single_process and n_val and not (may_refit and pca_wins) and criterion is None:
            keep_parts = (detect.outlier_score(estimator.anomaly_score).reads_codes
                          and n_val * (n_features + module.latent_dim) * 4 <= KEEP_PARTS_BYTES)
            held_out = _held_out_pass(module, val_data, n_features, precision, keep_parts)

    record = history.to_dict()
    record["batch_size"] = batch_size
    record["steps_per_epoch"] = steps_per_epoch
    record["max_epochs"] = epochs
    record["training_threads"] = steps_threads or torch.get_num_threads()
    if start is not None and start.rule is not None:
        record["latent_dim_rule"] = start.rule
    if anchored:
        record["pca"] = _pca_verdict(history, module.latent_dim, estimator.geometry is not None)
    if may_refit and (pca_wins or not replaces_pca(record["pca"], torch.from_numpy(held_out.errors), pca_errors)):
        history.best_epoch = record["best_epoch"] = 0
        _refit_pca(module, train_data, val_data, start)
        held_out = None  # the threshold's scores are then those of this model: a fresh pass
    _warn_not_converged(history, estimator.early_stopping)
    return Trained(module, precision, record, held_out)



# Training holds each parameter four times in float32: the weights, their gradients and Adam's two moments.
TRAINING_BYTES_PER_PARAMETER = 16


def check_model_size(estimator, n_features: int, loss: str, device: torch.device) -> None:
    """Refuse, before anything is built, widths whose training cannot fit in the memory ``device`` has free.

    The parameters are counted on the meta device (no memory); with ``latent_dim="auto"`` at its smallest, 1.
    """
    latent_dim = 1 if estimator.latent_dim == "auto" else int(estimator.latent_dim)
    config = _module_config(estimator, n_features, loss, latent_dim)
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
        latent = "" if estimator.latent_dim == "auto" else Words(" and ", Setting("latent_dim"), f" {latent_dim}")
        raise InvalidParameterValue(
            problem=Words("The model is too large for this machine: ", Setting("hidden_dims"),
                          f" {tuple(estimator.hidden_dims)}", latent, f" on {n_features} features give the "
                          f"{estimator.architecture} model {size}."),
            param="hidden_dims", value=estimator.hidden_dims, hint="Choose smaller widths.")


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
            raise InvalidParameterValue(Words(
                Setting("architecture", "conv"), " needs input_shape=(channels, height, width), the shape of the "
                f"images each row was flattened from (rows have {n_features} features). Got input_shape=None."),
                param="input_shape", value=None)
        config.update(
            input_shape=[int(s) for s in estimator.input_shape],
            channels=[int(h) for h in estimator.hidden_dims],
            activation=estimator.activation,
        )
    return config


def _build_module(estimator, n_features: int, loss: str, seed: int, start: PcaStart | None,
                  device: torch.device) -> AutoencoderModule:
    """The untrained module, seeded: the anchored model starts at PCA (``start``)."""
    latent_dim = estimator.latent_dim if start is None else start.latent_dim
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build_model(estimator.architecture, **_module_config(estimator, n_features, loss, latent_dim))
        if estimator.architecture == "anchored":
            module.anchor(start.pca.mean, _padded(start.pca.components[:latent_dim], latent_dim))
        return module.to(device)


def _training_loss(loss: str, n_features: int, geometry_weight: float | None) -> LossFn:
    """The loss training minimises: the reconstruction loss and, with a geometry, ``geometry_weight`` times
    the codes' mean squared distance to their targets (Isomap's codes, in each row's last columns)."""
    def loss_fn(module: AutoencoderModule, batch: torch.Tensor) -> torch.Tensor:
        if geometry_weight is None:
            raw, _ = module(batch, logits=True)
            return reconstruction_loss(loss, raw, batch)
        rows, target = batch[:, :n_features].contiguous(), batch[:, n_features:]
        raw, latent = module(rows, logits=True)
        geometric = reconstruction_loss("mse", latent.float(), target)
        return reconstruction_loss(loss, raw, rows) + geometry_weight * geometric

    return loss_fn


def _table_loss(criterion) -> LossFn:
    """A table's loss: missing cells and a share of the observed ones in as their training means, the observed
    ones in the loss; on validation rows (the module in eval mode) the hidden cells' terms alone, which early
    stopping watches (see :class:`aekit.models.losses.TableLoss`)."""
    def loss_fn(module: AutoencoderModule, rows: torch.Tensor) -> torch.Tensor:
        raw, _ = module(criterion.training_input(rows, training=module.training), logits=True)
        return criterion(raw, rows) if module.training else criterion.validation_loss(raw, rows)

    return loss_fn


def _table_start_loss(criterion) -> LossFn:
    """:func:`_start_loss` for a table: the anchored model's linear maps on the validation input."""
    def start_loss(module: AnchoredAutoencoder, rows: torch.Tensor) -> torch.Tensor:
        return criterion.validation_loss(module.linear_reconstruction(criterion.training_input(rows, training=False)),
                                         rows)

    return start_loss


def _start_loss(module: AnchoredAutoencoder, rows: torch.Tensor) -> torch.Tensor:
    """The anchored model's starting loss: its branches add exactly zero there, so its reconstruction is
    its linear maps' (PCA's), at a fraction of a forward pass's cost."""
    return reconstruction_loss("mse", module.linear_reconstruction(rows), rows)


@torch.no_grad()
def _pca_errors(module: AnchoredAutoencoder, source, precision: str) -> torch.Tensor:
    """Each row's mean squared error under the anchored model's starting weights (PCA's), in the batches
    and precision of the training loop's validation passes."""
    errors = []
    for rows in loop.as_source(source).batches(loop.EVAL_BATCH_ROWS):
        with autocast(rows.device, precision):
            errors.append(inference.row_mse(module.linear_reconstruction(rows), rows))
    return torch.cat(errors).cpu()


@torch.no_grad()
def _held_out_pass(module: AutoencoderModule, source, n_features: int, precision: str,
                   keep_parts: bool) -> HeldOutPass:
    """Each validation row's mean squared error under the module's weights (with ``keep_parts``, its squared
    errors and codes too), in the batches and precision of the training loop's validation passes."""
    module.eval()
    errors, parts = [], []
    for batch in loop.as_source(source).batches(loop.EVAL_BATCH_ROWS):
        with autocast(batch.device, precision):
            rows = batch[:, :n_features].contiguous()  # without the geometry's targets
            raw, latent = module(rows, logits=True)
            reconstruction = module.output(raw)
            errors.append(inference.row_mse(reconstruction, rows))
            if keep_parts:
                parts.append(inference.joined_parts(reconstruction, rows, latent))
    return HeldOutPass(torch.cat(errors).cpu().numpy(), torch.cat(parts).cpu().numpy() if keep_parts else None)


def _steps_threads(estimator, module, device: torch.device, batch_size: int) -> int | None:
    """The threads the training steps run on (None: all of torch's). With n_jobs=None on a CPU, the rule of
    :func:`aekit.training.precision.training_threads` (a small model's steps run on one); the passes before
    and after keep all of them."""
    if estimator.n_jobs is not None or device.type != "cpu" or distributed.several_processes():
        return None
    return training_threads(module, device, batch_size)


def _batch_size_and_epochs(estimator, n_train: int) -> tuple[int, int, int]:
    """``batch_size``, the optimizer steps an epoch gives, and ``epochs``, with "auto" resolved
    (:func:`auto_batch_size`, :func:`auto_epochs`); a warning when a batch is the whole data and the steps are few.
    ``n_train``: this process's training rows; under torchrun, where the processes' shares differ, "auto" is the
    smallest batch any of them chooses, so that all train alike (:func:`aekit.training.loop.steps_per_epoch`)."""
    batch_size = (distributed.min_over_ranks(auto_batch_size(n_train)) if estimator.batch_size == "auto"
                  else int(estimator.batch_size))
    steps_per_epoch = loop.steps_per_epoch(n_train, batch_size)
    epochs = auto_epochs(steps_per_epoch) if estimator.epochs == "auto" else int(estimator.epochs)
    if batch_size >= n_train > AUTO_BATCH_MIN and epochs < FULL_BATCH_MIN_EPOCHS:
        warnings.warn(Words(
            Setting("batch_size", batch_size), f" is not smaller than the {n_train} training rows: one step per epoch, "
            f"{epochs} steps in all, too few to learn more than the mean. Use ",
            Setting("batch_size", "auto"), " or a batch a fraction of the rows."), UserWarning, stacklevel=6)
    return batch_size, steps_per_epoch, epochs


def _fit_module(estimator, module, loss_fn, train_data, val_data, config: TrainConfig, start_loss_fn) -> History:
    """:func:`aekit.training.loop.fit_module` with the estimator's checkpoints; when training fails, the
    estimator is left unfitted and the error says what this estimator can do about it."""
    checkpointer = None
    if estimator.checkpoint_dir is not None:
        checkpointer = Checkpointer(
            estimator.checkpoint_dir, every=estimator.checkpoint_every, resume=estimator.resume,
            writer=distributed.is_main_process(),
        )
    try:
        return loop.fit_module(module, loss_fn, train_data, val_data, config, checkpointer=checkpointer,
                               start_loss_fn=start_loss_fn)
    except TrainingError as error:  # the loop's problem and hint, with this estimator's own advice and outcome
        problem = error.problem or str(error)
        advice = [error.hint] if error.hint else []
        if estimator.scaler not in ("auto", "shared", "standard"):  # the data was not brought to unit scale
            advice.append(Words("Scaling the data (", Setting("scaler", "standard"), ") may also help."))
        hint = joined(advice) if advice else None
        for name in [name for name in vars(estimator) if name.endswith("_") and not name.startswith("_")]:
            delattr(estimator, name)  # neither this half-trained module nor a previous fit's attributes remain
        raise TrainingError(joined([problem, *advice, "The fit failed: no model was fitted or saved."]),
                            problem=problem, param=error.param, value=error.value, hint=hint) from error


def _refit_pca(module: AnchoredAutoencoder, train_data, val_data, start: PcaStart) -> None:
    """PCA won: the final model is PCA of all the rows, the better estimate of the same model. The
    threshold keeps the validation rows' errors under the training rows' PCA (out of sample). When
    ``start.pca`` kept the training rows' covariance, only the validation rows are read again."""
    latent_dim = module.latent_dim
    if start.pca.statistics is not None:
        refit = principal_components(val_data, max_components=latent_dim, previous=start.pca)
    else:  # wide rows
        refit = principal_components(train_data, val_data, max_components=latent_dim)
    module.anchor(refit.mean, _padded(refit.components[:latent_dim], latent_dim))


# Parameters that do not change what is trained (or that TrainConfig already holds)
_NOT_IN_RUN = ("epochs", "verbose", "device", "checkpoint_dir", "checkpoint_every", "resume", "random_state",
               "contamination", "anomaly_score", "batch_size", "lr", "lr_schedule", "early_stopping", "patience",
               "precision", "n_jobs")


def _n_rows(data) -> int:
    """The rows of a tensor or a data source."""
    return data.n_rows if hasattr(data, "n_rows") else len(data)


def _run_description(estimator, train_data, val_data, n_features: int, loss: str) -> dict:
    """The settings and data shape a checkpoint must share to be resumed by this fit (JSON-ready)."""
    run = {name: value for name, value in estimator.get_params().items() if name not in _NOT_IN_RUN}
    for name in ("hidden_dims", "input_shape"):  # (8,) and [8] are the same setting
        run[name] = None if run[name] is None else [int(v) for v in run[name]]
    n_val = 0 if val_data is None else _n_rows(val_data)
    # all processes' rows: each holds its own share, and a checkpoint is resumed by every process
    n_train, n_val = distributed.sum_over_ranks([train_data.n_rows, n_val])
    run.update(n_features=int(n_features), train_rows=int(n_train), validation_rows=int(n_val),
               fitted_loss=loss)
    return run


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
        message = (f"the model is PCA (d={latent_dim}): PCA's {where} loss is {pca_loss:.5g}; no epoch of the "
                   "non-linear part lowered it")
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
