"""`dsd report`: one self-contained HTML file (inline SVG plots, no network).

Sections: the EDF comparison with bands; error against every sampled parameter and
against flops/params/acts with pycls's good-range band; per-block widths of the best and
worst models; how the ranking after epoch k agrees with the final one; manifests, recipes.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from dsd.analysis import edf as E
from dsd.analysis.comparison import Comparison
from dsd.analysis.plots import COLORS, edf_figure, figure, inch_margins, plain_linear_axis, plain_log_axis
from dsd.analysis.runs import Options, RunErrors, compare, run_errors
from dsd.data.recipe_dims import DRAWABLE, drawn_fields, log_scaled
from dsd.errors import ParamError
from dsd.model import params
from dsd.store.manifest import Manifest
from dsd.store.recipe_file import read_for_run
from dsd.store.results import read_results
from dsd.store.run import Run

SECTIONS = ("EDF comparison", "Error against parameters", "Best and worst models",
            "Ranking across epochs", "Training curves", "Models", "Runs")
SMALL_N = 30  # below this, the report says what the bands do and do not allow
STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}pre{background:#f6f6f6;padding:1em;overflow:auto}
.fig svg{max-width:100%;height:auto}h2{border-bottom:1px solid #ddd}"""

RASTER_AT = 2000     # scatter plots with more points embed them as one image
SCATTER = 5000       # points drawn per scatter plot
CURVES = 300         # training curves drawn per run
TABLE_ROWS = 500     # models listed per run


def param_columns(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every sampled parameter as a column: per-stage values unrolled (d1, w1, ...)."""
    out: dict[str, np.ndarray] = {}
    for col, short in ((p.list_col, p.name) for p in params.PARAMS if p.list_col):  # ds, ws, bs, ...
        if col not in table or table[col].isna().any():  # es, ks: only where drawn
            continue
        stages = _per_stage(table[col])
        if stages.size and np.all((stages == stages[:, :1]) | np.isnan(stages)):
            out[short] = stages[:, 0]  # shared across stages: one column
            continue
        for i in range(stages.shape[1]):
            out[f"{short}{i + 1}"] = stages[:, i]  # NaN for networks without stage i + 1
    out["depth"] = np.nansum(_per_stage(table["ds"]), axis=1)  # total blocks: RegNet's d too
    for k in ("w0", "wa", "wm", "g", "b", "e", "k", "s", "stages", "groups"):
        if k in table and k not in out:
            out[k] = table[k].to_numpy(dtype=float)
    for k in DRAWABLE:  # recipe fields the space draws per model
        if k in table:
            out[k] = table[k].to_numpy(dtype=float)
    for k in ("flops", "params", "acts"):
        out[k] = table[k].to_numpy(dtype=float)
    return out


def _drawn(manifest: Manifest) -> str:
    """What a run's recipe line adds when its space draws fields per model (their base
    values in train.toml then train no model)."""
    names = drawn_fields(manifest.space)
    return f"; drawn per model: {', '.join(names)}" if names else ""


def _per_stage(col: pd.Series) -> np.ndarray:
    """A list column as a float [models, stages] array, NaN past a network's own stages."""
    import pyarrow as pa

    from dsd.store.run import pad_lists

    if not len(col):
        return np.zeros((0, 0))
    return pad_lists(pa.array(list(col)), np.nan).astype(np.float64)


def _svg(fig, layout: bool = True) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    if layout:
        fig.tight_layout()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE (it names a URL)


def _params_figure(r: RunErrors) -> tuple[str, list[dict]]:
    fig, rows = params_grid(r)
    return _svg(fig, layout=False), rows


