"""The `dsd` command line: a thin Typer layer over functions a notebook can call too."""

from __future__ import annotations

import sys

# Importing the command modules registers their commands on `app`.
from dsd.cli import (  # noqa: E402,F401,I001
    edf_cmd,
    export_cmd,
    import_cmd,
    model_cmd,
    plan_cmd,
    refine_cmd,
    report_cmd,
    sample_cmd,
    spaces_cmd,
    study_cmd,
    sweep_cmd,
    train_cmd,
)
from dsd.cli.app import app, err_console
from dsd.errors import DsdError, ParamError


def main() -> None:
    try:
        app()
    except ParamError as e:
        err_console.print(f"error: {e.as_flag()}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except DsdError as e:
        err_console.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
