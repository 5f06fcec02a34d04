"""`dsd sample`: draw distinct models from a space under complexity windows."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dsd.cli.app import app, console, err_console
from dsd.cli.options import ChannelsOpt, ClassesOpt, DatasetOpt, ResolutionOpt, StrideOpt, resolve_shape
from dsd.data.recipe_dims import DRAWABLE
from dsd.errors import DsdError
from dsd.sizes import format_size
from dsd.space.sample_run import SampleReport, sample_extend, sample_new


@app.command("sample")
def sample_cmd(
    space: str = typer.Option(None, "--space", help="A space name (dsd spaces list) or a .toml path."),
    n: int = typer.Option(100, "--n", help="Number of distinct models to draw."),
    flops: str = typer.Option(None, "--flops", help="Closed flops window LO:HI, e.g. 360M:400M "
                              "(default: the space's own, if it declares one)."),
    params: str = typer.Option(None, "--params", help="Closed params window LO:HI."),
    acts: str = typer.Option(None, "--acts", help="Closed activations window LO:HI."),
    seed: int = typer.Option(0, "--seed", help="Seed of the candidate stream."),
    out: Path = typer.Option(None, "--out", help="Run directory (default runs/SPACE)."),
    extend: bool = typer.Option(False, "--extend", help="Add --n models to the run in --out, "
                                "continuing its ids and its random stream."),
    dataset: str = DatasetOpt, resolution: int = ResolutionOpt, in_channels: int = ChannelsOpt,
    num_classes: int = ClassesOpt, stem_stride: int = StrideOpt,
    max_candidates: int = typer.Option(200_000_000, "--max-candidates",
                                       help="Give up after this many candidates."),
) -> None:
    """Sample n models into a run directory (run.toml + samples.parquet).

    Example: dsd sample --space anynetx_e --n 500 --flops 360M:400M --out runs/e
    """
    try:
        rep = _sample(space, n, flops, params, acts, seed, out, extend, dataset, resolution,
                      in_channels, num_classes, stem_stride, max_candidates)
    except KeyboardInterrupt:
        err_console.print("interrupted: nothing was written (a run is written only when sampling "
                          "ends); rerun the command to sample again")
        raise typer.Exit(130) from None
    print_summary(rep)
    if rep.note:
        console.print(f"[yellow]note:[/] {rep.note}")


def _sample(space, n, flops, params, acts, seed, out, extend, dataset, resolution, in_channels,
            num_classes, stem_stride, max_candidates) -> SampleReport:
    with _progress() as prog:
        task = prog.add_task("sampling", total=n)

        def tick(got: int, total: int, drawn: int) -> None:
            prog.update(task, completed=got, total=total, drawn=f"{drawn:,}")

        if extend:
            if out is None:
                raise DsdError("--extend needs --out RUN_DIR: the run to add models to")
            rep = sample_extend(out, n, progress=tick, max_candidates=max_candidates)
        else:
            if space is None:
                raise DsdError("--space is required: a name from `dsd spaces list` or a .toml path")
            shape = resolve_shape(dataset, resolution, in_channels, num_classes, stem_stride)
            out = out or Path("runs") / Path(space).stem
            rep = sample_new(space, n, out, shape, {"flops": flops, "params": params, "acts": acts},
                             seed, dataset, progress=tick, max_candidates=max_candidates)
    return rep


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total} models"),
                    TextColumn("{task.fields[drawn]} candidates"), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


def print_summary(rep: SampleReport) -> None:
    r, m = rep.result, rep.run.manifest()
    rate = r.in_window / r.drawn if r.drawn else 0.0
    head = Table(title=f"sampled {len(r)} models from {m.space_name} into {rep.run.path}")
    head.add_column("measure")
    head.add_column("value", justify="right")
    sh = m.shape()
    shape = f"{sh.in_channels} ch, {sh.resolution} px, {sh.num_classes} classes"
    windows = " ".join(f"{k} {m.window(k)}" for k in ("flops", "params", "acts") if m.window(k))
    for k, v in [("shape", shape), ("seed", str(m.seed)), ("windows", windows or "none"),
                 ("candidates drawn", f"{r.drawn:,}"),
                 ("valid (generator + constraints)", f"{r.valid:,}"),
                 ("inside the windows (repeats included)", f"{r.in_window:,}"),
                 ("distinct models among them", f"{r.distinct:,}"),
                 ("acceptance rate (in window / drawn)",
                  f"{rate:.2e} (1 in {1 / rate:,.0f})" if rate else "0"),
                 ("models in run", f"{rep.total}"), ("seconds", f"{rep.seconds:.2f}")]:
        head.add_row(k, v)
    console.print(head)
    q = Table(title="complexity of the drawn models")
    q.add_column("measure")
    for p in ("min", "25%", "median", "75%", "max"):
        q.add_column(p, justify="right")
    for k in ("flops", "params", "acts"):
        q.add_row(k, *[format_size(v) for v in r.quantiles(k)])
    console.print(q)
    ex = Table(title="examples")
    recipe = [k for k in DRAWABLE if k in r.columns]  # drawn per model by the space
    for col in ("id", "ds", "ws", "gs", "bs", "flops", *recipe):
        ex.add_column(col)
    for row in r.head(5):
        ex.add_row(str(row["model_id"]), str(row["ds"]), str(row["ws"]), str(row["gs"]),
                   str([f"{b:g}" for b in row["bs"]]).replace("'", ""), format_size(row["flops"]),
                   *(f"{row[k]:.4g}" for k in recipe))
    console.print(ex)
