import math

import pytest
import torch

from aekit.exceptions import TrainingError
from aekit.models.mlp import MLPAutoencoder
from aekit.training.config import TrainConfig
from aekit.training.loop import evaluate, fit_module


def mse(module, batch):
    return ((module(batch)[0] - batch) ** 2).mean()


def _data(n=120, d=6, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _model(seed=0):
    torch.manual_seed(seed)
    return MLPAutoencoder(6, 2, hidden_dims=(5,))


def _weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_train_step_changes_weights_and_eval_step_does_not():
    model, X = _model(), _data()
    before = _weights(model)
    evaluate(model, mse, X)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    fit_module(model, mse, X, None, TrainConfig(epochs=1, early_stopping=False))
    assert all(not torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("n_rows, batch_size", [(5, 256), (100, 32), (64, 32)])
def test_every_row_is_used_and_partial_batches_work(n_rows, batch_size):
    model, X = _model(), _data(n_rows)
    seen = []

    def counting_loss(module, batch):
        seen.append(len(batch))
        return mse(module, batch)

    history = fit_module(
        model, counting_loss, X, None, TrainConfig(epochs=2, batch_size=batch_size, early_stopping=False)
    )
    assert sum(seen) == 2 * n_rows
    assert len(seen) == 2 * math.ceil(n_rows / batch_size)
    assert len(history.train_loss) == 2 and all(math.isfinite(v) for v in history.train_loss)


def test_same_seed_gives_bitwise_identical_weights_and_other_seed_differs():
    X = _data()
    runs = []
    for seed in (3, 3, 4):
        model = _model()
        fit_module(model, mse, X, X[:20], TrainConfig(epochs=3, batch_size=16, seed=seed))
        runs.append(_weights(model))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_history_records_train_and_validation_loss_per_epoch():
    model, X = _model(), _data()
    history = fit_module(model, mse, X[:100], X[100:], TrainConfig(epochs=4, early_stopping=False))
    assert len(history.train_loss) == len(history.val_loss) == 4
    # the recorded validation loss of the last epoch is the model's loss on the validation rows
    assert history.val_loss[-1] == pytest.approx(evaluate(model, mse, X[100:]), rel=1e-6)
    assert history.to_dict()["n_epochs"] == 4


def test_early_stopping_stops_and_restores_the_best_weights():
    X = _data(200)
    model = _model()
    # a high learning rate makes the validation loss noisy, so it stops improving quickly
    history = fit_module(model, mse, X[:150], X[150:], TrainConfig(epochs=200, lr=0.05, patience=3, batch_size=8))
    assert history.stop_reason == "early_stopping"
    assert len(history.train_loss) < 200
    assert len(history.val_loss) - history.best_epoch == 3
    assert evaluate(model, mse, X[150:]) == pytest.approx(min(history.val_loss), rel=1e-6)


def test_non_finite_loss_raises_clear_error_and_keeps_last_good_weights():
    model, X = _model(), _data()
    calls = {"n": 0}
    snapshot = {}

    def poisoned(module, batch):
        calls["n"] += 1
        if calls["n"] == 1 + 2 * 4:  # the first step of epoch 3 (4 steps per epoch)
            snapshot.update(_weights(module))
            return mse(module, batch) * float("nan")
        return mse(module, batch)

    with pytest.raises(TrainingError, match=r"became nan at epoch 3\. Try a lower learning rate \(lr=0\.001 now\)"):
        fit_module(model, poisoned, X, None, TrainConfig(epochs=5, batch_size=32, early_stopping=False))
    assert all(torch.equal(snapshot[k], v) for k, v in model.state_dict().items())
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_tensor_source_with_rows_reads_the_split_without_copying_it_and_trains_as_the_copy_would():
    from aekit.training.loop import TensorSource

    X, rows = _data(50), torch.tensor([7, 3, 40, 11, 25, 0, 33])
    in_order = torch.cat(list(TensorSource(X, rows).batches(3)))
    assert torch.equal(in_order, X[rows])
    shuffled = torch.cat(list(TensorSource(X, rows).batches(3, torch.Generator().manual_seed(0))))
    assert sorted(shuffled[:, 0].tolist()) == sorted(X[rows][:, 0].tolist())  # each row once per epoch
    weights = []
    for train_data in (TensorSource(X, rows), X[rows]):
        model = _model()
        fit_module(model, mse, train_data, None, TrainConfig(epochs=2, batch_size=3, early_stopping=False))
        weights.append(_weights(model))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_tensor_source_for_another_device_gathers_each_batch_on_the_host_and_sends_it_over():
    """Data too large for a GPU stays on the host; on this CPU-only machine "meta" stands in for the GPU."""
    from aekit.training.loop import TensorSource

    X, rows = _data(50), torch.tensor([7, 3, 40, 11, 25, 0, 33])
    seen = []
    source = TensorSource(X, rows, transform=lambda batch: seen.append(batch.device) or batch * 2, device="meta")
    assert source.device == torch.device("meta")
    generator_state = torch.Generator().manual_seed(0).get_state()
    host = list(source._rows(3, torch.Generator().set_state(generator_state)))  # gathered on the host, in order
    order = rows[torch.randperm(len(rows), generator=torch.Generator().set_state(generator_state))]
    assert all(batch.device.type == "cpu" for batch in host)
    assert torch.equal(torch.cat(host), X[order])
    sent = list(source.batches(3, torch.Generator().set_state(generator_state)))
    assert [batch.device.type for batch in sent] == ["meta"] * 3 and [len(b) for b in sent] == [3, 3, 1]
    assert seen == [torch.device("meta")] * 3  # the transform runs on the device, after the copy
    assert [len(b) for b in TensorSource(X, device="meta").batches(20)] == [20, 20, 10]  # in order, no rows
