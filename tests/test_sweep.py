"""Sweeps: the generated sbatch script, bad input, local processes, and a real Slurm."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import wait_for

from dsd.model.arch import Shape
from dsd.space.sample_run import sample_new
from dsd.store.claims import pid_alive
from dsd.store.results import read_results

DIGITS = Shape(1, 8, 10, 1)


def _run(tmp_path: Path, n: int, name: str = "run") -> Path:
    out = tmp_path / name
    sample_new("anynetx_c", n, out, DIGITS, {"flops": "100K:300K"}, seed=0, dataset="digits")
    return out


def test_dry_run_script(tmp_path, cli):
    run = _run(tmp_path, 7)
    r = cli("sweep", "launch", str(run), "--dry-run", "--models-per-task", "2", "--parallel", "3",
            "--partition", "gpu", "--gpus-per-task", "1", "--cpus-per-task", "4", "--mem-gb", "6",
            "--timeout-min", "30", "--slurm-arg", "account=vision", "--epochs", "2")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for line in ("#SBATCH --array=0-3%3", "#SBATCH --partition=gpu", "#SBATCH --gpus-per-task=1",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --mem=6GB", "#SBATCH --time=30",
                 "#SBATCH --account=vision", "#SBATCH --signal=USR2@90",
                 f"#SBATCH --output={run.resolve()}/logs/%A_%a_0_log.out"):
        assert line in out, line
    assert "-m submitit.core._submit" in out and "srun" in out and "wckey" not in out
    r = cli("sweep", "launch", str(run), "--dry-run", "--wckey", "vision-dsd", "--epochs", "2")
    assert "#SBATCH --wckey=vision-dsd" in r.stdout, r.stdout + r.stderr
    assert not (run / "sweep.json").exists() and not (run / "train.toml").exists()  # wrote nothing


def test_no_slurm_and_nothing_to_do(tmp_path, cli):
    run = _run(tmp_path, 2)
    r = cli("sweep", "launch", str(run), env={"PATH": str(tmp_path)})
    assert r.returncode == 2 and "--executor local" in r.stderr and "Traceback" not in r.stderr
    r = cli("sweep", "launch", str(run), "--slurm-arg", "nokey", "--dry-run")
    assert r.returncode == 2 and "key=value" in r.stderr
    assert cli("train-batch", str(run), "--epochs", "1", "--device", "cpu").returncode == 0
    r = cli("sweep", "launch", str(run), "--epochs", "1")
    assert r.returncode == 0 and "nothing left to train" in r.stdout
    assert not (run / "sweep.json").exists()


def _states(cli, run: Path) -> str:
    r = cli("sweep", "status", str(run))
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_local_executor(tmp_path, cli):
    run = _run(tmp_path, 4)
    r = cli("sweep", "launch", str(run), "--executor", "local", "--parallel", "2", "--epochs", "1")
    assert r.returncode == 0, r.stderr
    subs = json.loads((run / "sweep.json").read_text())
    assert subs[0]["tasks"] == 2 and subs[0]["models"] == 4
    wait_for(lambda: len(read_results(run / "results").rows) == 4, "the 2 local tasks trained 4 models")
    rows = read_results(run / "results").rows
    assert sorted(r["model_id"] for r in rows) == [0, 1, 2, 3]
    wait_for(lambda: "COMPLETED 2" in _states(cli, run), "sweep status shows both tasks COMPLETED",
             timeout=120, step=1.0)


def test_local_cancel_stops_tasks_and_leaves_the_rest_resumable(tmp_path, cli):
    run = _run(tmp_path, 8)
    # capture_output reads the pipes to their end: if the tasks inherited launch's stdout,
    # this call would wait for the whole sweep instead of returning at submission.
    r = cli("sweep", "launch", str(run), "--executor", "local", "--parallel", "2", "--epochs", "3",
            "--train-subset", "400")
    assert r.returncode == 0, r.stderr
    jobs = [int(j) for j in json.loads((run / "sweep.json").read_text())[0]["job_ids"]]
    assert "RUNNING" in _states(cli, run), "launch returned only after its tasks ended"
    wait_for(lambda: len(read_results(run / "results").rows) > 0, "a local task finished a model")
    r = cli("sweep", "cancel", str(run))
    assert r.returncode == 0 and "cancelled" in r.stdout, r.stderr
    wait_for(lambda: not any(pid_alive(j) for j in jobs), "the cancelled tasks exited")
    assert "CANCELLED 2" in _states(cli, run)
    done = len(read_results(run / "results").rows)
    assert done < 8, "the tasks finished before the cancel could stop them"
    r = cli("train-batch", str(run), "--epochs", "3", "--train-subset", "400", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    ids = sorted(r["model_id"] for r in read_results(run / "results").rows)
    assert ids == list(range(8)), ids  # every model once: none lost, none trained twice


# --- a real Slurm (tests/slurm/up.sh; run by .ci/run) ---------------------------------


def _squeue(job: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i %T"], capture_output=True, text=True)
    return out.stdout.split("\n") if out.stdout.strip() else []


def _array_id(run: Path, k: int = -1) -> str:
    return json.loads((run / "sweep.json").read_text())[k]["job_ids"][0].split("_")[0]


@pytest.mark.slurm
def test_slurm_sweep_trains_every_model_once(tmp_path, cli):
    run = _run(tmp_path, 8)
    t0 = time.time()
    r = cli("sweep", "launch", str(run), "--models-per-task", "2", "--parallel", "2", "--epochs", "1")
    assert r.returncode == 0, r.stderr
    array = _array_id(run)
    wait_for(lambda: not _squeue(array), f"job array {array} left the queue", step=1.0)
    rows = read_results(run / "results").rows
    assert sorted(r["model_id"] for r in rows) == list(range(8))
    assert all(r["status"] == "ok" for r in rows)
    print(f"slurm sweep of 8 models: {time.time() - t0:.1f} s")
    st = cli("sweep", "status", str(run))
    assert st.returncode == 0 and "COMPLETED 4" in st.stdout


@pytest.mark.slurm
def test_slurm_cancelled_task_then_relaunch_loses_nothing(tmp_path, cli):
    run = _run(tmp_path, 8)
    r = cli("sweep", "launch", str(run), "--models-per-task", "2", "--parallel", "2", "--epochs", "3")
    assert r.returncode == 0, r.stderr
    array = _array_id(run)
    # Cancel task 1 once it is training (it has claimed a model), others go on.
    wait_for(lambda: any(line.startswith(f"{array}_1 RUNNING") for line in _squeue(array)),
             f"task {array}_1 started", step=0.3)
    wait_for(lambda: list((run / "claims").glob("[23]")) != [], f"task {array}_1 claimed a model")
    subprocess.run(["scancel", f"{array}_1"], check=True)
    wait_for(lambda: not _squeue(array), f"job array {array} left the queue", step=1.0)
    before = {p.name: p.read_bytes() for p in (run / "results").glob("*.parquet")}
    assert len(before) < 8  # the cancelled task's models are missing
    r = cli("sweep", "launch", str(run), "--models-per-task", "2", "--parallel", "2", "--epochs", "3")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: not _squeue(_array_id(run)), "the relaunched array left the queue", step=1.0)
    rows = read_results(run / "results").rows
    assert sorted(r["model_id"] for r in rows) == list(range(8))  # each exactly once
    assert all((run / "results" / n).read_bytes() == b for n, b in before.items())
    cancelled = json.loads((run / "sweep.json").read_text())[1]["models"]
    assert 1 <= cancelled <= 2
