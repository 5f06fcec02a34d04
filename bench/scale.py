"""Benchmark: the cost of commands as a run grows to 100,000 models, and sampling 100,000.

    .venv/bin/python bench/scale.py [--sizes 100,1000,10000,100000] [--repeats 3] [--keep DIR]

For each size N: a run directory A of N `anynetx_a` models (sampled at 1M:3M flops, 28 px),
with one synthetic result per model (errors in steps of 0.05%, as a 2,000-image test set
gives) written through dsd's own writer by two processes,
each of which reads the results (and so compacts them) every 1,000 writes, as the status
calls of a running study would; and B, a copy of A (the second run of `edf compare` and
`report`: reading it costs what reading any other run of N models costs). Then, as whole processes (start-up
included):

- `dsd status A`, `dsd edf show A --json`, `dsd edf compare A B --json`, `dsd report A B`
  and `dsd train-batch A` with nothing left to do: the first read (it folds the last
  shards) and the median of --repeats following reads;
- `dsd sample --n 100000` for anynetx_a at 360M:400M and for regnetx at 200M:800M (the
  papers' 360M:400M holds only about 14,000 distinct RegNetX models).

Printed: seconds per command and the ratio of each following read to the same command on
the smallest run. Target (issue #13): at 100,000 models every following read within 2x of
the 100-model run; each `sample --n 100000` under 15 s. The machine is shared: compare
ratios within one run, not absolute times. With --keep DIR the runs are kept (and reused
when they exist).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsd.model.arch import Shape  # noqa: E402
from dsd.space.sample_run import sample_new  # noqa: E402
from dsd.store.results import read_results, write_result  # noqa: E402

console = Console(width=150)
RECIPE = ["--dataset", "fashion-mnist", "--epochs", "2"]
COMMANDS = {
    "status": lambda a, b, tmp: ["status", a],
    "edf show": lambda a, b, tmp: ["edf", "show", a, "--json", "--bootstrap", "1000"],
    "edf compare": lambda a, b, tmp: ["edf", "compare", a, b, "--json", "--bootstrap", "1000"],
    "report": lambda a, b, tmp: ["report", a, b, "--out", f"{tmp}/report.html", "--bootstrap",
                                 "1000"],
    "train-batch start": lambda a, b, tmp: ["train-batch", a, *RECIPE],
}


def _write(out: Path, ids: np.ndarray, seed: int, every: int) -> None:
    rng = np.random.default_rng(seed)
    for k, i in enumerate(ids, 1):
        e = round(float(rng.normal(35, 5)) * 20) / 20  # a 2,000-image test set: steps of 0.05%
        write_result(out / "results", {"model_id": int(i), "status": "ok", "error_min": e,
                                       "error_last": e + 1, "curve": [e + 3, e + 1],
                                       "epochs": 2, "dataset": "fashion-mnist"})
        if k % every == 0:
            read_results(out / "results")


def make_run(root: Path, n: int) -> Path:
    out = root / f"n{n}"
    if (out / "done").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    sample_new("anynetx_a", n, out, Shape(1, 28, 10, 1), {"flops": "1M:3M"}, seed=0,
               dataset="fashion-mnist")
    ids = np.arange(n)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write, args=(out, ids[k::2], k, 1000)) for k in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    (out / "done").touch()
    return out


def copy_run(a: Path) -> Path:
    b = a.with_name(a.name + "-copy")
    if not b.exists():
        shutil.copytree(a, b)
    return b


def timed(*args: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "dsd", *args], cwd=ROOT, capture_output=True,
                       text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if r.returncode != 0:
        raise SystemExit(f"dsd {' '.join(args)} failed: {r.stderr[-800:]}")
    return time.perf_counter() - t0


def measure_size(root: Path, n: int, repeats: int) -> dict:
    t0 = time.perf_counter()
    run = make_run(root, n)
    a, b = str(run), str(copy_run(run))
    out = {"made": time.perf_counter() - t0}
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in COMMANDS.items():
            first = timed(*argv(a, b, tmp))
            nxt = statistics.median(timed(*argv(a, b, tmp)) for _ in range(repeats))
            out[name] = (first, nxt)
    return out


def sample_times(root: Path) -> list[tuple[str, str, float]]:
    rows = []
    for space, window in (("anynetx_a", "360M:400M"), ("regnetx", "200M:800M")):
        out = root / f"sample-{space}"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        dt = timed("sample", "--space", space, "--n", "100000", "--flops", window, "--out", str(out))
        rows.append((space, window, dt))
    return rows


def report(sizes: list[int], found: dict[int, dict], sampled) -> None:
    base = found[sizes[0]]
    t = Table(title="whole-command seconds: first read / median of following reads "
                    f"(x = following read / the same on {sizes[0]:,} models)")
    t.add_column("models", justify="right")
    t.add_column("write runs", justify="right")
    for name in COMMANDS:
        t.add_column(name, justify="right")
    for n in sizes:
        f = found[n]
        cells = [f"{f[k][0]:.2f} / {f[k][1]:.2f} ({f[k][1] / base[k][1]:.2f}x)" for k in COMMANDS]
        t.add_row(f"{n:,}", f"{f['made']:.0f}", *cells)
    console.print(t)
    s = Table(title="dsd sample --n 100000 (whole command)")
    for col in ("space", "flops window", "seconds"):
        s.add_column(col)
    for space, window, dt in sampled:
        s.add_row(space, window, f"{dt:.2f}")
    console.print(s)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,10000,100000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", default=None, help="keep (and reuse) the runs in this directory")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    console.print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.keep) if a.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        found = {n: measure_size(root, n, a.repeats) for n in sizes}
        sampled = sample_times(root)
    report(sizes, found, sampled)
    console.print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
