"""``aekit.Autoencoder``: the scikit-learn face of the library.

Parameters are only stored in ``__init__`` and validated in ``fit``; the torch module is built in
``fit`` (so ``clone``, ``set_params`` and ``GridSearchCV`` work); everything learned ends in ``_``.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from aekit import detect, geometry, hardware, persistence
from aekit.exceptions import (
    InvalidInputError,
    InvalidInputTypeError,
    InvalidParameterValue,
    ModelFileError,
    TrainingError,
    did_you_mean,
)
from aekit.models import ARCHITECTURES, build_model
from aekit.models.anchored import choose_latent_dim, principal_components
from aekit.models.losses import OUTPUT_ACTIVATION, reconstruction_loss
from aekit.models.mlp import ACTIVATIONS, AutoencoderModule
from aekit.preprocess import SCALERS, make_scaler
from aekit.training import distributed, streaming
from aekit.training.checkpoint import Checkpointer
from aekit.training.loop import (
    LR_SCHEDULES,
    PRECISIONS,
    TensorSource,
    TrainConfig,
    autocast,
    device_of,
    fit_module,
    resolve_precision,
)

INFERENCE_BATCH_ROWS = 8192
DEVICE_DATA_FRACTION = 0.5  # training data may take this much of a GPU's free memory; the rest is for training
SCALER_FIT_ROWS = 4096
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


def resolve_device(device: str) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else must be a usable torch device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise InvalidParameterValue(
            "The 'device' parameter must be 'auto' or a torch device such as 'cpu' or 'cuda:0'. "
            f"Got {device!r} instead."
        ) from None
    if resolved.type == "meta":  # meta tensors hold no data: nothing could be trained or computed
        raise InvalidParameterValue(
            f"The 'device' parameter must be a device that holds data, such as 'cpu' or 'cuda'. Got {device!r} instead."
        )
    if resolved.type != "cpu":
        _check_available(resolved, device)
    return resolved


def _check_available(resolved: torch.device, device: str) -> None:
    """Refuse a device this machine lacks (an MPS, XPU, HPU... device on a machine without one, cuda:7 on one GPU)."""
    backend = torch.backends.mps if resolved.type == "mps" else getattr(torch, resolved.type, None)
    is_available = getattr(backend, "is_available", None)
    try:
        available = bool(is_available()) if callable(is_available) else False
        count = getattr(backend, "device_count", None)
        n_devices = int(count()) if available and callable(count) and resolved.type != "mps" else None
    except (RuntimeError, AssertionError):  # a backend compiled in but unusable here
        available, n_devices = False, None
    name = "CUDA" if resolved.type == "cuda" else resolved.type.upper()
    if not available:
        raise InvalidParameterValue(
            f"The 'device' parameter is {device!r} but {name} is not available on this machine. "
            "Use device='auto' or 'cpu'."
        )
    if n_devices is not None and resolved.index is not None and resolved.index >= n_devices:
        raise InvalidParameterValue(
            f"The 'device' parameter is {device!r} but this machine has {n_devices} {name} device(s), numbered "
            f"from 0. Use device='auto' or '{resolved.type}:0'."
        )


def _data_fits_on(device: torch.device, nbytes: int) -> bool:
    """Whether ``nbytes`` of training data should live on ``device`` for the whole fit.

    Always on the CPU. On a GPU when they take at most ``DEVICE_DATA_FRACTION`` of its free memory,
    leaving the rest for the model, its gradients, Adam's state and the activations; otherwise the
    data stays in host memory and each batch is copied over through pinned memory.
    """
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_DATA_FRACTION * free


def _row_mse(reconstruction: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Each row's mean squared error, in float32: the errors behind ``threshold_``, whether kept from
    the validation pass or computed afterwards (:meth:`Autoencoder._row_errors`)."""
    return reconstruction_loss("mse", reconstruction.float(), rows, per_row=True)


def _all_rows_equal(X: np.ndarray, probe_rows: int = 256) -> bool:
    """True when every row of ``X`` equals the first; usually settled by the first ``probe_rows`` rows.

    Examples
    --------
    >>> _all_rows_equal(np.ones((3, 2))), _all_rows_equal(np.eye(2))
    (True, False)
    """
    first = X[:1]
    if (X[:probe_rows] != first).any():
        return False
    return not any((X[start : start + 65536] != first).any() for start in range(probe_rows, len(X), 65536))


SCALE_CHUNK_ROWS = 16384  # float64 input is scaled this many rows at a time (no float64 copy of all of X)
STATS_CHUNK_VALUES = 2**18  # values per chunk when a StandardScaler's statistics are computed (cache-sized)


