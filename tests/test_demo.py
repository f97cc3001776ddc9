import json
import os

import pytest

import aekit
from aekit.cli import main


def test_demo_trains_beats_pca_and_saves_a_loadable_model(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "model"), "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["autoencoder_mse"] < summary["pca_mse"]  # non-linear AE beats PCA at the same latent_dim
    assert aekit.load(tmp_path / "model").latent_dim == summary["latent_dim"] == 10
    # the pictures and the report, written beside the model and named in the summary
    assert sorted(summary["plots"]) == [
        "ae_vs_pca", "error_histogram", "latent", "reconstructions", "report", "training_curves"
    ]
    assert all(os.path.getsize(path) > 1000 for path in summary["plots"].values())
    assert os.path.dirname(summary["plots"]["report"]) == str(tmp_path / "model_plots")
    # the report shows the comparison the console prints: the same held-out figures and ratio
    report = open(summary["plots"]["report"], encoding="utf-8").read()
    assert summary["ratio"] == summary["autoencoder_mse"] / summary["pca_mse"]
    for value in (summary["autoencoder_mse"], summary["pca_mse"], summary["ratio"]):
        assert f"<td>{value:.6g}</td>" in report, value
    assert "<th>random_state</th><td>0</td>" in report  # the seed as given


def test_cli_usage_error_is_one_line_and_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--no-such-flag"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --no-such-flag" in err
