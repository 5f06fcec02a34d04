"""The Python API: what a notebook needs, without importing dsd's internal modules.

Every function here is the library call behind one CLI command, so the two agree:

    import dsd
    run = dsd.sample("regnetx", n=6, out="runs/nb", dataset="digits", flops="100K:3M")
    dsd.train_batch(run, epochs=2)           # dsd train-batch
    df = dsd.results(run)                    # one row per model: architecture, complexity, error
    net = dsd.build_model(run, model_id=0)   # a torch nn.Module
    cmp = dsd.compare([run, other])          # dsd edf compare, typed; cmp.to_json() is its --json

Sampling, results and comparisons never import torch; `train_batch` and `build_model` do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dsd.errors import DsdError
from dsd.space.rebuild import arch_of
from dsd.store.run import Run
from dsd.store.run import open_run as _open_run

if TYPE_CHECKING:
    from dsd.analysis.comparison import Comparison


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
    from dsd.train.setup import TrainRequest, batch_options, prepare

    path = run.path if isinstance(run, Run) else run
    req = TrainRequest(dataset=dataset, data_dir=data_dir, overrides=recipe, seed=seed,
                       device=device, limit=limit, threads=threads)
    job = prepare(path, req)
    return len(run_batch(job, batch_options(req), workers, lambda event: None))


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


def compare(runs: list[Run | str | Path], **options) -> Comparison:
    """`dsd edf compare`, typed: each run's EDF, bands and good range (`.runs`), the KS tests
    (`.pairs`), the normalisation range, and any difference between the runs' recipes;
    `.to_json()` is the command's `--json`. Options as the CLI's: normalize="flops",
    bins=5, metric="error_last", bootstrap=2000, strict=True, ..."""
    from dataclasses import fields

    from dsd.analysis.runs import Options
    from dsd.analysis.runs import compare as _compare

    known = {f.name for f in fields(Options)}
    bad = sorted(set(options) - known)
    if bad:
        raise DsdError(f"unknown option(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
    return _compare([r.path if isinstance(r, Run) else r for r in runs], Options(**options))


def show(run: Run | str | Path, **options) -> Comparison:
    """`dsd edf show`: the EDF of one run with its bands and good range (as `compare`)."""
    return compare([run], **options)


def status(run: Run | str | Path) -> dict:
    """`dsd status --json`: counts of finished, failed and remaining models, from the files."""
    from dsd.store.status import run_status

    return run_status(run.path if isinstance(run, Run) else run)


def adjust(run_a: str | Path, run_b: str | Path, covariates: list[str], **options):
    """`dsd edf adjust`: b's effect on error, raw and at equal covariates."""
    from dsd.analysis.adjust import adjust_runs

    return adjust_runs(run_a, run_b, covariates, **options)


def report(runs: list[str | Path], out: str | Path, **options) -> Path:
    """`dsd report`: one self-contained HTML report of the runs; options as compare's."""
    from dsd.analysis.report import build_report
    from dsd.analysis.runs import Options

    return build_report([str(r) for r in runs], out, Options(**options))


def plan(run_a: str | Path, run_b: str | Path, **options) -> dict:
    """`dsd plan --json`: models per space to detect a stated effect (d=, shift=, power=...)."""
    from dsd.analysis.plan import plan_runs

    return plan_runs(str(run_a), str(run_b), **options)


def fit(run: str | Path, top: int = 20, **options) -> dict:
    """`dsd fit --json`: quantized linear fits of the run's best models."""
    from dsd.analysis.refine import fit_run

    return fit_run(run, top, **options)


def trend(runs: list[str | Path], params: list[str], **options) -> dict:
    """`dsd trend --json`: error against parameters, with each run's good range."""
    from dsd.analysis.trends import trend_runs

    return trend_runs(runs, params, **options)


def list_spaces() -> list[dict]:
    """`dsd spaces list --json`: every built-in and ./spaces/*.toml space."""
    from dsd.space import spec

    return [spec.describe(spec.load(str(p))) for p in spec.all_files()]


def show_space(name: str) -> dict:
    """`dsd spaces show NAME --json`: one space's parameters, draws and constraints."""
    from dsd.space import spec

    return spec.describe(spec.load(name))


def describe_model(arch) -> dict:
    """`dsd model regnet|anynet --json`: an architecture's stages and exact complexity.
    Build `arch` with dsd.model.arch.regnet_arch or anynet_arch."""
    from dsd.model.complexity import describe

    return describe(arch)


