"""`dsd model regnet|anynet`: one network, its stages and its exact complexity."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from dsd.cli.app import app, console, print_json
from dsd.cli.options import (
    ChannelsOpt,
    ClassesOpt,
    DatasetOpt,
    ResolutionOpt,
    StrideOpt,
    float_list,
    int_list,
    resolve_shape,
)
from dsd.model.arch import Arch, anynet_arch, regnet_arch, stage_resolutions
from dsd.model.complexity import complexity

model_app = typer.Typer(help="Describe one network: stages, widths, flops, params, acts.",
                        no_args_is_help=True)
app.add_typer(model_app, name="model")
JsonOpt = typer.Option(False, "--json", help="Print one JSON document instead of tables.")
VerifyOpt = typer.Option(False, "--verify", help="Build the torch module and check the "
                         "parameter count (exit 1 on mismatch) and fvcore's flops.")


@model_app.command("regnet")
def regnet(
    depth: int = typer.Option(..., "--depth", help="d: number of blocks."),
    w0: int = typer.Option(..., "--w0", help="Initial width (a multiple of 8)."),
    wa: float = typer.Option(..., "--wa", help="Slope of the linear widths."),
    wm: float = typer.Option(..., "--wm", help="Width multiplier between stages (> 1)."),
    group_w: int = typer.Option(..., "--group-w", help="Group width g."),
    bottleneck: float = typer.Option(1.0, "--bottleneck", help="Bottleneck ratio b."),
    se: bool = typer.Option(False, "--se", help="Squeeze-excitation (RegNetY)."),
    as_json: bool = JsonOpt, verify: bool = VerifyOpt,
    dataset: str = DatasetOpt, resolution: int = ResolutionOpt, in_channels: int = ChannelsOpt,
    num_classes: int = ClassesOpt, stem_stride: int = StrideOpt,
) -> None:
    """A RegNet from its six numbers.

    Example: dsd model regnet --depth 22 --w0 24 --wa 24.48 --wm 2.54 --group-w 16
    """
    shape = resolve_shape(dataset, resolution, in_channels, num_classes, stem_stride)
    _report(regnet_arch(depth, w0, wa, wm, group_w, bottleneck, se, shape), as_json, verify)


@model_app.command("anynet")
def anynet(
    depths: str = typer.Option(..., "--depths", help="Blocks per stage, e.g. 1,2,7,12."),
    widths: str = typer.Option(..., "--widths", help="Width per stage, e.g. 32,64,160,384."),
    group_ws: str = typer.Option(..., "--group-ws", help="Group width per stage."),
    bottlenecks: str = typer.Option(None, "--bottlenecks", help="Bottleneck ratio per stage "
                                    "(default 1 each)."),
    se: bool = typer.Option(False, "--se", help="Squeeze-excitation (Y blocks)."),
    as_json: bool = JsonOpt, verify: bool = VerifyOpt,
    dataset: str = DatasetOpt, resolution: int = ResolutionOpt, in_channels: int = ChannelsOpt,
    num_classes: int = ClassesOpt, stem_stride: int = StrideOpt,
) -> None:
    """An AnyNet from per-stage values (widths and groups are made compatible first).

    Example: dsd model anynet --depths 1,2,7,12 --widths 32,64,160,384 --group-ws 16,16,16,16
    """
    shape = resolve_shape(dataset, resolution, in_channels, num_classes, stem_stride)
    ds, ws = int_list(depths, "--depths"), int_list(widths, "--widths")
    gs = int_list(group_ws, "--group-ws")
    bs = float_list(bottlenecks, "--bottlenecks") if bottlenecks else [1.0] * len(ds)
    _report(anynet_arch(ds, ws, bs, gs, se, shape), as_json, verify)


def _report(arch: Arch, as_json: bool, verify: bool) -> None:
    out = {"ds": list(arch.ds), "ws": list(arch.ws), "gs": list(arch.gs), "bs": list(arch.bs),
           "se": arch.se, **complexity(arch)}
    if verify:
        from dsd.model.verify import verify_arch

        out.update(verify_arch(arch))
    if as_json:
        print_json(out)
    else:
        _print_tables(arch, out)
    if verify and out["params_torch"] != out["params"]:
        sys.exit(1)


def _print_tables(arch: Arch, out: dict) -> None:
    res = stage_resolutions(arch.shape, arch.num_stages)
    sh = arch.shape
    t = Table(title=f"{'Y' if arch.se else 'X'} network at {sh.resolution} px, "
              f"{sh.in_channels} ch, {sh.num_classes} classes, stem stride {sh.stem_stride}")
    for col in ("stage", "depth", "width", "b", "bottleneck width", "group width", "groups", "out px"):
        t.add_column(col, justify="right")
    for i, (d, w, b, g, wb) in enumerate(zip(arch.ds, arch.ws, arch.bs, arch.gs,
                                             arch.bottleneck_widths())):
        t.add_row(str(i + 1), str(d), str(w), f"{b:g}", str(wb), str(g), str(wb // g), str(res[i + 1]))
    console.print(t)
    c = Table(title="complexity (pycls convention, exact)")
    c.add_column("measure")
    c.add_column("value", justify="right")
    for k in ("flops", "params", "acts", "params_torch", "flops_fvcore",
              "flops_fvcore_conv_linear"):
        if k in out:
            c.add_row(k, f"{out[k]:,}")
    console.print(c)
    if "params_torch" in out:
        ok = out["params_torch"] == out["params"]
        console.print("[green]params match the torch module[/]" if ok else
                       "[red]params differ from the torch module[/]")
