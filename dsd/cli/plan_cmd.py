"""`dsd plan RUN_A RUN_B`: how many models per space a comparison needs."""

from __future__ import annotations

import typer

from dsd.cli.app import app, console, print_json
from dsd.cli.edf_cmd import FAILED, METRIC, SEED


@app.command("plan")
def plan_cmd(
    run_a: str = typer.Argument(..., help="Pilot run of the first space."),
    run_b: str = typer.Argument(..., help="Pilot run of the second space."),
    power: float = typer.Option(0.8, "--power", help="Wanted power: the chance to detect the difference."),
    alpha: float = typer.Option(0.05, "--alpha", help="Level of the KS test."),
    reps: int = typer.Option(400, "--reps", help="Simulated studies per n."),
    n_max: int = typer.Option(20_000, "--n-max", help="Give up above this n per space."),
    metric: str = METRIC, failed: str = FAILED, seed: int = SEED,
    plot: str = typer.Option(None, "--plot", help="Power against n, and the n-vs-D curve (.png/.svg)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
) -> None:
    """The n per space at which a KS test detects the pilots' difference with the given power.

    Method: each pilot run's EDF stands for its space's error distribution; for a
    candidate n, draw n errors from each (with replacement), run scipy's two-sample KS
    test (the one `dsd edf compare` reports for plain EDFs) at --alpha, and repeat --reps
    times: the share that rejects is the power at n. n doubles until the power reaches
    --power, then a bisection narrows it to about 2%. Beside it, the ICCV 2019 Fig. 7
    curve: the KS D between two samples of n models of one space (each pilot resampled
    against itself), i.e. the D chance alone gives at each n. The pilots' own noise is not
    propagated: with small pilots, treat n as an estimate.

    Example: dsd plan runs/demo/anynetx_a runs/demo/regnetx --power 0.8 --plot runs/demo/plan.png
    """
    from dsd.analysis.plan import plan, plan_plot, validate
    from dsd.analysis.runs import Options, compare

    validate(power, alpha, reps, n_max)
    doc0 = compare([run_a, run_b], Options(metric=metric, failed=failed, bootstrap=10,
                                           min_of_k_bootstrap=10))
    a, b = (_sample(r) for r in doc0["runs"])
    doc = plan(a, b, power, alpha, reps, n_max, seed)
    doc["runs"] = [r["name"] for r in doc0["runs"]]
    if plot:
        doc["plot"] = [str(p) for p in plan_plot(doc, tuple(doc["runs"]), plot)]
    if as_json:
        print_json(doc)
        return
    pilots = f"pilots: {doc['runs'][0]} (n={doc['pilot_n'][0]}) and {doc['runs'][1]} (n={doc['pilot_n'][1]})"
    if doc["n"] is None:
        console.print(f"{pilots}; observed KS D {doc['observed_d']:.3f}. Even {doc['n_max']:,} models "
                      f"per space reach less than {power:.0%} power: the spaces look alike.")
    else:
        console.print(f"{pilots}; observed KS D {doc['observed_d']:.3f}. "
                      f"[bold]{doc['n']} models per space[/] detect it with {power:.0%} power "
                      f"at alpha {alpha} ({reps} simulated studies per n).")
    for p in doc.get("plot", []):
        console.print(f"plot: {p}")


def _sample(run_doc: dict):
    import numpy as np

    from dsd.analysis.edf import Sample

    return Sample(np.asarray(run_doc["errors"]), np.asarray(run_doc["weights"]))
