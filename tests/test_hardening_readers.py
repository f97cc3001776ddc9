"""Messy files handed to the readers, tried systematically: a correct Dataset or InvalidInputError.

tests/test_io.py holds one example of each known problem; here hypothesis writes CSVs with any
cells (quoted numbers, text, NaN, inf, huge values, empty cells), ragged rows, blank lines, a BOM,
CRLF, other delimiters and any column names; Parquet files with any column types and nulls; NumPy
files with any dtype, shape or damaged bytes; images of every mode, truncated anywhere or not
images at all. When a file is well formed the values must be exactly the numbers written (checked
against Python's own float parsing), and streaming in chunks must agree with reading it whole.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from aekit.data import iter_chunks, read_data, write_data
from aekit.exceptions import InvalidInputError


def read_outcome(path: Path, **options):
    """read_data's Dataset (checked: float32, finite, ids per row, chunks agree) or None after InvalidInputError.

    Any other exception escapes and fails the test.
    """
    try:
        data = read_data(path, **options)
    except InvalidInputError as error:
        message = str(error)
        assert message and len(message) < 1500, message[:300]
        assert str(path) in message or path.name in message, f"the message does not name the input: {message}"
        with pytest.raises(InvalidInputError):  # streaming refuses the same file
            list(iter_chunks(path, chunk_rows=2, **options))
        return None
    assert data.X.dtype == np.float32 and data.X.ndim == 2 and data.X.flags.c_contiguous
    assert np.isfinite(data.X).all() and len(data.ids) == len(data.X) >= 1
    assert len(data.columns) == data.X.shape[1] >= 1
    chunks = list(iter_chunks(path, chunk_rows=2, **options))
    np.testing.assert_array_equal(np.concatenate([chunk.X for chunk in chunks]), data.X)
    return data


def in_folder(name: str, content: bytes):
    """Write ``content`` to a fresh temporary folder; use as ``with in_folder(...) as path``."""

    class _Scope:
        def __enter__(self) -> Path:
            self.folder = tempfile.TemporaryDirectory()
            path = Path(self.folder.name) / name
            path.write_bytes(content)
            return path

        def __exit__(self, *exc):
            self.folder.cleanup()

    return _Scope()


# ------------------------------------------------------------------------------------------ CSV
NUMBERS = st.floats(allow_nan=False, allow_infinity=False, min_value=-3e38, max_value=3e38) | st.integers(-10**9, 10**9)
ODD_CELLS = st.sampled_from(["", "nan", "NaN", "inf", "-inf", "1e400", "abc", "1,5", "0x10", '"', "é", "True", " 1 ",
                             '"1"', '"2.5"', "NA", "null", "\x00"])
NAME_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\"\x00"),
                    min_size=1, max_size=6)


def format_number(value, style: int) -> str:
    if isinstance(value, int):
        return str(value)
    return (repr(value), f"{value:.6e}", f'"{value!r}"')[style]


@st.composite
def well_formed_csvs(draw):
    """A header of unique, non-numeric names and rectangular rows of numbers: must read exactly."""
    n_columns = draw(st.integers(1, 4))
    names = draw(st.lists(NAME_TEXT.filter(lambda name: not _is_number(name) and name.strip() == name
                                           and name not in ("row", "file")),
                          min_size=n_columns, max_size=n_columns, unique=True))
    # documented: a lone column named like "a;b" is taken for a file with another delimiter
    names = [name.replace(";", "_").replace("|", "_").replace("\t", "_") for name in names]
    assume(len(set(names)) == len(names) and not any(_is_number(name) for name in names))
    rows = draw(st.lists(st.lists(NUMBERS, min_size=n_columns, max_size=n_columns), min_size=1, max_size=6))
    style = draw(st.integers(0, 2))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    blank_lines = draw(st.booleans())
    lines = [",".join(_quote(name) for name in names)]
    for row in rows:
        lines.append(",".join(format_number(value, style) for value in row))
        if blank_lines:
            lines.append("")
    text = newline.join(lines) + newline
    prefix = "\ufeff" if draw(st.booleans()) else ""
    return (prefix + text).encode("utf-8"), names, rows


def _quote(name: str) -> str:
    return f'"{name}"' if any(c in name for c in ',";') else name


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@given(csv=well_formed_csvs())
def test_well_formed_csv_reads_exactly_the_numbers_written(csv):
    content, names, rows = csv
    with in_folder("data.csv", content) as path:
        data = read_outcome(path)
        assert data is not None, content[:200]
        assert data.columns == names
        expected = np.array([[float(value) for value in row] for row in rows], dtype=np.float64).astype(np.float32)
        np.testing.assert_allclose(data.X, expected, rtol=1e-6, atol=0)  # one float32 rounding at most
        np.testing.assert_array_equal(data.ids, np.arange(len(rows)))


@st.composite
def messy_csvs(draw):
    """Any header, rows of any length, any cells, any delimiter, blank lines anywhere."""
    delimiter = draw(st.sampled_from([",", ",", ";", "\t", "|"]))
    header = draw(st.lists(NAME_TEXT | st.just("") | st.sampled_from(["a", "a", "1", "row", "é"]), min_size=1,
                           max_size=4))
    cells = NUMBERS.map(repr) | ODD_CELLS
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=5), max_size=6))
    lines = [delimiter.join(header), *(delimiter.join(row) for row in rows)]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), "")
    return ("\ufeff" if draw(st.booleans()) else "") + draw(st.sampled_from(["\n", "\r\n"])).join(lines)


@given(text=messy_csvs())
def test_messy_csv_reads_or_gives_an_error_naming_the_file(text):
    with in_folder("messy.csv", text.encode("utf-8")) as path:
        read_outcome(path)


@given(content=st.binary(max_size=200))
def test_random_bytes_as_csv_read_or_give_an_error_naming_the_file(content):
    with in_folder("bytes.csv", content) as path:
        read_outcome(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('a,b\n"1","2.5"\n', [[1, 2.5]]),
        ("\ufeffa,b\r\n1,2\r\n\r\n3,4\r\n", [[1, 2], [3, 4]]),
        ("a,b\n\n\n1,2\n\n", [[1, 2]]),
        ("a,b\nTrue,0\nFalse,1\n", [[1, 0], [0, 1]]),
        ("x\n1e-50\n", [[0.0]]),  # below float32's range: rounds to 0, as np.float32(1e-50)
    ],
    ids=["quoted-numbers", "bom-crlf-blank", "blank-lines", "booleans", "tiny"],
)
def test_documented_meanings_of_odd_but_valid_csvs(tmp_path, text, expected):
    path = tmp_path / "data.csv"
    path.write_bytes(text.encode())
    np.testing.assert_array_equal(read_data(path).X, np.array(expected, dtype=np.float32))


@pytest.mark.parametrize("separator", [";", "\t", "|"])
def test_other_delimiters_are_named_with_the_fix(tmp_path, separator):
    path = tmp_path / "data.csv"
    path.write_text(f"a{separator}b\n1{separator}2\n")
    expected = f"one column named {f'a{separator}b'!r}: it looks separated by {separator!r}"
    with pytest.raises(InvalidInputError, match=re.escape(expected)):
        read_data(path)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("a,b\n1,2\n3\n", r"Column 'b' .* 1 missing or infinite value\(s\) .*first at row 1"),
        ("a\n1e39\n", r"Column 'a' .* missing or infinite"),
        ('a\n"1,000"\n', r"Column 'a' .* not numeric .* first non-numeric value '1,000'"),
        ("a,b\n1,\x002\n", r"Column 'b' .* not numeric"),
        ('a,b\n"1,2\n', "not a well-formed UTF-8 CSV"),
    ],
    ids=["short-row", "beyond-float32", "thousands-separator", "nul-byte", "unclosed-quote"],
)
def test_csv_problems_name_the_column_or_the_file(tmp_path, text, pattern):
    path = tmp_path / "data.csv"
    path.write_bytes(text.encode())
    with pytest.raises(InvalidInputError, match=pattern):
        read_data(path)


# ------------------------------------------------------------------------------------------ Parquet
PARQUET_COLUMNS = {
    "float64": (pa.float64(), True), "float32": (pa.float32(), True), "float16": (pa.float16(), True),
    "int8": (pa.int8(), True), "uint64": (pa.uint64(), True), "bool": (pa.bool_(), True),
    "dictionary": (pa.dictionary(pa.int8(), pa.float64()), True),
    "string": (pa.string(), False), "list": (pa.list_(pa.float64()), False),
    "struct": (pa.struct([("x", pa.float64())]), False), "date": (pa.date32(), False),
    "decimal": (pa.decimal128(6, 2), False), "binary": (pa.binary(), False),
}


def parquet_column(kind: str, n_rows: int, with_nulls: bool, rng: np.random.Generator) -> pa.Array:
    values = rng.integers(0, 100, n_rows)
    mask = np.zeros(n_rows, dtype=bool)
    mask[:1] = with_nulls
    numeric = {"float64": np.float64, "float32": np.float32, "float16": np.float16, "int8": np.int8,
               "uint64": np.uint64, "bool": np.bool_}
    if kind == "dictionary":
        return pa.array(values.astype(np.float64), mask=mask).dictionary_encode()
    if kind in numeric:
        return pa.array(values.astype(numeric[kind]), mask=mask)
    python = {"string": [str(v) for v in values], "list": [[float(v)] for v in values],
              "struct": [{"x": float(v)} for v in values], "date": [int(v) for v in values],
              "decimal": [Decimal(int(v)) for v in values], "binary": [bytes([v]) for v in values]}[kind]
    return pa.array([None if hole else value for value, hole in zip(python, mask, strict=True)],
                    type=PARQUET_COLUMNS[kind][0])


@given(
    kinds=st.lists(st.sampled_from(sorted(PARQUET_COLUMNS)), min_size=1, max_size=4),
    nulls=st.lists(st.booleans(), min_size=4, max_size=4),
    n_rows=st.integers(0, 5),
)
def test_parquet_with_any_column_types_and_nulls(kinds, nulls, n_rows):
    rng = np.random.default_rng(0)
    columns = [parquet_column(kind, n_rows, nulls[j], rng) for j, kind in enumerate(kinds)]
    table = pa.table({f"c{j}": column for j, column in enumerate(columns)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    with in_folder("data.parquet", buffer.getvalue()) as path:
        data = read_outcome(path)
    usable = all(PARQUET_COLUMNS[kind][1] for kind in kinds) and not any(nulls[: len(kinds)]) and n_rows > 0
    assert (data is not None) == usable
    if usable:
        expected = np.column_stack([np.asarray(column.to_pylist(), dtype=np.float64) for column in columns])
        np.testing.assert_array_equal(data.X, expected.astype(np.float32))


@given(position=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_parquet_with_any_byte_changed_or_cut(position, byte):
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": np.arange(20.0), "b": np.arange(20)}), buffer)
    original = buffer.getvalue()
    position %= len(original)
    for damaged in (original[:position], original[:position] + bytes([byte]) + original[position + 1:]):
        with in_folder("data.parquet", damaged) as path:
            read_outcome(path)


# ------------------------------------------------------------------------------------------ NumPy
@given(
    array=hnp.arrays(
        st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.uint64, np.bool_, np.complex64, "U2",
                         "datetime64[D]", [("a", "f4")]]),
        hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=3),
    )
)
def test_npy_of_any_dtype_and_shape(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    with in_folder("data.npy", buffer.getvalue()) as path:
        data = read_outcome(path)
    if data is not None:
        assert array.dtype.kind in "biuf" and array.ndim in (2, 3, 4) and array.shape[0] >= 1
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(data.X, array.reshape(len(array), -1).astype(np.float32))


@given(position=st.integers(0, 10_000), byte=st.integers(0, 255), suffix=st.sampled_from([".npy", ".npz"]))
def test_numpy_files_with_any_byte_changed_or_cut(position, byte, suffix):
    buffer = io.BytesIO()
    values = np.arange(24.0).reshape(6, 4)
    np.save(buffer, values) if suffix == ".npy" else np.savez_compressed(buffer, values=values)
    original = buffer.getvalue()
    position %= len(original)
    for damaged in (original[:position], original[:position] + bytes([byte]) + original[position + 1:]):
        with in_folder(f"data{suffix}", damaged) as path:
            read_outcome(path)


# ------------------------------------------------------------------------------------------ images
IMAGE_MODES = ["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "CMYK"]
FORMATS = {".png": ("L", "RGB", "RGBA", "LA", "P", "1", "I;16"), ".bmp": ("L", "RGB", "P", "1"),
           ".jpg": ("L", "RGB", "CMYK"), ".pgm": ("L",), ".ppm": ("RGB",)}


def image_bytes(mode: str, suffix: str, size: tuple[int, int], seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.new(mode, size)
    channels = len(image.getbands())
    top = 65535 if mode == "I;16" else 255
    values = rng.integers(0, top + 1, (size[1], size[0], channels))
    if mode == "I;16":
        image = Image.fromarray(values[..., 0].astype(np.uint16))
    elif mode in ("L", "RGB", "RGBA", "LA", "CMYK"):
        image = Image.fromarray(values.astype(np.uint8).squeeze(-1) if channels == 1 else values.astype(np.uint8),
                                mode=mode)
    else:
        image = Image.fromarray(values[..., 0].astype(np.uint8), mode="L").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format={".jpg": "JPEG", ".pgm": "PPM", ".ppm": "PPM"}.get(suffix, suffix[1:].upper()))
    return buffer.getvalue()


@st.composite
def images(draw):
    suffix = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(FORMATS[suffix]))
    size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    return suffix, mode, size, image_bytes(mode, suffix, size, draw(st.integers(0, 100)))


@given(image=images(), cut=st.none() | st.integers(0, 10_000))
def test_images_of_any_mode_read_as_pillow_sees_them_or_give_an_error_when_cut(image, cut):
    suffix, mode, size, content = image
    if cut is not None:
        content = content[: cut % len(content)]
    with tempfile.TemporaryDirectory() as where:
        folder = Path(where) / "images"
        folder.mkdir()
        (folder / f"x{suffix}").write_bytes(content)
        data = read_outcome(folder)
    if cut is None:
        assert data is not None
        assert data.image_shape[1:] == (size[1], size[0]) and data.X.min() >= 0 and data.X.max() <= 1
        with Image.open(io.BytesIO(content)) as reference:
            if reference.mode.startswith("I"):
                expected = np.asarray(reference, dtype=np.float64)[None] / 65535
            else:
                converted = reference.convert("L" if data.image_shape[0] == 1 else "RGB")
                expected = np.asarray(converted, dtype=np.float64).reshape(size[1], size[0], -1).transpose(2, 0, 1)
                expected = expected / 255
        np.testing.assert_allclose(data.X[0], expected.ravel(), atol=1e-6, rtol=0)


@given(content=st.binary(max_size=300), suffix=st.sampled_from([".png", ".jpg", ".bmp", ".pgm"]))
def test_random_bytes_named_as_images_give_an_error_naming_the_file(content, suffix):
    with tempfile.TemporaryDirectory() as where:
        folder = Path(where) / "images"
        folder.mkdir()
        (folder / f"junk{suffix}").write_bytes(content)
        if read_outcome(folder) is not None:  # only real images can read, e.g. a tiny valid PGM
            with Image.open(folder / f"junk{suffix}") as image:
                image.load()


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (64, 64)).save(folder / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 4096 pixels is then over twice the limit
    with pytest.raises(InvalidInputError, match=r"Cannot read image .*bomb.png: .*decompression bomb"):
        read_data(folder)



# ------------------------------------------------------------------------------------------ the CLI
@given(text=messy_csvs())
def test_the_cli_turns_any_messy_csv_into_a_model_or_one_line_and_exit_2(text):
    """`aekit fit` on any messy CSV: exit 0 with a model, or one line on stderr and exit 2 (never a traceback)."""
    import contextlib
    import io as text_io

    from aekit.cli import main

    with tempfile.TemporaryDirectory() as where:
        path = Path(where) / "messy.csv"
        path.write_text(text, encoding="utf-8")
        stderr = text_io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(text_io.StringIO()):
            code = main(["fit", str(path), "-o", str(Path(where) / "model"), "--epochs", "1", "--hidden", "3",
                         "--latent-dim", "1", "--device", "cpu", "--quiet"])
        message = stderr.getvalue()
        if code == 0:
            assert (Path(where) / "model" / "manifest.json").is_file()
        else:
            assert code == 2 and message.startswith("aekit fit: error: ") and message.count("\n") == 1, message
            assert "Traceback" not in message and not (Path(where) / "model").exists()


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("data.csv", b"a;b\n1;2\n", "looks separated by ';'"),
        ("data.csv", b"", "is empty"),
        ("data.parquet", b"PAR1 not really", "cannot be read as a Parquet file"),
        ("data.npy", b"\x93NUMPY garbage", "cannot be read as a NumPy .npy file"),
        ("data.npz", b"PK\x03\x04 garbage", "cannot be read as a NumPy .npz file"),
        ("data.txt", b"1,2\n", "unsupported extension '.txt'"),
    ],
    ids=["semicolons", "empty", "fake-parquet", "fake-npy", "fake-npz", "unknown-extension"],
)
def test_the_cli_reports_unreadable_inputs_in_one_line(tmp_path, capsys, name, content, pattern):
    from aekit.cli import main

    (tmp_path / name).write_bytes(content)
    code = main(["fit", str(tmp_path / name), "-o", str(tmp_path / "model"), "--epochs", "1", "--quiet"])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and re.search(pattern, error), error
    assert error.startswith("aekit fit: error: ") and sorted(os.listdir(tmp_path)) == [name]


@pytest.mark.parametrize("text", [" ", "\t", " \n \n"])
def test_a_csv_of_blanks_only_is_named(tmp_path, text):
    """Found by `make fuzz`: pandas' EmptyDataError escaped as a traceback."""
    path = tmp_path / "blank.csv"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=r"blank.csv (is not a well-formed UTF-8 CSV file|is empty)"):
        read_data(path)


@pytest.mark.parametrize("text", ["\t\n1,5\n0.0\n", " \na,b\n1,2\n"])
def test_a_header_of_blanks_that_pandas_skips_is_named(tmp_path, text):
    """Found by `make fuzz`: the csv module and pandas disagreed on the header, and pandas' error escaped."""
    path = tmp_path / "blank-header.csv"
    path.write_text(text)
    try:
        data = read_data(path)
    except InvalidInputError as error:
        assert "blank-header.csv" in str(error)
    else:
        assert data.X.shape[1] == len(data.columns)


# ------------------------------------------------------------------------- decoders and special files
ALLOWED_FORMATS = {"PNG", "JPEG", "BMP", "PPM"}
# Every format this Pillow can write a small L/RGB image in; all but the four above must be refused.
FOREIGN_FORMATS = ["EPS", "GIF", "TIFF", "ICO", "TGA", "PCX", "SGI", "IM", "WEBP", "DDS", "QOI", "PDF", "JPEG2000",
                   "SPIDER", "XBM"]


@pytest.fixture(scope="module")
def fake_ghostscript(tmp_path_factory):
    """A `gs` (and `gswin64c`) on PATH that records being run; yields (PATH value, marker file)."""
    folder = tmp_path_factory.mktemp("bin")
    marker = folder / "ran"
    for name in ("gs", "gswin32c", "gswin64c"):
        script = folder / name
        script.write_text(f"#!/bin/sh\necho \"$@\" >> '{marker}'\nexit 1\n")
        script.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}", marker


