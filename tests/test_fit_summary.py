"""``aekit fit``'s summary says which weights were kept and their held-out loss, not a discarded epoch's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aekit import load
from aekit.cli.fit import describe
from aekit.training.config import kept_losses
from aekit.workflows import fit_file, model_info


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 3)) @ rng.normal(size=(3, 8)) + 0.3 * rng.normal(size=(160, 8))
    path = tmp_path_factory.mktemp("summary") / "table.csv"
    pd.DataFrame(X, columns=[f"x{i}" for i in range(8)]).to_csv(path, index=False)
    return path


def test_when_pca_is_kept_the_summary_gives_pcas_loss_and_no_discarded_one(table, tmp_path):
    summary = fit_file(table, tmp_path / "m", latent_dim=3, epochs=3, lr=1e-12, random_state=0)
    history = load(tmp_path / "m").history_
    assert summary["kept_epoch"] == 0 and history["best_epoch"] == 0
    assert summary["kept_val_loss"] == pytest.approx(history["pca"]["val_loss"], rel=1e-12)
    assert summary["kept_train_loss"] is None
    text = describe(summary)
    assert f"kept PCA (epoch 0): validation loss {history['pca']['val_loss']:.5g}" in text
    assert "final" not in text and "best epoch" not in text
    assert f"the model is PCA (d=3): PCA's validation loss is {history['pca']['val_loss']:.5g}" in text


def test_an_early_stopped_fit_reports_its_kept_epochs_losses():
    history = {"train_loss": [0.5, 0.3, 0.2, 0.19], "val_loss": [0.6, 0.4, 0.45, 0.5], "best_epoch": 2,
               "initial_loss": None}
    assert kept_losses(history, early_stopping=True) == {"kept_epoch": 2, "kept_train_loss": 0.3,
                                                         "kept_val_loss": 0.4}
    assert kept_losses(history, early_stopping=False) == {"kept_epoch": 4, "kept_train_loss": 0.19,
                                                          "kept_val_loss": 0.5}
    summary = {"n_rows": 1, "n_features": 1, "loss": "mse", "epochs": 4, "stop_reason": "early_stopping",
               "seconds": 1.0, "threshold": 2.0, "contamination": 0.05, "model_dir": "m",
               **kept_losses(history, early_stopping=True)}
    text = describe(summary)
    assert text.startswith("trained on 1 row x 1 feature (mse loss)\n")
    assert "4 epochs (stop: early_stopping); kept epoch 2: train loss 0.3, validation loss 0.4" in text


def test_the_summary_says_which_scores_the_threshold_was_read_off_and_what_it_flags():
    summary = {"n_rows": 61, "n_features": 12, "loss": "mse", "epochs": 4, "stop_reason": "max_epochs",
               "kept_epoch": 4, "kept_train_loss": 0.1, "kept_val_loss": 0.2, "seconds": 1.0, "threshold": 2.0,
               "contamination": 0.05, "model_dir": "m",
               "threshold_rule": {"scores": "all rows", "n_scores": 61, "n_rows_checked": 61,
                                  "training_share": 3 / 61}}
    # sqrt(0.05 * 0.95 / 61) = 0.0279: the share's standard error on rows like these
    assert ("outlier threshold 2 (contamination 0.05): read off the scores of 61 rows (all rows); it flags 4.9% "
            "of 61 rows fitted, 5.0% +- 2.8% of rows like them") in describe(summary)
    auto = {**summary, "contamination": "auto", "threshold_rule": {**summary["threshold_rule"],
                                                                   "training_share": 0.0}}
    assert "outlier threshold 2 (contamination auto): read off the scores of 61 rows (all rows); it flags 0.0% " \
           "of 61 rows fitted\n" in describe(auto)


def test_the_summary_and_info_say_how_the_columns_were_scaled(table, tmp_path):
    shared = fit_file(table, tmp_path / "shared", latent_dim=3, epochs=2, random_state=0)
    line = "scaling: one scale for all 8 columns (their spreads and ranges agree; scaler=auto)"
    assert shared["scaling"] == line and line in describe(shared).splitlines()
    assert model_info(tmp_path / "shared")["scaling"] == line
    mixed = pd.read_csv(table) * [1, 1, 1, 1, 1, 1, 1, 1000.0]  # one column in other units
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    summary = fit_file(tmp_path / "mixed.csv", tmp_path / "mixed", latent_dim=3, epochs=2, random_state=0)
    line = "scaling: each of the 8 columns standardised on its own (their spreads or ranges differ; scaler=auto)"
    assert summary["scaling"] == line and model_info(tmp_path / "mixed")["scaling"] == line
    given = fit_file(table, tmp_path / "given", latent_dim=3, epochs=2, random_state=0, scaler="standard")
    assert given["scaling"] == "scaling: each of the 8 columns standardised on its own (scaler=standard)"


def test_info_and_the_report_show_the_training_budget_epochs_auto_resolved_to(table, tmp_path):
    from aekit.cli.info import describe as describe_info
    from aekit.report import write_report

    fit_file(table, tmp_path / "m", latent_dim=3, random_state=0)  # epochs="auto": a budget from the steps
    model = load(tmp_path / "m")
    history = model.history_
    budget = history["max_epochs"]
    assert model.epochs == "auto" and isinstance(budget, int) and budget > 0
    run = (f"{model.n_iter_} of at most {budget} epochs, {history['steps_per_epoch']} "
           f"step{'s' if history['steps_per_epoch'] != 1 else ''} each")
    info = model_info(tmp_path / "m")
    assert info["training"]["max_epochs"] == budget
    assert f"training    {run} (best {history['best_epoch']}" in describe_info(info)
    report = write_report(model, tmp_path / "report.html")
    assert report["training"]["epochs run"] == run
    assert run in (tmp_path / "report.html").read_text(encoding="utf-8")