def params_grid(r: RunErrors):
    """Error against every parameter that varies, one panel each; returns (figure, the good
    range of each parameter as rows)."""
    from matplotlib.ticker import MaxNLocator, NullLocator

    cols = param_columns(r.table)
    err = r.table.error.to_numpy(dtype=float)
    # Above SCATTER points, a seeded random subset is drawn (the good range uses every model).
    best = E.best_probabilities(err)
    shown = np.arange(len(err)) if len(err) <= SCATTER else np.sort(
        np.random.default_rng(0).choice(len(err), SCATTER, replace=False))
    ncols = 4
    rows = []
    cols = {k: v for k, v in cols.items() if np.unique(v).size > 1}  # constants say nothing
    n = len(cols)
    nrows = int(np.ceil(n / ncols))
    fig, _ = figure(12, 2.6 * max(nrows, 1))
    fig.clf()
    for i, (name, vals) in enumerate(cols.items()):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        has = ~np.isnan(vals)  # a stage only some networks have (a drawn stage count)
        lo, med, hi = (E.good_range(vals, err, best=best) if has.all()
                       else E.good_range(vals[has], err[has]))
        ax.axvspan(lo, hi, color="#2ca02c", alpha=0.15, linewidth=0)
        ax.axvline(med, color="#2ca02c", linewidth=1)
        # Many points become one embedded image: the file stays small, the axes stay vector.
        ax.scatter(vals[shown], err[shown], s=8 if len(shown) < 2000 else 2, alpha=0.6,
                   color="#1f77b4", rasterized=len(shown) > RASTER_AT, linewidths=0)
        if np.nanmin(vals) > 0 and (log_scaled(name) or np.nanmax(vals) / np.nanmin(vals) > 10):
            plain_log_axis(ax, "x")
            ax.xaxis.set_minor_locator(NullLocator())  # minor labels collide here; unlabelled
            # marks would cost a fifth of the figure's drawing time
        else:
            ax.xaxis.set_major_locator(MaxNLocator(4))  # few ticks: long numbers do not overlap
            plain_linear_axis(ax, "x")
        ax.set_xlabel(name if has.all() else f"{name} ({has.sum():,} networks have it)", fontsize=8)
        ax.tick_params(labelsize=7)
        if i % ncols == 0:
            ax.set_ylabel("error (%)", fontsize=8)
        rows.append({"parameter": name, "good lo": lo, "good median": med, "good hi": hi})
    drawn = f" ({len(shown):,} of {len(err):,} models drawn at random)" if len(shown) < len(err) else ""
    fig.suptitle(f"{r.name}: error vs parameter{drawn}. Green band: pycls's good range, where the best "
                 "model of a random 25% lands (2.5..97.5%, exact); green line: its median, "
                 "not the best model", fontsize=9)
    inch_margins(fig, left=0.55, right=0.12, top=0.45, bottom=0.45, wspace=0.35, hspace=0.55)
    return fig, rows


