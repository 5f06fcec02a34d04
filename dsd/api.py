"""The Python API: what a notebook needs, without importing dsd's internal modules.

Every function here is the library call behind one CLI command, so the two agree:

    import dsd
    run = dsd.sample("regnetx", n=6, out="runs/nb", dataset="digits", flops="100K:3M")
    dsd.train_batch(run, epochs=2)           # dsd train-batch
    df = dsd.results(run)                    # one row per model: architecture, complexity, error
    net = dsd.build_model(run, model_id=0)   # a torch nn.Module
    doc = dsd.compare([run, other])          # dsd edf compare --json, as a dict

Sampling, results and comparisons never import torch; `train_batch` and `build_model` do.
"""

from __future__ import annotations

from pathlib import Path

from dsd.errors import DsdError
from dsd.space.rebuild import arch_of
from dsd.store.run import Run
from dsd.store.run import open_run as _open_run


def open_run(path: str | Path) -> Run:
    """An existing run directory (samples, results, recipe, paths)."""
    return _open_run(path)


def sample(space: str, n: int, out: str | Path, *, dataset: str | None = None,
           flops: str | None = None, params: str | None = None, acts: str | None = None,
           seed: int = 0) -> Run:
    """Draw n distinct models of `space` (a built-in name or a .toml path) into a new run
    at the data set's shape (ImageNet's without one), as `dsd sample`. Windows are
    "LO:HI" strings with K/M/G suffixes; None uses the space's default window."""
    from dsd.data.registry import dataset_shape
    from dsd.model.arch import IMAGENET
    from dsd.space.sample_run import sample_new

    shape = dataset_shape(dataset) if dataset else IMAGENET
    rep = sample_new(space, n, Path(out), shape, {"flops": flops, "params": params, "acts": acts},
                     seed=seed, dataset=dataset)
    return rep.run


def train_batch(run: Run | str | Path, *, workers: int = 1, threads: int | None = None,
          device: str = "auto", dataset: str | None = None, data_dir: str | None = None,
          seed: int = 0, limit: int | None = None, **recipe) -> int:
    """Train every model of the run without a final result, as `dsd train-batch`;
    `recipe` overrides the data set's default recipe (epochs=2, lr=0.05, train_subset=...).
    Returns how many models were trained in this call."""
    from dsd.train.batch import run_batch
    from dsd.train.setup import TrainRequest, prepare

    path = run.path if isinstance(run, Run) else run
    req = TrainRequest(dataset=dataset, data_dir=data_dir, overrides=recipe, seed=seed,
                       device=device, limit=limit, threads=threads)
    cfg = prepare(path, req)
    return len(run_batch(cfg, workers, lambda event: None))


def results(run: Run | str | Path):
    """One row per sampled model: its architecture and complexity (samples.parquet) and,
    once trained, its final result (status, error_min, error_last, curve, seconds, ...)."""
    r = run if isinstance(run, Run) else _open_run(run)
    from dsd.store.results import read_results

    samples = r.samples()
    final = read_results(r.results_dir).final()
    if final.empty:
        return samples
    # A space that draws epochs per model has an `epochs` sample column too: the result's
    # (the epochs trained) becomes epochs_trained there.
    return samples.merge(final.reset_index(drop=True), on="model_id", how="left",
                         suffixes=("", "_trained"))


def build_model(run: Run | str | Path, model_id: int, zero_init_final_gamma: bool = False):
    """The torch nn.Module of one sampled model, freshly initialised."""
    from dsd.model.net import build

    r = run if isinstance(run, Run) else _open_run(run)
    samples = r.samples().set_index("model_id", drop=False)
    if model_id not in samples.index:
        raise DsdError(f"{r.path} has no model {model_id} (ids 0..{len(samples) - 1})")
    return build(arch_of(r, samples.loc[model_id]), zero_init_final_gamma)


def compare(runs: list[Run | str | Path], **options) -> dict:
    """`dsd edf compare --json` as a dict: EDFs, bands, good ranges, KS tests, min-of-k,
    and any difference between the runs' recipes. Options as the CLI's: normalize="flops",
    bins=5, metric="error_last", bootstrap=2000, strict=True, ..."""
    from dataclasses import fields

    from dsd.analysis.runs import Options
    from dsd.analysis.runs import compare as _compare

    known = {f.name for f in fields(Options)}
    bad = sorted(set(options) - known)
    if bad:
        raise DsdError(f"unknown option(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
    return _compare([r.path if isinstance(r, Run) else r for r in runs], Options(**options))


__all__ = ["open_run", "sample", "train_batch", "results", "build_model", "compare"]
