"""Refinement tools: the quantized linear fit, split expressions, trends."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_edf import _fake_run

from dsd.analysis.expr import evaluate_split
from dsd.analysis.fit import block_widths, fit_widths, generate
from dsd.errors import DsdError
from dsd.model.arch import Shape, regnet_arch, regnet_block_widths
from dsd.model.zoo import PUBLISHED
from dsd.space import spec as spaces
from dsd.space.sampler import sample


def _generator_widths(d, w0, wa, wm):
    ws, _ = regnet_block_widths(np.array([d]), np.array([float(w0)]), np.array([wa]),
                                np.array([wm]), 8, d)
    return ws[0]


@pytest.mark.parametrize("name", PUBLISHED)
def test_fit_regenerates_published_regnet_widths_exactly(name):
    (d, w0, wa, wm, g), _ = PUBLISHED[name]
    widths = _generator_widths(d, w0, wa, wm)
    f = fit_widths(widths)
    assert f.e_fit == 0.0 and f.depth == d
    regenerated = generate(np.array([f.w0]), np.array([f.wa]), np.array([f.wm]), d)[0]
    assert np.array_equal(regenerated, widths)


@pytest.mark.parametrize("measure,bound,factor", [("abs", 0.08, 3), ("squared", 0.02, 10)])
def test_fit_close_on_adjusted_widths_and_far_on_anynet(measure, bound, factor):
    """Measured: published adjusted widths at most 0.071 (abs) / 0.011 (squared), both on
    RegNetY-4.0GF; 20 AnyNetX_A models' median 0.34 / 0.60 (the test fits 10)."""
    adjusted = []
    for (d, w0, wa, wm, g), _ in PUBLISHED.values():
        a = regnet_arch(d, w0, wa, wm, g)
        adjusted.append(fit_widths(block_widths(a.ds, a.ws), measure).e_fit)
    assert max(adjusted) < bound
    rows = sample(spaces.load("anynetx_a"), 10, Shape(), {"flops": (360e6, 400e6)}, seed=0).rows
    random = [fit_widths(block_widths(r["ds"], r["ws"]), measure).e_fit for r in rows]
    assert np.median(random) > factor * max(adjusted)


ROWS = [{"ds": [1, 2, 7, 12], "ws": [32, 64, 160, 384], "gs": [16] * 4, "bs": [1.0] * 4,
         "se": False, "wm": 2.54, "flops": 4e8, "error": 25.0, "block": "x"},
        {"ds": [3, 2, 7, 12], "ws": [64, 32, 160, 384], "gs": [8] * 4, "bs": [1.0, 2, 1, 1],
         "se": True, "wm": 2.2, "flops": 3e8, "error": 30.0, "block": "res_basic"}]


@pytest.mark.parametrize("text,expected", [
    ("wm >= 2.5", [True, False]),
    ("bs.all_equal()", [True, False]),
    ("ws.nondecreasing()", [True, False]),
    ("sum(ds) > 22", [False, True]),
    ("ws[-1] / ws[0] > 8 and not se", [True, False]),
    ("2 <= d1 < 3 or w2 == 32", [False, True]),
    ("max(gs) * 2 == 32", [True, False]),
    ("len(ds) == 4 and mean(ws) > 100", [True, True]),
    ("block == 'res_basic'", [False, True]),
    ("block != \"x\" or wm > 2.5", [True, True]),
])
def test_split_expressions(text, expected):
    assert evaluate_split(text, ROWS).tolist() == expected


@pytest.mark.parametrize("text,why", [
    ("wm >= ", "invalid syntax"), ("zz > 1", "unknown name 'zz'"),
    ("__import__('os').system('true')", "unknown function"), ("ws.__class__", "not allowed"),
    ("(lambda: 1)()", "unknown function"), ("b'a' == block", "only numbers"),
    ("block * 10**9 == 'x'", "only be compared"), ("block == '" + "x" * 65 + "'", "at most 64"),
    ("block > 1", "cannot evaluate"),
    ("ws[0.5] > 1", "cannot evaluate"), ("[x for x in ws]", "not allowed"),
])
def test_split_rejects_bad_expressions(text, why):
    with pytest.raises(DsdError) as e:
        evaluate_split(text, ROWS)
    assert why in str(e.value) and "\n" not in str(e.value)


