"""``fit_file``: train an :class:`~aekit.Autoencoder` on a data file or image folder and save its model folder.

A fit is a few named steps: check the outputs (before minutes of training), choose how the data is
trained (:func:`training_route`), train along that route, save (one process under torchrun), and
summarise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aekit.data import DataSpec, count_rows, table_format
from aekit.data.audio import is_audio_input
from aekit.data.common import column_names
from aekit.detect import threshold_at
from aekit.estimator import Autoencoder, SeriesAutoencoder, save_model
from aekit.exceptions import InvalidParameterValue, Setting, Words, parameter_error
from aekit.persistence import check_model_target
from aekit.preprocess import describe_scaling
from aekit.tables import needs_table
from aekit.training import distributed
from aekit.training.config import kept_losses
from aekit.training.streaming import fit_stream, should_stream
from aekit.workflows.audio import fit_audio
from aekit.workflows.matching import as_frame, read_frame
from aekit.workflows.series import read_series

TYPE_ROWS = 1000  # a table's first rows tell whether it needs a table model (then it is read in memory)


def fit_file(data, model_dir, *, spec: DataSpec = DataSpec(), exclude_columns: Sequence[str] = (),
             overwrite: bool = False, streaming: bool | None = False, window: int | str | None = None,
             stride: int | str | None = None, normalize: str | None = "level", audio: dict | None = None,
             **params) -> dict:
    """Train an :class:`~aekit.Autoencoder` on a data file or image folder and save it to `model_dir`.

    Parameters
    ----------
    data : str or path-like
        ``.csv``, ``.parquet``, ``.npy``, ``.npz``, a folder of images (see :func:`aekit.data.read_data`),
        or sound (``.wav``, ``.flac``, ``.ogg`` or a folder of them; ``audio``: parameters of
        :class:`aekit.spectrogram.LogMelFrames`), read as `spec` says. A table with text, boolean,
        identifier-like or date columns, or empty cells, trains a table model (:mod:`aekit.tables`).
    model_dir : str or path-like
        The model folder to write; an existing aekit model folder is replaced only with `overwrite`.
    exclude_columns : list of str, optional
        Columns of a table to leave out of the model (a lone string: one column).
    streaming : bool or None, default=False
        Train chunk by chunk in bounded memory (:mod:`aekit.training.streaming`); None decides by the
        data's size against the available memory.
    window, stride, normalize : optional
        Fit a :class:`~aekit.SeriesAutoencoder` on `data` as a time series, in memory.
    **params
        Constructor arguments of :class:`~aekit.Autoencoder`; on images ``input_shape`` defaults to the
        images' shape.

    Returns
    -------
    dict
        The summary: rows, features, epochs, losses, seconds, the outlier threshold, where the model went.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(folder / "x.npy", np.random.default_rng(0).normal(size=(100, 5)))
    >>> summary = fit_file(folder / "x.npy", folder / "model", latent_dim=2, epochs=3, random_state=0)
    >>> summary["n_rows"], summary["n_features"], summary["epochs"]
    (100, 5, 3)
    """
    model_dir = Path(model_dir)
    exclude_columns = column_names(exclude_columns)  # a lone string is one name, as read_data's columns
    check_outputs(model_dir, params.get("checkpoint_dir"), overwrite=overwrite)  # save_model checks again
    route, table = training_route(data, spec, streaming=streaming, window=window, stride=stride,
                                  exclude_columns=exclude_columns, audio=audio, params=params)
    if route == "sound":
        fitted = _fit_sound(data, spec, streaming, window, audio, params)
    elif route == "stream":
        fitted = _fit_stream(data, spec, params)
    elif route == "table":
        model = Autoencoder(**params)
        fitted = Fitted(model, _timed(model.fit, table), n_rows=len(table))
    elif route == "series":
        fitted = _fit_series(data, spec, window, stride, normalize, params)
    else:
        fitted = _fit_rows(data, spec, params)
    if distributed.is_main_process():  # under torchrun every rank holds the same model; one writes it
        save_model(fitted.model, model_dir, overwrite=overwrite)
    return _summary(fitted, data, model_dir, streaming=route == "stream", exclude_columns=exclude_columns)


@dataclass(frozen=True)
class Fitted:
    """A trained model and what the summary says of its data (``n_rows``: rows, time steps or log-mel frames)."""

    model: Autoencoder | SeriesAutoencoder
    seconds: float  # the whole fit: scaling, split, training loop, threshold
    n_rows: int
    image_shape: tuple[int, int, int] | None = None
    n_channels: int | None = None  # a time series' channels


def _timed(fit, *args, **options) -> float:
    """The seconds ``fit(*args, **options)`` takes."""
    started = time.perf_counter()
    fit(*args, **options)
    return time.perf_counter() - started


def check_outputs(model_dir: Path, checkpoint_dir, *, overwrite: bool) -> None:
    """Refuse, before training, a model folder that saving may not replace, and a checkpoint folder in it."""
    check_model_target(model_dir, overwrite=overwrite)
    checkpoints = None if checkpoint_dir is None else Path(checkpoint_dir).resolve()
    if checkpoints is not None and model_dir.resolve() in (checkpoints, *checkpoints.parents):
        raise InvalidParameterValue(
            f"The checkpoint folder {checkpoint_dir} is the model folder {model_dir} or inside it; the model "
            "folder holds only the model's files. Choose a checkpoint folder elsewhere (e.g. beside it).",
            param="checkpoint_dir", value=checkpoint_dir)


def training_route(data, spec: DataSpec, *, streaming: bool | None, window, stride, exclude_columns: Sequence[str],
                   audio: dict | None, params: dict) -> tuple[str, pd.DataFrame | None]:
    """How `data` is trained: ``"sound"``, ``"series"`` (a time series' windows), ``"table"`` (with the
    table, read with its columns' types: it needs a table model or leaves columns out), ``"stream"``
    (chunk by chunk) or ``"rows"`` (numbers read in memory); the options that do not go together refused."""
    if streaming not in (True, False, None):  # a string such as "no" would count as true
        raise parameter_error("streaming", streaming, "True, False or None")
    if window is None and stride is not None:
        raise InvalidParameterValue(f"--stride (Python: stride) is the step between a series' windows; it needs "
                                    f"--window W or --window auto. Got stride {stride!r} without a window.",
                                    param="stride", value=stride)
    if window is not None:  # a series is windowed in memory
        if streaming:
            raise InvalidParameterValue("A time series (--window) is trained in memory: drop --streaming.",
                                        param="streaming", value=streaming)
        streaming = False
    if streaming is None and is_audio_input(data):
        streaming = False
    is_table = window is None and table_format(data) is not None and Path(data).is_file()
    categorical = params.get("categorical", "from_dtype")
    if is_table and needs_table(read_frame(data, columns=spec.columns, sep=spec.sep, nrows=TYPE_ROWS)[0], categorical):
        if streaming:
            raise InvalidParameterValue(
                f"{Path(data).name} has text, identifier or date columns or missing cells, which a model of the "
                "table reads in memory: drop --streaming (or give complete numeric columns with --columns).",
                param="streaming", value=streaming)
        streaming = False  # text, identifier-like or date columns, or gaps: a table model, in memory
    if streaming is None:
        streaming = _should_stream(data, spec, params.get("geometry"))
    if streaming and spec.sep is not None:
        raise InvalidParameterValue("--sep (Python: sep) reads in memory only: drop --streaming, or save the table "
                                    "with commas (.csv) or tabs (.tsv).", param="sep", value=spec.sep)
    table = None
    if is_table and not streaming:
        table = _table_to_type(data, spec, exclude_columns, categorical)
    elif exclude_columns:
        reason = ("a time series (--window) is read from the columns --columns names" if window is not None
                  else "--streaming reads the file chunk by chunk" if streaming else f"{data} is not a table")
        fix = "drop it" if window is None and not streaming else "drop it, or select columns with --columns"
        raise InvalidParameterValue(f"--exclude-columns (Python: exclude_columns) leaves columns of a table out of a "
                                    f"model trained in memory, and {reason}: {fix}.", param="exclude_columns",
                                    value=exclude_columns)
    if audio and not is_audio_input(data):
        name = next(iter(audio))
        raise InvalidParameterValue(
            problem=Words(Setting(name, audio[name]), f" sets the log-mel features of sound, and {data} is not a sound "
                          "file or a folder of them (.wav, .flac, .ogg)."),
            param=name, value=audio[name], hint=f"Drop --{name.replace('_', '-')}.")
    if is_audio_input(data):  # sound: rows are the clips' log-mel frames (aekit.workflows.audio)
        return "sound", None
    if table is not None:
        return "table", table
    return ("stream" if streaming else "series" if window is not None else "rows"), None


def _should_stream(data, spec: DataSpec, geometry) -> bool:
    """Whether to stream when the caller left it to aekit: never with geometry (it embeds all rows at once),
    else when the data would not fit in memory."""
    streamable = geometry is None and spec.sep is None and Path(data).suffix.lower() in (".csv", ".parquet", ".npy")
    return streamable and should_stream(data, columns=spec.columns, key=spec.key)


def _fit_sound(data, spec: DataSpec, streaming, window, audio, params: dict) -> Fitted:
    """A model of the clips' log-mel frames (:func:`aekit.workflows.audio.fit_audio`), trained in memory."""
    given = {"streaming": streaming, "window": window, "columns": spec.columns, "key": spec.key,
             "image_size": spec.image_size, "sep": spec.sep}
    for name, value in given.items():
        if value:
            raise InvalidParameterValue(
                problem=Words(Setting(name, value), " does not apply to sound, which is trained in memory on its "
                              "clips' log-mel frames."),
                param=name, value=value, hint=f"Drop --{name.replace('_', '-')}.")
    started = time.perf_counter()
    model = fit_audio(data, audio, **params)
    return Fitted(model, time.perf_counter() - started, n_rows=model.audio_["n_frames"])


def _fit_stream(data, spec: DataSpec, params: dict) -> Fitted:
    """An :class:`~aekit.Autoencoder` trained chunk by chunk (:func:`aekit.training.streaming.fit_stream`)."""
    model = Autoencoder(**params)
    seconds = _timed(fit_stream, model, data, columns=spec.columns, key=spec.key)
    return Fitted(model, seconds, n_rows=count_rows(data, key=spec.key))


def _fit_series(data, spec: DataSpec, window, stride, normalize, params: dict) -> Fitted:
    """A :class:`~aekit.SeriesAutoencoder` on the series in `data` (one row per time step)."""
    dataset = read_series(data, columns=spec.columns, key=spec.key, sep=spec.sep)
    autoencoder = Autoencoder(**params)
    model = SeriesAutoencoder(window, stride="auto" if stride is None else stride, normalize=normalize,
                              contamination=autoencoder.contamination, autoencoder=autoencoder)
    seconds = _timed(model.fit, as_frame(dataset.X, dataset.columns))
    return Fitted(model, seconds, n_rows=len(dataset.X), n_channels=len(dataset.columns))


def _fit_rows(data, spec: DataSpec, params: dict) -> Fitted:
    """An :class:`~aekit.Autoencoder` on the numbers in `data`, read in memory."""
    dataset = spec.read(data)
    if params.get("input_shape") is None and dataset.image_shape:
        # conv needs it; other models keep it too, so that outputs and pictures know the images' shape
        params = {**params, "input_shape": tuple(dataset.image_shape)}
    # Pixels are matched by position (the image's shape), so an image model records no column names:
    # millions of "px..." strings would cost more than the pixels of a small folder.
    model = Autoencoder(**params)
    seconds = _timed(model.fit, dataset.X if dataset.image_shape else as_frame(dataset.X, dataset.columns))
    return Fitted(model, seconds, n_rows=len(dataset.X), image_shape=dataset.image_shape)


def _summary(fitted: Fitted, data, model_dir: Path, *, streaming: bool, exclude_columns: Sequence[str]) -> dict:
    """The fit's summary (``aekit fit --json``)."""
    series = fitted.model if isinstance(fitted.model, SeriesAutoencoder) else None
    model = fitted.model if series is None else series.autoencoder_
    history = model.history_
    return {
        "model_dir": str(model_dir),
        "data": str(data),
        "n_rows": int(fitted.n_rows),
        "n_features": int(fitted.model.n_features_in_),
        # a table model's columns it reads (the others are left out: see "columns"); None for rows of numbers
        "n_columns": len(model.table_.columns) if getattr(model, "table_", None) is not None else None,
        "image_shape": list(fitted.image_shape) if fitted.image_shape else None,
        "streaming": streaming,
        "loss": model.loss_,
        "epochs": int(model.n_iter_),
        "max_epochs": history.get("max_epochs"),  # epochs="auto" resolved
        "steps_per_epoch": history.get("steps_per_epoch"),
        "best_epoch": history.get("best_epoch"),
        "stop_reason": history.get("stop_reason"),
        "train_loss": final_value(history.get("train_loss")),
        "val_loss": final_value(history.get("val_loss")),
        **kept_losses(history, early_stopping=model.early_stopping),
        "threshold": float(fitted.model.threshold_),
        # the rows' model's threshold: a series' is on step scores, of all its steps
        "threshold_rule": None if series is not None else model.history_.get("threshold"),
        "contamination": model.contamination if model.contamination == "auto" else float(model.contamination),
        "window": None if series is None else {**series.window_rule_, "stride": series.stride_,
                                               "normalize": series.normalize, "channels": fitted.n_channels},
        "n_clips": model.audio_["n_clips"] if getattr(model, "audio_", None) else None,
        # what aekit score flags a clip above (the threshold above is a frame's, --per-frame)
        "clip_threshold": threshold_at(model.audio_["clip_quantiles"], model.contamination)
        if getattr(model, "audio_", None) else None,
        "seconds": round(fitted.seconds, 3),  # the whole fit: scaling, split, training loop, threshold
        "train_seconds": _rounded(history.get("seconds")),  # the training loop alone (what info shows)
        "latent_dim": model.latent_dim_,
        "latent_dim_rule": history.get("latent_dim_rule"),
        "pca": (history.get("pca") or {}).get("message"),
        "columns": _columns_line(model, exclude_columns),
        "scaling": scaling_line(model),
    }


def _table_to_type(data, spec: DataSpec, exclude_columns, categorical):
    """The table ``data`` with its columns as pandas types them, when it needs a table model (see
    :func:`aekit.tables.needs_table`) or leaves columns out, else None (it is read as numbers)."""
    frame, _ = read_frame(data, columns=spec.columns, sep=spec.sep)
    unknown = [name for name in exclude_columns if name not in frame.columns]
    if unknown:
        raise InvalidParameterValue(f"--exclude-columns names {', '.join(unknown)}, which {data} lacks (or "
                                    f"--columns left out). Its columns are: {', '.join(frame.columns[:20])}.",
                                    param="exclude_columns", value=exclude_columns)
    frame = frame.drop(columns=list(exclude_columns))
    return frame if exclude_columns or needs_table(frame, categorical) else None


def _columns_line(model, exclude_columns) -> str | None:
    """What the model made of a table's columns, one line (None for a model of plain numbers)."""
    table = getattr(model, "table_", None)
    if table is None:
        return None
    line = table.plan.summary()
    if exclude_columns:
        line += ("; " if table.plan.excluded else "; left out: ") + ", ".join(f"{name} (excluded)"
                                                                               for name in exclude_columns)
    return line


def scaling_line(model) -> str:
    """How the fitted ``model`` scales its input, one line (a table's: its numeric columns')."""
    table = getattr(model, "table_", None)
    if table is not None and not table.plan.numeric:
        return "scaling: no numeric column"
    return describe_scaling(model.scaler_ if table is None else table.scaler, model.scaler)


def _rounded(value) -> float | None:
    return None if value is None else round(float(value), 3)


def final_value(values) -> float | None:
    """The last value of a history list, as a float; None for an empty or missing one."""
    return float(values[-1]) if values else None
