"""``epochs="auto"``: the training length from the optimizer steps an epoch gives, so that small tables,
with a few steps an epoch, are not cut off while still improving."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning

import aekit
from aekit.cli import main
from aekit.estimator.train import AUTO_EPOCH_STEPS, AUTO_EPOCHS_MIN, auto_batch_size, auto_epochs
from aekit.exceptions import InvalidParameterValue


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 33, 99, 100, 101, 211, 10_000, 10_001])
def test_auto_epochs_is_the_fewest_epochs_holding_the_step_budget_and_at_least_the_minimum(steps):
    epochs = auto_epochs(steps)
    assert epochs >= AUTO_EPOCHS_MIN and epochs * steps >= AUTO_EPOCH_STEPS
    if epochs > AUTO_EPOCHS_MIN:  # one epoch fewer would fall short of the budget
        assert (epochs - 1) * steps < AUTO_EPOCH_STEPS
    assert epochs == max(100, -(-10_000 // steps))  # the documented rule, in integers


def test_auto_epochs_never_grows_with_the_steps_an_epoch_gives():
    epochs = [auto_epochs(steps) for steps in range(1, 400)]
    assert all(a >= b for a, b in zip(epochs[:-1], epochs[1:], strict=True))
    assert epochs[-1] == AUTO_EPOCHS_MIN  # large tables keep the previous default, 100 epochs


@pytest.mark.parametrize(("n_rows", "batch_size"), [(30, "auto"), (300, "auto"), (1500, "auto"), (300, 150)])
def test_a_fit_records_the_epochs_auto_chose_from_its_steps(n_rows, batch_size):
    X = np.random.default_rng(0).normal(size=(n_rows, 4))
    n_train = n_rows // 2  # validation_fraction=0.5 of an even count
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae = aekit.Autoencoder(latent_dim=2, hidden_dims=(4,), batch_size=batch_size, validation_fraction=0.5,
                               patience=1, random_state=0, device="cpu").fit(X)
    rows_per_step = auto_batch_size(n_train) if batch_size == "auto" else batch_size
    steps = math.ceil(n_train / rows_per_step)
    assert ae.history_["steps_per_epoch"] == steps
    assert ae.history_["max_epochs"] == max(100, math.ceil(10_000 / steps))
    assert 1 <= ae.n_iter_ <= ae.history_["max_epochs"]


def test_an_integer_epochs_is_used_as_given():
    X = np.random.default_rng(0).normal(size=(120, 4))
    ae = aekit.Autoencoder(latent_dim=2, hidden_dims=(4,), epochs=3, early_stopping=False, random_state=0).fit(X)
    assert ae.history_["max_epochs"] == 3 and ae.n_iter_ == 3


def test_a_typo_for_auto_is_refused_with_the_closest_option():
    with pytest.raises(InvalidParameterValue, match=r"The 'epochs' parameter of Autoencoder must be an int in the "
                       r"range \[1, inf\) or a str among \{'auto'\}. Got 'atuo' instead") as caught:
        aekit.Autoencoder(epochs="atuo").fit(np.zeros((20, 3)))
    assert caught.value.param == "epochs" and caught.value.hint == "Did you mean 'auto'?"


def test_the_default_fit_of_a_small_real_table_runs_until_early_stopping_ends_it():
    # scikit-learn's diabetes table, 442 rows: 7 steps an epoch, so 100 epochs (700 steps) ended this fit
    # while its validation loss was still falling; it stops by itself at about 150.
    X = load_diabetes().data
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ae = aekit.Autoencoder(random_state=0, n_jobs=1).fit(X)
    history = ae.history_
    assert history["stop_reason"] == "early_stopping"
    assert history["max_epochs"] == auto_epochs(history["steps_per_epoch"]) > ae.n_iter_ > 100


def test_the_command_line_takes_epochs_auto_and_says_the_epochs_it_allowed(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(60, 4)))
    assert main(["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m"), "--epochs", "auto", "--patience", "1",
                 "--hidden", "4", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    history = aekit.load(tmp_path / "m").history_
    assert (f"{history['n_epochs']} of at most {history['max_epochs']} epochs, "
            f"{history['steps_per_epoch']} steps each (stop: ") in out
    assert history["max_epochs"] == auto_epochs(history["steps_per_epoch"])


def test_a_table_with_100_steps_an_epoch_trains_exactly_as_with_the_previous_default_of_100_epochs():
    X = np.random.default_rng(0).normal(size=(1800, 4))
    params = dict(latent_dim=2, hidden_dims=(4,), batch_size=8, validation_fraction=0.5, patience=1,
                  lr_schedule="cosine", random_state=0, device="cpu", n_jobs=1)  # cosine: anneals over epochs
    auto = aekit.Autoencoder(epochs="auto", **params).fit(X)
    hundred = aekit.Autoencoder(epochs=100, **params).fit(X)
    assert auto.history_["steps_per_epoch"] == 113 and auto.history_["max_epochs"] == 100
    assert auto.history_["val_loss"] == hundred.history_["val_loss"]
    np.testing.assert_array_equal(auto.transform(X), hundred.transform(X))


def test_a_series_model_resolves_auto_from_its_windows():
    series = np.sin(np.arange(600) * 2 * np.pi / 25)[:, None] + 0.01 * np.random.default_rng(0).normal(size=(600, 1))
    inner = aekit.Autoencoder(latent_dim=2, hidden_dims=(8,), epochs="auto", patience=1, random_state=0, device="cpu")
    model = aekit.SeriesAutoencoder(25, stride=1, autoencoder=inner).fit(series)
    history = model.autoencoder_.history_
    assert history["max_epochs"] == auto_epochs(history["steps_per_epoch"]) >= model.autoencoder_.n_iter_


def test_a_verbose_fit_logged_to_a_file_writes_a_line_at_least_every_ten_epochs(capsys):
    """A budget of thousands of epochs that early stopping ends after a few dozen still logs its progress."""
    rng = np.random.default_rng(0)
    t = rng.uniform(-2, 2, size=(60, 1))  # a curve the non-linear model keeps improving on for a while
    X = np.hstack([t, t**2, np.sin(2 * t), t**3]) + 0.05 * rng.normal(size=(60, 4))
    model = aekit.Autoencoder(latent_dim=1, architecture="mlp", verbose=1, random_state=0, validation_fraction=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    run, budget = model.history_["n_epochs"], model.history_["max_epochs"]
    assert run >= 20 and budget >= 10 * run  # the case in point: a tenth of the budget is past the last epoch run
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == [f"{epoch}/{budget}:" for epoch in [1, *range(10, run + 1, 10)]]


def test_batch_size_auto_is_the_same_in_every_process_under_torchrun(monkeypatch):
    # each process reads its own share of the training rows, and the shares differ (the validation split is
    # drawn per row): 1024 rows here give 256, another process's 1020 give 128. Every process must train with
    # the same batch (else min_over_ranks' common step count leaves half the other's rows out of each epoch)
    from aekit.estimator import train

    other_share = auto_batch_size(1020)
    assert auto_batch_size(1024) != other_share
    # this process's view of min_over_ranks: the other process reports its batch, and at least as many steps
    monkeypatch.setattr(train.distributed, "min_over_ranks", lambda value: min(value, other_share))
    batch_size, steps_per_epoch, _ = train._batch_size_and_epochs(aekit.Autoencoder(epochs=5), 1024)
    assert batch_size == other_share and steps_per_epoch == math.ceil(1024 / other_share)
