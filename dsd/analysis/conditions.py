"""Were the runs of a comparison trained under the same conditions?

An EDF comparison is only about the spaces when everything else is equal: the data set,
the input shape and the training recipe. Comparing a 2-epoch run with a 1-epoch run
measures the recipe, not the space. This lists every difference, for warnings (or a
refusal with --strict), read from each run's run.toml and train.toml; a run without a
train.toml (an import) is judged by the recipes its result rows record, and a run whose
models were trained under several recipes (a pycls lr/wd sweep) is flagged on its own.
"""

from __future__ import annotations

import json
from dataclasses import fields

from dsd.analysis.precision import precision_differences
from dsd.data.recipe import Recipe, read_for_run
from dsd.store.results import FINAL, read_results
from dsd.store.run import Run

SHAPE_KEYS = ("dataset", "resolution", "in_channels", "num_classes", "stem_stride")
MIXED = "mixed"  # the value of a recipe key that differs between a run's own models


def differences(runs: list[tuple[str, Run]]) -> list[str]:
    """One line per setting that differs between the named runs, and one per run whose
    models were trained under several recipes (empty: comparable)."""
    recipes = {name: row_recipes(run) for name, run in runs}
    out = _between(runs, recipes) if len(runs) >= 2 else []
    for name, rs in recipes.items():
        if len(rs) > 1:
            out.append(f"recipe differs within {name}: its models were trained under {len(rs)} "
                       f"recipes (varying: {', '.join(varying_keys(rs))})")
    return out + precision_differences(runs)  # bf16 (GPU) against fp32 (CPU), between or within runs


def _between(runs: list[tuple[str, Run]], recipes: dict[str, list[dict]]) -> list[str]:
    settings = {name: _settings(run, recipes[name]) for name, run in runs}
    keys = dict.fromkeys(k for s in settings.values() for k in s)
    out = []
    for key in keys:
        values = {name: s.get(key) for name, s in settings.items()}
        if len({repr(v) for v in values.values()}) > 1:
            shown = ", ".join(f"{v if v is not None else 'unset'} ({n})" for n, v in values.items())
            out.append(f"{key} differs: {shown}")
    untrained = [name for name, run in runs if not run.train_path.exists() and not recipes[name]]
    if untrained and len(untrained) < len(runs):
        out.append(f"no recipe recorded (untrained) for {', '.join(untrained)}")
    return out


def _settings(run: Run, recipes: list[dict]) -> dict:
    manifest = run.manifest()
    out = {k: manifest.get(k) for k in SHAPE_KEYS}
    recipe = read_for_run(run)
    if recipe is not None:
        out.update({f"recipe.{k}": v for k, v in recipe.to_dict().items() if k != "dataset"})
    elif recipes:  # no train.toml: what the models' own rows say, "mixed" where they differ
        vary = set(varying_keys(recipes))
        # Only Recipe's fields, as a train.toml holds: another tool's own settings (pycls's
        # schedule, ...) count within a run, not against runs that cannot record them.
        keys = [f.name for f in fields(Recipe) if f.name != "dataset" and any(f.name in r for r in recipes)]
        out.update({f"recipe.{k}": MIXED if k in vary else recipes[0].get(k) for k in keys})
    return out


def row_recipes(run: Run) -> list[dict]:
    """The distinct recipes that a run's finished models (ok or diverged) record in their
    result rows; only the recipe column is read, and nothing is written."""
    t = read_results(run.results_dir, compact=False, columns=("recipe",)).table
    texts = {r for r, s in zip(t.column("recipe").to_pylist(), t.column("status").to_pylist())
             if r and s in FINAL}
    out = []
    for text in sorted(texts):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            continue  # another tool's free text: nothing to compare
        if isinstance(doc, dict):
            out.append(doc)
    return out


def varying_keys(recipes: list[dict]) -> list[str]:
    """The keys whose values are not the same in every recipe (a missing key counts)."""
    keys = dict.fromkeys(k for r in recipes for k in r)
    return [k for k in keys if len({json.dumps(r.get(k), sort_keys=True) for r in recipes}) > 1]
