"""``fit_file``: train an :class:`~aekit.Autoencoder` on a data file or image folder and save its model folder."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from aekit.data import count_rows, read_data, table_format
from aekit.data.audio import is_audio_input
from aekit.estimator import Autoencoder, SeriesAutoencoder, save_model
from aekit.exceptions import InvalidParameterValue, Setting, Words
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


def fit_file(data, model_dir, *, columns: Sequence[str] | None = None, exclude_columns: Sequence[str] = (),
             key: str | None = None,
             image_size=None, overwrite: bool = False, streaming: bool | None = False, window: int | str | None = None,
             stride: int | str | None = None, normalize: str | None = "level", sep: str | None = None,
             audio: dict | None = None, **params) -> dict:
    """Train an :class:`~aekit.Autoencoder` on a data file or image folder and save it to `model_dir`.

    Parameters
    ----------
    data : str or path-like
        ``.csv``, ``.parquet``, ``.npy``, ``.npz`` or a folder of images (see :func:`aekit.data.read_data`).
    model_dir : str or path-like
        The model folder to write. An existing one is replaced only with ``overwrite=True``.
    columns, key, image_size, sep
        Passed to :func:`aekit.data.read_data`: which columns, which ``.npz`` array, the image size, the
        separator of a text table.
    exclude_columns : list of str, optional
        Columns of a table to leave out of the model (they can still be carried to outputs with
        ``keep_columns``). A table (``.csv``, ``.parquet``) is read with its columns' own types: one with
        text, boolean, identifier-like or date columns, or empty cells, trains a table model that types
        its columns itself (:mod:`aekit.tables`; the summary's ``columns`` says what it decided, and
        ``categorical=[...]`` among ``params`` overrides it); a complete table of numbers trains as before.
    overwrite : bool, default=False
        Replace an existing aekit model folder (never anything else: see :func:`aekit.estimator.save_model`).
    streaming : bool or None, default=False
        Train chunk by chunk in bounded memory (:mod:`aekit.training.streaming`; ``.csv``, ``.parquet``,
        ``.npy``); None decides by the data's size against the available memory. Under torchrun
        only rank 0 saves the model.
    window, stride, normalize : optional
        Treat `data` as a time series (one row per time step; a table's timestamp column is recognised
        and skipped, :func:`aekit.workflows.series.time_column`) and fit a
        :class:`~aekit.SeriesAutoencoder` with this window ("auto": the series' dominant period), training
        stride (None: "auto") and per-window normalisation, in memory; :func:`score_file` then scores
        each time step.
    audio : dict, optional
        For sound (a ``.wav``, ``.flac`` or ``.ogg`` file, or a folder of them): parameters of
        :class:`aekit.spectrogram.LogMelFrames`. The model trains on the clips' log-mel frames
        (:func:`aekit.workflows.audio.fit_audio`) and :func:`score_file` then scores each clip.
    **params
        Constructor arguments of :class:`~aekit.Autoencoder` (``latent_dim``, ``hidden_dims``, ...).
        On images, ``input_shape`` defaults to the images' shape (the conv model's input; any model
        keeps it, so that PNG outputs and pictures know the shape).

    Returns
    -------
    dict
        The summary: rows, features, epochs run, final train and validation loss, seconds, the
        outlier threshold, and where the model went.

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
    # before training, not after minutes of it; save_model checks again at the rename
    check_model_target(model_dir, overwrite=overwrite)
    checkpoints = None if params.get("checkpoint_dir") is None else Path(params["checkpoint_dir"]).resolve()
    if checkpoints is not None and model_dir.resolve() in (checkpoints, *checkpoints.parents):
        raise InvalidParameterValue(
            f"The checkpoint folder {params['checkpoint_dir']} is the model folder {model_dir} or inside it; the model "
            "folder holds only the model's files. Choose a checkpoint folder elsewhere (e.g. beside it)."
        )
    if window is None and stride is not None:
        raise InvalidParameterValue(f"--stride (Python: stride) is the step between a series' windows; it needs "
                                    f"--window W or --window auto. Got stride {stride!r} without a window.")
    if window is not None:  # a series is windowed in memory
        if streaming:
            raise InvalidParameterValue("A time series (--window) is trained in memory: drop --streaming.")
        streaming = False
    if streaming is None and is_audio_input(data):
        streaming = False
    is_table = window is None and table_format(data) is not None and Path(data).is_file()
    if is_table and needs_table(read_frame(data, columns=columns, sep=sep, nrows=TYPE_ROWS)[0],
                                params.get("categorical", "from_dtype")):
        if streaming:
            raise InvalidParameterValue(
                f"{Path(data).name} has text, identifier or date columns or missing cells, which a model of the "
                "table reads in memory: drop --streaming (or give complete numeric columns with --columns).")
        streaming = False  # text, identifier-like or date columns, or gaps: a table model, in memory
    if streaming is None:  # geometry embeds all rows at once: it never streams
        streamable = (params.get("geometry") is None and sep is None
                      and Path(data).suffix.lower() in (".csv", ".parquet", ".npy"))
        streaming = streamable and should_stream(data, columns=columns, key=key)
    if streaming and sep is not None:
        raise InvalidParameterValue("--sep (Python: sep) reads in memory only: drop --streaming, or save the table "
                                    "with commas (.csv) or tabs (.tsv).")
    frame = None
    if is_table and not streaming:
        frame = _table_to_type(data, columns, exclude_columns, sep, params.get("categorical", "from_dtype"))
    elif exclude_columns:
        raise InvalidParameterValue("--exclude-columns (Python: exclude_columns) leaves columns of a table out of a "
                                    "model trained in memory; drop it, or select columns with --columns.")
    if audio and not is_audio_input(data):
        name = next(iter(audio))
        raise InvalidParameterValue(
            f"{name}={audio[name]!r} sets the log-mel features of sound, and {data} is not a sound file or a folder "
            f"of them (.wav, .flac, .ogg). Drop --{name.replace('_', '-')}.", param=name, value=audio[name],
            hint=f"Drop --{name.replace('_', '-')}.")
    if is_audio_input(data):  # sound: rows are the clips' log-mel frames (aekit.workflows.audio)
        given = {"streaming": streaming, "window": window, "columns": columns, "key": key, "image_size": image_size,
                 "sep": sep}
        for name, value in given.items():
            if value:
                raise InvalidParameterValue(
                    problem=Words(Setting(name, value), " does not apply to sound, which is trained in memory on its "
                                  "clips' log-mel frames."),
                    param=name, value=value, hint=f"Drop --{name.replace('_', '-')}.")
        started = time.perf_counter()
        model = fit_audio(data, audio, **params)
        n_rows, image_shape = model.audio_["n_frames"], None
    elif streaming:
        model = Autoencoder(**params)
        started = time.perf_counter()
        fit_stream(model, data, columns=columns, key=key)
        n_rows, image_shape = count_rows(data, key=key), None
    elif frame is not None:  # text, identifier-like or date columns, or missing cells: the model types them
        model = Autoencoder(**params)
        started = time.perf_counter()
        model.fit(frame)
        n_rows, image_shape = len(frame), None
    else:
        dataset = (read_data(data, columns=columns, key=key, image_size=image_size, sep=sep) if window is None
                   else read_series(data, columns=columns, key=key, sep=sep))
        if params.get("input_shape") is None and dataset.image_shape:
            # conv needs it; other models keep it too, so that outputs and pictures know the images' shape
            params["input_shape"] = tuple(dataset.image_shape)
        model = Autoencoder(**params)
        if window is not None:
            model = SeriesAutoencoder(window, stride="auto" if stride is None else stride, normalize=normalize,
                                      contamination=model.contamination, autoencoder=model)
        started = time.perf_counter()
        if window is not None:
            model.fit(as_frame(dataset.X, dataset.columns))
        else:
            # Pixels are matched by position (the image's shape), so an image model records no column names:
            # millions of "px..." strings would cost more than the pixels of a small folder.
            model.fit(dataset.X if dataset.image_shape else as_frame(dataset.X, dataset.columns))
        n_rows, image_shape = len(dataset.X), dataset.image_shape
    seconds = time.perf_counter() - started
    if distributed.is_main_process():  # under torchrun every rank holds the same model; one writes it
        save_model(model, model_dir, overwrite=overwrite)
    series = model if window is not None else None
    if series is not None:
        model = series.autoencoder_
    history = model.history_
    return {
        "model_dir": str(model_dir),
        "data": str(data),
        "n_rows": int(n_rows),
        "n_features": int((series or model).n_features_in_),
        "image_shape": list(image_shape) if image_shape else None,
        "streaming": bool(streaming),
        "loss": model.loss_,
        "epochs": int(model.n_iter_),
        "max_epochs": history.get("max_epochs"),  # epochs="auto" resolved
        "steps_per_epoch": history.get("steps_per_epoch"),
        "best_epoch": history.get("best_epoch"),
        "stop_reason": history.get("stop_reason"),
        "train_loss": final_value(history.get("train_loss")),
        "val_loss": final_value(history.get("val_loss")),
        **kept_losses(history, early_stopping=model.early_stopping),
        "threshold": float((series or model).threshold_),
        # the rows' model's threshold: a series' is on step scores, of all its steps
        "threshold_rule": None if series is not None else model.history_.get("threshold"),
        "contamination": model.contamination if model.contamination == "auto" else float(model.contamination),
        "window": None if series is None else {**series.window_rule_, "stride": series.stride_,
                                               "normalize": series.normalize, "channels": len(dataset.columns)},
        "n_clips": model.audio_["n_clips"] if getattr(model, "audio_", None) else None,
        "seconds": round(seconds, 3),  # the whole fit: scaling, split, training loop, threshold
        "train_seconds": _rounded(history.get("seconds")),  # the training loop alone (what info shows)
        "latent_dim": model.latent_dim_,
        "latent_dim_rule": history.get("latent_dim_rule"),
        "pca": (history.get("pca") or {}).get("message"),
        "columns": _columns_line(model, exclude_columns),
        "scaling": scaling_line(model),
    }


def _table_to_type(data, columns, exclude_columns, sep, categorical):
    """The table ``data`` with its columns as pandas types them, when it needs a table model (see
    :func:`aekit.tables.needs_table`), else None (it is read as numbers, as before)."""
    frame, _ = read_frame(data, columns=columns, sep=sep)
    unknown = [name for name in exclude_columns if name not in frame.columns]
    if unknown:
        raise InvalidParameterValue(f"--exclude-columns names {', '.join(unknown)}, which {data} lacks (or "
                                    f"--columns left out). Its columns are: {', '.join(frame.columns[:20])}.")
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
