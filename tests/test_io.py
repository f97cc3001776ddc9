"""Tests of aekit.data: read and write by extension, and in chunks (streaming)."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from aekit.data import (
    count_rows,
    iter_chunks,
    open_chunk_writer,
    parse_image_size,
    read_data,
    write_data,
    write_images,
)
from aekit.exceptions import InvalidInputError, InvalidParameterValue
from conftest import assert_close

TABLES = [".csv", ".parquet"]


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    """7 x 3 float32 values, some negative, some tiny, that must survive a text round trip exactly."""
    values = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    values[0, 0], values[1, 1] = 1e-8, -3.4e38
    return values


@pytest.fixture(scope="module")
def pixels() -> dict[str, np.ndarray]:
    """Seeded image arrays: 8-bit gray and RGB, 16-bit gray, RGBA, gray+alpha (all 4 x 5)."""
    rng = np.random.default_rng(1)
    return {
        "gray": rng.integers(0, 256, (4, 5), dtype=np.uint8),
        "rgb": rng.integers(0, 256, (4, 5, 3), dtype=np.uint8),
        "gray16": rng.integers(0, 65536, (4, 5), dtype=np.uint16),
        "rgba": rng.integers(0, 256, (4, 5, 4), dtype=np.uint8),
        "la": rng.integers(0, 256, (4, 5, 2), dtype=np.uint8),
    }


def save_images(folder, named_arrays: dict[str, np.ndarray]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in named_arrays.items():
        Image.fromarray(array).save(folder / name)
    return folder


def error_text(excinfo) -> str:
    return str(excinfo.value)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", TABLES)
def test_table_round_trip_keeps_values_columns_and_ids(tmp_path, table, suffix):
    path = tmp_path / f"data{suffix}"
    write_data(path, table, columns=["a", "b", "c"], ids=np.arange(10, 17))
    data = read_data(path)
    np.testing.assert_array_equal(data.X, table)
    assert data.X.dtype == np.float32 and data.X.flags.c_contiguous
    assert data.columns == ["a", "b", "c"]
    np.testing.assert_array_equal(data.ids, np.arange(10, 17))
    assert data.id_name == "row" and data.image_shape is None


@pytest.mark.parametrize("suffix", TABLES)
def test_table_round_trip_with_file_ids_and_default_columns(tmp_path, table, suffix):
    path = tmp_path / f"codes{suffix}"
    names = [f"img_{j}.png" for j in range(len(table))]
    write_data(path, table, ids=names, id_name="file")
    data = read_data(path)
    np.testing.assert_array_equal(data.X, table)
    assert data.columns == ["col0", "col1", "col2"]
    assert data.ids.tolist() == names and data.id_name == "file"


def test_npy_round_trip_is_the_plain_array(tmp_path, table):
    path = tmp_path / "data.npy"
    write_data(path, table, columns=["a", "b", "c"])
    np.testing.assert_array_equal(np.load(path), table)
    data = read_data(path)
    np.testing.assert_array_equal(data.X, table)
    assert data.columns == ["col0", "col1", "col2"]
    np.testing.assert_array_equal(data.ids, np.arange(len(table)))


def test_write_keeps_dtype_and_read_gives_float32(tmp_path):
    counts = np.arange(6).reshape(3, 2)
    write_data(tmp_path / "counts.npy", counts)
    write_data(tmp_path / "counts.parquet", counts)
    assert np.load(tmp_path / "counts.npy").dtype == counts.dtype
    assert pq.read_schema(tmp_path / "counts.parquet").field("col0").type == pa.int64()
    for name in ("counts.npy", "counts.parquet"):
        data = read_data(tmp_path / name)
        assert data.X.dtype == np.float32
        np.testing.assert_array_equal(data.X, counts)


def test_npz_single_array_and_key_selection(tmp_path, table):
    np.savez(tmp_path / "one.npz", values=table)
    np.testing.assert_array_equal(read_data(tmp_path / "one.npz").X, table)
    np.savez(tmp_path / "two.npz", X=table, y=np.arange(7).reshape(-1, 1))
    np.testing.assert_array_equal(read_data(tmp_path / "two.npz", key="X").X, table)
    np.testing.assert_array_equal(read_data(tmp_path / "two.npz", key="y").X[:, 0], np.arange(7))


def test_integer_and_bool_columns_just_work(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("n,flag,x\n1,True,0.5\n2,False,1.5\n")
    np.testing.assert_array_equal(read_data(path).X, [[1, 1, 0.5], [2, 0, 1.5]])
    pq.write_table(pa.table({"n": [1, 2], "flag": [True, False]}), tmp_path / "mixed.parquet")
    np.testing.assert_array_equal(read_data(tmp_path / "mixed.parquet").X, [[1, 1], [2, 0]])
    np.save(tmp_path / "flags.npy", np.array([[True, False]]))
    np.testing.assert_array_equal(read_data(tmp_path / "flags.npy").X, [[1, 0]])


def test_csv_with_utf8_bom(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8-sig")
    data = read_data(path, columns=["a"])
    assert data.columns == ["a"]
    np.testing.assert_array_equal(data.X, [[1]])


def test_pandas_index_is_taken_as_ids_not_a_feature(tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.0]}, index=[5, 6])
    frame.to_csv(tmp_path / "indexed.csv")
    frame.to_parquet(tmp_path / "indexed.parquet")
    assert read_data(tmp_path / "indexed.csv").columns == ["x"]
    np.testing.assert_array_equal(read_data(tmp_path / "indexed.csv").ids, [5, 6])
    assert read_data(tmp_path / "indexed.parquet").columns == ["x"]


# ---------------------------------------------------------------- column selection


@pytest.mark.parametrize("suffix", TABLES)
def test_columns_select_and_reorder(tmp_path, table, suffix):
    path = tmp_path / f"data{suffix}"
    write_data(path, table, columns=["a", "b", "c"])
    data = read_data(path, columns=["c", "a"])
    assert data.columns == ["c", "a"]
    np.testing.assert_array_equal(data.X, table[:, [2, 0]])


def test_an_id_column_named_explicitly_becomes_a_feature(tmp_path, table):
    path = tmp_path / "data.csv"
    write_data(path, table, columns=["a", "b", "c"], ids=np.arange(10, 17))
    data = read_data(path, columns=["row", "b"])
    np.testing.assert_array_equal(data.X[:, 0], np.arange(10, 17))
    np.testing.assert_array_equal(data.ids, np.arange(7))


def test_npy_columns_select_by_default_names(tmp_path, table):
    np.save(tmp_path / "data.npy", table)
    np.testing.assert_array_equal(read_data(tmp_path / "data.npy", columns=["col2"]).X, table[:, [2]])


@pytest.mark.parametrize(
    ("suffix", "names"), [(".csv", ["alpha", "betta"]), (".parquet", ["alpha", "betta"]), (".npy", ["col0", "betta"])]
)
def test_unknown_column_suggests_the_closest(tmp_path, table, suffix, names):
    path = tmp_path / f"data{suffix}"
    write_data(path, table, columns=["alpha", "beta", "gamma"])
    with pytest.raises(InvalidInputError, match="Column 'betta' not found") as excinfo:
        read_data(path, columns=names)
    assert str(path) in error_text(excinfo)
    suggestion = " Did you mean 'beta'? " if suffix != ".npy" else " Its columns are: col0, col1, col2."
    assert suggestion in error_text(excinfo)


def test_column_selected_twice_or_none_is_an_error(tmp_path, table):
    path = tmp_path / "data.csv"
    write_data(path, table, columns=["a", "b", "c"])
    with pytest.raises(InvalidInputError, match=r"\['a'\] are selected more than once"):
        read_data(path, columns=["a", "a"])
    with pytest.raises(InvalidInputError, match="selects nothing"):
        read_data(path, columns=[])


# ---------------------------------------------------------------- bad input: tables


def test_non_numeric_csv_column_names_column_value_and_fix(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x,city\n1,Paris\n2,Rome\n")
    with pytest.raises(InvalidInputError) as excinfo:
        read_data(path)
    assert re.fullmatch(
        rf"Column 'city' in {re.escape(str(path))} is not numeric \(dtype \w+, first non-numeric value 'Paris' "
        r"at row 0\)\. Select numeric columns with --columns a,b,c \(Python: columns=\[\.\.\.\]\)\.",
        error_text(excinfo),
    )
    np.testing.assert_array_equal(read_data(path, columns=["x"]).X, [[1], [2]])


def test_csv_reports_the_first_non_numeric_cell_not_the_first_cell(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x\n1\n2\nabc\n")
    with pytest.raises(InvalidInputError, match="first non-numeric value 'abc' at row 2"):
        read_data(path)


@pytest.mark.parametrize(
    ("body", "column", "count", "row"),
    [("1,2\n3,\n4,\n5,6\n", "b", 2, 1), ("1,inf\n2,3\n", "b", 1, 0), ("nan,1\n", "a", 1, 0)],
)
def test_missing_or_infinite_csv_cells_name_column_count_and_row(tmp_path, body, column, count, row):
    path = tmp_path / "holes.csv"
    path.write_text("a,b\n" + body)
    with pytest.raises(InvalidInputError) as excinfo:
        read_data(path)
    message = error_text(excinfo)
    assert f"Column {column!r} in {path} has {count} missing or infinite" in message
    assert f"first at row {row}" in message and "dropna" in message


def test_empty_and_header_only_csv(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InvalidInputError, match="empty.csv is empty. A CSV needs a header row"):
        read_data(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(InvalidInputError, match="header.csv has no data rows"):
        read_data(tmp_path / "header.csv")


def test_csv_without_header_is_caught(tmp_path):
    (tmp_path / "raw.csv").write_text("0.5,1.25\n0.75,2\n")
    with pytest.raises(InvalidInputError, match=r"first line .* looks like data, not a header"):
        read_data(tmp_path / "raw.csv")
    (tmp_path / "numbered.csv").write_text("1,2\n0.5,1.25\n")  # whole numbers are fine as names
    assert read_data(tmp_path / "numbered.csv").columns == ["1", "2"]


def test_duplicated_csv_column_names(tmp_path):
    (tmp_path / "dup.csv").write_text("a,b,a\n1,2,3\n")
    with pytest.raises(InvalidInputError, match="dup.csv has duplicated column names: 'a'"):
        read_data(tmp_path / "dup.csv")


def test_malformed_and_non_utf8_csv(tmp_path):
    (tmp_path / "latin.csv").write_bytes("a,b\n1,2\n\xe9,3\n".encode("latin-1"))
    with pytest.raises(InvalidInputError, match="latin.csv .*UTF-8"):
        read_data(tmp_path / "latin.csv")
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(InvalidInputError, match="ragged.csv is not a well-formed"):
        read_data(tmp_path / "ragged.csv")


@pytest.mark.parametrize(
    "values", [pa.array([[1], [2, 3]]), pa.array([{"x": 1}, {"x": 2}]), pa.array(["p", "q"])]
)
def test_parquet_nested_and_text_columns_are_not_numeric(tmp_path, values):
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"ok": [1.0, 2.0], "bad": values}), path)
    with pytest.raises(InvalidInputError, match=r"Column 'bad' in .*nested.parquet is not numeric \(Parquet type"):
        read_data(path)
    np.testing.assert_array_equal(read_data(path, columns=["ok"]).X, [[1], [2]])


def test_parquet_nulls_name_the_column(tmp_path):
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "b": pa.array([1, None, None])}), path)
    with pytest.raises(InvalidInputError, match="Column 'b' in .*nulls.parquet has 2 null"):
        read_data(path)


def test_parquet_duplicated_column_names(tmp_path):
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0])], names=["a", "a"]), path)
    with pytest.raises(InvalidInputError, match="duplicated column names: 'a'"):
        read_data(path)


def test_corrupt_parquet(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InvalidInputError, match="bad.parquet cannot be read as a Parquet file"):
        read_data(tmp_path / "bad.parquet")


# ---------------------------------------------------------------- bad input: paths and arrays


def test_missing_path_and_unsupported_extension(tmp_path):
    (tmp_path / "data.csv").write_text("a\n1\n")
    with pytest.raises(InvalidInputError, match=r"No such file or folder: .*dta.csv\. Did you mean 'data.csv'\?"):
        read_data(tmp_path / "dta.csv")
    (tmp_path / "data.xlsx").write_text("")
    with pytest.raises(InvalidInputError, match=r"unsupported extension '.xlsx'. Supported: .csv, .parquet, .npy"):
        read_data(tmp_path / "data.xlsx")


def test_npy_1d_suggests_reshape(tmp_path):
    np.save(tmp_path / "flat.npy", np.arange(5.0))
    with pytest.raises(InvalidInputError, match=r"1-D array of shape \(5,\).*reshape\(-1, 1\)"):
        read_data(tmp_path / "flat.npy")


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (np.array([["a", "b"]]), "dtype <U1; aekit needs numbers"),
        (np.ones((2, 2), dtype=complex), "dtype complex128; aekit needs numbers"),
        (np.ones((2, 0)), "at least one feature"),
        (np.ones((2, 2, 2, 2, 2)), r"shape \(2, 2, 2, 2, 2\)"),
        (np.ones((4, 5, 6, 3)), r"look channels-last.*transpose\(0, 3, 1, 2\)"),
    ],
)
def test_unusable_arrays(tmp_path, values, match):
    np.save(tmp_path / "bad.npy", values)
    with pytest.raises(InvalidInputError, match=match):
        read_data(tmp_path / "bad.npy")


def test_object_arrays_are_never_unpickled(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidInputError, match="never unpickles"):
        read_data(tmp_path / "objects.npy")


@pytest.mark.parametrize(("shape", "image_shape"), [((3, 4, 5), (1, 4, 5)), ((3, 2, 4, 5), (2, 4, 5))])
def test_image_stacks_in_npy_are_flattened_in_chw_order(tmp_path, shape, image_shape):
    stack = np.random.default_rng(2).random(shape).astype(np.float32)
    np.save(tmp_path / "stack.npy", stack)
    data = read_data(tmp_path / "stack.npy")
    assert data.image_shape == image_shape
    assert data.columns[:2] == ["px0", "px1"] and len(data.columns) == 20 * image_shape[0]
    np.testing.assert_array_equal(data.X.reshape(len(stack), *image_shape), stack.reshape(len(stack), *image_shape))
    with pytest.raises(InvalidInputError, match="cannot select pixels"):
        read_data(tmp_path / "stack.npy", columns=["px0"])


def test_npz_with_several_arrays_needs_a_key(tmp_path, table):
    path = tmp_path / "two.npz"
    np.savez(path, X=table, labels=np.arange(7))
    with pytest.raises(InvalidInputError, match=r"holds 2 arrays \(X, labels\)\. Choose one with --key NAME"):
        read_data(path)
    with pytest.raises(InvalidInputError, match="has no array 'label'. Did you mean 'labels'?"):
        read_data(path, key="label")


def test_options_that_do_not_apply_are_errors(tmp_path, table):
    write_data(tmp_path / "data.csv", table)
    with pytest.raises(InvalidInputError, match="applies only to .npz"):
        read_data(tmp_path / "data.csv", key="X")
    with pytest.raises(InvalidInputError, match="image_size applies only to folders of images"):
        read_data(tmp_path / "data.csv", image_size=(2, 2))


@pytest.mark.parametrize(("text", "expected"), [("28x28", (28, 28)), ("32X24", (32, 24)), (" 5 x 7 ", (5, 7))])
def test_parse_image_size(text, expected):
    assert parse_image_size(text) == expected


@pytest.mark.parametrize("text", ["28", "28x", "0x5", "a x b", "28x28x3", "-1x4"])
def test_parse_image_size_rejects_bad_text(text):
    with pytest.raises(InvalidInputError, match=f"Invalid image size {re.escape(repr(text))}: write it as HxW"):
        parse_image_size(text)


# ---------------------------------------------------------------- image folders


def test_gray_folder(tmp_path, pixels):
    folder = save_images(tmp_path / "gray", {"b.png": pixels["gray"], "a.png": 255 - pixels["gray"]})
    (folder / "README.txt").write_text("not an image")
    data = read_data(folder)
    assert data.ids.tolist() == ["a.png", "b.png"] and data.id_name == "file"
    assert data.image_shape == (1, 4, 5) and data.columns[-1] == "px19"
    assert data.X.dtype == np.float32 and data.X.flags.c_contiguous
    assert_close(data.X[1], pixels["gray"].ravel() / 255, atol=1e-7)
    assert_close(data.X[0], (255 - pixels["gray"]).ravel() / 255, atol=1e-7)


def test_rgb_is_flattened_channels_first(tmp_path, pixels):
    folder = save_images(tmp_path / "rgb", {"x.png": pixels["rgb"]})
    data = read_data(folder)
    assert data.image_shape == (3, 4, 5)
    assert_close(data.X[0], pixels["rgb"].transpose(2, 0, 1).ravel() / 255, atol=1e-7)


def test_16_bit_images_use_the_full_range(tmp_path, pixels):
    folder = save_images(tmp_path / "deep", {"x.png": pixels["gray16"]})
    with Image.open(folder / "x.png") as image:
        assert image.mode.startswith("I")  # really a 16-bit file
    assert_close(read_data(folder).X[0], pixels["gray16"].ravel() / 65535, atol=1e-7)


def test_alpha_is_dropped(tmp_path, pixels):
    folder = save_images(tmp_path / "alpha", {"rgba.png": pixels["rgba"]})
    data = read_data(folder)
    assert data.image_shape == (3, 4, 5)
    assert_close(data.X[0], pixels["rgba"][..., :3].transpose(2, 0, 1).ravel() / 255, atol=1e-7)
    folder = save_images(tmp_path / "gray_alpha", {"la.png": pixels["la"]})
    data = read_data(folder)
    assert data.image_shape == (1, 4, 5)
    assert_close(data.X[0], pixels["la"][..., 0].ravel() / 255, atol=1e-7)


def test_mixed_gray_and_rgb_become_rgb(tmp_path, pixels):
    folder = save_images(
        tmp_path / "mixed", {"a.png": pixels["gray"], "b.png": pixels["rgb"], "c.png": pixels["gray16"]}
    )
    data = read_data(folder)
    assert data.image_shape == (3, 4, 5)
    assert_close(data.X[0], np.tile(pixels["gray"].ravel() / 255, 3), atol=1e-7)
    assert_close(data.X[2], np.tile(pixels["gray16"].ravel() / 65535, 3), atol=1e-7)


def test_mixed_sizes_need_image_size(tmp_path, pixels):
    folder = save_images(tmp_path / "sizes", {"small.png": pixels["gray"], "wide.png": np.zeros((4, 9), np.uint8)})
    with pytest.raises(InvalidInputError) as excinfo:
        read_data(folder)
    message = error_text(excinfo)
    assert "small.png is 4x5" in message and "wide.png is 4x9 (HxW)" in message
    assert "--image-size HxW" in message and "e.g. --image-size 4x5" in message


@pytest.mark.parametrize("image_size", [(3, 2), "3x2"])
def test_image_size_resizes_with_pillow_bilinear(tmp_path, pixels, image_size):
    folder = save_images(tmp_path / "sizes", {"a.png": pixels["gray"], "b.png": np.zeros((6, 9), np.uint8)})
    data = read_data(folder, image_size=image_size)
    assert data.image_shape == (1, 3, 2) and data.X.shape == (2, 6)
    reference = np.asarray(Image.fromarray(pixels["gray"]).resize((2, 3), Image.Resampling.BILINEAR)) / 255
    assert_close(data.X[0], reference.ravel(), atol=1 / 255)
    assert_close(data.X[1], np.zeros(6), atol=0)


def test_subfolders_are_read_and_hidden_files_skipped(tmp_path, pixels):
    folder = save_images(tmp_path / "classes", {"a.png": pixels["gray"]})
    save_images(folder / "sub", {"z.jpg": pixels["gray"]})
    save_images(folder / ".cache", {"hidden.png": pixels["gray"]})
    assert read_data(folder).ids.tolist() == ["a.png", "sub/z.jpg"]


def test_truncated_or_corrupt_image_names_the_file(tmp_path):
    folder = save_images(tmp_path / "broken", {"good.png": np.zeros((64, 64, 3), np.uint8)})
    noisy = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(folder / "cut.png")
    (folder / "cut.png").write_bytes((folder / "cut.png").read_bytes()[:2000])
    with pytest.raises(InvalidInputError, match=r"Cannot read image .*cut.png: .*Replace or remove the file"):
        read_data(folder)
    (folder / "cut.png").unlink()
    (folder / "fake.jpg").write_bytes(b"this is no jpeg")
    with pytest.raises(InvalidInputError, match=r"Cannot read image .*fake.jpg"):
        read_data(folder)


def test_folder_without_images(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.txt").write_text("hello")
    with pytest.raises(InvalidInputError, match=r"Found no images in .*docs \(looked for .png, .jpg"):
        read_data(tmp_path / "docs")


# ---------------------------------------------------------------- streaming


def make_every_format(folder, values: np.ndarray, pixels) -> dict:
    """The same rows written in every readable format; image folders hold their own rows."""
    paths = {}
    for suffix in (".csv", ".parquet", ".npy"):
        paths[suffix] = folder / f"data{suffix}"
        write_data(paths[suffix], values, columns=["a", "b", "c"])
    paths[".npz"] = folder / "data.npz"
    np.savez(paths[".npz"], values=values)
    images = {f"{j:02d}.png": np.roll(pixels["gray"], j) for j in range(len(values))}
    paths["images"] = save_images(folder / "images", images)
    return paths


@pytest.mark.parametrize("kind", [".csv", ".parquet", ".npy", ".npz", "images"])
def test_chunks_concatenate_to_read_data(tmp_path, table, pixels, kind):
    path = make_every_format(tmp_path, table, pixels)[kind]
    whole = read_data(path)
    chunks = list(iter_chunks(path, chunk_rows=3))
    assert [len(chunk.X) for chunk in chunks] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([chunk.X for chunk in chunks]), whole.X)
    np.testing.assert_array_equal(np.concatenate([chunk.ids for chunk in chunks]), whole.ids)
    assert all(chunk.columns == whole.columns and chunk.image_shape == whole.image_shape for chunk in chunks)
    assert count_rows(path) == len(whole.X) == 7


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunk_ids_continue_without_an_id_column(tmp_path, suffix):
    path = tmp_path / f"plain{suffix}"
    frame = pd.DataFrame({"a": np.arange(5.0), "b": np.ones(5)})
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    chunks = list(iter_chunks(path, chunk_rows=2))
    assert [chunk.ids.tolist() for chunk in chunks] == [[0, 1], [2, 3], [4]]
    assert [chunk.X[:, 0].tolist() for chunk in chunks] == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("suffix", [".parquet", ".npy"])
def test_files_with_zero_rows(tmp_path, suffix):
    path = tmp_path / f"nothing{suffix}"
    write_data(path, np.ones((0, 2)), columns=["a", "b"])
    with pytest.raises(InvalidInputError, match="nothing.* has no data rows"):
        read_data(path)
    with pytest.raises(InvalidInputError, match="has no data rows"):
        list(iter_chunks(path, chunk_rows=2))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_chunks_select_columns(tmp_path, table, pixels, suffix):
    path = make_every_format(tmp_path, table, pixels)[suffix]
    names = ["c", "a"] if suffix != ".npy" else ["col2", "col0"]
    chunks = list(iter_chunks(path, chunk_rows=4, columns=names))
    assert chunks[0].columns == names
    np.testing.assert_array_equal(np.concatenate([chunk.X for chunk in chunks]), table[:, [2, 0]])


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_chunks_validate_every_chunk_with_absolute_rows(tmp_path, suffix):
    values = np.ones((10, 2))
    values[8, 1] = np.nan
    path = tmp_path / f"late_hole{suffix}"
    write_data(path, values, columns=["a", "b"])
    chunks = iter_chunks(path, chunk_rows=4)
    assert len(next(chunks).X) == 4
    with pytest.raises(InvalidInputError, match=r"Column '(b|col1)' .* first at row 8"):
        list(chunks)


def test_csv_chunks_catch_a_late_non_numeric_cell(tmp_path):
    path = tmp_path / "late_text.csv"
    path.write_text("a\n" + "1\n" * 5 + "oops\n")
    with pytest.raises(InvalidInputError, match="first non-numeric value 'oops' at row 5"):
        list(iter_chunks(path, chunk_rows=2))


@pytest.mark.parametrize("chunk_rows", [0, -1, 2.5, True])
def test_chunk_rows_must_be_positive(tmp_path, table, chunk_rows):
    write_data(tmp_path / "data.npy", table)
    with pytest.raises(InvalidParameterValue, match="'chunk_rows' parameter of iter_chunks"):
        iter_chunks(tmp_path / "data.npy", chunk_rows=chunk_rows)


def test_parquet_chunks_stop_at_row_groups_but_never_exceed_chunk_rows(tmp_path, table):
    path = tmp_path / "groups.parquet"
    pq.write_table(pa.table({"a": table[:, 0], "b": table[:, 1]}), path, row_group_size=3)
    chunks = list(iter_chunks(path, chunk_rows=2))
    assert max(len(chunk.X) for chunk in chunks) == 2
    np.testing.assert_array_equal(np.concatenate([chunk.X for chunk in chunks]), table[:, :2])
    np.testing.assert_array_equal(np.concatenate([chunk.ids for chunk in chunks]), np.arange(7))


def test_count_rows_skips_blank_lines_and_reads_only_metadata(tmp_path, table):
    (tmp_path / "gaps.csv").write_text("a\n1\n\n2\n\n")
    assert count_rows(tmp_path / "gaps.csv") == 2 == len(read_data(tmp_path / "gaps.csv").X)
    write_data(tmp_path / "data.parquet", table)
    assert count_rows(tmp_path / "data.parquet") == 7


# ---------------------------------------------------------------- chunk writer and write_data


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_chunk_writer_appends_chunks(tmp_path, table, suffix):
    path = tmp_path / f"out{suffix}"
    with open_chunk_writer(path, ["a", "b", "c"]) as writer:
        writer.write(table[:3])
        writer.write(table[3:3])
        writer.write(table[3:])
        assert not path.exists()  # nothing at the target until the block ends
    assert writer.n_rows == 7
    data = read_data(path)
    np.testing.assert_array_equal(data.X, table)
    np.testing.assert_array_equal(data.ids, np.arange(7))
    assert sorted(os.listdir(tmp_path)) == [f"out{suffix}"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_chunk_writer_leaves_nothing_when_interrupted(tmp_path, table, suffix):
    path = tmp_path / f"out{suffix}"
    with pytest.raises(RuntimeError, match="interrupted"):
        with open_chunk_writer(path, ["a", "b", "c"]) as writer:
            writer.write(table)
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []


def test_chunk_writer_keeps_the_old_target_when_interrupted(tmp_path, table):
    path = tmp_path / "out.csv"
    path.write_text("old")
    with pytest.raises(InvalidInputError, match="chunk with 2 columns"):
        with open_chunk_writer(path, ["a", "b", "c"], overwrite=True) as writer:
            writer.write(table)
            writer.write(table[:, :2])
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.csv"]


def test_chunk_writer_with_no_chunks(tmp_path):
    with open_chunk_writer(tmp_path / "none.npy", ["a", "b"]):
        pass
    assert np.load(tmp_path / "none.npy").shape == (0, 2)
    with open_chunk_writer(tmp_path / "none.csv", ["a", "b"]):
        pass
    assert (tmp_path / "none.csv").read_text() == "row,a,b\n"


def test_npy_writer_header_matches_numpy(tmp_path):
    values = np.arange(12_000, dtype=np.float64).reshape(-1, 3)
    with open_chunk_writer(tmp_path / "big.npy", ["a", "b", "c"]) as writer:
        for start in range(0, len(values), 1000):
            writer.write(values[start:start + 1000])
    loaded = np.load(tmp_path / "big.npy", mmap_mode="r")
    assert loaded.dtype == np.float64 and loaded.shape == (4000, 3)
    np.testing.assert_array_equal(loaded, values)


def test_write_data_unsupported_extension_writes_nothing(tmp_path, table):
    with pytest.raises(InvalidInputError, match=r"unsupported extension '.txt'. Use one of .csv, .parquet, .npy"):
        write_data(tmp_path / "out.txt", table)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"columns": ["a", "a", "b"]}, r"column names \['a'\] appear twice"),
        ({"columns": ["row", "b", "c"]}, r"column names \['row'\] appear twice \(the id column is 'row'\)"),
        ({"columns": ["a", "b"]}, "chunk with 3 columns"),
        ({"ids": [1, 2]}, r"ids have shape \(2,\) but the chunk has 7 rows"),
    ],
)
def test_write_data_bad_columns_or_ids(tmp_path, table, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        write_data(tmp_path / "out.csv", table, **kwargs)
    assert os.listdir(tmp_path) == []


def test_write_data_bad_arrays_and_id_name(tmp_path):
    with pytest.raises(InvalidInputError, match=r"need a 2-D array .* got shape \(3,\).*reshape\(-1, 1\)"):
        write_data(tmp_path / "out.csv", np.arange(3))
    with pytest.raises(InvalidInputError, match="dtype <U1; give numbers"):
        write_data(tmp_path / "out.csv", np.array([["a"]]))
    with pytest.raises(InvalidParameterValue, match="'id_name' parameter of write_data must be one of"):
        write_data(tmp_path / "out.csv", np.ones((2, 2)), id_name="index")
    assert os.listdir(tmp_path) == []


def test_values_beyond_float32_range_are_reported(tmp_path):
    np.save(tmp_path / "huge.npy", np.array([[1.0, 1e39], [2.0, -np.inf], [np.inf, 0.0]]))
    with pytest.raises(InvalidInputError, match=r"Column 'col0' .* 1 missing or infinite value\(s\) .*first at row 2; "
                       r"so do col1"):
        read_data(tmp_path / "huge.npy")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_values_beyond_float32_range_are_reported(tmp_path, suffix):
    path = tmp_path / f"huge{suffix}"
    write_data(path, np.array([[1.0], [1e39]]), columns=["x"])
    with pytest.raises(InvalidInputError, match=r"Column 'x' .* 1 missing or infinite value\(s\) .*first at row 1"):
        read_data(path)


def test_tsv_gzip_and_other_separators_read_as_csv(tmp_path):
    import gzip

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})
    expected = frame.to_numpy(dtype=np.float32)
    frame.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    frame.to_csv(tmp_path / "t.csv.gz", index=False)  # pandas compresses by the name
    frame.to_csv(tmp_path / "t.tsv.gz", sep="\t", index=False)
    frame.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    for name, sep in (("t.tsv", None), ("t.csv.gz", None), ("t.tsv.gz", None), ("semi.csv", ";")):
        data = read_data(tmp_path / name, sep=sep)
        assert data.columns == ["a", "b"], name
        np.testing.assert_array_equal(data.X, expected)
        assert [chunk.X.shape[0] for chunk in iter_chunks(tmp_path / name, chunk_rows=2, sep=sep)] == [2, 1]
        assert count_rows(tmp_path / name) == 3
    with gzip.open(tmp_path / "t.csv.gz", "rb") as file:
        assert file.read().startswith(b"a,b")
    with pytest.raises(InvalidInputError, match=r"looks separated by ';'.*Pass --sep ';'"):
        read_data(tmp_path / "semi.csv")
    np.save(tmp_path / "x.npy", expected)
    with pytest.raises(InvalidInputError, match="sep=';' applies only to text tables"):
        read_data(tmp_path / "x.npy", sep=";")


def test_write_images_refuses_two_rows_that_give_one_png_name_before_writing(tmp_path):
    folder = tmp_path / "out"
    with pytest.raises(InvalidInputError) as caught:
        write_images(folder, np.zeros((3, 4)), (1, 2, 2), ["a.jpg", "b.jpg", "a.png"])
    assert str(caught.value) == (
        f"Rows 0 and 2 would both be written to {str(folder / 'a.png')!r} (their ids 'a.jpg' and 'a.png' give one "
        "PNG name). Give every row a distinct id."
    )
    assert not folder.exists() or not any(folder.iterdir())
