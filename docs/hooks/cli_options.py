"""MkDocs hooks: the command line page's option tables, and the docstrings' Sphinx roles.

``<!-- options: COMMAND -->`` in a page becomes a table of that command's options, built from
``aekit``'s own argument parser when the site is built: each option's help text and default are the
ones ``aekit COMMAND --help`` prints, and a new option appears by itself. The docstrings cross-reference
with Sphinx roles (``:func:`name```), which the API pages show as plain code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = re.compile(r"<!-- options: ([\w-]+) -->")
ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj):(<code>)~?")
COMMON = {"--json", "--quiet", "--debug", "--threads", "-h"}  # the same for every command: listed once


def on_config(config):
    source = str(Path(config.config_file_path).parent / "src")  # this checkout's aekit, not an installed one
    if source not in sys.path:
        sys.path.insert(0, source)
    return config


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER.search(markdown) is None:
        return markdown
    from aekit.cli import build_parser

    commands = build_parser().commands
    return MARKER.sub(lambda match: options_table(commands[match.group(1)]), markdown)


def on_page_content(html: str, page, config, files) -> str:
    return ROLE.sub(r"\1", html)


def options_table(parser) -> str:
    """A Markdown table of ``parser``'s arguments: the positional ones, then each option group's."""
    formatter = parser._get_formatter()  # argparse's own: %(default)s and the like as --help expands them
    rows = ["| argument | what it does |", "|---|---|"]
    for group in parser._action_groups:
        for action in group._group_actions:
            if set(action.option_strings) & COMMON:
                continue
            name = ", ".join(action.option_strings) or action.metavar or action.dest
            if action.option_strings and action.metavar:  # the value's name, where the option gives one
                name += " " + action.metavar
            text = formatter._expand_help(action) if action.help else ""
            rows.append(f"| `{name}` | {_cell(text)} |")
    return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