def foreign_image(image_format: str, mode: str, seed: int) -> bytes | None:
    """A small image written by Pillow in `image_format`, or None when this Pillow cannot write it."""
    values = np.random.default_rng(seed).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    image = Image.fromarray(values[..., 0] if mode == "L" else values, mode=mode)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=image_format)
    except (KeyError, OSError, ValueError):  # format or mode not supported by this Pillow build
        return None
    return buffer.getvalue()


def test_an_eps_named_png_never_runs_ghostscript(tmp_path, monkeypatch, fake_ghostscript):
    path_value, marker = fake_ghostscript
    monkeypatch.setenv("PATH", path_value)
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(foreign_image("EPS", "L", 0))
    Image.new("L", (5, 6)).save(folder / "b.png")
    with pytest.raises(InvalidInputError, match=r"Cannot read image .*a\.png: its content is not a PNG, JPEG"):
        read_data(folder)
    assert not marker.exists(), marker.read_text()


@given(image_format=st.sampled_from(sorted(ALLOWED_FORMATS) + FOREIGN_FORMATS), mode=st.sampled_from(["L", "RGB"]),
       suffix=st.sampled_from([".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm"]), seed=st.integers(0, 100),
       cut=st.none() | st.integers(0, 5000))
def test_images_in_any_format_under_any_name_read_only_through_the_allowed_decoders(
        fake_ghostscript, image_format, mode, suffix, seed, cut):
    content = foreign_image(image_format, mode, seed)
    assume(content is not None)
    if cut is not None:
        content = content[: cut % len(content)]
    path_value, marker = fake_ghostscript
    previous = os.environ["PATH"]
    os.environ["PATH"] = path_value
    try:
        with tempfile.TemporaryDirectory() as where:
            folder = Path(where) / "images"
            folder.mkdir()
            (folder / f"x{suffix}").write_bytes(content)
            data = read_outcome(folder)
    finally:
        os.environ["PATH"] = previous
    assert not marker.exists(), f"{image_format} ran an external program: {marker.read_text()}"
    if data is not None:
        assert image_format in ALLOWED_FORMATS, f"a {image_format} image was decoded"
    elif cut is None:
        assert image_format not in ALLOWED_FORMATS, f"a whole {image_format} image was refused"


