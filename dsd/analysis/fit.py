"""The RegNet paper's quantized linear fit (Radosavovic et al. 2020, section 3.3, Fig. 8).

For a model with per-block widths w_j (j < d), find the RegNet parameters (w0, wa, wm),
with d fixed to the model's number of blocks, whose quantized linear widths
    u_j = w0 + wa*j,  k_j = round(log(u_j / w0) / log(wm)),  w'_j = round(w0 * wm^k_j / 8) * 8
best reproduce them. The fit error is
    e_fit = mean_j (log w_j - log w'_j)^2,
the mean squared log-ratio between the model's widths and the fit's (0: the model is a
RegNet). The search is a vectorised grid over (w0, wm, wa), refined around the best.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Q = 8


@dataclass
class Fit:
    depth: int
    w0: int
    wa: float
    wm: float
    e_fit: float
    widths: np.ndarray      # the model's per-block widths
    fitted: np.ndarray      # the fit's quantized per-block widths

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


def _errors(target: np.ndarray, w0, wa, wm, chunk: int = 50_000) -> np.ndarray:
    out = np.empty(len(w0))
    for i in range(0, len(w0), chunk):
        s = slice(i, i + chunk)
        gen = generate(w0[s], wa[s], wm[s], len(target))
        out[s] = np.mean((np.log(target)[None] - np.log(gen)) ** 2, axis=1)
    return out


def _grid(w0s, was, wms):
    g0, ga, gm = np.meshgrid(w0s, was, wms, indexing="ij")
    return g0.ravel(), ga.ravel(), gm.ravel()


def fit_widths(widths, refine: int = 6) -> Fit:
    """The (w0, wa, wm) whose quantized linear widths are closest to `widths` in e_fit."""
    w = np.asarray(widths, dtype=float)
    d, first, last = len(w), w[0], w.max()
    w0s = np.arange(max(Q, Q * np.floor(first / 2 / Q)), Q * np.ceil(2 * first / Q) + 1, Q)
    was = np.concatenate([[0.0], np.geomspace(0.05, max(8.0, 2 * last), 160)])
    wms = np.geomspace(1.05, 6.0, 140)
    g0, ga, gm = _grid(w0s, was, wms)
    err = _errors(w, g0, ga, gm)
    starts = np.argsort(err, kind="stable")[:4]
    best = (err[starts[0]], g0[starts[0]], ga[starts[0]], gm[starts[0]])
    for s in starts:
        cand = _refine(w, g0[s], ga[s], gm[s], refine)
        if cand[0] < best[0] - 1e-15:
            best = cand
        if best[0] == 0:
            break
    e, w0, wa, wm = best
    fitted = generate(np.array([w0]), np.array([wa]), np.array([wm]), d)[0]
    return Fit(d, int(w0), float(wa), float(wm), float(e), w, fitted)


def _refine(w, w0, wa, wm, rounds):
    """Zoom in around a start: a finer (w0, wa, wm) grid each round."""
    span_a, span_m = max(wa, 1.0), 0.3
    best_e = _errors(w, np.array([w0]), np.array([wa]), np.array([wm]))[0]
    best = (best_e, w0, wa, wm)
    for _ in range(rounds):
        w0s = np.unique(np.clip(best[1] + Q * np.arange(-2, 3), Q, None))
        was = np.clip(best[2] + np.linspace(-span_a, span_a, 41), 0, None)
        wms = np.clip(best[3] + np.linspace(-span_m, span_m, 41), 1.001, None)
        g0, ga, gm = _grid(w0s, was, wms)
        err = _errors(w, g0, ga, gm)
        i = int(np.argmin(err))
        if err[i] <= best[0]:
            best = (err[i], g0[i], ga[i], gm[i])
        if best[0] == 0:
            break
        span_a, span_m = span_a / 4, span_m / 4
    return best
