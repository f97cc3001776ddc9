"""The options several commands share, and the argument types they parse with.

Every command module builds its parser from these groups (data, seed, output/--force, --json,
--quiet, --debug, --threads), so one option reads and behaves the same in every command. Nothing
here imports the library at module level: ``aekit --help`` must not wait for torch.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

CLI_SEED = 0  # the one CLI default that differs from the estimator's (None): see the README's table


# ---------------------------------------------------------------- defaults read from the library
class EstimatorDefault:
    """An option's default: "the library's own default for ``name``", read only when ``--help`` shows it.

    The CLI never copies a default value: an option left out is not passed on, so the estimator (or
    function) uses its own. ``str()``, which ``--help`` prints through ``%(default)s``, reads that
    value from ``source()``: by default the keyword defaults of ``Autoencoder.__init__``.
    """

    def __init__(self, name: str, source=None) -> None:
        self.name, self.source = name, source or _estimator_defaults

    def __str__(self) -> str:
        value = self.source()[self.name]
        if isinstance(value, (tuple, list)):
            return ",".join(map(str, value))
        return "none" if value is None else str(value)

    __repr__ = __str__


def _estimator_defaults() -> dict:
    return source_defaults("aekit.estimator.autoencoder", "Autoencoder.__init__")


# ---------------------------------------------------------------- defaults read from the source
# ``--help`` prints the library's defaults without importing the library: importing it loads torch and
# scikit-learn (seconds on a cold start), so the defaults are read from the source files, as the
# literal values written there. tests/test_cli_help.py checks them against the imported objects.
def source_defaults(module: str, function: str) -> dict:
    """The literal keyword defaults of ``function`` (``"name"`` or ``"Class.method"``) in aekit's ``module``.

    Examples
    --------
    >>> source_defaults("aekit.analysis.comparison", "compare_with_pca")["heldout_fraction"]
    0.2
    """
    arguments = _definition(module, function).args
    positional = arguments.posonlyargs + arguments.args
    pairs = [*zip(positional[len(positional) - len(arguments.defaults):], arguments.defaults, strict=True),
             *zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)]
    return {argument.arg: value for argument, default in pairs if (value := _literal(default)) is not _NOT_LITERAL}


def returned_call_keywords(module: str, function: str) -> dict:
    """The literal keyword arguments of the call that ``function`` of aekit's ``module`` returns.

    Examples
    --------
    >>> returned_call_keywords("aekit.analysis.defaults", "default_autoencoder")["hidden_dims"]
    (128, 64)
    """
    returned = [node.value for node in ast.walk(_definition(module, function)) if isinstance(node, ast.Return)]
    call = next(value for value in returned if isinstance(value, ast.Call))
    return {word.arg: value for word in call.keywords if (value := _literal(word.value)) is not _NOT_LITERAL}


_NOT_LITERAL = object()


def _literal(node):
    try:
        return _NOT_LITERAL if node is None else ast.literal_eval(node)
    except ValueError:  # a name or an expression: not a value the source spells out
        return _NOT_LITERAL


def _definition(module: str, qualified_name: str) -> ast.FunctionDef:
    """The definition of ``qualified_name`` in the source of aekit's ``module``, parsed, not imported."""
    path = Path(__file__).resolve().parents[1].joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    scope: ast.AST = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for name in qualified_name.split("."):
        scope = next(node for node in scope.body
                     if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name)
    return scope


# ---------------------------------------------------------------- library parameters and their options
# The one table from a library parameter to the option that sets it, where the option has another
# name; every other parameter's option is its name with dashes (latent_dim: --latent-dim). Commands
# pass options to the library through it, and messages name parameters through it (cli.spelling).
OPTION_DESTS = {"hidden_dims": "hidden", "validation_fraction": "val_fraction", "random_state": "seed",
                "heldout_fraction": "heldout", "n_jobs": "threads", "overwrite": "force"}


