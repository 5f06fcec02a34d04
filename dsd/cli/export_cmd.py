"""`dsd export pycls|torchvision|timm|onnx SOURCE --out PATH`: one network out to another tool."""

from __future__ import annotations

from pathlib import Path

import typer

from dsd.cli.app import app, console
from dsd.cli.options import ChannelsOpt, ClassesOpt, DatasetOpt, ResolutionOpt, StrideOpt, resolve_shape
from dsd.errors import DsdError

export_app = typer.Typer(help="Write one network (a sampled model, a published RegNet, or one "
                         "given by flags) for pycls, torchvision, timm or ONNX.", no_args_is_help=True)
app.add_typer(export_app, name="export")

RG, AN = "Source regnet (flags of `dsd model regnet`)", "Source anynet (flags of `dsd model anynet`)"
REGNET_FLAGS = ("depth", "w0", "wa", "wm", "group_w", "bottleneck")
ANYNET_FLAGS = ("depths", "widths", "group_ws", "bottlenecks", "block", "stem", "stem_w", "strides",
                "kernel", "act", "se_ratio")
SHAPE_FLAGS = ("dataset", "resolution", "in_channels", "num_classes", "stem_stride")

TARGET_DOCS = {
    "pycls": """A pycls config (YAML): MODEL.TYPE regnet where the network has RegNet numbers, else
    anynet with per-stage lists; --recipe adds the run's recipe in pycls's OPTIM/TRAIN/BN keys.

    Example: dsd export pycls runs/e --model-id 17 --recipe --epochs 100 --out best.yaml
    """,
    "torchvision": """torchvision's RegNet (X/Y blocks, 3x3 stem of stride 2 on 3 channels): the
    state dict at PATH.pth, its constructor arguments in PATH.json, a builder in PATH.py.

    Example: dsd export torchvision RegNetY-400MF --out y400.pth
    """,
    "timm": """timm's RegNet of a network given by RegNet numbers (4 stages, X/Y blocks): the state
    dict at PATH.pth, the RegNetCfg in PATH.json, a builder in PATH.py.

    Example: dsd export timm regnet --depth 22 --w0 24 --wa 24.48 --wm 2.54 --group-w 16 --out x.pth
    """,
    "onnx": """dsd's own module as ONNX (free batch size), written once onnxruntime's output matches
    the torch module's.

    Example: dsd export onnx RegNetX-200MF --dataset cifar10 --out x200.onnx
    """,
}


def _command(target: str):
    def command(
        source: str = typer.Argument(..., help="A run directory (with "
                                     "--model-id), a published RegNet (RegNetX-200MF .. RegNetY-32GF), "
                                     "or `regnet` / `anynet` with the flags below."),
        out: Path = typer.Option(..., "--out", help="The file to write (the target's suffix is added "
                                 "when it has none)."),
        model_id: int = typer.Option(None, "--model-id", help="Which model of the run."),
        recipe: bool = typer.Option(False, "--recipe", help="Also write the training recipe: the "
                                    "run's (train.toml), or --dataset's default."),
        epochs: int = typer.Option(None, "--epochs", help="Epochs of the written recipe "
                                   "(implies --recipe)."),
        depth: int = typer.Option(None, "--depth", help="d: number of blocks.", rich_help_panel=RG),
        w0: int = typer.Option(None, "--w0", help="Initial width.", rich_help_panel=RG),
        wa: float = typer.Option(None, "--wa", help="Slope of the widths.", rich_help_panel=RG),
        wm: float = typer.Option(None, "--wm", help="Width multiplier.", rich_help_panel=RG),
        group_w: int = typer.Option(None, "--group-w", help="Group width g.", rich_help_panel=RG),
        bottleneck: float = typer.Option(None, "--bottleneck", help="Bottleneck ratio b (default 1).",
                                         rich_help_panel=RG),
        se: bool = typer.Option(False, "--se", help="Squeeze-excitation (regnet and anynet)."),
        depths: str = typer.Option(None, "--depths", help="Blocks per stage.", rich_help_panel=AN),
        widths: str = typer.Option(None, "--widths", help="Width per stage.", rich_help_panel=AN),
        group_ws: str = typer.Option(None, "--group-ws", help="Group width per stage.",
                                     rich_help_panel=AN),
        bottlenecks: str = typer.Option(None, "--bottlenecks", help="Bottleneck ratio per stage.",
                                        rich_help_panel=AN),
        block: str = typer.Option(None, "--block", help="Block type.", rich_help_panel=AN),
        stem: str = typer.Option(None, "--stem", help="Stem (default simple).", rich_help_panel=AN),
        stem_w: int = typer.Option(None, "--stem-w", help="Stem width (default 32).",
                                   rich_help_panel=AN),
        strides: str = typer.Option(None, "--strides", help="Stride per stage.", rich_help_panel=AN),
        kernel: str = typer.Option(None, "--kernel", help="Kernel per stage.", rich_help_panel=AN),
        act: str = typer.Option(None, "--act", help="relu or silu.", rich_help_panel=AN),
        se_ratio: float = typer.Option(None, "--se-ratio", help="SE ratio.", rich_help_panel=AN),
        dataset: str = DatasetOpt, resolution: int = ResolutionOpt, in_channels: int = ChannelsOpt,
        num_classes: int = ClassesOpt, stem_stride: int = StrideOpt,
    ) -> None:
        from dsd.interop.export import export

        # The source flags by parameter name, to check which ones SOURCE reads.
        flags = {k: v for k, v in locals().items() if k in REGNET_FLAGS + ANYNET_FLAGS + SHAPE_FLAGS}
        net, run = _network(source, model_id, se, flags)
        rec, whose = _recipe(run, model_id, dataset, epochs) if recipe or epochs is not None else (None, "")
        done = export(target, net, out, rec)
        line = f"wrote {', '.join(map(str, done.paths))}: {done.form}, {done.params:,} params"
        if rec is not None:
            line += (f"; recipe ({whose}): {rec.epochs} epochs, lr {rec.lr:g}, wd {rec.wd:g}, "
                     f"batch {rec.batch_size}")
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    command.__doc__ = TARGET_DOCS[target]
    return command


