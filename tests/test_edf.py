"""EDF statistics against independent references: scipy, hand-worked weights, simulation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dsd.analysis import edf as E
from dsd.analysis.runs import Options, compare
from dsd.errors import DsdError
from dsd.model.arch import Shape
from dsd.space.sample_run import sample_new
from dsd.store.results import write_result


def test_plain_edf_equals_scipy_ecdf():
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(30, 5, 137), 1)  # rounded: ties, as real errors have
    grid = np.linspace(10, 50, 400)
    ours = E.edf(E.plain(x), grid)
    ref = stats.ecdf(x).cdf.evaluate(grid)
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    assert E.edf(E.plain(x), np.array([x.max()]))[0] == pytest.approx(1.0)  # F counts <=


def test_ks_equals_scipy():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a, b = rng.normal(0, 1, 80), rng.normal(0.3, 1.2, 120)
        d, at = E.ks_statistic(E.plain(a), E.plain(b))
        ref = stats.ks_2samp(a, b)
        assert d == pytest.approx(ref.statistic, abs=1e-12)
        assert at == pytest.approx(ref.statistic_location)
        assert E.ks_plain_pvalue(E.plain(a), E.plain(b))[0] == pytest.approx(ref.pvalue)


def test_bootstrap_band_agrees_with_scipy_bootstrap():
    rng = np.random.default_rng(2)
    x = rng.normal(25, 4, 150)
    e0 = 26.0
    lo, hi = E.bootstrap_band(E.plain(x), np.array([e0]), 10_000, 0.95, np.random.default_rng(3))
    ref = stats.bootstrap((x,), lambda s, axis=-1: np.mean(s <= e0, axis=axis), n_resamples=10_000,
                          method="percentile", confidence_level=0.95, random_state=4)
    # Monte Carlo error of a 2.5% quantile of a proportion over 10,000 resamples, n = 150:
    # one grid step of the proportion is 1/150; allow two.
    assert lo[0] == pytest.approx(ref.confidence_interval.low, abs=2 / 150)
    assert hi[0] == pytest.approx(ref.confidence_interval.high, abs=2 / 150)


def test_normalized_weights_hand_worked():
    """ICCV 2019 rule: K = 2 bins on [1, 10]: edges 1, 5.5, 10; bin 1 holds 3 models,
    bin 2 holds 2, so weights 1/(3*2) and 1/(2*2); each bin weighs 1/K."""
    s = E.normalized(np.array([5.0, 6, 7, 8, 9]), np.array([1.0, 2, 3, 6, 10]), 2, 1, 10)
    np.testing.assert_allclose(s.weights, [1 / 6, 1 / 6, 1 / 6, 1 / 4, 1 / 4])
    assert list(s.bins) == [0, 0, 0, 1, 1]
    assert s.weights.sum() == pytest.approx(1.0)
    assert s.n_eff == pytest.approx(1 / (3 / 36 + 2 / 16))  # Kish
    with pytest.raises(DsdError, match="holds no model"):
        E.normalized(np.array([1.0, 2]), np.array([1.0, 1.5]), 3, 1, 10)


def test_dkw_reference_figures():
    """eps = sqrt(log(2 / 0.05) / (2 n)): +-0.136 at n = 100 and +-0.061 at n = 500 (95%)."""
    assert E.dkw_eps(100, 0.95) == pytest.approx(0.136, abs=5e-4)
    assert E.dkw_eps(500, 0.95) == pytest.approx(0.061, abs=5e-4)


def test_ks_critical_value_500_vs_500():
    """The 5% critical D for 500 vs 500 is about 0.086: D just below is not rejected."""
    a = np.arange(500) / 500
    for shift, reject in ((0.080, False), (0.092, True)):
        p = E.ks_plain_pvalue(E.plain(a), E.plain(a + shift))[0]
        assert (p < 0.05) == reject


def test_band_coverage_simulated():
    """Pointwise 95% percentile band at the true median of N(0, 1), n = 100: seeded, 200
    repetitions. Tolerance: 0.95 +- 0.05 (binomial sd at 200 reps is 0.015; the percentile
    bootstrap of a proportion undercovers slightly at this n)."""
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(200):
        x = rng.normal(0, 1, 100)
        lo, hi = E.bootstrap_band(E.plain(x), np.array([0.0]), 1000, 0.95, rng)
        hits += lo[0] <= 0.5 <= hi[0]
    assert 0.90 <= hits / 200 <= 1.0, hits


def test_dkw_band_covers_whole_cdf():
    rng = np.random.default_rng(6)
    grid = np.linspace(-3, 3, 301)
    hits = 0
    for _ in range(200):
        x = rng.normal(0, 1, 100)
        lo, hi = E.dkw_band(E.plain(x), grid, 0.95)
        true = stats.norm.cdf(grid)
        hits += np.all((lo <= true) & (true <= hi))
    assert hits / 200 >= 0.93  # DKW is simultaneous and conservative


def test_same_distribution_rarely_called_different():
    """Plain KS and the binned permutation test reject about 5% of the time under H0."""
    rng = np.random.default_rng(7)
    plain_rej = perm_rej = 0
    for _ in range(200):
        ea, eb = rng.normal(30, 5, 60), rng.normal(30, 5, 60)
        ca, cb = rng.uniform(0, 1, 60), rng.uniform(0, 1, 60)
        plain_rej += E.ks_plain_pvalue(E.plain(ea), E.plain(eb))[0] < 0.05
        sa, sb = E.normalized(ea, ca, 3, 0, 1), E.normalized(eb, cb, 3, 0, 1)
        perm_rej += E.ks_permutation_pvalue(sa, sb, 199, rng)[0] < 0.05
    assert plain_rej / 200 <= 0.09 and perm_rej / 200 <= 0.10, (plain_rej, perm_rej)


def test_permutation_detects_a_real_difference():
    rng = np.random.default_rng(8)
    sa = E.normalized(rng.normal(30, 3, 80), rng.uniform(0, 1, 80), 4, 0, 1)
    sb = E.normalized(rng.normal(33, 3, 80), rng.uniform(0, 1, 80), 4, 0, 1)
    assert E.ks_permutation_pvalue(sa, sb, 500, rng)[0] < 0.01


@pytest.mark.parametrize("n", [7, 200])
def test_good_range_equals_the_resampling_definition(n):
    """pycls's definition simulated: the best of a random 25% (with replacement, tied
    errors included), 400,000 times; its quantiles equal the exact ones."""
    rng = np.random.default_rng(n)
    errs = np.round(rng.normal(30, 5, n))          # recorded errors have ties
    vals = rng.integers(1, 40, n).astype(float)
    lo, med, hi = E.good_range(vals, errs)
    k = max(1, n // 4)
    idx = rng.integers(0, n, size=(400_000, k))
    best = idx[np.arange(len(idx)), np.argmin(errs[idx], axis=1)]
    want = [np.quantile(vals[best], q, method="inverted_cdf") for q in (0.025, 0.5, 0.975)]
    assert [lo, med, hi] == want
    assert errs.min() <= E.good_range(errs, errs)[1] < np.median(errs) or n < 20


# --- run directories ------------------------------------------------------------------


def _fake_run(tmp_path, name, mu, n=40, seed=0, space="anynetx_c", diverged=(), failed=()):
    out = tmp_path / name
    sample_new(space, n, out, Shape(1, 28, 10, 1), {"flops": "2M:20M"}, seed=seed)
    rng = np.random.default_rng(seed)
    for r in pd.read_parquet(out / "samples.parquet").itertuples():
        e = float(mu + rng.normal(0, 3))
        status = "diverged" if r.model_id in diverged else "failed" if r.model_id in failed else "ok"
        write_result(out / "results", {"model_id": r.model_id, "status": status, "error_min": e,
                                       "error_last": e + 1, "curve": [e + 6, e + 2, e]})
    return out


def test_compare_document(tmp_path):
    a = _fake_run(tmp_path, "a", 30, diverged=(1,), failed=(2,))
    b = _fake_run(tmp_path, "b", 25, seed=1, space="regnetx")
    cmp = compare([a, b], Options(bootstrap=500, permutations=200))
    ra = cmp.runs[0]
    assert ra.n == 39 and ra.counts["failed"] == 1 and ra.counts["diverged"] == 1
    assert 90.0 in ra.sample.errors  # the diverged model at chance error (10 classes)
    for curve in (ra.edf, *ra.band, *ra.dkw, *ra.sim):
        assert len(curve) == len(cmp.grid)
        assert np.all(np.diff(curve) >= -1e-12)
    assert np.all(ra.band[0] <= ra.band[1])
    assert cmp.pairs[0].p_value < 0.01
    assert cmp.b_ahead()  # b's errors are lower: its EDF is above a's where D is taken
    every = np.concatenate([r.sample.errors for r in cmp.runs])  # the grid covers every error
    assert cmp.grid[0] <= every.min() and cmp.grid[-1] >= every.max()
    drop = compare([a, b], Options(bootstrap=100, failed="drop"))
    assert drop.runs[0].n == 38
    at2 = compare([a, b], Options(bootstrap=100, metric="error@2"))
    e_at2 = np.sort(at2.runs[1].sample.errors)
    e_min = np.sort(cmp.runs[1].sample.errors)
    assert np.allclose(e_at2 - 2, e_min)
    norm = compare([a, b], Options(bootstrap=100, normalize="flops", bins=3, permutations=100))
    assert norm.range[0] < norm.range[1] and "permutation" in norm.pairs[0].p_method
    assert compare([b, a], Options(bootstrap=100)).b_ahead() is False


def test_comparison_json_is_the_typed_result(tmp_path):
    """to_json() carries every typed field, as plain JSON values, under the CLI's names."""
    import json

    a = _fake_run(tmp_path, "a", 30)
    b = _fake_run(tmp_path, "b", 26, seed=1, space="regnetx")
    cmp = compare([a, b], Options(bootstrap=100, normalize="flops", bins=3, permutations=100))
    doc = json.loads(json.dumps(cmp.to_json()))
    assert doc["metric"] == cmp.metric and doc["bins"] == 3 and doc["range"] == list(cmp.range)
    assert doc["grid"] == cmp.grid.tolist() and doc["differences"] == cmp.differences
    for rd, r in zip(doc["runs"], cmp.runs):
        assert rd["name"] == r.name and rd["n"] == r.n and rd["n_eff"] == r.n_eff
        assert rd["errors"] == r.sample.errors.tolist() and rd["weights"] == r.sample.weights.tolist()
        assert rd["bins"] == r.sample.bins.tolist() and rd["n_bins"] == 3
        assert [rd["band_lo"], rd["band_hi"]] == [x.tolist() for x in r.band]
        assert [rd["sim_lo"], rd["sim_hi"]] == [x.tolist() for x in r.sim]
        assert rd["min_error_good_range"] == list(r.good_range) == rd["min_error_ci"]
        assert rd["median_error"] == r.median_error and rd["min_of_k"] == r.min_of_k
    pd_, p = doc["pairs"][0], cmp.pairs[0]
    assert (pd_["ks_d"], pd_["p_value"], pd_["argmax_error"]) == (p.ks_d, p.p_value, p.argmax_error)
    plain = compare([a, b], Options(bootstrap=100)).to_json()
    assert plain["bins"] is None and plain["range"] is None and plain["runs"][0]["bins"] is None


