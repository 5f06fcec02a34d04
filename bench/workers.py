"""Benchmark: models per hour on the CPU, one worker with all cores' threads against one
one-thread worker per core, on an idle machine and beside a competing CPU-bound process.

Run from the repository root (the machine should be otherwise idle for the first half):

    .venv/bin/python bench/workers.py [--models 6] [--study studies/fashion-mnist.toml]

The models are the study's own kind: sampled from `anynetx_a` and `regnetx` at the study
file's flops window and data set, trained under its recipe through `dsd.train.batch.run_batch`
(the code path of `dsd train-batch` and `dsd study run`). Each configuration trains the same
models from scratch in a fresh run directory; models / hour = models / wall time of the
whole call (worker start-up and data loading included) x 3600. Configurations alternate
within each condition, and the ratio is taken inside one condition of one run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsd.data.recipe import with_overrides  # noqa: E402
from dsd.data.registry import dataset_shape, default_recipe  # noqa: E402
from dsd.space.sample_run import sample_new  # noqa: E402
from dsd.store.run import Run  # noqa: E402
from dsd.study.spec import load as load_study  # noqa: E402
from dsd.train.batch import cores, run_batch  # noqa: E402
from dsd.train.jobs import BatchOptions, RunJob  # noqa: E402

console = Console()


def busy() -> None:
    """A competing CPU-bound process: another user's job on the shared machine."""
    os.nice(0)
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2**31


def configs(n_cores: int) -> list[tuple[str, int, int]]:
    return [(f"1 worker x {n_cores} threads", 1, n_cores),
            (f"{n_cores} workers x 1 thread", n_cores, 1)]


def time_config(template: Path, tmp: Path, tag: str, recipe, workers: int, threads: int) -> float:
    run_dir = tmp / tag
    shutil.copytree(template, run_dir)
    job, options = RunJob(Run(run_dir), recipe), BatchOptions(device="cpu", threads=threads)
    t0 = time.perf_counter()
    run_batch(job, options, workers, lambda ev: None)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=6, help="models per configuration (half per space)")
    p.add_argument("--study", default=str(ROOT / "studies" / "fashion-mnist.toml"))
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args(argv)
    st = load_study(args.study)
    recipe = with_overrides(default_recipe(st.dataset), **st.recipe)
    n_cores = cores()
    console.print(f"machine: {n_cores} cores, load average {os.getloadavg()[0]:.2f} at start; "
                  f"study {st.name}: {st.dataset}, flops {st.flops}, recipe {st.recipe}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="dsd-bench-workers-") as tmp_s:
        tmp = Path(tmp_s)
        templates = []
        for space in ("anynetx_a", "regnetx"):
            out = tmp / f"template-{space}"
            sample_new(space, max(1, args.models // 2), out, dataset_shape(st.dataset),
                       {"flops": st.flops}, seed=1, dataset=st.dataset)
            templates.append(out)
        for condition in ("idle", "beside 1 busy process"):
            hog = None
            if condition != "idle":
                hog = mp.get_context("spawn").Process(target=busy, daemon=True)
                hog.start()
            try:
                for rep in range(args.repeats):
                    order = configs(n_cores) if rep % 2 == 0 else configs(n_cores)[::-1]
                    for label, workers, threads in order:
                        secs = sum(time_config(t, tmp, f"{condition[:4]}-{rep}-{workers}-{t.name}",
                                               recipe, workers, threads) for t in templates)
                        rows.append((condition, label, args.models, secs))
                        console.print(f"  {condition}: {label}: {args.models} models in {secs:.0f} s")
            finally:
                if hog is not None:
                    hog.kill()
    t = Table(title=f"models per hour on the CPU ({n_cores} cores), study models of {st.name}")
    for col in ("condition", "configuration", "models", "seconds", "models / hour", "ratio"):
        t.add_column(col, justify="right")
    for condition in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == condition]
        per = {}
        for _, label, n, secs in mine:
            per.setdefault(label, []).append((n, secs))
        base = None
        for label, vals in per.items():
            n, secs = sum(v[0] for v in vals), sum(v[1] for v in vals)
            mph = 3600 * n / secs
            base = base or mph
            t.add_row(condition, label, str(n), f"{secs:.0f}", f"{mph:.0f}", f"{mph / base:.2f}")
    console.print(t)
    console.print(f"load average {os.getloadavg()[0]:.2f} at the end; ratio: models / hour over "
                  "the first configuration of the same condition.")


if __name__ == "__main__":
    main()