def check_models(n: int = 200, seed: int = 0, blocks: list[str] | None = None) -> list[dict]:
    """`dsd model check`: analytic counts against built torch modules, per block and stem."""
    from dsd.model.verify import check_all

    return check_all(n, seed, blocks)


def study_run(path: str | Path, workers: int = 1, **train) -> int:
    """`dsd study run --no-report`: sample, derive and train what is missing; returns how
    many models were trained. `train`: device, limit, threads, step, streams."""
    from dsd.study import spec as S
    from dsd.train.batch import run_batch

    st = S.load(path)
    S.sample_missing(st)
    S.derive_missing(st)
    jobs, options = S.configs(st, **train)
    return len(run_batch(jobs, options, workers, lambda event: None))


def study_report(path: str | Path):
    """`dsd study report`: figures, report.html and FINDINGS.md from what is trained."""
    from dsd.study.report import write_study_report
    from dsd.study.spec import load

    return write_study_report(load(path))


def study_verify(path: str | Path, models: int = 3, **options):
    """`dsd study verify`: re-train published models and judge the differences."""
    from dsd.study.verify import verify_study

    return verify_study(path, models, **options)


def study_summary(paths: list[str | Path]) -> str:
    """`dsd study summary`: one markdown page of every finding's verdict across studies."""
    from dsd.study.spec import load
    from dsd.study.summary import summary_markdown

    return summary_markdown([load(p) for p in paths],
                            " ".join(["dsd study summary", *(str(p) for p in paths)]))


def import_nds(path: str | Path, out: str | Path, dataset: str | None = None):
    """`dsd import nds`: the ICCV 2019 paper's released models as a run."""
    from dsd.interop.nds import import_nds as _import

    return _import(path, out, dataset)


def import_pycls_sweep(path: str | Path, out: str | Path):
    """`dsd import pycls-sweep`: a pycls sweep's jobs and errors as a run."""
    from dsd.interop.pycls_sweep import import_pycls_sweep as _import

    return _import(path, out)


def export(target: str, out: str | Path, *, run: Run | str | Path | None = None,
           model_id: int | None = None, published: str | None = None, recipe=None):
    """`dsd export pycls|torchvision|timm|onnx`: a sampled model (run, model_id) or a
    published RegNet (published="RegNetX-400MF") for another tool."""
    from dsd.interop.export import export as _export
    from dsd.interop.export import from_published, from_run

    if (run is None) == (published is None):
        raise DsdError("export needs either run= and model_id=, or published=")
    net = from_published(published) if published else from_run(run, model_id)
    return _export(target, net, out, recipe)


def sweep_cancel(run: Run | str | Path) -> list[str]:
    """`dsd sweep cancel`: cancel the run's sweep tasks; finished models stay."""
    from dsd.cluster.sweep import cancel

    return cancel(run if isinstance(run, Run) else _open_run(run))


def sweep_status(run: Run | str | Path) -> list[dict]:
    """`dsd sweep status --json`: each submission with its tasks' states."""
    from dsd.cluster.sweep import job_states, submissions

    r = run if isinstance(run, Run) else _open_run(run)
    return [{**sub, "states": job_states(r, sub)} for sub in submissions(r)]


# Each command, the function of this module behind it. `sweep launch` is the one command
# with no function here: it needs a cluster's executor settings, which live in its flags.
COMMANDS = {
    "sample": "sample", "train-batch": "train_batch", "status": "status",
    "edf compare": "compare", "edf show": "show", "edf adjust": "adjust", "report": "report",
    "plan": "plan", "fit": "fit", "trend": "trend", "spaces list": "list_spaces",
    "spaces show": "show_space", "model regnet": "describe_model", "model anynet": "describe_model",
    "model check": "check_models", "study run": "study_run", "study report": "study_report",
    "study verify": "study_verify", "study summary": "study_summary", "import nds": "import_nds",
    "import pycls-sweep": "import_pycls_sweep", "export pycls": "export",
    "export torchvision": "export", "export timm": "export", "export onnx": "export",
    "sweep status": "sweep_status", "sweep cancel": "sweep_cancel", "sweep launch": None,
}


__all__ = ["open_run", "sample", "train_batch", "results", "build_model", "compare", "show",
           "status", "adjust", "report", "plan", "fit", "trend", "list_spaces", "show_space",
           "describe_model",
           "check_models", "study_run", "study_report", "study_verify", "study_summary",
           "import_nds", "import_pycls_sweep", "export", "sweep_status", "sweep_cancel"]
