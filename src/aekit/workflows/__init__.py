"""File-level jobs: fit a model on a data file, then encode, decode, reconstruct or score other files.

The command line (:mod:`aekit.cli`) is a thin layer over these functions; each reads with
:mod:`aekit.data`, calls the estimator, writes its output atomically, and returns a JSON-ready
summary. Encode, decode, reconstruct and score stream their input in chunks, so they run in bounded
memory on files bigger than memory (image folders are small and read whole).

Columns are matched by name: a model fitted by :func:`fit_file` stores its training column names
and order, and data with the same columns in another order is reordered; missing or extra columns
are an error that names them. A plain array (``.npy``/``.npz``), whose columns have no names, is
matched by position.

One module per job: ``fit``, ``transform`` (encode, decode, reconstruct, impute), ``score``, ``info``;
``matching`` reads data for a model and ``output`` writes the rows.
"""

from aekit.data import CHUNK_ROWS
from aekit.workflows.fit import fit_file
from aekit.workflows.info import model_info
from aekit.workflows.matching import read_features
from aekit.workflows.score import outlier_threshold, score_file
from aekit.workflows.transform import decode_file, encode_file, impute_file, reconstruct_file

__all__ = [
    "CHUNK_ROWS", "decode_file", "encode_file", "fit_file", "impute_file", "model_info",
    "outlier_threshold", "read_features", "reconstruct_file", "score_file",
]
