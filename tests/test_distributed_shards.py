"""Streaming under torchrun: each of 2 gloo processes reads only its own contiguous shard of the file.

One torchrun launch fits a ``.npy`` file (StandardScaler) and a Parquet file (MinMaxScaler, row groups
that straddle the shards' boundary) with ``fit_stream``. Each worker wraps the reader the streaming
module calls (``aekit.training.streaming.iter_chunks``) and records, for every pass over the file, the
``rows`` it asked for and the row ids of every chunk it was given. The test then checks that each
process only ever received rows of its shard (``shard_rows``), that the shards are disjoint and cover
the file, and that what is computed from all rows (scaler statistics, the combined score's
normalisers, the threshold, the validation loss, the anchored model's starting PCA) equals what one
process computes from the whole file.
The row counts are odd and the validation split leaves the shards with different numbers of training
rows, so the run also shows that uneven shards take the same number of steps (DDP would hang otherwise).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import aekit
from aekit.data import shard_rows
from aekit.estimator import inference
from aekit.training.sources import ValidationSplit, part_rows
from conftest import assert_close, flat_state

pytestmark = pytest.mark.slow
N_ROWS, N_FEATURES, WORLD = 301, 5, 2  # shards of 151 and 150 rows
PARAMS = dict(latent_dim=2, architecture="mlp", loss="mse", hidden_dims=(6,), epochs=3, batch_size=16, lr=1e-2,
              early_stopping=False, validation_fraction=0.25, random_state=0, device="cpu")
FILES = {"rows.npy": dict(scaler="standard", chunk_rows=40), "rows.parquet": dict(scaler="minmax", chunk_rows=40)}


def _data() -> np.ndarray:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(N_ROWS, 2)) @ rng.normal(size=(2, N_FEATURES)) + 0.1 * rng.normal(size=(N_ROWS, N_FEATURES))
    return (X * [1, 10, 100, 0.1, 3] + [5, -2, 1000, 0, 7]).astype(np.float32)  # scales far apart


_WORKER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    import test_distributed_shards as spec
    import aekit
    from aekit.training import distributed, streaming

    out = Path(sys.argv[1])
    passes = []  # one entry per pass over a file: its name, the rows asked for, each chunk's first and last id
    reader = streaming.iter_chunks

    def recording_reader(path, **options):
        record = {"file": Path(path).name, "rows": options.get("rows"), "chunks": []}
        passes.append(record)
        for chunk in reader(path, **options):
            record["chunks"].append([int(chunk.ids[0]), int(chunk.ids[-1])])
            yield chunk

    streaming.iter_chunks = recording_reader
    distributed.setup()
    rank = distributed.rank()
    fits = {}
    for name, options in spec.FILES.items():
        params = dict(spec.PARAMS, scaler=options["scaler"])
        ae = aekit.Autoencoder(**params).fit_stream(out / name, chunk_rows=options["chunk_rows"])
        scaler = ae.scaler_
        stats = {key: getattr(scaler, key).tolist() for key in ("mean_", "var_", "data_min_", "data_max_")
                 if hasattr(scaler, key)}
        fits[name] = {"threshold": ae.threshold_, "quantiles": ae.score_quantiles_.tolist(), "scaler": stats,
                      "score_state": ae.score_state_.to_dict(), "val_loss": ae.history_["val_loss"],
                      "n_iter": ae.n_iter_, "seed": ae.seed_, "threshold_scores": ae.history_["threshold"]["scores"]}
        if rank == 0:
            ae.save(out / f"model-{name}")
    # the anchored model starts at PCA of the training rows: every rank's, merged
    anchored = aekit.Autoencoder(**dict(spec.PARAMS, architecture="anchored")).fit_stream(out / "rows.npy",
                                                                                        chunk_rows=40)
    fits["anchored"] = {"pca_val_loss": anchored.history_["pca"]["val_loss"]}
    # latent_dim="auto" (the default): d from PCA of every rank's training rows, the same in every process
    auto = aekit.Autoencoder(**dict(spec.PARAMS, latent_dim="auto", batch_size="auto")).fit_stream(out / "rows.npy",
                                                                                                   chunk_rows=40)
    fits["auto"] = {"latent_dim": auto.latent_dim_, "rule": auto.history_["latent_dim_rule"],
                    "batch_size": auto.history_["batch_size"]}
    (out / f"rank-{rank}.json").write_text(json.dumps({"world": distributed.world_size(), "passes": passes,
                                                       "fits": fits}))
    """
)


