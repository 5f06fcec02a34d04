"""Writing a run that dsd did not sample: another tool's models and their results.

An imported run has the same files as any other (run.toml, samples.parquet, results/), so
every analysis reads it; its manifest says where it came from (`imported`), and its space
table is one under which every imported network rebuilds as recorded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from dsd.errors import DsdError
from dsd.model.arch import Arch, Shape
from dsd.model.blocks import BLOCKS
from dsd.space.spec import from_table
from dsd.store.manifest import freeze as _freeze
from dsd.store.manifest import new_manifest
from dsd.store.results import write_rows
from dsd.store.run import SCALAR_TYPES, Run, samples_table, write_atomic_parquet, write_manifest

ARCH_COLS = ("model_id", "ds", "ws", "gs", "bs", "ss", "stem_w", "flops", "params", "acts")
LISTS = {"ds": 0, "ws": 0, "gs": 0, "bs": 1.0, "ss": 1}  # per-stage columns, and their padding
NAME_COLS = ("block", "stem", "act")  # per model, where the importer gives them


def write_imported_run(out: Path, space: dict, shape: Shape, dataset: str | None, cols: dict,
                       rows: list[dict], source: str) -> Path:
    """A new run at `out` from per-model columns (`ARCH_COLS`; optionally `NAME_COLS`, else
    the space's; plus any extra scalar columns kept beside them, typed as
    SCALAR_TYPES says or int64) and one result row per model."""
    out = Path(out)
    if Run(out).holds_run():
        raise DsdError(f"{out} already holds a run; import into a new directory with --out")
    try:
        s = from_table(space, f"{out}/run.toml")
    except DsdError as e:
        raise DsdError(f"the imported networks do not form a space dsd can rebuild: {e}") from None
    n = len(cols["model_id"])
    arrays = {k: np.asarray(cols[k]) for k in ARCH_COLS if k not in LISTS}
    arrays.update(_stacked(cols))
    arrays.update(block=np.full(n, s.block), stem=np.full(n, s.stem))
    arrays.update({k: np.asarray(cols[k]) for k in NAME_COLS if k in cols})
    table = samples_table(arrays)
    for k in sorted(set(cols) - set(table.column_names) - set(NAME_COLS)):
        table = table.append_column(k, pa.array(cols[k], SCALAR_TYPES.get(k, pa.int64())))
    out.mkdir(parents=True, exist_ok=True)
    run = Run(out)
    manifest = new_manifest(out.name, dict(space), n, 0, shape, {}, dataset, (0, 0))
    write_manifest(run, manifest.with_(extra=_freeze({"imported": {"source": source}})))
    write_atomic_parquet(table, run.samples_path)
    write_rows(run.results_dir, rows, "imported")
    return out


def _stacked(cols: dict) -> dict[str, np.ndarray]:
    """The per-stage lists as [models, stages] arrays; networks of fewer stages are padded
    and their own counts given as `stages`, so each row keeps only its own."""
    counts = [len(x) for x in cols["ds"]]
    most = max(counts)
    out = {k: np.array([list(x) + [pad] * (most - len(x)) for x in cols[k]])
           for k, pad in LISTS.items()}
    if len(set(counts)) > 1:
        out["stages"] = np.asarray(counts)
    return out


def rebuild_space(name: str, description: str, archs: list[Arch]) -> dict:
    """An anynet space table under which every one of `archs` rebuilds exactly from its
    samples row (per-stage lists, block, stem, act, strides, stem width); what varies is
    drawn, what does not is fixed. The networks must share shape, kernels, SE ratio and
    head width, which a run holds once."""
    first = archs[0]
    most = max(archs, key=lambda a: a.num_stages)
    table: dict = {"name": name, "description": description, "generator": "anynet",
                   "strides": list(most.strides), "stem_width": first.stem_w,
                   "se_ratio": first.se_ratio, "head_width": first.head_w, "params": {}}
    params = table["params"]
    params["d"] = _choice(x for a in archs for x in a.ds)
    params["w"] = _choice(x for a in archs for x in a.ws)
    reads = {r for a in archs for r in BLOCKS[a.block].reads}
    if "b" in reads:
        params["b"] = _choice((float(x) for a in archs for x in a.bs), float)
    if "g" in reads:
        params["g"] = _choice(x for a in archs for x in a.gs)
    for key, attr in (("block", "block"), ("stem", "stem"), ("act", "act")):
        names = list(dict.fromkeys(getattr(a, attr) for a in archs))
        if len(names) > 1:
            params[key] = {"dist": "choice", "values": names}
        else:
            table[key] = names[0]
    stages = sorted({a.num_stages for a in archs})
    if len(stages) > 1:
        params["stages"] = _choice(stages)
    else:
        table["stages"] = stages[0]
    if len({a.stem_w for a in archs}) > 1:
        params["stem_w"] = _choice(a.stem_w for a in archs)
    return table


def _choice(values, kind=int) -> dict:
    return {"dist": "choice", "values": sorted({kind(v) for v in values})}
