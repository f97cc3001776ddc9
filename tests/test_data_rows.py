"""Tests of reading a range of rows (aekit.data's rows=(start, stop) and shard_rows), format by format.

Each range read is compared with the same rows sliced out of a whole read (numpy slicing is the
reference), and values that would be refused sit outside the range to show those rows are never read.
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from aekit.data import count_rows, iter_chunks, read_data, shard_rows, write_data
from aekit.exceptions import InvalidInputError, InvalidParameterValue

N_ROWS = 23
RANGES = [(0, 5), (3, 17), (7, None), (20, 100), (0, None), (22, 23)]


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(N_ROWS, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory, values) -> dict[str, object]:
    """The same 23 x 3 values in every readable form; Parquet in row groups of 5 rows."""
    folder = tmp_path_factory.mktemp("rows")
    frame = pd.DataFrame(values, columns=["a", "b", "c"])
    paths = {}
    for name in ("data.csv", "data.parquet", "data.npy"):
        write_data(folder / name, values, columns=["a", "b", "c"])
        paths[name] = folder / name
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "groups.parquet", row_group_size=5)
    with gzip.open(folder / "data.tsv.gz", "wt") as file:  # with a blank line, which is no row
        file.write(frame.iloc[:4].to_csv(sep="\t", index=False) + "\n" + frame.iloc[4:].to_csv(sep="\t", index=False,
                                                                                               header=False))
    np.savez(folder / "data.npz", x=values)
    paths.update({name: folder / name for name in ("groups.parquet", "data.tsv.gz", "data.npz")})
    images = folder / "images"
    images.mkdir()
    for i in range(N_ROWS):
        Image.fromarray(np.full((2, 3), 10 * i, dtype=np.uint8)).save(images / f"{i:02d}.png")
    paths["images"] = images
    return paths


FORMATS = ["data.csv", "data.tsv.gz", "data.parquet", "groups.parquet", "data.npy", "data.npz", "images"]


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("rows", RANGES)
def test_a_range_of_rows_is_that_slice_of_the_whole(files, name, rows):
    whole = read_data(files[name])
    start, stop = rows
    expected = slice(start, stop)
    part = read_data(files[name], rows=rows)
    np.testing.assert_array_equal(part.X, whole.X[expected])
    np.testing.assert_array_equal(part.ids, whole.ids[expected])
    assert part.columns == whole.columns and part.image_shape == whole.image_shape
    chunks = list(iter_chunks(files[name], chunk_rows=4, rows=rows))
    assert all(len(chunk.X) <= 4 for chunk in chunks)
    np.testing.assert_array_equal(np.concatenate([chunk.X for chunk in chunks]), whole.X[expected])
    np.testing.assert_array_equal(np.concatenate([chunk.ids for chunk in chunks]), whole.ids[expected])


@pytest.mark.parametrize("name", ["data.csv", "groups.parquet", "data.npy", "images"])
@pytest.mark.parametrize("world_size", [1, 3, 4])
def test_shards_cover_every_row_once(files, name, world_size):
    whole = read_data(files[name])
    n_rows = count_rows(files[name])
    shards = [read_data(files[name], rows=shard_rows(n_rows, rank, world_size)) for rank in range(world_size)]
    assert [len(shard.X) for shard in shards] == [len(part) for part in np.array_split(whole.X, world_size)]
    np.testing.assert_array_equal(np.concatenate([shard.X for shard in shards]), whole.X)
    np.testing.assert_array_equal(np.concatenate([shard.ids for shard in shards]), whole.ids)


def test_shard_rows_splits_like_numpy():
    for n_rows in (0, 1, 7, 100):
        for world_size in (1, 2, 3, 8):
            sizes = [stop - start for start, stop in (shard_rows(n_rows, r, world_size) for r in range(world_size))]
            assert sizes == [len(part) for part in np.array_split(np.arange(n_rows), world_size)]
    with pytest.raises(InvalidParameterValue, match=r"'rank' parameter of shard_rows .* \[0, 1\]\. Got 2 instead"):
        shard_rows(10, 2, 2)
    with pytest.raises(InvalidParameterValue, match=r"'world_size' parameter .* \[1, inf\)\. Got 0 instead"):
        shard_rows(10, 0, 0)


def test_rows_outside_the_range_are_not_read(tmp_path, values):
    """Refused values (NaN, text, a damaged row group) after the range, or before it in a table, go unseen."""
    bad = values.astype(np.float64)
    bad[-1, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    write_data(tmp_path / "nan.parquet", bad, columns=["a", "b", "c"])
    for name in ("nan.npy", "nan.parquet"):
        with pytest.raises(InvalidInputError, match="missing or infinite"):
            read_data(tmp_path / name)
        np.testing.assert_array_equal(read_data(tmp_path / name, rows=(0, N_ROWS - 1)).X, values[:-1])
    lines = ["a,b", *(f"{x},{y}" for x, y in values[:, :2].tolist())]
    lines[1], lines[-1] = "oops,1", "1,2,3"  # a text cell in the first row, a row too long in the last
    (tmp_path / "text.csv").write_text("\n".join(lines) + "\n")
    np.testing.assert_array_equal(read_data(tmp_path / "text.csv", rows=(1, N_ROWS - 1)).X, values[1:-1, :2])
    with pytest.raises(InvalidInputError, match="not numeric"):
        read_data(tmp_path / "text.csv", rows=(0, 3))

    # Parquet: damage the data of the last row group; ranges before it never touch those bytes.
    path = tmp_path / "damaged.parquet"
    pq.write_table(pa.table({"a": values[:, 0], "b": values[:, 1]}), path, row_group_size=5, compression="none")
    last = pq.ParquetFile(path).metadata.row_group(4)
    chunks = [last.column(j) for j in range(2)]
    offsets = [chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
               for chunk in chunks]
    start = min(offsets)
    end = max(offset + chunk.total_compressed_size for offset, chunk in zip(offsets, chunks, strict=True))
    content = bytearray(path.read_bytes())
    content[start:end] = b"\xff" * (end - start)
    path.write_bytes(bytes(content))
    with pytest.raises(InvalidInputError, match="damaged Parquet file"):
        read_data(path)
    np.testing.assert_array_equal(read_data(path, rows=(2, 20)).X, values[2:20, :2])


@pytest.mark.parametrize("rows", [(5, 5), (-1, 3), (3, 2), (1.0, 4), (True, 4), (1,), "0:4", (1, 2, 3)])
def test_bad_ranges_are_refused(files, rows):
    with pytest.raises(InvalidParameterValue, match=r"The 'rows' parameter must be a pair \(start, stop\) .* Got"):
        read_data(files["data.npy"], rows=rows)


@pytest.mark.parametrize("name", ["data.csv", "groups.parquet", "data.npy", "images"])
def test_a_range_past_the_end_says_so(files, name):
    with pytest.raises(InvalidInputError, match=r"no data rows in rows=\(23, 30\): the range starts past its last"):
        read_data(files[name], rows=(23, 30))


def _file_pages_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssFile:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's /proc/self/status")
def test_a_npy_file_read_in_chunks_leaves_no_mapped_pages_behind(tmp_path):
    # 64 MiB of rows read 1 MiB at a time: each chunk's mapped pages are released once copied, so the
    # process's file-backed memory grows by a chunk or so, not by the file (it did, by the whole range read)
    path = tmp_path / "rows.npy"
    np.save(path, np.ones((1 << 18, 64), dtype=np.float32))
    before, growth, rows = _file_pages_kib(), 0, 0
    for chunk in iter_chunks(path, chunk_rows=4096, rows=(1000, 1 << 18)):
        growth, rows = max(growth, _file_pages_kib() - before), rows + len(chunk.X)
    assert rows == (1 << 18) - 1000
    assert growth < 8 * 1024, f"file-backed memory grew by {growth} KiB reading a 65,536 KiB file"
