"""The documentation site builds with ``mkdocs build --strict``, and its pages keep their content.

Strict mode (with the ``validation`` settings of ``mkdocs.yml``) fails on a link to a missing page or
anchor and on a page left out of the navigation; the tests below check that it does, that the API
pages still hold what the docstrings say, and that the command line page has a section per command.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aekit.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
for package, extra in (("mkdocs", "mkdocs"), ("material", "mkdocs-material"), ("mkdocstrings", "mkdocstrings")):
    pytest.importorskip(package, reason=f"the docs site needs {extra} (pip install -e '.[docs]'; the dev extra has it)")
yaml = pytest.importorskip("yaml", reason="mkdocs' configuration is YAML (PyYAML comes with mkdocs)")


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, timeout=600, env={"NO_MKDOCS_2_WARNING": "1",
                                                                            "PATH": str(Path(sys.executable).parent)})


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    result = build(ROOT / "mkdocs.yml", folder)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-3000:]}"
    return folder


def text_of(page: Path) -> str:
    """The visible text of a built page's article (no navigation, no scripts)."""
    article = re.search(r"<article[^>]*>(.*)</article>", page.read_text(), re.S).group(1)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", article)).split())


def test_the_site_builds_strictly_with_every_page(site):
    for page in ("index.html", "getting-started/index.html", "cli/index.html", "api/autoencoder/index.html"):
        assert (site / page).is_file(), page
    for picture in re.findall(r"\]\((pictures/[\w.]+\.png)\)", (ROOT / "docs" / "getting-started.md").read_text()):
        assert (site / picture).stat().st_size > 10_000, f"{picture} is missing or empty"


def test_a_broken_link_or_anchor_fails_the_build(tmp_path):
    """The project's validation settings, on a two-page site with one bad link each time."""
    settings = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    for bad in ("[gone](missing.md)", "[gone](other.md#no-such-heading)"):
        docs = tmp_path / bad[8:14] / "docs"
        docs.mkdir(parents=True)
        (docs / "index.md").write_text(f"# Home\n\n{bad}\n")
        (docs / "other.md").write_text("# Other\n\n## A heading\n")
        config = docs.parent / "mkdocs.yml"
        config.write_text(yaml.safe_dump({"site_name": "t", "validation": settings["validation"],
                                          "markdown_extensions": ["toc"]}))
        result = build(config, docs.parent / "site")
        assert result.returncode != 0, f"{bad} did not fail the build"
        assert "index.md" in result.stderr


def test_the_api_page_documents_every_parameter_attribute_and_method(site):
    from aekit import Autoencoder

    text = text_of(site / "api" / "autoencoder" / "index.html")
    for name in Autoencoder().get_params():
        assert re.search(rf"\b{name}\b \(", text), f"parameter {name} is not documented on the API page"
    for attribute in ("module_", "history_", "threshold_", "n_features_in_"):
        assert attribute in text, f"attribute {attribute} is not on the API page"
    public = [name for name, value in vars(Autoencoder).items() if callable(value) and not name.startswith("_")]
    assert len(public) > 10
    headings = set(re.findall(r'id="aekit\.estimator\.Autoencoder\.(\w+)"',
                              (site / "api" / "autoencoder" / "index.html").read_text()))
    assert set(public) <= headings, f"methods without a section: {sorted(set(public) - headings)}"
    assert "Examples: >>> import numpy as np >>> from aekit import Autoencoder" in text


@pytest.mark.parametrize(("page", "names"), [
    ("saving", ["aekit.save", "aekit.load", "overwrite"]),
    ("models", ["aekit.build_model", "aekit.MLPAutoencoder", "aekit.LinearAutoencoder", "aekit.ConvAutoencoder"]),
    ("exceptions", ["AekitError", "InvalidParameterValue", "InvalidInputError", "ModelFileError", "TrainingError"]),
])
def test_the_other_api_pages_keep_their_content(site, page, names):
    text = text_of(site / "api" / page / "index.html")
    for name in names:
        assert name in text, f"{name} is missing from api/{page}"
    assert not re.search(r":(func|class|meth|mod):", text), "a Sphinx role shows as text"


def test_the_command_line_page_has_a_section_and_an_options_table_per_command(site):
    page = (site / "cli" / "index.html").read_text()
    for name, parser in build_parser().commands.items():
        match = re.search(rf'<h2 id="aekit-{name}">(.*?)(?=<h2 )', page, re.S)
        assert match, f"docs/cli.md has no '## aekit {name}' section"
        section = match.group(1)
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help", "--json", "--quiet", "--debug", "--threads"):
                    assert f"<code>{flag}" in section or f", {flag}" in section, f"aekit {name}: {flag} not listed"


def test_the_home_page_links_to_the_getting_started_cli_and_api_pages(site):
    page = (site / "index.html").read_text()
    article = re.search(r"<article[^>]*>(.*)</article>", page, re.S).group(1)
    for target in ("getting-started/", "cli/", "api/", "api/autoencoder/"):
        assert f'href="{target}"' in article, f"the home page has no link to {target}"
