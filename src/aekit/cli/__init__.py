"""The ``aekit`` command line: parse arguments, call the library, write files.

Each command lives in its own module in this package, exposing ``register(subparsers)`` which adds
its parser (from the shared option groups of :mod:`aekit.cli.options`) and sets ``func`` (a
callable taking the parsed arguments and returning a JSON-ready summary dict, or None). Errors
aekit raises on purpose become one line on stderr and exit code 2; ``--debug`` shows the traceback
instead.

Parsing needs nothing but argparse: the command modules import the library (and with it torch,
seconds on a cold start) inside the functions that run a command, so that ``aekit --version`` and
``aekit --help`` answer at once, and Ctrl-C while those imports run is one line and exit code 130.

The command sets ``OMP_WAIT_POLICY=PASSIVE`` (unless it is set) before torch loads OpenMP: its threads
then sleep while they wait for work instead of spinning, which on a machine busy with other work
holds every barrier up for a core another process has (docs/performance.md, "Threads"). The library
itself changes no environment variable.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import math
import os
import sys
import warnings

from aekit._version import __version__
from aekit.cli.options import add_common_options, show_progress

__all__ = ["add_common_options", "build_parser", "main", "printable", "show_progress", "to_json"]

# One module per command group; each adds its subcommands in register().
COMMAND_MODULES = ("aekit.cli.demo", "aekit.cli.fit", "aekit.cli.transform", "aekit.cli.info", "aekit.cli.plots",
                   "aekit.cli.analysis", "aekit.cli.export")


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit code 2 (argparse prints the usage too)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _threads(count: int | None) -> contextlib.AbstractContextManager:
    """``--threads``: for PyTorch's thread pools when created (set before torch is imported), and while running."""
    if count is None:
        return contextlib.nullcontext()
    from aekit.hardware import check_thread_count

    check_thread_count(count)  # before torch sizes its pools: too many threads fail there, not with a message
    if "torch" not in sys.modules:  # the pools are sized once, at import: no extra threads ever started
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(count)
    from aekit.hardware import threads

    return threads(count)


def printable(text: str) -> str:
    """`text` with control characters and other unprintable ones escaped (``\\x1b``, ``\\u202e``).

    Names and values from data or model files reach the terminal this way: an escape sequence in a
    column name must show as text, not move the cursor or retitle the window.
    """
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


def to_json(summary) -> str:
    """Strict JSON (RFC 8259) of a summary: NaN and infinities become null, NumPy scalars plain numbers."""
    return json.dumps(_json_ready(summary), indent=2, allow_nan=False, default=str)


def _json_ready(value):
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, str):  # NumPy arrays and scalars
        return _json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="aekit",
        description="Autoencoders from the shell: fit, encode, decode, reconstruct, score, compare with PCA.",
    )
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    parser.commands = subparsers.choices  # name -> its parser: the options a message may name
    return parser


def spelling(parser: argparse.ArgumentParser, command: str):
    """How the command names a library parameter: its option (``latent_dim=8`` as ``--latent-dim 8``),
    found through the one table :data:`aekit.cli.options.OPTION_DESTS`; None where the command has no
    option for it (the message keeps Python's words there).

    Examples
    --------
    >>> from aekit.exceptions import Parameter, Setting, Words
    >>> spell = spelling(build_parser(), "fit")
    >>> Words(Parameter("hidden_dims", of="Autoencoder"), " must be a tuple. Use ", Setting("loss", "mse"),
    ...       " or ", Setting("input_shape", (1, 8, 8)), ".").spelled(spell)
    '--hidden must be a tuple. Use --loss mse or input_shape=(1, 8, 8).'
    """
    from aekit.cli.options import option_dest

    command_parser = getattr(parser, "commands", {}).get(command)
    actions = {action.dest: action for action in getattr(command_parser, "_actions", ()) if action.option_strings}

    def spell(part) -> str | None:
        action = actions.get(option_dest(part.name))
        if action is None:
            return None
        flag = next(option for option in action.option_strings if option.startswith("--"))
        if not getattr(part, "has_value", False):  # the parameter itself: the subject of a sentence, or a bare name
            return flag
        return f"{flag} {part.shown}" if part.shown is not None else _option_with_value(action, flag, part.value)

    return spell


def _option_with_value(action: argparse.Action, flag: str, value) -> str | None:
    """``flag`` given ``value`` as one types it: ``--loss mse``, ``--hidden 64,32``, ``--scaler none``,
    ``--force``; None for a value the option cannot spell (``resume=False``: there is no option for it)."""
    if isinstance(value, bool):
        if isinstance(action, argparse.BooleanOptionalAction):
            return action.option_strings[0 if value else 1]
        return flag if value and action.nargs == 0 else None
    if value is None:
        return f"{flag} none"
    if isinstance(value, list | tuple):
        return f"{flag} {','.join(map(str, value))}"
    return f"{flag} {value}"


@contextlib.contextmanager
def _one_line_warnings(command: str, spell):
    """Python warnings as one line on stderr, in the command line's words (no source path, no code line)."""
    from aekit.exceptions import spelled

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        # a warning's text is its first argument: Words where it names parameters (warnings.warn(Words(...)))
        text = spelled(message.args[0] if isinstance(message, Warning) and message.args else message, spell)
        print(f"aekit {command}: warning: {printable(' '.join(text.split()))}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the command's own parser says it, so the message points to `aekit COMMAND --help`
        parser.commands.get(getattr(args, "command", None), parser).error(
            f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    spell = spelling(parser, args.command)
    if "torch" not in sys.modules:  # read once, when torch loads OpenMP (see the module)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        from aekit.exceptions import AekitError  # (sklearn: a second or more on a cold start)
    except KeyboardInterrupt:
        print(f"aekit {args.command}: interrupted", file=sys.stderr)
        return 130
    try:
        with _threads(args.threads), _one_line_warnings(args.command, spell):
            summary = args.func(args)
        if args.json and summary is not None:
            print(to_json(summary))
    except BrokenPipeError:  # `aekit info model | head`: the reader has gone; quiet, as any Unix tool
        _silence_stdout()
        return 141
    except (AekitError, OSError) as error:  # OSError: a user path the library did not wrap (permissions, ...)
        if args.debug:
            raise
        if isinstance(error, OSError):
            message = f"{error}. Check the path and its permissions."
        else:
            message = error.worded(spell)
        message = printable(" ".join(message.split()))
        print(f"aekit {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # also while importing; the trainer's says where it saved, how to resume
        print(f"aekit {args.command}: interrupted" + (f". {interrupt}" if str(interrupt) else ""), file=sys.stderr)
        return 130
    return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush does not fail on the closed pipe again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass
