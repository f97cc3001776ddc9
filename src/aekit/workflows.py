"""File-level jobs: fit a model on a data file, then encode, decode, reconstruct or score other files.

The command line (:mod:`aekit.cli`) is a thin layer over these functions; each reads with
:mod:`aekit.data`, calls the estimator, writes its output atomically, and returns a JSON-ready
summary. Encode, decode, reconstruct and score stream their input in chunks, so they run in bounded
memory on files bigger than memory (image folders are small and read whole).

Columns are matched by name: a model fitted by :func:`fit_file` stores its training column names
and order, and data with the same columns in another order is reordered; missing or extra columns
are an error that names them. A plain array (``.npy``/``.npz``), whose columns have no names, is
matched by position.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from aekit import detect
from aekit.data import (
    CHUNK_ROWS,
    Dataset,
    check_output_path,
    count_rows,
    iter_chunks,
    open_chunk_writer,
    read_data,
    table_format,
    write_images,
)
from aekit.estimator import Autoencoder, load_model, load_model_and_environment, save_model
from aekit.exceptions import InvalidInputError, InvalidParameterValue
from aekit.persistence import check_model_target
from aekit.timeseries import SlidingWindows, top_segments
from aekit.training import distributed
from aekit.training.streaming import fit_stream, should_stream

__all__ = [
    "decode_file", "encode_file", "fit_file", "model_info", "outlier_threshold", "read_features", "reconstruct_file",
    "score_file",
]

FORCE_OPTION = "--force (Python: force=True)"  # how a user of fit_file asks to replace a model folder
_ARRAY_SUFFIXES = (".npy", ".npz")


# ---------------------------------------------------------------- fit


def fit_file(data, model_dir, *, columns: Sequence[str] | None = None, key: str | None = None,
             image_size=None, force: bool = False, streaming: bool | None = False, window: int | None = None,
             stride: int = 1, sep: str | None = None, **params) -> dict:
    """Train an :class:`~aekit.Autoencoder` on a data file or image folder and save it to `model_dir`.

    Parameters
    ----------
    data : str or path-like
        ``.csv``, ``.parquet``, ``.npy``, ``.npz`` or a folder of images (see :func:`aekit.data.read_data`).
    model_dir : str or path-like
        The model folder to write. An existing one is replaced only with ``force=True``.
    columns, key, image_size, sep
        Passed to :func:`aekit.data.read_data`: which columns, which ``.npz`` array, the image size, the
        separator of a text table.
    force : bool, default=False
        Replace an existing aekit model folder (never anything else: see :func:`aekit.estimator.save_model`).
    streaming : bool or None, default=False
        Train chunk by chunk in bounded memory (:mod:`aekit.training.streaming`; ``.csv``, ``.parquet``,
        ``.npy``); None decides by the data's size against the available memory. Under torchrun
        only rank 0 saves the model.
    window, stride : int, optional
        Treat `data` as a time series (one row per time step) and train on its windows of `window`
        steps, one every `stride` steps (:class:`aekit.timeseries.SlidingWindows`, in memory). The
        model remembers both (``window_``), and :func:`score_file` then scores each time step.
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
    check_model_target(model_dir, overwrite=force, overwrite_option=FORCE_OPTION)
    checkpoints = None if params.get("checkpoint_dir") is None else Path(params["checkpoint_dir"]).resolve()
    if checkpoints is not None and model_dir.resolve() in (checkpoints, *checkpoints.parents):
        raise InvalidParameterValue(
            f"The checkpoint folder {params['checkpoint_dir']} is the model folder {model_dir} or inside it; the model "
            "folder holds only the model's files. Choose a checkpoint folder elsewhere (e.g. beside it)."
        )
    if window is not None:  # a series is windowed in memory
        if streaming:
            raise InvalidParameterValue("A time series (--window) is trained in memory: drop --streaming.")
        streaming = False
    if streaming is None:  # geometry embeds all rows at once: it never streams
        streamable = (params.get("geometry") is None and sep is None
                      and Path(data).suffix.lower() in (".csv", ".parquet", ".npy"))
        streaming = streamable and should_stream(data, columns=columns, key=key)
    if streaming and sep is not None:
        raise InvalidParameterValue("--sep (Python: sep) reads in memory only: drop --streaming, or save the table "
                                    "with commas (.csv) or tabs (.tsv).")
    if streaming:
        model = Autoencoder(**params)
        started = time.perf_counter()
        fit_stream(model, data, columns=columns, key=key)
        n_rows, image_shape = count_rows(data, key=key), None
    else:
        dataset = read_data(data, columns=columns, key=key, image_size=image_size, sep=sep)
        if params.get("input_shape") is None and dataset.image_shape:
            # conv needs it; other models keep it too, so that outputs and pictures know the images' shape
            params["input_shape"] = tuple(dataset.image_shape)
        model = Autoencoder(**params)
        started = time.perf_counter()
        if window is not None:  # the windows' columns are steps x channels: the channel names are kept beside them
            model.fit(SlidingWindows(window, stride=stride).fit_transform(dataset.X))
            model.window_ = {"window": int(window), "stride": int(stride), "columns": list(dataset.columns)}
        else:
            # Pixels are matched by position (the image's shape), so an image model records no column names:
            # millions of "px..." strings would cost more than the pixels of a small folder.
            model.fit(dataset.X if dataset.image_shape else _frame(dataset.X, dataset.columns))
        n_rows, image_shape = len(dataset.X), dataset.image_shape
    seconds = time.perf_counter() - started
    if distributed.is_main_process():  # under torchrun every rank holds the same model; one writes it
        save_model(model, model_dir, overwrite=force, overwrite_option=FORCE_OPTION)
    history = model.history_
    return {
        "model_dir": str(model_dir),
        "data": str(data),
        "n_rows": int(n_rows),
        "n_features": int(model.n_features_in_),
        "image_shape": list(image_shape) if image_shape else None,
        "streaming": bool(streaming),
        "loss": model.loss_,
        "epochs": int(model.n_iter_),
        "best_epoch": history.get("best_epoch"),
        "stop_reason": history.get("stop_reason"),
        "train_loss": _last(history.get("train_loss")),
        "val_loss": _last(history.get("val_loss")),
        "threshold": float(model.threshold_),
        "contamination": model.contamination if model.contamination == "auto" else float(model.contamination),
        "window": getattr(model, "window_", None),
        "seconds": round(seconds, 3),  # the whole fit: scaling, split, training loop, threshold
        "train_seconds": _rounded(history.get("seconds")),  # the training loop alone (what info shows)
        "latent_dim": model.latent_dim_,
        "latent_dim_rule": history.get("latent_dim_rule"),
        "pca": (history.get("pca") or {}).get("message"),
    }


