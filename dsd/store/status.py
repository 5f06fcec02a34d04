"""The state of a run, read from its files alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsd.store.claims import in_flight
from dsd.store.recipe_file import read_for_run
from dsd.store.results import read_results
from dsd.store.run import Run


def run_status(path: str | Path) -> dict:
    run = path if isinstance(path, Run) else Run(Path(path))
    sampled = run.count()
    res = read_results(run.results_dir, columns=("error_min",))
    final = res.final()
    counts = {k: int((final.status == k).sum()) if not final.empty else 0
              for k in ("ok", "diverged", "failed", "oom")}
    done = set() if final.empty else set(final.model_id.astype(int))
    flying = set(in_flight(run.claims_dir)) - done
    counts["in_flight"] = len(flying)
    # remaining: not started yet (the models in flight are counted apart)
    counts["remaining"] = sampled - len(done) - len(flying)
    errors = {}
    if counts["ok"]:
        e = final[final.status == "ok"].error_min.to_numpy(dtype=float)
        errors = {"min": e.min(), "25%": np.percentile(e, 25), "median": np.median(e),
                  "mean": e.mean(), "75%": np.percentile(e, 75), "max": e.max()}
    recipe = read_for_run(run)
    return {"run": str(run.path), "sampled": sampled, "counts": counts,
            "error_min": {k: float(v) for k, v in errors.items()},
            "dataset": recipe.dataset if recipe else None,
            "epochs": recipe.epochs if recipe else None,
            "corrupt": [(str(p), why) for p, why in res.corrupt],
            "results": {"compacted": res.compacted, "pending_shards": res.pending}}
