"""Does b do no worse than a? An equivalence bound on the gap of median errors. Pure numpy.

A KS test that finds no difference cannot show that none exists. "Sharing b does not
hurt" is reproduced only when the data bound the loss: the upper confidence bound of
median_b - median_a (points of error; weighted medians, so a complexity-normalised EDF's
weights count) lies below a margin the study declares in advance. The bound is a
percentile bootstrap, resampling models within complexity bins as the EDF bands do. When
the true gap equals the margin, the rule declares "no worse" at most about `level` of the
time (tests/test_verdicts.py measures it).
"""

from __future__ import annotations

import numpy as np

from dsd.analysis import edf as E


def weighted_median(errors: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(errors, kind="stable")
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(errors[order][np.searchsorted(cum, 0.5)])


def _boot_medians(s: E.Sample, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Weighted medians of `n_boot` resamples (counts over cells, stratified by bin)."""
    c = E.cells(s, s.errors)
    order = np.argsort(c.key, kind="stable")
    w = (c.resample(n_boot, rng) * c.weight[None])[:, order]
    cum = np.cumsum(w, axis=1) / w.sum(axis=1, keepdims=True)
    idx = (cum < 0.5).sum(axis=1)
    return c.key[order][np.minimum(idx, len(order) - 1)]


def median_gap_upper(a: E.Sample, b: E.Sample, level: float, n_boot: int = 2000,
                     seed: int = 0) -> tuple[float, float]:
    """(median_b - median_a, its one-sided upper confidence bound at 1 - level)."""
    rng = np.random.default_rng(seed)
    gap = weighted_median(b.errors, b.weights) - weighted_median(a.errors, a.weights)
    boots = _boot_medians(b, n_boot, rng) - _boot_medians(a, n_boot, rng)
    return float(gap), float(np.quantile(boots, 1 - level))
