"""File-level jobs: fit a model on a data file, then encode, decode, reconstruct or score other files.

The command line (:mod:`aekit.cli`) is a thin layer over these functions; each reads with
:mod:`aekit.io`, calls the estimator, writes its output atomically, and returns a JSON-ready
summary. Encode, decode, reconstruct and score stream their input in chunks, so they run in bounded
memory on files bigger than memory (image folders are small and read whole).

Columns are matched by name: a model fitted by :func:`fit_file` stores its training column names
and order, and data with the same columns in another order is reordered; missing or extra columns
are an error that names them. A plain array (``.npy``/``.npz``), whose columns have no names, is
matched by position.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from aekit import distributed
from aekit.estimator import Autoencoder
from aekit.exceptions import InvalidInputError, InvalidParameterValue
from aekit.io import Dataset, count_rows, iter_chunks, open_chunk_writer, read_data
from aekit.persistence import load_model, save_model
from aekit.streaming import fit_stream, should_stream

__all__ = [
    "decode_file", "encode_file", "fit_file", "model_info", "outlier_threshold", "reconstruct_file", "score_file",
]

CHUNK_ROWS = 65536
_ARRAY_SUFFIXES = (".npy", ".npz")


# ---------------------------------------------------------------- fit


def fit_file(data, model_dir, *, columns: Sequence[str] | None = None, key: str | None = None,
             image_size=None, force: bool = False, streaming: bool | None = False, **params) -> dict:
    """Train an :class:`~aekit.Autoencoder` on a data file or image folder and save it to `model_dir`.

    Parameters
    ----------
    data : str or path-like
        ``.csv``, ``.parquet``, ``.npy``, ``.npz`` or a folder of images (see :func:`aekit.io.read_data`).
    model_dir : str or path-like
        The model folder to write. An existing one is replaced only with ``force=True``.
    columns, key, image_size
        Passed to :func:`aekit.io.read_data`: which columns, which ``.npz`` array, the image size.
    force : bool, default=False
        Replace an existing model folder.
    streaming : bool or None, default=False
        Train chunk by chunk in bounded memory (:mod:`aekit.streaming`; ``.csv``, ``.parquet``,
        ``.npy``); None decides by the data's size against the available memory. Under torchrun
        only rank 0 saves the model.
    **params
        Constructor arguments of :class:`~aekit.Autoencoder` (``latent_dim``, ``hidden_dims``, ...).
        With ``architecture="conv"`` on images, ``input_shape`` defaults to the images' shape.

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
    _check_model_target(model_dir, force)  # before training, not after minutes of it
    if streaming is None:  # geometry embeds all rows at once: it never streams
        streamable = params.get("geometry") is None and Path(data).suffix.lower() in (".csv", ".parquet", ".npy")
        streaming = streamable and should_stream(data, columns=columns, key=key)
    if streaming:
        model = Autoencoder(**params)
        started = time.perf_counter()
        fit_stream(model, data, columns=columns, key=key)
        n_rows, image_shape = count_rows(data, key=key), None
    else:
        dataset = read_data(data, columns=columns, key=key, image_size=image_size)
        if params.get("architecture") == "conv" and params.get("input_shape") is None and dataset.image_shape:
            params["input_shape"] = tuple(dataset.image_shape)
        model = Autoencoder(**params)
        started = time.perf_counter()
        model.fit(_frame(dataset.X, dataset.columns))
        n_rows, image_shape = len(dataset.X), dataset.image_shape
    seconds = time.perf_counter() - started
    if distributed.is_main_process():  # under torchrun every rank holds the same model; one writes it
        save_model(model, model_dir)
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
        "contamination": float(model.contamination),
        "seconds": round(seconds, 3),
    }


def _check_model_target(model_dir: Path, force: bool) -> None:
    if model_dir.is_file() or model_dir.is_symlink():
        raise InvalidInputError(f"{model_dir} exists and is not a model folder. Choose another output path.")
    if model_dir.exists() and not force:
        raise InvalidInputError(
            f"Model folder {model_dir} already exists. Pass --force (Python: force=True) to replace it, "
            "or choose another output path."
        )


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
    missing = [name for name in expected if name not in set(available)]
    extra = [name for name in available if name not in set(expected)]
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


