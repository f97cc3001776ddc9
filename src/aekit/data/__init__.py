"""Read and write aekit's data files, chosen by file extension, for the library and the CLI.

Read: ``.csv``/``.tsv`` (header row; also gzip-compressed), ``.parquet``, ``.npy``, ``.npz`` and
folders of images; everything becomes a float32 :class:`Dataset`. Write: ``.csv`` and ``.parquet``
(an id column, then the named columns) and ``.npy`` (the plain array), always atomically.
:func:`iter_chunks` and :func:`open_chunk_writer` do the same in bounded memory, for data bigger than
memory; ``iter_chunks(path, rows=(start, stop))`` reads one process's share of a file.

A table whose first column is named ``row`` or ``file`` (what :func:`write_data` writes), or has an
empty name (the index that ``DataFrame.to_csv`` writes), holds row ids, not a feature.

One module per format (:mod:`.text`, :mod:`.parquet`, :mod:`.arrays`, :mod:`.images`), the shared
checks in :mod:`.common`, the dispatch by name in :mod:`.readers`, the writers in :mod:`.writers`; a
:class:`DataSpec` says how to read a file (columns, array, image size, separator, chunk size) wherever it
is passed along.
"""

from aekit.data.common import CHUNK_ROWS, ID_NAMES, READ_SUFFIXES, Dataset, PixelNames
from aekit.data.images import MAX_IMAGE_PIXELS, parse_image_size
from aekit.data.readers import count_rows, iter_chunks, read_data, read_labels, shard_rows, table_header
from aekit.data.spec import DataSpec
from aekit.data.text import table_format
from aekit.data.writers import (
    WRITE_SUFFIXES,
    ChunkWriter,
    check_output_path,
    open_chunk_writer,
    write_data,
    write_images,
)

__all__ = [
    "CHUNK_ROWS", "ID_NAMES", "MAX_IMAGE_PIXELS", "READ_SUFFIXES", "WRITE_SUFFIXES", "ChunkWriter", "DataSpec",
    "Dataset", "PixelNames", "check_output_path", "count_rows", "iter_chunks", "open_chunk_writer",
    "parse_image_size", "read_data", "read_labels", "shard_rows", "table_format", "table_header", "write_data",
    "write_images",
]
