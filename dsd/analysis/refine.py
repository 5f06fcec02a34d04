"""Refinement steps on a finished run: quantized linear fits of its best models, a new
space that covers them, and error trends against one parameter."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsd import tomlw
from dsd.analysis import edf as E
from dsd.analysis.fit import Fit, block_widths, fit_widths
from dsd.analysis.plots import COLORS, figure, save
from dsd.analysis.runs import RunErrors
from dsd.errors import DsdError, ParamError
from dsd.space import spec as spaces


def fit_top(r: RunErrors, top: int) -> list[tuple[dict, Fit]]:
    """The `top` lowest-error models of the run with their quantized linear fits."""
    if top < 1:
        raise ParamError("top", "must be at least 1")
    if r.table.empty:
        raise DsdError(f"{r.path} has no trained models to fit; run `dsd train-batch` first")
    best = r.table.sort_values("error").head(top)
    return [(row, fit_widths(block_widths(row["ds"], row["ws"])))
            for row in best.to_dict("records")]


def fit_rows(fits: list[tuple[dict, Fit]]) -> list[dict]:
    return [{"model_id": int(row["model_id"]), "error": float(row["error"]), "d": f.depth,
             "w0": f.w0, "wa": round(f.wa, 3), "wm": round(f.wm, 4), "e_fit": f.e_fit,
             "widths": [int(x) for x in row["ws"]], "depths": [int(x) for x in row["ds"]]}
            for row, f in fits]


def fit_plot(fits: list[tuple[dict, Fit]], path: str | Path, title: str) -> list[Path]:
    """Per-block width against block index with the fit, as the paper's Fig. 8."""
    shown = fits[:8]
    cols = min(4, len(shown))
    rows = int(np.ceil(len(shown) / cols))
    fig, _ = figure(3.2 * cols, 2.8 * rows)
    fig.clf()
    for i, (row, f) in enumerate(shown):
        ax = fig.add_subplot(rows, cols, i + 1)
        j = np.arange(f.depth)
        ax.plot(j, f.continuous(), ":", color="0.5", label="w0 + wa j")
        ax.step(j, f.widths, where="mid", color=COLORS[0], linewidth=2, label="model")
        ax.step(j, f.fitted, where="mid", color=COLORS[1], linestyle="--", label="fit (quantized)")
        ax.set_yscale("log")
        ax.set_title(f"id {row['model_id']}: err {row['error']:.1f}%, e_fit {f.e_fit:.3f}", fontsize=8)
        ax.set_xlabel("block index j", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.set_ylabel("width", fontsize=8)
            ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def space_from_fits(fits: list[tuple[dict, Fit]], r: RunErrors, name: str) -> dict:
    """A RegNet space whose ranges cover the fitted parameters of the given models."""
    ds = [f.depth for _, f in fits]
    w0 = [f.w0 for _, f in fits]
    wa = [f.wa for _, f in fits]
    wm = [f.wm for _, f in fits]
    gs = sorted({int(max(row["gs"])) for row, _ in fits})
    bs = sorted({float(row["bs"][0]) for row, _ in fits})
    se = bool(fits[0][0]["se"])
    manifest = _manifest(r)
    table = {
        "name": name,
        "description": f"fitted to the {len(fits)} best models of {r.path} by `dsd fit`",
        "generator": "regnet", "block": "y" if se else "x",
        "stages": int(manifest.get("space", {}).get("stages", 4)),
        "stem_width": int(manifest.get("space", {}).get("stem_width", 32)),
    }
    if manifest.get("flops"):
        table["flops"] = manifest["flops"]
    lo_a, hi_a = max(0.1, np.floor(min(wa) * 10) / 10), max(0.2, np.ceil(max(wa) * 10) / 10)
    lo_m, hi_m = np.floor(min(wm) * 1000) / 1000, np.ceil(max(wm) * 1000) / 1000
    table["params"] = {
        "depth": {"dist": "uniform", "low": min(ds), "high": max(ds), "q": 1},
        "w0": {"dist": "log_uniform", "low": min(w0), "high": max(w0), "q": 8},
        "wa": {"dist": "log_uniform", "low": float(lo_a), "high": float(max(hi_a, lo_a)), "q": 0.1},
        "wm": {"dist": "log_uniform", "low": float(max(lo_m, 1.001)), "high": float(max(hi_m, lo_m, 1.002)),
               "q": 0.001},
        "g": {"dist": "choice", "values": gs},
        "b": {"dist": "choice", "values": bs},
    }
    return table


def _manifest(r: RunErrors) -> dict:
    import tomllib

    p = r.path / "run.toml"
    return tomllib.loads(p.read_text()) if p.exists() else {}


def write_space(table: dict, path: str | Path) -> Path:
    """Write the space file and load it back: what we write must be a valid space."""
    p = Path(path)
    if p.suffix != ".toml":
        raise DsdError(f"--to-space needs a .toml path, got {p}")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("# Written by `dsd fit --to-space`: a RegNet space covering the best models' fits.\n"
                 + tomlw.dumps(table))
    spaces.load(str(p))
    return p


def trend(r: RunErrors, param: str, rng: np.random.Generator, bins: int = 5) -> dict:
    """Error against one parameter: binned summary and the best model's good range."""
    if bins < 1:
        raise ParamError("bins", "must be at least 1")
    from dsd.analysis.report import param_columns

    cols = param_columns(r.table)
    if param not in cols:
        raise DsdError(f"unknown parameter {param!r} for {r.path}; known: {', '.join(cols)}")
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


def trend_plot(doc: dict, path: str | Path) -> list[Path]:
    fig, ax = figure()
    x, e = np.asarray(doc["x"]), np.asarray(doc["error"])
    lo, med, hi = doc["good_range"]
    ax.axvspan(lo, hi, color="#2ca02c", alpha=0.15, linewidth=0, label="95% good range of the best")
    ax.axvline(med, color="#2ca02c", linewidth=1)
    ax.scatter(x, e, s=10, alpha=0.6, color=COLORS[0], label="models")
    centers = [(b["from"] + b["to"]) / 2 for b in doc["bins"]]
    ax.plot(centers, [b["median"] for b in doc["bins"]], "o-", color=COLORS[1], label="binned median")
    if x.min() > 0 and x.max() / x.min() > 20:
        ax.set_xscale("log")
    ax.set(xlabel=doc["param"], ylabel="error (%)", title=f"{doc['run']}: error vs {doc['param']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)
