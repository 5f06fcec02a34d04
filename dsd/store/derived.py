"""Derived runs: the same models as another run, trained again with another seed or budget.

A derived run holds the first K models of its parent (model ids are drawn in random order,
so the first K are a random subset), with the parent's ids, architectures and complexity.
Its run.toml is the parent's plus a `[derived]` table:

  of         the parent run, as a path relative to the derived run
  purpose    "replicate" (same recipe, another training seed) or "fidelity" (another
             budget: its own train.toml, e.g. more epochs)
  models     K
  train_seed the seed train-batch uses for this run (replicates), in place of --seed

Being a run of its own, a derived run is trained, resumed and read like any other, its
rows keep their seed, and an EDF of the parent never counts them: replicates and longer
budgets stay out of the parent's population by construction. Analyses pair its models with
the parent's by model id.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from dsd.errors import DsdError
from dsd.store.manifest import Derived
from dsd.store.run import Run, write_atomic_parquet, write_manifest

PURPOSES = ("replicate", "fidelity")


def derive_run(parent: Run, out: Path, models: int, purpose: str,
               train_seed: int | None = None) -> Run:
    """A new run at `out` holding the parent's first `models` models (see module doc)."""
    if purpose not in PURPOSES:
        raise DsdError(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
    if models < 1:
        raise DsdError(f"a derived run needs at least 1 model, got {models}")
    if Run(out).holds_run():
        raise DsdError(f"{out} already holds a run; choose another directory")
    m = parent.manifest()
    if not m.exists or not parent.samples_path.exists():
        raise DsdError(f"{parent.path} holds no sampled run to derive from")
    have = parent.count()
    if have < models:
        raise DsdError(f"{parent.path} holds {have} models; a derived run of {models} needs "
                       f"at least that many (extend it with `dsd sample --extend`)")
    out.mkdir(parents=True, exist_ok=True)
    run = Run(out)
    of = os.path.relpath(parent.path.resolve(), out.resolve())
    write_manifest(run, m.with_(name=out.name, n=models,
                                derived=Derived(of, purpose, models, train_seed)))
    write_atomic_parquet(_first_models(parent, models), run.samples_path)
    return run


def _first_models(parent: Run, models: int):
    table = pq.read_table(parent.samples_path)
    return table.take(pc.sort_indices(table.column("model_id"))[:models])


def ensure_derived(parent: Run, out: Path, models: int, purpose: str,
                   train_seed: int | None = None) -> bool:
    """Make the derived run, or grow it to `models` (the parent's next ids, nothing else
    changes); refuse, naming the key, one made under other settings. True if it wrote."""
    run = Run(out)
    if not run.samples_path.exists():
        derive_run(parent, out, models, purpose, train_seed)
        return True
    d = run.manifest().derived
    if d is None:
        raise DsdError(f"{out} is a run of its own, not derived from {parent.path}; move it "
                       "away to derive one there")
    have = {"of": (run.path / d.of).resolve(), "purpose": d.purpose, "train_seed": d.train_seed}
    want = {"of": parent.path.resolve(), "purpose": purpose, "train_seed": train_seed}
    diff = [f"{k}: run has {have[k]!r}, asked {want[k]!r}" for k in have if have[k] != want[k]]
    if models < d.models:
        diff.append(f"models: run has {d.models}, asked {models} (a derived run grows, never "
                    "shrinks)")
    if diff:
        raise DsdError(f"{out} was derived under other settings ({'; '.join(diff)}); restore "
                       "the settings, or move that derived run away to make it again")
    if models == d.models:
        return False
    _grow(parent, run, models)
    return True


def _grow(parent: Run, run: Run, models: int) -> None:
    if parent.count() < models:
        raise DsdError(f"{parent.path} holds {parent.count()} models; a derived run of {models} "
                       "needs at least that many")
    write_atomic_parquet(_first_models(parent, models), run.samples_path)
    m = run.manifest()
    write_manifest(run, m.with_(n=models, derived=replace(m.derived, models=models)))
