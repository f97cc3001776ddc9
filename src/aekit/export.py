"""ONNX export: a fitted :class:`~aekit.Autoencoder`'s whole pipeline as one ONNX graph.

The graph takes the raw rows (float32, the training columns in their training order) and applies
the fitted scaler's operations itself, so a deployment needs no aekit, no scikit-learn and no torch:
only an ONNX runtime. A model of complete numeric rows has one input and five outputs:

==========================  ==================  ===============================================
name                        shape               the estimator's equivalent
==========================  ==================  ===============================================
``X`` (input)               (n_rows, n_features) raw data, float32
``latent``                  (n_rows, latent_dim) ``transform(X)``
``reconstruction``          (n_rows, n_features) ``reconstruct(X)``, in the data's own units
``reconstruction_error``    (n_rows,)            ``reconstruction_error(X)`` (scaled space)
``outlier_score``           (n_rows,)            ``outlier_scores(X)`` (the model's ``anomaly_score``)
``outlier``                 (n_rows,)            ``predict(X) == -1`` (score above ``threshold_``)
==========================  ==================  ===============================================

aekit refuses a row holding NaN or an infinite value; the graph cannot refuse, so it **flags** it: such a
row (and any row whose score is not a number, or overflows float32) has ``outlier_score`` ``+inf`` and
``outlier`` True, whatever its other outputs hold. A deployment that must tell a broken row from an
outlier checks ``numpy.isfinite(X).all(axis=1)`` itself.

A model of a table with categorical columns or missing cells (``table_``, :mod:`aekit.tables`) takes the
table's columns as two inputs, and its outputs speak of those columns:

============================  ========================  ===========================================
name                          shape                     the estimator's equivalent
============================  ========================  ===========================================
``numbers`` (input)           (n_rows, n_numeric)       the numeric columns, float32, data units; NaN: missing
``categories`` (input)        (n_rows, n_categorical)   each cell's category index, int64 (below)
``latent``                    (n_rows, latent_dim)      ``transform(X)``
``reconstructed_numbers``     (n_rows, n_numeric)       ``reconstruct(X)``'s numeric columns, data units
``reconstructed_categories``  (n_rows, n_categorical)   ``reconstruct(X)``'s categories, as indices
``reconstruction_error``      (n_rows,)                 ``reconstruction_error(X)``: NaN, no observed cell
``outlier_score``             (n_rows,)                 ``outlier_scores(X)``: NaN, no observed cell
``outlier``                   (n_rows,)                 ``predict(X) == -1``
============================  ========================  ===========================================

A category's index is its position in the column's list of categories, stored with the column names and
kinds in the metadata (``table_columns``, JSON: ``name``, ``kind``, ``input``, ``position``, ``categories``);
``-1`` (``missing_category``) marks a missing cell and ``-2`` (``unseen_category``) a category not in the
list: the graph reads it as the column's ``"(other)"`` bucket when it has one, else as a category never seen
in training, which adds to the score as in aekit. ``numbers`` or ``categories`` (and its reconstruction)
is left out of a graph whose table has no column of that kind. Inside, the graph does what aekit does: the
numeric columns scaled, the categories one-hot, each missing cell filled with its training mean, the
loss's terms per column (:class:`aekit.models.losses.TableLoss`, the same code traced) and the score over
the observed cells. What ONNX does not take is matching text: the consumer turns each category into its
index (the metadata's lists hold the categories as aekit writes them, ``3`` for the number 3.0 and
``True`` for a boolean), and the reconstructed categories come back as indices into the same lists. A
missing cell's reconstruction is the autoencoder's own fill (``impute`` blends it with a linear fill that
the graph does not hold: :mod:`aekit.imputation`). An infinite number (which aekit refuses) is flagged as
above: ``outlier_score`` ``+inf``, ``outlier`` True.

One graph rather than one per output: the outputs share the encoder and decoder passes, and a
runtime computes only what is asked for (``session.run(["latent"], ...)``). The graph always
computes in float32, whatever the model's ``precision``. The training column names, the threshold
and aekit's version are stored in the file's metadata (``metadata_props``).

Export needs the ``onnx`` package (``pip install onnx``, or ``pip install "aekit[onnx]"``, which
also installs ``onnxruntime`` to run the graph).
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.special import logsumexp
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted
from torch import nn

from aekit._files import atomic_write_bytes, check_output_file
from aekit._version import __version__
from aekit.detect import outlier_score, quantile_threshold
from aekit.exceptions import InvalidInputError, MissingDependencyError, Setting, Words
from aekit.models.losses import TableLoss
from aekit.spectrogram import POWER_FLOOR, LogMelFrames
from aekit.tables import OTHER

__all__ = ["CATEGORIES_INPUT", "INPUT_NAME", "MISSING_CATEGORY", "NUMBERS_INPUT", "OUTPUT_NAMES", "UNSEEN_CATEGORY",
           "export_onnx", "graph_signature"]

INPUT_NAME = "X"
NUMBERS_INPUT, CATEGORIES_INPUT = "numbers", "categories"  # a table model's inputs
MISSING_CATEGORY = -1  # in the categories input: a missing cell
UNSEEN_CATEGORY = -2  # in the categories input: a category the model was not trained on
OUTPUT_NAMES = ("latent", "reconstruction", "reconstruction_error", "outlier_score", "outlier")
OPSET_VERSION = 17  # run by every onnxruntime since 1.11 (2022)


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError(
            "Exporting to ONNX needs the onnx package, which is not installed. Run `pip install onnx` "
            "(or `pip install \"aekit[onnx]\"`, which adds onnxruntime to run the exported graph)."
        ) from None
    return onnx


def _plain_copy(module: nn.Module) -> nn.Module:
    """A float32 CPU copy of ``module`` in which every ``nn.Linear`` subclass is a plain ``nn.Linear``.

    :class:`aekit.models.layers.Linear` may route its product through a private oneDNN operator that has
    no ONNX form; ``nn.Linear`` with the same weights computes the same values through ``F.linear``,
    which exports as ``Gemm``.
    """
    plain = copy.deepcopy(module).cpu().float().eval()
    for parent in list(plain.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and type(child) is not nn.Linear:
                replacement = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None)
                replacement.load_state_dict(child.state_dict())
                setattr(parent, name, replacement)
    return plain


def _scaling(scaler) -> tuple[tuple[str, np.ndarray], ...]:
    """The fitted scaler's transform as ``(operation, values)`` steps, in scikit-learn's order."""
    if scaler is None:
        return ()
    if isinstance(scaler, StandardScaler):
        steps = []
        if scaler.with_mean:
            steps.append(("sub", scaler.mean_))
        if scaler.with_std:
            steps.append(("div", scaler.scale_))
        return tuple(steps)
    if isinstance(scaler, MinMaxScaler):
        return (("mul", scaler.scale_), ("add", scaler.min_))
    raise InvalidInputError(
        problem=f"ONNX export knows the 'standard' and 'minmax' scalers; this model's scaler is "
                f"{type(scaler).__name__}.",
        hint=Words("Refit it with ", Setting("scaler", "standard"), ", 'minmax' or None."))


_INVERSE = {"sub": "add", "add": "sub", "mul": "div", "div": "mul"}
_APPLY = {"sub": torch.sub, "add": torch.add, "mul": torch.mul, "div": torch.div}


class _CombinedScore(nn.Module):
    """:func:`aekit.detect.contributions` in torch: each column's error over its scale, plus the codes' distance
    (:meth:`aekit.detect.LatentModes.distance`, with the bound's log folded into the peaks)."""

    def __init__(self, score_state) -> None:
        super().__init__()
        self.register_buffer("feature_scale", torch.as_tensor(score_state.feature_scale, dtype=torch.float32))
        self.register_buffer("code_mean", torch.as_tensor(score_state.code_mean, dtype=torch.float32))
        self.latent_divisor = float(score_state.latent_divisor)
        modes = score_state.modes
        peaks = modes.log_peaks()
        for name, value in (("whitening", modes.whitening), ("mode_means", modes.means),
                            ("mode_inverse_variances", 1.0 / modes.variances),
                            ("mode_peaks", peaks - logsumexp(peaks))):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32))

    def forward(self, squared: torch.Tensor, latent: torch.Tensor, n_observed=None) -> torch.Tensor:
        """The row scores from squared errors (NaN for a missing cell when ``n_observed``, each row's count of
        observed cells, is given) and codes."""
        z = ((latent - self.code_mean) @ self.whitening).unsqueeze(1) - self.mode_means  # (rows, modes, rank)
        quadratic = (z.square() * self.mode_inverse_variances).sum(dim=2)
        distance = (-2.0 * torch.logsumexp(self.mode_peaks - 0.5 * quadratic, dim=1)).clamp_min(0.0)
        if n_observed is None:
            weight = 1.0 / (self.feature_scale * squared.shape[1])
            return (squared * weight).sum(dim=1) + distance / self.latent_divisor
        normalised = squared / (self.feature_scale * n_observed.unsqueeze(1))
        return torch.where(torch.isnan(normalised), 0.0, normalised).sum(dim=1) + distance / self.latent_divisor


