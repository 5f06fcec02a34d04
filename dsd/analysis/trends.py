"""Error against parameters, for one run or several in one figure (RegNet paper Figs.
10-11, pycls's `plot_trends`), each with pycls's good range of the best model's value.

`--param regnet` expands to the RegNet quantities the paper plots: depth, w0, wa, wm, g,
b, and the flops, params and acts of the models. Recipe fields a space draws per model
(lr, wd, ...) are parameters too; lr and wd are plotted on a log axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsd.analysis import edf as E
from dsd.analysis.runs import RunErrors
from dsd.data.recipe_dims import log_scaled
from dsd.errors import DsdError, ParamError

REGNET = ("depth", "w0", "wa", "wm", "g", "b", "flops", "params", "acts")


def expand(params: list[str]) -> list[str]:
    out: list[str] = []
    for p in params:
        out += list(REGNET) if p == "regnet" else [p]
    return list(dict.fromkeys(out))


def trend(r: RunErrors, param: str, bins: int = 5) -> dict:
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
    has = ~np.isnan(x)  # a stage only some networks have (a drawn stage count)
    x, e = x[has], e[has]
    lo, med, hi = E.good_range(x, e)
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


def trends(runs: list[RunErrors], params: list[str], bins: int = 5) -> dict:
    params = expand(params)
    return {"params": params, "runs": [r.name for r in runs],
            "trends": [trend(r, p, bins) for p in params for r in runs]}


def trend_runs(paths: list[str | Path], params: list[str], bins: int = 5,
               metric: str = "error_min", failed: str = "as-chance",
               plot: str | Path | None = None) -> dict:
    """`dsd trend`: error against each parameter for each run, with the plot if asked for."""
    from dsd.analysis.runs import run_errors

    doc = trends([run_errors(p, metric, failed) for p in paths], params, bins)
    if plot:
        doc["plot"] = [str(p) for p in trends_plot(doc, plot)]
    return doc


def trends_plot(doc: dict, path: str | Path) -> list[Path]:
    """One panel per parameter; in each, every run's models and binned medians, and below
    them one bar per run for its good range (a stack of bars stays readable for seven runs,
    where seven shaded spans would cover each other)."""
    from matplotlib.ticker import FuncFormatter

    from dsd.analysis.plots import COLORS, figure, plain_log_axis, save

    params, runs = doc["params"], doc["runs"]
    cols = min(3, len(params))
    rows = int(np.ceil(len(params) / cols))
    fig, _ = figure(4.6 * cols, (3.4 + 0.12 * len(runs)) * rows + 0.5)
    fig.clf()
    for k, param in enumerate(params):
        ax = fig.add_subplot(rows, cols, k + 1)
        ts = [next(t for t in doc["trends"] if t["param"] == param and t["run"] == run) for run in runs]
        xa = np.concatenate([np.asarray(t["x"], dtype=float) for t in ts])
        log = xa.min() > 0 and (log_scaled(param) or xa.max() / xa.min() > 20)
        errs = []
        for i, (run, t) in enumerate(zip(runs, ts)):
            x, e = np.asarray(t["x"], dtype=float), np.asarray(t["error"], dtype=float)
            errs.append(e)
            c = COLORS[i % len(COLORS)]
            ax.scatter(x, e, s=7, alpha=0.4, color=c, label=run if k == 0 else None)
            # A bin's middle as the axis shows it: geometric on a log axis.
            centers = [np.sqrt(b["from"] * b["to"]) if log else (b["from"] + b["to"]) / 2
                       for b in t["bins"]]
            ax.plot(centers, [b["median"] for b in t["bins"]], "-", color=c, linewidth=1.5)
        e_all = np.concatenate(errs)
        lo_e, hi_e = float(e_all.min()), float(e_all.max())
        step = (hi_e - lo_e) * 0.05 or 1.0
        for i, t in enumerate(ts):  # good ranges: one bar per run under the points
            lo, med, hi = t["good_range"]
            y = lo_e - step * (i + 1.5)
            ax.plot([lo, hi], [y, y], color=COLORS[i % len(COLORS)], linewidth=3, alpha=0.7,
                    solid_capstyle="butt")
            ax.plot([med], [y], "|", color="k", markersize=6)
        ax.set_ylim(lo_e - step * (len(runs) + 2.5), hi_e + step)
        ax.set_yticks([v for v in ax.get_yticks() if lo_e - step <= v <= hi_e + step])  # not the bars
        if log:
            plain_log_axis(ax, "x")
        elif xa.max() >= 1e5:  # flops, params: in millions, not with a 1e6 offset
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:g}M"))
        elif np.allclose(xa, np.round(xa)):  # depths, stage counts: whole ticks
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel(param, fontsize=9)
        if k % cols == 0:
            ax.set_ylabel("error (%)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.legend(loc="lower center", fontsize=7, markerscale=2, ncol=min(len(runs), 7),
               bbox_to_anchor=(0.5, 0.0))
    fig.suptitle("error against parameters: dots are models, lines binned medians;\nbars below: "
                 "each run's good range (where the best of a random 25% lands, exact; "
                 "tick: median)", fontsize=9)
    return save(fig, path, rect=(0, 0.07, 1, 0.93))
