"""The Typer application and the consoles every command prints to."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

from dsd import jsonw

app = typer.Typer(
    name="dsd",
    help="Design network design spaces: sample models from a space, train them, compare "
    "spaces by their error EDFs (Radosavovic et al. 2019, 2020).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
def _console(stderr: bool = False) -> Console:
    """A console; into a file or pipe (a log) 160 columns wide, as rich would cut tables at
    80 there (`ok/div/fa…`), unless COLUMNS says otherwise."""
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=160 if wide else None)


console = _console()


def _flags_without_type() -> None:
    """Typer shows `<bool>` after every flag in --help, as if it took a value; it takes none."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich


_flags_without_type()
err_console = _console(stderr=True)


def print_json(obj) -> None:
    """One JSON document on stdout and nothing else there."""
    sys.stdout.write(jsonw.dumps(obj) + "\n")
