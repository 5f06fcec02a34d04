"""Benchmark: complexity counting three ways on the same candidates, and `dsd sample` wall time.

Run from the repository root:

    .venv/bin/python bench/sample.py [--candidates 20000] [--fvcore-models 10] [--repeats 3] [--n 500]

Part 1 draws candidates once per space with dsd's own `draw_block`, then counts their
flops / params / acts (a) with dsd's vectorised `complexity_batch` on the whole array,
(b) with a per-model, layer-by-layer walk written below in pycls's style, and (c) with
fvcore on the torch module that `dsd.model.net.build` gives. The walk re-derives the formulas
independently, so it doubles as an exact cross-check of the vectorised counter.

Part 2 times the whole `dsd sample` command, process start-up and file writing included,
since that is what a user waits for.

The machine is shared and noisy: every timing is a median over repeats, the three counters
are interleaved within each repeat so that a load spike hits all of them alike, and the
figures to compare are the ratios measured side by side in this one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from dsd.model.arch import Arch, Shape
from dsd.model.complexity import Complexity, complexity_batch
from dsd.space import spec as spaces
from dsd.space.sampler import BLOCK, draw_block

SHAPE = Shape(in_channels=3, resolution=224, num_classes=1000, stem_stride=2)
# Restated rather than imported: the walk must share no code with the counter it checks.
SE_RATIO = 0.25
METRICS = ("flops", "params", "acts")
TARGET_WALK, TARGET_FVCORE, TARGET_SAMPLE_S = 20.0, 1000.0, 5.0

console = Console()


# ---------------------------------------------------------------------------------------------
# (b) The pycls-style walk: one cx dict {h, w, flops, params, acts} threaded through per-layer
# helpers, one model at a time. Plain Python ints, so it is exact like the int64 counter.
# ---------------------------------------------------------------------------------------------

def conv2d_cx(cx: dict, w_in: int, w_out: int, k: int, stride: int = 1, groups: int = 1,
              bias: bool = False) -> dict:
    # Padding k // 2 with an odd k gives an output side of (h - 1) // stride + 1.
    h, w = (cx["h"] - 1) // stride + 1, (cx["w"] - 1) // stride + 1
    cx["flops"] += k * k * w_in * w_out * h * w // groups + (w_out * h * w if bias else 0)
    cx["params"] += k * k * w_in * w_out // groups + (w_out if bias else 0)
    cx["acts"] += w_out * h * w
    cx["h"], cx["w"] = h, w
    return cx


def norm2d_cx(cx: dict, w_in: int) -> dict:
    cx["params"] += 2 * w_in  # BatchNorm: a scale and a shift per channel, no flops, no acts
    return cx


def gap2d_cx(cx: dict) -> dict:
    cx["h"], cx["w"] = 1, 1  # global average pooling is counted as free, like pycls
    return cx


def linear_cx(cx: dict, w_in: int, w_out: int, bias: bool = True) -> dict:
    h, w = cx["h"], cx["w"]
    cx["flops"] += w_in * w_out * h * w + (w_out * h * w if bias else 0)
    cx["params"] += w_in * w_out + (w_out if bias else 0)
    cx["acts"] += w_out * h * w
    return cx


def se_cx(cx: dict, w_in: int, w_b: int) -> dict:
    """Squeeze-excitation on w_b channels; its width follows the block's input width."""
    h, w = cx["h"], cx["w"]
    w_se = int(round(SE_RATIO * w_in))
    cx = gap2d_cx(cx)
    cx = conv2d_cx(cx, w_b, w_se, 1, bias=True)
    cx = conv2d_cx(cx, w_se, w_b, 1, bias=True)
    cx["h"], cx["w"] = h, w  # the gate multiplies the full-size map: back to its size
    return cx