def test_an_image_over_the_pixel_budget_is_refused_before_decoding(tmp_path):
    from aekit.data import MAX_IMAGE_PIXELS

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("1", (4097, 4096)).save(folder / "big.png")  # a few KB on disk, one pixel over 4096x4096
    Image.new("L", (8, 8)).save(folder / "small.png")
    assert 4097 * 4096 > MAX_IMAGE_PIXELS == 4096 * 4096
    with pytest.raises(InvalidInputError, match=r"big\.png declares 4096x4097 pixels .* limit of 16,777,216"):
        read_data(folder, image_size=(8, 8))
    (folder / "big.png").unlink()
    with pytest.raises(InvalidInputError, match=r"image size 5000x4000 is 20,000,000 pixels, over aekit's limit"):
        read_data(folder, image_size="5000x4000")
    assert read_data(folder, image_size=(4096, 4096)).X.shape == (1, 4096 * 4096)  # the budget itself is allowed


def test_image_pixel_names_are_not_stored_as_strings(tmp_path):
    import tracemalloc

    from aekit.data import PixelNames

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (1500, 1500)).save(folder / "one.png")
    tracemalloc.start()
    try:
        data = read_data(folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the pixels are 9 MB of float32; 2.25 million "px..." strings would add over 100 MB
    assert peak < 40e6, f"reading one 1500x1500 image peaked at {peak / 1e6:.0f} MB"
    assert isinstance(data.columns, PixelNames) and len(data.columns) == 1500 * 1500
    assert data.columns[-1] == "px2249999" and data.columns[:2] == ["px0", "px1"]
    names = PixelNames(3)
    assert list(names) == ["px0", "px1", "px2"] and names.index("px2") == 2 and "px3" not in names


@pytest.mark.parametrize("columns", [None, ["a"]], ids=["all", "selected"])
def test_a_csv_whose_rows_are_longer_than_its_header_is_refused(tmp_path, columns):
    path = tmp_path / "short-header.csv"
    path.write_text("a,b\n1,2,3\n4,5,6\n")
    with pytest.raises(InvalidInputError, match=r"short-header\.csv has rows with more cells than its header has"):
        read_data(path, columns=columns)
    with pytest.raises(InvalidInputError, match="more cells than its header"):
        list(iter_chunks(path, chunk_rows=1, columns=columns))


def _outcome_within(seconds: float, function, *args):
    """Run `function(*args)` in a thread: ("error", message), ("value", result), or ("hung", None)."""
    import threading

    outcome = {}

    def attempt():
        try:
            outcome["value"] = function(*args)
        except Exception as error:  # noqa: BLE001 - the test looks at which kind
            outcome["error"] = error

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return "hung", None
    return ("error", outcome["error"]) if "error" in outcome else ("value", outcome["value"])


def test_a_fifo_named_csv_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    for function in (read_data, count_rows_of):
        kind, error = _outcome_within(60, function, fifo)
        if kind == "hung":  # release the reader blocked in open() before failing
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        assert kind == "error" and isinstance(error, InvalidInputError), (kind, error)
        assert "pipe.csv is a FIFO (named pipe), not a regular file" in str(error)


def count_rows_of(path):
    from aekit.data import count_rows

    return count_rows(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy", ".npz"])
def test_a_device_named_as_data_is_refused(tmp_path, suffix):
    link = tmp_path / f"device{suffix}"
    link.symlink_to("/dev/null")
    with pytest.raises(InvalidInputError, match=rf"device\{suffix} is a character device, not a regular file"):
        read_data(link)


def test_a_parquet_id_column_of_lists_is_refused(tmp_path):
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"row": pa.array([[1, 2], [3]]), "x": [1.0, 2.0], "y": [3.0, 1.0]}), path)
    with pytest.raises(InvalidInputError, match=r"id column 'row' in .*ids\.parquet has Parquet type list<"):
        read_data(path)


