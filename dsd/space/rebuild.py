"""A run's networks rebuilt from its rows: the space as the run's manifest records it,
plus each row's own drawn numbers (per-stage lists, block, stem, strides, ...); and the
recipe each model trains under (the run's, with the fields its space draws replaced).

The run directory (`dsd.store`) holds the rows; what they mean as networks is the
space's business, so it lives here.
"""

from __future__ import annotations

import functools
from pathlib import Path

from dsd.data.recipe import Recipe, with_overrides
from dsd.data.recipe_dims import drawn_fields, model_values
from dsd.errors import DsdError
from dsd.model import params
from dsd.model.arch import Arch
from dsd.space.spec import Space, from_table
from dsd.store.run import Run

REQUIRED = ("ds", "ws", "gs", "bs")  # every samples.parquet holds them


def arch_of(run: Run, row) -> Arch:
    """The network of one row of `run.samples()`."""
    space = space_of(run)
    kw = space.shape_kwargs()
    get = row.get if hasattr(row, "get") else (lambda _k: None)
    kw["block"] = row["block"]  # Run.samples() names it in rows of runs that predate names
    for col in ("act", "stem"):  # drawn per model, when the space does
        if isinstance(get(col), str):
            kw[col] = get(col)
    for p in params.per_stage():  # ds, ws, gs, bs; es, ks, ss, ... where drawn
        v = row[p.list_col] if p.list_col in REQUIRED else get(p.list_col)
        if v is not None and not isinstance(v, float):  # a float here is a missing value
            kw[p.arch] = tuple(p.type(x) for x in v)
    for col, kind in (("se_ratio", float), ("stem_w", int)):
        if col in space.params and get(col) is not None:
            kw[col] = kind(get(col))
    n = len(kw["ds"])  # a drawn stage count: the space's per-stage lists cover the most
    kw["strides"], kw["ks"] = tuple(kw["strides"][:n]), tuple(kw["ks"][:n])
    return Arch(shape=run.shape(), **kw)


def recipe_of(run: Run, base: Recipe, row) -> Recipe:
    """The recipe the model of `row` trains under: the run's base recipe (train.toml) with
    the fields its space draws ([params.lr], ...) replaced by the row's own values."""
    names = drawn_fields(run.manifest().space)
    if not names:
        return base
    missing = [k for k in names if not _present(row, k)]
    if missing:
        raise DsdError(f"{run.samples_path}: model {_id(row)} has no {', '.join(missing)} although "
                       "the run's space draws it; sample the run again")
    return with_overrides(base, **model_values(row, names))


def _present(row, k: str) -> bool:
    v = row.get(k) if hasattr(row, "get") else None
    return v is not None and v == v  # NaN: a column the row lacks


def _id(row) -> str:
    return str(row.get("model_id", "?")) if hasattr(row, "get") else "?"


def space_of(run: Run) -> Space:
    """The run's space as its manifest records it (parsed once per manifest version)."""
    return _space(str(run.manifest_path), run.manifest_path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _space(manifest: str, mtime: int) -> Space:
    """The run's space, parsed once per manifest (and again if the file changes: `mtime`)."""
    return from_table(Run(Path(manifest).parent).manifest().space_table(), manifest)
