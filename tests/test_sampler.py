"""The sampler: constraints, windows, the declared distributions, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dsd.errors import DsdError
from dsd.model.arch import Shape
from dsd.space import spec as spaces
from dsd.space.sample_run import sample_extend, sample_new
from dsd.space.sampler import arch_key, draw_block, sample

IMAGENET = Shape()
SMALL = Shape(1, 28, 10, 1)
WINDOW = (360_000_000, 400_000_000)


@pytest.mark.parametrize("name", spaces.builtin_names())
def test_samples_satisfy_window_constraints_and_are_distinct(name):
    space = spaces.load(name)
    # The ICCV 2019 CIFAR spaces at their paper's params window, the others at 400MF ImageNet.
    cifar = space.stem == "cifar"
    shape, flops, params = ((Shape(3, 32, 10, 1), (None, None), (154_000, 856_000)) if cifar
                            else (IMAGENET, WINDOW, (None, 20_000_000)))
    res = sample(space, 40, shape, {"flops": flops, "params": params}, seed=1)
    df = pd.DataFrame(res.rows)
    assert len(df) == 40 and list(df.model_id) == list(range(40))
    assert df.flops.between(*WINDOW).all() or cifar
    assert df.params.between(params[0] or 0, params[1]).all()
    keys = {arch_key(r.ds, r.ws, r.gs, r.bs, r.block) for r in df.itertuples()}
    assert len(keys) == 40
    for r in df.itertuples():
        assert all(w % g == 0 for w, g, b in zip(np.array(r.ws) / np.array(r.bs), r.gs, r.bs))
        if "d" in space.constraints:
            assert list(r.ds) == sorted(r.ds)
        if space.params.get("b") and space.params["b"].shared:
            assert len(set(r.bs)) == 1
        if space.generator == "regnet":
            assert len(r.ds) == 4 and sum(r.ds) == r.depth
            assert list(r.ws) == sorted(r.ws)


def test_ordering_constraints_hold_on_drawn_values():
    """D and E are their parent conditioned on the ordering: rejection, never sorting."""
    e = spaces.load("anynetx_e")
    c = draw_block(e, IMAGENET, seed=3, block=0)
    assert len(c.index) > 50
    assert (np.diff(c.ds, axis=1) >= 0).all()
    # Unconstrained parent draws in the same block include unsorted depths.
    a = draw_block(spaces.load("anynetx_c"), IMAGENET, seed=3, block=0)
    assert (np.diff(a.ds, axis=1) < 0).any()


def test_depth_distribution_is_log_uniform():
    """anynetx_a's d: pycls log-uniform on [1, 16], q 1: P(d=k) from log f ~ U(log .5, log 16)."""
    space = spaces.load("anynetx_a")
    d = np.concatenate([draw_block(space, IMAGENET, seed=7, block=b).ds.ravel() for b in range(2)])
    ks = np.arange(1, 17)
    lo, hi = np.log(0.5), np.log(16)
    p = (np.log(ks) - np.log(np.maximum(ks - 1, 0.5))) / (hi - lo)
    observed = np.array([(d == k).sum() for k in ks])
    assert observed.sum() == len(d)  # no depth outside 1..16
    chi2, pval = stats.chisquare(observed, p * len(d))
    assert pval > 1e-3, (observed, p * len(d))


def test_regnet_validity_rate_near_published():
    """About 22% of RegNet draws give exactly 4 stages with no skipped index (pycls's regnet sampler)."""
    c = draw_block(spaces.load("regnetx"), IMAGENET, seed=0, block=0)
    rate = len(c.index) / (1 << 15)
    assert 0.20 < rate < 0.25


def test_same_seed_same_bytes(tmp_path):
    for i in (1, 2):
        sample_new("anynetx_d", 30, tmp_path / f"r{i}", IMAGENET, {"flops": "360M:400M"}, seed=5)
    a = (tmp_path / "r1" / "samples.parquet").read_bytes()
    assert a == (tmp_path / "r2" / "samples.parquet").read_bytes()
    sample_new("anynetx_d", 30, tmp_path / "r3", IMAGENET, {"flops": "360M:400M"}, seed=6)
    assert a != (tmp_path / "r3" / "samples.parquet").read_bytes()


