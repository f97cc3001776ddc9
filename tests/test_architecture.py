"""The package's structure: no import cycle between aekit's modules, and the written layering holds.

The import graph is built from the source with ``ast`` (every ``import``, at module level or inside a
function, since a function-level import is still a dependency); the layering itself is the
import-linter contract in pyproject.toml, checked here too when import-linter is installed.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file, for every module and package under ``root`` (a folder holding packages)."""
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (by name; relative imports resolved)."""
    modules = {name: path for name, path in module_names(root).items() if name.split(".")[0] == package}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # "from pkg import sub" imports the module pkg.sub; "from pkg import name" imports pkg
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # "import pkg.mod.attr"-style: the longest module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from pkg.sub.c import g\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("from ..a import x\n")  # relative: pkg.a
    (package / "d.py").write_text("import pkg.a\n")  # imports into the cycle, is not part of it
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.b"] == {"pkg.sub.c"} and graph["pkg.sub.c"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


def test_aekit_has_no_import_cycle():
    graph = import_graph(SOURCE, "aekit")
    assert len(graph) > 30 and sum(map(len, graph.values())) > 2 * len(graph)  # the graph sees the imports
    assert cycles(graph) == [], "import cycles between aekit's modules (each list is one cycle)"


@pytest.mark.skipif(shutil.which("lint-imports", path=str(Path(sys.executable).parent)) is None,
                    reason="import-linter is not installed (pip install -e '.[dev]')")
def test_the_layering_contract_holds():
    """pyproject.toml's [tool.importlinter] contract: every module imports only from the layers below it."""
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=SOURCE.parent, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def readme_tree(readme: Path) -> set[str]:
    """The module paths (``aekit/data/text.py``...) the README's Design tree lists."""
    text = readme.read_text()
    block = text[text.index("## Design"):]
    block = block[block.index("```text\n") + len("```text\n"):]
    block = block[: block.index("```")]
    listed, folders = set(), []
    for line in block.splitlines()[1:]:  # below "src/aekit/"
        depth = (len(line) - len(line.lstrip(" "))) // 2 - 1
        entry = re.split(r"\s{2,}", line.strip())[0]  # the name(s), then two or more spaces, then what it is
        del folders[depth:]
        if entry.endswith("/"):
            folders.append(entry.rstrip("/"))
            continue
        for name in entry.split(", "):
            listed.add("/".join(["aekit", *folders, name.strip()]))
    return listed


def test_the_readmes_design_tree_lists_every_module_and_only_those():
    actual = {str(path.relative_to(SOURCE)) for path in (SOURCE / "aekit").rglob("*.py")}
    listed = readme_tree(SOURCE.parent / "README.md")
    assert not actual - listed, f"modules the README's Design tree leaves out: {sorted(actual - listed)}"
    assert not listed - actual, f"modules the README's Design tree lists but do not exist: {sorted(listed - actual)}"


def code_lines(path: Path) -> int:
    """Lines of ``path`` that are neither blank, comments nor docstrings."""
    tree = ast.parse(path.read_text())
    docstring_lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            is_text = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            if is_text and isinstance(first.value.value, str):
                docstring_lines.update(range(first.lineno, first.end_lineno + 1))
    return sum(1 for number, line in enumerate(path.read_text().splitlines(), 1)
               if line.strip() and not line.strip().startswith("#") and number not in docstring_lines)


def test_no_module_is_over_400_lines_of_code():
    """Small modules, one responsibility each (docstrings, which the doctests run, are not counted)."""
    sizes = {str(path.relative_to(SOURCE)): code_lines(path) for path in (SOURCE / "aekit").rglob("*.py")}
    assert max(sizes.values()) > 100  # the count counts
    assert {name: size for name, size in sizes.items() if size > 400} == {}