def block_cx(cx: dict, w_in: int, w_out: int, stride: int, b: float, g: int, se: bool) -> dict:
    """X block (Y with se): 1x1, grouped 3x3 with the stride, [SE], 1x1, [projection]."""
    h, w = cx["h"], cx["w"]
    w_b = int(round(w_out * (1.0 / b)))
    if w_in != w_out or stride != 1:
        cx = norm2d_cx(conv2d_cx(cx, w_in, w_out, 1, stride), w_out)
        cx["h"], cx["w"] = h, w  # the residual branch reads the block input too
    cx = norm2d_cx(conv2d_cx(cx, w_in, w_b, 1), w_b)
    cx = norm2d_cx(conv2d_cx(cx, w_b, w_b, 3, stride, groups=w_b // g), w_b)
    if se:
        cx = se_cx(cx, w_in, w_b)
    return norm2d_cx(conv2d_cx(cx, w_b, w_out, 1), w_out)


def anynet_cx(ds: list, ws: list, bs: list, gs: list, se: bool, shape: Shape, stem_w: int) -> dict:
    """Stem, every block of every stage (the first one strided), head."""
    cx = {"h": shape.resolution, "w": shape.resolution, "flops": 0, "params": 0, "acts": 0}
    cx = norm2d_cx(conv2d_cx(cx, shape.in_channels, stem_w, 3, shape.stem_stride), stem_w)
    w_in = stem_w
    for d, w, b, g in zip(ds, ws, bs, gs):
        for i in range(d):
            cx = block_cx(cx, w_in, w, 2 if i == 0 else 1, b, g, se)
            w_in = w
    return linear_cx(gap2d_cx(cx), w_in, shape.num_classes, bias=True)


# ---------------------------------------------------------------------------------------------
# The candidates and the three counters.
# ---------------------------------------------------------------------------------------------

@dataclass
class Pool:
    """One space's candidates as `draw_block` leaves them: adjusted, one row per model."""

    name: str
    se: bool
    stem_w: int
    ds: np.ndarray
    ws: np.ndarray
    bs: np.ndarray
    gs: np.ndarray
    cx: dict[str, np.ndarray]  # what draw_block counted itself

    def __len__(self) -> int:
        return len(self.ds)

    def arch(self, i: int) -> Arch:
        return Arch(tuple(int(x) for x in self.ds[i]), tuple(int(x) for x in self.ws[i]),
                    tuple(float(x) for x in self.bs[i]), tuple(int(x) for x in self.gs[i]),
                    "y" if self.se else "x", self.stem_w, SHAPE)


def draw_pool(name: str, n: int, seed: int) -> Pool:
    space = spaces.load(name)
    blocks, got = [], 0
    while got < n:  # a regnet block keeps only the draws with exactly `stages` stages
        blocks.append(draw_block(space, SHAPE, seed, len(blocks)))
        got += len(blocks[-1].index)
    cat = lambda xs: np.concatenate(xs)[:n]
    return Pool(name, space.se, space.stem_width, cat([c.ds for c in blocks]),
                cat([c.ws for c in blocks]), cat([c.bs for c in blocks]), cat([c.gs for c in blocks]),
                {k: cat([c.cx[k] for c in blocks]) for k in METRICS})


def count_vectorised(pool: Pool) -> Complexity:
    return complexity_batch(pool.ds, pool.ws, pool.bs, pool.gs, SHAPE, "y" if pool.se else "x",
                            stem_w=pool.stem_w)


def count_walk(rows: list[tuple], se: bool, stem_w: int) -> list[dict]:
    return [anynet_cx(ds, ws, bs, gs, se, SHAPE, stem_w) for ds, ws, bs, gs in rows]


def count_fvcore(archs: list[Arch]) -> list[tuple]:
    """Build each module and let fvcore trace it; returns (model, ops by operator) per arch."""
    import torch
    from fvcore.nn import FlopCountAnalysis

    from dsd.model.net import build

    x = torch.zeros(1, SHAPE.in_channels, SHAPE.resolution, SHAPE.resolution)
    out = []
    for arch in archs:
        model = build(arch).eval()
        fa = FlopCountAnalysis(model, x)
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        with torch.no_grad():
            out.append((model, fa.by_operator()))
    return out


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


@dataclass
class CountBench:
    pool: Pool
    subset: list[int]
    seconds: dict[str, list[float]]
    vec: Complexity
    walked: list[dict]
    fv: list[tuple]

    def rate(self, how: str) -> float:
        n = len(self.subset) if how == "fvcore" else len(self.pool)
        return n / statistics.median(self.seconds[how])


def bench_counting(pool: Pool, fvcore_models: int, repeats: int) -> CountBench:
    # The walk gets plain Python lists, converted once and untimed: its most favourable case.
    rows = list(zip(pool.ds.tolist(), pool.ws.tolist(), pool.bs.tolist(), pool.gs.tolist()))
    # An evenly spread subset, so fvcore sees the same mix of depths as the other two.
    subset = np.linspace(0, len(pool) - 1, fvcore_models).round().astype(int).tolist()
    archs = [pool.arch(i) for i in subset]
    # Warm-up: first calls pay one-off costs (lazy imports, torch.jit set-up).
    count_vectorised(pool)
    count_walk(rows[:10], pool.se, pool.stem_w)
    count_fvcore(archs[:1])
    seconds = {"vectorised": [], "walk": [], "fvcore": []}
    for _ in range(repeats):
        dt, vec = timed(count_vectorised, pool)
        seconds["vectorised"].append(dt)
        dt, walked = timed(count_walk, rows, pool.se, pool.stem_w)
        seconds["walk"].append(dt)
        dt, fv = timed(count_fvcore, archs)
        seconds["fvcore"].append(dt)
    return CountBench(pool, subset, seconds, vec, walked, fv)


# ---------------------------------------------------------------------------------------------
# Exactness checks.
# ---------------------------------------------------------------------------------------------

def walk_mismatches(b: CountBench) -> int:
    """Candidates where the walk, the vectorised counter or draw_block's own cx disagree."""
    bad = np.zeros(len(b.pool), dtype=bool)
    for k in METRICS:
        walked = np.array([cx[k] for cx in b.walked], dtype=object)
        vec = getattr(b.vec, k)
        bad |= walked != vec.astype(object)
        bad |= vec != b.pool.cx[k]
    return int(bad.sum())


def fvcore_mismatches(b: CountBench) -> int:
    """fvcore skips bias adds: its conv + linear must be our flops minus them (dsd/verify.py)."""
    import torch

    from dsd.model.net import count_params
    from dsd.model.verify import bias_adds

    x = torch.zeros(1, SHAPE.in_channels, SHAPE.resolution, SHAPE.resolution)
    bad = 0
    for i, (model, ops) in zip(b.subset, b.fv):
        conv_linear = int(ops.get("conv", 0) + ops.get("linear", 0))
        ok_flops = conv_linear == int(b.vec.flops[i]) - bias_adds(model, x)
        ok_params = count_params(model) == int(b.vec.params[i])
        bad += not (ok_flops and ok_params)
    return bad


# ---------------------------------------------------------------------------------------------
# Part 2: the whole `dsd sample` command.
# ---------------------------------------------------------------------------------------------

def dsd_command() -> list[str]:
    script = Path(sys.executable).parent / "dsd"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dsd"]


def run_sample(space: str, n: int, flops: str, out: Path) -> dict:
    cmd = dsd_command() + ["sample", "--space", space, "--n", str(n), "--flops", flops, "--out", str(out)]
    dt, p = timed(subprocess.run, cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    # The summary table is for people; pull the few numbers out leniently (\D* skips box rules).
    grab = lambda label: re.search(rf"{label}\D*([\d,.]+)", p.stdout)
    m_drawn, m_sec = grab("candidates drawn"), grab(r"│ seconds")
    # "drawn" counts whole blocks; the stream position stops at the last accepted model.
    stream = tomllib.loads((out / "run.toml").read_text())["stream"]
    return {"wall": dt, "drawn": int(m_drawn[1].replace(",", "")) if m_drawn else None,
            "inner": float(m_sec[1]) if m_sec else None,
            "used": stream["block"] * BLOCK + stream["offset"]}


def bench_sample(names: list[str], n: int, flops: str, runs: int) -> dict[str, list[dict]]:
    results = {s: [] for s in names}
    with tempfile.TemporaryDirectory(prefix="dsd-bench-") as tmp:
        for i in range(runs):
            for s in names:  # interleaved, so both spaces see the same load
                results[s].append(run_sample(s, n, flops, Path(tmp) / f"{s}-{i}"))
    return results


# ---------------------------------------------------------------------------------------------
# Reporting.
# ---------------------------------------------------------------------------------------------

def machine_line() -> str:
    import torch

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {os.cpu_count()} cores, load average (1/5/15 min) {load}; python "
            f"{platform.python_version()}, numpy {np.__version__}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value < target
    return "[green]met[/]" if ok else "[red]missed[/]"


def counting_table(benches: list[CountBench]) -> Table:
    t = Table(title="complexity counting on the same candidates (224 px, 1000 classes, stem stride 2)")
    for col in ("space", "candidates", "vectorised cand/s", "walk cand/s", "fvcore cand/s",
                f"vec / walk (≥{TARGET_WALK:.0f}x)", f"vec / fvcore (≥{TARGET_FVCORE:.0f}x)"):
        t.add_column(col, justify="left" if col == "space" else "right")
    for b in benches:
        r = {k: b.rate(k) for k in b.seconds}
        vw, vf = r["vectorised"] / r["walk"], r["vectorised"] / r["fvcore"]
        t.add_row(b.pool.name + (" (SE)" if b.pool.se else ""), f"{len(b.pool):,}",
                  f"{r['vectorised']:,.0f}", f"{r['walk']:,.0f}",
                  f"{r['fvcore']:,.1f} ({len(b.subset)} models)",
                  f"{vw:,.0f}x {verdict(vw, TARGET_WALK)}", f"{vf:,.0f}x {verdict(vf, TARGET_FVCORE)}")
    return t


def check_table(benches: list[CountBench], checks: dict[str, tuple[int, int]]) -> Table:
    t = Table(title="exactness checks")
    t.add_column("space")
    t.add_column("walk = vectorised = draw_block (flops, params, acts)", justify="right")
    t.add_column("fvcore conv+linear = flops − bias adds, torch params = params", justify="right")
    for b in benches:
        bad_walk, bad_fv = checks[b.pool.name]
        t.add_row(b.pool.name, f"{len(b.pool) - bad_walk:,} / {len(b.pool):,} equal",
                  f"{len(b.subset) - bad_fv} / {len(b.subset)} equal")
    return t


def sample_table(results: dict[str, list[dict]], n: int, flops: str, target_space: str) -> Table:
    t = Table(title=f"wall time of `dsd sample --space S --n {n} --flops {flops}` (whole process)")
    for col in ("space", "runs", "best s", "median s", "median s inside (its 'seconds')",
                "candidates drawn", "acceptance (n / stream position)", f"median < {TARGET_SAMPLE_S:g} s"):
        t.add_column(col, justify="left" if col == "space" else "right")
    for s, rs in results.items():
        walls = [r["wall"] for r in rs]
        inner = [r["inner"] for r in rs if r["inner"] is not None]
        drawn, used = rs[0]["drawn"], rs[0]["used"]  # same seed, same stream: same in every run
        med = statistics.median(walls)
        t.add_row(s, str(len(rs)), f"{min(walls):.2f}", f"{med:.2f}",
                  f"{statistics.median(inner):.2f}" if inner else "n/a",
                  f"{drawn:,}" if drawn else "n/a", f"1 in {used / n:,.0f}",
                  verdict(med, TARGET_SAMPLE_S, higher_is_better=False) if s == target_space else "-")
    return t


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidates", type=int, default=20000, help="candidates per space for part 1")
    p.add_argument("--fvcore-models", type=int, default=10, help="subset that fvcore counts")
    p.add_argument("--repeats", type=int, default=3, help="timings per counter (median reported)")
    p.add_argument("--count-spaces", default="anynetx_a,regnety", help="spaces for part 1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=500, help="models per `dsd sample` run")
    p.add_argument("--flops", default="360M:400M", help="flops window of the `dsd sample` runs")
    p.add_argument("--sample-spaces", default="anynetx_a,anynetx_e", help="spaces for part 2")
    p.add_argument("--sample-runs", type=int, default=3, help="runs per space (best and median)")
    p.add_argument("--target-space", default="anynetx_e", help="the space the 5 s target is for")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # fvcore's use of torch.jit
    if not console.is_terminal:
        console.width = 160  # keep the tables unwrapped when the output goes to a file
    console.print(machine_line())

    benches, checks = [], {}
    for name in args.count_spaces.split(","):
        b = bench_counting(draw_pool(name, args.candidates, args.seed), args.fvcore_models, args.repeats)
        benches.append(b)
        checks[name] = (walk_mismatches(b), fvcore_mismatches(b))
    console.print(counting_table(benches))
    console.print(f"rates: candidates / median of {args.repeats} timings; the three counters run "
                  "interleaved in each repeat. fvcore's time includes dsd.model.net.build (with weight "
                  "init) and the trace; the walk's excludes the arrays' .tolist().")
    console.print(check_table(benches, checks))

    sample_spaces = args.sample_spaces.split(",")
    results = bench_sample(sample_spaces, args.n, args.flops, args.sample_runs)
    console.print(sample_table(results, args.n, args.flops, args.target_space))
    console.print(f"command: {' '.join(dsd_command())} sample --space S --n {args.n} --flops "
                  f"{args.flops} --out TMPDIR/S-i (fresh directory per run)")
    console.print(machine_line())

    failed = {k: v for k, v in checks.items() if any(v)}
    if failed:
        raise AssertionError(f"complexity counts disagree (walk, fvcore mismatches): {failed}")


if __name__ == "__main__":
    main()