def _widths_figure(r: RunErrors) -> str:
    fig, ax = figure(6.4, 3.6)
    t = r.table.sort_values("error")
    k = min(5, len(t) // 2)  # at small n the best and worst five would share models
    for label, part, style in (("best", t.head(k), "-"), ("worst", t.tail(k), "--")):
        for j, row in enumerate(part.itertuples()):
            blocks = np.repeat(list(row.ws), list(row.ds))
            ax.step(np.arange(len(blocks)), blocks, where="post", linestyle=style,
                    color=COLORS[0] if label == "best" else COLORS[1], alpha=0.8,
                    label=f"{label} ({row.error:.1f}%)" if j == 0 else None)
    plain_log_axis(ax, "y", base=2)
    ax.set(xlabel="block index", ylabel="width", title=f"{r.name}: per-block widths, "
           f"{k} best (solid) and {k} worst (dashed)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)
    return _svg(fig)


def rank_agreement(r: RunErrors) -> list[float]:
    """Spearman's rho between the error after epoch k and after the last epoch, per k."""
    from scipy import stats

    curves = [c for c in r.table.curve if len(c)]
    if len(curves) < 3:
        return []
    epochs = min(len(c) for c in curves)
    arr = np.array([c[:epochs] for c in curves])
    final = np.array([c[-1] for c in curves])
    return [float(stats.spearmanr(arr[:, k], final).statistic) for k in range(epochs)]


def _rank_figure(runs: list[RunErrors]) -> tuple[str, dict[str, list[float]]]:
    fig, ax = figure(6.4, 3.4)
    rhos = {}
    for i, r in enumerate(runs):
        rho = rank_agreement(r)
        rhos[r.name] = rho
        if rho:
            ax.plot(np.arange(1, len(rho) + 1), rho, "o-", color=COLORS[i % len(COLORS)], label=r.name)
    ax.set(xlabel="epoch k", ylabel="Spearman rho with final error", ylim=(-0.1, 1.05),
           title="does the ranking after epoch k agree with the final one?")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _svg(fig), rhos


def _curves_figure(runs: list[RunErrors]) -> str:
    """Error after each epoch, one thin line per model (CURVES at most, drawn at random),
    one panel per run; above CURVES models, the 10..90% band of all of them too."""
    from matplotlib.collections import LineCollection

    fig, _ = figure(4.2 * len(runs), 3.2)
    fig.clf()
    for i, r in enumerate(runs):
        ax = fig.add_subplot(1, len(runs), i + 1)
        curves = [np.asarray(c, float) for c in r.table.curve if len(c)]
        color = COLORS[i % len(COLORS)]
        shown = curves
        if len(curves) > CURVES:
            pick = np.random.default_rng(0).choice(len(curves), CURVES, replace=False)
            shown = [curves[j] for j in np.sort(pick)]
            epochs = min(len(c) for c in curves)
            arr = np.array([c[:epochs] for c in curves])
            lo, hi = np.percentile(arr, [10, 90], axis=0)
            x = np.arange(1, epochs + 1)
            ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0,
                            label=f"10..90% of all {len(curves):,}")
            ax.legend(fontsize=7)
        ax.add_collection(LineCollection([np.column_stack([np.arange(1, len(c) + 1), c]) for c in shown],
                                         colors=color, alpha=0.35, linewidths=0.8))
        ax.autoscale_view()
        drawn = f"{len(shown):,} of {len(curves):,} drawn at random" if len(shown) < len(curves) \
            else f"{len(r.table)} models"
        ax.set(xlabel="epoch", title=f"{r.name} ({drawn})")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.set_ylabel("held-out error (%)")
    fig.suptitle("training curves: the error after each epoch, one line per model", fontsize=9)
    return _svg(fig)


def _models_table(r: RunErrors) -> str:
    t = r.table.sort_values("error")
    more = len(t) - TABLE_ROWS
    t = t.head(TABLE_ROWS)
    rows = [{"id": int(m.model_id), "ds": "-".join(map(str, m.ds)), "ws": "-".join(map(str, m.ws)),
             "bs": "-".join(f"{b:g}" for b in m.bs), "gs": "-".join(map(str, m.gs)),
             "MF": m.flops / 1e6, "params (K)": m.params / 1e3, "error": m.error, "status": m.status,
             "curve": " ".join(f"{e:.1f}" for e in m.curve)} for m in t.itertuples()]
    extra = (f" (the best {TABLE_ROWS:,} of {len(r.table):,}; every model: "
             f"<code>dsd.results('{html.escape(str(r.path))}')</code>)") if more > 0 else ""
    return (f"<details open><summary>{html.escape(r.name)}: {len(rows)} models, best first{extra}"
            f"</summary>{_table(rows)}</details>")


def _header(runs: list[RunErrors], cmp: Comparison) -> str:
    """What was compared under which conditions, at what cost, and when."""
    import datetime as dt

    from dsd.version import __version__

    rows = []
    for r in runs:
        run = Run(r.path)
        m, recipe = run.manifest(), read_for_run(run)
        res = read_results(run.results_dir, columns=("device", "seconds")).frame()
        cost = {}
        if not res.empty:
            for device, sec in res.groupby(res.device.fillna("?")).seconds.sum().items():
                kind = "GPU" if str(device).startswith("cuda") else "CPU"
                cost[kind] = cost.get(kind, 0.0) + float(sec) / 3600
        rows.append({"run": r.name, "data set": m.dataset or (recipe.dataset if recipe else "?"),
                     "models": m.n if m.n is not None else len(r.table),
                     "budget": ", ".join(f"{k} {m.window(k)}" for k in ("flops", "params", "acts")
                                         if m.window(k)) or "none",
                     "recipe": (f"{recipe.epochs} epochs, lr {recipe.lr:g}, batch {recipe.batch_size}, "
                                f"train {recipe.train_subset or 'all'}, test {recipe.test_subset or 'all'}"
                                + _drawn(m)) if recipe else "untrained",
                     "compute": ", ".join(f"{v:.2f} {k}-h" for k, v in cost.items()) or "none"})
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = _table(rows) + f"<p>Generated {when} by dsd {__version__}; compute is the sum of each " \
        "result's training time (worker-hours, one device share each).</p>"
    small = [r.name for r in cmp.runs if r.n < SMALL_N]
    if small:
        out += (f"<p style='color:#b00'><b>Few models</b> ({', '.join(map(html.escape, small))}: "
                f"under {SMALL_N}): the bands are wide, so only a large difference between EDFs "
                "is detected; medians and best models are rough. <code>dsd plan</code> says how "
                "many models a given difference needs.</p>")
    return out


def _normalised_section(paths: list[str], opt: Options) -> str:
    """The flops-normalised EDFs when the runs' complexities differ (ICCV 2019)."""
    from dataclasses import replace

    from dsd.errors import DsdError

    if len(paths) < 2 or opt.normalize != "none":
        return ""
    for bins in (5, 3, 2):
        try:
            cmp = compare(paths, replace(opt, normalize="flops", bins=bins, permutations=500))
        except DsdError:
            continue
        pairs = _table(cmp.pair_rows())
        return ("<h3>Normalised by flops</h3><p>Each model weighted so every flops bin counts the "
                f"same in every run ({bins} bins on the runs' shared range, 500 permutations): "
                "differences in the runs' complexity spread no longer count. Exploratory: the bins "
                "and range are chosen to fit these runs, so this is no verdict.</p>"
                f"<div class='fig'>{_svg(edf_figure(cmp))}</div>"
                + pairs)
    return "<p>Normalised EDFs: not computable (some flops bin holds no model of a run).</p>"


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    """Plain numbers in tables: no scientific notation (a p-value below 0.0001 reads as
    such); integers with separators."""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        v = float(v)
        if v != v:
            return ""
        if v != 0 and abs(v) < 1e-4:
            return "&lt; 0.0001" if v > 0 else "&gt; -0.0001"
        return f"{v:,.4f}".rstrip("0").rstrip(".") if abs(v) < 1 else f"{v:,.2f}"
    return html.escape(str(v))


def _fit_section(runs: list[RunErrors], top: int) -> str:
    """The refinement step of the RegNet paper on each run: its best models' quantized
    linear fits (as `dsd fit RUN --top K`)."""
    from dsd.analysis.refine import fit_figure, fit_rows, fit_top

    parts = [f"<p>The {top} best models of each run, each fitted by the quantized linear rule "
             "(d, w0, wa, wm); e_fit is the mean |log-ratio| between the model's per-block "
             "widths and the fit's (0: the model is a RegNet).</p>"]
    for r in runs:
        fits = fit_top(r, top)
        rows = [{k: v for k, v in row.items() if k not in ("widths", "depths")} for row in fit_rows(fits)]
        parts += [f"<h3>{html.escape(r.name)}</h3>", _table(rows),
                  f"<div class='fig'>{_svg(fit_figure(fits, f'{r.name}: best models and their fits'))}</div>"]
    return "".join(parts)


def build_report(paths: list[str], out: str | Path, opt: Options | None = None,
                 preface: str = "", fit_top: int = 0, normalised: bool = True,
                 cmp: Comparison | None = None) -> Path:
    """The HTML report of some runs. `normalised=False` leaves out the exploratory
    flops-normalised section (a study's own preface carries its declared analysis). `cmp`:
    the runs' comparison under `opt`, when the caller has it already."""
    if fit_top < 0:
        raise ParamError("fit_top", "must be 0 (no fit section) or more")
    opt = opt or Options()  # the CLI's resamples: the report's bands equal `edf compare`'s
    cmp = cmp or compare(paths, opt)
    runs = [run_errors(p, opt.metric, opt.failed) for p in paths]
    parts = [f"<h1>dsd report: {html.escape(', '.join(r.name for r in cmp.runs))}</h1>",
             f"<p>metric {cmp.metric} (best epoch's error is optimistic by design); diverged "
             f"models at chance error ({opt.failed}); failed/oom models left out.</p>", preface]
    if cmp.differences:
        items = "".join(f"<li>{html.escape(d)}</li>" for d in cmp.differences)
        parts.append("<p style='color:#b00'><b>Warning: the runs were trained under different "
                     f"conditions</b>; the comparison measures these too:</p><ul>{items}</ul>")
    warnings = [f"{r.name}: {w}" for r in cmp.runs for w in r.warnings]
    if warnings:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
        parts.append(f"<p style='color:#b00'><b>Warnings</b></p><ul>{items}</ul>")
    parts.insert(1, _header(runs, cmp))
    parts.append(f"<h2>{SECTIONS[0]}</h2>")
    parts.append(f"<div class='fig'>{_svg(edf_figure(cmp))}</div>")
    parts.append(_table(cmp.run_rows()))  # the same tables as `edf compare`
    parts.append(_table(cmp.pair_rows()))
    if normalised:
        parts.append(_normalised_section(paths, opt))
    parts.append(f"<h2>{SECTIONS[1]}</h2>")
    for r in runs:
        svg, rows = _params_figure(r)
        parts += [f"<h3>{html.escape(r.name)}</h3><div class='fig'>{svg}</div>", _table(rows)]
    parts.append(f"<h2>{SECTIONS[2]}</h2>")
    parts += [f"<div class='fig'>{_widths_figure(r)}</div>" for r in runs]
    parts.append(f"<h2>{SECTIONS[3]}</h2>")
    svg, rhos = _rank_figure(runs)
    parts += [f"<div class='fig'>{svg}</div>",
              _table([{"run": k, **{f"epoch {i + 1}": v for i, v in enumerate(rho)}}
                      for k, rho in rhos.items()])]
    if fit_top:
        parts.append(f"<h2>Quantized linear fits</h2>{_fit_section(runs, fit_top)}")
    parts.append(f"<h2>{SECTIONS[4]}</h2><div class='fig'>{_curves_figure(runs)}</div>")
    parts.append(f"<h2>{SECTIONS[5]}</h2>")
    parts += [_models_table(r) for r in runs]
    parts.append(f"<h2>{SECTIONS[6]}</h2>")
    for r in runs:
        path = Run(r.path).manifest_path
        manifest = path.read_text() if path.exists() else "(none)"
        recipe = read_for_run(Run(r.path))
        parts.append(f"<h3>{html.escape(r.name)}</h3><pre>{html.escape(manifest)}</pre>"
                     f"<pre>{html.escape(json.dumps(recipe.to_dict() if recipe else {}, indent=2))}</pre>")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>dsd report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out