for _target in TARGET_DOCS:
    export_app.command(_target)(_command(_target))


def _network(source: str, model_id: int | None, se: bool, flags: dict):
    """The network SOURCE names, refusing flags that SOURCE does not read."""
    from dsd.interop.export import Network, from_published, from_regnet, from_run
    from dsd.model.zoo import PUBLISHED, RegNetParams, find

    kind = source if source in ("regnet", "anynet") else "run" if Path(source).is_dir() else "published"
    _refuse_unread(kind, source, model_id, se, flags)
    if kind == "run":
        return from_run(source, model_id), source
    shape = resolve_shape(*(flags[k] for k in SHAPE_FLAGS))
    if kind == "published":
        try:
            find(source)
        except DsdError:
            raise DsdError(f"{source!r} is no run directory, no published RegNet ({', '.join(PUBLISHED)})"
                           ", nor `regnet` or `anynet`") from None
        return from_published(source, shape), None
    if kind == "regnet":
        missing = [f"--{k.replace('_', '-')}" for k in REGNET_FLAGS[:5] if flags[k] is None]
        if missing:
            raise DsdError(f"SOURCE regnet needs --depth, --w0, --wa, --wm and --group-w; missing "
                           f"{', '.join(missing)}")
        b = flags["bottleneck"] if flags["bottleneck"] is not None else 1.0
        return from_regnet(RegNetParams(*(flags[k] for k in REGNET_FLAGS[:5]), b, se), shape), None
    from dsd.cli.model_cmd import anynet_from_flags

    if flags["depths"] is None or flags["widths"] is None:
        raise DsdError("SOURCE anynet needs --depths and --widths (and --group-ws for x/y blocks)")
    # dsd model anynet's defaults, for the flags left out.
    f = {**flags, **{k: v for k, v in (("stem", "simple"), ("stem_w", 32), ("act", "relu"),
                                        ("se_ratio", 0.0)) if flags[k] is None}}
    arch = anynet_from_flags(f["depths"], f["widths"], f["group_ws"], f["bottlenecks"], se, f["block"],
                             f["stem"], f["stem_w"], f["strides"], f["kernel"], f["act"], f["se_ratio"],
                             shape)
    return Network(arch, None, "anynet"), None


def _refuse_unread(kind: str, source: str, model_id: int | None, se: bool, flags: dict) -> None:
    """A flag SOURCE does not read is a mistake (a typo'd source, a forgotten one): say so."""
    reads = {"regnet": REGNET_FLAGS + SHAPE_FLAGS, "anynet": ANYNET_FLAGS + SHAPE_FLAGS,
             "published": SHAPE_FLAGS, "run": ()}[kind]
    for k, v in flags.items():
        if v is not None and k not in reads:
            where = "the run's manifest fixes its shape" if k in SHAPE_FLAGS else \
                f"it applies to SOURCE {'regnet' if k in REGNET_FLAGS else 'anynet'}"
            raise DsdError(f"--{k.replace('_', '-')}: not for {source!r}: {where}")
    if se and kind in ("run", "published"):
        raise DsdError(f"--se: not for {source!r}: it applies to SOURCE regnet or anynet")
    if kind == "run" and model_id is None:
        raise DsdError(f"--model-id K: which model of the run {source} to export")
    if kind != "run" and model_id is not None:
        raise DsdError(f"--model-id: only with a run directory as SOURCE, not {source!r}")


def _recipe(run: str | None, model_id: int | None, dataset: str | None, epochs: int | None):
    """The recipe to write and whose it is, with --epochs applied (a run's: the model's own,
    where its space draws recipe fields per model)."""
    from dsd.data.recipe import with_overrides
    from dsd.data.registry import default_recipe
    from dsd.interop.export import run_recipe
    from dsd.store.run import Run

    if run is not None:
        rec = run_recipe(run, model_id)
        whose = "the run's" if Run(run).train_path.exists() else \
            f"the {rec.dataset} default: the run has no train.toml yet"
    elif dataset is not None:
        rec, whose = default_recipe(dataset), f"the {dataset} default"
    else:
        raise DsdError("--recipe needs a run (its train.toml) or --dataset (that data set's default "
                       "recipe)")
    return with_overrides(rec, epochs=epochs), whose
