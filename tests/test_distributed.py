"""Distributed training: 2 CPU processes with gloo, launched by torchrun, against a single-process run.

One torchrun launch (it costs seconds) runs three jobs in each worker: the trainer with a check of
the weights on every rank before every step, the estimator (rank 0 saves the model and the
checkpoints), and a streaming fit over per-rank shards of a file. Full-batch training makes a 2-process run
the same computation as a single-process run on all the rows (the mean of the two shards' mean
gradients is the mean gradient), up to the order of floating-point sums: hence the tolerances.

The single-process references run with the workers' thread count (one each). With another count the
kernels split their sums differently; that rounding (~1e-9 in the first gradients) is harmless in
itself, but Adam divides each gradient by its running root mean square plus eps = 1e-8, and about a
fifth of this model's decoder gradients are below 1e-7 (ReLU units active on few rows): there a
1e-10 change of the gradient moves the step by ~lr * 1e-10 / 1e-8 = 1e-4 (measured: 1.06e-4 between
1 and 2 threads on an AVX-512 Xeon). At equal thread counts only the split of the rows remains (its
largest difference, measured there: 5e-6 on encoder.0.weight, 1e-6 on decoder.0.weight). For the
same reason every process and the reference use one kernel for the wide layers (oneDNN, pinned by
``AEKIT_LINEAR_KERNEL``), whatever the processor's rule would pick.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import safetensors.torch
import torch
import torch.distributed as dist

import aekit
from aekit.models.mlp import MLPAutoencoder
from aekit.training import distributed
from aekit.training.checkpoint import list_checkpoints
from aekit.training.config import TrainConfig
from aekit.training.loop import fit_module
from aekit.training.streaming import fit_stream
from conftest import assert_close

pytestmark = pytest.mark.slow
# Full-batch Adam for 15 epochs, float32 sums over the rows in another order: differences stay far below this.
RTOL, ATOL = 1e-4, 1e-5
WORKER_THREADS = 1  # each of the 2 workers, so that they do not compete for 2 cores
SAME_KERNELS = {"OMP_NUM_THREADS": str(WORKER_THREADS), "AEKIT_LINEAR_KERNEL": "onednn"}
N_TRAIN, N_VAL, EPOCHS = 200, 40, 15


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_TRAIN + N_VAL, 3)) @ rng.normal(size=(3, 8)) + 0.05 * rng.normal(size=(N_TRAIN + N_VAL, 8))
    return X.astype(np.float32)


def _model():
    torch.manual_seed(0)
    return MLPAutoencoder(8, 2, hidden_dims=(4096,))  # 8 x 4096 weights: products through oneDNN


def mse(module, batch):
    return ((module(batch)[0] - batch) ** 2).mean()


# The MLP, from its seeded initial weights (the anchored model would start at PCA of every process's rows)
ESTIMATOR_PARAMS = dict(latent_dim=2, architecture="mlp", hidden_dims=(6,), epochs=EPOCHS, lr=1e-2,
                        early_stopping=False, validation_fraction=0.2, random_state=0, device="cpu")
# No validation rows, so that both ranks get as many training rows (each its half of the file): full batches then
# average to the gradient over all rows, as in one process.
STREAMING_PARAMS = dict(ESTIMATOR_PARAMS, batch_size=10_000, validation_fraction=0.0)

_WORKER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np, safetensors.torch, torch, torch.distributed as dist
    sys.path.insert(0, sys.argv[2])
    import test_distributed as spec
    import aekit
    from aekit.training import distributed
    from aekit.training.streaming import fit_stream
    from aekit.training.config import TrainConfig
    from aekit.training.loop import fit_module

    out = sys.argv[1]
    distributed.setup()
    rank, world = distributed.rank(), distributed.world_size()

    def gathered_equal(module):
        flat = torch.cat([p.detach().flatten() for p in module.parameters()])
        copies = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(copies, flat)
        return all(torch.equal(copies[0], c) for c in copies)

    checks = []

    def loss_checking_ranks_agree(module, batch):
        if module.training:  # before each step: the weights after the previous one, on every rank
            checks.append(gathered_equal(module))
        return spec.mse(module, batch)

    # 1. the trainer: each rank gets every other row, one full-shard batch per step
    X = spec._data()
    train, val = X[: spec.N_TRAIN], X[spec.N_TRAIN :]
    model = spec._model()
    config = TrainConfig(epochs=spec.EPOCHS, batch_size=spec.N_TRAIN // world, lr=1e-2, early_stopping=False)
    history = fit_module(model, loss_checking_ranks_agree, torch.from_numpy(distributed.shard(train)),
                         torch.from_numpy(distributed.shard(val)), config)
    checks.append(gathered_equal(model))

    # 2. the estimator: rank 0 writes the checkpoints and the model
    params = dict(spec.ESTIMATOR_PARAMS, batch_size=10_000, checkpoint_dir=f"{out}/checkpoints")
    ae = aekit.Autoencoder(**params).fit(X)
    ae.save(f"{out}/model")

    # 3. streaming: rank r reads and trains on its contiguous half of the file
    streamed = fit_stream(aekit.Autoencoder(**spec.STREAMING_PARAMS), f"{out}/data.npy", chunk_rows=30)
    checks.append(gathered_equal(streamed.module_))

    if rank == 0:
        safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/trainer.st")
        safetensors.torch.save_file({k: v.contiguous() for k, v in streamed.module_.state_dict().items()},
                                    f"{out}/streamed.st")
        result = {"world": world, "checks": checks, "train_loss": history.train_loss, "val_loss": history.val_loss}
        open(f"{out}/result.json", "w").write(json.dumps(result))

    # leaving the group must free it: gloo threads living on into interpreter shutdown abort the process
    del model, ae, streamed
    distributed.teardown()
    names = [open(f"/proc/self/task/{task}/comm").read().strip() for task in os.listdir("/proc/self/task")]
    open(f"{out}/threads-{rank}.json", "w").write(json.dumps(names))
    """
)


