"""One set of defaults and one vocabulary: the CLI follows the estimator and speaks in options."""

import inspect
import re

import numpy as np
import pytest

import aekit
from aekit.analysis import default_autoencoder, sweep_latent_dims
from aekit.cli import build_parser, main
from aekit.cli.fit import estimator_params
from aekit.cli.options import CLI_SEED


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_fit_left_at_its_defaults_builds_the_estimators_defaults():
    args = build_parser().parse_args(["fit", "data.csv", "-o", "model"])
    params = estimator_params(args)
    built = aekit.Autoencoder(**params).get_params()
    # the one deliberate exception: the CLI's seed, so that a command run twice gives the same model
    expected = aekit.Autoencoder(random_state=CLI_SEED, verbose=params["verbose"]).get_params()
    assert built == expected
    assert set(params) <= {"verbose", "random_state", "checkpoint_dir", "resume"}  # nothing else copied


def _entry(text: str, option: str) -> str:
    """The help text of OPTION's own entry (its name and metavar, not in the usage line's brackets)."""
    match = re.search(rf"(?<!\[){re.escape(option)} [A-Z][A-Z_,.]* (.{{0,400}})", text)
    assert match, f"{option} has no entry of its own in the help"
    return match.group(1)


def test_help_texts_read_the_library_values(capsys):
    estimator = aekit.Autoencoder()
    text = _help(capsys, "fit")
    for option, value in (("--epochs", estimator.epochs), ("--batch-size", estimator.batch_size),
                          ("--patience", estimator.patience), ("--contamination", estimator.contamination),
                          ("--latent-dim", estimator.latent_dim)):
        assert f"(default: {value})" in _entry(text, option), option
    assert f"(default: {','.join(map(str, estimator.hidden_dims))})" in text
    template = default_autoencoder()
    text = _help(capsys, "compare-pca")
    assert f"(default: {template.epochs})" in text and f"(default: {','.join(map(str, template.hidden_dims))})" in text
    assert inspect.signature(sweep_latent_dims).parameters["dims"].default is None  # chosen from the data
    assert "(default: the powers of two from 2 to 32 below the number" in " ".join(_help(capsys, "sweep").split())


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("consistency")
    np.save(folder / "x.npy", np.random.default_rng(0).normal(size=(60, 4)))
    assert main(["fit", str(folder / "x.npy"), "-o", str(folder / "model"), "--epochs", "2", "--quiet"]) == 0
    return folder


