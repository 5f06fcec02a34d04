"""`dsd fit RUN` and `dsd trend RUN --param P`: from a finished run to the next space."""

from __future__ import annotations

import typer
from rich.table import Table

from dsd.cli.app import app, console, print_json
from dsd.cli.edf_cmd import FAILED, METRIC


@app.command("fit")
def fit_cmd(
    run: str = typer.Argument(..., help="A trained run of any AnyNet-family space."),
    top: int = typer.Option(20, "--top", help="Fit this many of the best models."),
    metric: str = METRIC, failed: str = FAILED,
    plot: str = typer.Option(None, "--plot", help="Per-block widths with their fits (.png/.svg)."),
    to_space: str = typer.Option(None, "--to-space", help="Write a RegNet space file whose "
                                 "ranges cover the fitted parameters."),
    e_fit_measure: str = typer.Option("abs", "--e-fit", help="abs: mean |log-ratio| (the paper's "
                                      "scale); squared: mean squared log-ratio."),
    plot_efit: str = typer.Option(None, "--plot-efit", help="e_fit against error for every model "
                                  "of the run (the paper's Fig. 9 left), .png/.svg."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
) -> None:
    """Quantized linear fit (d, w0, wa, wm) of the best models' per-block widths, with e_fit.

    e_fit = mean over blocks of |log w_j - log w'_j|: the mean absolute log-ratio between
    the model's widths and the fit's quantized widths (0 for a RegNet); the paper calls it
    the mean log-ratio, whose signed terms would cancel. The search is global: exact in wa,
    every multiple of 8 for w0, a refined grid over wm (README, Refinement).

    Example: dsd fit runs/demo/anynetx_a --top 8 --plot runs/demo/fit.png --to-space runs/demo/refined.toml
    """
    from dsd.analysis.refine import fit_run

    doc = fit_run(run, top, metric, failed, e_fit_measure, plot, plot_efit, to_space)
    rows = doc["models"]
    if as_json:
        print_json(doc)
        return
    t = Table(title=f"quantized linear fits of the {len(rows)} best models of {doc['name']} ({metric})")
    for col in ("id", "error", "depths", "widths", "d", "w0", "wa", "wm", "e_fit"):
        t.add_column(col, justify="right")
    for x in rows:
        t.add_row(str(x["model_id"]), f"{x['error']:.2f}", str(x["depths"]), str(x["widths"]),
                  str(x["d"]), str(x["w0"]), f"{x['wa']:.2f}", f"{x['wm']:.3f}", f"{x['e_fit']:.4f}")
    console.print(t)
    what = "mean |log-ratio|" if e_fit_measure == "abs" else "mean squared log-ratio"
    console.print(f"median e_fit {doc['e_fit_median']:.4f} ({what} of widths; 0 = a RegNet)")
    for p in doc.get("plot", []) + doc.get("plot_efit", []):
        console.print(f"plot: {p}")
    if "space" in doc:
        console.print(f"space: {doc['space']} (sample it with `dsd sample --space {doc['space']}`)")


@app.command("trend")
def trend_cmd(
    runs: list[str] = typer.Argument(..., help="One or more trained runs (one figure)."),
    param: list[str] = typer.Option(..., "--param", help="A sampled parameter (d1, w4, wm, ...), "
                                    "depth (total blocks), flops/params/acts, or `regnet` for depth, w0, "
                                    "wa, wm, g, b, flops, params, acts. Repeatable."),
    bins: int = typer.Option(5, "--bins", help="Bins of the parameter for the table."),
    metric: str = METRIC, failed: str = FAILED,
    plot: str = typer.Option(None, "--plot", help="Write the plot here (.png/.svg)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
) -> None:
    """Error against parameters for one or more runs, with each run's good range of the best.

    Example: dsd trend runs/demo/anynetx_a runs/demo/regnetx --param w4 --plot runs/demo/trend.png

    Example: dsd trend studies/fashion-mnist/regnetx --param regnet --plot trend-regnet.png
    """
    from dsd.analysis.trends import trend_runs

    doc = trend_runs(runs, param, bins, metric, failed, plot)
    if as_json:
        print_json(doc)
        return
    for t in doc["trends"]:
        tab = Table(title=f"{t['run']}: error ({metric}) against {t['param']}")
        for col in (t["param"], "n", "min", "median", "mean"):
            tab.add_column(col, justify="right")
        for b in t["bins"]:
            rng = f"{b['from']:.4g}" if b["from"] == b["to"] else f"{b['from']:.4g}..{b['to']:.4g}"
            tab.add_row(rng, str(b["n"]), f"{b['min']:.2f}", f"{b['median']:.2f}", f"{b['mean']:.2f}")
        console.print(tab)
        lo, med, hi = t["good_range"]
        console.print(f"good range of {t['param']} for the best model (of a random 25%, exact): "
                      f"{lo:.4g}..{hi:.4g}, median {med:.4g}")
    for p in doc.get("plot", []):
        console.print(f"plot: {p}")