def test_an_image_folder_1100_levels_deep_reads():
    # Not in tmp_path: pytest (and shutil.rmtree) remove folders recursively and fail on this depth.
    folder = deepest = Path(tempfile.mkdtemp()) / "images"
    try:
        folder.mkdir()
        for _ in range(1100):  # level by level: mkdir(parents=True) itself recurses too deep
            deepest = deepest / "d"
            deepest.mkdir()
        Image.new("L", (4, 3), 255).save(folder / "a.png")
        Image.new("L", (4, 3), 0).save(deepest / "b.png")
        data = read_data(folder)  # walked without recursion: no RecursionError
        assert data.ids.tolist() == ["a.png", "d/" * 1100 + "b.png"]
        np.testing.assert_array_equal(data.X, [[1.0] * 12, [0.0] * 12])
    finally:
        _remove_deep(folder.parent, deepest)


def _remove_deep(top: Path, deepest: Path) -> None:
    """Remove `top`, holding one chain of folders down to `deepest`, from the bottom up without recursion."""
    for file in (top / "images" / "a.png", deepest / "b.png"):
        file.unlink(missing_ok=True)
    while deepest != top.parent:
        if deepest.exists():
            deepest.rmdir()
        deepest = deepest.parent


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_image_names_that_are_not_utf8_are_written_escaped(tmp_path, suffix):
    from aekit.workflows import encode_file

    folder = tmp_path / "images"
    folder.mkdir()
    try:
        with open(os.path.join(os.fsencode(folder), b"caf\xe9.png"), "wb") as file:
            Image.new("L", (4, 3), 10).save(file, format="PNG")
    except OSError:
        pytest.skip("this file system refuses file names that are not UTF-8")
    Image.new("L", (4, 3), 200).save(folder / "b.png")
    import aekit

    model = aekit.Autoencoder(latent_dim=1, hidden_dims=[4], epochs=1, random_state=0).fit(read_data(folder).X)
    encode_file(model, folder, tmp_path / f"codes{suffix}")
    assert read_data(tmp_path / f"codes{suffix}").ids.tolist() == ["b.png", "caf\\xe9.png"]