def _launch(out):
    """Run the worker under torchrun (2 processes) in the empty folder ``out``."""
    np.save(out / "data.npy", _data())
    script = out / "worker.py"
    script.write_text(_WORKER)
    # faulthandler: should a worker crash (SIGABRT), its Python stack is in the message below
    env = {**os.environ, **SAME_KERNELS, "PYTHONWARNINGS": "ignore", "PYTHONFAULTHANDLER": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(script), str(out), os.path.dirname(__file__)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    completed = _launch(out)
    assert completed.returncode == 0, completed.stderr[-3000:]  # an abort at exit fails here: no relaunch
    return out, json.loads((out / "result.json").read_text())


@pytest.fixture(autouse=True)
def threads_of_a_worker(monkeypatch):
    """The single-process references run with the workers' thread count and kernels (see the module's docstring)."""
    monkeypatch.setenv("AEKIT_LINEAR_KERNEL", SAME_KERNELS["AEKIT_LINEAR_KERNEL"])
    previous = torch.get_num_threads()
    torch.set_num_threads(WORKER_THREADS)
    yield
    torch.set_num_threads(previous)


def test_ranks_hold_identical_weights_after_every_step(two_process_run):
    _, result = two_process_run
    assert result["world"] == 2
    assert len(result["checks"]) == EPOCHS + 2  # one per step (one step per epoch), the end, streaming
    assert all(result["checks"])


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="thread names are read from Linux's /proc")
def test_teardown_joins_the_gloo_threads_before_exit(two_process_run):
    out, _ = two_process_run
    for rank in (0, 1):
        names = json.loads((out / f"threads-{rank}.json").read_text())
        assert names and not [name for name in names if "gloo" in name], names


def test_two_processes_match_a_single_process_run_on_all_rows(two_process_run):
    out, result = two_process_run
    X = _data()
    model = _model()
    history = fit_module(model, mse, torch.from_numpy(X[:N_TRAIN]), torch.from_numpy(X[N_TRAIN:]),
                         TrainConfig(epochs=EPOCHS, batch_size=N_TRAIN, lr=1e-2, early_stopping=False))
    distributed_weights = safetensors.torch.load_file(out / "trainer.st")
    for name, value in model.state_dict().items():
        assert_close(distributed_weights[name], value, rtol=RTOL, atol=ATOL, what=name)
    # losses are all-reduced: the validation loss is that of all the validation rows
    assert_close(result["val_loss"], history.val_loss, rtol=RTOL, atol=ATOL)
    assert_close(result["train_loss"], history.train_loss, rtol=RTOL, atol=ATOL)


