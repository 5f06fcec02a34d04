"""`dsd import nds FILE --out RUN`, `dsd import pycls-sweep SWEEP --out RUN`: another tool's
models and results as a dsd run."""

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


@import_app.command("pycls-sweep")
def pycls_sweep_cmd(
    sweep: Path = typer.Argument(..., help="A pycls sweep: its sweep.json (tools/sweep_collect.py "
                                 "writes it), or the sweep directory holding it."),
    out: Path = typer.Option(..., "--out", help="The new run directory."),
) -> None:
    """A pycls sweep as a run: every anynet/regnet job's network with dsd's complexity checked
    against pycls's, its test errors (and EMA errors), curve and recipe.

    Example: dsd import pycls-sweep sweeps/cifar/regnetx --out runs/pycls/regnetx
    """
    from dsd.interop.pycls_sweep import import_pycls_sweep

    r = import_pycls_sweep(sweep, out)
    s = r.statuses
    console.print(f"imported {r.jobs} jobs ({r.dataset}) into {r.run}: {s['ok']} ok, "
                  f"{s['diverged']} diverged, {s['failed']} unfinished (failed)")
    console.print(f"complexity recomputed: equal to pycls's for {r.checked - len(r.mismatches)} "
                  f"of {r.checked} jobs")
    for m in r.mismatches[:10]:
        diffs = "; ".join(f"{k} pycls {a:,}, dsd {b:,}" for k, (a, b) in m.diffs.items())
        err_console.print(f"job {m.index} ({m.name or 'no log name'}): {diffs}", markup=False)
    if len(r.mismatches) > 10:
        err_console.print(f"... and {len(r.mismatches) - 10} more")
    if r.skipped:
        err_console.print(f"skipped {len(r.skipped)} jobs:")
    for i, why in r.skipped[:10]:
        err_console.print(f"  job {i}: {why}", markup=False)
    for i, what in r.notes[:10]:
        err_console.print(f"job {i}: {what}", markup=False)
    if len(r.notes) > 10:
        err_console.print(f"... and {len(r.notes) - 10} more (each result row's message says why)")
    if r.recipes > 1:
        err_console.print(f"warning: the jobs were trained under {r.recipes} recipes (varying: "
                          f"{', '.join(r.varying)}); each result row records its own, the run "
                          "has no train.toml, and an EDF of the run mixes them", markup=False)