SPECIAL_FILES = ["fifo", "/dev/zero", "/dev/urandom", "/dev/null", "socket", "folder", "loop", "dangling", "regular"]


@given(kind=st.sampled_from(SPECIAL_FILES), suffix=st.sampled_from([".csv", ".parquet", ".npy", ".npz"]),
       reader=st.sampled_from(["read_data", "iter_chunks", "count_rows", "read_labels"]))
def test_special_files_under_any_data_name_are_refused_without_blocking(kind, suffix, reader):
    import socket

    from aekit.data import count_rows, read_labels

    functions = {"read_data": read_data, "iter_chunks": lambda path: list(iter_chunks(path, chunk_rows=2)),
                 "count_rows": count_rows, "read_labels": lambda path: read_labels(path, "a")}
    with tempfile.TemporaryDirectory() as where:
        path = Path(where) / f"data{suffix}"
        listener = None
        if kind == "fifo":
            os.mkfifo(path)
        elif kind.startswith("/dev/"):
            path.symlink_to(kind)
        elif kind == "socket":
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(str(path))
        elif kind == "folder":
            path.mkdir()
        elif kind == "loop":
            path.symlink_to(path)
        elif kind == "dangling":
            path.symlink_to(Path(where) / "missing")
        else:
            write_data(path if suffix != ".npz" else Path(where) / "x.npy", np.ones((3, 2)), columns=["a", "b"])
            if suffix == ".npz":
                np.savez(path, a=np.ones((3, 2)))
        try:
            outcome, value = _outcome_within(60, functions[reader], path)
            if outcome == "hung" and kind == "fifo":  # release the reader blocked in open() before failing
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        finally:
            if listener is not None:
                listener.close()
    assert outcome != "hung", f"{reader} blocked on {kind}"
    if kind in ("regular", "folder"):  # a folder is read as a folder of images (here: none, count_rows 0)
        assert outcome == "value" or isinstance(value, InvalidInputError), value  # e.g. no column 'a' in .npz
    else:
        assert outcome == "error" and isinstance(value, InvalidInputError), (kind, value)
        assert path.name in str(value), value


