"""A run's networks rebuilt from its rows: the space as the run's manifest records it,
plus each row's own drawn numbers (per-stage lists, block, stem, strides, ...).

The run directory (`dsd.store`) holds the rows; what they mean as networks is the
space's business, so it lives here.
"""

from __future__ import annotations

import functools
from pathlib import Path

from dsd.model.arch import Arch
from dsd.space.spec import Space, from_table
from dsd.store.run import Run


def arch_of(run: Run, row) -> Arch:
    """The network of one row of `run.samples()`."""
    space = _space(str(run.manifest_path), run.manifest_path.stat().st_mtime_ns)
    kw = space.shape_kwargs()
    block = row.get("block") if hasattr(row, "get") else None
    # Runs sampled before block names existed record only `se`.
    kw["block"] = block if isinstance(block, str) else ("y" if bool(row["se"]) else "x")
    get = row.get if hasattr(row, "get") else (lambda _k: None)
    for col in ("act", "stem"):  # drawn per model, when the space does
        if isinstance(get(col), str):
            kw[col] = get(col)
    for col, kind in (("es", float), ("ks", int), ("ss", int)):
        v = get(col)
        if v is not None and not isinstance(v, float):  # a float here is a missing value
            kw["strides" if col == "ss" else col] = tuple(kind(x) for x in v)
    for col, kind in (("se_ratio", float), ("stem_w", int)):
        if col in space.params and get(col) is not None:
            kw[col] = kind(get(col))
    n = len(row["ds"])  # a drawn stage count: the space's per-stage lists cover the most
    kw["strides"], kw["ks"] = tuple(kw["strides"][:n]), tuple(kw["ks"][:n])
    return Arch(tuple(int(x) for x in row["ds"]), tuple(int(x) for x in row["ws"]),
                tuple(float(x) for x in row["bs"]), tuple(int(x) for x in row["gs"]),
                shape=run.shape(), **kw)


@functools.lru_cache(maxsize=64)
def _space(manifest: str, mtime: int) -> Space:
    """The run's space, parsed once per manifest (and again if the file changes: `mtime`)."""
    return from_table(Run(Path(manifest).parent).manifest()["space"], manifest)