def _rounded(value) -> float | None:
    return None if value is None else round(float(value), 3)


def _last(values) -> float | None:
    return float(values[-1]) if values else None


def _frame(X: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    """A no-copy DataFrame, so that the estimator records (and later checks) the column names."""
    return pd.DataFrame(X, columns=list(columns), copy=False)


# ---------------------------------------------------------------- model and column matching


def _model(model) -> Autoencoder:
    return model if isinstance(model, Autoencoder) else load_model(model)


def _feature_names(model: Autoencoder) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(name) for name in names]


def _column_order(available: list[str], expected: list[str] | None, n_expected: int, source, *,
                  positional: bool, what: str, hint: str) -> list[int] | None:
    """Positions of the `expected` columns in `available`; None when they are already in order.

    Without expected names, or for a plain array (`positional`), the columns are taken in order
    and only their number must agree.
    """
    if expected is None or (positional and available != expected):
        if len(available) != n_expected:
            raise InvalidInputError(
                f"{source} has {len(available)} columns; {what} takes {n_expected}. {hint}"
            )
        return None
    available_set, expected_set = set(available), set(expected)  # once: per name it was quadratic in the width
    missing = [name for name in expected if name not in available_set]
    extra = [name for name in available if name not in expected_set]
    if missing or extra:
        parts = ([f"lacks {_names(missing)}"] if missing else []) + ([f"has extra {_names(extra)}"] if extra else [])
        raise InvalidInputError(
            f"{source} {' and '.join(parts)}: {what} takes the columns {_names(expected)}. {hint}"
        )
    if available == expected:
        return None
    position = {name: j for j, name in enumerate(available)}
    return [position[name] for name in expected]


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(map(repr, names[:limit]))
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _feature_chunks(model: Autoencoder, data, *, columns, key, image_size, chunk_rows: int | None,
                    verbose: int, sep: str | None = None) -> Iterator[tuple[Dataset, pd.DataFrame | np.ndarray]]:
    """Yield each chunk with its features in the model's column order (a DataFrame when it has names)."""
    expected = _feature_names(model)
    positional = Path(data).suffix.lower() in _ARRAY_SUFFIXES
    hint = (
        "Select the training columns with --columns a,b,c (Python: columns=[...]), or pass the data the "
        "model was trained on."
    )
    image_shape = getattr(model, "input_shape", None)
    if columns is None and expected is not None:
        columns = _by_name(data, expected, what="the model", hint=hint, sep=sep)
    order = None
    for index, chunk in enumerate(_progress(data, key, chunk_rows, columns, image_size, verbose, sep)):
        if index == 0:
            if chunk.image_shape is not None:
                _check_channels(chunk.image_shape, image_shape, model.n_features_in_, data)
            if chunk.image_shape is not None and chunk.X.shape[1] != model.n_features_in_:
                trained = f" ({'x'.join(map(str, image_shape[1:]))} pixels)" if image_shape else ""
                shape = "x".join(map(str, chunk.image_shape))
                raise InvalidInputError(
                    f"The images in {data} have {chunk.X.shape[1]} values each ({shape} CxHxW); "
                    f"the model was trained on {model.n_features_in_}{trained}. Resize them with "
                    "--image-size HxW to the training size."
                )
            order = _column_order(chunk.columns, expected, model.n_features_in_, data, positional=positional,
                                  what="the model", hint=hint)
        X = chunk.X if order is None else np.ascontiguousarray(chunk.X[:, order])
        yield chunk, (X if expected is None else _frame(X, expected))


