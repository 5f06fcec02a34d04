"""From command-line options to a checked BatchConfig (shared by train-batch and sweeps)."""

from __future__ import annotations

from pathlib import Path

from dsd import data as data_mod
from dsd.batch import BatchConfig, resolve_device
from dsd.errors import DsdError
from dsd.recipe import default_recipe, fix_for_run, read_for_run, with_overrides
from dsd.rundir import open_run


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return (0, 1)
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise DsdError(f"--shard takes I/N, e.g. 0/4; got {text!r}") from None
    if not 0 <= i < n:
        raise DsdError(f"--shard {text}: need 0 <= I < N")
    return (i, n)


def prepare(run_path: Path, dataset: str | None, data_dir: str | None, download: bool,
            overrides: dict, seed: int, device: str, limit: int | None, retry_failed: bool,
            shard: str | None, lease: float) -> BatchConfig:
    """Check the run, the recipe, the data set and its shape; fix the recipe in train.toml."""
    run = open_run(run_path)
    manifest = run.manifest()
    run.samples()  # fails early, with a clear message, on a damaged samples.parquet
    fixed = read_for_run(run.path)
    dataset = dataset or (fixed.dataset if fixed else None) or manifest.get("dataset")
    if not dataset:
        raise DsdError(f"{run.path} names no data set; pass --dataset (e.g. fashion-mnist)")
    base = fixed if fixed and fixed.dataset == dataset else default_recipe(dataset)
    recipe = with_overrides(base, **overrides)
    ds = data_mod.load(dataset, data_dir, download)
    shape = run.shape()
    if ds.in_channels != shape.in_channels:
        raise DsdError(f"{dataset} has {ds.in_channels} channels but the run's models take "
                       f"{shape.in_channels}; sample the run with --dataset {dataset}")
    if ds.num_classes != shape.num_classes:
        raise DsdError(f"{dataset} has {ds.num_classes} classes but the run's models have "
                       f"{shape.num_classes}; sample the run with --dataset {dataset}")
    recipe = fix_for_run(run.path, recipe)
    return BatchConfig(str(run.path), recipe, data_dir, resolve_device(device), seed, limit,
                       retry_failed, parse_shard(shard), lease)
