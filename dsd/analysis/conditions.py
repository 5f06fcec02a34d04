"""Were the runs of a comparison trained under the same conditions?

An EDF comparison is only about the spaces when everything else is equal: the data set,
the input shape and the training recipe. Comparing a 2-epoch run with a 1-epoch run
measures the recipe, not the space. This lists every difference, for warnings (or a
refusal with --strict), read from each run's run.toml and train.toml; a run without a
train.toml (an import) is judged by the recipes its result rows record, and a run whose
models were trained under several recipes (a pycls lr/wd sweep) is flagged on its own.

Recipe fields a run's space draws per model ([params.lr], ...) differ between its models on
purpose: within the run they are no mixed recipe (`drawn_notes` says so, as information),
and between runs their distributions are compared, as settings, like any recipe value.
"""

from __future__ import annotations

import json
from dataclasses import fields

from dsd.analysis.precision import precision_differences
from dsd.data.recipe import Recipe
from dsd.data.recipe_dims import drawn_fields
from dsd.space.rebuild import space_of
from dsd.store.recipe_file import read_for_run
from dsd.store.results import FINAL, read_results
from dsd.store.run import Run

SHAPE_KEYS = ("dataset", "resolution", "in_channels", "num_classes", "stem_stride")
MIXED = "mixed"  # the value of a recipe key that differs between a run's own models


def differences(runs: list[tuple[str, Run]]) -> list[str]:
    """One line per setting that differs between the named runs, and one per run whose
    models were trained under several recipes (empty: comparable)."""
    drawn = {name: drawn_recipe(run) for name, run in runs}
    recipes = {name: row_recipes(run) for name, run in runs}
    out = _between(runs, recipes, drawn) if len(runs) >= 2 else []
    for name, rs in recipes.items():
        rs = _without(rs, drawn[name])  # drawn fields vary by design
        if len(rs) > 1:
            out.append(f"recipe differs within {name}: its models were trained under {len(rs)} "
                       f"recipes (varying: {', '.join(varying_keys(rs))})")
    return out + precision_differences(runs)  # bf16 (GPU) against fp32 (CPU), between or within runs


def drawn_recipe(run: Run) -> dict[str, str]:
    """The recipe fields the run's space draws per model, each with its distribution
    ({} for a run whose space draws none, or a directory without a manifest)."""
    names = drawn_fields(run.manifest().space)
    if not names:
        return {}
    params = space_of(run).params
    return {k: params[k].dist.describe() for k in names}


def drawn_notes(runs: list[tuple[str, Run]]) -> list[str]:
    """One line per run that draws recipe fields per model: information, not a difference."""
    out = []
    for name, run in runs:
        drawn = drawn_recipe(run)
        if drawn:
            how = "; ".join(f"{k} {d}" for k, d in drawn.items())
            out.append(f"{name} draws {', '.join(drawn)} per model from its space ({how}): its "
                       "models' recipes differ there by design, and each row records its own")
    return out


def _without(recipes: list[dict], drawn: dict[str, str]) -> list[dict]:
    """The distinct recipes once the drawn fields are left out."""
    if not drawn:
        return recipes
    kept = ({k: v for k, v in r.items() if k not in drawn} for r in recipes)
    return list({json.dumps(r, sort_keys=True): r for r in kept}.values())


def _between(runs: list[tuple[str, Run]], recipes: dict[str, list[dict]],
             drawn: dict[str, dict[str, str]]) -> list[str]:
    settings = {name: _settings(run, recipes[name], drawn[name]) for name, run in runs}
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


def _settings(run: Run, recipes: list[dict], drawn: dict[str, str]) -> dict:
    manifest = run.manifest()
    out = {k: getattr(manifest, k) for k in SHAPE_KEYS}
    recipe = read_for_run(run)
    if recipe is not None:
        out.update({f"recipe.{k}": v for k, v in recipe.to_dict().items() if k != "dataset"})
    elif recipes:  # no train.toml: what the models' own rows say, "mixed" where they differ
        vary = set(varying_keys(recipes))
        # Only Recipe's fields, as a train.toml holds: another tool's own settings (pycls's
        # schedule, ...) count within a run, not against runs that cannot record them.
        keys = [f.name for f in fields(Recipe) if f.name != "dataset" and any(f.name in r for r in recipes)]
        out.update({f"recipe.{k}": MIXED if k in vary else recipes[0].get(k) for k in keys})
    # A drawn field's setting is its distribution, not train.toml's base value (no model used it).
    out.update({f"recipe.{k}": f"drawn {d}" for k, d in drawn.items()})
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
