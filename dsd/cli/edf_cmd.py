"""`dsd edf compare RUN_A RUN_B ...` and `dsd edf show RUN`."""

from __future__ import annotations

import typer
from rich.table import Table

from dsd.analysis.comparison import Comparison
from dsd.analysis.runs import Options, compare
from dsd.cli.app import app, console, err_console, print_json

edf_app = typer.Typer(help="Compare design spaces by their error EDFs.", no_args_is_help=True)
app.add_typer(edf_app, name="edf")

METRIC = typer.Option("error_min", "--metric", help="error_min (best epoch, as the papers; "
                      "optimistic), error_last, error@K (after epoch K), or error_min_ema / "
                      "error_last_ema (the weights' moving average, where a pycls sweep kept one).")
NORMALIZE = typer.Option("none", "--normalize", help="none, flops, params or acts: weight "
                         "models so each complexity bin counts the same (ICCV 2019).")
BINS = typer.Option(10, "--bins", help="Complexity bins when normalising.")
RANGE = typer.Option(None, "--range", help="Complexity range LO:HI (default: the runs' shared range).")
BOOT = typer.Option(10_000, "--bootstrap", help="Bootstrap resamples for the bands.")
CI = typer.Option(0.95, "--ci", help="Confidence level of the bands.")
SEED = typer.Option(0, "--seed", help="Seed of the bootstrap and permutations.")
FAILED = typer.Option("as-chance", "--failed", help="Diverged models: as-chance (count at "
                      "chance error) or drop.")
PERMS = typer.Option(2_000, "--permutations", help="Permutations for the normalised KS p-value.")
PLOT = typer.Option(None, "--plot", help="Write the EDF plot here (.png or .svg; both are written).")
JSON = typer.Option(False, "--json", help="Print one JSON document with every number.")
STRICT = typer.Option(False, "--strict", help="Refuse runs trained under different recipes, "
                      "data sets or shapes (default: compare them with a warning).")
MINK = typer.Option(None, "--plot-min-of-k", help="Write the random-search efficiency plot here: "
                    "the expected best error of k models drawn from each space, k = 1, 2, 4, ..., n "
                    "(exact, from the EDF's order statistics), with a bootstrap band.")


@edf_app.command("compare")
def compare_cmd(
    runs: list[str] = typer.Argument(..., help="Two or more run directories (one with --split)."),
    split: list[str] = typer.Option(None, "--split", help="Compare the models of one run that "
                                    "satisfy EXPR with those that do not (repeat for several "
                                    "groups). EXPR: names ds ws gs bs d1.. w1.. b g depth w0 wa wm "
                                    "se flops params acts error, and lr wd ... where the space "
                                    "draws them; + - * / < <= == and or not; "
                                    "xs[i], sum() min() max() len() mean() abs(); "
                                    "xs.all_equal() .nondecreasing() .nonincreasing(). "
                                    "E.g. 'wm >= 2.5', 'bs.all_equal()', 'sum(ds) > 20'."),
    metric: str = METRIC, normalize: str = NORMALIZE, bins: int = BINS, range_: str = RANGE,
    bootstrap: int = BOOT, ci: float = CI, seed: int = SEED, failed: str = FAILED,
    permutations: int = PERMS, plot: str = PLOT, plot_min_of_k: str = MINK, as_json: bool = JSON,
    strict: bool = STRICT,
) -> None:
    """EDFs with bootstrap and DKW bands, best-model good ranges, and KS tests for each pair.

    Example: dsd edf compare runs/demo/anynetx_a runs/demo/regnetx --plot runs/demo/edf.png

    Example: dsd edf compare runs/demo/anynetx_a --split "ws.nondecreasing()"
    """
    from dsd.errors import DsdError

    if len(runs) < 2 and not split:
        raise DsdError("edf compare needs two or more runs, or one run with --split "
                       "(use `dsd edf show RUN` for one run)")
    _emit(runs, Options(metric, normalize, bins, range_, bootstrap, ci, seed, failed, permutations,
                        strict=strict), plot, as_json, split, plot_min_of_k)


