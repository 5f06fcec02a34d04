"""The run directory: the one format every stage reads and writes, and its one owner.

runs/NAME/
  run.toml          manifest: the space as resolved, shape, windows, seed, stream position
  samples.parquet   one row per model: ds, ws, gs, bs, block, drawn scalars (recipe fields
                    such as lr and wd included), flops, params, acts
  train.toml        the training recipe, fixed by the first train-batch
  results/*.parquet one file per finished training attempt (see dsd.store.results)
  claims/, ckpt/, logs/, sweep.json  working files of the trainers and sweeps

`Run` knows every path of a run and parses run.toml once, into a typed `Manifest`
(dsd.store.manifest); nothing else builds them.
Rebuilding a model's network from its row belongs to the space (`dsd.space.rebuild`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dsd.data.recipe_dims import DRAWABLE
from dsd.errors import DsdError
from dsd.model import params
from dsd.model.arch import Shape
from dsd.store.manifest import Manifest, read_manifest, write_manifest_file

# samples.parquet's columns, from the parameter table (dsd.model.params): the numeric
# scalars (drawn recipe fields last), the per-stage lists, and the names (as strings).
SCALAR_TYPES = {**{k: pa.type_for_alias(t) for k, t in params.scalar_cols().items()},
                **{k: pa.int64() if f.integer else pa.float64() for k, f in DRAWABLE.items()}}
LIST_COLS = {k: pa.type_for_alias(t) for k, t in params.list_cols().items()}
NAME_COLS = params.name_params()


@dataclass
class Run:
    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._manifest: Manifest | None = None

    @property
    def manifest_path(self) -> Path:
        return self.path / "run.toml"

    @property
    def train_path(self) -> Path:
        return self.path / "train.toml"

    @property
    def claims_dir(self) -> Path:
        return self.path / "claims"

    @property
    def ckpt_dir(self) -> Path:
        return self.path / "ckpt"

    def ckpt(self, model_id: int) -> Path:
        return self.ckpt_dir / f"{model_id}.pt"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def sweep_path(self) -> Path:
        return self.path / "sweep.json"

    @property
    def samples_path(self) -> Path:
        return self.path / "samples.parquet"

    @property
    def results_dir(self) -> Path:
        return self.path / "results"

    @property
    def name(self) -> str:
        return self.path.name

    def manifest(self) -> Manifest:
        """run.toml, parsed once (an empty Manifest, `.exists` False, for a directory another
        tool made without one)."""
        if self._manifest is None:
            self._manifest = read_manifest(self.manifest_path)
        return self._manifest

    def holds_run(self) -> bool:
        """Whether the directory already holds a run (a manifest or samples)."""
        return self.samples_path.exists() or self.manifest_path.exists()

    def shape(self) -> Shape:
        return self.manifest().shape()

    def samples(self, columns: list[str] | None = None):
        """samples.parquet as a pandas DataFrame (only `columns`, when given), in today's
        columns whatever version wrote it (`legacy_block`)."""
        return self._read_samples(lambda f: legacy_block(_read(f, columns)).to_pandas())

    def count(self) -> int:
        """How many models the run holds (from the file's footer alone)."""
        return self._read_samples(lambda f: f.metadata.num_rows)

    def _read_samples(self, read):
        if not self.samples_path.exists():
            raise DsdError(f"{self.path} is not a run directory (no samples.parquet); "
                           "make one with `dsd sample`")
        try:
            with pq.ParquetFile(self.samples_path) as f:
                return read(f)
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise DsdError(f"{self.samples_path}: cannot read it ({type(e).__name__}: {e}); "
                           "it is damaged, sample the run again") from None


def open_run(path: str | Path) -> Run:
    p = Path(path)
    if not p.is_dir():
        raise DsdError(f"no run directory at {p}; make one with `dsd sample --out {p}`")
    return Run(p)


def _read(f: pq.ParquetFile, columns: list[str] | None) -> pa.Table:
    names = f.schema_arrow.names
    if columns is not None and "block" in columns and "block" not in names and "se" in names:
        columns = [c for c in columns if c != "block"] + ["se"]
    return f.read(columns=columns)


def legacy_block(samples: pa.Table) -> pa.Table:
    """Runs sampled before block names existed record only `se` (x, or y with SE): the
    `block` column they mean, added once, here, as the file is read; `se` is dropped."""
    names = samples.column_names
    if "se" not in names:
        return samples
    if "block" not in names:
        se = samples.column("se").to_numpy(zero_copy_only=False).astype(bool)
        samples = samples.append_column("block", pa.array(np.where(se, "y", "x"), pa.string()))
    return samples.drop_columns(["se"])


def samples_table(cols: dict[str, np.ndarray]) -> pa.Table:
    """samples.parquet from columns: [models, stages] arrays for the per-stage lists."""
    out: dict[str, pa.Array] = {"model_id": pa.array(cols["model_id"], pa.int64())}
    for k, t in LIST_COLS.items():
        if k not in cols:
            continue
        m = np.ascontiguousarray(cols[k])
        if "stages" in cols:  # a drawn stage count: each row keeps its own stages only
            live = np.arange(m.shape[1])[None, :] < np.asarray(cols["stages"])[:, None]
            offsets = np.concatenate([[0], np.cumsum(live.sum(axis=1))]).astype(np.int32)
            values = m[live]
        else:
            offsets = np.arange(0, m.size + 1, max(m.shape[1], 1), dtype=np.int32)
            values = m.ravel()
        out[k] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, t))
    for k in NAME_COLS:
        if k in cols:
            out[k] = pa.array(cols[k], pa.string())
    for k, t in SCALAR_TYPES.items():
        if k in cols:
            out[k] = pa.array(cols[k], t)
    for k in ("flops", "params", "acts"):
        out[k] = pa.array(cols[k], pa.int64())
    return pa.table(out)


def list_column(table: pa.Table, name: str) -> np.ndarray:
    """A per-stage list column as a [models, stages] array; rows of fewer stages (a drawn
    stage count) are padded with zeros, as the sampler holds them."""
    return pad_lists(table.column(name))


def pad_lists(col: pa.Array | pa.ChunkedArray, fill: float = 0) -> np.ndarray:
    """Lists as a [rows, longest] array, `fill` past each row's own length."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    flat = col.flatten().to_numpy(zero_copy_only=False)
    if not len(col):
        return flat.reshape(0, 0)
    lengths = np.diff(col.offsets.to_numpy())
    width = int(lengths.max())
    if (lengths == width).all():
        return flat.reshape(len(col), -1)
    out = np.full((len(col), width), fill, dtype=np.result_type(flat.dtype, type(fill)))
    out[np.arange(width)[None, :] < lengths[:, None]] = flat
    return out


def write_atomic_parquet(table: pa.Table, path: Path) -> None:
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def write_manifest(run: Run, manifest: Manifest) -> None:
    write_manifest_file(run.manifest_path, manifest)
    run._manifest = manifest