# channels -> (description, Pillow mode to convert to)
_CHANNELS = {1: ("1-channel (grayscale)", "L"), 3: ("3-channel (RGB)", "RGB")}


def _check_channels(shape: tuple[int, int, int], trained_shape, n_features: int, data) -> None:
    """Name a gray/RGB mismatch, which no --image-size can fix.

    The model's channels come from its ``input_shape`` (convolutional models), else from its number of
    features: images of H x W with the other channel count have exactly 3x (or 1/3 of) the values.
    """
    channels, height, width = shape
    if trained_shape is not None:
        trained = int(trained_shape[0])
    elif n_features != channels * height * width and n_features == (4 - channels) * height * width:
        trained = 4 - channels  # 1 <-> 3
    else:
        return
    if trained == channels or trained not in _CHANNELS or channels not in _CHANNELS:
        return
    (trained_name, mode), (name, _) = _CHANNELS[trained], _CHANNELS[channels]
    raise InvalidInputError(
        f"The model was trained on {trained_name} images; the images in {data} are {name}. Convert them "
        f"(Pillow: Image.open(f).convert({mode!r}).save(f)), or use a model trained on {name} images."
    )


def read_features(model, data, *, columns: Sequence[str] | None = None, key: str | None = None,
                  image_size=None) -> tuple[Dataset, pd.DataFrame | np.ndarray]:
    """Read all of `data` and match it to `model` as encode does: the Dataset, and the features to pass.

    The features are in the model's column order (a DataFrame under its names when it has them);
    images must have the model's channels and size. For pictures and reports of data that fits in memory.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, aekit
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> np.save(folder / "x.npy", X)
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> dataset, features = read_features(ae, folder / "x.npy")
    >>> features.shape
    (50, 4)
    """
    model = _model(model)
    return next(_feature_chunks(model, data, columns=columns, key=key, image_size=image_size, chunk_rows=None,
                                verbose=0))


def _progress(data, key, chunk_rows, columns, image_size, verbose, sep=None) -> Iterator[Dataset]:
    if chunk_rows is None:  # all at once
        yield read_data(data, columns=columns, key=key, image_size=image_size, sep=sep)
        return
    chunks = iter_chunks(data, chunk_rows=chunk_rows, columns=columns, key=key, image_size=image_size, sep=sep)
    if not verbose:
        yield from chunks
        return
    with tqdm(total=count_rows(data, key=key), unit="rows", desc=Path(data).name, leave=False) as bar:
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk.X))


