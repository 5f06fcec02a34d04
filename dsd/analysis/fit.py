"""The RegNet paper's quantized linear fit (Radosavovic et al. 2020, section 3.3, Fig. 8).

For a model with per-block widths w_j (j < d), find the RegNet parameters (w0, wa, wm),
d being the model's number of blocks, whose quantized linear widths
    u_j = w0 + wa*j,  k_j = round(log(u_j / w0) / log(wm)),  w'_j = round(w0 * wm^k_j / 8) * 8
best reproduce them. The paper's fit error is the mean log-ratio between the two;
signed log-ratios would cancel, so dsd takes the mean absolute log-ratio,
    e_fit = mean_j |log w_j - log w'_j|      (0: the model is a RegNet),
and, with measure="squared", the mean squared log-ratio of earlier dsd versions.

The search is global within the bounds (w0 a multiple of 8 in [8, 1024], wa in [0, 1024],
wm in [1.5, max(3, 2 max_j w_j / min_j w_j)]): with r = wa / w0, k_j = round(log(1 + r j) /
log wm) depends on (r, wm) only and changes only where log(1 + r j) / log wm crosses
k + 1/2, i.e. at r = (wm^(k+1/2) - 1) / j. For each wm of a log-spaced grid the fit
evaluates one r inside every interval between those breakpoints (so it is exact in r) for
every w0 at once, then refines the best wm cells on a finer grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Q = 8
MEASURES = ("abs", "squared")


@dataclass(frozen=True)
class Bounds:
    w0: tuple[int, int] = (8, 1024)
    wa: tuple[float, float] = (0.0, 1024.0)
    wm: tuple[float, float] = (1.5, 1e9)   # the upper end is capped per model (see above)


@dataclass
class Fit:
    depth: int
    w0: int
    wa: float
    wm: float
    e_fit: float
    widths: np.ndarray      # the model's per-block widths
    fitted: np.ndarray      # the fit's quantized per-block widths
    measure: str = "abs"

    def continuous(self) -> np.ndarray:
        return self.w0 + self.wa * np.arange(self.depth)


def block_widths(ds, ws) -> np.ndarray:
    """Per-block widths of an AnyNet: each stage's width repeated by its depth."""
    return np.repeat(np.asarray(ws, dtype=float), np.asarray(ds, dtype=int))


def generate(w0: np.ndarray, wa: np.ndarray, wm: np.ndarray, d: int) -> np.ndarray:
    """Quantized linear widths [candidates, d] (the same rule as dsd.model.arch's generator)."""
    j = np.arange(d)[None, :]
    u = w0[:, None] + wa[:, None] * j
    ks = np.round(np.log(u / w0[:, None]) / np.log(wm[:, None]))
    return np.round(w0[:, None] * np.power(wm[:, None], ks) / Q) * Q


def e_fit(widths: np.ndarray, fitted: np.ndarray, measure: str = "abs") -> np.ndarray:
    """Mean absolute (or squared) log-ratio along the last axis."""
    diff = np.log(widths) - np.log(fitted)
    return np.mean(np.abs(diff) if measure == "abs" else diff**2, axis=-1)


def _r_candidates(wm: float, d: int, levels: int, r_hi: float) -> np.ndarray:
    """One r = wa / w0 inside every interval on which every k_j is constant, plus r = 0."""
    j = np.arange(1, max(d, 2))
    breaks = ((wm ** (np.arange(levels) + 0.5) - 1.0)[:, None] / j[None, :]).ravel()
    breaks = np.unique(breaks[(breaks > 0) & (breaks <= r_hi)])
    if len(breaks) == 0:
        return np.array([0.0, r_hi])
    mids = np.sqrt(breaks[1:] * breaks[:-1])  # geometric midpoints keep small r resolved
    top = min(r_hi, breaks[-1] * 1.5)
    return np.concatenate([[0.0, breaks[0] / 2], mids, [top]])


def _best_at_wm(logw: np.ndarray, w0s: np.ndarray, wm: float, bounds: Bounds, measure: str):
    """(e_fit, w0, wa) of the best fit with this wm, exact over wa, over every w0."""
    d = len(logw)
    top_width = 2 * np.exp(logw.max())
    levels = int(np.ceil(np.log(top_width / Q) / np.log(wm))) + 1
    r_hi = bounds.wa[1] / w0s.min()
    r = _r_candidates(wm, d, levels, r_hi)
    k = np.rint(np.log1p(np.outer(r, np.arange(d))) / np.log(wm)).astype(np.int64)
    k = np.minimum(k, levels - 1)  # levels past twice the widest block only add error
    lvl = np.round(w0s[:, None] * wm ** np.arange(levels)[None, :] / Q) * Q  # [w0, levels]
    loglvl = np.log(np.maximum(lvl, Q))
    diff = logw[None, None, :] - loglvl[:, k]                           # [w0, r, d]
    err = np.mean(np.abs(diff) if measure == "abs" else diff**2, axis=2)
    err[r[None, :] * w0s[:, None] > bounds.wa[1] + 1e-9] = np.inf       # wa beyond its bound
    i, m = np.unravel_index(int(np.argmin(err)), err.shape)
    return float(err[i, m]), int(w0s[i]), float(r[m] * w0s[i])


def fit_widths(widths, measure: str = "abs", bounds: Bounds = Bounds(), coarse: int = 160,
               fine: int = 48, keep: int = 6) -> Fit:
    """The (w0, wa, wm) whose quantized linear widths are closest to `widths` in e_fit."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}")
    w = np.asarray(widths, dtype=float)
    d, logw = len(w), np.log(w)
    hi_w0 = min(bounds.w0[1], Q * int(np.ceil(2 * w.max() / Q)))
    w0s = np.arange(max(Q, bounds.w0[0]), hi_w0 + 1, Q, dtype=float)
    wm_hi = min(bounds.wm[1], max(3.0, 2 * w.max() / w.min()))
    grid = np.geomspace(bounds.wm[0], wm_hi, coarse)
    found = [(*_best_at_wm(logw, w0s, wm, bounds, measure), wm) for wm in grid]
    order = np.argsort([f[0] for f in found], kind="stable")
    best = found[order[0]]
    for i in order[:keep]:  # zoom into the best cells of the coarse grid
        if best[0] == 0:
            break
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        for wm in np.geomspace(lo, hi, fine):
            cand = (*_best_at_wm(logw, w0s, wm, bounds, measure), wm)
            if cand[0] < best[0]:
                best = cand
    _, w0, wa, wm = best
    fitted = generate(np.array([float(w0)]), np.array([wa]), np.array([wm]), d)[0]
    return Fit(d, int(w0), float(wa), float(wm), float(e_fit(w, fitted, measure)), w, fitted, measure)
