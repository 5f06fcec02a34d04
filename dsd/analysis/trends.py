"""Error against parameters, for one run or several in one figure (RegNet paper Figs.
10-11, pycls's `plot_trends`), each with pycls's good range of the best model's value.

`--param regnet` expands to the RegNet quantities the paper plots: depth, w0, wa, wm, g,
b, and the flops, params and acts of the models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsd.analysis import edf as E
from dsd.analysis.runs import RunErrors
from dsd.errors import DsdError, ParamError

REGNET = ("depth", "w0", "wa", "wm", "g", "b", "flops", "params", "acts")


def expand(params: list[str]) -> list[str]:
    out: list[str] = []
    for p in params:
        out += list(REGNET) if p == "regnet" else [p]
    return list(dict.fromkeys(out))


def trend(r: RunErrors, param: str, rng: np.random.Generator, bins: int = 5) -> dict:
    """Error against one parameter of one run: binned summary and the good range."""
    from dsd.analysis.report import param_columns

    if bins < 1:
        raise ParamError("bins", "must be at least 1")
    cols = param_columns(r.table)
    if param not in cols:
        raise DsdError(f"unknown parameter {param!r} for {r.path}; known: {', '.join(cols)}"
                       + ("; `regnet` stands for depth, w0, wa, wm, g, b, flops, params, acts "
                          "(RegNet runs)" if "wm" in cols else ""))
    x, e = cols[param].astype(float), r.table.error.to_numpy(dtype=float)
    lo, med, hi = E.good_range(x, e, rng)
    uniq = np.unique(x)
    if len(uniq) <= bins:
        groups = [(u, u, x == u) for u in uniq]
    else:
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
        idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        groups = [(edges[k], edges[k + 1], idx == k) for k in range(len(edges) - 1)]
    table = [{"from": float(a), "to": float(b), "n": int(m.sum()), "min": float(e[m].min()),
              "median": float(np.median(e[m])), "mean": float(e[m].mean())}
             for a, b, m in groups if m.any()]
    return {"run": r.name, "param": param, "good_range": [lo, med, hi], "bins": table,
            "x": x.tolist(), "error": e.tolist()}


def trends(runs: list[RunErrors], params: list[str], rng: np.random.Generator, bins: int = 5) -> dict:
    params = expand(params)
    return {"params": params, "runs": [r.name for r in runs],
            "trends": [trend(r, p, rng, bins) for p in params for r in runs]}


def trends_plot(doc: dict, path: str | Path) -> list[Path]:
    """One panel per parameter; in each, every run's models, binned median and good range."""
    from matplotlib.ticker import NullFormatter

    from dsd.analysis.plots import COLORS, figure, save

    params = doc["params"]
    cols = min(3, len(params))
    rows = int(np.ceil(len(params) / cols))
    fig, _ = figure(4.4 * cols, 3.4 * rows)
    fig.clf()
    for k, param in enumerate(params):
        ax = fig.add_subplot(rows, cols, k + 1)
        xs_all = []
        for i, run in enumerate(doc["runs"]):
            t = next(t for t in doc["trends"] if t["param"] == param and t["run"] == run)
            c = COLORS[i % len(COLORS)]
            x, e = np.asarray(t["x"]), np.asarray(t["error"])
            xs_all.append(x)
            lo, med, hi = t["good_range"]
            ax.axvspan(lo, hi, color=c, alpha=0.12, linewidth=0)
            ax.axvline(med, color=c, linewidth=1, alpha=0.8)
            ax.scatter(x, e, s=7, alpha=0.45, color=c, label=run if k == 0 else None)
            centers = [(b["from"] + b["to"]) / 2 for b in t["bins"]]
            ax.plot(centers, [b["median"] for b in t["bins"]], "-", color=c, linewidth=1.5)
        xa = np.concatenate(xs_all)
        if xa.min() > 0 and xa.max() / xa.min() > 20:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(param, fontsize=9)
        if k % cols == 0:
            ax.set_ylabel("error (%)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.legend(loc="upper right", fontsize=7, markerscale=2)
    fig.suptitle("error against parameters: dots models, lines binned medians; shaded: 95% good "
                 "range of the best model's value (pycls: 2,500 resamples of 25%)", fontsize=9)
    return save(fig, path)
