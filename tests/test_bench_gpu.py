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


BASE, TODAY = "baseline (pycls-style)", "dsd today (1 worker, eager)"


class FakeTraining:
    """Stands in for the bench's two training calls: a variant 'takes' its seconds per model
    (`per_model`, else `default_s`) times the models it trains, on a fake clock, and gives
    model i the error `err(name, i)`; `limits` records how many models each was asked for."""

    def __init__(self, g, per_model: dict, default_s: float, err=lambda name, i: 10.0 + i):
        self.now, self.limits = 0.0, []

        def outcome(sec, name, limit, step):
            self.limits.append((name, limit))
            n = limit or sec.models
            t = per_model.get(name, default_s) * n
            self.now += t
            ids = list(range(n))
            return g.Outcome(sec.name, name, n, t, 1.0, None, [err(name, i) for i in ids], [step], ids)

        g.baseline = lambda sec, dev, workers, limit=None: outcome(sec, BASE, limit, "eager fp32")
        g.dsd_variant = lambda sec, device, name, workers, step, streams, work, limit=None: outcome(
            sec, name, limit, step)

    def clock(self) -> float:
        return self.now


def _args(reference_models: int):
    return type("A", (), {"loader_workers": 0, "mps": False, "reference_models": reference_models})()


def test_time_budget_skips_what_does_not_fit_and_shares_it_between_sections():
    """A fake clock: each variant 'takes' its time per model times the models it trains.
    100 s for two sections gives the first 50 s; the second gets an equal share of whatever
    is left then. The next variant's estimate is the last one's time per model."""
    g = _bench_module()
    per_model = {BASE: 2.5, TODAY: 2.5}
    fake = FakeTraining(g, per_model, 3.0)
    args = _args(0)
    sec = g.Section("s", "x", None, "", 4, [1, 2, 4])
    budget = g.Budget(100, 2, clock=fake.clock)
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
    per_model[BASE] = 15.0
    outs, skipped = g.run_section(sec, args, None, "cpu", lambda o: None, budget)
    assert [o.variant for o in outs] == ["baseline (pycls-style)", "dsd today (1 worker, eager)"]
    assert skipped == [v[0] for v in g.plan([1, 2, 4], "eager")[1:]]
    # no budget: everything runs, processes and streams alternating at each N
    outs, skipped = g.run_section(sec, args, None, "cpu", lambda o: None, g.Budget(0, 1))
    assert skipped == [] and [o.variant for o in outs][2:] == [
        "dsd eager, 1 process", "dsd eager, 2 processes", "dsd eager, 1 process, 2 streams",
        "dsd eager, 4 processes", "dsd eager, 1 process, 4 streams"]


def test_reference_models_train_fewer_and_the_estimate_scales_per_model():
    """--reference-models 2: the baseline and dsd today train models 0 and 1 only, at 10 s a
    model (40 s in all); the next variant, on all 4 models, is estimated at 10 s x 4 = 40 s:
    it runs within 85 s, and not within 75 s (the last wall time, 20 s, would have let it
    start). The KS test compares the best variant's errors on models 0 and 1 with the
    baseline's."""
    g = _bench_module()

    def section(budget_s):
        fake = FakeTraining(g, {BASE: 10.0, TODAY: 10.0}, 1.0,
                            err=lambda name, i: 5.0 + i if name == BASE or i < 2 else 50.0)
        sec = g.Section("s", "x", None, "", 4, [1, 2])
        budget = g.Budget(budget_s, 1, clock=fake.clock)
        return (*g.run_section(sec, _args(2), None, "cpu", lambda o: None, budget), fake.limits)

    outs, skipped, limits = section(85)
    assert limits == [(BASE, 2), ("dsd today (1 worker, eager)", 2), ("dsd eager, 1 process", None),
                      ("dsd eager, 2 processes", None), ("dsd eager, 1 process, 2 streams", None)]
    assert [o.models for o in outs] == [2, 2, 4, 4, 4] and skipped == []
    s = g.summary(outs)
    assert s["ks_d"] == 0.0  # models 0 and 1: the same errors, not the 50s of models 2 and 3
    assert "trained only the first 2 of 4 models" in g.markdown(outs, s, skipped)
    outs, skipped, limits = section(75)
    assert len(outs) == 2 and len(skipped) == 3