def png_declaring(width: int, height: int, mode: str) -> bytes:
    """A small valid PNG whose header (IHDR) is rewritten to declare width x height, CRC fixed."""
    buffer = io.BytesIO()
    Image.new(mode, (3, 2)).save(buffer, format="PNG")
    content = bytearray(buffer.getvalue())
    start = 8 + 8  # signature, then the IHDR chunk's length and type
    content[start:start + 8] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    crc = zlib_crc(bytes(content[start - 4:start + 13]))
    content[start + 13:start + 17] = crc.to_bytes(4, "big")
    return bytes(content)


def zlib_crc(data: bytes) -> int:
    import zlib

    return zlib.crc32(data) & 0xFFFFFFFF


@given(width=st.integers(1, 2**31 - 1), height=st.integers(1, 2**31 - 1), mode=st.sampled_from(["1", "L", "RGB"]))
def test_png_headers_declaring_any_size_cost_nothing_beyond_the_budget(width, height, mode):
    from aekit.data import MAX_IMAGE_PIXELS

    with tempfile.TemporaryDirectory() as where:
        folder = Path(where) / "images"
        folder.mkdir()
        (folder / "bomb.png").write_bytes(png_declaring(width, height, mode))
        if width * height > MAX_IMAGE_PIXELS:
            # beyond twice its own limit Pillow refuses first, in its words
            refusal = r"bomb\.png(:| declares).*(over aekit's limit|decompression bomb)"
            with pytest.raises(InvalidInputError, match=refusal):
                read_data(folder)
        else:  # the data is a 3x2 image's: the decoder says it is cut short
            read_outcome(folder)


def test_chunks_of_images_stay_under_the_byte_budget(tmp_path, monkeypatch):
    import aekit.data.images

    assert aekit.data.images.IMAGE_CHUNK_BYTES == 256 * 2**20  # 65,536 images of 4096x4096 would be 4 TB
    monkeypatch.setattr(aekit.data.images, "IMAGE_CHUNK_BYTES", 4 * 4 * 64)  # here: 4 images of 8x8 gray
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(6):
        Image.new("L", (8, 8), 40 * i).save(folder / f"{i}.png")
    chunks = list(iter_chunks(folder, chunk_rows=65536))
    assert [len(chunk.X) for chunk in chunks] == [4, 2]
    np.testing.assert_array_equal(np.rint(np.concatenate([chunk.X for chunk in chunks])[:, 0] * 255), 40 * np.arange(6))
    assert len(read_data(folder).X) == 6  # a whole read is one chunk, as asked
