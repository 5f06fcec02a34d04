"""Cluster sweeps on Slurm (or local processes) through submitit.

A sweep submits the untrained models of a run directory as one Slurm job array: each
array task trains `models_per_task` of them through the same claims and result shards as
`dsd train-batch`, so a task that dies or is preempted loses only its model in flight
and a relaunch finishes the rest. Tasks are submitit Checkpointables: on timeout or
preemption submitit requeues them, and the per-epoch checkpoints resume the model in
flight. Submissions are recorded in RUN/sweep.json for `sweep status` and `sweep cancel`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from dsd.batch import BatchConfig, Worker, todo
from dsd.claims import pid_alive
from dsd.errors import DsdError
from dsd.rundir import Run

SWEEP_FILE = "sweep.json"


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


class SweepTask:
    """One array task: train these models of the run (a submitit Checkpointable)."""

    def __call__(self, cfg: BatchConfig, ids: list[int]) -> dict:
        def log(ev: dict) -> None:
            if ev["kind"] in ("start", "done"):
                print(json.dumps(ev), flush=True)

        cpus = int(os.environ.get("SLURM_CPUS_PER_TASK", "0"))
        if cpus and cfg.device == "cpu":
            cfg = replace(cfg, threads=cpus)  # the task's share of the node, not all its cores
        Worker(cfg, log, name=os.environ.get("SLURM_ARRAY_TASK_ID", "local")).work(ids)
        return {"models": ids}

    def checkpoint(self, cfg: BatchConfig, ids: list[int]):
        """Requeue with the same models: done ones are skipped, the one in flight resumes
        from its last epoch's checkpoint."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, cfg, ids)


def chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def parse_slurm_args(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item or not item.split("=", 1)[0]:
            raise DsdError(f"--slurm-arg takes key=value (e.g. account=vision), got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip().lstrip("-")] = v
    return out


def slurm_parameters(res: Resources, run: Run) -> dict:
    """submitit SlurmExecutor parameters for these resources."""
    params = {"job_name": f"dsd-{run.name}", "time": int(res.timeout_min),
              "cpus_per_task": res.cpus_per_task, "mem": _mem(res.mem_gb),
              "array_parallelism": res.parallel, "ntasks_per_node": 1, "nodes": 1,
              "stderr_to_stdout": True}
    if res.partition:
        params["partition"] = res.partition
    if res.gpus_per_task:
        params["gpus_per_task"] = res.gpus_per_task
    if res.slurm_args:
        params["additional_parameters"] = dict(res.slurm_args)
    return params


def _mem(gb: float) -> str:
    return f"{int(gb)}GB" if gb == int(gb) else f"{int(gb * 1024)}MB"


def sbatch_script(run: Run, res: Resources, n_tasks: int) -> str:
    """The sbatch file submitit would submit for an array of n_tasks (for --dry-run)."""
    from submitit.slurm.slurm import _make_sbatch_string

    folder = (run.path / "logs").resolve()
    command = " ".join([shlex.quote(sys.executable), "-u -m submitit.core._submit",
                        shlex.quote(str(folder))])
    return _make_sbatch_string(command=command, folder=folder, map_count=n_tasks,
                               **slurm_parameters(res, run))


def check_slurm() -> None:
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise DsdError("no Slurm on this machine (sbatch/srun not found); run the sweep on "
                       "local processes with --executor local, or submit from a Slurm login node")


def launch(cfg: BatchConfig, res: Resources, dry_run: bool = False) -> dict:
    """Submit the run's untrained models; returns what was (or would be) submitted."""
    run = Run(Path(cfg.run))
    ids = todo(run, cfg)
    if cfg.limit is not None:
        ids = ids[:cfg.limit]
    if not ids:
        return {"run": str(run.path), "models": 0, "tasks": 0, "job_ids": []}
    if res.executor == "local":  # one process per parallel slot, each with its share
        slots = min(res.parallel, len(ids))
        groups = [ids[i::slots] for i in range(slots)]
    else:
        groups = chunks(ids, res.models_per_task)
    info = {"run": str(run.path), "models": len(ids), "tasks": len(groups),
            "executor": res.executor, "resources": asdict(res),
            "submitted": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    if dry_run:
        if res.executor == "slurm":
            info["sbatch"] = sbatch_script(run, res, len(groups))
        return info
    cfgs = [cfg] * len(groups)
    if res.executor == "slurm":
        check_slurm()
        jobs = _submit_slurm(run, res, cfgs, groups)
    elif res.executor == "local":
        jobs = _submit_local(run, res, cfgs, groups)
    else:
        raise DsdError(f"--executor must be slurm or local, got {res.executor!r}")
    info["job_ids"] = [j.job_id for j in jobs]
    _record(run, info)
    return info


def _submit_slurm(run: Run, res: Resources, cfgs, groups):
    import submitit

    ex = submitit.SlurmExecutor(folder=run.path / "logs", max_num_timeout=3)
    ex.update_parameters(**slurm_parameters(res, run))
    try:
        return ex.map_array(SweepTask(), cfgs, groups)
    except Exception as e:  # sbatch's own refusal (bad partition, resources)
        raise DsdError(f"sbatch refused the sweep: {str(e).strip().splitlines()[-1]}") from None


def _submit_local(run: Run, res: Resources, cfgs, groups):
    import submitit

    ex = submitit.LocalExecutor(folder=run.path / "logs", max_num_timeout=3)
    jobs = []
    n_gpus = _visible_gpus()
    for i, (cfg, ids) in enumerate(zip(cfgs, groups)):
        params = {"timeout_min": res.timeout_min, "gpus_per_node": res.gpus_per_task}
        if res.gpus_per_task and n_gpus:
            first = (i * res.gpus_per_task) % n_gpus
            params["visible_gpus"] = tuple((first + k) % n_gpus for k in range(res.gpus_per_task))
        ex.update_parameters(**params)
        jobs.append(ex.submit(SweepTask(), cfg, ids))
    return jobs


def _visible_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0


def _record(run: Run, info: dict) -> None:
    path = run.path / SWEEP_FILE
    past = json.loads(path.read_text()) if path.exists() else []
    past.append({k: v for k, v in info.items() if k != "sbatch"})
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(past, indent=2))
    os.replace(tmp, path)


def submissions(run: Run) -> list[dict]:
    path = run.path / SWEEP_FILE
    if not path.exists():
        raise DsdError(f"{run.path} has no sweep (no {SWEEP_FILE}); start one with `dsd sweep launch`")
    return json.loads(path.read_text())


def job_states(sub: dict) -> dict[str, str]:
    """State of every task of one submission: sacct for Slurm, the pid for local jobs."""
    if sub["executor"] == "local":
        return {j: ("RUNNING" if pid_alive(int(j)) else "FINISHED") for j in sub["job_ids"]}
    if shutil.which("sacct") is None:
        raise DsdError("sacct not found: query the Slurm job states from a Slurm login node")
    array = sub["job_ids"][0].split("_")[0]
    out = subprocess.run(["sacct", "-j", array, "-X", "-n", "--parsable2", "-o", "JobID,State"],
                         capture_output=True, text=True, check=False).stdout
    states = dict(line.split("|")[:2] for line in out.splitlines() if "|" in line)
    return {j: _task_state(j, states) for j in sub["job_ids"]}


def _task_state(job_id: str, states: dict[str, str]) -> str:
    if job_id in states:
        return states[job_id].split()[0]
    array, _, task = job_id.partition("_")
    for key, state in states.items():  # pending tasks appear as ranges: 12_[2-5%2]
        if key.startswith(f"{array}_[") and _in_range(int(task), key.split("[")[1].rstrip("]")):
            return state.split()[0]
    return "UNKNOWN"


def _in_range(i: int, spec: str) -> bool:
    for part in spec.split("%")[0].split(","):
        lo, _, hi = part.partition("-")
        if int(lo) <= i <= int(hi or lo):
            return True
    return False


def cancel(run: Run) -> list[str]:
    """Cancel every recorded task that may still run; returns the job ids it signalled."""
    done = []
    for sub in submissions(run):
        if sub["executor"] == "local":
            for j in sub["job_ids"]:
                if pid_alive(int(j)):
                    os.kill(int(j), signal.SIGTERM)
                    done.append(j)
            continue
        if shutil.which("scancel") is None:
            raise DsdError("scancel not found: cancel the Slurm jobs from a Slurm login node")
        arrays = sorted({j.split("_")[0] for j in sub["job_ids"]})
        subprocess.run(["scancel", *arrays], check=False, capture_output=True)
        done += arrays
    return done
