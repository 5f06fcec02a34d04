"""Refinement steps on a finished run: quantized linear fits of its best models, a new
space that covers them, and error trends against one parameter."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsd import tomlw
from dsd.analysis.fit import MEASURES, Fit, block_widths, fit_widths
from dsd.analysis.plots import COLORS, figure, plain_log_axis, save
from dsd.analysis.runs import RunErrors
from dsd.data.recipe_dims import drawn_fields
from dsd.errors import DsdError, ParamError
from dsd.space import spec as spaces
from dsd.store.run import Run


def fit_top(r: RunErrors, top: int, measure: str = "abs") -> list[tuple[dict, Fit]]:
    """The `top` lowest-error models of the run with their quantized linear fits."""
    if top < 1:
        raise ParamError("top", "must be at least 1")
    if measure not in MEASURES:
        raise ParamError("e_fit", f"must be one of {', '.join(MEASURES)}")
    if r.table.empty:
        raise DsdError(f"{r.path} has no trained models to fit; run `dsd train-batch` first")
    best = r.table.sort_values("error").head(top)
    return [(row, fit_widths(block_widths(row["ds"], row["ws"]), measure))
            for row in best.to_dict("records")]


def fit_rows(fits: list[tuple[dict, Fit]]) -> list[dict]:
    return [{"model_id": int(row["model_id"]), "error": float(row["error"]), "d": f.depth,
             "w0": f.w0, "wa": round(f.wa, 3), "wm": round(f.wm, 4), "e_fit": f.e_fit,
             "widths": [int(x) for x in row["ws"]], "depths": [int(x) for x in row["ds"]]}
            for row, f in fits]


def fit_run(path: str | Path, top: int = 20, metric: str = "error_min", failed: str = "as-chance",
            measure: str = "abs", plot: str | None = None, plot_efit: str | None = None,
            to_space: str | None = None) -> dict:
    """`dsd fit`: the quantized linear fits of a run's best models, their median e_fit, and
    the plots and RegNet space asked for, as one JSON-ready document."""
    from dsd.analysis.runs import run_errors

    r = run_errors(path, metric, failed)
    r.table = r.table[r.table.status == "ok"]  # diverged models have no error to learn from
    fits = fit_top(r, top, measure)
    rows = fit_rows(fits)
    doc = {"run": str(r.path), "name": r.name, "metric": metric, "e_fit_measure": measure,
           "models": rows, "e_fit_median": float(np.median([x["e_fit"] for x in rows]))}
    if plot_efit:
        doc["plot_efit"] = [str(p) for p in efit_plot(r, plot_efit, measure)]
    if plot:
        title = f"{r.name}: best models and their quantized linear fits"
        doc["plot"] = [str(p) for p in fit_plot(fits, plot, title)]
    if to_space:
        doc["space"] = str(write_space(space_from_fits(fits, r, Path(to_space).stem), to_space))
    return doc


def fit_plot(fits: list[tuple[dict, Fit]], path: str | Path, title: str) -> list[Path]:
    """Per-block width against block index with the fit, as the paper's Fig. 8."""
    return save(fit_figure(fits, title), path)


