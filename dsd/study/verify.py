"""Re-train published models of a study with their recorded recipe and seed.

Each result row records the seed, batch size, thread count, code version and platform
it was trained with, and its recipe is the run's with the fields its space draws per
model (lr, wd, ...). Re-training under them on the same CPU model, threads and versions
gives the error again bit for bit. Elsewhere (another CPU model, BLAS or oneDNN build, a
GPU) the floating-point sums differ, a short training amplifies that, and a model's error
moves by about as much as another training seed moves it (points, not digits, at the
published study's regime). So agreement is judged as a population: the mean difference
over the re-trained models within a tolerance, and no model beyond a wider one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from dsd.store.recipe_file import read_for_run
from dsd.store.results import read_results
from dsd.store.run import Run
from dsd.study.spec import Study


def pick(st: Study, k: int, seed: int) -> list[tuple[str, int]]:
    """k (space, model id) pairs drawn uniformly from the study's ok models."""
    pool = []
    for s in st.spaces:
        final = read_results(Run(st.run_dir(s)).results_dir).final()
        if not final.empty:
            pool += [(st.label(s), int(m)) for m in final[final.status == "ok"].model_id]
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(pool), size=min(k, len(pool)), replace=False) if pool else []
    return [pool[i] for i in sorted(idx)]


def retrain(st: Study, space: str, model_id: int, device: str = "cpu") -> dict:
    """Train the model again as its result row records it (dsd.train.one.train_one)."""
    import time

    from dsd.train.jobs import BatchOptions, RunJob
    from dsd.train.one import train_one

    run = Run(st.out / space)
    row = read_results(run.results_dir).final().loc[model_id]
    recorded = row.get("threads")
    threads = int(recorded) if recorded is not None and recorded == recorded else 1  # NaN: older rows
    job = RunJob(run, read_for_run(run), st.data_dir)
    t0 = time.perf_counter()
    again = train_one(job, model_id, BatchOptions(device=device, threads=threads),
                      seed=int(row["seed"]), batch_size=int(row["batch_size"]))
    return {"space": space, "model_id": model_id, "published": float(row["error_min"]),
            "retrained": again["error_min"], "diff": again["error_min"] - float(row["error_min"]),
            "threads": threads, "published_device": row["device"], "seconds": time.perf_counter() - t0,
            "published_commit": row.get("git_commit"),
            "platform_differs": _platform_differs(row.get("platform"))}


def _platform_differs(published: str | None) -> dict[str, tuple]:
    """{key: (published, here)} for every platform value that differs (rows written before
    the platform was recorded: {"platform": ("not recorded", ...)})."""
    from dsd.provenance import platform_info

    here = platform_info()
    if not isinstance(published, str):
        return {"platform": ("not recorded", "recorded now")}
    then = json.loads(published)
    return {k: (then.get(k), here.get(k)) for k in sorted(set(then) | set(here))
            if then.get(k) != here.get(k)}


@dataclass(frozen=True)
class Agreement:
    """The re-trained errors against the published ones, as a population."""

    k: int
    mean: float          # mean difference, points (re-trained - published)
    ci: tuple[float, float]
    p: float             # paired t-test of a zero mean difference
    largest: float       # largest absolute difference
    mean_tolerance: float
    max_tolerance: float

    @property
    def agrees(self) -> bool:
        return abs(self.mean) <= self.mean_tolerance and self.largest <= self.max_tolerance


def agreement(diffs: list[float], mean_tolerance: float = 1.5, max_tolerance: float = 5.0) -> Agreement:
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    k, mean = len(d), float(d.mean())
    sd = float(d.std(ddof=1)) if k > 1 else 0.0
    if sd == 0.0:  # identical (bit-exact) or one model: no spread to test against
        return Agreement(k, mean, (mean, mean), 1.0 if mean == 0 else 0.0,
                         float(np.abs(d).max()), mean_tolerance, max_tolerance)
    half = float(stats.t.ppf(0.975, k - 1) * sd / np.sqrt(k))
    p = float(stats.ttest_1samp(d, 0.0).pvalue)
    return Agreement(k, mean, (mean - half, mean + half), p, float(np.abs(d).max()),
                     mean_tolerance, max_tolerance)


@dataclass
class Verification:
    study: str
    device: str
    rows: list[dict]                    # one per re-trained model (retrain's dict)
    platform_differs: dict[str, tuple]  # key -> (published, here), over all rows
    agreement: Agreement


def verify_study(path, models: int = 3, seed: int = 0, device: str = "cpu",
                 mean_tolerance: float = 1.5, tolerance: float = 5.0, progress=None) -> Verification:
    """`dsd study verify`: re-train `models` published models of the study file at `path`
    and judge the differences as a population. `progress(row)` is called after each model."""
    from dsd.errors import DsdError, ParamError
    from dsd.study.spec import load
    from dsd.train.batch import resolve_device

    if models < 1:
        raise ParamError("models", "must be at least 1")
    st, dev = load(path), resolve_device(device)
    chosen = pick(st, models, seed)
    if not chosen:
        raise DsdError(f"{path}: no trained model to verify yet; run `dsd study run {path}` first")
    rows = []
    for space, mid in chosen:
        rows.append(retrain(st, space, mid, dev))
        if progress:
            progress(rows[-1])
    differs = {k: v for r in rows for k, v in r["platform_differs"].items()}
    return Verification(st.name, dev, rows, differs,
                        agreement([r["diff"] for r in rows], mean_tolerance, tolerance))