class _Pipeline(nn.Module):
    """Scale, encode, decode, unscale, score: what the estimator does, as one traceable module."""

    def __init__(self, module: nn.Module, scaler, threshold: float, score_state=None) -> None:
        super().__init__()
        self.module = module
        self.scaling = _Scaling(scaler)
        self.register_buffer("threshold", torch.tensor(threshold, dtype=torch.float32))
        self.combined = None if score_state is None else _CombinedScore(score_state)  # else the plain error

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        scaled = self.scaling(x)
        latent = self.module.encode(scaled)
        decoded = self.module.decode(latent)
        squared = (scaled - decoded).square()
        error = squared.mean(dim=1)
        score = error if self.combined is None else self.combined(squared, latent)
        reconstruction = self.scaling.inverse(decoded)
        # a row aekit would refuse (NaN or inf in it, or a score that is not a number) is flagged, never normal
        valid = torch.isfinite(x).all(dim=1) & torch.isfinite(score)
        score = torch.where(valid, score, torch.full_like(score, float("inf")))
        return latent, reconstruction, error, score, score > self.threshold


class _Scaling(nn.Module):
    """A fitted scaler's transform (:func:`_scaling`'s steps) and its inverse, in torch."""

    def __init__(self, scaler) -> None:
        super().__init__()
        steps = _scaling(scaler)
        self.operations = [operation for operation, _ in steps]
        for index, (_, values) in enumerate(steps):
            self.register_buffer(f"scaling{index}", torch.as_tensor(np.asarray(values, dtype=np.float32)))

    def _values(self) -> list[torch.Tensor]:
        return [getattr(self, f"scaling{index}") for index in range(len(self.operations))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for operation, value in zip(self.operations, self._values(), strict=True):
            x = _APPLY[operation](x, value)
        return x

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        for operation, value in reversed(list(zip(self.operations, self._values(), strict=True))):
            x = _APPLY[_INVERSE[operation]](x, value)
        return x


class _TablePipeline(nn.Module):
    """A table model's pipeline (see the module): the raw numeric columns and the categories' indices in, encoded
    as :meth:`aekit.tables.TableEncoder.encode` encodes a table, then the loss's own fill, terms and output
    (:class:`aekit.models.losses.TableLoss`, traced) and the score as :func:`aekit.estimator.inference.outlier_scores`
    computes it."""

    def __init__(self, module: nn.Module, table, threshold: float, score_state=None) -> None:
        super().__init__()
        self.module = module
        self.loss = TableLoss.of(table)
        self.scaling = _Scaling(table.scaler)
        self.register_buffer("threshold", torch.tensor(threshold, dtype=torch.float32))
        self.combined = None if score_state is None else _CombinedScore(score_state)
        # each column in the encoded row's order: its input's column, its width, and its "other" bucket
        self.columns: list[tuple[str, int, int, int | None]] = []
        self.numeric_slots, self.groups = [], []
        for name, start, stop in table.layout():
            if name in table.categories:
                known = table.categories[name]
                self.columns.append(("categorical", len(self.groups), stop - start,
                                     known.index(OTHER) if OTHER in known else None))
                self.groups.append((start, stop))
            else:
                self.columns.append(("numeric", len(self.numeric_slots), 1, None))
                self.numeric_slots.append(start)

    def encode(self, numbers: torch.Tensor | None, categories: torch.Tensor | None) -> torch.Tensor:
        """The encoded rows (NaN for a missing cell), as ``TableEncoder.encode`` gives them."""
        scaled = None if numbers is None else self.scaling(numbers)  # NaN stays NaN
        parts = []
        for kind, position, width, other in self.columns:
            if kind == "numeric":
                parts.append(scaled[:, position : position + 1])
                continue
            index = categories[:, position : position + 1]
            missing = index == MISSING_CATEGORY
            if other is not None:  # a category not in the list goes with the rare ones of training
                outside = ((index < 0) | (index >= width)) & ~missing
                index = torch.where(outside, torch.full_like(index, other), index)
            one_hot = (index == torch.arange(width)).float()  # all 0 for a category never seen: not missing
            parts.append(torch.where(missing, float("nan"), one_hot))
        return torch.cat(parts, dim=1)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        numbers = inputs[0] if self.numeric_slots else None
        categories = inputs[-1] if self.groups else None
        rows = self.encode(numbers, categories)
        raw, latent = self.module(self.loss.filled(rows))
        terms = self.loss.column_errors(raw, rows)  # NaN for a missing cell
        n_observed = (~torch.isnan(terms)).sum(dim=1).float()
        error = torch.where(torch.isnan(terms), 0.0, terms).sum(dim=1) / n_observed  # NaN: no observed cell
        score = error if self.combined is None else self.combined(terms, latent, n_observed)
        # a row with no observed cell scores NaN, as in aekit; an infinite number (which aekit refuses) or a
        # score that overflows is flagged
        score = torch.where(n_observed == 0, float("nan"), torch.where(torch.isfinite(score), score, float("inf")))
        if numbers is not None:
            score = torch.where(torch.isinf(numbers).any(dim=1), float("inf"), score)
        output = self.loss.output(raw)
        outputs = [latent]
        if numbers is not None:
            outputs.append(self.scaling.inverse(output[:, self.numeric_slots]))
        if categories is not None:
            outputs.append(torch.stack([output[:, start:stop].argmax(dim=1) for start, stop in self.groups], dim=1))
        return (*outputs, error, score, score > self.threshold)


def graph_signature(estimator) -> tuple[list[tuple[str, int, str]], list[str]]:
    """The exported graph's inputs, ``(name, columns, element type)``, and its outputs' names.

    Examples
    --------
    >>> import numpy as np, aekit
    >>> X = np.random.default_rng(0).normal(size=(100, 5)).astype("float32")
    >>> graph_signature(aekit.Autoencoder(latent_dim=2, epochs=1, random_state=0).fit(X))
    ([('X', 5, 'float32')], ['latent', 'reconstruction', 'reconstruction_error', 'outlier_score', 'outlier'])
    """
    table = getattr(estimator, "table_", None)
    if table is None:
        return [(INPUT_NAME, int(estimator.n_features_in_), "float32")], list(OUTPUT_NAMES)
    inputs, outputs = [], ["latent"]
    if table.plan.numeric:
        inputs.append((NUMBERS_INPUT, len(table.plan.numeric), "float32"))
        outputs.append("reconstructed_numbers")
    if table.categories:
        inputs.append((CATEGORIES_INPUT, len(table.categories), "int64"))
        outputs.append("reconstructed_categories")
    return inputs, [*outputs, *OUTPUT_NAMES[2:]]


def _table_metadata(table) -> dict:
    """What a consumer of a table model's graph needs to build its inputs and read its outputs."""
    numeric = {name: i for i, name in enumerate(table.plan.numeric)}
    categorical = {name: i for i, name in enumerate(table.categories)}
    columns = [{"name": name, "kind": "numeric", "input": NUMBERS_INPUT, "position": numeric[name]}
               if name in numeric else
               {"name": name, "kind": "categorical", "input": CATEGORIES_INPUT, "position": categorical[name],
                "categories": table.categories[name]} for name in table.columns]
    return {
        "table_columns": json.dumps(columns),
        "table_left_out": json.dumps(table.plan.excluded),
        "missing_category": str(MISSING_CATEGORY),
        "unseen_category": str(UNSEEN_CATEGORY),
        "table_steps": (
            f"A table model: input {NUMBERS_INPUT} holds its numeric columns (float32, in the data's units, NaN for "
            f"a missing cell) and {CATEGORIES_INPUT} its categorical ones (int64: the index of the cell's category "
            f"in the column's list in table_columns, {MISSING_CATEGORY} for a missing cell, {UNSEEN_CATEGORY} for "
            f"a category not in the list), each in table_columns' position. A category is matched as text: numbers "
            "without a decimal point when integral (3, not 3.0), booleans as True and False. Missing cells are "
            "filled inside the graph as in training; a row's score is over its observed cells, and a row with no "
            "observed cell scores NaN (its outlier flag is False). A category not in the list counts as evidence "
            f"of an anomaly, or goes to '{OTHER}' when the column has that bucket. reconstructed_numbers are in "
            "the data's units, reconstructed_categories are indices in the column's list (the most likely "
            "category). A missing cell's reconstruction is the autoencoder's own fill: aekit's impute blends it, "
            "column by column, with a linear fill (the conditional mean under a Gaussian of the encoded rows) "
            "that this graph does not hold, so impute's values can differ."
        ),
    }


def _series_metadata(series: dict) -> dict:
    """What a consumer of a series model's graph must do around it (the graph scores windows, not steps)."""
    window, channels = series["window"], series["columns"]
    level = {None: "", "level": " minus each channel's mean over the window",
             "zscore": " minus each channel's mean over the window, divided by its standard deviation (when above 0)"}
    return {
        "series_window": str(window),
        "series_stride": "1",
        "series_normalize": json.dumps(series["params"]["normalize"]),
        "series_channels": json.dumps(channels),
        "series_threshold": repr(float(series["threshold"])),
        "series_level": json.dumps(series["level"]),
        "series_steps": (
            f"A time-series model: each row of X is a window of {window} consecutive time steps, flattened step by "
            f"step (the channels of a step side by side){level[series['params']['normalize']]}; take every window "
            "(stride 1). A window's score is its outlier_score"
            + ("" if series["level"] is None else
               " divided by series_level's shape_scale, plus its level score divided by series_level's level_scale "
               "(the level score: the mean over channels of |the channel's mean over the window - center| / spread, "
               "center and spread from series_level)")
            + ". A step's score is the mean score of the windows covering it; the step is an outlier when that mean "
            "is above series_threshold (the graph's own outlier output is per window)."
        ),
    }


def _sound_metadata(estimator) -> dict:
    """What a consumer of a sound model's graph must compute before it (the rows) and after it (the clip score)."""
    features = LogMelFrames.from_dict(estimator.audio_)
    params = features.to_dict()
    fmax = features.sample_rate / 2 if features.fmax is None else features.fmax
    clip_threshold, _ = quantile_threshold(estimator.audio_["clip_quantiles"], estimator.contamination, "clips")
    return {
        "audio_features": json.dumps(params),
        "audio_clip_threshold": repr(float(clip_threshold)),
        "audio_steps": (
            f"A sound model: each row of X is {features.frames} consecutive log-mel frames of a clip, computed as "
            f"aekit.spectrogram.LogMelFrames({', '.join(f'{key}={value!r}' for key, value in params.items())}) "
            f"computes them: the clip mono (channels averaged) at {features.sample_rate} Hz; frames of "
            f"{features.n_fft} samples every {features.hop_length}, centred (the clip padded with "
            f"{features.n_fft // 2} zeros at both ends), times a periodic Hann window; power |rfft|^2; "
            f"{features.n_mels} triangular mel filters (HTK mel scale, peak 1) from {features.fmin:g} to {fmax:g} Hz; "
            f"10 log10(max(band, {POWER_FLOOR:g})); a row joins frames t to t + {features.frames - 1}, frame after "
            f"frame ({features.n_features_out_} values), one row per frame step. A clip's score is the mean "
            "outlier_score of its rows; the clip is an outlier when that mean is above audio_clip_threshold (the "
            "graph's own outlier output is per row, a moment of the clip)."
        ),
    }


def export_onnx(estimator, path: str | os.PathLike, *, series: dict | None = None,
                overwrite: bool = False) -> Path:
    """Write a fitted estimator's pipeline (scaling, encoder, decoder, error, outlier flag) as ONNX.

    A row holding NaN or an infinite value, which the estimator refuses, gets ``outlier_score`` ``+inf`` and
    ``outlier`` True in the graph (see the module's documentation). A model of a table with categorical
    columns or missing cells (``table_``) takes its numeric columns (``numbers``, NaN for a missing cell) and
    its categories' indices (``categories``: ``-1`` missing, ``-2`` not in the column's list) and gives its
    columns back (``reconstructed_numbers``, ``reconstructed_categories``); the metadata's ``table_columns``
    lists the columns, their kinds and their categories in index order (see the module's documentation). Text
    does not enter the graph: the consumer maps each category to its index.

    Parameters
    ----------
    estimator : Autoencoder
        A fitted estimator (or one loaded with :func:`aekit.load`).
    path : str or path-like
        The ``.onnx`` file to write (atomically).
    series : dict, optional
        A :class:`~aekit.SeriesAutoencoder`'s state (``series_state()``) when ``estimator`` is its model
        of the windows: the graph then scores windows, and the metadata (``series_window``,
        ``series_stride``, ``series_normalize``, ``series_channels``, ``series_threshold``,
        ``series_steps``) and the description say what a consumer must do around it.
        A model trained on sound (``audio_``) is exported likewise: the graph scores rows of log-mel
        frames, and ``audio_features`` (the :class:`~aekit.spectrogram.LogMelFrames` parameters, JSON),
        ``audio_clip_threshold`` and ``audio_steps`` say how to compute the rows from a clip and its score
        from theirs.
    overwrite : bool, default=False
        Replace ``path`` when it is an existing regular file (never anything else).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    MissingDependencyError
        The ``onnx`` package is not installed.
    InvalidInputError
        ``path`` does not end in ``.onnx``, or may not be written (see :func:`aekit._files.check_output_file`).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, aekit
    >>> import onnxruntime
    >>> X = np.random.default_rng(0).normal(size=(100, 5)).astype("float32")
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> path = export_onnx(ae, pathlib.Path(tempfile.mkdtemp()) / "model.onnx")
    >>> session = onnxruntime.InferenceSession(path)
    >>> latent, reconstruction, error, score, outlier = session.run(None, {"X": X})
    >>> bool(np.abs(latent - ae.transform(X)).max() < 1e-5)
    True
    """
    check_is_fitted(estimator)
    table = getattr(estimator, "table_", None)
    path = Path(path)
    if path.suffix.lower() != ".onnx":  # a typo must not turn the user's data or model file into a graph
        raise InvalidInputError(
            f"Cannot write {str(path)!r}: an ONNX file's name ends in .onnx, and this one ends in "
            f"{path.suffix or '(no extension)'!r}. Choose a path such as model.onnx."
        )
    check_output_file(path, overwrite=overwrite)  # before the export; again at the rename
    onnx = _require_onnx()
    score_state = getattr(estimator, "score_state_", None) if outlier_score(estimator.anomaly_score).reads_codes \
        else None
    if table is None:
        pipeline = _Pipeline(_plain_copy(estimator.module_), estimator.scaler_, float(estimator.threshold_),
                             score_state).eval()
    else:
        pipeline = _TablePipeline(_plain_copy(estimator.module_), table, float(estimator.threshold_),
                                  score_state).eval()
    inputs, outputs = graph_signature(estimator)
    example = tuple(torch.zeros(2, width, dtype=getattr(torch, kind)) for _, width, kind in inputs)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # the TorchScript exporter: fast and quiet for these plain graphs (the dynamo one takes seconds)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            pipeline, example, buffer, input_names=[name for name, _, _ in inputs], output_names=outputs,
            dynamic_axes={name: {0: "n_rows"} for name in [*(name for name, _, _ in inputs), *outputs]},
            opset_version=OPSET_VERSION, dynamo=False,
        )
    graph = onnx.load_from_string(buffer.getvalue())
    names = getattr(estimator, "feature_names_in_", None)
    metadata = {
        "producer": f"aekit {__version__}",
        "feature_names": json.dumps(None if names is None else [str(name) for name in names]),
        "n_features": str(int(estimator.n_features_in_)),
        "latent_dim": str(int(estimator.module_.latent_dim)),
        "threshold": repr(float(estimator.threshold_)),
        "contamination": str(estimator.contamination),  # a share of the rows, or "auto"
        "outputs": ", ".join(outputs),
    }
    graph.doc_string = (
        "aekit autoencoder: raw float32 rows in (scaling included); latent codes, reconstruction in the data's "
        "units, per-row mean squared error in the scaled space, and the outlier flag out."
    )
    if table is not None:
        metadata.update(_table_metadata(table))
        metadata.update(feature_names=json.dumps(table.columns), n_features=str(len(table.columns)))
        graph.doc_string = ("aekit autoencoder of a table: its numeric columns and its categories' indices in; latent "
                            "codes, reconstructed columns, per-row error and outlier score over the observed cells, "
                            "and the outlier flag out. " + metadata["table_steps"])
    if series is not None:
        metadata.update(_series_metadata(series))
        graph.doc_string += " " + metadata["series_steps"]
    if getattr(estimator, "audio_", None) is not None:
        metadata.update(_sound_metadata(estimator))
        graph.doc_string += " " + metadata["audio_steps"]
    onnx.helper.set_model_props(graph, metadata)
    onnx.checker.check_model(graph)
    atomic_write_bytes(path, graph.SerializeToString(), overwrite=overwrite)
    return path