def fit_figure(fits: list[tuple[dict, Fit]], title: str):
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
        plain_log_axis(ax, "y", base=2)
        ax.set_title(f"id {row['model_id']}: err {row['error']:.1f}%, e_fit {f.e_fit:.3f}", fontsize=8)
        ax.set_xlabel("block index j", fontsize=8)
        ax.tick_params(labelsize=7, which="both")
        ax.legend(fontsize=6, loc="upper left")
        if i % cols == 0:
            ax.set_ylabel("width", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return fig


def space_from_fits(fits: list[tuple[dict, Fit]], r: RunErrors, name: str) -> dict:
    """A RegNet space whose ranges cover the fitted parameters of the given models."""
    ds = [f.depth for _, f in fits]
    w0 = [f.w0 for _, f in fits]
    wa = [f.wa for _, f in fits]
    wm = [f.wm for _, f in fits]
    gs = sorted({int(max(row["gs"])) for row, _ in fits})
    bs = sorted({float(row["bs"][0]) for row, _ in fits})
    block = fits[0][0]["block"]
    manifest = Run(r.path).manifest()
    space = manifest.space_table()
    # A RegNet space has one stage count, activation, stem, stride pattern...: where the run
    # drew them per network, the space takes the one most of the fitted models have.
    stages, note = _most_common([len(row["ds"]) for row, _ in fits], "stages")
    table = {
        "name": name,
        "description": "",
        "generator": "regnet", "block": block,
        "stages": stages,
        "stem_width": int(space.get("stem_width", 32)),
    }
    # The network's other fixed choices carry over (RegNet widths, the same kind of network).
    table.update({k: space[k] for k in ("stem", "strides", "kernels", "act", "se_ratio", "head_width")
                  if k in space})
    notes = [note]
    for col, key, what in DRAWN_PER_NETWORK:  # drawn by the run: the fits' most common one
        v = fits[0][0].get(col)
        if v is None or (isinstance(v, float) and v != v):
            continue
        as_key = (lambda x: tuple(int(e) for e in x)) if _is_list(v) else (lambda x: x)
        top, n = _most_common([as_key(row[col]) for row, _ in fits], what)
        table[key] = list(top) if isinstance(top, tuple) else (
            top.item() if isinstance(top, np.generic) else top)
        notes.append(n)
    table.update({k: table[k][:stages] for k in ("strides", "kernels") if k in table})
    table["description"] = (f"fitted to the {len(fits)} best models of {r.path} by `dsd fit`"
                            + "".join(notes))
    if manifest.window("flops"):
        table["flops"] = manifest.flops
    lo_a, hi_a = max(0.1, np.floor(min(wa) * 10) / 10), max(0.2, np.ceil(max(wa) * 10) / 10)
    lo_m, hi_m = np.floor(min(wm) * 1000) / 1000, np.ceil(max(wm) * 1000) / 1000
    table["params"] = {
        "depth": {"dist": "uniform", "low": min(ds), "high": max(ds), "q": 1},
        "w0": {"dist": "log_uniform", "low": min(w0), "high": max(w0), "q": 8},
        # A fitted wa below 0.1 (0: constant widths) lies outside any log-uniform range
        # starting at 0.1, so such fits get a uniform range from 0 that covers them.
        "wa": ({"dist": "log_uniform", "low": float(lo_a), "high": float(max(hi_a, lo_a)), "q": 0.1}
               if min(wa) >= 0.1 else {"dist": "uniform", "low": 0.0, "high": float(hi_a), "q": 0.1}),
        "wm": {"dist": "log_uniform", "low": float(max(lo_m, 1.001)), "high": float(max(hi_m, lo_m, 1.002)),
               "q": 0.001},
        "g": {"dist": "choice", "values": gs},
        "b": {"dist": "choice", "values": bs},
    }
    # Recipe fields the run drew per model stay drawn as they were: the fits are of widths.
    table["params"].update({k: space["params"][k] for k in drawn_fields(space)})
    return table


# Columns a run draws per network, the space key they become, and their name in the note.
DRAWN_PER_NETWORK = (("act", "act", "activation"), ("stem", "stem", "stem"), ("ss", "strides", "strides"),
                     ("ks", "kernels", "kernels"), ("se_ratio", "se_ratio", "SE ratio"),
                     ("stem_w", "stem_width", "stem width"))


def _most_common(values: list, what: str) -> tuple:
    """The value most models have (the best one's on a tie), and a note when they differ."""
    top = max(dict.fromkeys(values), key=values.count)
    shown = list(top) if isinstance(top, tuple) else top
    note = "" if len(set(values)) == 1 else (
        f"; {values.count(top)} of them have {what} {shown}, this space's")
    return top, note


def _is_list(v) -> bool:
    return v is not None and not isinstance(v, (float, str))


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


def efit_plot(r: RunErrors, path: str | Path, measure: str = "abs") -> list[Path]:
    """e_fit against error for every model of the run (RegNet paper, Fig. 9 left)."""
    if r.table.empty:
        raise DsdError(f"{r.path} has no trained models; run `dsd train-batch` first")
    rows = r.table.to_dict("records")
    fits = [fit_widths(block_widths(x["ds"], x["ws"]), measure).e_fit for x in rows]
    err = [float(x["error"]) for x in rows]
    fig, ax = figure()
    ax.scatter(fits, err, s=12, alpha=0.6, color=COLORS[0], label=f"{r.name} (n={len(rows)})")
    from scipy import stats

    rho = float(stats.spearmanr(fits, err).statistic)
    what = "mean |log-ratio|" if measure == "abs" else "mean squared log-ratio"
    ax.set(xlabel=f"e_fit ({what} of the widths to their quantized linear fit)",
           ylabel="error (%)", title=f"{r.name}: are good models closer to a RegNet?\n"
           f"(Spearman rho {rho:.2f})")
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)