# ---------------------------------------------------------------- encode, decode, reconstruct


def encode_file(model, data, output, *, columns: Sequence[str] | None = None, key: str | None = None,
                image_size=None, chunk_rows: int = CHUNK_ROWS, verbose: int = 0,
                keep_columns: Sequence[str] | None = None, sep: str | None = None) -> dict:
    """Write the latent codes of every row of `data` to `output` (``latent0``, ``latent1``, ...).

    Parameters
    ----------
    model : Autoencoder or str or path-like
        A fitted estimator or a model folder.
    data : str or path-like
        The data file or image folder. A table may hold other columns too: the model's are read by
        name, in any order.
    output : str or path-like
        ``.csv``, ``.parquet`` (an id column, then the codes) or ``.npy`` (the codes only).
    columns, key, image_size, sep
        As for :func:`aekit.data.read_data`.
    chunk_rows : int, default=65536
        Rows read, encoded and written at a time.
    verbose : int, default=0
        1 shows a progress bar.
    keep_columns : list of str, optional
        Columns of a ``.csv``/``.parquet`` input (ids, labels, any type) to carry into `output`,
        between the id column and the results.

    Returns
    -------
    dict
        ``output``, ``n_rows``, ``n_columns``.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, aekit
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> np.save(folder / "x.npy", X)
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> encode_file(ae, folder / "x.npy", folder / "z.csv")["n_rows"]
    50
    """
    model = _model(model)
    names = [str(name) for name in model.get_feature_names_out()]
    return _map_chunks(model, data, output, names, model.transform, columns=columns, key=key,
                       image_size=image_size, chunk_rows=chunk_rows, verbose=verbose, keep_columns=keep_columns,
                       sep=sep)


def reconstruct_file(model, data, output, *, columns: Sequence[str] | None = None, key: str | None = None,
                     image_size=None, chunk_rows: int = CHUNK_ROWS, verbose: int = 0,
                     keep_columns: Sequence[str] | None = None, sep: str | None = None) -> dict:
    """Write the reconstruction of every row of `data`, in its own units, under the training column names.

    Parameters and return value as :func:`encode_file`.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, aekit
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> np.save(folder / "x.npy", X)
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> reconstruct_file(ae, folder / "x.npy", folder / "x_hat.npy")["n_columns"]
    4
    """
    model = _model(model)
    return _map_chunks(model, data, output, _output_feature_names(model), model.reconstruct, columns=columns,
                       key=key, image_size=image_size, chunk_rows=chunk_rows, verbose=verbose,
                       keep_columns=keep_columns, images=True, sep=sep)


def _output_feature_names(model: Autoencoder) -> list[str]:
    return _feature_names(model) or [f"col{j}" for j in range(model.n_features_in_)]


def _map_chunks(model, data, output, names, function, *, columns, key, image_size, chunk_rows, verbose,
                keep_columns=None, images: bool = False, sep: str | None = None) -> dict:
    """Apply `function` to each chunk of features and write its rows under `names`, with the chunk's ids.

    `images`: the outputs are rows like the model's input, which a folder output takes as PNG files.
    """
    if output is not None:
        check_output_path(output, data)
    chunks = _feature_chunks(model, data, columns=columns, key=key, image_size=image_size, chunk_rows=chunk_rows,
                             verbose=verbose, sep=sep)
    rows = ((chunk, function(features)) for chunk, features in chunks)
    image_shape = _image_shape(model) if images and _is_folder(output) else None
    n_rows = _write_rows(output, names, rows, kept=_kept_columns(data, keep_columns, chunk_rows, sep),
                         image_shape=image_shape)
    return {"output": str(output), "n_rows": n_rows, "n_columns": len(names) + len(keep_columns or ())}


def _kept_columns(data, keep_columns: Sequence[str] | None, chunk_rows: int,
                  sep: str | None = None) -> Iterator[pd.DataFrame] | None:
    """The input's `keep_columns` (any type: ids, labels, text), chunk by chunk, to carry into the output."""
    if not keep_columns:
        return None
    path = Path(data)
    if table_format(path) is None:
        raise InvalidInputError(
            f"--keep-columns (Python: keep_columns) carries columns of a table, and {path} is not a .csv or "
            ".parquet file. Drop --keep-columns."
        )
    keep = list(keep_columns)
    available = _table_columns(path, sep)
    missing = [name for name in keep if name not in available]
    if missing:
        raise InvalidInputError(
            f"--keep-columns names {_names(missing)}, which {path} lacks. Its columns are {_names(available)}."
        )
    return _read_kept(path, keep, chunk_rows, sep)