def _feature_chunks(model: Autoencoder, data, *, columns, key, image_size, chunk_rows: int,
                    verbose: int) -> Iterator[tuple[Dataset, pd.DataFrame | np.ndarray]]:
    """Yield each chunk with its features in the model's column order (a DataFrame when it has names)."""
    expected = _feature_names(model)
    positional = Path(data).suffix.lower() in _ARRAY_SUFFIXES
    hint = (
        "Select the training columns with --columns a,b,c (Python: columns=[...]), or pass the data the "
        "model was trained on."
    )
    image_shape = getattr(model, "input_shape", None)
    order = None
    for index, chunk in enumerate(_progress(data, key, chunk_rows, columns, image_size, verbose)):
        if index == 0:
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


def _progress(data, key, chunk_rows, columns, image_size, verbose) -> Iterator[Dataset]:
    chunks = iter_chunks(data, chunk_rows=chunk_rows, columns=columns, key=key, image_size=image_size)
    if not verbose:
        yield from chunks
        return
    with tqdm(total=count_rows(data, key=key), unit="rows", desc=Path(data).name, leave=False) as bar:
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk.X))


# ---------------------------------------------------------------- encode, decode, reconstruct


def encode_file(model, data, output, *, columns: Sequence[str] | None = None, key: str | None = None,
                image_size=None, chunk_rows: int = CHUNK_ROWS, verbose: int = 0) -> dict:
    """Write the latent codes of every row of `data` to `output` (``latent0``, ``latent1``, ...).

    Parameters
    ----------
    model : Autoencoder or str or path-like
        A fitted estimator or a model folder.
    data : str or path-like
        The data file or image folder; its columns must be the training columns, in any order.
    output : str or path-like
        ``.csv``, ``.parquet`` (an id column, then the codes) or ``.npy`` (the codes only).
    columns, key, image_size
        As for :func:`aekit.io.read_data`.
    chunk_rows : int, default=65536
        Rows read, encoded and written at a time.
    verbose : int, default=0
        1 shows a progress bar.

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
                       image_size=image_size, chunk_rows=chunk_rows, verbose=verbose)


def reconstruct_file(model, data, output, *, columns: Sequence[str] | None = None, key: str | None = None,
                     image_size=None, chunk_rows: int = CHUNK_ROWS, verbose: int = 0) -> dict:
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
                       key=key, image_size=image_size, chunk_rows=chunk_rows, verbose=verbose)


def _output_feature_names(model: Autoencoder) -> list[str]:
    return _feature_names(model) or [f"col{j}" for j in range(model.n_features_in_)]


def _map_chunks(model, data, output, names, function, *, columns, key, image_size, chunk_rows, verbose) -> dict:
    """Apply `function` to each chunk of features and write its rows under `names`, with the chunk's ids."""
    chunks = _feature_chunks(model, data, columns=columns, key=key, image_size=image_size, chunk_rows=chunk_rows,
                             verbose=verbose)
    n_rows = _write_rows(output, names, ((chunk, function(features)) for chunk, features in chunks))
    return {"output": str(output), "n_rows": n_rows, "n_columns": len(names)}


def _write_rows(output, names: list[str], rows: Iterator[tuple[Dataset, np.ndarray]]) -> int:
    """Write each chunk's values with its ids (the id column named as the input's); return the row count."""
    # The first chunk is read before the output is opened: it tells whether the ids are rows or files.
    # read_data's chunks are never empty, so there is a first one (or an error that says why not).
    first = next(rows)
    with open_chunk_writer(output, names, first[0].id_name) as writer:
        for chunk, values in itertools.chain([first], rows):
            writer.write(values, chunk.ids)
    return writer.n_rows