@pytest.fixture(scope="module")
def sharded_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    X = _data()
    np.save(out / "rows.npy", X)
    table = pa.table({f"f{j}": X[:, j] for j in range(N_FEATURES)})
    pq.write_table(table, out / "rows.parquet", row_group_size=50)  # the group of rows 150-199 spans both shards
    (out / "worker.py").write_text(_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONFAULTHANDLER": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
               str(out / "worker.py"), str(out), os.path.dirname(__file__)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = [json.loads((out / f"rank-{rank}.json").read_text()) for rank in range(WORLD)]
    return out, X, ranks


@pytest.mark.parametrize("name", list(FILES))
def test_each_rank_reads_only_its_own_shard_in_every_pass(sharded_run, name):
    _, _, ranks = sharded_run
    shards = [shard_rows(N_ROWS, rank, WORLD) for rank in range(WORLD)]
    assert shards[0][0] == 0 and shards[0][1] == shards[1][0] and shards[1][1] == N_ROWS  # disjoint, covering
    for rank, (result, (start, stop)) in enumerate(zip(ranks, shards, strict=True)):
        assert result["world"] == WORLD
        passes = [record for record in result["passes"] if record["file"] == name]
        # the scaler's, each epoch's training and validation passes, the score's and the threshold's
        assert len(passes) >= 1 + 2 * PARAMS["epochs"] + 2, len(passes)
        for record in passes:
            assert record["rows"] == [start, stop], (rank, record["rows"])
            ids = [row for first, last in record["chunks"] for row in (first, last)]
            assert ids and min(ids) >= start and max(ids) < stop, (rank, record["chunks"])
            # every pass reads the whole shard once, in order, and nothing else
            firsts = [first for first, _ in record["chunks"]]
            lasts = [last for _, last in record["chunks"]]
            assert firsts[0] == start and lasts[-1] == stop - 1
            assert all(next_first == last + 1 for last, next_first in zip(lasts, firsts[1:], strict=False))


@pytest.mark.parametrize("name", list(FILES))
def test_every_rank_fits_the_scaler_and_threshold_of_all_the_rows(sharded_run, name):
    out, X, ranks = sharded_run
    fits = [result["fits"][name] for result in ranks]
    assert fits[0] == fits[1]  # every rank the same figures, to the last bit
    scaler = fits[0]["scaler"]
    X64 = X.astype(np.float64)
    if FILES[name]["scaler"] == "standard":  # merged from two shards' moments: numpy's on all the rows
        assert_close(scaler["mean_"], X64.mean(axis=0), rtol=1e-12, atol=0, what="mean_")
        assert_close(scaler["var_"], X64.var(axis=0), rtol=1e-12, atol=0, what="var_")
    else:
        assert scaler["data_min_"] == X.min(axis=0).tolist() and scaler["data_max_"] == X.max(axis=0).tolist()
    # the shards hold different numbers of training rows: the uneven case
    split = ValidationSplit(N_ROWS, PARAMS["validation_fraction"], fits[0]["seed"])
    train_rows = [part_rows(split, "train", shard_rows(N_ROWS, rank, WORLD)) for rank in range(WORLD)]
    assert train_rows[0] != train_rows[1] and sum(train_rows) == split.n_train
    # what one process computes from the whole file with the fitted model
    model = aekit.load(out / f"model-{name}")
    _, val_rows = split.rows()
    # 75 held-out rows are too few for a 5% tail (aekit.detect.threshold_rows_needed): the threshold's scores are
    # all the rows', every rank's shard gathered, under the saved normalisers
    assert fits[0]["threshold_scores"] == "all rows"
    scores = inference.outlier_scores(model, X, scale=True)
    inference.fit_score_state(model, [X], scale=True)
    saved = flat_state(fits[0]["score_state"])  # the latent modes too: fitted on every rank's codes, in row order
    for key, value in flat_state(model.score_state_.to_dict()).items():
        assert_close(saved[key], value, rtol=1e-6, atol=1e-9, what=key)
    assert_close(fits[0]["quantiles"], np.quantile(scores.astype(np.float64), np.linspace(0, 1, 1001)),
                 rtol=1e-5, atol=1e-7, what="score_quantiles_")
    # the validation loss is the mean over all held-out rows (both shards'), weighted by rows
    with torch.no_grad():
        errors = inference.row_errors(model, X[val_rows], scale=True)
    assert_close(fits[0]["val_loss"][-1], float(errors.astype(np.float64).mean()), rtol=1e-5, atol=1e-8,
                 what="val_loss")
    assert fits[0]["n_iter"] == PARAMS["epochs"]


def test_the_anchored_model_starts_at_pca_of_every_ranks_training_rows(sharded_run):
    out, _, ranks = sharded_run
    single = aekit.Autoencoder(**dict(PARAMS, architecture="anchored")).fit_stream(out / "rows.npy", chunk_rows=40)
    # the validation loss of the starting weights (PCA), over all held-out rows: PCA of the same rows
    for result in ranks:
        assert_close(result["fits"]["anchored"]["pca_val_loss"], single.history_["pca"]["val_loss"], rtol=1e-6,
                     atol=0, what="PCA's validation loss")


def test_latent_dim_auto_is_chosen_from_every_ranks_training_rows(sharded_run):
    out, _, ranks = sharded_run
    fits = [result["fits"]["auto"] for result in ranks]
    assert fits[0] == fits[1]  # one d, one rule and one batch size in every process
    single = aekit.Autoencoder(**dict(PARAMS, latent_dim="auto")).fit_stream(out / "rows.npy", chunk_rows=40)
    assert fits[0]["latent_dim"] == single.latent_dim_ and fits[0]["rule"] == single.history_["latent_dim_rule"]
