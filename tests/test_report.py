"""The HTML report and the `aekit plot` / `aekit report` commands."""

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

import aekit
from aekit.cli import main
from aekit.report import quality_against_pca, write_report
from conftest import TABLE_FIT, assert_close

VOID = {"meta", "img", "br", "hr", "link", "input"}


class _Collector(HTMLParser):
    """Collects tags, attributes and text, and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack, self.images, self.tags, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "img":
            self.images.append(dict(attrs))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(path) -> _Collector:
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8"))
    collector.close()
    assert collector.stack == [], f"unclosed elements {collector.stack}"
    return collector


def decode_png(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1], validate=True)))
    image.load()
    assert image.format == "PNG"
    return image


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.data[:360].astype(np.float32), data.target[:360]


@pytest.fixture(scope="module")
def fitted(digits):
    X, _ = digits
    return aekit.Autoencoder(4, hidden_dims=(32,), scaler="minmax", epochs=8, random_state=0).fit(X)


def test_quality_against_pca_matches_scikit_learn(fitted, digits):
    X, _ = digits
    quality = quality_against_pca(fitted, X)
    scaled = fitted.scaler_.transform(X)
    pca = PCA(4, svd_solver="full").fit(scaled)
    expected = np.mean((pca.inverse_transform(pca.transform(scaled)) - scaled) ** 2)
    assert_close(quality["pca_mse"], expected, rtol=1e-6, atol=0)
    reconstructed = fitted.scaler_.transform(fitted.reconstruct(X))
    assert_close(quality["autoencoder_mse"], np.mean((reconstructed - scaled) ** 2), rtol=1e-4, atol=0)
    assert quality["ratio"] == pytest.approx(quality["autoencoder_mse"] / quality["pca_mse"])


def test_report_is_valid_self_contained_html_with_the_models_numbers(fitted, digits, tmp_path):
    X, y = digits
    summary = write_report(fitted, tmp_path / "report.html", X, labels=y, label_name="digit")
    page = parse(summary["path"])
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    # nothing to fetch: no scheme-relative or remote URL, no script, no stylesheet link
    without_data = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    assert "//" not in without_data and "url(" not in without_data and "@import" not in without_data
    assert not any(tag in ("script", "link", "iframe", "object") for tag, _ in page.tags)
    links = [value for _, attrs in page.tags for key, value in attrs.items() if key in ("src", "href")]
    assert all(value.startswith("data:") for value in links)
    assert summary["figures"] == ["training_curves", "latent", "ae_vs_pca", "reconstructions", "error_histogram"]
    assert [image["alt"] for image in page.images] == summary["figures"]
    for image in page.images:
        assert min(decode_png(image["src"]).size) >= 100
    words = " ".join(page.text)
    assert f"{fitted.history_['train_loss'][-1]:.6g}" in words
    assert f"{summary['quality']['pca_mse']:.6g}" in words and f"{summary['quality']['ratio']:.6g}" in words
    steps = fitted.history_["steps_per_epoch"]
    assert summary["training"]["epochs run"] == f"{fitted.n_iter_} of at most 8 epochs, {steps} steps each"


def test_a_table_models_report_draws_its_codes_and_the_scores_it_has(tmp_path):
    rng = np.random.default_rng(0)
    t = rng.normal(size=150)
    X = pd.DataFrame({"a": t, "b": 2 * t + rng.normal(0, 0.1, 150), "kind": np.where(t > 0, "up", "down")})
    X.loc[3, "b"] = np.nan
    X.loc[7, :] = np.nan  # no cell: no score, left out of the histogram, never an error
    model = aekit.Autoencoder(latent_dim=1, **{**TABLE_FIT, "epochs": 5}).fit(X)
    summary = write_report(model, tmp_path / "r.html", X, labels=X["kind"].fillna("?"), label_name="kind")
    assert summary["figures"] == ["training_curves", "latent", "error_histogram"]
    assert summary["quality"] is None  # PCA compares rows of numbers, which a table's are not
    assert [entry["label"] for entry in summary["top_outliers"]] == [
        X["kind"].fillna("?")[entry["row"]] for entry in summary["top_outliers"]]
    assert 7 not in [entry["row"] for entry in summary["top_outliers"]]


def test_report_without_data_has_the_training_curves_only(fitted, tmp_path):
    summary = write_report(fitted, tmp_path / "r.html", title="<b>mine</b>")
    page = parse(summary["path"])
    assert summary["figures"] == ["training_curves"] and summary["quality"] is None
    assert "<b>mine</b>" in " ".join(page.text)  # the title is escaped, not markup
    assert not any(tag == "b" for tag, _ in page.tags)


@pytest.fixture(scope="module")
def saved(fitted, digits, tmp_path_factory):
    X, y = digits
    folder = tmp_path_factory.mktemp("cli")
    fitted.save(folder / "model")
    table = pd.DataFrame(X, columns=[f"px{i}" for i in range(X.shape[1])]).assign(digit=y)
    table.to_csv(folder / "digits.csv", index=False)
    return folder


def test_cli_plot_writes_the_pictures(saved, capsys):
    assert main(["plot", str(saved / "model"), str(saved / "digits.csv"), "-o", str(saved / "plots"),
                 "--label-column", "digit", "--json"]) == 0
    out = capsys.readouterr().out
    files = sorted(p.name for p in (saved / "plots").iterdir())
    assert files == ["ae_vs_pca.png", "error_histogram.png", "latent.png", "reconstructions.png", "training_curves.png"]
    for name in files:
        assert (saved / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '"latent":' in out


def test_cli_report_writes_one_html_file(saved, capsys):
    assert main(["report", str(saved / "model"), str(saved / "digits.csv"), "-o", str(saved / "r.html"),
                 "--label-column", "digit"]) == 0
    assert "5 pictures" in capsys.readouterr().out
    assert len(parse(saved / "r.html").images) == 5


def test_cli_errors_are_one_line_and_exit_2(saved, capsys):
    assert main(["plot", str(saved / "model"), "--label-column", "digit", "-o", str(saved / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "aekit plot: error: --label-column needs DATA: pass the data file after MODEL_DIR."
    assert main(["report", str(saved / "nothing"), "-o", str(saved / "x.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aekit report: error: Model folder") and "does not exist" in err


def test_cli_plot_and_report_of_a_model_with_column_names_raise_no_warnings(saved, tmp_path, capsys):
    """A model fitted from a CSV knows its columns; DATA is read by name and handed over with the names
    (numpy arrays made scikit-learn warn "X does not have valid feature names" on every call)."""
    import warnings

    assert main(["fit", str(saved / "digits.csv"), "-o", str(tmp_path / "named"), "--columns",
                 ",".join(f"px{i}" for i in range(64)), "--latent-dim", "2", "--epochs", "2", "--quiet"]) == 0
    assert aekit.load(tmp_path / "named").feature_names_in_[0] == "px0"
    capsys.readouterr()  # two epochs may end still improving (a ConvergenceWarning of the fit): not what is tested
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["plot", str(tmp_path / "named"), str(saved / "digits.csv"), "-o", str(tmp_path / "p"),
                     "--label-column", "digit", "--quiet"]) == 0
        assert main(["report", str(tmp_path / "named"), str(saved / "digits.csv"), "-o", str(tmp_path / "r.html"),
                     "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert len(parse(tmp_path / "r.html").images) == 5


def test_the_report_shows_the_seed_as_given_and_what_the_time_counts(tmp_path):
    import re

    import numpy as np

    import aekit
    from aekit.report import write_report

    X = np.random.default_rng(0).normal(size=(60, 4))
    given = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=7).fit(X)
    text = (write_report(given, tmp_path / "given.html")["path"]).read_text()
    assert "<th>random_state</th><td>7</td>" in text and "s (the training loop)</td>" in text
    drawn = aekit.Autoencoder(latent_dim=2, epochs=2).fit(X)
    text = (write_report(drawn, tmp_path / "drawn.html")["path"]).read_text()
    assert re.search(r"<th>random_state</th><td>none given \(seed drawn: (\d+)\)</td>", text).group(1) == str(
        drawn.seed_)


def test_the_report_names_the_top_outliers_by_label_and_shows_no_internal_fields(fitted, digits, tmp_path):
    X, y = digits
    summary = write_report(fitted, tmp_path / "labelled.html", X, labels=y, label_name="digit")
    text = (tmp_path / "labelled.html").read_text()
    top = summary["top_outliers"]
    assert [entry["label"] for entry in top] == [int(y[entry["row"]]) for entry in top]
    assert "<th>row</th><th>digit</th><th>outlier score</th>" in text
    first = top[0]
    assert f"<tr><td>{first['row']}</td><td>{first['label']}</td>" in text
    for internal in ("layout", "training loop seconds", "final train loss", "best epoch"):
        assert internal not in text, internal
    kept = fitted.history_["best_epoch"]
    assert summary["training"]["weights kept"] == ("PCA (epoch 0)" if kept == 0 else f"epoch {kept}")
    assert summary["training"]["their validation loss"] == (
        fitted.history_["val_loss"][kept - 1] if kept else fitted.history_["initial_loss"])
