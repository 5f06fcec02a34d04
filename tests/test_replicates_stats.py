"""Noise, fidelity and covariate statistics against simulations with known answers and
against scipy's own tests."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dsd.analysis.adjust import adjusted_effect
from dsd.analysis.fidelity import rank_agreement
from dsd.analysis.noise import averaged_edf, noise


def test_noise_decomposition_recovers_known_components_and_its_icc_ci_covers():
    """16 models x 3 seeds, model SD 2, seed SD 1.5 (ICC 0.64): 600 simulated tables;
    the 95% ICC interval covers the truth in 0.95 +- 0.03 of them (sd 0.009)."""
    rng = np.random.default_rng(1)
    sb, sw, truth, hits, est = 2.0, 1.5, 4.0 / 6.25, 0, []
    for _ in range(600):
        x = rng.normal(0, sb, (16, 1)) + rng.normal(0, sw, (16, 3))
        nz = noise(x)
        hits += nz.icc_ci[0] <= truth <= nz.icc_ci[1]
        est.append((nz.noise_sd, nz.between_sd))
    assert hits / 600 == pytest.approx(0.95, abs=0.03)
    assert np.mean(est, axis=0) == pytest.approx([sw, sb], rel=0.08)


def test_noise_of_identical_replicates_is_zero_and_icc_one():
    x = np.repeat(np.arange(5.0)[:, None], 3, axis=1)
    nz = noise(x)
    assert nz.noise_sd == 0 and nz.icc == 1 and nz.mean_abs_change == 0


def test_averaged_edf_is_the_mean_of_the_per_seed_edfs():
    x = np.array([[1.0, 2.0], [3.0, 1.0], [2.0, 4.0]])
    per, avg = averaged_edf(x, np.array([0.5, 1.0, 2.0, 3.0, 4.0]))
    assert per.tolist() == [[0, 1 / 3, 2 / 3, 1, 1], [0, 1 / 3, 2 / 3, 2 / 3, 1]]
    assert avg == pytest.approx(per.mean(axis=0))


def test_rank_agreement_intervals_cover_the_known_correlations():
    """Bivariate normal, rho 0.7, n 32: Spearman's and Kendall's population values are
    (6/pi) asin(rho/2) and (2/pi) asin(rho); 600 simulated pairs of budgets."""
    rng = np.random.default_rng(2)
    rho, n = 0.7, 32
    true_s, true_k = 6 / np.pi * np.arcsin(rho / 2), 2 / np.pi * np.arcsin(rho)
    cs = ck = 0
    for _ in range(600):
        z = rng.standard_normal((n, 2))
        r = rank_agreement(z[:, 0], rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1])
        cs += r.spearman_ci[0] <= true_s <= r.spearman_ci[1]
        ck += r.kendall_ci[0] <= true_k <= r.kendall_ci[1]
    assert cs / 600 == pytest.approx(0.95, abs=0.03) and ck / 600 == pytest.approx(0.95, abs=0.03)
    a, b = z[:, 0], z[:, 1]
    r = rank_agreement(a, b)
    assert r.spearman == pytest.approx(stats.spearmanr(a, b).statistic)
    assert r.kendall == pytest.approx(stats.kendalltau(a, b).statistic)


def test_raw_effect_is_welchs_difference_and_a_confounder_is_adjusted_away():
    rng = np.random.default_rng(4)
    a, b = rng.normal(30, 2, 40), rng.normal(31, 4, 64)
    r = adjusted_effect(a, b, rng.normal(size=40), rng.normal(size=64), ["noise"])
    welch = stats.ttest_ind(b, a, equal_var=False)
    assert r.raw.estimate == pytest.approx(b.mean() - a.mean()) and r.raw.t == pytest.approx(welch.statistic)
    # b's models are deeper, depth costs 0.5 points per block, and the space itself does
    # nothing: the raw effect is large, the adjusted one covers 0 in 0.95 of 400 studies.
    hits = 0
    for _ in range(400):
        da, db = rng.integers(8, 20, 64), rng.integers(14, 26, 64)
        ea, eb = 30 + 0.5 * da + rng.normal(0, 1.5, 64), 30 + 0.5 * db + rng.normal(0, 1.5, 64)
        r = adjusted_effect(ea, eb, da, db, ["depth"])
        hits += r.adjusted.ci[0] <= 0 <= r.adjusted.ci[1]
    assert r.raw.estimate > 2 and r.slopes["depth"].estimate == pytest.approx(0.5, abs=0.1)
    assert hits / 400 == pytest.approx(0.95, abs=0.035)
