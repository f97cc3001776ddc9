"""Encode, decode and reconstruct whole files, chunk by chunk, in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from aekit._files import atomic_write
from aekit.data import CHUNK_ROWS, Dataset, DataSpec, table_format
from aekit.exceptions import InvalidInputError
from aekit.workflows.audio import is_sound_model, reconstruct_audio
from aekit.workflows.matching import (
    ARRAY_SUFFIXES,
    as_model,
    by_name,
    column_order,
    feature_chunks,
    output_feature_names,
    read_chunks,
    read_frame,
    row_model,
    whole_table,
)
from aekit.workflows.output import check_output, is_folder, kept_columns, model_image_shape, write_rows


def encode_file(model, data, output, *, spec: DataSpec = DataSpec(), verbose: int = 0,
                keep_columns: Sequence[str] | None = None, overwrite: bool = False) -> dict:
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
    spec : DataSpec, optional
        How to read `data` (:class:`aekit.data.DataSpec`); its ``chunk_rows`` rows are read, encoded and
        written at a time.
    verbose : int, default=0
        1 shows a progress bar.
    keep_columns : list of str, optional
        Columns of a ``.csv``/``.parquet`` input (ids, labels, any type) to carry into `output`,
        between the id column and the results.
    overwrite : bool, default=False
        Replace `output` when it is an existing regular file (never a folder, link, FIFO or device, and
        never anything inside a model folder).

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
    model = row_model(model, "encode")
    names = [str(name) for name in model.get_feature_names_out()]
    if getattr(model, "table_", None) is not None:
        return _map_table(model, data, output, names, model.transform, sep=spec.sep, keep_columns=keep_columns,
                          overwrite=overwrite)
    return _map_chunks(model, data, output, names, model.transform, spec=spec, verbose=verbose,
                       keep_columns=keep_columns, overwrite=overwrite)


def reconstruct_file(model, data, output, *, spec: DataSpec = DataSpec(), verbose: int = 0,
                     keep_columns: Sequence[str] | None = None, overwrite: bool = False) -> dict:
    """Write the reconstruction of every row of `data`, in its own units, under the training column names.

    Parameters and return value as :func:`encode_file`. A model trained on sound writes one picture per
    clip into the folder `output` instead (:func:`aekit.workflows.audio.reconstruct_audio`).

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
    model = as_model(model)
    if is_sound_model(model):  # one picture per clip (aekit.workflows.audio)
        return reconstruct_audio(model, data, output)
    model = row_model(model, "reconstruct")
    if getattr(model, "table_", None) is not None:
        _check_table_output(model, output, "reconstruct")
        return _map_table(model, data, output, output_feature_names(model), model.reconstruct, sep=spec.sep,
                          keep_columns=keep_columns, overwrite=overwrite)
    return _map_chunks(model, data, output, output_feature_names(model), model.reconstruct, spec=spec,
                       verbose=verbose, keep_columns=keep_columns, images=True, overwrite=overwrite)


def _map_chunks(model, data, output, names, function, *, spec: DataSpec, verbose: int, keep_columns=None,
                images: bool = False, overwrite: bool = False) -> dict:
    """Apply `function` to each chunk of features and write its rows under `names`, with the chunk's ids.

    `images`: the outputs are rows like the model's input, which a folder output takes as PNG files.
    """
    check_output(output, data, overwrite=overwrite)
    chunks = feature_chunks(model, data, spec, verbose=verbose)
    rows = ((chunk, function(features)) for chunk, features in chunks)
    image_shape = model_image_shape(model) if images and is_folder(output) else None
    n_rows = write_rows(output, names, rows, kept=kept_columns(data, keep_columns, spec.chunk_rows, spec.sep),
                         image_shape=image_shape, overwrite=overwrite)
    return {"output": str(output), "n_rows": n_rows, "n_columns": len(names) + len(keep_columns or ())}


def _map_table(model, data, output, names, function, *, sep, keep_columns, overwrite: bool) -> dict:
    """:func:`_map_chunks` for a table's model (``table_``): the table read whole with its columns' types (text,
    empty cells), as score and impute read it, and `function`'s rows written under `names`."""
    check_output(output, data, overwrite=overwrite)
    frame, chunk = whole_table(data, sep=sep)
    n_rows = write_rows(output, names, iter([(chunk, function(frame))]),
                        kept=kept_columns(data, keep_columns, CHUNK_ROWS, sep), overwrite=overwrite)
    return {"output": str(output), "n_rows": n_rows, "n_columns": len(names) + len(keep_columns or ())}


def _check_table_output(model, output, job: str) -> None:
    """A table's reconstruction holds its categories as text, which only a .csv or .parquet file takes."""
    if model.table_.categories and Path(output).suffix.lower() not in (".csv", ".parquet"):
        raise InvalidInputError(f"aekit {job} writes this model's categorical columns "
                                f"({', '.join(model.table_.categories)}) as text, which {output} cannot hold. Write "
                                "a .csv or .parquet file.")


