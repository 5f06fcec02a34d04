"""bench/gpu.py's every code path, tiny, on the CPU: GPU time is scarce, so the script must
be known to run before it is spent on it. Its numbers here mean nothing; the test checks
the shape of what it reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.mark.skipif(not FASHION.exists(), reason="needs the Debian Fashion-MNIST (make fashion-mnist)")
def test_gpu_bench_dry_run(tmp_path):
    r = subprocess.run([sys.executable, "bench/gpu.py", "--cpu-dry-run", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "gpu_bench.jsonl").read_text().splitlines()]
    want = ["baseline (pycls-style)", "dsd today (1 worker, eager)", "dsd eager, 2 processes",
            "dsd eager, 1 process, 2 streams"]
    assert [r["variant"] for r in rows] == want * 2  # both sections, every variant
    for row in rows:
        assert row["models"] == 2 and len(row["errors"]) == 2 and row["wall_s"] > 0
        assert all(0 <= e <= 100 for e in row["errors"])
    md = (tmp_path / "gpu_bench.md").read_text()
    assert md.count("| baseline (pycls-style) | 2 |") == 2 and "KS D =" in md


def _bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_time_budget_skips_what_does_not_fit_and_shares_it_between_sections():
    """A fake clock: every variant 'takes' its wall time. 100 s for two sections gives the
    first 50 s; the second gets an equal share of whatever is left then."""
    g = _bench_module()
    now = [0.0]
    took = {"baseline": 10.0, "dsd today (1 worker, eager)": 10.0}

    def fake_baseline(sec, dev, workers):
        now[0] += took["baseline"]
        return g.Outcome(sec.name, "baseline (pycls-style)", 4, took["baseline"], 1.0, None, [10.0] * 4)

    def fake_variant(sec, device, name, workers, step, streams, work):
        t = took.get(name, 12.0)
        now[0] += t
        return g.Outcome(sec.name, name, 4, t, 1.0, None, [10.0] * 4, [step])

    g.baseline, g.dsd_variant = fake_baseline, fake_variant
    args = type("A", (), {"loader_workers": 0, "mps": False})()
    sec = g.Section("s", "x", None, "", 4, [1, 2, 4])
    budget = g.Budget(100, 2, clock=lambda: now[0])
    outs, skipped = g.run_section(sec, args, None, "cpu", lambda o: None, budget)
    # 10 (baseline) + 10 (today) + 12 (1 process) + 12 (2 processes) = 44; the next would end at 56 > 50
    assert [o.variant for o in outs] == ["baseline (pycls-style)", "dsd today (1 worker, eager)",
                                         "dsd eager, 1 process", "dsd eager, 2 processes"]
    assert skipped == ["dsd eager, 1 process, 2 streams", "dsd eager, 4 processes",
                       "dsd eager, 1 process, 4 streams"]
    assert "Not run, the time budget spent: dsd eager, 1 process, 2 streams;" in g.markdown(
        outs, g.summary(outs), skipped)
    # the second section: 56 s left, all of it its own; the baseline and dsd today run even
    # when nothing fits
    took.update(baseline=60.0)
    outs, skipped = g.run_section(sec, args, None, "cpu", lambda o: None, budget)
    assert [o.variant for o in outs] == ["baseline (pycls-style)", "dsd today (1 worker, eager)"]
    assert skipped == [v[0] for v in g.plan([1, 2, 4], "eager")[1:]]
    # no budget: everything runs, processes and streams alternating at each N
    outs, skipped = g.run_section(sec, args, None, "cpu", lambda o: None, g.Budget(0, 1))
    assert skipped == [] and [o.variant for o in outs][2:] == [
        "dsd eager, 1 process", "dsd eager, 2 processes", "dsd eager, 1 process, 2 streams",
        "dsd eager, 4 processes", "dsd eager, 1 process, 4 streams"]