def test_estimator_under_torchrun_saves_once_and_matches_single_process(two_process_run):
    out, _ = two_process_run
    X = _data()
    loaded = aekit.load(out / "model")
    single = aekit.Autoencoder(**ESTIMATOR_PARAMS, batch_size=10_000).fit(X)
    assert_close(loaded.transform(X), single.transform(X), rtol=RTOL, atol=ATOL)
    assert loaded.threshold_ == pytest.approx(single.threshold_, rel=1e-3)
    assert [p.name for p in list_checkpoints(out / "checkpoints")][-1] == f"ckpt-e{EPOCHS:06d}-s000000000"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging folders left by a race


def test_streaming_under_torchrun_matches_single_process_streaming(two_process_run):
    out, _ = two_process_run
    single = fit_stream(aekit.Autoencoder(**STREAMING_PARAMS), out / "data.npy", chunk_rows=30)
    streamed = safetensors.torch.load_file(out / "streamed.st")
    for name, value in single.module_.state_dict().items():
        assert_close(streamed[name], value, rtol=RTOL, atol=ATOL, what=name)


# ---------------------------------------------------------------------------- a worker killed, the group restarted
_RESTARTED_WORKER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import safetensors.torch, torch
    sys.path.insert(0, sys.argv[3])
    import test_distributed as spec
    from aekit.training import distributed
    from aekit.training.checkpoint import Checkpointer
    from aekit.training.config import TrainConfig
    from aekit.training.loop import fit_module

    out, kill_at = sys.argv[1], int(sys.argv[2])
    attempt = int(os.environ["TORCHELASTIC_RESTART_COUNT"])
    import torch._dynamo  # setup() imports it, at a speed that varies: imported first, the delay below is all
    if attempt == 1 and os.environ["RANK"] == "1":
        time.sleep(spec.LATE_START_S)  # as on a loaded machine: its peer joins first
    distributed.setup()
    rank = distributed.rank()
    steps = [0]

    def loss(module, batch):
        if module.training:
            steps[0] += 1
            if attempt == 0 and rank == 1 and steps[0] == kill_at:  # mid-epoch, between two checkpoints
                os.kill(os.getpid(), signal.SIGKILL)
        return spec.mse(module, batch)

    X = spec._data()
    model = spec._model()
    checkpoints = Checkpointer(f"{out}/checkpoints", resume=True, writer=distributed.is_main_process())
    config = TrainConfig(epochs=spec.RESTART_EPOCHS, batch_size=25, lr=1e-2, early_stopping=False, seed=3)
    fit_module(model, loss, torch.from_numpy(distributed.shard(X[: spec.N_TRAIN])),
               torch.from_numpy(distributed.shard(X[spec.N_TRAIN :])), config, checkpointer=checkpoints)
    if rank == 0:
        safetensors.torch.save_file(model.state_dict(), f"{out}/weights.st")
        open(f"{out}/run.json", "w").write(json.dumps({"attempt": attempt, "steps": steps[0]}))
    """
)
RESTART_EPOCHS = 6  # 4 steps per epoch on each of the 2 ranks (100 rows each, batches of 25)
# torchrun keeps one store for all attempts, holding the addresses the killed group's ranks listened on: a rank of
# the restarted group that looks its peer up before the peer has written its new address must not get the old one.
# (Given the old one, gloo compares the two addresses to pick the side that connects: the connection was refused,
# or both sides waited for the other, with no timeout; about half the launches went through by chance.)
LATE_START_S = 3


def _launch_restartable(out, kill_at):
    script = out / "worker.py"
    script.write_text(_RESTARTED_WORKER)
    env = {**os.environ, **SAME_KERNELS, "PYTHONWARNINGS": "ignore", "PYTHONFAULTHANDLER": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "--max-restarts=1", "--monitor-interval=0.2", str(script), str(out), str(kill_at),
               os.path.dirname(__file__)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_a_worker_killed_mid_epoch_is_restarted_and_resumes_to_the_uninterrupted_weights(tmp_path):
    kill_at = 3 * 4 + 2  # two steps into epoch 4, after the checkpoint of epoch 3
    (tmp_path / "whole").mkdir()
    (tmp_path / "killed").mkdir()
    whole = _launch_restartable(tmp_path / "whole", kill_at=0)
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = _launch_restartable(tmp_path / "killed", kill_at=kill_at)
    assert killed.returncode == 0, killed.stderr[-3000:]
    assert json.loads((tmp_path / "whole" / "run.json").read_text()) == {"attempt": 0, "steps": RESTART_EPOCHS * 4}
    # restarted once; the second attempt ran only the steps after the newest checkpoint (epoch 3)
    assert json.loads((tmp_path / "killed" / "run.json").read_text()) == {"attempt": 1, "steps": 3 * 4}
    expected = safetensors.torch.load_file(tmp_path / "whole" / "weights.st")
    resumed = safetensors.torch.load_file(tmp_path / "killed" / "weights.st")
    assert expected.keys() == resumed.keys()
    for name, value in expected.items():
        assert torch.equal(resumed[name], value), name


@pytest.fixture
def agent_store(monkeypatch):
    """The store torchrun's agent hosts for all attempts, and what it tells the one worker of the second attempt."""
    server = dist.TCPStore("127.0.0.1", 0, is_master=True)
    environment = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "GROUP_WORLD_SIZE": "1",
                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(server.port), "TORCHELASTIC_USE_AGENT_STORE": "True",
                   "TORCHELASTIC_RESTART_COUNT": "1", "TORCHELASTIC_MAX_RESTARTS": "1"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    yield server
    distributed.teardown()


