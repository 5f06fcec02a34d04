"""`dsd train-batch RUN` and `dsd status RUN`."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dsd.cli.app import app, console, err_console, print_json
from dsd.cli.train_options import train_request, with_train_options
from dsd.store.run import open_run
from dsd.store.status import run_status
from dsd.train.batch import CUDA_AUTO_WORKERS
from dsd.train.events import PlainLog


@app.command("train-batch")
@with_train_options
def train_batch(
    run: Path = typer.Argument(..., help="The run directory made by `dsd sample`."),
    workers: str = typer.Option("auto", "--workers", help="Processes training at once, sharing "
                                "the device; auto: one per CPU core (see --threads), "
                                f"{CUDA_AUTO_WORKERS} on a GPU."),
    threads: int = typer.Option(None, "--threads", help="Threads per worker (default: "
                                "OMP_NUM_THREADS, else 1: small models train fastest on one thread each)."),
    limit: int = typer.Option(None, "--limit", help="Train at most K models, then stop."),
    shard: str = typer.Option(None, "--shard", help="Only models with id % N == I, as I/N."),
    train: dict | None = None,
) -> None:
    """Train every sampled model without a final result; resumable and shardable.

    Example: dsd train-batch runs/demo/anynetx_a --epochs 3 --train-subset 10000
    """
    from dsd.train.batch import resolve_workers, run_batch
    from dsd.train.setup import batch_options, prepare

    req = train_request(train, limit=limit, shard=shard, threads=threads)
    job = prepare(run, req)
    options = batch_options(req)
    workers = resolve_workers(workers, options.device, threads)
    ui = BatchDisplay(job.run.path, workers)
    try:
        with ui.progress:
            ids = run_batch(job, options, workers, ui.on_event)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished models are saved; rerun the same command to go on")
        ui.summary()
        raise typer.Exit(130) from None
    if not ids:
        console.print(f"nothing to train in {run}: every model has a final result "
                      "(--retry-failed trains failed/oom ones again)")
    ui.summary()


class BatchDisplay:
    """Rich progress: models done/failed/remaining, each worker's model, epoch and speed."""

    def __init__(self, run: str | None, workers: int, multi: bool = False):
        self.run, self.multi = run, multi
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                 TimeRemainingColumn(), console=console,
                                 disable=not console.is_terminal)
        self.total = self.progress.add_task("models", total=None, info="")
        self.workers: dict[tuple, int] = {}  # (worker, run, model id) -> its progress line
        self.counts = {"ok": 0, "diverged": 0, "failed": 0, "oom": 0}
        self.t0 = time.time()
        # Not a terminal (a log file): rich would print nothing until the end; plain lines.
        self.plain = None if console.is_terminal else PlainLog(
            lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))

    def on_event(self, ev: dict) -> None:
        if self.plain:
            self.plain(ev)
            if ev["kind"] == "done":
                self.counts[ev["status"]] += 1
            return
        kind, w = ev["kind"], ev.get("worker", "w0")
        # One line per model in flight (a worker with --streams has several at once).
        key = (w, ev.get("run"), ev.get("model_id"))
        if kind == "plan":
            self.progress.update(self.total, total=ev["total"])
        if kind == "done":
            self.counts[ev["status"]] += 1
            self.progress.advance(self.total)
            if key in self.workers:
                self.progress.remove_task(self.workers.pop(key))
        if key not in self.workers and kind in ("start", "epoch", "step"):
            self.workers[key] = self.progress.add_task(f"  {w}", total=None, info="")
        if kind == "start":
            where = f"{ev['run']} " if ev.get("run") and self.multi else ""
            self.progress.update(self.workers[key], description=f"  {w} {where}model {ev['model_id']}",
                                 completed=0, total=None, info="starting")
        elif kind == "step":  # within an epoch: the bar counts training steps of this model
            self.progress.update(self.workers[key], total=ev["epochs"] * ev["steps"],
                                 completed=(ev["epoch"] - 1) * ev["steps"] + ev["step"],
                                 info=f"epoch {ev['epoch']}/{ev['epochs']}, {ev['ips']:.0f} img/s")
        elif kind == "epoch":
            self.progress.update(self.workers[key],
                                 info=f"epoch {ev['epoch']}/{ev['epochs']} done, {ev['ips']:.0f} img/s")
        elif kind == "error":
            err_console.print(f"worker {w}: {ev['message']}")
        c = self.counts
        self.progress.update(self.total, info=f"ok {c['ok']}  diverged {c['diverged']}  "
                             f"failed {c['failed']}  oom {c['oom']}")

    def summary(self) -> None:
        n = sum(self.counts.values())
        console.print(f"trained {n} model{'s' if n != 1 else ''} in {time.time() - self.t0:.0f} s "
                      f"({', '.join(f'{k} {v}' for k, v in self.counts.items())})")
        if self.run is not None:
            print_status(self.run)


@app.command("status")
def status(run: Path = typer.Argument(..., help="A run directory."),
           as_json: bool = typer.Option(False, "--json", help="One JSON document.")) -> None:
    """Counts of finished, failed and remaining models, and an error summary, from the files.

    Example: dsd status runs/demo/anynetx_a
    """
    open_run(run)
    if as_json:
        print_json(run_status(run))
    else:
        print_status(run)


def print_status(run) -> None:
    st = run_status(run)
    t = Table(title=f"{st['run']}: {st['sampled']} models sampled")
    for col in ("ok", "diverged", "failed", "oom", "in flight", "remaining"):
        t.add_column(col, justify="right")
    c = st["counts"]
    t.add_row(*(str(c[k]) for k in ("ok", "diverged", "failed", "oom", "in_flight", "remaining")))
    console.print(t)
    rs = st["results"]
    console.print(f"results: {rs['compacted']} rows in the compacted table, "
                  f"{rs['pending_shards']} shards not folded yet")
    e = st["error_min"]
    if e:
        t2 = Table(title=f"top-1 error (%) of ok models, best epoch (error_min); {st['dataset']}, "
                   f"{st['epochs']} epochs")
        for col in ("min", "25%", "median", "mean", "75%", "max"):
            t2.add_column(col, justify="right")
        t2.add_row(*(f"{e[k]:.2f}" for k in ("min", "25%", "median", "mean", "75%", "max")))
        console.print(t2)
    for path, why in st["corrupt"]:
        err_console.print(f"warning: skipped damaged result file {path} ({why}); delete it and "
                          "rerun train-batch to retrain that model")