def _by_name(data, expected: list[str], *, what: str, hint: str, sep: str | None = None) -> list[str] | None:
    """`expected`, the columns to read from a table that may hold others too; None for other inputs."""
    if table_format(data) is None:
        return None
    available = _table_columns(data, sep)
    missing = [name for name in expected if name not in set(available)]
    # no names, or one that holds them all (another separator): io's reader explains those better
    if missing and available and not (len(available) == 1 and len(missing) == len(expected)):
        raise InvalidInputError(f"{data} lacks {_names(missing)}: {what} takes the columns {_names(expected)}. {hint}")
    return expected


def _table_columns(path, sep: str | None = None) -> list[str]:
    """The column names of a text or Parquet table (its header or schema; the rows are not read)."""
    path = Path(path)
    if not path.is_file():  # io's reader says what is wrong with the path
        return []
    try:
        if table_format(path) == ".csv":
            sep = sep or _default_sep(path)
            return [str(name) for name in pd.read_csv(path, nrows=0, encoding="utf-8-sig", sep=sep).columns]
        return list(pq.ParquetFile(path).schema_arrow.names)
    except (OSError, ValueError):  # unreadable (pandas and pyarrow errors are ValueErrors): io names the problem
        return []


def _default_sep(path) -> str:
    return "\t" if table_format(path, suffix=True).startswith(".tsv") else ","


def _read_kept(path: Path, keep: list[str], chunk_rows: int, sep: str | None) -> Iterator[pd.DataFrame]:
    if table_format(path) == ".csv":
        with pd.read_csv(path, usecols=keep, chunksize=chunk_rows, sep=sep or _default_sep(path)) as reader:
            for frame in reader:
                yield frame[keep]
    else:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=keep):
            yield batch.to_pandas()[keep]


def _take_rows(frames: Iterator[pd.DataFrame], buffer: list[pd.DataFrame], n_rows: int) -> pd.DataFrame:
    """The next `n_rows` rows of `frames` (whose chunks need not line up with the features')."""
    have = sum(len(frame) for frame in buffer)
    while have < n_rows:
        frame = next(frames)
        buffer.append(frame)
        have += len(frame)
    joined = pd.concat(buffer, ignore_index=True) if len(buffer) > 1 else buffer[0].reset_index(drop=True)
    buffer[:] = [joined.iloc[n_rows:]] if len(joined) > n_rows else []
    return joined.iloc[:n_rows].reset_index(drop=True)


def _write_rows(output, names: list[str], rows: Iterator[tuple[Dataset, np.ndarray | pd.DataFrame]], *,
                kept: Iterator[pd.DataFrame] | None = None, image_shape=None) -> int:
    """Write each chunk's values with its ids (the id column named as the input's); return the row count.

    `kept`: columns of the input carried through, written between the ids and the values. Without an
    `output`, the rows are only counted (a summary without a file). An `output` that names a folder
    (``out/``, or an existing folder) gets one PNG per row, named by its id, when the values are
    images of `image_shape`.
    """
    # The first chunk is read before the output is opened: it tells whether the ids are rows or files.
    # read_data's chunks are never empty, so there is a first one (or an error that says why not).
    first = next(rows)
    if output is None:
        return len(first[0].X) + sum(len(chunk.X) for chunk, _ in rows)
    if _is_folder(output):
        if image_shape is None:
            raise InvalidInputError(
                f"{output} names a folder: only images are written as a folder of PNG files (reconstruct or decode "
                "with a model trained on images). Write a .csv, .parquet or .npy file instead."
            )
        n_rows = 0
        for chunk, values in itertools.chain([first], rows):
            write_images(output, values, image_shape, chunk.ids)
            n_rows += len(chunk.X)
        return n_rows
    if kept is not None and Path(output).suffix.lower() not in (".csv", ".parquet"):
        raise InvalidInputError(
            f"--keep-columns (Python: keep_columns) needs a .csv or .parquet output, where columns have names and "
            f"types of their own; {output} is not one. Write a .csv or .parquet file."
        )
    buffer: list[pd.DataFrame] = []
    with open_chunk_writer(output, _with_kept(names, kept, first, buffer), first[0].id_name) as writer:
        for chunk, values in itertools.chain([first], rows):
            if kept is not None:
                carried = _take_rows(kept, buffer, len(chunk.X))
                frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(values, columns=names)
                values = pd.concat([carried, frame.reset_index(drop=True)], axis=1)
            writer.write(values, chunk.ids)
    return writer.n_rows


