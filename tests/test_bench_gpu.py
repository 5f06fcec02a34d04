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
    # One section: the other runs the same code on other data (a bench run does both).
    r = subprocess.run([sys.executable, "bench/gpu.py", "--cpu-dry-run", "--sections", "small",
                        "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("warm-up (not counted)") == 1  # before the section's baseline
    rows = [json.loads(line) for line in (tmp_path / "gpu_bench.jsonl").read_text().splitlines()]
    today = rows[1]["variant"]
    assert today.startswith("dsd today (auto: ") and today.endswith(" workers, eager)")
    want = [BASE, today, "dsd eager, 1 process", "dsd eager, 1 process, precise-BN (the study's recipe)",
            "dsd eager, 2 processes", "dsd eager, 1 process, 2 streams"]
    assert [r["variant"] for r in rows] == want  # every variant
    for section in (rows,):
        for row in section:  # the same models on both sides of every comparison
            assert row["models"] == 2 and row["ids"] == section[0]["ids"] == [0, 1], row
            assert len(row["errors"]) == 2 and all(0 <= e <= 100 for e in row["errors"]) and row["wall_s"] > 0
            assert row["settings"]["cudnn.benchmark"] is True and row["settings"]["threads"] >= 1
        recipes = [row["recipe"] for row in section]
        assert recipes == ["bench"] * 3 + ["study (precise-BN 2048)"] + ["bench"] * 2
    md = (tmp_path / "gpu_bench.md").read_text()
    assert md.count("| baseline (pycls-style) | bench | 2 |") == 1
    assert md.count("on the 2 models both trained: mean difference") == 1 and "Wilcoxon p = " in md


def _bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


BASE, TODAY, GRAPH1 = "baseline (pycls-style)", "dsd today (auto: 4 workers, eager)", "dsd eager, 1 process"
PRECISE = "dsd eager, 1 process, precise-BN (the study's recipe)"


class FakeTraining:
    """Stands in for the bench's training calls: a variant 'takes' its seconds per model
    (`per_model`, else `default_s`) times the models it trains, on a fake clock, and gives
    model i the error `err(name, i)`; the warm-up takes no time."""

    def __init__(self, g, per_model: dict, default_s: float, err=lambda name, i: 10.0 + i):
        self.now = 0.0

        def outcome(sec, name, step, recipe="bench"):
            t = per_model.get(name, default_s) * sec.models
            self.now += t
            ids = list(range(sec.models))
            return g.Outcome(sec.name, name, sec.models, t, 1.0, None, [err(name, i) for i in ids], [step],
                             ids, recipe)

        g.baseline = lambda sec, dev, workers, limit=None: outcome(sec, BASE, "eager fp32")
        g.dsd_variant = lambda sec, device, v, work, limit=None: outcome(
            sec, v.name, v.step, "study" if v.precise_bn else "bench")
        g.warm_up = lambda sec, device, work: 0.0
        g.resolve_workers = lambda workers, device: 4

    def clock(self) -> float:
        return self.now


def _args():
    return type("A", (), {"loader_workers": 0, "mps": False})()


def test_time_budget_skips_what_does_not_fit_and_shares_it_between_sections():
    """A fake clock: each variant 'takes' its time per model times the models it trains.
    100 s for two sections gives the first 50 s; the second gets an equal share of whatever
    is left then. Estimates are dsd graph on 1 process's time per model."""
    g = _bench_module()
    per_model = {BASE: 2.5, TODAY: 2.5}
    fake = FakeTraining(g, per_model, 3.0)
    sec = g.Section("s", "x", None, "", 4, [2, 4])
    budget = g.Budget(100, 2, clock=fake.clock)
    outs, skipped = g.run_section(sec, _args(), None, "cpu", lambda o: None, budget)
    # 10 (baseline) + 10 (today) + 12 (graph, 1 process) + 12 (precise-BN) = 44; the next would end at 56 > 50
    assert [o.variant for o in outs] == [BASE, TODAY, GRAPH1, PRECISE]
    assert skipped == ["dsd eager, 2 processes", "dsd eager, 1 process, 2 streams", "dsd eager, 4 processes",
                       "dsd eager, 1 process, 4 streams"]
    md = g.markdown(outs, g.summary(outs), skipped)
    assert "Not run, the time budget spent: dsd eager, 2 processes;" in md
    # the second section: 56 s left, all of it its own; the three references run even when
    # nothing fits
    per_model[BASE] = 15.0
    outs, skipped = g.run_section(sec, _args(), None, "cpu", lambda o: None, budget)
    assert [o.variant for o in outs] == [BASE, TODAY, GRAPH1]
    assert skipped == [v.name for v in g.plan([2, 4], "eager", 4)[2:]]
    # no budget: everything runs, processes and streams alternating at each N
    outs, skipped = g.run_section(sec, _args(), None, "cpu", lambda o: None, g.Budget(0, 1))
    assert skipped == [] and [o.variant for o in outs][3:] == [
        PRECISE, "dsd eager, 2 processes", "dsd eager, 1 process, 2 streams",
        "dsd eager, 4 processes", "dsd eager, 1 process, 4 streams"]


def test_estimates_come_from_graph_on_one_process_not_the_last_variant():
    """The precise-BN variant is slow (10 s a model): the next one is still estimated from
    dsd graph on 1 process (1 s a model, 4 s), so it runs in 58 s; at 55 s it would not."""
    g = _bench_module()

    def section(budget_s):
        fake = FakeTraining(g, {BASE: 1.0, TODAY: 1.0, PRECISE: 10.0}, 1.0)
        sec = g.Section("s", "x", None, "", 4, [2])
        budget = g.Budget(budget_s, 1, clock=fake.clock)
        return g.run_section(sec, _args(), None, "cpu", lambda o: None, budget)

    outs, skipped = section(58)  # 4 + 4 + 4 + 40 = 52; 2 processes: 56; 2 streams would end at 60
    assert [o.variant for o in outs][-1] == "dsd eager, 2 processes"
    assert skipped == ["dsd eager, 1 process, 2 streams"]
    outs, skipped = section(55)
    assert len(outs) == 4 and len(skipped) == 2


def test_errors_are_compared_model_by_model_and_only_under_the_same_recipe():
    """The best variant is the fastest with the bench's recipe (not the precise-BN one); its
    errors are paired with the baseline's on the same models."""
    g = _bench_module()
    shift = {BASE: 0.0, TODAY: 0.3, GRAPH1: 0.5}

    def err(name, i):  # the baseline's errors, shifted and jittered model by model
        return 10.0 + 3 * i + shift.get(name, 0.0) + (0.2 * (-1) ** i if name != BASE else 0.0)

    fake = FakeTraining(g, {BASE: 4.0, TODAY: 2.0, GRAPH1: 1.0, PRECISE: 0.1}, 50.0, err)
    sec = g.Section("s", "x", None, "", 6, [])
    outs, _ = g.run_section(sec, _args(), None, "cpu", lambda o: None, g.Budget(0, 1, clock=fake.clock))
    s = g.summary(outs)
    assert s["best"] == GRAPH1 and s["vs_baseline"] == 4.0 and s["vs_today"] == 2.0
    p = s["paired"]
    assert p["n"] == 6 and p["mean_diff"] == pytest.approx(0.5)
    from scipy import stats

    base, best = outs[0].errors, outs[2].errors
    assert p["t_p"] == pytest.approx(stats.ttest_rel(best, base).pvalue)
    assert p["wilcoxon_p"] == pytest.approx(stats.wilcoxon([b - a for a, b in zip(base, best)]).pvalue)
    assert p["ci_lo"] < 0.5 < p["ci_hi"]
    md = g.markdown(outs, s, [])
    assert "on the 6 models both trained: mean difference +0.50 points" in md


def test_paired_test_on_identical_errors_and_on_too_few_models():
    g = _bench_module()
    a = g.Outcome("s", BASE, 3, 1.0, 1.0, None, [1.0, 2.0, 3.0], [], [0, 1, 2])
    same = g.Outcome("s", GRAPH1, 3, 1.0, 1.0, None, [3.0, 2.0, 1.0], [], [2, 1, 0])  # the same, reordered
    p = g.paired(a, same)
    assert (p["n"], p["mean_diff"], p["t_p"], p["wilcoxon_p"]) == (3, 0.0, 1.0, 1.0)
    one = g.Outcome("s", GRAPH1, 1, 1.0, 1.0, None, [5.0], [], [7])  # no model in common
    assert g.paired(a, one)["n"] == 0