def test_extend_continues_ids_and_stream(tmp_path):
    sample_new("regnetx", 25, tmp_path / "whole", IMAGENET, {}, seed=2)
    sample_new("regnetx", 10, tmp_path / "part", IMAGENET, {}, seed=2)
    sample_extend(tmp_path / "part", 15)
    whole = pd.read_parquet(tmp_path / "whole" / "samples.parquet")
    part = pd.read_parquet(tmp_path / "part" / "samples.parquet")
    assert list(part.model_id) == list(range(25))
    pd.testing.assert_frame_equal(whole, part)


def test_existing_run_is_not_overwritten(tmp_path):
    sample_new("anynetx_a", 3, tmp_path / "r", SMALL, {}, seed=0)
    with pytest.raises(DsdError, match="already holds a run"):
        sample_new("anynetx_a", 3, tmp_path / "r", SMALL, {}, seed=0)


def test_unreachable_window_reports_the_range():
    space = spaces.load("regnetx")
    with pytest.raises(DsdError, match=r"no model inside flops .* span"):
        sample(space, 5, SMALL, {"flops": (10**12, None)}, seed=0, probe=200_000)


def test_low_acceptance_space_still_samples():
    """anynetx_e at 360M:400M accepts about 1 in 10,000 candidates."""
    res = sample(spaces.load("anynetx_e"), 20, IMAGENET, {"flops": WINDOW}, seed=0)
    assert len(res.rows) == 20 and res.drawn / res.in_window > 2000


def _unfiltered_regnet_count(space, seed, block):
    """The RegNet validity rule evaluated on every candidate's every block (no pre-filter)."""
    from dsd.model.arch import regnet_block_widths

    rng = np.random.default_rng([seed, block])
    v = {k: space.params[k].dist.draw(rng, (1 << 15,)) for k in ("depth", "w0", "wa", "wm", "g", "b")}
    depth = v["depth"].astype(np.int64)
    ws, ks = regnet_block_widths(depth, v["w0"], v["wa"], v["wm"], 8, int(depth.max()))
    live = np.arange(ws.shape[1])[None, :] < depth[:, None]
    starts = np.ones_like(live)
    starts[:, 1:] = ws[:, 1:] != ws[:, :-1]
    n_stages = (starts & live).sum(axis=1)
    top = np.where(live, ks, -1).max(axis=1) + 1
    return np.nonzero((n_stages == space.stages) & (top == space.stages))[0]


@pytest.mark.parametrize("name,seed", [("regnetx", 0), ("regnetx", 9), ("regnety", 3)])
def test_regnet_prefilter_keeps_exactly_the_valid_candidates(name, seed):
    space = spaces.load(name)
    for block in (0, 5):
        c = draw_block(space, IMAGENET, seed, block)
        np.testing.assert_array_equal(c.index, _unfiltered_regnet_count(space, seed, block))


def _reference_sample(space, n, windows, seed):
    """The plain loop: blocks in order, windows, first occurrence of each network kept."""
    seen, out, block = set(), [], 0
    while len(out) < n:
        c = draw_block(space, IMAGENET, seed, block)
        ok = np.ones(len(c.index), bool)
        for k, (lo, hi) in windows.items():
            ok &= (c.cx[k] >= lo) & (c.cx[k] <= hi)
        for i in np.nonzero(ok)[0]:
            key = (tuple(c.ds[i]), tuple(c.ws[i]), tuple(c.gs[i]), tuple(c.bs[i]))
            if key not in seen and len(out) < n:
                seen.add(key)
                out.append((key, int(c.cx["flops"][i])))
        block += 1
    return out


@pytest.mark.parametrize("name", ["anynetx_e", "regnetx"])
def test_vectorised_sampler_matches_the_plain_loop(name):
    space = spaces.load(name)
    windows = {"flops": (300_000_000, 500_000_000)}
    res = sample(space, 300, IMAGENET, windows, seed=11)
    got = [((tuple(r["ds"]), tuple(float(x) for x in r["ws"]), tuple(r["gs"]), tuple(r["bs"])),
            r["flops"]) for r in res.rows]
    ref = [((tuple(k[0]), tuple(float(x) for x in k[1]), tuple(k[2]), tuple(k[3])), f)
           for k, f in _reference_sample(space, 300, windows, seed=11)]
    assert got == ref


