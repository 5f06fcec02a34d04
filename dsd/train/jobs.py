"""What a training call is given: what a user asks (`TrainRequest`), checked by
dsd.train.setup into a job per run (`RunJob`) and the options of the whole batch
(`BatchOptions`); and the rules every path that trains a run's model shares (its seed,
the threads of a worker)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dsd.data.recipe import Recipe, option
from dsd.errors import DsdError
from dsd.store.claims import DEFAULT_LEASE
from dsd.store.run import Run


@dataclass(frozen=True)
class TrainRequest:
    """What a user asks of a training call, before checking. A field with an `option` is a
    training option of train-batch and sweep launch (dsd.cli.train_options), as are the
    recipe's (`overrides`, by field name); limit, shard and threads are each command's own."""

    dataset: str | None = field(default=None, metadata=option("Data set (default: the run's)."))
    data_dir: str | None = field(default=None, metadata=option("Where the data set lives."))
    download: bool = field(default=False, metadata=option(
        "Fetch Fashion-MNIST via torchvision into --data-dir (needs internet)."))
    overrides: dict | None = None
    seed: int = field(default=0, metadata=option(
        "Seed; with the model id it fixes init and data order."))
    device: str = field(default="auto", metadata=option("auto, cpu or cuda."))
    limit: int | None = None
    retry_failed: bool = field(default=False, metadata=option("Train failed/oom models again."))
    shard: str | None = None
    lease: float = field(default=300.0, metadata=option(
        "Seconds after which another host's silent claim is taken over."))
    threads: int | None = None
    step: str = field(default="eager", metadata=option(
        "How each training step runs: eager; graph (CUDA: the whole step captured once in a CUDA "
        "graph and replayed); compile (torch.compile, compile time counted)."))
    streams: int = field(default=1, metadata=option(
        "Models each worker trains in turn, one step each (on a GPU, each on its own CUDA stream)."))


@dataclass(frozen=True)
class RunJob:
    """One run to train: its directory, its recipe (train.toml's), the data and the seed."""

    run: Run
    recipe: Recipe
    data_dir: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class BatchOptions:
    """How a batch trains, whatever its runs: the same for every run of one call."""

    device: str = "cpu"
    limit: int | None = None
    retry_failed: bool = False
    shard: tuple[int, int] = (0, 1)
    lease: float = DEFAULT_LEASE
    threads: int | None = None
    step: str = "eager"          # dsd.train.step: eager, graph or compile
    streams: int = 1             # models stepped in turn by each worker (dsd.train.streams)


def model_seed(seed: int, model_id: int) -> int:
    """--seed plus the model id fix the initialisation and the data order."""
    return seed * 1_000_003 + model_id


def resolve_threads(threads: int | None) -> int:
    """Threads per worker: --threads, else OMP_NUM_THREADS, else one.

    One is the measured default (README, Training): small models gain little from a
    second thread on an idle machine, and lose most of their speed when another process
    holds a core, as every parallel op then waits at its OpenMP barrier. Parallelism
    comes from workers instead (--workers auto: one per core).
    """
    if threads is not None:
        if threads < 1:
            raise DsdError("--threads must be at least 1")
        return threads
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return 1
