"""Random-search efficiency: the expected best error of k models drawn from a space.

RegNet paper, Fig. 9 (right), and the nds `num_samples` notebook, computed exactly rather
than by simulation. Drawing k models independently from a space whose error distribution
is the (weighted) EDF, with sorted distinct errors e_1 < ... < e_m and F_i = F(e_i):

    P(min > e_i) = (1 - F_i)^k,   E[min] = sum_i e_i [(1 - F_{i-1})^k - (1 - F_i)^k].

The band is a percentile bootstrap of E[min] (multinomial counts, stratified within
complexity bins when normalised, like the EDF bands), pointwise in k. Pure numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsd.analysis import edf as E

CHUNK = 1 << 22  # bootstrap cells per block: bounds memory for large runs


def ks_for(n: int) -> np.ndarray:
    """k = 1, 2, 4, ... up to n (n itself included)."""
    ks = [1 << i for i in range(int(np.log2(max(n, 1))) + 1)]
    if ks[-1] != n:
        ks.append(n)
    return np.asarray(ks)


def expected_min(errors: np.ndarray, weights: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """E[min of k i.i.d. draws] for each k, from errors with weights (any positive scale)."""
    order = np.argsort(errors, kind="stable")
    e, w = np.asarray(errors, float)[order], np.asarray(weights, float)[order]
    surv = np.clip(1.0 - np.cumsum(w) / w.sum(), 0.0, 1.0)          # P(X > e_i)
    before = np.concatenate([[1.0], surv[:-1]])                     # P(X > e_{i-1})
    k = np.asarray(ks, float)[:, None]
    return ((before[None] ** k - surv[None] ** k) * e[None]).sum(axis=1)


def min_of_k(s: E.Sample, n_boot: int, ci: float, rng: np.random.Generator) -> dict:
    """{k, expected, lo, hi}: the exact expectation and its bootstrap band, k = 1, 2, 4, ..., n.

    Models with equal error, bin and weight are one cell (tied errors telescope in the sum
    above), so the bootstrap costs distinct errors (a test set of T images has at most T + 1),
    not models.
    """
    ks = ks_for(s.n)
    c = E.cells(s, s.errors)
    expected = expected_min(c.key, c.weight * c.size, ks)  # tied errors telescope: exact
    order = np.argsort(c.key, kind="stable")
    e, starts = np.unique(c.key[order], return_index=True)  # cells of equal error merge
    boots = []
    step = max(1, CHUNK // max(len(c.key), 1))
    for start in range(0, n_boot, step):
        w = (c.resample(min(step, n_boot - start), rng) * c.weight[None])[:, order]
        w = np.add.reduceat(w, starts, axis=1)
        surv = np.clip(1.0 - np.cumsum(w, axis=1) / w.sum(axis=1, keepdims=True), 0.0, 1.0)
        before = np.concatenate([np.ones((len(w), 1)), surv[:, :-1]], axis=1)
        boots.append(np.stack(list(_powers_term(before, surv, e, ks)), axis=1))
    b = np.concatenate(boots)
    alpha = (1 - ci) / 2
    lo, hi = np.quantile(b, [alpha, 1 - alpha], axis=0)
    return {"k": ks.tolist(), "expected": expected.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}


def _powers_term(before: np.ndarray, surv: np.ndarray, e: np.ndarray, ks: np.ndarray):
    """sum_i e_i (before_i^k - surv_i^k) for each k; k = 1, 2, 4, ... by squaring."""
    bk, sk, prev = before, surv, 1
    for k in ks:
        if k == 2 * prev:
            bk, sk = bk * bk, sk * sk
        elif k != prev:
            bk, sk = before**k, surv**k
        prev = k
        yield ((bk - sk) * e[None]).sum(axis=1)


def min_of_k_plot(doc: dict, path: str | Path) -> list[Path]:
    """Expected best error against k for every run of an `edf compare` document."""
    from matplotlib.ticker import FuncFormatter

    from dsd.analysis.plots import COLORS, figure, save

    fig, ax = figure()
    for i, r in enumerate(doc["runs"]):
        m, c = r["min_of_k"], COLORS[i % len(COLORS)]
        band = f"{doc['ci']:.0%} bootstrap band (pointwise in k)" if i == 0 else None
        ax.fill_between(m["k"], m["lo"], m["hi"], color=c, alpha=0.18, linewidth=0, label=band)
        ax.plot(m["k"], m["expected"], "o-", color=c, markersize=3, label=f"{r['name']} (n={r['n']})")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set(xlabel="k: models drawn at random from the space",
           ylabel="expected best error of the k (%)",
           title="random-search efficiency: the best of k random models")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)
