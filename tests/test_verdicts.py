"""The verdict rule's statistics against simulations with known answers: the family's
error under Holm, and the power the verdicts state."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dsd.analysis.power import d_for_shift, detectable_d, plain_weights, shift_for_d
from dsd.study.findings import fmt_p, holm, judge


def test_verdict_rules_read_the_holm_p():
    assert judge("better", 0.001, True, 0.05)[0] == "reproduced"
    assert judge("better", 0.001, False, 0.05)[0] == "not reproduced"
    assert judge("better", 0.07, True, 0.05)[0] == "not resolved at this n"
    assert judge("no_worse", 0.001, False, 0.05)[0] == "not reproduced"
    assert judge("no_worse", 0.001, True, 0.05)[0] == "reproduced"
    assert judge("open", 0.01, False, 0.05)[0] == "differs: a is better"
    assert judge("open", 0.01, True, 0.05)[0] == "differs: b is better"
    assert judge("open", 0.2, True, 0.05)[0] == "no difference detected at this n"
    verdict, why = judge("no_worse", 0.4, False, 0.05, d80=0.29)
    assert verdict == "consistent" and "D of 0.29" in why and "80% power" in why


def test_holm_against_its_definition():
    """Step-down: sorted p_(i) times (m - i + 1), running maximum, capped at 1."""
    ps = [0.0255, 0.579, 0.0005, 0.973, 0.0115, 0.0045]
    assert holm(ps) == pytest.approx([0.0765, 1.0, 0.003, 1.0, 0.046, 0.0225])
    assert holm([0.04, 0.04]) == pytest.approx([0.08, 0.08])


def test_p_at_the_permutation_floor_reads_as_a_bound():
    assert fmt_p(1 / 2001, "permutation within 5 complexity bins (2000)") == "≤ 1/2001"
    assert fmt_p(2 / 2001, "permutation within 5 complexity bins (2000)") == f"{2 / 2001:.3g}"
    assert fmt_p(1e-9, "scipy ks_2samp (exact)") == "< 0.0001"
    assert fmt_p(1.2e-4, "scipy ks_2samp (exact)") == "0.00012"


def test_family_wise_error_of_the_verdict_rule_under_the_null():
    """Six comparisons of spaces that do not differ, 600 simulated studies (n = 64 each):
    the Holm rule gives one or more false verdicts in at most alpha of them (binomial sd
    0.009), where reading raw p would in about 1 - 0.95^6 = 26%."""
    rng = np.random.default_rng(3)
    alpha, studies, m, n = 0.05, 600, 6, 64
    any_holm = any_raw = 0
    for _ in range(studies):
        ps = [stats.ks_2samp(rng.standard_normal(n), rng.standard_normal(n)).pvalue for _ in range(m)]
        verdicts = [judge("better", p, True, alpha)[0] for p in holm(ps)]
        any_holm += any(v != "not resolved at this n" for v in verdicts)
        any_raw += any(p < alpha for p in ps)
    assert any_holm / studies <= alpha + 0.02
    assert any_raw / studies > 0.18


@pytest.mark.parametrize("n_a,n_b,level", [(64, 64, 0.05), (64, 64, 0.05 / 6), (40, 90, 0.05)])
def test_stated_d_is_detected_with_80_percent_power(n_a, n_b, level):
    """At the D the verdict states, scipy's exact two-sample KS test (independent code,
    independent draws) rejects about 80% of 1,000 simulated location shifts (sd 0.013)."""
    d80 = detectable_d(plain_weights(n_a), plain_weights(n_b), level)
    rng = np.random.default_rng(11)
    delta = shift_for_d(d80)
    hits = [stats.ks_2samp(rng.standard_normal(n_a), rng.standard_normal(n_b) + delta).pvalue < level
            for _ in range(1000)]
    assert np.mean(hits) == pytest.approx(0.80, abs=0.04)


def test_shift_and_d_are_inverse():
    d = np.array([0.05, 0.25, 0.6, 0.95])
    assert d_for_shift(shift_for_d(d)) == pytest.approx(d)
    # Two unit normals one SD apart: D = 2 Phi(0.5) - 1.
    assert d_for_shift(1.0) == pytest.approx(2 * stats.norm.cdf(0.5) - 1)


def test_weighted_power_falls_with_uneven_weights():
    """Complexity-normalised weights lower Kish's n_eff, so the detectable D grows: 64
    models in 5 bins holding 2, 10, 14, 18 and 20 (n_eff 32)."""
    even = plain_weights(64)
    uneven = np.concatenate([np.full(c, 1 / (5 * c)) for c in (2, 10, 14, 18, 20)])
    assert detectable_d(uneven, uneven, 0.05) > detectable_d(even, even, 0.05) + 0.02


def test_population_agreement_of_re_trained_models():
    """study verify's rule: mean difference within 1.5 points, no model beyond 5."""
    from dsd.study.verify import agreement

    assert agreement([0.0, 0.0, 0.0]).agrees  # bit-exact
    a = agreement([-1.9, -1.8, 0.2, -2.35, 1.1, 0.6])  # another CPU, as the issue measured
    assert a.agrees and a.mean == pytest.approx(-0.6917, abs=1e-3)
    ref = stats.ttest_1samp([-1.9, -1.8, 0.2, -2.35, 1.1, 0.6], 0.0)
    assert a.p == pytest.approx(ref.pvalue) and a.ci[0] < a.mean < a.ci[1]
    assert not agreement([2.0, 1.8, 1.9]).agrees          # a systematic shift
    assert not agreement([0.5, -0.4, 6.0, -5.5]).agrees   # one model far off


def test_equivalence_bound_declares_no_worse_at_most_alpha_of_the_time_at_the_margin():
    """b's errors truly 1 point worse (the margin): 'no worse' may be declared in at most
    about alpha of 500 simulated pairs of 64 models (test-set granularity 0.05 points);
    with b truly as good, it is declared most of the time under a 2-point margin."""
    from dsd.analysis import edf as E
    from dsd.analysis.equivalence import median_gap_upper

    rng = np.random.default_rng(1)
    grid = lambda x: np.round(x * 20) / 20  # noqa: E731
    at_margin = equal = 0
    for r in range(500):
        a = E.plain(grid(rng.normal(35, 4, 64)))
        at_margin += median_gap_upper(a, E.plain(grid(rng.normal(36, 4, 64))), 0.05, 2000, seed=r)[1] < 1.0
        equal += median_gap_upper(a, E.plain(grid(rng.normal(35, 4, 64))), 0.05, 2000, seed=r)[1] < 2.0
    assert at_margin / 500 <= 0.05 + 0.01 and equal / 500 > 0.5


def test_no_worse_verdict_reads_the_bound_against_the_margin():
    v, why = judge("no_worse", 0.6, False, 0.05, bound=(0.3, 0.8), margin=1.0)
    assert v == "reproduced" and "+0.80" in why and "< 1" in why
    v, why = judge("no_worse", 0.6, False, 0.05, bound=(0.3, 1.4), margin=1.0)
    assert v == "consistent" and "not below the margin 1" in why
    assert judge("no_worse", 0.001, False, 0.05, bound=(2.0, 2.5), margin=1.0)[0] == "not reproduced"