def test_split_cli(tmp_path, cli):
    import pandas as pd

    run = _fake_run(tmp_path, "a", 30, n=30, space="anynetx_c")
    depth = pd.read_parquet(run / "samples.parquet").ds.map(sum)
    rule = f"sum(ds) > {int(depth.median())}"
    r = cli("edf", "compare", str(run), "--split", rule, "--bootstrap", "200", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [x["name"] for x in doc["runs"]] == [rule, f"not ({rule})"]
    assert doc["runs"][0]["n"] == int((depth > int(depth.median())).sum())
    assert doc["runs"][0]["n"] + doc["runs"][1]["n"] == 30 and len(doc["pairs"]) == 1
    r = cli("edf", "compare", str(run), "--split", "bs.all_equal()")  # anynetx_c shares b
    assert r.returncode == 2 and "holds for every model" in r.stderr
    r = cli("edf", "compare", str(run), "--split", "open('x')")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_fit_and_trend_cli(tmp_path, cli):
    run = _fake_run(tmp_path, "a", 30, n=30, space="anynetx_c")
    space = tmp_path / "next.toml"
    r = cli("fit", str(run), "--top", "5", "--json", "--to-space", str(space), "--plot",
            str(tmp_path / "fit.png"))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["models"]) == 5 and all(m["e_fit"] >= 0 for m in doc["models"])
    s = spaces.load(str(space))
    assert s.generator == "regnet"
    ds = [m["d"] for m in doc["models"]]
    assert s.params["depth"].dist.low == min(ds) and s.params["depth"].dist.high == max(ds)
    for m in doc["models"]:  # the space covers every fit it was written from
        for key in ("w0", "wa", "wm"):
            d = s.params[key].dist
            assert d.low <= m[key] <= d.high, (key, m[key], d.low, d.high)
    assert (tmp_path / "fit.png").exists() and (tmp_path / "fit.svg").exists()
    r = cli("sample", "--space", str(space), "--n", "3", "--dataset", "fashion-mnist",
            "--out", str(tmp_path / "next"))
    assert r.returncode == 0, r.stderr
    r = cli("trend", str(run), "--param", "w4", "--json")
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)["trends"][0]
    assert t["good_range"][0] <= t["good_range"][1] <= t["good_range"][2]
    assert sum(b["n"] for b in t["bins"]) == 30
    r = cli("trend", str(run), "--param", "nope")
    assert r.returncode == 2 and "unknown parameter" in r.stderr


def test_refined_space_covers_a_fit_with_wa_zero(tmp_path):
    """A fitted wa of 0 (constant widths) lies outside a log-uniform range from 0.1."""
    from dsd.analysis.fit import Fit
    from dsd.analysis.refine import space_from_fits, write_space
    from dsd.analysis.runs import run_errors

    run = _fake_run(tmp_path, "a", 30, n=6, space="anynetx_c")
    r = run_errors(run)
    rows = r.table.to_dict("records")[:2]
    fits = [(rows[0], Fit(8, 24, 0.0, 2.0, 0.1, np.zeros(8), np.zeros(8))),
            (rows[1], Fit(10, 32, 12.5, 2.4, 0.1, np.zeros(10), np.zeros(10)))]
    s = spaces.load(str(write_space(space_from_fits(fits, r, "refined"), tmp_path / "r.toml")))
    wa = s.params["wa"].dist
    assert wa.low <= 0.0 and wa.high >= 12.5


def test_refined_space_keeps_the_runs_kind_of_network(tmp_path):
    """Fits of a run of res_basic blocks with the CIFAR stem give a RegNet space of the same
    blocks, stem and strides (it used to write x blocks whatever the run held)."""
    from dsd.analysis.fit import Fit
    from dsd.analysis.refine import space_from_fits, write_space
    from dsd.analysis.runs import run_errors

    own = tmp_path / "rb.toml"
    own.write_text('name = "rb"\nblock = "res_basic"\nstem = "cifar"\nstem_width = 16\nstages = 3\n'
                   'strides = [1, 2, 2]\n[params.d]\ndist = "choice"\nvalues = [1, 2]\n'
                   '[params.w]\ndist = "choice"\nvalues = [16, 32, 64]\n')
    run = _fake_run(tmp_path, "a", 30, n=6, space=str(own))
    r = run_errors(run)
    rows = r.table.to_dict("records")[:2]
    fits = [(row, Fit(6, 16, 8.0, 2.0, 0.1, np.zeros(6), np.zeros(6))) for row in rows]
    s = spaces.load(str(write_space(space_from_fits(fits, r, "refined"), tmp_path / "r.toml")))
    assert (s.block, s.stem, s.stem_width, s.strides, s.stages) == ("res_basic", "cifar", 16, (1, 2, 2), 3)