def _as_tensor(X: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy(X)``, quiet about a read-only ``X`` (np.load mmap, pandas' copy-on-write): only read."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)
        return torch.from_numpy(X)


def _fit_scaler(scaler, X: np.ndarray, *, with_range: bool = False) -> np.ndarray | None:
    """Fit ``scaler`` (None: no scaler) to ``X`` without a float64 copy of ``X``; a ``StandardScaler`` on torch.

    For a ``StandardScaler`` the mean and the variance are computed in two passes over cache-sized
    chunks with float64 accumulators, and the attributes are set as scikit-learn's ``fit`` sets them:
    ``mean_``, ``var_``, ``scale_`` (1 for features scikit-learn's rule finds indistinguishable from a
    constant), ``n_samples_seen_`` and ``n_features_in_`` (a test compares them with
    ``StandardScaler().fit(X)``). scikit-learn's ``partial_fit`` over chunks gives the same figures
    4-5x slower (its NaN-aware sums copy every chunk). Other scalers: ``partial_fit`` in chunks of
    ``SCALER_FIT_ROWS`` rows.

    With ``with_range``, returns each feature's minimum and maximum, a (2, n_features) array in
    ``X``'s dtype, taken from the chunks of the first pass while they are in cache.
    """
    standard = isinstance(scaler, StandardScaler) and (scaler.with_mean or scaler.with_std)
    if scaler is not None and not standard:
        for start in range(0, len(X), SCALER_FIT_ROWS):
            scaler.partial_fit(X[start : start + SCALER_FIT_ROWS])
    if not (standard or with_range):
        return None
    source = _as_tensor(X)
    n_rows, n_features = source.shape
    rows = max(1, STATS_CHUNK_VALUES // max(n_features, 1))
    chunks = [source[start : start + rows] for start in range(0, n_rows, rows)]
    total = torch.zeros(n_features, dtype=torch.float64)
    low = high = None
    for chunk in chunks:
        if standard:
            total += chunk.sum(dim=0, dtype=torch.float64)
        if with_range:  # amin and amax, not aminmax: 10x faster along dim 0 (torch 2.13, CPU)
            chunk_low, chunk_high = chunk.amin(dim=0), chunk.amax(dim=0)
            low = chunk_low if low is None else torch.minimum(low, chunk_low)
            high = chunk_high if high is None else torch.maximum(high, chunk_high)
    value_range = torch.stack([low, high]).numpy() if with_range else None
    if not standard:
        return value_range
    mean = total / n_rows
    scaler.n_features_in_, scaler.n_samples_seen_ = n_features, np.float64(n_rows)
    scaler.mean_, scaler.var_, scaler.scale_ = mean.numpy(), None, None
    if not scaler.with_std:
        return value_range
    squares = torch.zeros(n_features, dtype=torch.float64)
    for chunk in chunks:
        squares += (chunk.to(torch.float64) - mean).square_().sum(dim=0)
    var = (squares / n_rows).numpy()
    # scikit-learn's _is_constant_feature: the variance is within the two-pass algorithm's error bound
    eps = np.finfo(np.float64).eps
    constant = var <= n_rows * eps * var + (n_rows * scaler.mean_ * eps) ** 2
    scaler.var_, scaler.scale_ = var, np.where(constant, 1.0, np.sqrt(var))
    return value_range


def _standard_steps(scaler: StandardScaler, dtype) -> list[tuple[Callable, torch.Tensor]]:
    """A fitted ``StandardScaler``'s operations in scikit-learn's order: centre, then scale, both cast to ``dtype``."""
    steps = []
    if scaler.with_mean:
        steps.append((torch.sub, torch.from_numpy(scaler.mean_.astype(dtype))))
    if scaler.with_std:
        steps.append((torch.div, torch.from_numpy(scaler.scale_.astype(dtype))))
    return steps


def _batch_scaling(scaler: StandardScaler, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """Scale float32 batches on ``device`` with :func:`_scale_to_float32`'s operations: the same values.

    Each step returns a new tensor, so a batch that is a view of the training data is left as it is.
    """
    steps = [(op, value.to(device)) for op, value in _standard_steps(scaler, np.float32)]

    def scale(batch: torch.Tensor) -> torch.Tensor:
        for op, value in steps:
            batch = op(batch, value)
        return batch

    return scale


def _scale_to_float32(scaler, X: np.ndarray) -> np.ndarray:
    """``scaler.transform(X)`` as float32; a ``StandardScaler`` runs on torch's threads into one new array.

    For ``StandardScaler`` these are scikit-learn's own operations (subtract ``mean_``, divide by
    ``scale_``, both cast to ``X``'s dtype, in ``X``'s precision), so the result equals
    ``scaler.transform(X).astype(np.float32)`` exactly (a test checks it), several times faster on
    large data: scikit-learn's runs on one thread and writes a full copy in ``X``'s precision first.
    float64 input is scaled in chunks of ``SCALE_CHUNK_ROWS`` rows. Other scalers use their ``transform``.
    """
    if not isinstance(scaler, StandardScaler):
        return np.ascontiguousarray(scaler.transform(X), dtype=np.float32)
    source = _as_tensor(np.ascontiguousarray(X))
    steps = _standard_steps(scaler, X.dtype)
    out = torch.empty(source.shape, dtype=torch.float32)
    in_place = source.dtype == torch.float32  # compute straight into the output
    chunk = max(len(source), 1) if in_place else SCALE_CHUNK_ROWS
    for start in range(0, len(source), chunk):
        result, target = source[start : start + chunk], out[start : start + chunk]
        for op, value in steps:
            result = op(result, value, out=target) if in_place else op(result, value)
        if result is not target:
            target.copy_(result)  # float64 to float32, or an unscaled float32 copy
    return out.numpy()


def _detached(X):
    """A torch tensor as a NumPy array of its values, outside autograd (NumPy cannot read one that requires
    grad) and in its own precision (bfloat16, which NumPy lacks, as float32); anything else as given.

    The values are only read: codes and reconstructions come back as NumPy arrays, with no gradient.
    """
    if not isinstance(X, torch.Tensor):
        return X
    if X.device.type == "meta":
        raise InvalidInputError("X is a tensor on the meta device, which holds no values. Pass a tensor with data.")
    X = X.detach().cpu()
    return (X.float() if X.dtype == torch.bfloat16 else X).resolve_conj().resolve_neg().numpy()


def _check_dataframe_columns(X) -> None:
    """Name the first non-numeric column of a DataFrame (sklearn would only say 'could not convert')."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(dtypes, "items"):
        return
    import pandas as pd

    for position, (column, dtype) in enumerate(dtypes.items()):
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            continue
        series = X.iloc[:, position]  # by position: X[column] is a frame when names repeat
        try:
            # dates and durations convert to nanosecond counts, which are no features
            if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
                raise TypeError
            pd.to_numeric(series)
        except (TypeError, ValueError):
            first = series.iloc[0] if len(X) else None
            raise InvalidInputError(
                f"Column {column!r} is not numeric (dtype {dtype}, first value {first!r}). Drop or encode it "
                "first (e.g. sklearn.preprocessing.OneHotEncoder), or select the numeric columns."
            ) from None


def _in_threads(method):
    """Run an estimator method with ``n_jobs`` threads (see :func:`aekit.hardware.threads`)."""
    @functools.wraps(method)
    def in_threads(self, *args, **kwargs):
        # an invalid n_jobs (0, not an int) is left to fit's parameter check, which names it
        valid = isinstance(self.n_jobs, Integral) and not isinstance(self.n_jobs, bool) and self.n_jobs != 0
        with hardware.threads(self.n_jobs if valid else None):
            return method(self, *args, **kwargs)
    return in_threads


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
            stacklevel=4,
        )


class Autoencoder(TransformerMixin, BaseEstimator):
    """An undercomplete autoencoder with scikit-learn's ``fit``/``transform``/``inverse_transform``.

    The encoder maps each row of ``X`` (``n_features`` values) to ``latent_dim`` codes, the decoder
    maps codes back. The scaler is fitted in ``fit`` and undone in ``inverse_transform``, so inputs
    and reconstructions are in the user's own units.

    Parameters
    ----------
    latent_dim : int or "auto", default="auto"
        Size of the bottleneck (``n_components`` in PCA's terms), for every architecture. "auto"
        fits PCA on the training rows and takes the smallest ``d`` whose PCA reconstruction explains
        90% of the variance of the validation rows (:func:`aekit.models.anchored.choose_latent_dim`);
        the choice and its figures are in ``history_["latent_dim_rule"]``.
    hidden_dims : tuple of int, default=(64,)
        Encoder hidden widths; the decoder mirrors them. Ignored when ``architecture="linear"``.
    activation : {"relu", "sigmoid", "tanh", "gelu", "identity"}, default="relu"
        Activation of the hidden layers.
    loss : {"auto", "mse", "bce"}, default="auto"
        "auto" picks BCE when the scaled training data lies in [0, 1], MSE otherwise; always MSE for
        the anchored model (PCA is the least-squares solution; a sigmoid output would not start at
        it). BCE uses a sigmoid output and is computed from logits (never NaN from saturated outputs).
    scaler : {"standard", "minmax"} or None, default="standard"
        Preprocessing fitted on the training data.
    architecture : {"anchored", "mlp", "linear", "conv"}, default="anchored"
        "anchored" (:class:`~aekit.models.anchored.AnchoredAutoencoder`) is PCA, fitted in closed form
        on the training rows (never the validation rows), plus non-linear residual branches (MLPs of
        ``hidden_dims``) that start at zero: at the start of training the model's reconstructions
        are PCA's. Training moves the linear maps and the branches together; the starting (PCA)
        weights compete as epoch 0 for the best validation loss, so with early stopping the
        held-out error ends no worse than PCA's on the validation rows, and ``history_["pca"]``
        says whether the non-linear part improved on it.
        "mlp" is a plain fully connected autoencoder from random weights.
        "linear" is one linear layer each way with no activation: the PCA-equivalent model.
        "conv" is :class:`~aekit.models.conv.ConvAutoencoder` for rows that are flattened images
        (needs ``input_shape``; ``hidden_dims`` are then its convolutions' channels, e.g. (32, 64)).
    input_shape : tuple of 3 ints or None, default=None
        ``(channels, height, width)`` of the images each row was flattened from; needed by "conv",
        kept by the other architectures for pictures and PNG outputs (the model ignores it).
    epochs : int, default=100
        Maximum number of passes over the training rows.
    batch_size : int or "auto", default="auto"
        "auto": 256 rows from 1024 training rows up; on fewer rows, a power of two giving at least 4
        steps per epoch (batches of at least 16 rows), so small data sets get more than one step an
        epoch (:func:`auto_batch_size`).
    lr : float, default=1e-3
        Adam's learning rate.
    lr_schedule : {"constant", "cosine", "plateau"}, default="constant"
        "cosine" anneals the rate to 0 over ``epochs``; "plateau" halves it when the monitored
        loss has not improved for ``max(1, patience // 3)`` epochs.
    validation_fraction : float in [0, 1), default=0.1
        Share of the rows held out for validation (early stopping, the anomaly threshold).
    early_stopping : bool, default=True
        Stop when the validation loss has not improved for ``patience`` epochs, and restore the
        best weights.
    patience : int, default=10
    contamination : float in (0, 0.5] or "auto", default=0.05
        Expected share of outliers: ``threshold_`` is the ``1 - contamination`` quantile of the
        outlier score on held-out rows (training rows when there are none). "auto" needs no
        share: the threshold is ``exp(m + 3 sigma)`` for the median ``m`` and robust spread ``sigma``
        of the held-out log scores (see :mod:`aekit.detect`).
    anomaly_score : {"combined", "error"}, default="combined"
        What :meth:`outlier_scores` (and ``score_samples``, ``decision_function``, ``predict``,
        ``predict_proba``) measure. "combined": the reconstruction error normalised per feature plus
        half the codes' Mahalanobis distance, each averaging 1 on the training rows (:mod:`aekit.detect`;
        the better detector on the benchmarks). "error": the plain mean squared reconstruction error.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, the validation split and the shuffling. The guarantee: the same value on the
        same machine, device and number of torch threads (``torch.get_num_threads()``) gives bitwise
        identical weights. Another thread count splits the matrix products' sums differently, so
        the last bits differ and training drifts apart a little (e.g. 0.5276 against 0.5201 for one
        held-out error ratio measured with 1 and 2 threads).
    device : str, default="auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", ...
    verbose : int, default=0
        1 shows a progress bar (tqdm) during ``fit`` on a terminal; when stderr is not one (a log
        file, a notebook's captured output), a line every tenth of the epochs instead.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        "bf16" runs the forward passes (training and inference) under bfloat16 autocast: matrix
        products in bf16, weights and optimizer state in float32. Faster where the hardware has
        bf16 units (x86 CPUs with AVX512-BF16 or AMX, Ampere and later GPUs), with a slightly higher
        reconstruction error; elsewhere it is emulated and many times slower (a warning says how much).
        "auto" takes bf16 where the device computes it natively and the model's largest weight
        matrix has at least 131,072 entries (there bf16 pays for its casts), fp32 otherwise: see
        :func:`aekit.training.loop.resolve_precision`. ``precision_`` says which was used.
    n_jobs : int or None, default=None
        Threads for ``fit`` and inference (PyTorch's intra-op threads, set for the call and restored
        after it). None: PyTorch's count (``OMP_NUM_THREADS``, else the cores), at most the cores this
        process may use (its CPU affinity); -1: all those cores; 1 on a machine busy with other work.
    checkpoint_dir : str or None, default=None
        Folder for training checkpoints (see :mod:`aekit.training.checkpoint`): written every
        ``checkpoint_every`` epochs and at the end; Ctrl-C then stops after the current step and saves.
    checkpoint_every : int, default=1
        Epochs between checkpoints.
    resume : bool, default=False
        Continue from the newest complete checkpoint in ``checkpoint_dir`` (same data and settings),
        ending with the weights an uninterrupted run would have. False starts afresh and deletes the
        checkpoints already in ``checkpoint_dir``.
    geometry : {"isomap"} or None, default=None
        A geometric regulariser for the latent space (a geometry-regularised autoencoder, after Duque
        et al., 2022). "isomap" embeds the training rows with scikit-learn's ``Isomap`` (geodesic
        distances along a k-neighbour graph; fitted on at most ``aekit.geometry.FIT_ROWS`` rows and extended
        to the rest), centres it and scales it to unit mean square, and adds ``geometry_weight`` times
        the mean squared distance between the codes and that embedding to the training loss (the
        reported losses include it). The codes then lay a curved manifold out flat, as Isomap does,
        where a reconstruction loss alone is content with any chart, often a curled one; the encoder
        and decoder still give codes and reconstructions for new rows. Needs the data in memory
        (``fit``, not ``fit_stream``).
    geometry_weight : float > 0, default=1.0
        Weight of the geometric term against the reconstruction loss.
    geometry_neighbors : int >= 1, default=10
        Neighbours of each row in Isomap's graph. Too many short-circuit the manifold's folds;
        too few split it into pieces.

    Attributes
    ----------
    module_ : AutoencoderModule
        The trained torch module.
    scaler_ : StandardScaler, MinMaxScaler or None
    loss_ : str
        The loss actually used ("mse" or "bce").
    precision_ : str
        The precision training actually used ("fp32" or "bf16"; see ``precision``).
    history_ : dict
        ``train_loss`` and ``val_loss`` per epoch, ``best_epoch``, ``n_epochs``, ``stop_reason``, ``seconds``,
        ``initial_loss`` (the starting weights' validation loss, for the anchored model), ``batch_size``
        (the one used), ``latent_dim_rule`` (with ``latent_dim="auto"``: the rule and its figures), ``pca``
        (anchored model: ``latent_dim``, ``val_loss`` of PCA, ``best_val_loss``, ``improved`` and
        ``message``, e.g. "the non-linear part did not improve on PCA at d=30 on this data").
    latent_dim_ : int
        The bottleneck size used (``latent_dim`` once "auto" is resolved).
    n_iter_ : int
        Epochs run.
    threshold_ : float
        Outlier score above which a row is an outlier (``predict`` returns -1).
    error_quantiles_ : ndarray of shape (1001,)
        Quantiles of the outlier score on the held-out rows at levels 0, 0.001, ..., 1
        (``ERROR_QUANTILE_LEVELS``): the threshold for another contamination c is read off at 1 - c.
    score_state_ : aekit.detect.ScoreState
        The combined score's normalisers (only with ``anomaly_score="combined"``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit import Autoencoder
    >>> X = np.random.default_rng(0).normal(size=(200, 8)).astype("float32")
    >>> ae = Autoencoder(latent_dim=3, epochs=5, random_state=0).fit(X)
    >>> ae.transform(X[:4]).shape
    (4, 3)
    >>> ae.inverse_transform(ae.transform(X[:4])).shape
    (4, 8)
    """

    _parameter_constraints: dict = {
        "latent_dim": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "hidden_dims": [list, tuple],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "loss": [StrOptions({"auto", *OUTPUT_ACTIVATION})],
        "scaler": [StrOptions(set(SCALERS)), None],
        "architecture": [StrOptions(set(ARCHITECTURES))],
        "input_shape": [list, tuple, None],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions(set(LR_SCHEDULES))],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "contamination": [Interval(Real, 0, 0.5, closed="right"), StrOptions({"auto"})],
        "anomaly_score": [StrOptions(set(detect.OUTLIER_SCORES))],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
        "precision": [StrOptions(set(PRECISIONS))],
        "n_jobs": [Interval(Integral, None, -1, closed="right"), Interval(Integral, 1, None, closed="left"), None],
        "checkpoint_dir": [str, None],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left")],
        "resume": ["boolean"],
        "geometry": [StrOptions(set(geometry.GEOMETRIES)), None],
        "geometry_weight": [Interval(Real, 0, None, closed="neither")],
        "geometry_neighbors": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        latent_dim="auto",
        *,
        hidden_dims=(64,),
        activation="relu",
        loss="auto",
        scaler="standard",
        architecture="anchored",
        input_shape=None,
        epochs=100,
        batch_size="auto",
        lr=1e-3,
        lr_schedule="constant",
        validation_fraction=0.1,
        early_stopping=True,
        patience=10,
        contamination=0.05,
        anomaly_score="combined",
        random_state=None,
        device="auto",
        verbose=0,
        precision="auto",
        n_jobs=None,
        checkpoint_dir=None,
        checkpoint_every=1,
        resume=False,
        geometry=None,
        geometry_weight=1.0,
        geometry_neighbors=10,
    ):
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.loss = loss
        self.scaler = scaler
        self.architecture = architecture
        self.input_shape = input_shape
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.contamination = contamination
        self.anomaly_score = anomaly_score
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.precision = precision
        self.n_jobs = n_jobs
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.geometry = geometry
        self.geometry_weight = geometry_weight
        self.geometry_neighbors = geometry_neighbors

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        try:
            self._validate_params()
        except InvalidParameterError as error:
            value = getattr(self, str(error).split("'")[1], None) if "'" in str(error) else None
            choices = set(ACTIVATIONS) | set(OUTPUT_ACTIVATION) | {"auto"} | set(SCALERS) | set(ARCHITECTURES)
            choices |= set(geometry.GEOMETRIES) | set(detect.OUTLIER_SCORES)
            hint = did_you_mean(value, choices) if isinstance(value, str) else ""
            raise InvalidParameterValue(f"{error}{hint}") from None
        if not all(isinstance(h, Integral) and not isinstance(h, bool) and h >= 1 for h in self.hidden_dims):
            raise InvalidParameterValue(
                "The 'hidden_dims' parameter of Autoencoder must be a tuple of ints >= 1 (e.g. (256, 64)). "
                f"Got {self.hidden_dims!r} instead."
            )

    def _validate_X(self, X, *, reset: bool, scale: bool = True) -> np.ndarray:
        """Validate ``X`` like scikit-learn, scale it with the fitted scaler, and return a float32 array.

        With ``scale=False``, ``X`` as validated, float32 or float64, unscaled: ``fit`` (``reset=True``)
        then fits the scaler (:meth:`_fit_scaling`), inference scales it batch by batch
        (:meth:`_scale_rows`), neither with a scaled copy of all of it.
        """
        X = _detached(X)
        _check_dataframe_columns(X)
        try:
            min_rows = 2 if reset else 1
            with np.errstate(over="ignore", invalid="ignore"):  # its finiteness check sums X; it raises below
                X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32], ensure_min_samples=min_rows)
        except (ValueError, TypeError) as error:  # TypeError: sparse X, mixed column-name types
            message = str(error)
            if message.startswith("Complex data not supported"):  # sklearn appends the whole array
                message = "Complex data not supported: aekit needs real numbers. Pass X.real, np.abs(X), or both."
            elif "could not convert" in message or "inhomogeneous" in message:
                message = message.splitlines()[0].rstrip(".") + (
                    ". X must be a rectangular array of numbers: drop or encode text columns"
                    " (e.g. sklearn.preprocessing.OneHotEncoder) and give every row the same length."
                )
            elif "NaN" in message or "infinity" in message:
                # sklearn's text goes on about supervised estimators; keep its first line, add our fix
                message = message.splitlines()[0] + (
                    " Remove or impute missing values first (e.g. sklearn.impute.SimpleImputer in a Pipeline)"
                    " and replace infinite values."
                )
            error_type = InvalidInputTypeError if isinstance(error, TypeError) else InvalidInputError
            raise error_type(" ".join(message.split())) from None
        return self._scale_rows(X) if scale else X

    def _fit_scaling(self, X: np.ndarray, device: torch.device) -> tuple[np.ndarray, Callable | None]:
        """Fit the scaler to validated ``X`` and choose the loss; return the rows to train on and the
        scaling still to apply to each batch of them (None: the rows are the values to train on).

        float32 C-contiguous rows under the standard scaler (or none) are not copied: each batch is
        scaled on its way into the model with the operations that scale a whole array (the same
        values), which saves a copy the size of ``X`` and the time to write it. The scaled range, which
        the loss choice and the overflow check need, comes from each feature's minimum and maximum:
        scaling a feature is monotone, float32 rounding included, so they map exactly to the scaled
        minimum and maximum. Other rows (float64, other scalers, ``geometry``) are scaled here into
        one float32 array.
        """
        self.scaler_ = make_scaler(self.scaler)
        per_batch = (
            X.dtype == np.float32 and X.flags.c_contiguous and self.geometry is None
            and (self.scaler_ is None or isinstance(self.scaler_, StandardScaler))
        )
        # StandardScaler.fit would hold a float64 copy of X, twice its size
        value_range = _fit_scaler(self.scaler_, X, with_range=per_batch)
        if not per_batch:
            X = self._scale_rows(X)
            self.loss_ = self._choose_loss(X)
            return X, None
        self.loss_ = self._choose_loss(self._scale_rows(value_range))
        return X, None if self.scaler_ is None else _batch_scaling(self.scaler_, device)

    def _scale_rows(self, X: np.ndarray) -> np.ndarray:
        """The fitted scaler applied to validated rows: a C-contiguous float32 array of finite values."""
        with np.errstate(over="ignore", invalid="ignore"):  # values that overflow float32 are reported below
            if self.scaler_ is not None:
                X = _scale_to_float32(self.scaler_, X)
            X = np.ascontiguousarray(X, dtype=np.float32)
            # a finite sum means finite values (NaN and inf propagate); only a non-finite one needs the full check
            all_finite = bool(np.isfinite(X.sum())) or bool(np.isfinite(X).all())
        if not all_finite:
            raise InvalidInputError(
                f"X holds values too large for float32 after scaling (scaler={self.scaler!r}), or a feature "
                "whose spread is below float32's smallest number (~1e-38); use scaler='standard' or rescale the data."
            )
        return X

    def _choose_loss(self, X_scaled: np.ndarray) -> str:
        low, high = (float(v) for v in torch.aminmax(_as_tensor(X_scaled)))  # one pass, on torch's threads
        # a few float32 rounding steps of slack: MinMaxScaler maps a float32 column's maximum to 1.0000001
        in_unit_interval = low >= -UNIT_INTERVAL_SLACK and high <= 1.0 + UNIT_INTERVAL_SLACK
        if self.loss == "bce" and self.architecture == "anchored":
            raise InvalidParameterValue(
                "loss='bce' does not go with architecture='anchored': the anchored model starts at PCA, the "
                "least-squares solution, and is trained with MSE. Use loss='mse' (or 'auto'), or architecture='mlp'."
            )
        if self.loss == "auto":
            return "bce" if in_unit_interval and self.architecture != "anchored" else "mse"
        if self.loss == "bce" and not in_unit_interval:
            raise InvalidInputError(
                f"loss='bce' needs data in [0, 1], but after scaler={self.scaler!r} it lies in "
                f"[{low:.4g}, {high:.4g}]. Use scaler='minmax' or loss='mse'."
            )
        return self.loss

    # ------------------------------------------------------------------ fitting
    def _module_config(self, n_features: int, loss: str, latent_dim: int) -> dict:
        config = {
            "input_dim": n_features,
            "latent_dim": int(latent_dim),
            "output_activation": OUTPUT_ACTIVATION[loss],
        }
        if self.architecture in ("mlp", "anchored"):
            config.update(hidden_dims=[int(h) for h in self.hidden_dims], activation=self.activation)
        elif self.architecture == "conv":
            if self.input_shape is None:
                raise InvalidParameterValue(
                    "architecture='conv' needs input_shape=(channels, height, width), the shape of the images "
                    f"each row was flattened from (rows have {n_features} features). Got input_shape=None."
                )
            config.update(
                input_shape=[int(s) for s in self.input_shape],
                channels=[int(h) for h in self.hidden_dims],
                activation=self.activation,
            )
        return config

    def _split(self, n_rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        n_val = int(round(n_rows * self.validation_fraction))
        if self.validation_fraction > 0:
            n_val = min(max(n_val, 1), n_rows - 1)
        order = rng.permutation(n_rows)
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    @_in_threads
    def fit(self, X, y=None):
        """Fit the scaler and train the autoencoder on ``X`` (``y`` is ignored).

        Returns
        -------
        self : Autoencoder
        """
        self._check_params()
        device = resolve_device(self.device)
        distributed.setup(device)  # joins the process group under torchrun; nothing otherwise
        device = device_of(distributed.local_device(device))  # "cuda" as cuda:N, as its tensors will say it
        X, batch_scaling = self._fit_scaling(self._validate_X(X, reset=True, scale=False), device)
        if self.latent_dim != "auto" and self.latent_dim >= X.shape[1]:
            warnings.warn(
                f"latent_dim={self.latent_dim} >= n_features={X.shape[1]}: the autoencoder is overcomplete and "
                "can learn the identity. Choose latent_dim < n_features for a compressed representation.",
                UserWarning,
                stacklevel=2,
            )
        if _all_rows_equal(X):  # one distinct row: every row gets the same code
            warnings.warn(
                f"All {len(X)} rows of X are identical: there is nothing to learn and every row will get the same "
                "code. Check that the data was read correctly.",
                UserWarning,
                stacklevel=2,
            )
        self.seed_ = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        rng = np.random.default_rng(self.seed_)
        train_rows, val_rows = self._split(len(X), rng)
        pca = None
        if self.geometry is None:
            X_tensor = _as_tensor(X)  # X itself, when it needs no scaled copy: only read
        else:  # each row carries its target code in extra columns, so batches keep the two together
            # X is scaled here (see _fit_scaling): PCA, and latent_dim="auto", before Isomap needs d
            pca = self._principal_components(
                _as_tensor(X[train_rows]), _as_tensor(X[val_rows]) if len(val_rows) else None
            )
            target = geometry.isomap_target(
                X, train_rows, n_components=pca[2] if pca else self.latent_dim, n_neighbors=self.geometry_neighbors,
                rng=rng,
            )
            X_tensor = torch.from_numpy(np.concatenate([X, target], axis=1))
        # on the device once; on the host when it would not fit there (batches then go over one by one)
        X_tensor = X_tensor.to(device if _data_fits_on(device, X_tensor.nbytes) else X_tensor.device)
        train_part, val_part = distributed.shard(train_rows), distributed.shard(val_rows)  # all rows when alone

        def source(part: np.ndarray) -> TensorSource:  # the rows of X, not a copy of them
            return TensorSource(X_tensor, torch.from_numpy(part).to(X_tensor.device), batch_scaling, device)

        val_data = None
        if len(val_rows) and X_tensor.device != device:
            val_data = source(val_part)
        elif len(val_rows):
            val_data = X_tensor[torch.from_numpy(val_part).to(device)]
            val_data = val_data if batch_scaling is None else batch_scaling(val_data)  # once, not every epoch
        held_out_errors = self._train(source(train_part), val_data, X.shape[1], device, pca=pca)
        rows = val_rows if len(val_rows) else train_rows
        held_out = X if len(rows) == len(X) else X[rows]
        if self.anomaly_score == "combined":  # normalisers from all rows, the threshold from the held-out ones
            self._fit_score_state([X], scale=batch_scaling is not None)
            held_out_errors = self._outlier_scores(held_out, scale=batch_scaling is not None)
        elif held_out_errors is None:
            held_out_errors = self._row_errors(held_out, scale=batch_scaling is not None)
        self._set_threshold(held_out_errors)
        return self

    @_in_threads  # the streaming fit's training too
    def _principal_components(self, train_data, val_data) -> tuple | None:
        """PCA of the training rows and the latent dimension, when the model or ``latent_dim="auto"``
        needs them: ``(pca, rule, latent_dim)`` (``rule`` None for a given ``latent_dim``), else None."""
        anchored = self.architecture == "anchored"
        if not anchored and self.latent_dim != "auto":
            return None
        n_rows = train_data.n_rows if hasattr(train_data, "n_rows") else len(train_data)
        max_dim = max(1, min(self.n_features_in_ - 1, n_rows))
        wanted = None if self.latent_dim == "auto" else int(self.latent_dim)
        if wanted is None and distributed.world_size() > 1:  # each process sees its own rows: d could differ
            raise InvalidParameterValue(
                "latent_dim='auto' chooses d from the rows one process sees, so under torchrun the processes could "
                "choose differently. Pass latent_dim (e.g. the latent_dim_ of a fit in one process)."
            )
        pca = principal_components(train_data, max_components=wanted)
        if wanted is not None:
            return pca, None, wanted
        latent_dim, rule = choose_latent_dim(pca, val_data, max_dim=max_dim)
        return pca, rule, latent_dim

    def _train(self, train_data, val_data, n_features: int, device: torch.device, pca=None) -> np.ndarray | None:
        """Build the module and train it on tensors or data sources (``fit`` and streaming fits).

        The anchored model starts at PCA of the training rows (``pca``: from :meth:`_principal_components`,
        computed here when None). Returns the mean squared error of each validation row under the final
        weights, from the validation pass that chose them, or None when there was none in this process
        (no validation rows, a resumed run that ended on an earlier epoch's weights, DDP): then compute
        them anew.
        """
        if pca is None:
            pca = self._principal_components(train_data, val_data)
        latent_dim = self.latent_dim if pca is None else pca[2]
        anchored = self.architecture == "anchored"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed_)
            config = self._module_config(n_features, self.loss_, latent_dim)
            self.module_ = build_model(self.architecture, **config)
            if anchored:
                self.module_.anchor(pca[0].mean, _padded(pca[0].components[:latent_dim], latent_dim))
            self.module_ = self.module_.to(device)
        self.precision_ = resolve_precision(self.precision, self.module_, device)
        loss_name = self.loss_
        n_train = train_data.n_rows if hasattr(train_data, "n_rows") else len(train_data)
        batch_size = auto_batch_size(n_train) if self.batch_size == "auto" else int(self.batch_size)
        if batch_size >= n_train > AUTO_BATCH_MIN:
            warnings.warn(
                f"batch_size={batch_size} is not smaller than the {n_train} training rows: one step per epoch, too "
                "few to learn more than the mean. Use batch_size='auto' or a batch a fraction of the rows.",
                UserWarning,
                stacklevel=3,
            )

        weight = float(self.geometry_weight)
        # each validation row's error, kept from the pass over the final weights: the threshold's errors
        # without another forward pass (not under DDP, where each process validates only its share)
        keep_errors = distributed.world_size() == 1
        pass_errors: list[torch.Tensor] = []
        kept: list[torch.Tensor] = []

        def loss_fn(module: AutoencoderModule, batch: torch.Tensor) -> torch.Tensor:
            if self.geometry is None:
                rows = batch
                raw, _ = module(rows, logits=True)
                loss = reconstruction_loss(loss_name, raw, rows)
            else:
                rows, target = batch[:, :n_features].contiguous(), batch[:, n_features:]  # see fit
                raw, latent = module(rows, logits=True)
                geometric = reconstruction_loss("mse", latent.float(), target)  # distance to Isomap's codes
                loss = reconstruction_loss(loss_name, raw, rows) + weight * geometric
            if keep_errors and not module.training:  # a validation pass: the threshold's errors
                pass_errors.append(_row_mse(module.output(raw), rows))
            return loss

        def on_epoch_end(epoch: int, final_so_far: bool) -> None:
            if final_so_far:
                kept[:] = pass_errors
            pass_errors.clear()

        config = TrainConfig(
            epochs=self.epochs,
            batch_size=batch_size,
            lr=self.lr,
            lr_schedule=self.lr_schedule,
            early_stopping=self.early_stopping,
            patience=self.patience,
            seed=self.seed_,
            verbose=bool(self.verbose),
            precision=self.precision_,
            run=self._run_description(train_data, val_data, n_features),
        )
        checkpointer = None
        if self.checkpoint_dir is not None:
            checkpointer = Checkpointer(
                self.checkpoint_dir, every=self.checkpoint_every, resume=self.resume,
                writer=distributed.is_main_process(),
            )
        try:
            history = fit_module(
                self.module_, loss_fn, train_data, val_data, config, checkpointer=checkpointer,
                on_epoch_end=on_epoch_end, initial_candidate=anchored,
            )
        except TrainingError as error:  # say what this estimator can do about it, and that nothing was fitted
            stem = str(error)[: getattr(error, "advice_at", len(str(error)))]
            scale = "" if self.scaler == "standard" else " Scaling the data (scaler='standard') may also help."
            for name in [name for name in vars(self) if name.endswith("_") and not name.startswith("_")]:
                delattr(self, name)  # neither this half-trained module nor a previous fit's attributes remain
            raise TrainingError(f"{stem}{scale} The fit failed: no model was fitted or saved.") from None
        self.history_ = history.to_dict()
        self.history_["batch_size"] = batch_size
        if pca is not None and pca[1] is not None:
            self.history_["latent_dim_rule"] = pca[1]
        if anchored:
            self.history_["pca"] = _pca_verdict(history, latent_dim, self.geometry is not None)
            may_refit = self.early_stopping and self.geometry is None and distributed.world_size() == 1
            if may_refit and history.best_epoch == 0 and val_data is not None:
                # PCA won: the final model is PCA of all the rows, the better estimate of the same model. The
                # threshold keeps the validation rows' errors under the training rows' PCA (out of sample).
                refit = principal_components(train_data, val_data, max_components=latent_dim)
                self.module_.anchor(refit.mean, _padded(refit.components[:latent_dim], latent_dim))
                kept.clear()  # the threshold's errors are then those of this model: a fresh pass
        self.n_iter_ = len(history.train_loss)
        _warn_not_converged(history, self.early_stopping)
        return torch.cat(kept).cpu().numpy() if kept else None

    # Parameters that do not change what is trained (or that TrainConfig already holds)
    _NOT_IN_RUN = ("epochs", "verbose", "device", "checkpoint_dir", "checkpoint_every", "resume", "random_state",
                   "contamination", "anomaly_score", "batch_size", "lr", "lr_schedule", "early_stopping", "patience",
                   "precision", "n_jobs")

    def _run_description(self, train_data, val_data, n_features: int) -> dict:
        """The settings and data shape a checkpoint must share to be resumed by this fit (JSON-ready)."""
        run = {name: value for name, value in self.get_params().items() if name not in self._NOT_IN_RUN}
        for name in ("hidden_dims", "input_shape"):  # (8,) and [8] are the same setting
            run[name] = None if run[name] is None else [int(v) for v in run[name]]
        n_val = 0 if val_data is None else (val_data.n_rows if hasattr(val_data, "n_rows") else len(val_data))
        run.update(n_features=int(n_features), train_rows=int(train_data.n_rows), validation_rows=int(n_val),
                   fitted_loss=self.loss_)
        return run

    @property
    def latent_dim_(self) -> int:
        """The bottleneck size used: ``latent_dim``, or the one "auto" chose."""
        return int(self.module_.latent_dim)

    def _set_threshold(self, held_out_errors: np.ndarray) -> None:
        """``threshold_`` and the quantiles of the held-out scores behind it (other contaminations)."""
        self.error_quantiles_ = np.quantile(held_out_errors.astype(np.float64), ERROR_QUANTILE_LEVELS)
        if self.contamination == "auto":
            self.threshold_ = detect.auto_threshold(self.error_quantiles_)
        else:
            self.threshold_ = float(np.quantile(held_out_errors, 1.0 - self.contamination))

    def _score_parts(self, X: np.ndarray, *, scale: bool) -> tuple[np.ndarray, np.ndarray]:
        """Each value's squared error and each row's codes, in the scaled space (``scale``: X is unscaled)."""
        def both(batch: torch.Tensor) -> torch.Tensor:
            reconstruction, latent = self.module_(batch)
            return torch.cat([(reconstruction.float() - batch.float()) ** 2, latent.float()], dim=1)

        parts = self._run_batches(both, X, scale=scale)
        return parts[:, : self.n_features_in_], parts[:, self.n_features_in_ :]

    def _fit_score_state(self, arrays, *, scale: bool) -> None:
        """The combined score's normalisers, from the rows of ``arrays`` (an iterable of row blocks)."""
        def parts():
            for array in arrays:
                for start in range(0, len(array), INFERENCE_BATCH_ROWS):
                    yield self._score_parts(array[start : start + INFERENCE_BATCH_ROWS], scale=scale)

        self.score_state_ = detect.fit_score_state(parts())

    def _outlier_scores(self, X: np.ndarray, *, scale: bool, per_feature: bool = False) -> np.ndarray:
        if self.anomaly_score == "combined":
            errors, codes = self._score_parts(X, scale=scale)
            shares = detect.contributions(errors, codes, self.score_state_)
            # float32, as the errors they come from (and as reconstruction_error)
            return (shares if per_feature else shares.sum(axis=1)).astype(np.float32)
        squared = self._errors_scaled(self._scale_rows(X) if scale else X)  # as reconstruction_error
        return squared / self.n_features_in_ if per_feature else squared.mean(axis=1)

    def fit_stream(self, path, *, chunk_rows: int = streaming.DEFAULT_CHUNK_ROWS,
                   buffer_chunks: int = streaming.DEFAULT_BUFFER_CHUNKS, columns=None, key=None):
        """Fit on a ``.csv``, ``.parquet`` or ``.npy`` file chunk by chunk, in bounded memory.

        The scaler is fitted in a first pass (``partial_fit``); rows are shuffled within windows of
        ``buffer_chunks`` chunks. See :func:`aekit.training.streaming.fit_stream`.

        Returns
        -------
        self : Autoencoder
        """
        return streaming.fit_stream(
            self, path, chunk_rows=chunk_rows, buffer_chunks=buffer_chunks, columns=columns, key=key
        )

    # ------------------------------------------------------------------ inference
    @_in_threads
    def _run_batches(self, function, array: np.ndarray, *, scale: bool = False) -> np.ndarray:
        """Apply a module function to ``array`` in batches, without gradients; numpy float32 out.

        With ``scale=True``, ``array`` is unscaled (``_validate_X(..., scale=False)``) and each batch
        is scaled on its way in: the same values as scaling it all first, without that copy.
        """
        device = next(self.module_.parameters()).device
        self.module_.eval()
        outputs = []
        with torch.inference_mode(), autocast(device, resolve_precision(self.precision, self.module_, device)):
            for start in range(0, len(array), INFERENCE_BATCH_ROWS):
                rows = array[start : start + INFERENCE_BATCH_ROWS]
                batch = torch.from_numpy(self._scale_rows(rows) if scale else rows).to(device)
                outputs.append(function(batch).float().cpu().numpy())
        if not outputs:
            return np.empty((0, 0), dtype=np.float32)
        result = np.concatenate(outputs)
        if not np.isfinite(result).all():  # never hand back NaN codes or reconstructions silently
            rows = np.flatnonzero(~np.isfinite(result).all(axis=1))
            raise InvalidInputError(
                f"The model computed NaN or infinite values for {len(rows)} row(s) of X (first: row {rows[0]}): "
                "they overflow float32, far outside the range of the training data. Check the scale of X."
            )
        return result

    def _row_errors(self, X: np.ndarray, *, scale: bool) -> np.ndarray:
        """Mean squared error of each row in the scaled space, batch by batch (``scale``: ``X`` is unscaled).

        The threshold's errors when they were not kept from the last validation pass; the same
        formula as that pass's, and no copy of ``X``, scaled or squared.
        """
        def errors(batch: torch.Tensor) -> torch.Tensor:
            return _row_mse(self.module_(batch)[0], batch)[:, None]

        return self._run_batches(errors, X, scale=scale)[:, 0]

    def _errors_scaled(self, X_scaled: np.ndarray) -> np.ndarray:
        """Squared error of each value, in the scaled space the model was trained in."""
        reconstruction = self._run_batches(lambda batch: self.module_(batch)[0], X_scaled)
        return (X_scaled - reconstruction) ** 2

    def _unscale(self, X_scaled: np.ndarray) -> np.ndarray:
        if self.scaler_ is None:
            return X_scaled
        return self.scaler_.inverse_transform(X_scaled).astype(np.float32, copy=False)

    def transform(self, X) -> np.ndarray:
        """Latent codes of ``X``: an array of shape (n_samples, latent_dim), float32."""
        check_is_fitted(self)
        return self._run_batches(self.module_.encode, self._validate_X(X, reset=False, scale=False), scale=True)

    def inverse_transform(self, X) -> np.ndarray:
        """Decode latent codes ``X`` (n_samples, latent_dim) back to the original units."""
        check_is_fitted(self)
        try:
            Z = check_array(_detached(X), dtype=np.float32, input_name="latent codes")
        except ValueError as error:
            raise InvalidInputError(f"{error} inverse_transform takes latent codes from transform.") from None
        if Z.shape[1] != self.module_.latent_dim:
            raise InvalidInputError(
                f"inverse_transform takes latent codes with {self.module_.latent_dim} columns (latent_dim); "
                f"got {Z.shape[1]}. Pass the output of transform."
            )
        return self._unscale(self._run_batches(self.module_.decode, np.ascontiguousarray(Z)))

    def reconstruct(self, X) -> np.ndarray:
        """``inverse_transform(transform(X))``: the reconstruction of ``X``, in its own units."""
        check_is_fitted(self)
        X_scaled = self._validate_X(X, reset=False)
        return self._unscale(self._run_batches(lambda batch: self.module_(batch)[0], X_scaled))

    def reconstruction_error(self, X, *, per_feature: bool = False) -> np.ndarray:
        """Squared reconstruction error, in the scaled space the model was trained in.

        The scaled space makes features comparable (with ``scaler=None`` it is the data's own units).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        per_feature : bool, default=False
            Return the (n_samples, n_features) squared errors instead of their mean per row.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_features)
            Mean squared error of each row (or each value), float32.
        """
        check_is_fitted(self)
        errors = self._errors_scaled(self._validate_X(X, reset=False))
        return errors if per_feature else errors.mean(axis=1)

    def outlier_scores(self, X, *, per_feature: bool = False) -> np.ndarray:
        """Outlier score of each row: higher is more anomalous (``anomaly_score`` says which score).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        per_feature : bool, default=False
            Return each part's share of the score instead, summing to it across a row: one column per
            feature, and with ``anomaly_score="combined"`` a last column for the latent distance.

        Returns
        -------
        ndarray of shape (n_samples,), (n_samples, n_features) or (n_samples, n_features + 1), float32

        Examples
        --------
        >>> import numpy as np
        >>> from aekit import Autoencoder
        >>> X = np.random.default_rng(0).normal(size=(300, 6))
        >>> ae = Autoencoder(latent_dim=2, epochs=5, random_state=0).fit(X)
        >>> bool(ae.outlier_scores(X + 8)[0] > ae.threshold_)
        True
        >>> ae.outlier_scores(X[:2], per_feature=True).shape  # 6 features and the latent distance
        (2, 7)
        """
        check_is_fitted(self)
        return self._outlier_scores(self._validate_X(X, reset=False, scale=False), scale=True, per_feature=per_feature)

    def score_samples(self, X) -> np.ndarray:
        """Opposite of :meth:`outlier_scores`: higher means more normal (as IsolationForest)."""
        return -self.outlier_scores(X)

    def decision_function(self, X) -> np.ndarray:
        """``threshold_ - outlier_scores``: negative for outliers, positive for inliers."""
        check_is_fitted(self)
        return self.threshold_ - self.outlier_scores(X)

    def predict(self, X) -> np.ndarray:
        """-1 for outliers (score above ``threshold_``), 1 for inliers, as scikit-learn's detectors."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities ``[inlier, outlier]`` of each row, shape (n_samples, 2), as scikit-learn's classifiers.

        Calibrated on the held-out scores (:func:`aekit.detect.outlier_probability`): a logistic in the
        log score with the held-out log scores' robust spread as its scale, 0.5 at ``threshold_``, so
        ``predict`` flags exactly the rows whose outlier probability is above 0.5.
        """
        check_is_fitted(self)
        if getattr(self, "error_quantiles_", None) is None:
            raise InvalidInputError(
                "This model was saved without the distribution of its held-out scores, which predict_proba "
                "calibrates on. Refit it with this aekit."
            )
        outlier = detect.outlier_probability(self.outlier_scores(X), self.threshold_, self.error_quantiles_)
        return np.column_stack([1.0 - outlier, outlier]).astype(np.float32)  # as precise as the scores

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit on ``X``, then label its rows: -1 for outliers, 1 for inliers (``fit(X).predict(X)``).

        The rows above ``threshold_`` include training rows; the threshold itself comes from the
        held-out rows, so about ``contamination`` of rows like them are flagged.
        """
        return self.fit(X, y).predict(X)

    def score(self, X, y=None) -> float:
        """Negative mean reconstruction error of ``X``: higher is better (for model selection)."""
        check_is_fitted(self)
        return -float(np.mean(self.reconstruction_error(X)))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the latent columns: ``latent0``, ``latent1``, ..."""
        check_is_fitted(self)
        return np.asarray([f"latent{i}" for i in range(self.module_.latent_dim)], dtype=object)

    # ------------------------------------------------------------------ persistence
    def save(self, path, *, overwrite: bool = False) -> None:
        """Save the fitted model to the folder ``path`` (JSON + safetensors; atomic).

        An existing model folder is replaced only with ``overwrite=True``; a file, a symbolic link or a
        folder that is not an aekit model is never replaced (see :func:`save_model`).
        Under ``torchrun`` only rank 0 writes (every rank holds the same weights).
        """
        if distributed.is_main_process():
            save_model(self, path, overwrite=overwrite)

    def _saved(self) -> persistence.SavedModel:
        """This fitted estimator's state, as a model folder stores it."""
        params = self.get_params(deep=False)
        if not (params["random_state"] is None or isinstance(params["random_state"], int)):
            params["random_state"] = None  # a RandomState object has no JSON form; seed_ records the seed used
        params["hidden_dims"] = [int(h) for h in params["hidden_dims"]]
        names = getattr(self, "feature_names_in_", None)
        quantiles = getattr(self, "error_quantiles_", None)
        state = getattr(self, "score_state_", None)
        fitted = {
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": None if names is None else [str(n) for n in names],
            "loss": self.loss_,
            "threshold": float(self.threshold_),
            "n_iter": int(self.n_iter_),
            "seed": int(self.seed_),
            "error_quantiles": None if quantiles is None else [float(q) for q in quantiles],
            "score_state": state.to_dict() if state else None,
            "window": getattr(self, "window_", None),
        }
        output_config = getattr(self, "_sklearn_output_config", None)  # set_output(transform="pandas")
        if output_config:
            fitted["output_config"] = {key: str(value) for key, value in output_config.items()}
        return persistence.SavedModel(params=params, module=self.module_, scaler=self.scaler_, fitted=fitted,
                                      history=self.history_)

    @classmethod
    def _from_saved(cls, saved: persistence.SavedModel) -> Autoencoder:
        """The fitted estimator a (checked) model folder describes, its module on ``device`` (else the CPU)."""
        estimator = cls(**saved.params)
        try:
            device = resolve_device(estimator.device)
        except InvalidParameterValue:
            device = torch.device("cpu")  # saved on a GPU (or MPS, XPU...) machine, loaded on one without: the CPU
        fitted = saved.fitted
        estimator.module_ = saved.module.to(device).eval()
        estimator.scaler_ = saved.scaler
        estimator.n_features_in_ = fitted["n_features_in"]
        if fitted.get("feature_names_in") is not None:
            estimator.feature_names_in_ = np.asarray(fitted["feature_names_in"], dtype=object)
        estimator.loss_ = fitted["loss"]
        estimator.threshold_ = float(fitted["threshold"])
        if fitted.get("error_quantiles") is not None:
            estimator.error_quantiles_ = np.asarray(fitted["error_quantiles"], dtype=np.float64)
        if saved.score_state is not None:
            estimator.score_state_ = saved.score_state
        if fitted.get("window") is not None:
            estimator.window_ = fitted["window"]
        estimator.n_iter_ = fitted["n_iter"]
        estimator.seed_ = fitted["seed"]
        estimator.history_ = saved.history
        if fitted.get("output_config") is not None:
            estimator.set_output(**fitted["output_config"])
        return estimator

    def to_onnx(self, path) -> Path:
        """Write the fitted pipeline (scaling, encoder, decoder, error, outlier flag) as one ONNX graph.

        Raw float32 rows in; ``latent``, ``reconstruction``, ``reconstruction_error`` and ``outlier``
        out. Needs the ``onnx`` package. See :func:`aekit.export.export_onnx`.

        Returns
        -------
        Path
            ``path``.
        """
        from aekit.export import export_onnx

        return export_onnx(self, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.allow_nan = False
        return tags


# -------------------------------------------------------------------------------------- saving, loading
def save_model(estimator: Autoencoder, path: str | os.PathLike, *, overwrite: bool = False,
               overwrite_option: str = "overwrite=True") -> Path:
    """Write the fitted ``estimator`` to the folder ``path`` atomically and return the path (``aekit.save``).

    Parameters
    ----------
    estimator : Autoencoder
        A fitted estimator.
    path : str or path-like
        The model folder to write.
    overwrite : bool, default=False
        Replace an existing aekit model folder. Whatever the setting, only a model folder (its manifest
        present and matching its files) or an empty folder is ever replaced, and only once the new one
        is complete; a file, a symbolic link or any other folder at ``path`` is refused.
    overwrite_option : str, default="overwrite=True"
        How the caller's user asks for a replacement, named in the error when ``path`` exists (the
        command line passes ``"--force"``).

    Raises
    ------
    InvalidInputError
        ``path`` exists and may not be replaced, or cannot be written.

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> X = np.random.default_rng(0).normal(size=(64, 5))
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> folder = save_model(ae, tempfile.mkdtemp() + "/model")
    >>> np.array_equal(aekit.load(folder).transform(X), ae.transform(X))
    True
    >>> folder = save_model(ae, folder, overwrite=True)  # replaces the model saved just before
    """
    estimator = _the_autoencoder(estimator)
    check_is_fitted(estimator)
    return persistence.write_model(estimator._saved(), path, overwrite=overwrite, overwrite_option=overwrite_option)


def _the_autoencoder(estimator) -> Autoencoder:
    """``estimator`` when it is an Autoencoder; otherwise an error that says what to pass."""
    if isinstance(estimator, Autoencoder):
        return estimator
    steps = getattr(estimator, "named_steps", None)
    if steps is not None:  # a scikit-learn Pipeline: its other steps have no safe (JSON) form here
        names = [name for name, step in steps.items() if isinstance(step, Autoencoder)]
        which = (f"its Autoencoder step, aekit.save(pipeline.named_steps[{names[0]!r}], path)" if names
                 else "an Autoencoder")
        raise InvalidInputTypeError(
            f"aekit.save saves one aekit.Autoencoder; got a {type(estimator).__name__} with the steps "
            f"{list(steps)}. Save {which}, and rebuild the other steps in code (they are not saved)."
        )
    raise InvalidInputTypeError(
        f"aekit.save saves a fitted aekit.Autoencoder; got {type(estimator).__name__}. Pass the Autoencoder."
    )


def load_model(path: str | os.PathLike) -> Autoencoder:
    """Load a model folder written by :func:`save_model` (``aekit.load``); never executes code from it.

    Raises
    ------
    ModelFileError
        When a file is missing, truncated, altered, a symlink, of the wrong shape, or from a newer
        format version.
    """
    return load_model_and_environment(path)[0]


def load_model_and_environment(path: str | os.PathLike) -> tuple[Autoencoder, dict]:
    """:func:`load_model`, and the verified ``environment.json`` (versions and seed at save time).

    Each file is read once; what is returned is what was checked (nothing is read from disk again).

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> X = np.random.default_rng(0).normal(size=(64, 5))
    >>> folder = save_model(aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X), tempfile.mkdtemp() + "/m")
    >>> model, environment = load_model_and_environment(folder)
    >>> environment["seed"] == model.seed_
    True
    """
    def check_params(params: dict) -> None:
        try:
            Autoencoder(**params)._check_params()
        except InvalidParameterValue as error:
            raise ModelFileError(f"config.json: {error} {persistence.DAMAGED}") from None

    saved = persistence.read_model(path, defaults=Autoencoder().get_params(), check_params=check_params)
    return Autoencoder._from_saved(saved), saved.environment
