"""train.toml: the recipe a run trains under, fixed by its first train-batch.

One run trains under one recipe, so an EDF never mixes recipes: the first train-batch
writes train.toml (atomically, first writer wins) and later ones must match it, but for
the fields the run's space draws per model (each model replaces those with its own).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import fields

from dsd import tomlw
from dsd.data.recipe import Recipe, from_dict
from dsd.data.recipe_dims import drawn_fields
from dsd.errors import DsdError


def write_for_run(run, recipe: Recipe) -> None:
    """Write the run's train.toml unless it has one (which is then kept as it is)."""
    path = run.train_path
    if path.exists():
        return
    tmp = run.path / f".train.toml.{os.getpid()}.tmp"
    tmp.write_text(tomlw.dumps(recipe.to_dict()))
    try:
        os.link(tmp, path)  # atomic create-if-absent: concurrent workers agree on one
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def fix_for_run(run, recipe: Recipe) -> Recipe:
    """Write the run's train.toml if it has none; else insist the recipe is the same, but
    for the fields the run's space draws per model (each model replaces them anyway)."""
    path, run_dir = run.train_path, run.path
    write_for_run(run, recipe)
    try:
        fixed = from_dict(tomllib.loads(path.read_text()))
    except (tomllib.TOMLDecodeError, TypeError) as e:
        raise DsdError(f"{path}: unreadable ({e}); restore it or sample a new run") from None
    drawn = drawn_fields(run.manifest().space)
    diff = [f"{k}: run has {a!r}, asked {b!r}" for k, a, b in
            ((f.name, getattr(fixed, f.name), getattr(recipe, f.name)) for f in fields(Recipe))
            if a != b and k not in drawn]
    if diff:
        raise DsdError(f"{run_dir} is trained under another recipe ({'; '.join(diff)}); one run, "
                       "one recipe: sample a new run directory for a new recipe, or drop the "
                       "differing options")
    return fixed


def read_for_run(run) -> Recipe | None:
    """The recipe a run is trained under (its train.toml), or None before training."""
    path = run.train_path
    if not path.exists():
        return None
    try:
        return from_dict(tomllib.loads(path.read_text()))
    except (tomllib.TOMLDecodeError, TypeError) as e:
        raise DsdError(f"{path}: unreadable ({e}); restore it or sample a new run") from None


def check_for_run(run, recipe: Recipe) -> Recipe:
    """Like fix_for_run, but writes nothing (for --dry-run): the recipe the run would use."""
    fixed = read_for_run(run)
    if fixed is not None and fixed != recipe:
        return fix_for_run(run, recipe)  # raises, naming the differences
    return recipe
