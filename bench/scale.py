"""Benchmark: the cost of reading a run as it grows, with compacted results.

    .venv/bin/python bench/scale.py [--sizes 100,1000,5000] [--repeats 3]

For each size N, a fresh run directory of N `anynetx_a` models (sampled at 1M:3M flops, 28
px) gets one synthetic result shard per model, written through dsd's own writer. Then, as
whole processes (start-up included), `dsd status RUN` three ways: the first read (it finds N
shards and compacts them), and the following reads (one compacted table). Also
`dsd edf show RUN --json --bootstrap 1000` after compaction. Printed: medians of --repeats
runs of each following read, and the ratio of each size's following read to the smallest
size's: a read whose cost does not grow with the run stays near 1x.

The machine is shared: compare ratios within one run, not absolute times.
"""

from __future__ import annotations

import argparse
import os
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
from dsd.store.results import write_result  # noqa: E402

console = Console(width=140)


def make_run(root: Path, n: int) -> Path:
    out = root / f"n{n}"
    sample_new("anynetx_a", n, out, Shape(1, 28, 10, 1), {"flops": "1M:3M"}, seed=0,
               dataset="fashion-mnist")
    rng = np.random.default_rng(n)
    for i in range(n):
        e = float(rng.normal(35, 5))
        write_result(out / "results", {"model_id": i, "status": "ok", "error_min": e,
                                       "error_last": e + 1, "curve": [e + 3, e]})
    return out


def timed(*args: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "dsd", *args], cwd=ROOT, capture_output=True,
                       text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if r.returncode != 0:
        raise SystemExit(f"dsd {' '.join(args)} failed: {r.stderr[-500:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    console.print(f"load average before: {os.getloadavg()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            t0 = time.perf_counter()
            run = make_run(Path(tmp), n)
            made = time.perf_counter() - t0
            first = timed("status", str(run))
            status = statistics.median(timed("status", str(run)) for _ in range(a.repeats))
            edf = statistics.median(timed("edf", "show", str(run), "--json", "--bootstrap", "1000")
                                    for _ in range(a.repeats))
            rows.append((n, made, first, status, edf))
    base = rows[0]
    t = Table(title="whole-command seconds (median of following reads) and ratio to the smallest run")
    for col in ("models", "write shards", "status, first read (compacts)", "status, next reads",
                "x smallest", "edf show --json", "x smallest"):
        t.add_column(col, justify="right")
    for n, made, first, status, edf in rows:
        t.add_row(f"{n:,}", f"{made:.1f}", f"{first:.2f}", f"{status:.2f}", f"{status / base[3]:.2f}x",
                  f"{edf:.2f}", f"{edf / base[4]:.2f}x")
    console.print(t)
    console.print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