def decode_file(model, latent, output, *, key: str | None = None, chunk_rows: int = CHUNK_ROWS,
                verbose: int = 0, keep_columns: Sequence[str] | None = None, overwrite: bool = False) -> dict:
    """Decode the latent codes in `latent` (what :func:`encode_file` writes) back to the data's units.

    Columns named ``latent0``, ``latent1``, ... are matched by name (in any order); a plain array by
    position; other columns of a table are left out unless named in `keep_columns` (carried over,
    as :func:`encode_file` takes them). Row ids (the ``row`` or ``file`` column) are carried over to `output`;
    `overwrite` as for :func:`encode_file`.

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
    model = row_model(model, "decode")
    if getattr(model, "table_", None) is not None:
        _check_table_output(model, output, "decode")
    check_output(output, latent, overwrite=overwrite)
    names = output_feature_names(model)

    def decoded() -> Iterator[tuple[Dataset, np.ndarray]]:
        latent_names = [str(name) for name in model.get_feature_names_out()]
        wanted = by_name(latent, latent_names, what="decode", hint="Pass the latent codes written by aekit encode.")
        order = None
        for index, chunk in enumerate(read_chunks(latent, DataSpec(wanted, key, chunk_rows=chunk_rows), verbose)):
            if index == 0:
                if chunk.image_shape is not None:
                    raise InvalidInputError(
                        f"{latent} holds images; decode takes latent codes (the output of aekit encode)."
                    )
                order = column_order(chunk.columns, latent_names, len(latent_names), latent,
                                      positional=Path(latent).suffix.lower() in ARRAY_SUFFIXES, what="decode",
                                      hint="Pass the latent codes written by aekit encode.")
            yield chunk, model.inverse_transform(chunk.X if order is None else chunk.X[:, order])

    n_rows = write_rows(output, names, decoded(), kept=kept_columns(latent, keep_columns, chunk_rows),
                         image_shape=model_image_shape(model) if is_folder(output) else None, overwrite=overwrite)
    return {"output": str(output), "n_rows": n_rows, "n_columns": len(names) + len(keep_columns or ())}


def impute_file(model, data, output, *, overwrite: bool = False, sep: str | None = None) -> dict:
    """Write `data` (a .csv/.tsv or .parquet table) with its missing cells filled by the model
    (:meth:`~aekit.Autoencoder.impute`): the same columns and rows, observed cells untouched.

    `output` is a .csv or .parquet file, written atomically; an existing one is replaced only with
    `overwrite`. The model must read a table (trained on one with text columns or gaps: ``table_``).

    Returns
    -------
    dict
        ``output``, ``n_rows``, ``n_filled`` (cells filled) and ``columns_filled`` (cells per column).

    Examples
    --------
    >>> import numpy as np, pandas as pd, tempfile, pathlib, aekit
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> t = np.random.default_rng(0).normal(size=200)
    >>> table = pd.DataFrame({"a": t, "b": 3 * t, "kind": np.where(t > 0, "up", "down")})
    >>> table.loc[:4, "b"] = np.nan
    >>> table.to_csv(folder / "t.csv", index=False)
    >>> ae = aekit.Autoencoder(latent_dim=1, epochs=20, random_state=0).fit(table)
    >>> impute_file(ae, folder / "t.csv", folder / "filled.csv")["n_filled"]
    5
    """
    model = row_model(model, "impute")
    if getattr(model, "table_", None) is None:
        raise InvalidInputError("aekit impute fills the gaps of a table with a model trained on a table with gaps or "
                                "text columns; this model was trained on complete numbers. Fit it on the table.")
    if table_format(data) is None:
        raise InvalidInputError(f"aekit impute reads a table (.csv, .tsv or .parquet); {data} is not one.")
    output = Path(output)
    if output.suffix.lower() not in (".csv", ".parquet"):
        raise InvalidInputError(f"Cannot write {output}: aekit impute writes a .csv or .parquet table.")
    check_output(output, data, overwrite=overwrite)  # the input itself, a model folder, a file without force
    frame, _ = read_frame(data, sep=sep, ids=False)
    missing = frame[model.table_.columns].isna().sum()
    filled = model.impute(frame)
    with atomic_write(output, "w" if output.suffix.lower() == ".csv" else "wb", overwrite=overwrite) as file:
        if output.suffix.lower() == ".csv":
            filled.to_csv(file, index=False)
        else:
            filled.to_parquet(file, index=False)
    return {"output": str(output), "n_rows": len(frame), "n_filled": int(missing.sum()),
            "columns_filled": {name: int(count) for name, count in missing.items() if count}}
