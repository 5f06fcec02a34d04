"""One model of a run, trained as train-batch trains it: the core that train-batch's
workers (dsd.train.batch), `dsd study verify` (dsd.study.verify) and the benchmarks share.

A model's architecture comes from its samples row (dsd.space.rebuild.arch_of), its recipe
is the run's with the fields its space draws per model (recipe_of), its seed the run's
seed and its id (model_seed). `train_one` trains it through dsd.train.loop and returns its
result row, the row a worker writes. The worker adds what a batch needs around the same
pieces (claims, checkpoints, an out-of-memory retry, models stepped in turn, one pipeline
per data set); here a failure is the caller's exception.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from dsd.data.recipe import Recipe
from dsd.model.arch import Arch
from dsd.space.rebuild import arch_of, recipe_of
from dsd.store.run import Run
from dsd.train.jobs import BatchOptions, RunJob, model_seed, resolve_threads


@dataclass(frozen=True)
class Model:
    """One model of a run as it trains: what its samples row and the run's job make of it."""

    run: Run
    model_id: int
    arch: Arch
    recipe: Recipe       # the run's, with the fields its space draws replaced by the model's
    seed: int
    batch_size: int


def model_of(job: RunJob, model_id: int, sample=None, seed: int | None = None,
             batch_size: int | None = None) -> Model:
    """The model `model_id` of the job's run; `sample` is its samples row (read when None);
    `seed` and `batch_size` replace the job's (a re-training under a result row's record)."""
    run = job.run
    if sample is None:
        sample = run.samples().set_index("model_id", drop=False).loc[model_id]
    arch = arch_of(run, sample)
    recipe = recipe_of(run, job.recipe, sample)
    seed = model_seed(job.seed, model_id) if seed is None else seed
    return Model(run, model_id, arch, recipe, seed, batch_size or recipe.batch_size)


def pipeline(job: RunJob, device):
    """The job's data on `device` at the run's resolution (under the run's recipe: a model's
    drawn fields never change the data)."""
    from dsd.data.registry import load
    from dsd.train.pipeline import make_pipeline

    return make_pipeline(load(job.recipe.dataset, job.data_dir), job.recipe, device,
                         job.run.shape().resolution)


def steps(m: Model, pipe, device, batch_size: int, ckpt: Path | None = None, progress=None,
          on_step=None, step: str = "eager") -> Generator:
    """The model's training, yielding after each step (dsd.train.loop.train_steps)."""
    from dsd.train import loop

    return loop.train_steps(m.arch, pipe, m.recipe, device, m.seed, batch_size, ckpt, progress,
                            on_step, step)


def result_row(m: Model, res, batch_size: int, device, device_name: str) -> dict:
    """The model's result row (dsd.store.results) for a TrainResult `res`."""
    import torch

    from dsd.provenance import stamp
    from dsd.train.step import precision

    return {
        "model_id": m.model_id, "status": res.status, "error_min": res.error_min,
        "error_last": res.error_last, "curve": res.curve, "train_loss": res.train_loss,
        "epochs": res.epochs, "seconds": res.seconds,
        "images_per_second": res.images_per_second, "device": device_name,
        "dataset": m.recipe.dataset, "recipe": m.recipe.to_json(),
        "message": res.message, "seed": m.seed, "batch_size": batch_size,
        "threads": torch.get_num_threads(), "step": res.step, "precision": precision(device),
        **stamp(),
    }


def device_name(device) -> str:
    """The results' `device` column: the GPU's name, or the CPU with its thread count."""
    import torch

    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()}threads"


def set_threads(options: BatchOptions) -> None:
    """The thread count a worker trains with: --threads, else the default (resolve_threads)."""
    import torch

    torch.set_num_threads(options.threads or resolve_threads(None))


def train_one(job: RunJob, model_id: int, options: BatchOptions, *, seed: int | None = None,
              batch_size: int | None = None, pipe=None) -> dict:
    """Train model `model_id` of the job's run as a train-batch worker would, on the
    options' device, threads and step mode; its result row. No claim, no checkpoint, no
    result file: the caller decides what to do with the row. `seed` and `batch_size`
    replace the run's (to train a model again as its row records); `pipe` is the job's
    data (`pipeline`) when the caller holds it already."""
    import torch

    from dsd.train.streams import drive

    set_threads(options)
    device = torch.device(options.device)
    name = device_name(device)
    m = model_of(job, model_id, seed=seed, batch_size=batch_size)
    pipe = pipeline(job, device) if pipe is None else pipe
    res = drive(steps(m, pipe, device, m.batch_size, step=options.step))
    return result_row(m, res, m.batch_size, device, name)
