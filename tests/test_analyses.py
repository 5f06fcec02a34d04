"""The papers' analyses against independent computations: min-of-k against brute-force
simulation, the power `dsd plan` promises against the power observed, the simultaneous
band's coverage, cross-run trends, and hostile split expressions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from test_edf import _fake_run

from dsd.analysis import edf as E
from dsd.analysis.minofk import CALIBRATION, _acceleration, _bca, expected_min, ks_for, min_of_k
from dsd.analysis.plan import plan
from dsd.analysis.power import shift_for_d


def test_min_of_k_equals_brute_force_simulation():
    rng = np.random.default_rng(0)
    errors = np.round(rng.normal(30, 4, 40), 1)  # ties included, as recorded errors have
    weights = rng.uniform(0.5, 2.0, 40)           # a normalised EDF's unequal weights
    ks = ks_for(40)
    exact = expected_min(errors, weights, ks)
    draws = 200_000
    p = weights / weights.sum()
    for k, want in zip(ks, exact):
        mins = errors[rng.choice(40, size=(draws, k), p=p)].min(axis=1)
        se = mins.std() / np.sqrt(draws)
        assert abs(mins.mean() - want) < 4 * se + 1e-9, (k, mins.mean(), want, se)
    assert exact[0] == pytest.approx(np.sum(p * errors))  # k = 1 is the weighted mean
    assert np.all(np.diff(exact) <= 1e-12) and exact[-1] >= errors.min()


@pytest.mark.parametrize("dist", ["normal", "lognormal"])
def test_min_of_k_band_covers_at_every_k_it_is_given_for(dist):
    """Nominal 95% BCa band of E[best of k], 300 simulated runs each at n = 64 and 128, true
    E[best of k] from a million draws: coverage at least 93% at every k the band is given
    for (k <= n/32); none beyond, where no bootstrap can cover (module doc)."""
    rng = np.random.default_rng({"normal": 3, "lognormal": 4}[dist])
    draw = ((lambda n: rng.normal(30, 4, n)) if dist == "normal"
            else (lambda n: 20 + rng.lognormal(1.5, 0.5, n)))
    big = np.sort(draw(1_000_000))
    u = (np.arange(len(big)) + 0.5) / len(big)
    for n in (64, 128):
        hits = None
        for _ in range(300):
            m = min_of_k(E.plain(draw(n)), 300, 0.95, rng)
            kb = m["k"][: m["k"].index(m["band_k_max"]) + 1]
            truth = np.array([np.mean(big * k * (1 - u) ** (k - 1)) for k in kb])
            hit = (np.array(m["lo"][: len(kb)]) <= truth) & (truth <= np.array(m["hi"][: len(kb)]))
            hits = hit.astype(int) if hits is None else hits + hit
        assert kb == [k for k in (1, 2, 4) if k <= n // 32] and all(v is None for v in m["hi"][len(kb):])
        assert (hits / 300 >= 0.93).all(), (n, hits / 300)


def test_best_of_k_quantiles_are_exact_under_the_edf():
    """NDS's view: the 10/50/90% quantiles of the best of k, against simulation."""
    rng = np.random.default_rng(1)
    s = E.plain(rng.normal(30, 4, 64))
    m = min_of_k(s, 100, 0.95, rng)
    for k, q10, q90 in zip(m["k"], m["q10"], m["q90"]):
        mins = s.errors[rng.integers(0, 64, (40_000, k))].min(axis=1)
        assert np.mean(mins <= q10) >= 0.1 - 0.01 and np.mean(mins < q10) <= 0.1 + 0.01
        assert np.mean(mins <= q90) >= 0.9 - 0.01


@pytest.mark.parametrize("normalised", [False, True])
def test_simultaneous_band_covers_the_whole_curve(normalised):
    """200 seeded repetitions: the true CDF lies inside the band everywhere in >= 93%."""
    rng = np.random.default_rng(2024)
    mus = np.linspace(-1, 1, 4)
    truth = (lambda x: np.mean([stats.norm.cdf(x - m) for m in mus], axis=0)) if normalised \
        else stats.norm.cdf
    covered = 0
    for _ in range(200):
        if normalised:  # four complexity bins of unequal counts, each a different distribution
            sizes = [5, 9, 14, 22]
            x = np.concatenate([rng.normal(m, 1, k) for m, k in zip(mus, sizes)])
            bins = np.repeat(np.arange(4), sizes)
            s = E.Sample(x, np.concatenate([np.full(k, 1 / (4 * k)) for k in sizes]), bins, 4)
        else:
            s = E.plain(rng.normal(size=40))
        eps = E.simultaneous_eps(s, 0.95)
        order = np.argsort(s.errors)
        f = np.cumsum(s.weights[order]) / s.weights.sum()
        t = truth(s.errors[order])
        sup = max(np.max(f - t), np.max(t - (f - s.weights[order] / s.weights.sum())))
        covered += sup <= eps
    assert covered / 200 >= 0.93, covered