def _is_folder(output) -> bool:
    return str(output).endswith(("/", os.sep)) or Path(output).is_dir()


def _image_shape(model: Autoencoder) -> tuple[int, int, int] | None:
    """The (C, H, W) of the model's rows when they are images (see :func:`aekit.plots.image_shape_of`)."""
    from aekit.plots import image_shape_of  # matplotlib only when PNG files are asked for

    return image_shape_of(model, model.n_features_in_)


def _with_kept(names: list[str], kept, first, buffer: list[pd.DataFrame]) -> list[str]:
    """The output's column names: the kept columns (peeked from their first chunk), then `names`."""
    if kept is None:
        return names
    peek = next(kept)
    buffer.append(peek)
    return [str(name) for name in peek.columns] + names


def decode_file(model, latent, output, *, key: str | None = None, chunk_rows: int = CHUNK_ROWS,
                verbose: int = 0, keep_columns: Sequence[str] | None = None) -> dict:
    """Decode the latent codes in `latent` (what :func:`encode_file` writes) back to the data's units.

    Columns named ``latent0``, ``latent1``, ... are matched by name (in any order); a plain array by
    position; other columns of a table are left out unless named in `keep_columns` (carried over,
    as :func:`encode_file` takes them). Row ids (the ``row`` or ``file`` column) are carried over to `output`.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, aekit
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> np.save(folder / "z.npy", ae.transform(X))
    >>> decode_file(ae, folder / "z.npy", folder / "x_hat.csv")["n_columns"]
    4
    """
    model = _model(model)
    check_output_path(output, latent)
    names = _output_feature_names(model)

    def decoded() -> Iterator[tuple[Dataset, np.ndarray]]:
        latent_names = [str(name) for name in model.get_feature_names_out()]
        by_name = _by_name(latent, latent_names, what="decode", hint="Pass the latent codes written by aekit encode.")
        order = None
        for index, chunk in enumerate(_progress(latent, key, chunk_rows, by_name, None, verbose)):
            if index == 0:
                if chunk.image_shape is not None:
                    raise InvalidInputError(
                        f"{latent} holds images; decode takes latent codes (the output of aekit encode)."
                    )
                order = _column_order(chunk.columns, latent_names, len(latent_names), latent,
                                      positional=Path(latent).suffix.lower() in _ARRAY_SUFFIXES, what="decode",
                                      hint="Pass the latent codes written by aekit encode.")
            yield chunk, model.inverse_transform(chunk.X if order is None else chunk.X[:, order])

    n_rows = _write_rows(output, names, decoded(), kept=_kept_columns(latent, keep_columns, chunk_rows),
                         image_shape=_image_shape(model) if _is_folder(output) else None)
    return {"output": str(output), "n_rows": n_rows, "n_columns": len(names) + len(keep_columns or ())}


# ---------------------------------------------------------------- score


