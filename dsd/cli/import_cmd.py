"""`dsd import nds FILE --out RUN`: another tool's models and results as a dsd run."""

from __future__ import annotations

from pathlib import Path

import typer

from dsd.cli.app import app, console, err_console

import_app = typer.Typer(help="Read another tool's models and results into a dsd run.",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("nds")
def nds_cmd(
    file: Path = typer.Argument(..., help="One JSON file of the NDS release, e.g. ResNeXt-A.json."),
    out: Path = typer.Option(..., "--out", help="The new run directory."),
    dataset: str = typer.Option(None, "--dataset", help="cifar10 or imagenet (default: imagenet "
                                "for the release's *_in.json files, else cifar10)."),
) -> None:
    """The ICCV 2019 paper's released models (facebookresearch/nds) as a run: every record's
    network with dsd's exact complexity beside NDS's, and its errors.

    Example: dsd import nds data/ResNeXt-A.json --out runs/nds/resnext_a
    """
    from dsd.interop.nds import import_nds

    r = import_nds(file, out, dataset)
    console.print(f"imported {r.records} {r.block} networks ({r.dataset}) into {r.run}")
    ok = r.records - len(r.params_mismatch)
    console.print(f"params recomputed: {ok} of {r.records} equal NDS's count")
    for i, theirs, ours in r.params_mismatch[:10]:
        err_console.print(f"record {i}: NDS counts {theirs:,} params, dsd {ours:,}")
    if len(r.params_mismatch) > 10:
        err_console.print(f"... and {len(r.params_mismatch) - 10} more")
    for i, why in r.skipped[:5]:
        err_console.print(f"skipped record {i}: {why}")
    if r.recipes > 1:
        err_console.print(f"warning: the records were trained under {r.recipes} recipes (lr, wd, "
                          "epochs); each result row records its own, and an EDF of the run mixes them")