def test_messages_name_options_not_python_parameters(model, capsys):
    assert main(["fit", str(model / "x.npy"), "-o", str(model / "m0"), "--latent-dim", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "aekit fit: error: --latent-dim must be an int in the range [1, inf) or a str among {'auto'}. " \
                  "Got 0 instead.\n"
    assert main(["fit", str(model / "x.npy"), "-o", str(model / "m1"), "--val-fraction", "1.5"]) == 2
    assert capsys.readouterr().err.startswith("aekit fit: error: --val-fraction must be")


def test_too_many_threads_suggest_a_fix_each_door_takes(model, capsys):
    from aekit.hardware import max_threads

    too_many = str(max_threads() + 1)
    assert main(["fit", str(model / "x.npy"), "-o", str(model / "m0"), "--threads", too_many]) == 2
    err = capsys.readouterr().err
    assert f"--threads {too_many} asks for more threads" in err and "leave --threads unset" in err
    fix = re.search(r"Use at most (\d+)", err)
    assert fix and int(fix.group(1)) == max_threads()
    assert main(["fit", str(model / "x.npy"), "-o", str(model / "m0"), "--threads", fix.group(1), "--epochs", "1",
                 "--quiet"]) == 0  # the count it suggests is taken (-1, which the option refuses, is not suggested)
    with pytest.raises(aekit.exceptions.InvalidParameterValue, match="leave n_jobs unset"):
        aekit.Autoencoder(n_jobs=max_threads() + 1).fit(np.zeros((10, 2)))


def test_warnings_are_one_clean_line(model, capsys):
    assert main(["fit", str(model / "x.npy"), "-o", str(model / "m2"), "--latent-dim", "4", "--epochs", "1",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aekit fit: warning: --latent-dim 4 >= n_features=4"), err
    assert ".py" not in err and "UserWarning" not in err


def test_fit_and_score_take_the_same_contamination_range(model, capsys):
    assert main(["fit", str(model / "x.npy"), "-o", str(model / "m3"), "--contamination", "0.7"]) == 2
    fit_error = capsys.readouterr().err.split("error: ", 1)[1]
    assert main(["score", str(model / "model"), str(model / "x.npy"), "-o", str(model / "s.csv"),
                 "--contamination", "0.7"]) == 2
    score_error = capsys.readouterr().err.split("error: ", 1)[1]
    assert fit_error == score_error == (
        "--contamination must be a float in the range (0.0, 0.5] or a str among {'auto'}. Got 0.7 instead.\n")
    assert main(["score", str(model / "model"), str(model / "x.npy"), "-o", str(model / "s.csv"),
                 "--contamination", "0.5", "--quiet"]) == 0


@pytest.fixture(scope="module")
def wide_table(tmp_path_factory):
    """A table with an id, a text label and the four feature columns (in another order than at fit)."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("wide")
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(70, 4)), columns=["a", "b", "c", "d"])
    assert main(["fit", str(_csv(features, folder / "train.csv")), "-o", str(folder / "model"), "--epochs", "2",
                 "--quiet"]) == 0
    wide = features[["d", "b", "a", "c"]].assign(id=[f"s{i}" for i in range(70)], label=rng.integers(0, 3, 70))
    return folder, features, wide[["id", "d", "label", "b", "a", "c"]]


def _csv(frame, path):
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_wider_table_is_read_by_name_and_keeps_columns(wide_table, tmp_path, capsys, suffix):
    import pandas as pd

    folder, features, wide = wide_table
    source = tmp_path / f"wide{suffix}"
    wide.to_csv(source, index=False) if suffix == ".csv" else wide.to_parquet(source, index=False)
    model = aekit.load(folder / "model")
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    for command, expected in (("encode", model.transform(features)), ("reconstruct", model.reconstruct(features))):
        out = tmp_path / f"{command}{suffix}"
        assert main([command, str(folder / "model"), str(source), "-o", str(out), "--keep-columns", "id,label",
                     "--quiet"]) == 0
        written = read(out)
        assert list(written.columns[:3]) == ["row", "id", "label"]
        assert written["id"].tolist() == wide["id"].tolist() and written["label"].tolist() == wide["label"].tolist()
        np.testing.assert_allclose(written.iloc[:, 3:].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    # decode reads the codes by name from a table that carries other columns, and can carry them on
    out = tmp_path / f"decoded{suffix}"
    assert main(["decode", str(folder / "model"), str(tmp_path / f"encode{suffix}"), "-o", str(out),
                 "--keep-columns", "label", "--quiet"]) == 0
    assert read(out)["label"].tolist() == wide["label"].tolist()


def test_score_flags_are_integers_and_without_output_only_the_summary(wide_table, tmp_path, capsys):
    import pandas as pd

    folder, features, wide = wide_table
    source = _csv(wide, tmp_path / "wide.csv")
    assert main(["score", str(folder / "model"), str(source), "-o", str(tmp_path / "s.csv"), "--keep-columns", "id",
                 "--contamination", "0.2", "--quiet"]) == 0
    text = (tmp_path / "s.csv").read_text().splitlines()
    assert text[0] == "row,id,reconstruction_error,outlier_score,outlier"
    assert {line.rsplit(",", 1)[1] for line in text[1:]} == {"0", "1"}  # 0/1, never 0.0/1.0
    scores = pd.read_csv(tmp_path / "s.csv")
    model = aekit.load(folder / "model")
    # float32 sums in another order
    np.testing.assert_allclose(scores["reconstruction_error"], model.reconstruction_error(features), rtol=1e-4)
    assert main(["score", str(folder / "model"), str(source), "-o", str(tmp_path / "s.parquet"), "--quiet"]) == 0
    assert pd.read_parquet(tmp_path / "s.parquet")["outlier"].dtype.kind == "i"

    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["score", str(folder / "model"), str(source), "--contamination", "0.2"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and f"{int(scores['outlier'].sum())} of 70 rows are outliers" in out
    assert "written" not in out and sorted(p.name for p in tmp_path.iterdir()) == before


def test_keep_columns_errors_name_the_problem(wide_table, tmp_path, capsys):
    folder, _, wide = wide_table
    source = _csv(wide, tmp_path / "wide.csv")
    assert main(["encode", str(folder / "model"), str(source), "-o", str(tmp_path / "z.csv"),
                 "--keep-columns", "idd"]) == 2
    assert "--keep-columns names 'idd', which" in capsys.readouterr().err
    assert main(["encode", str(folder / "model"), str(source), "-o", str(tmp_path / "z.npy"),
                 "--keep-columns", "id"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_logged_fit_writes_progress_lines(model, capsys):
    """stderr is not a terminal here (captured): a line every tenth of the epochs instead of a bar."""
    assert main(["fit", str(model / "x.npy"), "-o", str(model / "m4"), "--epochs", "20", "--latent-dim", "2",
                 "--patience", "50"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/20", *(f"epoch {e}/20" for e in range(2, 21, 2))]
    assert "\r" not in captured.err
    assert "time: training loop" in captured.out and "whole fit" in captured.out
    assert main(["fit", str(model / "x.npy"), "-o", str(model / "m5"), "--epochs", "5", "--quiet"]) == 0
    assert "epoch" not in capsys.readouterr().err


def test_reconstructions_of_images_as_a_png_folder(tmp_path, capsys):
    import pandas as pd
    from PIL import Image

    from aekit.data import read_data

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)).save(images / f"{i}.png")
    assert main(["fit", str(images), "-o", str(tmp_path / "m"), "--epochs", "2", "--quiet"]) == 0
    assert main(["reconstruct", str(tmp_path / "m"), str(images), "-o", str(tmp_path / "out") + "/", "--quiet"]) == 0
    written = read_data(tmp_path / "out")
    assert written.ids.tolist() == [f"{i}.png" for i in range(6)] and written.image_shape == (3, 6, 5)
    source = read_data(images)
    model = aekit.load(tmp_path / "m")
    expected = np.clip(model.reconstruct(pd.DataFrame(source.X, columns=source.columns)), 0, 1)
    np.testing.assert_allclose(written.X, expected, atol=0.5 / 255 + 1e-6, rtol=0)  # 8-bit rounding
    # decoded codes too, named by the file column the codes carry
    assert main(["encode", str(tmp_path / "m"), str(images), "-o", str(tmp_path / "z.csv"), "--quiet"]) == 0
    assert main(["decode", str(tmp_path / "m"), str(tmp_path / "z.csv"), "-o", str(tmp_path / "dec") + "/",
                 "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "dec").iterdir()) == [f"{i}.png" for i in range(6)]
    # codes are no images: a folder is refused with the reason
    assert main(["encode", str(tmp_path / "m"), str(images), "-o", str(tmp_path / "codes") + "/"]) == 2
    assert "only images are written as a folder of PNG files" in capsys.readouterr().err


def test_fit_and_score_read_tsv_gzip_and_a_given_separator(tmp_path, capsys):
    import pandas as pd

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=["a", "b", "c"])
    frame.to_csv(tmp_path / "train.tsv.gz", sep="\t", index=False)
    frame.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    assert main(["fit", str(tmp_path / "train.tsv.gz"), "-o", str(tmp_path / "m"), "--epochs", "2", "--quiet"]) == 0
    assert list(aekit.load(tmp_path / "m").feature_names_in_) == ["a", "b", "c"]
    assert main(["score", str(tmp_path / "m"), str(tmp_path / "semi.csv"), "--sep", ";", "-o",
                 str(tmp_path / "s.csv"), "--quiet"]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv")["reconstruction_error"],
                               aekit.load(tmp_path / "m").reconstruction_error(frame), rtol=1e-4)  # float32 sums
    assert main(["score", str(tmp_path / "m"), str(tmp_path / "semi.csv"), "-o", str(tmp_path / "t.csv")]) == 2
    assert "Pass --sep ';'" in capsys.readouterr().err


def test_command_modules_share_options_only_through_the_options_module():
    """A command imports from aekit.cli and aekit.cli.options, never from another command's module."""
    import ast
    from pathlib import Path

    import aekit.cli

    folder = Path(aekit.cli.__file__).parent
    shared = {"aekit.cli", "aekit.cli.options"}
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aekit.cli"):
                assert node.module in shared, f"{path.name} imports from {node.module}"
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                assert not private, f"{path.name} imports private {private} from {node.module}"
