"""Shared fixtures: run the CLI in-process or as a subprocess, temporary run dirs, waiting
for conditions, and a PATH without Slurm for every test that does not need Slurm."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# `make test` runs two pytest processes on two cores. A test that trains in-process with
# two OpenMP threads then waits at every barrier for the other process's core: measured
# 86 s instead of 4 s. One thread each (read when torch is first imported, which is after
# this file) keeps them apart; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
SLURM_TOOLS = ("sbatch", "srun", "sacct", "scancel", "squeue", "sinfo", "scontrol")


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """`dsd ARGS` in a fresh interpreter, as a user would run it."""
    full_env = dict(os.environ, COLUMNS="200", **(env or {}))
    return subprocess.run([sys.executable, "-m", "dsd", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=full_env, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


def wait_for(pred: Callable[[], bool], what: str, timeout: float = 900, step: float = 0.2,
             proc: subprocess.Popen | None = None) -> None:
    """Poll until pred() holds; fail saying what did not happen (and why, if proc died)."""
    deadline = time.time() + timeout
    while not pred():
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"{what}: did not happen, the process exited with "
                                 f"{proc.returncode} first: {err[-2000:]}")
        if time.time() > deadline:
            raise AssertionError(f"{what}: did not happen within {timeout:.0f} s")
        time.sleep(step)


def _path_without_slurm(tmp: Path) -> str:
    """PATH with every directory holding a Slurm tool replaced by a copy (of symlinks)
    that lacks the Slurm tools: the suite proves it needs no Slurm."""
    out = []
    for i, d in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        p = Path(d)
        if not p.is_dir() or not any((p / t).exists() for t in SLURM_TOOLS):
            out.append(d)
            continue
        shadow = tmp / f"bin{i}"
        shadow.mkdir()
        for f in p.iterdir():
            if f.name not in SLURM_TOOLS:
                (shadow / f.name).symlink_to(f)
        out.append(str(shadow))
    return os.pathsep.join(out)


@pytest.fixture(scope="session")
def no_slurm_path(tmp_path_factory) -> str:
    return _path_without_slurm(tmp_path_factory.mktemp("no-slurm"))


@pytest.fixture(autouse=True)
def _hide_slurm(request, monkeypatch, no_slurm_path):
    if request.node.get_closest_marker("slurm") is None:
        monkeypatch.setenv("PATH", no_slurm_path)
        assert all(shutil.which(t) is None for t in SLURM_TOOLS)


def train_first_epoch_then_stop(arch, pipe, recipe, device, seed: int, ckpt: Path) -> dict:
    """Train until the first epoch's checkpoint is written, stop as a Ctrl-C would there, and
    return the checkpoint's contents."""
    import torch

    from dsd.train.loop import train_model

    def stop_after_first(epoch, epochs, ips):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(arch, pipe, recipe, device, seed, ckpt=ckpt, progress=stop_after_first)
    return torch.load(ckpt, weights_only=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """DSD_TEST_TIMEOUT=S fails a test that runs longer than S seconds and goes on with the
    next (scripts/gpu_check.sh sets it: one hung CUDA test must not cost the others). A test
    stuck inside one C call fails when that call returns; the script's outer `timeout`
    covers a call that never does. pytest-timeout does the same where it is installed."""
    limit = float(os.environ.get("DSD_TEST_TIMEOUT") or 0)
    if limit <= 0 or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        pytest.fail(f"timed out after {limit:.0f} s (DSD_TEST_TIMEOUT)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
