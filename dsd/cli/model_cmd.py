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
from dsd.errors import DsdError
from dsd.model.arch import Arch, Shape, anynet_arch, regnet_arch, stage_resolutions
from dsd.model.blocks import BLOCKS, STEMS
from dsd.model.complexity import describe
from dsd.model.layers import ACTS

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
    group_ws: str = typer.Option(None, "--group-ws", help="Group width per stage (blocks x, y)."),
    bottlenecks: str = typer.Option(None, "--bottlenecks", help="Bottleneck ratio per stage "
                                    "(default 1 each)."),
    se: bool = typer.Option(False, "--se", help="Squeeze-excitation (Y blocks)."),
    block: str = typer.Option(None, "--block", help="Block type: " + ", ".join(BLOCKS)
                              + " (default x, or y with --se)."),
    stem: str = typer.Option("simple", "--stem", help="Stem: " + ", ".join(STEMS) + "."),
    stem_w: int = typer.Option(32, "--stem-w", help="Stem width."),
    strides: str = typer.Option(None, "--strides", help="Stride per stage, e.g. 1,2,2,2 "
                                "(default 2 each)."),
    kernel: str = typer.Option(None, "--kernel", help="Kernel of the spatial conv per stage "
                               "(odd; default 3 each)."),
    act: str = typer.Option("relu", "--act", help="Activation: relu or silu."),
    se_ratio: float = typer.Option(0.0, "--se-ratio", help="SE width / block input width "
                                   "(0: the block's default, 0.25 for y)."),
    as_json: bool = JsonOpt, verify: bool = VerifyOpt,
    dataset: str = DatasetOpt, resolution: int = ResolutionOpt, in_channels: int = ChannelsOpt,
    num_classes: int = ClassesOpt, stem_stride: int = StrideOpt,
) -> None:
    """An AnyNet from per-stage values (widths and groups are made compatible first).

    Example: dsd model anynet --block res_basic --stem resnet --stem-w 64 --depths 2,2,2,2
    --widths 64,128,256,512 --strides 1,2,2,2 (torchvision's resnet18)

    Example: dsd model anynet --depths 1,2,7,12 --widths 32,64,160,384 --group-ws 16,16,16,16
    """
    shape = resolve_shape(dataset, resolution, in_channels, num_classes, stem_stride)
    arch = anynet_from_flags(depths, widths, group_ws, bottlenecks, se, block, stem, stem_w, strides,
                             kernel, act, se_ratio, shape)
    _report(arch, as_json, verify)


def anynet_from_flags(depths: str, widths: str, group_ws: str | None, bottlenecks: str | None,
                      se: bool, block: str | None, stem: str, stem_w: int, strides: str | None,
                      kernel: str | None, act: str, se_ratio: float, shape: Shape) -> Arch:
    """The Arch of `dsd model anynet`'s flags, as typed (comma lists), checked flag by flag;
    `dsd export anynet` parses the same flags through it."""
    ds, ws = int_list(depths, "--depths"), int_list(widths, "--widths")
    kind = block or ("y" if se else "x")
    if kind not in BLOCKS:
        raise DsdError(f"--block: unknown block {kind!r}; use one of {', '.join(BLOCKS)}")
    if stem not in STEMS:
        raise DsdError(f"--stem: unknown stem {stem!r}; use one of {', '.join(STEMS)}")
    if act not in ACTS:
        raise DsdError(f"--act: unknown activation {act!r}; use relu or silu")
    if group_ws is None and "g" in BLOCKS[kind].reads:
        raise DsdError(f"--group-ws: the {kind} block has grouped convs; give a group width per stage")
    gs = int_list(group_ws, "--group-ws") if group_ws else [1] * len(ds)
    bs = float_list(bottlenecks, "--bottlenecks") if bottlenecks else [1.0] * len(ds)
    ss = tuple(int_list(strides, "--strides")) if strides else ()
    ks = tuple(int_list(kernel, "--kernel")) if kernel else ()
    for flag, vals, ok, what in (("--strides", ss, lambda v: v >= 1, "at least 1"),
                                 ("--kernel", ks, lambda v: v >= 1 and v % 2, "odd and positive")):
        if vals and (len(vals) != len(ds) or not all(ok(v) for v in vals)):
            raise DsdError(f"{flag}: give one value per stage ({len(ds)}), each {what}; got "
                           f"{','.join(map(str, vals))}")
    if stem_w < 1 or se_ratio < 0:
        raise DsdError("--stem-w must be at least 1 and --se-ratio at least 0")
    return anynet_arch(ds, ws, bs, gs, se, shape, stem_w, kind, stem, ss, ks, act, se_ratio)


def _report(arch: Arch, as_json: bool, verify: bool) -> None:
    out = describe(arch)
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
    res = stage_resolutions(arch)
    sh = arch.shape
    t = Table(title=f"{arch.block} blocks, {arch.stem} stem ({arch.stem_w} wide, {res[0]} px out), "
              f"{arch.act}; input {sh.resolution} px, {sh.in_channels} ch, {sh.num_classes} classes")
    for col in ("stage", "depth", "width", "b", "bottleneck width", "group width", "groups",
                "kernel", "stride", "out px"):
        t.add_column(col, justify="right")
    for i, (d, w, b, g, wb) in enumerate(zip(arch.ds, arch.ws, arch.bs, arch.gs,
                                             arch.bottleneck_widths())):
        t.add_row(str(i + 1), str(d), str(w), f"{b:g}", str(wb), str(g), str(wb // g),
                  str(arch.ks[i]), str(arch.strides[i]), str(res[i + 1]))
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


@model_app.command("check")
def check(
    n: int = typer.Option(200, "--n", help="Random architectures per block type, stem and shape."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random architectures."),
    block: list[str] = typer.Option(None, "--block", help="Only these block types (repeat)."),
) -> None:
    """Check the analytic counts of every block type and stem against built torch modules.

    For each block type, stem and shape (32 px / 10 classes, 224 px / 1000 classes), n random
    architectures: params against the module's parameters, flops against fvcore's conv +
    linear count plus the bias adds it skips, acts against forward hooks on every conv,
    linear and max pool. Exit 1 on any mismatch.

    Example: dsd model check --n 20 --block res_basic
    """
    from rich.progress import Progress

    from dsd.model.verify import CHECK_SHAPES, check_all

    total = len(block or BLOCKS) * len(STEMS) * len(CHECK_SHAPES) * n
    with Progress(console=console, transient=True, disable=not console.is_terminal) as prog:
        task = prog.add_task("building and counting", total=max(total, 1))
        rows = check_all(n, seed, block, advance=lambda: prog.advance(task))
    t = Table(title=f"{n} random architectures per row: analytic count equals the torch module's")
    for col in ("block", "stem", "shape", "params", "flops", "acts"):
        t.add_column(col, justify="right" if col in ("params", "flops", "acts") else "left")
    for r in rows:
        t.add_row(r["block"], r["stem"], r["shape"], *(f"{r[k]}/{n}" for k in ("params", "flops", "acts")))
    console.print(t)
    failed = any(min(r["params"], r["flops"], r["acts"]) < n for r in rows)
    if failed:
        sys.exit(1)