def outlier_threshold(model: Autoencoder, *, contamination: float | str | None = None,
                      threshold: float | None = None) -> tuple[float, str]:
    """The outlier score above which a row is an outlier, and where it came from.

    By default the model's ``threshold_``: the ``1 - contamination`` quantile of the score on
    held-out training rows, computed at fit time. Another `contamination` reads the same quantile
    off the stored distribution of held-out scores (``error_quantiles_``, 1001 quantiles at levels
    0, 0.001, ..., 1: exact for multiples of 0.001, linear in between); ``"auto"`` applies
    :func:`aekit.detect.auto_threshold` to it. An explicit `threshold` is used as it is.

    Examples
    --------
    >>> import numpy as np, aekit
    >>> X = np.random.default_rng(0).normal(size=(200, 4))
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> outlier_threshold(ae)[0] == ae.threshold_
    True
    >>> outlier_threshold(ae, contamination=0.2)[0] < ae.threshold_
    True
    """
    if contamination is not None and threshold is not None:
        raise InvalidParameterValue("Give contamination or threshold, not both (--contamination or --threshold).")
    if threshold is not None:
        if not np.isfinite(threshold) or threshold < 0:
            raise InvalidParameterValue(
                f"The threshold must be a finite outlier score >= 0. Got {threshold!r} instead."
            )
        return float(threshold), "given"
    if contamination is None or contamination == model.contamination:
        return float(model.threshold_), f"learned at fit, contamination {model.contamination}"
    if contamination != "auto" and not 0 < contamination <= 0.5:  # the range Autoencoder(contamination=...) takes
        raise InvalidParameterValue(
            "The 'contamination' parameter must be a float in the range (0.0, 0.5] or a str among {'auto'}. "
            f"Got {contamination!r} instead."
        )
    quantiles = getattr(model, "error_quantiles_", None)
    if quantiles is None:
        raise InvalidInputError(
            "This model was saved without the distribution of its held-out errors, so it only knows the "
            f"threshold for contamination {model.contamination}. Refit it with this aekit, or give --threshold X."
        )
    if contamination == "auto":
        return detect.auto_threshold(quantiles), "held-out scores, contamination auto (robust 3-sigma on log scores)"
    levels = np.linspace(0.0, 1.0, len(quantiles))
    value = float(np.interp(1.0 - contamination, levels, quantiles))
    return value, f"held-out scores, contamination {contamination:g}"


def score_file(model, data, output, *, contamination: float | None = None, threshold: float | None = None,
               per_feature: bool = False, columns: Sequence[str] | None = None, key: str | None = None,
               image_size=None, chunk_rows: int = CHUNK_ROWS, verbose: int = 0, top_k: int = 5,
               keep_columns: Sequence[str] | None = None, sep: str | None = None) -> dict:
    """Write each row's reconstruction error, outlier score and outlier flag (integer: 1 = outlier, 0 = not) to
    `output`.

    The error is the mean squared error of the row in the scaled space the model was trained in
    (:meth:`~aekit.Autoencoder.reconstruction_error`), the score the model's
    :meth:`~aekit.Autoencoder.outlier_scores`; a row is an outlier when its score is above the
    threshold of :func:`outlier_threshold`. With `per_feature`, one ``error_<column>`` column per
    feature follows, so that one can see which columns made a row odd. `output` None writes no file:
    the summary alone. `keep_columns` as for :func:`encode_file`.

    A model fitted on a time series (``fit_file(..., window=W)``) scores `data` as a series: each
    time step gets ``outlier_score``, the mean score of the windows covering it, and ``outlier``;
    the summary adds ``window``, ``stride``, ``peak_step`` and ``segments``, the `top_k` runs of
    outlying steps (:func:`aekit.timeseries.top_segments`).

    Returns
    -------
    dict
        ``output``, ``n_rows``, ``n_outliers``, ``outlier_fraction``, ``threshold``,
        ``threshold_source``, ``mean_error``, ``max_error``.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, aekit
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> X = np.random.default_rng(0).normal(size=(200, 4))
    >>> np.save(folder / "x.npy", X)
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> summary = score_file(ae, folder / "x.npy", folder / "scores.csv", threshold=0.5)
    >>> summary["n_rows"], summary["threshold"]
    (200, 0.5)
    """
    model = _model(model)
    if output is not None:
        check_output_path(output, data)
    limit, source = outlier_threshold(model, contamination=contamination, threshold=threshold)
    if getattr(model, "window_", None) is not None:
        return _score_series(model, data, output, limit, source, columns=columns, key=key, top_k=top_k)
    names = ["reconstruction_error", "outlier_score", "outlier"]
    if per_feature:
        names += [f"error_{name}" for name in _output_feature_names(model)]
    totals = {"outliers": 0, "error": 0.0, "largest": 0.0}

    def scored() -> Iterator[tuple[Dataset, np.ndarray]]:
        for chunk, features in _feature_chunks(model, data, columns=columns, key=key, image_size=image_size,
                                               chunk_rows=chunk_rows, verbose=verbose, sep=sep):
            squared = model.reconstruction_error(features, per_feature=True)
            errors = squared.mean(axis=1)  # as reconstruction_error(features), without a second pass
            scores = errors if model.anomaly_score == "error" else model.outlier_scores(features)
            flags = scores > limit
            totals["outliers"] += int(flags.sum())
            totals["error"] += float(errors.sum(dtype=np.float64))
            totals["largest"] = max(totals["largest"], float(errors.max()))
            frame = pd.DataFrame({"reconstruction_error": errors.astype(np.float64),
                                  "outlier_score": scores.astype(np.float64), "outlier": flags.astype(np.int8)})
            if per_feature:
                frame = pd.concat([frame, pd.DataFrame(squared.astype(np.float64), columns=names[3:])], axis=1)
            yield chunk, frame

    n_rows = _write_rows(output, names, scored(), kept=_kept_columns(data, keep_columns, chunk_rows, sep))
    n_outliers = totals["outliers"]
    return {
        "output": None if output is None else str(output), "n_rows": n_rows, "n_outliers": n_outliers,
        "outlier_fraction": n_outliers / n_rows, "threshold": limit, "threshold_source": source,
        "mean_error": totals["error"] / n_rows, "max_error": totals["largest"],
    }


