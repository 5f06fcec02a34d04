"""`dsd sweep launch | status | cancel`: train-batch as a Slurm job array, via submitit."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from dsd.cli.app import app, console
from dsd.cli.train_cmd import print_status
from dsd.cli.train_options import train_request, with_train_options
from dsd.cluster.executors import EXECUTORS
from dsd.errors import DsdError
from dsd.store.run import open_run

sweep_app = typer.Typer(help="Scripted cluster sweeps on Slurm (or local processes).",
                        no_args_is_help=True)
app.add_typer(sweep_app, name="sweep")


@sweep_app.command("launch")
@with_train_options
def launch_cmd(
    runs: list[Path] = typer.Argument(..., help="One or more run directories."),
    executor: str = typer.Option("slurm", "--executor",
                                 help=" or ".join(EXECUTORS) + " (local: processes here)."),
    partition: str = typer.Option(None, "--partition", help="Slurm partition."),
    gpus_per_task: int = typer.Option(0, "--gpus-per-task", help="GPUs per array task."),
    cpus_per_task: int = typer.Option(1, "--cpus-per-task", help="CPUs per array task."),
    mem_gb: float = typer.Option(4.0, "--mem-gb", help="Memory per array task, GB."),
    parallel: int = typer.Option(64, "--parallel", help="Array tasks running at once (%P)."),
    models_per_task: int = typer.Option(1, "--models-per-task", help="Models each task trains "
                                        "(small models would otherwise spend their time starting)."),
    timeout_min: int = typer.Option(60, "--timeout-min", help="Time limit per task; a task "
                                    "that reaches it is requeued and resumes."),
    slurm_arg: list[str] = typer.Option(None, "--slurm-arg", help="Extra sbatch option key=value "
                                        "(repeatable), e.g. account=vision."),
    wckey: str = typer.Option(None, "--wckey", help="Slurm workload characterization key (default: "
                              "none, no --wckey line; submitit would pass 'submitit')."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the sbatch script; submit nothing."),
    limit: int = typer.Option(None, "--limit", help="Submit at most K models per run."),
    train: dict | None = None,
) -> None:
    """Submit the untrained models of each run as a Slurm job array (one per run).

    Example: dsd sweep launch runs/a runs/b --models-per-task 4 --parallel 32 --epochs 10
    """
    from dataclasses import replace

    from dsd.cluster.sweep import Resources, launch, parse_slurm_args
    from dsd.train.setup import batch_options, prepare

    res = Resources(executor, partition, gpus_per_task, cpus_per_task, mem_gb, parallel,
                    models_per_task, timeout_min, parse_slurm_args(slurm_arg), wckey)
    req = train_request(train, limit=limit)
    for run in runs:
        # The data set is read on the task's node, not on this (login) node.
        job = prepare(run, req, load_data=False, write=False)  # launch fixes the recipe
        options = replace(batch_options(req, load_data=False), device=res.task_device(req.device))
        if options.step == "graph" and options.device == "cpu":
            raise DsdError("--step graph needs GPUs on the nodes: pass --gpus-per-task 1 (or more)")
        info = launch(job, options, res, dry_run)
        if not info["models"]:
            console.print(f"{run}: nothing left to train; submitted nothing")
        elif dry_run:
            console.print(f"{run}: would submit {info['models']} models as {info['tasks']} tasks")
            if "sbatch" in info:
                print(info["sbatch"])
        else:
            console.print(f"{run}: submitted {info['models']} models as {info['tasks']} tasks "
                          f"({res.executor}: {', '.join(_short(info['job_ids']))}); logs in {run}/logs; "
                          f"watch with `dsd sweep status {run}`")


def _short(job_ids: list[str]) -> list[str]:
    arrays = sorted({j.split("_")[0] for j in job_ids})
    return [f"array {a}" for a in arrays] if all("_" in j for j in job_ids) else job_ids


@sweep_app.command("status")
def status_cmd(run: Path = typer.Argument(..., help="A run directory with a sweep.")) -> None:
    """Job ids and states of the run's sweeps, and the run directory's counts.

    Example: dsd sweep status runs/demo/regnetx
    """
    from dsd.cluster.sweep import job_states, submissions

    r = open_run(run)
    t = Table(title=f"sweeps of {run}")
    for col in ("submitted", "executor", "jobs", "models", "tasks", "states"):
        t.add_column(col)
    for sub in submissions(r):
        states = job_states(r, sub)
        summary = {}
        for s in states.values():
            summary[s] = summary.get(s, 0) + 1
        t.add_row(sub["submitted"], sub["executor"], ", ".join(_short(sub["job_ids"])),
                  str(sub["models"]), str(sub["tasks"]),
                  ", ".join(f"{k} {v}" for k, v in sorted(summary.items())))
    console.print(t)
    print_status(run)


@sweep_app.command("cancel")
def cancel_cmd(run: Path = typer.Argument(..., help="A run directory with a sweep.")) -> None:
    """Cancel the run's sweep tasks (finished models stay; relaunch to go on).

    Example: dsd sweep cancel runs/demo/regnetx
    """
    from dsd.cluster.sweep import cancel

    jobs = cancel(open_run(run))
    console.print(f"cancelled {', '.join(jobs) if jobs else 'nothing (no task was running)'}")
