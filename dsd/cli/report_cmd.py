"""`dsd report RUN [RUN ...] --out report.html`."""

from __future__ import annotations

import typer

from dsd.analysis.runs import Options
from dsd.cli.app import app, console
from dsd.cli.edf_cmd import BOOT, FAILED, METRIC, SEED


@app.command("report")
def report(
    runs: list[str] = typer.Argument(..., help="One or more run directories."),
    out: str = typer.Option("report.html", "--out", help="The HTML file to write."),
    metric: str = METRIC, failed: str = FAILED, seed: int = SEED,
    bootstrap: int = BOOT,
    fit_top: int = typer.Option(0, "--fit-top", help="Add a section with the quantized linear "
                                "fits of each run's K best models (as `dsd fit RUN --top K`)."),
) -> None:
    """One self-contained HTML report: EDFs, error vs parameters, widths, rank agreement.

    Example: dsd report runs/demo/anynetx_a runs/demo/regnetx --out runs/demo/report.html
    """
    from dsd.analysis.report import build_report

    path = build_report(runs, out, Options(metric=metric, failed=failed, seed=seed,
                                           bootstrap=bootstrap), fit_top=fit_top)
    console.print(f"report: {path}")