def test_plan_promises_the_power_it_delivers():
    """At the n dsd plan returns for a stated D, fresh simulated studies (scipy's exact KS
    test, independent code) reject at about the promised rate; below it, less."""
    rng = np.random.default_rng(7)
    a, b = E.plain(rng.normal(30, 3, 200)), E.plain(rng.normal(31.2, 3, 200))
    doc = plan(a, b, power=0.8, alpha=0.05, d=0.25, seed=1)
    n, delta = doc["n"], shift_for_d(0.25)
    assert 30 < n < 120 and doc["n_interval"] is None  # a stated D carries no pilot noise
    hits = [stats.ks_2samp(rng.normal(size=n), rng.normal(size=n) + delta).pvalue < 0.05 for _ in range(600)]
    assert abs(np.mean(hits) - 0.8) < 0.05, (n, np.mean(hits))
    below = [stats.ks_2samp(rng.normal(size=n // 2), rng.normal(size=n // 2) + delta).pvalue < 0.05
             for _ in range(600)]
    assert np.mean(below) < 0.65
    # The n-vs-D curve: chance D shrinks like 1/sqrt(n).
    nd = doc["null_d"]
    ratio = nd["mean"][0] / nd["mean"][-1]
    assert ratio == pytest.approx(np.sqrt(nd["n"][-1] / nd["n"][0]), rel=0.3)


def test_plans_from_small_pilots_are_not_optimistic_and_their_interval_covers():
    """64-model pilots of spaces a true D of 0.15 apart (a location shift): the effect dsd
    plans for is not biased toward large D (which promised too few models: the observed
    D is, in 80% or more of pilots), and its 80% interval holds the true D (so the interval
    for n holds the n truly needed, n(D) being monotone) in about 80% of 120 pilot pairs."""
    from dsd.analysis.plan import effect_interval

    rng = np.random.default_rng(11)
    delta, above, observed_above, covered = shift_for_d(0.15), 0, 0, 0
    for _ in range(120):
        a, b = E.plain(rng.normal(size=64)), E.plain(rng.normal(size=64) + delta)
        est, lo, hi = effect_interval(a, b, None, 60, rng)
        above += est > 0.15
        observed_above += E.ks_statistic(a, b)[0] > 0.15
        covered += lo <= 0.15 <= hi
    assert above / 120 <= 0.6 and observed_above / 120 >= 0.75
    assert 0.7 <= covered / 120 <= 0.92


def test_plan_and_trend_cli(tmp_path, cli):
    a = _fake_run(tmp_path, "a", 30, n=30)
    b = _fake_run(tmp_path, "b", 26, n=30, seed=1, space="regnetx")
    r = cli("plan", str(a), str(b), "--json", "--boot", "40", "--plot", str(tmp_path / "p.png"))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["n"] is not None and doc["runs"] == ["a", "b"] and (tmp_path / "p.svg").exists()
    assert doc["effect"]["kind"] == "pilots' shift" and len(doc["n_interval"]) == 2
    r = cli("plan", str(a), str(b), "--shift", "1.5", "--boot", "40")
    assert r.returncode == 0 and "a stated shift of +1.50 points" in r.stdout and "optimistic" in r.stdout
    for bad in (["--power", "1.5"], ["--alpha", "0"], ["--boot", "3"], ["--d", "2"],
                ["--d", "0.2", "--shift", "1"]):
        r = cli("plan", str(a), str(b), *bad)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert bad[0] in r.stderr and "Traceback" not in r.stderr
    r = cli("trend", str(a), str(b), "--param", "flops", "--param", "depth", "--json",
            "--plot", str(tmp_path / "t.png"))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["runs"] == ["a", "b"] and len(doc["trends"]) == 4 and (tmp_path / "t.png").exists()
    r = cli("trend", str(b), "--param", "regnet", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"] == ["depth", "w0", "wa", "wm", "g", "b", "flops", "params", "acts"]


HOSTILE = ["9**9**9**9", "max(ws) * 2 ** 3000 > 1", "1e999 > 1", "0 ** -1 > 0", "ws[10**30] > 1",
           "+".join(["1"] * 300) + " > 1", "(" * 3000 + "1" + ")" * 3000 + " > 0",
           "-" * 900 + "1 > 0", "ws.__class__", "__import__('os')", "[x for x in ws]",
           "d1 if 1 else 2", "lambda: 1", "'a' > 1", "ws[1.5] > 1", "sum(ws, 1) > 1",
           "'x' * 10**12 == 'x'"]


def test_hostile_split_expressions_get_one_line(tmp_path, cli):
    run = _fake_run(tmp_path, "a", 30, n=10)
    for expr in HOSTILE:
        r = cli("edf", "compare", str(run), "--split", expr, timeout=60)
        assert r.returncode == 2, (expr, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, (expr, r.stderr)


def test_fit_is_global_equal_or_better_than_dense_brute_force():
    """10 random AnyNetX_E models: dsd's fit beats or ties a dense grid over every multiple of
    8 for w0 (up to twice the widest block), 121 values of wa and 120 of wm in the bounds."""
    from dsd.analysis.fit import Bounds, block_widths, e_fit, fit_widths, generate
    from dsd.model.arch import Shape
    from dsd.space import spec
    from dsd.space.sampler import sample

    rows = sample(spec.load("anynetx_e"), 10, Shape(), {"flops": (360e6, 400e6)}, seed=3).rows
    b = Bounds()
    for r in rows:
        w = block_widths(r["ds"], r["ws"])
        ours = fit_widths(w)
        w0s = np.arange(8, 8 * np.ceil(2 * w.max() / 8) + 1, 8.0)
        was = np.concatenate([[0.0], np.geomspace(0.05, b.wa[1], 120)])
        wms = np.geomspace(b.wm[0], max(3.0, 2 * w.max() / w.min()), 120)
        g0, ga, gm = (x.ravel() for x in np.meshgrid(w0s, was, wms, indexing="ij"))
        brute = min(e_fit(w[None], generate(g0[i:i + 200_000], ga[i:i + 200_000], gm[i:i + 200_000],
                                            len(w))).min() for i in range(0, len(g0), 200_000))
        assert ours.e_fit <= brute + 1e-12, (r["ds"], r["ws"], ours.e_fit, brute)
        again = e_fit(w, generate(np.array([ours.w0 * 1.0]), np.array([ours.wa]), np.array([ours.wm]),
                                  len(w))[0])
        assert again == ours.e_fit and ours.wa <= b.wa[1] and ours.w0 % 8 == 0


def _member_bootstrap(s, stat, n_boot, rng):
    """The textbook bootstrap: resample the models themselves, within each bin."""
    groups = [np.arange(s.n)] if s.bins is None else [np.nonzero(s.bins == j)[0] for j in range(s.n_bins)]
    out = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=len(g)) for g in groups])
        out.append(stat(s.errors[idx], s.weights[idx]))
    return np.array(out)


def test_folded_bootstraps_match_resampling_the_models():
    """The cell-folded bootstraps (cost independent of n) give the bands that resampling
    every model gives: a normalised sample with tied errors, 4,000 resamples each way."""
    rng = np.random.default_rng(8)
    sizes = [30, 50, 20]
    errors = np.round(np.concatenate([rng.normal(m, 3, k) for m, k in zip((28, 31, 35), sizes)]))
    s = E.normalized(errors, np.repeat([1.0, 2.0, 3.0], sizes), 3, 1.0, 3.0)
    grid = np.linspace(20, 44, 25)
    lo, hi = E.bootstrap_band(s, grid, 4000, 0.9, np.random.default_rng(1))
    ref = _member_bootstrap(s, lambda e, w: (w[:, None] * (e[:, None] <= grid)).sum(0), 4000, rng)
    rlo, rhi = np.quantile(ref, [0.05, 0.95], axis=0)
    np.testing.assert_allclose(lo, rlo, atol=0.021)
    np.testing.assert_allclose(hi, rhi, atol=0.021)
    m = min_of_k(s, 4000, 0.9, np.random.default_rng(2))
    ks = np.array(m["k"][: m["k"].index(m["band_k_max"]) + 1])
    ref = _member_bootstrap(s, lambda e, w: expected_min(e, w, ks), 4000, rng)
    rlo, rhi = _bca(ref, np.array(m["expected"][: len(ks)]), _acceleration(E.cells(s, s.errors), ks),
                    1 - 0.1 * CALIBRATION)
    np.testing.assert_allclose(m["lo"][: len(ks)], rlo, atol=0.15)
    np.testing.assert_allclose(m["hi"][: len(ks)], rhi, atol=0.15)
    assert all(v is None for v in m["lo"][len(ks):])