def decode_file(model, latent, output, *, key: str | None = None, chunk_rows: int = CHUNK_ROWS,
                verbose: int = 0) -> dict:
    """Decode the latent codes in `latent` (what :func:`encode_file` writes) back to the data's units.

    Columns named ``latent0``, ``latent1``, ... are matched by name (in any order); a plain array by
    position. Row ids (the ``row`` or ``file`` column) are carried over to `output`.

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
    names = _output_feature_names(model)

    def decoded() -> Iterator[tuple[Dataset, np.ndarray]]:
        latent_names = [str(name) for name in model.get_feature_names_out()]
        order = None
        for index, chunk in enumerate(_progress(latent, key, chunk_rows, None, None, verbose)):
            if index == 0:
                if chunk.image_shape is not None:
                    raise InvalidInputError(
                        f"{latent} holds images; decode takes latent codes (the output of aekit encode)."
                    )
                order = _column_order(chunk.columns, latent_names, len(latent_names), latent,
                                      positional=Path(latent).suffix.lower() in _ARRAY_SUFFIXES, what="decode",
                                      hint="Pass the latent codes written by aekit encode.")
            yield chunk, model.inverse_transform(chunk.X if order is None else chunk.X[:, order])

    n_rows = _write_rows(output, names, decoded())
    return {"output": str(output), "n_rows": n_rows, "n_columns": len(names)}


# ---------------------------------------------------------------- score


def outlier_threshold(model: Autoencoder, *, contamination: float | None = None,
                      threshold: float | None = None) -> tuple[float, str]:
    """The reconstruction error above which a row is an outlier, and where it came from.

    By default the model's ``threshold_``: the ``1 - contamination`` quantile of the error on
    held-out training rows, computed at fit time. Another `contamination` reads the same quantile
    off the stored distribution of held-out errors (``error_quantiles_``, 1001 quantiles at levels
    0, 0.001, ..., 1: exact for multiples of 0.001, linear in between). An explicit `threshold` is
    used as it is.

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
                f"The threshold must be a finite reconstruction error >= 0. Got {threshold!r} instead."
            )
        return float(threshold), "given"
    if contamination is None or contamination == model.contamination:
        return float(model.threshold_), f"learned at fit, contamination {model.contamination:g}"
    if not 0 < contamination <= 0.5:  # the range Autoencoder(contamination=...) takes at fit
        raise InvalidParameterValue(
            f"The 'contamination' parameter must be a float in the range (0.0, 0.5]. Got {contamination!r} instead."
        )
    quantiles = getattr(model, "error_quantiles_", None)
    if quantiles is None:
        raise InvalidInputError(
            "This model was saved without the distribution of its held-out errors, so it only knows the "
            f"threshold for contamination {model.contamination:g}. Refit it with this aekit, or give --threshold X."
        )
    levels = np.linspace(0.0, 1.0, len(quantiles))
    value = float(np.interp(1.0 - contamination, levels, quantiles))
    return value, f"held-out errors, contamination {contamination:g}"


def score_file(model, data, output, *, contamination: float | None = None, threshold: float | None = None,
               per_feature: bool = False, columns: Sequence[str] | None = None, key: str | None = None,
               image_size=None, chunk_rows: int = CHUNK_ROWS, verbose: int = 0) -> dict:
    """Write each row's reconstruction error and outlier flag (1 = outlier) to `output`.

    The error is the mean squared error of the row in the scaled space the model was trained in
    (:meth:`~aekit.Autoencoder.reconstruction_error`); a row is an outlier when its error is above the
    threshold of :func:`outlier_threshold`. With `per_feature`, one ``error_<column>`` column per
    feature follows, so that one can see which columns made a row odd.

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
    limit, source = outlier_threshold(model, contamination=contamination, threshold=threshold)
    names = ["reconstruction_error", "outlier"]
    if per_feature:
        names += [f"error_{name}" for name in _output_feature_names(model)]
    totals = {"outliers": 0, "error": 0.0, "largest": 0.0}

    def scored() -> Iterator[tuple[Dataset, np.ndarray]]:
        for chunk, features in _feature_chunks(model, data, columns=columns, key=key, image_size=image_size,
                                               chunk_rows=chunk_rows, verbose=verbose):
            squared = model.reconstruction_error(features, per_feature=True)
            errors = squared.mean(axis=1)  # as reconstruction_error(features), without a second pass
            flags = errors > limit
            totals["outliers"] += int(flags.sum())
            totals["error"] += float(errors.sum(dtype=np.float64))
            totals["largest"] = max(totals["largest"], float(errors.max()))
            parts = [errors[:, None], flags[:, None]] + ([squared] if per_feature else [])
            yield chunk, np.hstack(parts).astype(np.float64)

    n_rows = _write_rows(output, names, scored())
    n_outliers = totals["outliers"]
    return {
        "output": str(output), "n_rows": n_rows, "n_outliers": n_outliers,
        "outlier_fraction": n_outliers / n_rows, "threshold": limit, "threshold_source": source,
        "mean_error": totals["error"] / n_rows, "max_error": totals["largest"],
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
    (4, 2, 'mlp')
    """
    model = load_model(model_dir)
    history = model.history_
    environment_file = Path(model_dir) / "environment.json"
    environment = json.loads(environment_file.read_text(encoding="utf-8"))  # verified by load_model
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
        "contamination": float(model.contamination),
        "training": {
            "epochs": int(model.n_iter_),
            "best_epoch": history.get("best_epoch"),
            "stop_reason": history.get("stop_reason"),
            "train_loss": _last(history.get("train_loss")),
            "val_loss": _last(history.get("val_loss")),
            "best_val_loss": min(history["val_loss"]) if history.get("val_loss") else None,
            "seconds": history.get("seconds"),
        },
        "params": model.get_params(),
        "environment": environment,
    }
