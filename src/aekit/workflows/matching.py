"""Reading data for a fitted model: its columns matched by name (or position), its images checked, in chunks.

Columns are matched by name: a model fitted by :func:`~aekit.workflows.fit_file` stores its training
column names and order, and data with the same columns in another order is reordered; missing or
extra columns are an error that names them. A plain array (``.npy``/``.npz``), whose columns have no
names, is matched by position.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from aekit.data import Dataset, DataSpec, count_rows, table_format, table_header
from aekit.data.common import table_plan
from aekit.estimator import Autoencoder, SeriesAutoencoder, load_model
from aekit.exceptions import InvalidInputError, plural

ARRAY_SUFFIXES = (".npy", ".npz")


def as_frame(X: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    """A no-copy DataFrame, so that the estimator records (and later checks) the column names."""
    return pd.DataFrame(X, columns=list(columns), copy=False)


def read_frame(path, *, columns: Sequence[str] | None = None, sep: str | None = None,
               ids: bool = True, nrows: int | None = None) -> tuple[pd.DataFrame, np.ndarray | None]:
    """A text or Parquet table read whole, each column as pandas types it (numbers, text, dates; empty cells
    missing), for a model that types its columns itself (:mod:`aekit.tables`), and its row ids.

    With ``ids``, a first column that :func:`aekit.data.read_data` reads as row ids (``row``) is taken out
    and returned beside the table (None without one); ``columns`` selects columns as ``read_data`` does.
    ``nrows``: only the first rows (a look at the columns' types).
    """
    path = Path(path)
    table_header(path, sep=sep)  # the readers' checks of the file and its header, with their messages
    try:
        if table_format(path) == ".csv":
            frame = pd.read_csv(path, sep=sep or default_sep(path), encoding="utf-8-sig", nrows=nrows)
        elif nrows is not None:
            frame = next(pq.ParquetFile(path).iter_batches(batch_size=nrows)).to_pandas()
        else:
            frame = pd.read_parquet(path)
    except (OSError, ValueError) as error:  # pandas' and pyarrow's parse errors are ValueErrors
        raise InvalidInputError(f"Cannot read the table {path}: {error}. Check that it is a .csv/.tsv or "
                                ".parquet table with a header row.") from None
    frame.columns = [str(name) for name in frame.columns]
    id_column, features = table_plan(list(frame.columns), columns, path)
    if not ids:
        return frame, None
    return frame[features], None if id_column is None else frame[id_column].to_numpy()


def whole_table(data, *, sep: str | None = None) -> tuple[pd.DataFrame, Dataset]:
    """The input of a table's model (``table_``) read whole with its columns' types (:func:`read_frame`), and
    an empty chunk that carries its row ids to :func:`aekit.workflows.output.write_rows`."""
    if table_format(data) is None:
        raise InvalidInputError(f"This model reads a table (.csv, .tsv or .parquet) by column names; {data} is not "
                                "one. Give a table with the columns the model was trained on.")
    frame, ids = read_frame(data, sep=sep)
    n_rows = len(frame)
    return frame, Dataset(np.empty((n_rows, 0), dtype=np.float32), [], np.arange(n_rows) if ids is None else ids,
                          "row", None)


def as_model(model) -> Autoencoder | SeriesAutoencoder:
    """A fitted estimator as it is, or the model folder `model` loaded."""
    return model if isinstance(model, (Autoencoder, SeriesAutoencoder)) else load_model(model)


def row_model(model, job: str) -> Autoencoder:
    """:func:`as_model` for a job on independent rows (`job` names it): a time-series model is refused."""
    model = as_model(model)
    if isinstance(model, SeriesAutoencoder):
        raise InvalidInputError(
            f"{job} works on independent rows; this is a time-series model (window of {model.window_} steps), which "
            "scores the steps of a series. Use score (aekit score MODEL SERIES), plot or report on it; in Python, "
            "model.autoencoder_ works on the series' windows (aekit.timeseries.window_rows)."
        )
    return model


def feature_names(model: Autoencoder) -> list[str] | None:
    """The training column names the model recorded; None when it was fitted on unnamed columns."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(name) for name in names]


def column_order(available: list[str], expected: list[str] | None, n_expected: int, source, *,
                  positional: bool, what: str, hint: str) -> list[int] | None:
    """Positions of the `expected` columns in `available`; None when they are already in order.

    Without expected names, or for a plain array (`positional`), the columns are taken in order
    and only their number must agree.
    """
    if expected is None or (positional and available != expected):
        if len(available) != n_expected:
            raise InvalidInputError(
                f"{source} has {plural(len(available), 'column')}; {what} takes {n_expected}. {hint}"
            )
        return None
    available_set, expected_set = set(available), set(expected)  # sets, not lists: linear in the width
    missing = [name for name in expected if name not in available_set]
    extra = [name for name in available if name not in expected_set]
    if missing or extra:
        parts = ([f"lacks {quoted(missing)}"] if missing else []) + ([f"has extra {quoted(extra)}"] if extra else [])
        raise InvalidInputError(
            f"{source} {' and '.join(parts)}: {what} takes the columns {quoted(expected)}. {hint}"
        )
    if available == expected:
        return None
    position = {name: j for j, name in enumerate(available)}
    return [position[name] for name in expected]


def quoted(names: list[str], limit: int = 8) -> str:
    """Names for a message: the first `limit` quoted, then how many in all."""
    shown = ", ".join(map(repr, names[:limit]))
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def feature_chunks(model: Autoencoder, data, spec: DataSpec, *,
                   verbose: int) -> Iterator[tuple[Dataset, pd.DataFrame | np.ndarray]]:
    """Yield each chunk of `data`, read as `spec` says, with its features in the model's column order (a
    DataFrame when it has names); without ``spec.columns``, a table's columns are the model's, by name."""
    expected = feature_names(model)
    positional = Path(data).suffix.lower() in ARRAY_SUFFIXES
    hint = (
        "Select the training columns with --columns a,b,c (Python: columns=[...]), or pass the data the "
        "model was trained on."
    )
    image_shape = getattr(model, "input_shape", None)
    if spec.columns is None and expected is not None:
        spec = replace(spec, columns=by_name(data, expected, what="the model", hint=hint, sep=spec.sep))
    order = None
    for index, chunk in enumerate(read_chunks(data, spec, verbose)):
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
            order = column_order(chunk.columns, expected, model.n_features_in_, data, positional=positional,
                                  what="the model", hint=hint)
        X = chunk.X if order is None else np.ascontiguousarray(chunk.X[:, order])
        yield chunk, (X if expected is None else as_frame(X, expected))


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


def read_features(model, data, spec: DataSpec = DataSpec()) -> tuple[Dataset, pd.DataFrame | np.ndarray]:
    """Read all of `data` (as `spec` says) and match it to `model` as encode does: the Dataset, and the
    features to pass.

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
    model = as_model(model)
    return next(feature_chunks(model, data, replace(spec, chunk_rows=None), verbose=0))


def read_chunks(data, spec: DataSpec, verbose: int) -> Iterator[Dataset]:
    """`data` in the chunks of `spec` (:meth:`DataSpec.chunks`), with a progress bar when `verbose`."""
    chunks = spec.chunks(data)
    if not verbose or spec.chunk_rows is None:
        yield from chunks
        return
    with tqdm(total=count_rows(data, key=spec.key), unit="rows", desc=Path(data).name, leave=False) as bar:
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk.X))


def output_feature_names(model: Autoencoder) -> list[str]:
    """The names of an output's data columns: the training columns, or col0, col1, ... without names (a
    table's model: the columns it reads)."""
    table = getattr(model, "table_", None)
    if table is not None:
        return list(table.columns)
    return feature_names(model) or [f"col{j}" for j in range(model.n_features_in_)]


def by_name(data, expected: list[str], *, what: str, hint: str, sep: str | None = None) -> list[str] | None:
    """`expected`, the columns to read from a table that may hold others too; None for other inputs."""
    if table_format(data) is None:
        return None
    available = table_columns(data, sep)
    missing = [name for name in expected if name not in set(available)]
    # no names, or one that holds them all (another separator): io's reader explains those better
    if missing and available and not (len(available) == 1 and len(missing) == len(expected)):
        raise InvalidInputError(f"{data} lacks {quoted(missing)}: {what} takes the columns {quoted(expected)}. {hint}")
    return expected


def table_columns(path, sep: str | None = None) -> list[str]:
    """The column names of a text or Parquet table (its header or schema; the rows are not read)."""
    path = Path(path)
    if not path.is_file():  # io's reader says what is wrong with the path
        return []
    try:
        if table_format(path) == ".csv":
            sep = sep or default_sep(path)
            return [str(name) for name in pd.read_csv(path, nrows=0, encoding="utf-8-sig", sep=sep).columns]
        return list(pq.ParquetFile(path).schema_arrow.names)
    except (OSError, ValueError):  # unreadable (pandas and pyarrow errors are ValueErrors): io names the problem
        return []


def default_sep(path) -> str:
    """The separator a text table's name implies: a tab for .tsv, else a comma."""
    return "\t" if table_format(path, suffix=True).startswith(".tsv") else ","
