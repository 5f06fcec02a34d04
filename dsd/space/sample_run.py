"""Sampling into a run directory: a new run, or `extend` of an existing one."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dsd.errors import DsdError
from dsd.model.arch import Shape
from dsd.sizes import parse_window
from dsd.space import spec as spaces
from dsd.space.sampler import KEY_LISTS, KEY_SCALARS, METRICS, SampleResult, model_keys, sample
from dsd.store.manifest import Stream, new_manifest
from dsd.store.run import Run, legacy_block, list_column, samples_table, write_atomic_parquet, write_manifest


@dataclass
class SampleReport:
    run: Run
    result: SampleResult
    seconds: float
    total: int
    note: str = ""   # a default the sampler chose, said aloud


def sample_new(space_name: str | spaces.Space, n: int, out: Path, shape: Shape,
               windows: dict[str, str | None], seed: int = 0, dataset: str | None = None,
               progress: Callable[[int, int, int], None] | None = None,
               max_candidates: int = 200_000_000) -> SampleReport:
    """Sample n models of a space (a name, a path or a loaded Space) into a new run directory
    `out` (which must not hold a run yet)."""
    if n < 1:
        raise DsdError(f"--n must be at least 1, got {n}")
    if Run(out).holds_run():
        raise DsdError(f"{out} already holds a run; add models with --extend, or choose "
                       "another directory with --out")
    space = spaces.load(space_name) if isinstance(space_name, str) else space_name
    wins, note = dict(windows), ""
    if not any(wins.values()) and space.flops:
        wins["flops"], note = _default_window(space.flops, dataset)
    parsed = {k: parse_window(v) for k, v in wins.items()}
    t0 = time.perf_counter()
    res = sample(space, n, shape, parsed, seed, progress=progress, max_candidates=max_candidates)
    out.mkdir(parents=True, exist_ok=True)
    run = Run(out)
    table = dict(space.table, name=space.name)
    write_manifest(run, new_manifest(out.name, table, n, seed, shape,
                                     {k: v or "" for k, v in wins.items()}, dataset, res.position))
    write_atomic_parquet(samples_table(res.columns), run.samples_path)
    return SampleReport(run, res, time.perf_counter() - t0, n, note)


def _default_window(space_flops: str, dataset: str | None) -> tuple[str, str]:
    """The space's default window, unless it is meant for another shape than the data
    set's: then the data set's own (sampling 360M:400M models for 28 px images would train
    ImageNet-sized networks on them)."""
    from dsd.data.registry import DATASETS

    spec = DATASETS.get(dataset or "")
    if spec is None or spec.flops is None or spec.flops == space_flops:
        return space_flops, ""
    return spec.flops, (f"no window given: sampled at {dataset}'s default flops window {spec.flops} "
                        f"(the space's own {space_flops} is meant for 224 px ImageNet); pass --flops "
                        "to choose")


def sample_extend(out: Path, n: int, progress=None,
                  max_candidates: int = 200_000_000) -> SampleReport:
    """Add n models to an existing run, continuing its ids and its random stream."""
    run = Run(out)
    m = run.manifest()
    if not m.exists or not run.samples_path.exists():
        raise DsdError(f"{out} holds no run to extend; sample one first (without --extend)")
    space = spaces.from_table(m.space_table(), str(run.manifest_path))
    old = legacy_block(pq.read_table(run.samples_path))  # an old run is written back as today's
    seen = run_keys(old)
    windows = {k: parse_window(m.window(k)) for k in METRICS}
    start = (m.stream.block, m.stream.offset)
    t0 = time.perf_counter()
    res = sample(space, n, run.shape(), windows, m.seed, start=start, seen=seen,
                 first_id=old.num_rows, progress=progress, max_candidates=max_candidates)
    new = samples_table(res.columns)
    merged = pa.concat_tables([old, new.select(old.schema.names).cast(old.schema)])
    write_atomic_parquet(merged, run.samples_path)
    write_manifest(run, m.with_(n=merged.num_rows, stream=Stream(*res.position)))
    return SampleReport(run, res, time.perf_counter() - t0, merged.num_rows)


def run_keys(samples: pa.Table) -> set[bytes]:
    """The keys of a run's models, read column-wise (no Python object per value)."""
    if samples.num_rows == 0:
        return set()
    samples = legacy_block(samples)
    names = samples.column_names
    cols = {k: list_column(samples, k) for k in KEY_LISTS if k in names}
    cols.update({k: samples.column(k).to_numpy(zero_copy_only=False)
                 for k in KEY_SCALARS if k in names})
    return set(model_keys(cols).tolist())