def test_each_attempt_under_one_agent_joins_under_its_own_keys(agent_store):
    distributed.setup(torch.device("cpu"))
    assert distributed.world_size() == 1
    keys = agent_store.list_keys()
    assert keys and all(key.startswith("aekit/attempt-1/") for key in keys), keys


def test_agents_on_several_machines_sharing_their_store_are_told_how_to_restart_safely(agent_store, monkeypatch):
    monkeypatch.setenv("GROUP_WORLD_SIZE", "2")  # their restart counts may differ: no prefix is safe
    with pytest.warns(RuntimeWarning, match="Set TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in torchrun's environment"):
        distributed.setup(torch.device("cpu"))
    assert not [key for key in agent_store.list_keys() if key.startswith("aekit/")]


# ---------------------------------------------------------------------------- two nodes, simulated on this machine
_NODE_WORKER = textwrap.dedent(
    """
    import json, os, sys
    import safetensors.torch, torch
    sys.path.insert(0, sys.argv[2])
    import test_distributed as spec
    from aekit.training import distributed
    from aekit.training.config import TrainConfig
    from aekit.training.loop import fit_module

    out = sys.argv[1]
    distributed.setup()
    X = spec._data()
    model = spec._model()
    world = distributed.world_size()
    config = TrainConfig(epochs=spec.EPOCHS, batch_size=spec.N_TRAIN // world, lr=1e-2, early_stopping=False)
    fit_module(model, spec.mse, torch.from_numpy(distributed.shard(X[: spec.N_TRAIN])),
               torch.from_numpy(distributed.shard(X[spec.N_TRAIN :])), config)
    node = {"rank": distributed.rank(), "world": world, "node": int(os.environ["GROUP_RANK"])}
    open(f"{out}/node-{distributed.rank()}.json", "w").write(json.dumps(node))
    if distributed.is_main_process():
        safetensors.torch.save_file(model.state_dict(), f"{out}/weights.st")
    """
)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def test_two_nodes_of_one_process_each_match_one_process_with_the_same_global_batch(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_NODE_WORKER)
    env = {**os.environ, **SAME_KERNELS, "PYTHONWARNINGS": "ignore", "PYTHONFAULTHANDLER": "1"}
    # what each machine of a cluster would run, here twice on this one: the first agent hosts the rendezvous
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
               "--rdzv-backend=c10d", f"--rdzv-endpoint=localhost:{_free_port()}", "--rdzv-id=aekit-test",
               str(script), str(tmp_path), os.path.dirname(__file__)]
    agents = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    outputs = [agent.communicate(timeout=300) for agent in agents]
    for agent, (_, stderr) in zip(agents, outputs, strict=True):
        assert agent.returncode == 0, stderr[-3000:]
    nodes = [json.loads((tmp_path / f"node-{rank}.json").read_text()) for rank in (0, 1)]
    assert sorted(node["node"] for node in nodes) == [0, 1] and {node["world"] for node in nodes} == {2}
    model = _model()
    X = _data()
    fit_module(model, mse, torch.from_numpy(X[:N_TRAIN]), torch.from_numpy(X[N_TRAIN:]),
               TrainConfig(epochs=EPOCHS, batch_size=N_TRAIN, lr=1e-2, early_stopping=False))
    weights = safetensors.torch.load_file(tmp_path / "weights.st")
    for name, value in model.state_dict().items():
        assert_close(weights[name], value, rtol=RTOL, atol=ATOL, what=name)