@edf_app.command("adjust")
def adjust_cmd(
    run_a: str = typer.Argument(..., help="The first space's run directory (a)."),
    run_b: str = typer.Argument(..., help="The second space's run directory (b)."),
    covariate: list[str] = typer.Option(..., "--covariate", help="A covariate: an expression of a "
                                        "model's columns, as --split takes (repeat for several). "
                                        "E.g. depth, params, '(d3 + d4) / depth'."),
    metric: str = METRIC, failed: str = FAILED,
    flops: str = typer.Option(None, "--flops", help="Only the models inside this flops window LO:HI."),
    ci: float = CI, as_json: bool = JSON,
) -> None:
    """Why two spaces differ: b's effect on error, raw and at equal covariates (OLS, HC2).

    Example: dsd edf adjust studies/fashion-mnist/anynetx_d studies/fashion-mnist/anynetx_e
    --covariate "(d3 + d4) / depth"
    """
    from dsd.analysis.adjust import adjust_runs

    res = adjust_runs(run_a, run_b, covariate, metric, failed, flops, ci)
    if as_json:
        print_json(res.to_json())
        return
    t = Table(title=f"b minus a, points of {metric} ({res.n_a} vs {res.n_b} models; HC2 "
              f"standard errors, {ci:.0%} t intervals)")
    for col in ("term", "estimate", "CI", "t"):
        t.add_column(col, justify="left" if col == "term" else "right")
    rows = [("b - a, raw", res.raw), (f"b - a at equal {', '.join(res.covariates)}", res.adjusted)]
    rows += [(f"per unit of {k}", v) for k, v in res.slopes.items()]
    for name, e in rows:
        t.add_row(name, f"{e.estimate:+.3g}", f"{e.ci[0]:+.3g}..{e.ci[1]:+.3g}", f"{e.t:.2f}")
    console.print(t)
    console.print("Observational: a covariate that takes the effect toward zero may carry the "
                  "difference between the spaces; an experiment that varies it tests that.")


@edf_app.command("show")
def show_cmd(
    run: str = typer.Argument(..., help="A run directory."),
    metric: str = METRIC, normalize: str = NORMALIZE, bins: int = BINS, range_: str = RANGE,
    bootstrap: int = BOOT, ci: float = CI, seed: int = SEED, failed: str = FAILED,
    plot: str = PLOT, plot_min_of_k: str = MINK, as_json: bool = JSON,
) -> None:
    """The EDF of one run, with its bands and best-model good range.

    Example: dsd edf show runs/demo/regnetx --normalize flops --bins 4
    """
    _emit([run], Options(metric, normalize, bins, range_, bootstrap, ci, seed, failed), plot, as_json,
          None, plot_min_of_k)


def _emit(runs: list[str], opt: Options, plot: str | None, as_json: bool,
          splits: list[str] | None = None, plot_min_of_k: str | None = None) -> None:
    cmp = compare(runs, opt, splits)
    paths, doc = [], cmp.to_json()
    if plot:
        from dsd.analysis.plots import edf_plot

        paths = edf_plot(cmp, plot)
        doc["plot"] = [str(p) for p in paths]
    if plot_min_of_k:
        from dsd.analysis.minofk import min_of_k_plot

        mk = min_of_k_plot(cmp, plot_min_of_k)
        doc["plot_min_of_k"] = [str(p) for p in mk]
        paths += mk
    if as_json:
        print_json(doc)
        return
    print_tables(cmp)
    for p in paths:
        console.print(f"plot: {p}")


def _rich(title: str, rows: list[dict[str, str]], numbers_right: bool = False) -> Table:
    t = Table(title=title)
    for i, col in enumerate(rows[0]):
        t.add_column(col, justify="right" if numbers_right and i else "left")
    for row in rows:
        t.add_row(*row.values())
    return t


def print_tables(cmp: Comparison) -> None:
    norm = cmp.normalize
    how = "plain EDF" if norm == "none" else (
        f"normalised by {norm}: {cmp.bins} bins on {cmp.range[0]:.4g}..{cmp.range[1]:.4g}")
    console.print(_rich(f"error EDFs ({cmp.metric}, {how})", cmp.run_rows(), numbers_right=True))
    if cmp.pairs:
        console.print(_rich("two-sample KS tests", cmp.pair_rows()))
    console.print(f"diverged models count at chance error ({cmp.options.failed}); failed/oom models "
                  "are left out. error_min is the best epoch's error, optimistic by design. "
                  f"The {cmp.ci:.0%} band +- covers each whole EDF at once (simultaneous, "
                  "exact KS at n_eff): few models give wide bands. The best's good range is "
                  "pycls's: the best error among a random 25% of the models (exact quantiles).")
    for n in cmp.notes:  # recipe fields drawn per model: on purpose, not a warning
        console.print(f"note: {n}", markup=False, highlight=False, soft_wrap=True)
    for r in cmp.runs:
        for w in r.warnings:
            err_console.print(f"warning ({r.name}): {w}")
    for d in cmp.differences:
        err_console.print(f"warning: the runs were trained under different conditions: {d}; "
                          "the comparison measures that too (--strict refuses)",
                          markup=False, highlight=False, soft_wrap=True)
