"""aekit.workflows: file-level fit, encode, decode, reconstruct, score and info, checked against the estimator."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import aekit
from aekit.data import DataSpec, read_data, write_data
from aekit.exceptions import InvalidInputError, InvalidParameterValue
from aekit.workflows import (
    decode_file,
    encode_file,
    fit_file,
    model_info,
    outlier_threshold,
    reconstruct_file,
    score_file,
)
from conftest import QUICK_FIT_2D, assert_close

COLUMNS = ["a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def table(low_rank_data) -> pd.DataFrame:
    # float32, as aekit.data reads files: then the file and the frame hold the very same numbers
    return pd.DataFrame(low_rank_data[:120, :5].astype(np.float32), columns=COLUMNS)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, table):
    """A model fitted by fit_file on a CSV: (folder, loaded model, summary, data folder)."""
    folder = tmp_path_factory.mktemp("workflows")
    table.to_csv(folder / "train.csv", index=False)
    summary = fit_file(folder / "train.csv", folder / "model", **QUICK_FIT_2D)
    return folder / "model", aekit.load(folder / "model"), summary, folder


def test_fit_file_stores_columns_and_reports_training(fitted, table):
    model_dir, model, summary, _ = fitted
    assert list(model.feature_names_in_) == COLUMNS
    assert summary["n_rows"] == len(table) and summary["n_features"] == 5 and summary["epochs"] == 3
    assert summary["train_loss"] == model.history_["train_loss"][-1]
    assert summary["val_loss"] == model.history_["val_loss"][-1]
    assert summary["threshold"] == model.threshold_ and summary["model_dir"] == str(model_dir)
    # the same seed on the same machine gives the same model as the estimator fitted directly
    direct = aekit.Autoencoder(**QUICK_FIT_2D).fit(table)
    assert np.array_equal(direct.transform(table), model.transform(table))


def test_fit_file_never_replaces_a_model_folder_without_force(fitted):
    model_dir, _, _, folder = fitted
    before = (model_dir / "manifest.json").read_bytes()
    with pytest.raises(InvalidInputError, match="already exists. Pass overwrite=True"):
        fit_file(folder / "train.csv", model_dir, **QUICK_FIT_2D)
    assert (model_dir / "manifest.json").read_bytes() == before
    other = folder / "other"
    fit_file(folder / "train.csv", other, **QUICK_FIT_2D)
    summary = fit_file(folder / "train.csv", other, overwrite=True, **{**QUICK_FIT_2D, "latent_dim": 3})
    assert summary["model_dir"] == str(other) and aekit.load(other).module_.latent_dim == 3


def test_fit_file_takes_a_lone_column_name_to_exclude_as_one_name(tmp_path):
    # as read_data's columns: "bc" is the column bc, not the columns b and c
    table = pd.DataFrame(np.random.default_rng(0).normal(size=(80, 4)), columns=["a", "b", "c", "bc"])
    table.to_csv(tmp_path / "t.csv", index=False)
    fit_file(tmp_path / "t.csv", tmp_path / "model", exclude_columns="bc", **QUICK_FIT_2D)
    assert list(aekit.load(tmp_path / "model").feature_names_in_) == ["a", "b", "c"]


def test_fit_file_refuses_a_streaming_value_that_is_no_bool(fitted):
    _, _, _, folder = fitted
    with pytest.raises(InvalidParameterValue, match="must be True, False or None. Got 'no' instead") as refused:
        fit_file(folder / "train.csv", folder / "unwritten", streaming="no", **QUICK_FIT_2D)  # "no" is truthy
    assert (refused.value.param, refused.value.value) == ("streaming", "no")
    assert not (folder / "unwritten").exists()


def test_exclude_columns_where_it_cannot_apply_is_refused_with_the_reason(fitted, tmp_path):
    _, _, _, folder = fitted
    np.save(tmp_path / "rows.npy", np.zeros((20, 3)))
    cases = {"a time series (--window) is read": dict(data=folder / "train.csv", window=8),
             "--streaming reads": dict(data=folder / "train.csv", streaming=True),
             "rows.npy is not a table": dict(data=tmp_path / "rows.npy")}
    for reason, options in cases.items():
        with pytest.raises(InvalidParameterValue, match=re.escape(reason)) as refused:
            fit_file(options.pop("data"), tmp_path / "unwritten", exclude_columns=["x0"], **options, **QUICK_FIT_2D)
        assert refused.value.param == "exclude_columns"


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_encode_reconstruct_match_the_estimator_and_keep_ids(fitted, table, tmp_path, suffix):
    model_dir, model, _, folder = fitted
    encode_file(model_dir, folder / "train.csv", tmp_path / f"z{suffix}")
    reconstruct_file(model_dir, folder / "train.csv", tmp_path / f"x{suffix}")
    codes, rebuilt = read_data(tmp_path / f"z{suffix}"), read_data(tmp_path / f"x{suffix}")
    assert_close(codes.X, model.transform(table), rtol=1e-6, atol=1e-6, what="codes")
    assert_close(rebuilt.X, model.reconstruct(table), rtol=1e-6, atol=1e-3, what="reconstruction (units ~1000)")
    assert codes.ids.tolist() == list(range(len(table)))
    if suffix != ".npy":
        assert codes.columns == ["latent0", "latent1"] and rebuilt.columns == COLUMNS


def test_columns_in_another_order_are_matched_by_name(fitted, table, tmp_path):
    model_dir, model, _, _ = fitted
    table[COLUMNS[::-1]].to_parquet(tmp_path / "shuffled.parquet", index=False)
    encode_file(model_dir, tmp_path / "shuffled.parquet", tmp_path / "z.npy")
    assert np.array_equal(np.load(tmp_path / "z.npy"), model.transform(table))


def test_missing_columns_are_named_and_extra_ones_left_out(fitted, table, tmp_path):
    model_dir, _, _, _ = fitted
    table.drop(columns="c").assign(f=1.0, g=2.0).to_csv(tmp_path / "wrong.csv", index=False)
    with pytest.raises(InvalidInputError) as error:
        encode_file(model_dir, tmp_path / "wrong.csv", tmp_path / "z.csv")
    assert str(error.value) == (
        f"{tmp_path / 'wrong.csv'} lacks 'c': the model takes the columns 'a', 'b', 'c', "
        "'d', 'e'. Select the training columns with --columns a,b,c (Python: columns=[...]), or pass the data the "
        "model was trained on."
    )
    assert not (tmp_path / "z.csv").exists()
    table.assign(f=1.0).to_csv(tmp_path / "extra.csv", index=False)  # extra columns: select the right ones
    summary = encode_file(model_dir, tmp_path / "extra.csv", tmp_path / "z.csv", spec=DataSpec(columns=COLUMNS))
    assert summary["n_rows"] == len(table)
    # or let the model pick its columns by name: the same codes
    encode_file(model_dir, tmp_path / "extra.csv", tmp_path / "z2.csv")
    assert (tmp_path / "z2.csv").read_text() == (tmp_path / "z.csv").read_text()


def test_plain_arrays_are_matched_by_position(fitted, table, tmp_path):
    model_dir, model, _, _ = fitted
    np.savez(tmp_path / "x.npz", X=table.to_numpy(), y=np.zeros(len(table)))
    encode_file(model_dir, tmp_path / "x.npz", tmp_path / "z.npy", spec=DataSpec(key="X"))
    assert np.array_equal(np.load(tmp_path / "z.npy"), model.transform(table))
    np.save(tmp_path / "narrow.npy", table.to_numpy()[:, :4])
    with pytest.raises(InvalidInputError, match="has 4 columns; the model takes 5"):
        encode_file(model_dir, tmp_path / "narrow.npy", tmp_path / "z.npy", overwrite=True)


def test_chunked_output_is_identical_to_one_pass(fitted, tmp_path):
    model_dir, _, _, folder = fitted
    for name, chunk_rows in (("one.csv", 10_000), ("many.csv", 7)):
        score_file(model_dir, folder / "train.csv", tmp_path / name, per_feature=True,
                   spec=DataSpec(chunk_rows=chunk_rows))
    one, many = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "many.csv")
    assert list(one.columns) == list(many.columns) and one["row"].tolist() == many["row"].tolist()
    # not bitwise: a matrix product may sum in another order for another number of rows
    assert_close(many.to_numpy(), one.to_numpy(), rtol=1e-5, atol=1e-7)


def test_decode_inverts_encode_and_carries_ids(fitted, table, tmp_path):
    model_dir, model, _, _ = fitted
    codes = model.transform(table)
    write_data(tmp_path / "z.csv", codes[:, ::-1], columns=["latent1", "latent0"], ids=[f"r{i}" for i in
                                                                                            range(len(table))])
    decode_file(model_dir, tmp_path / "z.csv", tmp_path / "x.parquet")
    decoded = pd.read_parquet(tmp_path / "x.parquet")
    assert list(decoded.columns) == ["row", *COLUMNS] and decoded["row"].tolist()[:2] == ["r0", "r1"]
    assert_close(decoded[COLUMNS].to_numpy(), model.inverse_transform(codes), rtol=1e-6, atol=1e-3)
    write_data(tmp_path / "bad.csv", codes, columns=["z0", "z1"])
    with pytest.raises(InvalidInputError, match="lacks 'latent0', 'latent1': decode takes the columns"):
        decode_file(model_dir, tmp_path / "bad.csv", tmp_path / "x.csv")


def test_score_file_errors_flags_and_per_feature(fitted, table, tmp_path):
    model_dir, model, _, folder = fitted
    summary = score_file(model_dir, folder / "train.csv", tmp_path / "s.csv", per_feature=True)
    scores = pd.read_csv(tmp_path / "s.csv")
    expected = model.reconstruction_error(table)
    # an independent reference: the squared error of numpy on the scaled data and the reconstruction
    scaled = (table.to_numpy() - model.scaler_.mean_) / model.scaler_.scale_
    rebuilt = (model.reconstruct(table) - model.scaler_.mean_) / model.scaler_.scale_
    assert_close(scores["reconstruction_error"], ((scaled - rebuilt) ** 2).mean(axis=1), rtol=1e-3, atol=1e-5)
    assert_close(scores["reconstruction_error"], expected, rtol=1e-6, atol=0)
    assert_close(scores[[f"error_{c}" for c in COLUMNS]].mean(axis=1), expected, rtol=1e-5, atol=1e-7)
    outlier_scores = model.outlier_scores(table)
    assert_close(scores["outlier_score"], outlier_scores, rtol=1e-6, atol=0)
    assert scores["outlier"].tolist() == (outlier_scores > model.threshold_).astype(float).tolist()
    assert summary["n_outliers"] == int((outlier_scores > model.threshold_).sum())
    assert summary["threshold"] == model.threshold_
    assert_close(summary["mean_error"], expected.mean(), rtol=1e-6)


def test_threshold_for_another_contamination_is_the_held_out_quantile(table):
    # with no validation rows the held-out rows are the training rows, so the reference is at hand
    model = aekit.Autoencoder(**{**QUICK_FIT_2D, "validation_fraction": 0.0}).fit(table)
    errors = model.outlier_scores(table)
    for contamination in (0.01, 0.05, 0.2, 0.5):
        threshold, _ = outlier_threshold(model, contamination=contamination)
        assert_close(threshold, np.quantile(errors, 1 - contamination), rtol=1e-5, atol=0, what=str(contamination))
    assert outlier_threshold(model, threshold=1.5) == (1.5, "given")
    with pytest.raises(InvalidParameterValue, match="not both"):
        outlier_threshold(model, contamination=0.1, threshold=1.0)
    with pytest.raises(InvalidParameterValue, match=r"range \(0.0, 0.5\]"):
        outlier_threshold(model, contamination=1.5)
    for wrong in ("0.1", True, [0.1]):  # not numbers: refused with the parameter named, not a TypeError
        with pytest.raises(InvalidParameterValue, match=r"range \(0.0, 0.5\]") as refused:
            outlier_threshold(model, contamination=wrong)
        assert (refused.value.param, refused.value.value) == ("contamination", wrong)
        with pytest.raises(InvalidParameterValue, match="finite outlier score >= 0") as refused:
            outlier_threshold(model, threshold=wrong)
        assert (refused.value.param, refused.value.value) == ("threshold", wrong)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, size=(6, 5), dtype=np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


def test_images_fit_encode_with_file_ids(image_folder, tmp_path):
    fit_file(image_folder, tmp_path / "model", **{**QUICK_FIT_2D, "validation_fraction": 0.2})
    encode_file(tmp_path / "model", image_folder, tmp_path / "z.csv")
    codes = pd.read_csv(tmp_path / "z.csv")
    assert codes["file"].tolist() == [f"img{i:02d}.png" for i in range(12)]
    pixels = read_data(image_folder).X
    model = aekit.load(tmp_path / "model")
    assert getattr(model, "feature_names_in_", None) is None  # pixels are matched by position, not by name
    assert_close(codes[["latent0", "latent1"]].to_numpy(), model.transform(pixels), rtol=1e-6, atol=1e-6)
    with pytest.raises(InvalidInputError, match="have 48 values each .* Resize them with --image-size HxW"):
        encode_file(tmp_path / "model", image_folder, tmp_path / "z.csv", spec=DataSpec(image_size="6x8"),
                    overwrite=True)


def test_model_info_describes_the_folder(fitted):
    model_dir, model, _, _ = fitted
    info = model_info(model_dir)
    assert info["columns"] == COLUMNS and info["n_features"] == 5 and info["latent_dim"] == 2
    assert info["n_parameters"] == sum(p.numel() for p in model.module_.parameters())
    assert info["architecture"] == model.module_.config()
    assert info["training"]["epochs"] == 3 and info["environment"]["torch"]
    json.dumps(info)  # JSON-ready
