"""From options to a checked RunJob and BatchOptions (shared by train-batch, sweeps and studies).

Every check of a training request lives here, in the library's terms: the run, the
recipe against the run's train.toml, the data set and whether the run's models fit it.
"""

from __future__ import annotations

from pathlib import Path

from dsd.data.recipe import with_overrides
from dsd.data.registry import DATASETS
from dsd.data.registry import get as get_dataset
from dsd.data.registry import load as load_dataset
from dsd.errors import DsdError
from dsd.store.recipe_file import check_for_run, fix_for_run, read_for_run
from dsd.store.run import Run, open_run
from dsd.train.batch import resolve_device
from dsd.train.jobs import BatchOptions, RunJob, TrainRequest


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


def prepare(run_path: str | Path, req: TrainRequest, load_data: bool = True,
            write: bool = True) -> RunJob:
    """Check the run, the recipe, the data set and its shape; fix the recipe in train.toml.
    The batch's options are checked by `batch_options`, once for all the runs of a call.

    load_data=False checks the data set by its registered shape instead of reading it (a
    Slurm login node need not load what the nodes will); write=False leaves train.toml
    alone (a dry run writes nothing).
    """
    if req.limit is not None and req.limit < 1:
        raise DsdError("--limit must be at least 1")
    if req.threads is not None and req.threads < 1:
        raise DsdError("--threads must be at least 1")
    if req.streams < 1:
        raise DsdError("--streams must be at least 1")
    run = open_run(run_path)
    run.samples()  # fails early, with a clear message, on a damaged samples.parquet
    fixed = read_for_run(run)
    dataset = req.dataset or (fixed.dataset if fixed else None) or run.manifest().dataset
    if not dataset:
        raise DsdError(f"{run.path} names no data set; {_advice(run)}")
    spec = get_dataset(dataset)
    base = fixed if fixed and fixed.dataset == dataset else spec.recipe
    recipe = with_overrides(base, **(req.overrides or {}))
    _check_shape(run, dataset, req, load_data)
    recipe = fix_for_run(run, recipe) if write else check_for_run(run, recipe)
    return RunJob(run, recipe, req.data_dir, _seed(run, req.seed))


def batch_options(req: TrainRequest, load_data: bool = True) -> BatchOptions:
    """The request's batch options, checked: the device (resolved here unless the data is
    read elsewhere, as on a Slurm node: load_data=False) and the step mode on it."""
    device = resolve_device(req.device) if load_data else req.device
    _check_step(req.step, device)
    return BatchOptions(device, req.limit, req.retry_failed, parse_shard(req.shard), req.lease,
                        req.threads, req.step, req.streams)


def _seed(run: Run, asked: int) -> int:
    """A replicate run trains with its own seed (its manifest's), whatever --seed says by
    default; another explicit seed would make it a different replicate."""
    d = run.manifest().derived
    if d is None or d.train_seed is None:
        return asked
    if asked not in (0, d.train_seed):
        raise DsdError(f"{run.path} is a replicate trained with seed {d.train_seed}; drop --seed "
                       f"{asked}, or derive another replicate run for that seed")
    return d.train_seed


def _check_step(step: str, device: str) -> None:
    from dsd.train.step import check_mode

    try:
        check_mode(step, "cuda" if device == "auto" else device)
    except ValueError as e:
        raise DsdError(str(e)) from None


def _check_shape(run: Run, dataset: str, req: TrainRequest, load_data: bool) -> None:
    spec = get_dataset(dataset)
    if load_data or not spec.fixed_shape:
        data = load_dataset(dataset, req.data_dir, req.download)
        channels, classes = data.in_channels, data.num_classes
    else:
        channels, classes = spec.shape.in_channels, spec.shape.num_classes
    shape = run.shape()
    if channels != shape.in_channels:
        raise DsdError(f"{dataset} has {_n(channels, 'channel')} but the run's models take "
                       f"{shape.in_channels}; {_advice(run, dataset)}")
    if classes != shape.num_classes:
        raise DsdError(f"{dataset} has {_n(classes, 'class', 'classes')} but the run's models "
                       f"have {shape.num_classes}; {_advice(run, dataset)}")


def _n(k: int, one: str, many: str | None = None) -> str:
    return f"{k} {one if k == 1 else many or one + 's'}"


def _advice(run: Run, wanted: str | None = None) -> str:
    """Only data sets whose images fit the run's models, and how to resample for another."""
    shape = run.shape()
    fits = [d.name for d in DATASETS.values() if d.shape.in_channels == shape.in_channels
            and (d.shape.num_classes == shape.num_classes or not d.fixed_shape)]
    space = run.manifest().space_name or "SPACE"
    other = wanted or "fashion-mnist"
    resample = (f"or sample a new run at {other}'s shape: dsd sample --space {space} "
                f"--dataset {other} --flops LO:HI --out NEW_RUN")
    if fits:
        return (f"pass --dataset with one that fits its models ({_n(shape.in_channels, 'channel')}"
                f", {_n(shape.num_classes, 'class', 'classes')}): {', '.join(fits)}; {resample}")
    return f"no known data set fits its models ({shape.in_channels}, {shape.num_classes}); {resample}"