def test_cli_json_and_plot(tmp_path, cli):
    a, b = _fake_run(tmp_path, "a", 30), _fake_run(tmp_path, "b", 27, seed=2)
    png = tmp_path / "plots" / "edf.png"
    r = cli("edf", "compare", str(a), str(b), "--bootstrap", "300", "--plot", str(png), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["runs"][1]["name"] == "b" and len(doc["pairs"]) == 1
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (640, 440)
    assert png.with_suffix(".svg").read_text().lstrip().startswith("<?xml")
    r = cli("edf", "show", str(a), "--bootstrap", "200")
    assert r.returncode == 0 and "few models give wide bands" in " ".join(r.stdout.split())


def test_cli_bad_inputs(tmp_path, cli):
    a = _fake_run(tmp_path, "a", 30, n=10)
    few = tmp_path / "few"
    sample_new("anynetx_c", 5, few, Shape(1, 28, 10, 1), {"flops": "2M:20M"}, seed=3)
    r = cli("edf", "compare", str(a), str(few))
    assert r.returncode == 2 and "at least 3" in r.stderr
    far = _fake_run(tmp_path, "far", 30, n=10, seed=4)
    r = cli("edf", "compare", str(a), str(far), "--normalize", "flops", "--range", "1G:2G")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = cli("edf", "compare", str(a), str(far), "--normalize", "flops", "--bins", "200")
    assert r.returncode == 2 and "fewer --bins" in r.stderr
    r = cli("edf", "compare", str(a), str(far), "--metric", "error@x")
    assert r.returncode == 2 and "error@K" in r.stderr


def test_report_is_self_contained(tmp_path, cli):
    import re

    a, b = _fake_run(tmp_path, "a", 30), _fake_run(tmp_path, "b", 27, seed=2, space="regnety")
    out = tmp_path / "rep" / "report.html"
    r = cli("report", str(a), str(b), "--out", str(out), "--bootstrap", "200")
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    from dsd.analysis.report import SECTIONS

    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in page
    assert page.count("<svg") >= 5
    # No resource from the network: every src/href is a fragment inside the page.
    links = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert links and all(link.startswith("#") for link in links)
    assert "<script" not in page and "@import" not in page
    for want in ("<th>data set</th>", "<th>compute</th>", "Normalised by flops", "best first",
                 "training curves", "not the best model"):
        assert want in page, want
    assert "Few models" not in page  # 40 models each
    # The normalised section's KS table is edf compare's too, not a hand-built copy.
    assert page.count("<th>at error</th>") == 2 and "KS D" not in page
    assert "Quantized linear fits" not in page
    r = cli("report", str(a), str(b), "--out", str(out), "--bootstrap", "200", "--fit-top", "3")
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "Quantized linear fits" in page and "e_fit" in page
    r = cli("report", str(a), str(b), "--out", str(out), "--fit-top", "-1")
    assert r.returncode == 2 and "--fit-top" in r.stderr
    few = _fake_run(tmp_path, "few", 28, n=8, seed=5)
    assert cli("report", str(a), str(few), "--out", str(out), "--bootstrap", "200").returncode == 0
    assert "Few models" in out.read_text()


def test_runs_trained_differently_are_flagged(tmp_path, cli):
    from dsd.data.recipe import with_overrides
    from dsd.data.registry import default_recipe
    from dsd.store.recipe_file import fix_for_run
    from dsd.store.run import Run

    a, b, c = (_fake_run(tmp_path, n, 30, seed=s) for n, s in (("a", 0), ("b", 1), ("c", 2)))
    base = default_recipe("fashion-mnist")
    fix_for_run(Run(a), with_overrides(base, epochs=2, lr=0.1))
    fix_for_run(Run(b), with_overrides(base, epochs=1, lr=0.02))
    fix_for_run(Run(c), with_overrides(base, epochs=2, lr=0.1))
    assert compare([a, c], Options(bootstrap=100)).differences == []
    diff = compare([a, b], Options(bootstrap=100)).differences
    assert any(d.startswith("recipe.epochs differs: 2 (a), 1 (b)") for d in diff), diff
    assert any(d.startswith("recipe.lr differs") for d in diff) and len(diff) == 2
    r = cli("edf", "compare", str(a), str(b), "--bootstrap", "100")
    assert r.returncode == 0 and "different conditions" in r.stderr and "recipe.epochs" in r.stderr
    r = cli("edf", "compare", str(a), str(b), "--bootstrap", "100", "--strict")
    assert r.returncode == 2 and "--strict" in r.stderr and "Traceback" not in r.stderr
    r = cli("edf", "compare", str(a), str(c), "--bootstrap", "100", "--strict", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["differences"] == []
    out = tmp_path / "rep.html"
    assert cli("report", str(a), str(b), "--out", str(out), "--bootstrap", "100").returncode == 0
    assert "different conditions" in out.read_text()


def test_folded_permutation_pvalue_matches_shuffling_the_labels():
    """The cell-wise (hypergeometric) permutation test gives the p-value that shuffling
    every model's run label within its bin gives: tied errors, unequal bins."""
    rng = np.random.default_rng(12)
    sa = E.normalized(np.round(rng.normal(30, 3, 90)), rng.uniform(0, 1, 90), 3, 0, 1)
    sb = E.normalized(np.round(rng.normal(30.8, 3, 70)), rng.uniform(0, 1, 70), 3, 0, 1)
    p, _ = E.ks_permutation_pvalue(sa, sb, 20_000, np.random.default_rng(1))
    d_obs = E.ks_statistic(sa, sb)[0]
    errors, bins = np.concatenate([sa.errors, sb.errors]), np.concatenate([sa.bins, sb.bins])
    hits = 0
    for _ in range(3000):
        perm = np.arange(len(errors))
        for j in range(3):
            m = np.nonzero(bins == j)[0]
            perm[m] = rng.permutation(m)
        e, b = errors[perm], bins[perm]
        pa = E.Sample(e[:90], sa.weights, b[:90], 3)
        pb = E.Sample(e[90:], sb.weights, b[90:], 3)
        hits += E.ks_statistic(pa, pb)[0] >= d_obs - 1e-12
    ref = (1 + hits) / 3001
    assert 0.01 < ref < 0.9  # a p-value the check can tell apart from 0 and 1
    assert abs(p - ref) < 4 * np.sqrt(ref * (1 - ref) / 3000) + 0.005, (p, ref)


def test_a_run_read_again_sees_its_new_results(tmp_path):
    """Reads are cached per state of the run directory: a result written (or a file
    removed) between two reads is seen by the second."""
    from dsd.analysis.runs import run_errors

    out = _fake_run(tmp_path, "a", 30, n=10)
    first = run_errors(out)
    assert len(first.table) == 10
    removed = sorted((out / "results").glob("*.parquet"))[0]
    removed.unlink()
    assert len(run_errors(out).table) == 9
    write_result(out / "results", {"model_id": 0, "status": "ok", "error_min": 1.0,
                                   "error_last": 1.0, "curve": [1.0]})
    again = run_errors(out)
    assert len(again.table) == 10 and again.table.error.min() == 1.0
    again.table = again.table.iloc[:2]  # a caller changing its copy changes nothing read later
    assert len(run_errors(out).table) == 10


def test_window_samples_are_compares_samples(tmp_path):
    """The study report checks that a space fills its window without `compare`'s bands:
    the samples must be compare's, and an empty bin must raise as compare does."""
    from dsd.analysis.runs import window_samples

    a, b = _fake_run(tmp_path, "a", 30), _fake_run(tmp_path, "b", 27, seed=2)
    opt = Options(normalize="flops", bins=4, range="2M:20M", bootstrap=50, permutations=50)
    cmp = compare([a, b], opt)
    for s, r in zip(window_samples([a, b], opt), cmp.runs):
        assert np.array_equal(s.errors, r.sample.errors) and np.array_equal(s.weights, r.sample.weights)
    many = Options(normalize="flops", bins=200, range="2M:20M")
    with pytest.raises(DsdError) as direct:
        compare([a], many)
    with pytest.raises(DsdError) as cheap:
        window_samples([a], many)
    assert str(cheap.value) == str(direct.value)


def test_parameter_grid_text_stays_clear(tmp_path):
    """The report's parameter grid is placed by fixed margins, not tight_layout: every label
    must stay inside the figure, off the other panels, and off the other panels' labels."""
    import matplotlib

    matplotlib.use("Agg")
    from dsd.analysis.report import params_grid
    from dsd.analysis.runs import run_errors

    fig, rows = params_grid(run_errors(_fake_run(tmp_path, "a", 30, space="anynetx_a", n=60)))
    assert len(fig.axes) == len(rows) >= 16
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    box = fig.bbox

    def drawn(labels, lim, i):  # tick labels of ticks inside the view; others are not drawn
        lo, hi = sorted(lim)
        return [t for t in labels if lo - 1e-9 * abs(hi) <= t.get_position()[i] <= hi + 1e-9 * abs(hi)]

    def texts(ax):
        return [t for t in (*drawn(ax.get_xticklabels(), ax.get_xlim(), 0),
                            *drawn(ax.get_yticklabels(), ax.get_ylim(), 1), ax.xaxis.label, ax.yaxis.label)
                if t.get_visible() and t.get_text()]

    placed = [(i, t.get_window_extent(r)) for i, ax in enumerate(fig.axes) for t in texts(ax)]
    placed.append((-1, fig._suptitle.get_window_extent(r)))
    for i, bb in placed:
        assert box.x0 - 1 <= bb.x0 and bb.x1 <= box.x1 + 1 and box.y0 - 1 <= bb.y0 and bb.y1 <= box.y1 + 1
        for j, ax in enumerate(fig.axes):
            assert j == i or not bb.overlaps(ax.bbox), (i, j)
    for k, (i, bb) in enumerate(placed):
        for j, other in placed[k + 1:]:
            assert i == j or not bb.overlaps(other), (i, j)