def test_exhausted_window_is_reported_with_its_distinct_count(tmp_path):
    """A space with exactly 4 distinct networks: asking for 10 says so, early."""
    path = tmp_path / "tiny.toml"
    path.write_text('name = "tiny"\ngenerator = "anynet"\nblock = "x"\nstages = 1\n'
                    '[params.d]\ndist = "choice"\nvalues = [1, 2]\n'
                    '[params.w]\ndist = "choice"\nvalues = [8, 16]\n'
                    '[params.b]\ndist = "choice"\nvalues = [1]\n'
                    '[params.g]\ndist = "choice"\nvalues = [8]\n')
    space = spaces.load(str(path))
    assert len(sample(space, 4, SMALL, {}, seed=0)) == 4
    with pytest.raises(DsdError, match=r"holds only about 4 distinct models .* 10 were asked"):
        sample(space, 10, SMALL, {}, seed=0, probe=100_000)


@pytest.mark.parametrize("population", [2_000, 20_000])
def test_distinct_estimate_recovers_a_known_population(population):
    """Chao1 from draws of a uniform population of known size: within 5% once draws repeat."""
    from dsd.space.sampler import _Tally

    rng = np.random.default_rng(population)
    t = _Tally()
    draws = rng.integers(0, population, size=population)  # ~63% of it met, many twice
    t.admit([int(x).to_bytes(4, "little") for x in draws], set())
    assert len(t.counts) < 0.7 * population
    assert abs(t.distinct_estimate() / population - 1) < 0.05


def test_extend_reads_keys_column_wise_and_skips_existing(tmp_path):
    import pyarrow.parquet as pq

    from dsd.space.sample_run import run_keys

    sample_new("anynetx_c", 50, tmp_path / "r", IMAGENET, {"flops": "360M:400M"}, seed=1)
    table = pq.read_table(tmp_path / "r" / "samples.parquet")
    keys = run_keys(table)
    assert keys == {arch_key(r["ds"], r["ws"], r["gs"], r["bs"], r["block"]) for r in table.to_pylist()}
    assert len(keys) == 50


def test_runs_written_with_the_retired_se_column_read_extend_and_rebuild_as_today(tmp_path):
    """Runs sampled before block names recorded only `se` (x, or y with SE). They are read
    as today's runs, converted in one place: the same networks, extended with the same
    stream, no `se` column anywhere after."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dsd.space.rebuild import arch_of
    from dsd.store.run import Run

    for name in ("regnetx", "regnety"):
        today, old = tmp_path / f"{name}-today", tmp_path / f"{name}-old"
        sample_new(name, 6, today, Shape(1, 28, 10, 1), {"flops": "2M:6M"}, seed=3)
        sample_new(name, 6, old, Shape(1, 28, 10, 1), {"flops": "2M:6M"}, seed=3)
        t = pq.read_table(old / "samples.parquet")
        assert "se" not in t.column_names
        se = pa.array(np.asarray(t.column("block").to_pylist()) == "y")
        pq.write_table(t.drop_columns(["block"]).append_column("se", se), old / "samples.parquet")
        a, b = Run(today).samples(), Run(old).samples()
        assert "se" not in b and list(b.block) == list(a.block)
        assert Run(old).samples(["model_id", "block"]).block.tolist() == a.block.tolist()
        assert [arch_of(Run(old), r) for _, r in b.iterrows()] == \
            [arch_of(Run(today), r) for _, r in a.iterrows()]
        sample_extend(today, 4)
        sample_extend(old, 4)
        after = pq.read_table(old / "samples.parquet")
        assert "se" not in after.column_names and after.num_rows == 10
        assert Run(old).samples().drop(columns="block").equals(Run(today).samples().drop(columns="block"))
        assert Run(old).samples().block.tolist() == Run(today).samples().block.tolist()