def option_dest(parameter: str) -> str:
    """The attribute of the parsed arguments that holds library ``parameter`` (see :data:`OPTION_DESTS`)."""
    return OPTION_DESTS.get(parameter, parameter)


def given(value) -> bool:
    """Whether an option was given on the command line (not left at an :class:`EstimatorDefault`)."""
    return not isinstance(value, EstimatorDefault)


# ---------------------------------------------------------------- option groups
def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every command has: --json, --quiet, --debug, --threads."""
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summaries on stderr/stdout")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    parser.add_argument("--threads", type=_positive_int, metavar="N",
                        help="CPU threads for PyTorch (default: the cores this process may use, and one for the "
                             "training steps of a small model; 1 on a busy machine)")


def add_data_options(parser: argparse.ArgumentParser, *, columns: bool) -> None:
    """How to read DATA: columns (tables), key (.npz), separator (text tables), image size (folders)."""
    group = parser.add_argument_group("data")
    if columns:
        group.add_argument("--columns", type=column_names, metavar="A,B,C",
                           help="numeric columns to use (default: every column but the id column)")
    group.add_argument("--key", metavar="NAME", help="the array to read from a .npz file (default: its only array)")
    group.add_argument("--sep", metavar="CHAR", type=_separator,
                       help="field separator of a text table (default: a tab for .tsv, a comma for .csv; "
                       ".csv.gz and .tsv.gz are read through gzip)")
    group.add_argument("--image-size", metavar="HxW", help="resize every image to HxW (needed when sizes differ)")


def data_spec(args: argparse.Namespace):
    """The :class:`aekit.data.DataSpec` the data options (:func:`add_data_options`) give."""
    from aekit.data import DataSpec  # here: `aekit --help` must not wait for the library

    return DataSpec(columns=args.columns, key=args.key, image_size=args.image_size, sep=args.sep)


def add_seed_option(parser, *, default=CLI_SEED, help: str = "random seed (default: %(default)s)") -> None:
    """``--seed``: by default the CLI's fixed seed, so that a command run twice gives the same result."""
    parser.add_argument("--seed", type=int, default=default, help=help)


FILE_TARGET = "OUT when it is an existing regular file (never a folder, link, FIFO or device)"


def add_force_option(parser: argparse.ArgumentParser, target: str = FILE_TARGET) -> None:
    """``--force``: replace an existing output (a model folder, or a regular file: never anything else)."""
    parser.add_argument("--force", action="store_true", help=f"replace {target}")


def show_progress(args: argparse.Namespace, *, logs: bool = False) -> int:
    """Verbosity for library calls: progress bars only on a terminal, and never with --quiet or --json.

    With ``logs`` (training, where minutes may pass), also when stderr is not a terminal: the trainer
    then writes a line every tenth of the epochs instead of a bar, so a logged run is not silent.
    """
    return int(not (args.quiet or args.json) and (logs or sys.stderr.isatty()))


# ---------------------------------------------------------------- argument types
def column_names(text: str) -> list[str]:
    """``a,b,c``: a list of names (``--columns``, ``--keep-columns``)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated column names such as a,b,c, got {text!r}")
    return names


def widths(text: str) -> tuple[int, ...]:
    """``256,64``: positive layer widths (``--hidden``)."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive widths such as 256,64, got {text!r}")
    return values


def contamination(text: str) -> float | str:
    """``--contamination``: a share of the rows, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share of the rows such as 0.05, or auto, got {text!r}") from None


def int_or_word(text: str) -> int | str:
    """An int, or a word the estimator may accept (``auto``; it names what it takes when it does not)."""
    try:
        return int(text)
    except ValueError:
        return text.strip()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of threads such as 1 or 4, got {text!r}")
    return value


def _separator(text: str) -> str:
    """One character; ``\\t`` (as typed in a shell) is the tab."""
    return "\t" if text in ("\\t", "tab", "TAB") else text
