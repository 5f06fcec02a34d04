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
from dsd.model.arch import Shape
from dsd.space.spec import from_table
from dsd.store.results import write_rows
from dsd.store.run import Run, new_manifest, samples_table, write_atomic_parquet, write_manifest

ARCH_COLS = ("model_id", "ds", "ws", "gs", "bs", "ss", "stem_w", "flops", "params", "acts")


def write_imported_run(out: Path, space: dict, shape: Shape, dataset: str | None, cols: dict,
                       rows: list[dict], source: str) -> Path:
    """A new run at `out` from per-model columns (`ARCH_COLS`, plus any extra scalar columns
    kept beside them) and one result row per model."""
    out = Path(out)
    if (out / "samples.parquet").exists() or (out / "run.toml").exists():
        raise DsdError(f"{out} already holds a run; import into a new directory with --out")
    try:
        s = from_table(space, f"{out}/run.toml")
    except DsdError as e:
        raise DsdError(f"the imported networks do not form a space dsd can rebuild: {e}") from None
    n = len(cols["model_id"])
    arrays = {k: np.asarray(cols[k]) for k in ARCH_COLS}
    arrays.update(se=np.zeros(n, bool), block=np.full(n, s.block), stem=np.full(n, s.stem))
    table = samples_table(arrays)
    for k in sorted(set(cols) - set(ARCH_COLS)):
        table = table.append_column(k, pa.array(cols[k], pa.int64()))
    out.mkdir(parents=True, exist_ok=True)
    run = Run(out)
    manifest = new_manifest(out.name, dict(space), n, 0, shape, {}, dataset, (0, 0))
    manifest["imported"] = {"source": source}
    write_manifest(run, manifest)
    write_atomic_parquet(table, run.samples_path)
    write_rows(run.results_dir, rows, "imported")
    return out
