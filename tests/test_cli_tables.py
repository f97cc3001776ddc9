"""The aekit command line on a table as users have it (text columns, empty cells): encode, decode and
reconstruct write the user's columns and categories; what cannot be done is refused in one line."""

import numpy as np
import pandas as pd
import pytest

import aekit
from aekit.cli import main
from conftest import QUICK_FIT, QUICK_FIT_2D, fit_flags
from conftest import cli_fails as fails
from conftest import cli_run as run

FIT_FLAGS = fit_flags(QUICK_FIT_2D)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A table of two numbers and a text column with empty cells (and a note the model leaves out: every value
    differs), and a model fitted on it by `aekit fit`."""
    folder = tmp_path_factory.mktemp("cli_tables")
    rng = np.random.default_rng(0)
    t = rng.normal(size=120)
    frame = pd.DataFrame({"a": t, "b": 2 * t + 0.1 * rng.normal(size=120),
                          "kind": np.where(t > 0, "up", "down").astype(object), "note": [f"n{i}" for i in range(120)]})
    frame.loc[[3, 7], "b"] = np.nan
    frame.loc[[5, 9], "kind"] = np.nan
    frame.to_csv(folder / "table.csv", index=False)
    assert main(["fit", str(folder / "table.csv"), "-o", str(folder / "model"), "--quiet", *FIT_FLAGS]) == 0
    return folder, pd.read_csv(folder / "table.csv"), aekit.load(folder / "model")


def test_the_fit_summary_counts_the_columns_the_model_reads(workspace, tmp_path, capsys):
    folder, _, _ = workspace
    code, out, _ = run(capsys, "fit", folder / "table.csv", "-o", tmp_path / "m", *FIT_FLAGS)
    assert code == 0
    assert "trained on 120 rows x 3 columns (mse loss)" in out  # not the file's 4: the note is left out
    assert "columns: 2 numeric, 1 categorical (kind); left out: note (identifier)" in out


def test_encode_writes_the_codes_of_every_row(workspace, tmp_path, capsys):
    folder, frame, model = workspace
    code, out, _ = run(capsys, "encode", folder / "model", folder / "table.csv", "-o", tmp_path / "z.csv")
    assert code == 0 and "120 rows" in out
    codes = pd.read_csv(tmp_path / "z.csv")
    assert list(codes.columns) == ["row", "latent0", "latent1"] and list(codes["row"]) == list(range(120))
    np.testing.assert_allclose(codes[["latent0", "latent1"]].to_numpy(), model.transform(frame), rtol=1e-5, atol=1e-6)


def test_decode_and_reconstruct_write_the_users_columns_and_categories(workspace, tmp_path, capsys):
    folder, frame, model = workspace
    assert run(capsys, "encode", folder / "model", folder / "table.csv", "-o", tmp_path / "z.parquet")[0] == 0
    assert run(capsys, "decode", folder / "model", tmp_path / "z.parquet", "-o", tmp_path / "d.csv")[0] == 0
    assert run(capsys, "reconstruct", folder / "model", folder / "table.csv", "-o", tmp_path / "r.parquet",
               "--keep-columns", "note")[0] == 0
    decoded, reconstructed = pd.read_csv(tmp_path / "d.csv"), pd.read_parquet(tmp_path / "r.parquet")
    assert list(decoded.columns) == ["row", "a", "b", "kind"]
    assert list(reconstructed.columns) == ["row", "note", "a", "b", "kind"]  # the kept column, then the model's
    assert list(reconstructed["note"]) == list(frame["note"])
    expected = model.reconstruct(frame)
    for written in (decoded, reconstructed.iloc[:, [0, 2, 3, 4]]):
        np.testing.assert_allclose(written[["a", "b"]].to_numpy(), expected[["a", "b"]].to_numpy(), rtol=1e-4,
                                   atol=1e-5)
        assert list(written["kind"]) == list(expected["kind"]) and set(written["kind"]) <= {"up", "down"}


def test_text_outputs_need_a_table_file(workspace, tmp_path, capsys):
    folder, _, _ = workspace
    err = fails(capsys, "reconstruct", folder / "model", folder / "table.csv", "-o", tmp_path / "r.npy")
    assert err == ("aekit reconstruct: error: aekit reconstruct writes this model's categorical columns (kind) as "
                   f"text, which {tmp_path / 'r.npy'} cannot hold. Write a .csv or .parquet file.")
    assert run(capsys, "encode", folder / "model", folder / "table.csv", "-o", tmp_path / "z.npy")[0] == 0  # numbers
    assert "Write a .csv or .parquet file" in fails(capsys, "decode", folder / "model", tmp_path / "z.npy", "-o",
                                                    tmp_path / "d.npy")
    assert not (tmp_path / "r.npy").exists() and not (tmp_path / "d.npy").exists()


def test_a_streaming_fit_of_a_table_model_is_refused_with_the_fix(workspace, tmp_path, capsys):
    folder, _, _ = workspace
    err = fails(capsys, "fit", folder / "table.csv", "-o", tmp_path / "m", "--streaming", *FIT_FLAGS)
    assert err == ("aekit fit: error: table.csv has text, identifier or date columns or missing cells, which a model "
                   "of the table reads in memory: drop --streaming (or give complete numeric columns with --columns).")
    assert not (tmp_path / "m").exists()
    # complete numeric columns of the same file stream as before
    assert run(capsys, "fit", folder / "table.csv", "-o", tmp_path / "m", "--streaming", "--columns", "a", "--quiet",
               *fit_flags(QUICK_FIT))[0] == 0
