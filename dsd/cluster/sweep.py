"""Cluster sweeps: a run's untrained models as tasks on an executor (Slurm or local).

Each task trains its models through the same claims and result shards as `dsd
train-batch`, so a task that dies or is preempted loses only its model in flight and a
relaunch finishes the rest. Tasks are submitit Checkpointables: on timeout or preemption
submitit requeues them, and the per-epoch checkpoints resume the model in flight.
Submissions are recorded in RUN/sweep.json for `sweep status` and `sweep cancel`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, field, replace

from dsd.cluster.executors import get as get_executor
from dsd.errors import DsdError
from dsd.store.recipe_file import fix_for_run
from dsd.store.run import Run
from dsd.train.batch import Worker, todo
from dsd.train.jobs import BatchOptions, RunJob


@dataclass
class Resources:
    executor: str = "slurm"
    partition: str | None = None
    gpus_per_task: int = 0
    cpus_per_task: int = 1
    mem_gb: float = 4.0
    parallel: int = 64
    models_per_task: int = 1
    timeout_min: int = 60
    slurm_args: dict[str, str] = field(default_factory=dict)
    wckey: str | None = None  # submitit's default "submitit" is rejected by some clusters

    def __post_init__(self) -> None:
        get_executor(self.executor)
        if min(self.parallel, self.models_per_task, self.cpus_per_task, self.timeout_min) < 1 \
                or self.mem_gb <= 0 or self.gpus_per_task < 0:
            raise DsdError("--parallel, --models-per-task, --cpus-per-task and --timeout-min must "
                           "be at least 1, --mem-gb positive, --gpus-per-task not negative")

    def task_device(self, device: str) -> str:
        """The device on the task's node (auto is decided there by the GPUs asked for)."""
        return ("cuda" if self.gpus_per_task else "cpu") if device == "auto" else device


class SweepTask:
    """One task: train these models of the run (a submitit Checkpointable)."""

    def __call__(self, job: RunJob, options: BatchOptions, ids: list[int]) -> dict:
        from dsd.train.events import PlainLog

        log = PlainLog(lambda line: print(line, flush=True), total=len(ids))  # RUN/logs/

        cpus = int(os.environ.get("SLURM_CPUS_PER_TASK", "0"))
        if cpus and options.device == "cpu":
            options = replace(options, threads=cpus)  # the task's share of the node, not all its cores
        Worker(job, options, log, name=os.environ.get("SLURM_ARRAY_TASK_ID", "local")).work(ids)
        return {"models": ids}

    def checkpoint(self, job: RunJob, options: BatchOptions, ids: list[int]):
        """Requeue with the same models: done ones are skipped, the one in flight resumes
        from its last epoch's checkpoint."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, job, options, ids)


def parse_slurm_args(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item or not item.split("=", 1)[0]:
            raise DsdError(f"--slurm-arg takes key=value (e.g. account=vision), got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip().lstrip("-")] = v
    return out


def launch(job: RunJob, options: BatchOptions, res: Resources, dry_run: bool = False) -> dict:
    """Submit the run's untrained models; returns what was (or would be) submitted."""
    run, ex = job.run, get_executor(res.executor)
    ids = todo(run, options)
    if options.limit is not None:
        ids = ids[:options.limit]
    if not ids:
        return {"run": str(run.path), "models": 0, "tasks": 0, "job_ids": []}
    if not dry_run:
        ex.check()  # only now: a run with nothing to train needs no Slurm
        fix_for_run(run, job.recipe)  # one run, one recipe, fixed at the first submission
    groups = ex.groups(ids, res)
    info = {"run": str(run.path), "models": len(ids), "tasks": len(groups),
            "executor": res.executor, "resources": asdict(res),
            "submitted": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    if dry_run:
        script = ex.script(run, res, len(groups))
        if script:
            info["sbatch"] = script
        return info
    info["job_ids"] = ex.submit(run, res, SweepTask(), (job, options), groups)
    _record(run, info)
    return info


def _record(run: Run, info: dict) -> None:
    path = run.sweep_path
    past = json.loads(path.read_text()) if path.exists() else []
    past.append({k: v for k, v in info.items() if k != "sbatch"})
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(past, indent=2))
    os.replace(tmp, path)


def submissions(run: Run) -> list[dict]:
    path = run.sweep_path
    if not path.exists():
        raise DsdError(f"{run.path} has no sweep (no {path.name}); start one with `dsd sweep launch`")
    return json.loads(path.read_text())


def job_states(run: Run, sub: dict) -> dict[str, str]:
    """State of every task of one submission."""
    return get_executor(sub["executor"]).states(run, sub["job_ids"])


def cancel(run: Run) -> list[str]:
    """Cancel every recorded task that may still run; returns the job ids it signalled."""
    done = []
    for sub in submissions(run):
        done += get_executor(sub["executor"]).cancel(run, sub["job_ids"])
    return done
