"""Where sweep tasks run: one object per executor behind one small protocol.

An executor groups a run's untrained models into tasks, submits them through submitit,
reports the state of each task and cancels them. `slurm` submits one job array per run;
`local` runs the same tasks as processes on this machine. Adding an executor is one
class here and one entry in EXECUTORS.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from dsd.errors import DsdError
from dsd.store.claims import pid_alive
from dsd.store.run import Run


class Executor(Protocol):
    name: str

    def groups(self, ids: list[int], res) -> list[list[int]]: ...
    def check(self) -> None: ...
    def submit(self, run: Run, res, task, args: tuple, groups: list[list[int]]) -> list[str]: ...
    def states(self, run: Run, job_ids: list[str]) -> dict[str, str]: ...
    def cancel(self, run: Run, job_ids: list[str]) -> list[str]: ...
    def script(self, run: Run, res, n_tasks: int) -> str | None: ...


def chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


class SlurmExecutor:
    """One Slurm job array per run (submitit's map_array), `%P` tasks at once."""

    name = "slurm"

    def groups(self, ids: list[int], res) -> list[list[int]]:
        return chunks(ids, res.models_per_task)

    def check(self) -> None:
        if shutil.which("sbatch") is None or shutil.which("srun") is None:
            raise DsdError("no Slurm on this machine (sbatch/srun not found); run the sweep on "
                           "local processes with --executor local, or submit from a Slurm login node")

    def parameters(self, run: Run, res) -> dict:
        """submitit SlurmExecutor parameters for these resources."""
        params = {"job_name": f"dsd-{run.name}", "time": int(res.timeout_min),
                  "cpus_per_task": res.cpus_per_task, "mem": _mem(res.mem_gb),
                  "array_parallelism": res.parallel, "ntasks_per_node": 1, "nodes": 1,
                  "stderr_to_stdout": True, "wckey": res.wckey or None}  # None: no --wckey line
        if res.partition:
            params["partition"] = res.partition
        if res.gpus_per_task:
            params["gpus_per_task"] = res.gpus_per_task
        if res.slurm_args:
            params["additional_parameters"] = dict(res.slurm_args)
        return params

    def script(self, run: Run, res, n_tasks: int) -> str:
        """The sbatch file submitit would submit for an array of n_tasks (for --dry-run)."""
        from submitit.slurm.slurm import _make_sbatch_string

        folder = run.logs_dir.resolve()
        command = " ".join([shlex.quote(sys.executable), "-u -m submitit.core._submit",
                            shlex.quote(str(folder))])
        return _make_sbatch_string(command=command, folder=folder, map_count=n_tasks,
                                   **self.parameters(run, res))

    def submit(self, run: Run, res, task, args: tuple, groups: list[list[int]]) -> list[str]:
        import submitit

        self.check()
        ex = submitit.SlurmExecutor(folder=run.logs_dir, max_num_timeout=3)
        ex.update_parameters(**self.parameters(run, res))
        try:
            jobs = ex.map_array(task, *([a] * len(groups) for a in args), groups)
        except Exception as e:  # sbatch's own refusal (bad partition, resources)
            raise DsdError(f"sbatch refused the sweep: {str(e).strip().splitlines()[-1]}") from None
        return [j.job_id for j in jobs]

    def states(self, run: Run, job_ids: list[str]) -> dict[str, str]:
        if shutil.which("sacct") is None:
            raise DsdError("sacct not found: query the Slurm job states from a Slurm login node")
        array = job_ids[0].split("_")[0]
        out = subprocess.run(["sacct", "-j", array, "-X", "-n", "--parsable2", "-o", "JobID,State"],
                             capture_output=True, text=True, check=False).stdout
        states = dict(line.split("|")[:2] for line in out.splitlines() if "|" in line)
        return {j: _task_state(j, states) for j in job_ids}

    def cancel(self, run: Run, job_ids: list[str]) -> list[str]:
        if shutil.which("scancel") is None:
            raise DsdError("scancel not found: cancel the Slurm jobs from a Slurm login node")
        arrays = sorted({j.split("_")[0] for j in job_ids})
        subprocess.run(["scancel", *arrays], check=False, capture_output=True)
        return arrays


class LocalExecutor:
    """The same tasks as processes here: one per parallel slot, each with its share.

    A task is a submitit controller process (its pid is the job id) running the task in a
    child. The controllers log to RUN/logs/ only: they must not inherit our stdout, or
    `dsd sweep launch ... | tail` waits for the whole sweep. Cancel kills each task's
    process tree (submitit's checkpointable tasks ignore SIGTERM) and leaves a marker, so
    status tells a cancelled task from one that finished; the model in flight keeps its
    last epoch's checkpoint and its claim dies with its process, so a relaunch resumes it.
    """

    name = "local"

    def groups(self, ids: list[int], res) -> list[list[int]]:
        slots = min(res.parallel, len(ids))
        return [ids[i::slots] for i in range(slots)]

    def check(self) -> None:
        pass

    def script(self, run: Run, res, n_tasks: int) -> None:
        return None

    def submit(self, run: Run, res, task, args: tuple, groups: list[list[int]]) -> list[str]:
        import submitit

        ex = submitit.LocalExecutor(folder=run.logs_dir, max_num_timeout=3)
        ids, n_gpus = [], _visible_gpus()
        run.logs_dir.mkdir(parents=True, exist_ok=True)
        with _output_to(run.logs_dir / "controllers.log"):
            for i, models in enumerate(groups):
                params = {"timeout_min": res.timeout_min, "gpus_per_node": res.gpus_per_task}
                if res.gpus_per_task and n_gpus:  # spread the tasks over this machine's GPUs
                    first = (i * res.gpus_per_task) % n_gpus
                    params["visible_gpus"] = tuple((first + k) % n_gpus for k in range(res.gpus_per_task))
                ex.update_parameters(**params)
                ids.append(ex.submit(task, *args, models).job_id)
        return ids

    def states(self, run: Run, job_ids: list[str]) -> dict[str, str]:
        return {j: _local_state(run, j) for j in job_ids}

    def cancel(self, run: Run, job_ids: list[str]) -> list[str]:
        done = []
        for j in job_ids:
            if pid_alive(int(j)):
                (run.logs_dir / f"{j}.cancelled").touch()
                tree = [int(j), *_descendants(int(j))]  # collected before the controller dies
                for pid in tree:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                done.append(j)
        return done


def _local_state(run: Run, job_id: str) -> str:
    """RUNNING, CANCELLED (by `sweep cancel`), COMPLETED or FAILED (submitit's result
    file), or INTERRUPTED (the task died without a result: killed, machine restarted)."""
    import pickle

    if pid_alive(int(job_id)):
        return "RUNNING"
    if (run.logs_dir / f"{job_id}.cancelled").exists():
        return "CANCELLED"
    result = run.logs_dir / f"{job_id}_0_result.pkl"
    if not result.exists():
        return "INTERRUPTED"
    try:
        with result.open("rb") as f:
            outcome = pickle.load(f)[0]  # our own task's file: ("success" | "error", ...)
    except Exception:
        return "FAILED"
    return "COMPLETED" if outcome == "success" else "FAILED"


def _descendants(pid: int) -> list[int]:
    """Every process below pid (Linux /proc), children before their own children."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@contextmanager
def _output_to(path: Path):
    """Point this process's stdout and stderr (the file descriptors children inherit) at a
    file for the duration."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with path.open("a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


EXECUTORS: dict[str, Executor] = {"slurm": SlurmExecutor(), "local": LocalExecutor()}


def get(name: str) -> Executor:
    if name not in EXECUTORS:
        raise DsdError(f"--executor must be {' or '.join(EXECUTORS)}, got {name!r}")
    return EXECUTORS[name]


def _mem(gb: float) -> str:
    return f"{int(gb)}GB" if gb == int(gb) else f"{int(gb * 1024)}MB"


def _visible_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0


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
