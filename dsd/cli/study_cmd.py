"""`dsd study run FILE` and `dsd study report FILE`: a whole design-space study as data."""

from __future__ import annotations

from pathlib import Path

import typer

from dsd.cli.app import app, console, err_console
from dsd.cli.train_options import TRAIN_OPTIONS
from dsd.errors import DsdError
from dsd.train.batch import CUDA_AUTO_WORKERS

study_app = typer.Typer(help="Run and report a whole study declared in a TOML file.",
                        no_args_is_help=True)
app.add_typer(study_app, name="study")


@study_app.command("run")
def run_cmd(
    file: Path = typer.Argument(..., help="The study file, e.g. studies/fashion-mnist.toml."),
    workers: str = typer.Option("auto", "--workers", help="Processes training at once; auto: one "
                                f"per CPU core, {CUDA_AUTO_WORKERS} on a GPU."),
    threads: int = typer.Option(None, "--threads", help="Threads per worker (default: "
                                "OMP_NUM_THREADS, else 1: small models train fastest on one thread each)."),
    device: str = TRAIN_OPTIONS["device"][1],
    limit: int = typer.Option(None, "--limit", help="Train at most K models in this call."),
    step: str = TRAIN_OPTIONS["step"][1],
    streams: int = TRAIN_OPTIONS["streams"][1],
    no_report: bool = typer.Option(False, "--no-report", help="Train only; skip the analysis."),
) -> None:
    """Sample what is not sampled, train what is not trained, then write the analysis.

    Resumable at any point: run the same command again. Deleting one run's results/
    trains exactly that run again.

    Example: dsd study run studies/fashion-mnist.toml
    """
    from dsd.cli.train_cmd import BatchDisplay
    from dsd.study import spec as S
    from dsd.train.batch import resolve_workers, run_batch

    if limit is not None and limit < 1:
        raise DsdError("--limit must be at least 1")
    st = S.load(file)
    for line in S.sample_missing(st):
        console.print(line)
    for out in S.derive_missing(st):
        console.print(f"derived {out} (the same models, trained again)")
    for gap in S.window_gaps(st):
        err_console.print(f"warning: {gap}", markup=False, highlight=False, soft_wrap=True)
    jobs, options = S.configs(st, device, limit, threads, step, streams)
    n_workers = resolve_workers(workers, options.device, threads)
    ui = BatchDisplay(None, n_workers, multi=True)
    try:
        with ui.progress:
            items = run_batch(jobs, options, n_workers, ui.on_event)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished models are saved; rerun the same command to go on")
        ui.summary()
        raise typer.Exit(130) from None
    if items:
        ui.summary()
    else:
        console.print(f"{st.name}: every model of every space has a final result; nothing to train")
    if not no_report:
        _report(st)


@study_app.command("report")
def report_cmd(
    file: Path = typer.Argument(..., help="The study file."),
) -> None:
    """Rebuild the figures, the HTML report and FINDINGS.md from what is trained so far.

    Example: dsd study report studies/fashion-mnist.toml
    """
    from dsd.study import spec as S

    _report(S.load(file))


@study_app.command("verify")
def verify_cmd(
    file: Path = typer.Argument(..., help="The study file."),
    models: int = typer.Option(3, "--models", help="How many published ok models to re-train."),
    seed: int = typer.Option(0, "--seed", help="Seed of the choice of models."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    mean_tolerance: float = typer.Option(1.5, "--mean-tolerance", help="Largest accepted mean "
                                         "difference over the models, in points of error."),
    tolerance: float = typer.Option(5.0, "--tolerance", help="Largest accepted difference of any "
                                    "one model, in points of error; exit 1 beyond either."),
) -> None:
    """Re-train published models with their recorded recipe, seed and threads; compare errors
    as a population (README, "Reproducibility").

    Example: dsd study verify studies/fashion-mnist.toml --models 6
    """
    from rich.table import Table

    from dsd.study.verify import verify_study

    v = verify_study(file, models, seed, device, mean_tolerance, tolerance)
    t = Table(title=f"{v.study}: published models re-trained on {v.device}")
    for col in ("space", "id", "published", "re-trained", "diff (pp)", "threads", "seconds"):
        t.add_column(col, justify="right")
    for r in v.rows:
        t.add_row(r["space"], str(r["model_id"]), f"{r['published']:.2f}", f"{r['retrained']:.2f}",
                  f"{r['diff']:+.2f}", str(r["threads"]), f"{r['seconds']:.0f}")
    console.print(t)
    for key, (then, now) in sorted(v.platform_differs.items()):
        console.print(f"platform differs: {key}: published {then}, here {now}")
    a = v.agreement
    console.print(f"mean difference {a.mean:+.2f} pp over {a.k} models (95% CI {a.ci[0]:+.2f}.."
                  f"{a.ci[1]:+.2f}, paired t-test p {a.p:.2g}); largest {a.largest:.2f} pp "
                  f"(tolerances: mean {mean_tolerance}, any one model {tolerance})")
    console.print("agrees as a population" if a.agrees else "[red]does not agree[/]")
    if not a.agrees:
        raise typer.Exit(1)


@study_app.command("summary")
def summary_cmd(
    files: list[Path] = typer.Argument(..., help="Study files, e.g. studies/fashion-mnist.toml "
                                       "studies/fashion-mnist-7px.toml."),
    out: Path = typer.Option(None, "--out", help="Write the page here (markdown); default: print it."),
) -> None:
    """One page across studies: each finding's verdict per study, at the longer budget and
    under seed noise, and whether it holds in all of them.

    Example: dsd study summary studies/fashion-mnist.toml studies/fashion-mnist-7px.toml
    --out studies/SUMMARY.md
    """
    from dsd.study import spec as S
    from dsd.study.summary import summary_markdown

    command = " ".join(["dsd study summary", *(f.as_posix() for f in files),
                        *(["--out", out.as_posix()] if out else [])])
    text = summary_markdown([S.load(f) for f in files], command)
    if out is None:
        console.print(text, markup=False, highlight=False)
        return
    out.write_text(text)
    console.print(f"wrote {out}")


def _report(st) -> None:
    from dsd.study.report import write_study_report

    out = write_study_report(st)
    console.print(out.table)
    for p in out.files:
        console.print(f"wrote {p}")
    if out.partial:
        console.print(f"[yellow]partial study:[/] {out.partial}")