def _score_series(model: Autoencoder, data, output, limit: float, source: str, *, columns, key, top_k: int) -> dict:
    """:func:`score_file` for a model trained on a series' windows: one score per time step."""
    window = model.window_
    dataset = read_data(data, columns=columns, key=key)
    order = _column_order(dataset.columns, window["columns"], len(window["columns"]), data,
                          positional=Path(data).suffix.lower() in _ARRAY_SUFFIXES, what="the model",
                          hint="Select the series' channels with --columns a,b,c (Python: columns=[...]).")
    series = dataset.X if order is None else dataset.X[:, order]
    windows = SlidingWindows(window["window"], stride=window["stride"]).fit(series)
    scores = windows.to_steps(model.outlier_scores(windows.transform(series)), len(series))
    flags = scores > limit
    n_rows = _write_rows(output, ["outlier_score", "outlier"], iter([(dataset, np.column_stack([scores, flags]))]))
    return {
        "output": str(output), "n_rows": n_rows, "n_outliers": int(flags.sum()),
        "outlier_fraction": float(flags.mean()), "threshold": limit, "threshold_source": source,
        "mean_score": float(scores.mean()), "max_score": float(scores.max()),
        "window": window["window"], "stride": window["stride"], "peak_step": int(np.argmax(scores)),
        "segments": top_segments(scores, limit, top_k),
    }


# ---------------------------------------------------------------- info


def model_info(model_dir) -> dict:
    """Describe a model folder: architecture, parameter count, columns, training, threshold, versions.

    The folder is loaded (and so fully checked) first.

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> folder = tempfile.mkdtemp() + "/model"
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X).save(folder)
    >>> info = model_info(folder)
    >>> info["n_features"], info["latent_dim"], info["architecture"]["architecture"]
    (4, 2, 'anchored')
    """
    model, environment = load_model_and_environment(model_dir)  # as verified: not read again
    history = model.history_
    return {
        "model_dir": os.fspath(model_dir),
        "architecture": model.module_.config(),
        "n_parameters": int(sum(p.numel() for p in model.module_.parameters())),
        "latent_dim": int(model.module_.latent_dim),
        "n_features": int(model.n_features_in_),
        "columns": _feature_names(model),
        "scaler": model.scaler,
        "loss": model.loss_,
        "threshold": float(model.threshold_),
        "contamination": model.contamination if model.contamination == "auto" else float(model.contamination),
        "anomaly_score": model.anomaly_score,
        "window": getattr(model, "window_", None),
        "training": {
            "epochs": int(model.n_iter_),
            "best_epoch": history.get("best_epoch"),
            "stop_reason": history.get("stop_reason"),
            "train_loss": _last(history.get("train_loss")),
            "val_loss": _last(history.get("val_loss")),
            "best_val_loss": min(history["val_loss"]) if history.get("val_loss") else None,
            "seconds": history.get("seconds"),
            "latent_dim_rule": history.get("latent_dim_rule"),
            "pca": (history.get("pca") or {}).get("message"),
        },
        "params": model.get_params(),
        "environment": environment,
    }
