"""`dsd plan RUN_A RUN_B`: how many models per space a comparison needs."""

from __future__ import annotations

import typer

from dsd.cli.app import app, console, print_json
from dsd.cli.edf_cmd import FAILED, METRIC, SEED


@app.command("plan")
def plan_cmd(
    run_a: str = typer.Argument(..., help="Pilot run of the first space."),
    run_b: str = typer.Argument(..., help="Pilot run of the second space."),
    d: float = typer.Option(None, "--d", help="The effect to plan for, as a KS distance between "
                            "the spaces (e.g. 0.15)."),
    shift: float = typer.Option(None, "--shift", help="The effect to plan for, as a shift in "
                                "points of error (b - a), read as a D on the pooled pilots."),
    power: float = typer.Option(0.8, "--power", help="Wanted power: the chance to detect the effect."),
    alpha: float = typer.Option(0.05, "--alpha", help="Level of the KS test (for a family of "
                                "comparisons, alpha / comparisons as Holm's strictest step)."),
    boot: int = typer.Option(200, "--boot", help="Bootstrap resamples of the pilots for the interval."),
    metric: str = METRIC, failed: str = FAILED, seed: int = SEED,
    plot: str = typer.Option(None, "--plot", help="Power against n, and the n-vs-D curve (.png/.svg)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
) -> None:
    """Models per space to detect a stated effect, with an interval from the pilots' noise.

    The effect is --d (a KS distance) or --shift (points of error); without either, the
    pilots' own shift (Hodges-Lehmann). n(D) comes from simulated KS tests of a location
    shift; the interval bootstraps the pilots. The D observed between the pilots is shown
    too: it is biased upward and would promise too few models.

    Example: dsd plan runs/demo/anynetx_a runs/demo/regnetx --shift 1.0 --plot runs/demo/plan.png
    """
    from dsd.analysis.plan import plan_runs

    doc = plan_runs(run_a, run_b, power, alpha, d, shift, boot, seed, metric, failed, plot)
    if as_json:
        print_json(doc)
        return
    console.print(_summary(doc, power, alpha))
    for p in doc.get("plot", []):
        console.print(f"plot: {p}")


def _summary(doc: dict, power: float, alpha: float) -> str:
    eff, (na, nb) = doc["effect"], doc["pilot_n"]
    what = {"D": f"a stated D of {eff['d']:.3f}",
            "shift": f"a stated shift of {eff['shift']:+.2f} points (D {eff['d']:.3f} on the pilots)",
            "pilots' shift": f"the pilots' shift of {eff['shift']:+.2f} points (D {eff['d']:.3f})",
            }[eff["kind"]]
    n = f"[bold]{doc['n']} models per space[/]" if doc["n"] else "more models than can be simulated"
    lines = [f"pilots: {doc['runs'][0]} (n={na}) and {doc['runs'][1]} (n={nb}). For {what}, {n} "
             f"detect it with {power:.0%} power at alpha {alpha}."]
    if doc["n_interval"]:
        lo, hi = doc["n_interval"]
        lines.append(f"The pilots' noise puts n between {lo} and {hi if hi else 'unbounded'} "
                     f"({doc['interval']:.0%} of bootstrap resamples of the pilots).")
    lines.append(f"The D observed between the pilots, {doc['observed_d']:.3f}, is biased upward "
                 "(a supremum of noise): planning for it would be optimistic.")
    return "\n".join(lines)

