"""``aekit compare-pca`` and ``aekit sweep``: tables, --json, --plot, one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from aekit.cli import main


@pytest.fixture(scope="module")
def digits_csv(tmp_path_factory) -> tuple[str, np.ndarray]:
    X = load_digits().data[:400]
    path = tmp_path_factory.mktemp("data") / "digits.csv"
    pd.DataFrame(X, columns=[f"p{j}" for j in range(X.shape[1])]).to_csv(path, index=False)
    return str(path), X


def run_json(capsys, argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_compare_pca_json_matches_a_pca_computed_here(capsys, digits_csv):
    path, X = digits_csv
    summary = run_json(capsys, ["compare-pca", path, "--latent-dim", "3", "--linear-only", "--scaler", "none"])
    assert set(summary["errors"]) == {"PCA", "linear autoencoder"}
    assert summary["n_train"] + summary["n_heldout"] == len(X)
    # PCA is fitted on the training rows of the seeded split: recompute it from the same split
    from sklearn.model_selection import train_test_split

    train, _ = train_test_split(X, test_size=0.2, random_state=0)
    pca = PCA(3).fit(train)
    np.testing.assert_allclose(summary["explained_variance_ratio"], pca.explained_variance_ratio_, rtol=1e-4)
    assert summary["max_principal_angle_deg"] < 1.0


def test_compare_pca_prints_a_table(capsys, digits_csv):
    path, _ = digits_csv
    assert main(["compare-pca", path, "--latent-dim", "2", "--epochs", "3", "--hidden", "16"]) == 0
    out = capsys.readouterr().out
    for text in ("PCA", "linear autoencoder", "autoencoder", "principal angles", "explained variance"):
        assert text in out


def test_compare_pca_takes_epochs_auto(capsys, digits_csv):
    path, _ = digits_csv
    summary = run_json(capsys, ["compare-pca", path, "--latent-dim", "2", "--epochs", "auto", "--hidden", "8"])
    errors = summary["errors"]["autoencoder"]
    assert summary["latent_dim"] == 2 and np.isfinite([errors["train"], errors["heldout"]]).all()


def test_sweep_json_table_and_plot(capsys, digits_csv, tmp_path):
    path, X = digits_csv
    plot = tmp_path / "sweep.png"
    summary = run_json(capsys, ["sweep", path, "--dims", "4,2", "--epochs", "3", "--hidden", "16",
                                "--plot", str(plot)])
    assert summary["dims"] == [2, 4] and summary["suggested_dim"] in (2, 4)
    assert summary["plot"] == str(plot)
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 100
    # PCA's held-out error is in the model's scaled space (pixels: centred, one scale for all)
    from sklearn.model_selection import train_test_split

    train, heldout = train_test_split(X, test_size=0.2, random_state=0)
    centre, scale = train.mean(axis=0), np.sqrt(train.var(axis=0).mean())
    pca = PCA(2).fit((train - centre) / scale)
    scaled = (heldout - centre) / scale
    expected = np.mean((pca.inverse_transform(pca.transform(scaled)) - scaled) ** 2)
    np.testing.assert_allclose(summary["pca_heldout_mse"][0], expected, rtol=1e-4)

    assert main(["sweep", path, "--dims", "2", "--epochs", "2", "--hidden", "8"]) == 0
    assert "suggested d = 2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare-pca", "{path}", "--latent-dim", "65"], "error: --latent-dim must be an int in the range [1, 64]"),
        (["compare-pca", "{path}", "--latent-dim", "2", "--scaler", "stndard"], "Did you mean 'standard'?"),
        (["sweep", "{path}", "--dims", "2,100"], "aekit sweep: error: --dims must be"),
        (["sweep", "{path}", "--tolerance", "-1"], "aekit sweep: error: --tolerance must be"),
        (["sweep", "{missing}", "--dims", "2"], "missing.csv"),
    ],
)
def test_errors_are_one_line_on_stderr_with_exit_code_2(capsys, digits_csv, tmp_path, argv, message):
    argv = [arg.format(path=digits_csv[0], missing=tmp_path / "missing.csv") for arg in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err


def test_bad_dims_text_is_a_usage_error(capsys, digits_csv):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", digits_csv[0], "--dims", "2,x"])
    assert exit_info.value.code == 2
    assert "expected comma-separated positive latent dimensions" in capsys.readouterr().err
