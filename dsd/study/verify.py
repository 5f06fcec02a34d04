"""Re-train published models of a study with their recorded recipe and seed.

Each result row records the seed, batch size, thread count and code version it was
trained with; re-training a model under them on the same kind of device should give its
error again (on a CPU with the same thread count, bit for bit in our runs; on a GPU,
within run-to-run noise, as cuDNN picks kernels by timing).
"""

from __future__ import annotations

import numpy as np

from dsd.data.recipe import read_for_run
from dsd.store.results import read_results
from dsd.store.run import Run
from dsd.study.spec import Study


def pick(st: Study, k: int, seed: int) -> list[tuple[str, int]]:
    """k (space, model id) pairs drawn uniformly from the study's ok models."""
    pool = []
    for s in st.spaces:
        final = read_results(st.run_dir(s) / "results").final()
        if not final.empty:
            pool += [(st.label(s), int(m)) for m in final[final.status == "ok"].model_id]
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(pool), size=min(k, len(pool)), replace=False) if pool else []
    return [pool[i] for i in sorted(idx)]


def retrain(st: Study, space: str, model_id: int, device: str = "cpu") -> dict:
    import time

    import torch

    from dsd.data.loaders import load
    from dsd.train.loop import train_model
    from dsd.train.pipeline import make_pipeline

    run = Run(st.out / space)
    row = read_results(run.results_dir).final().loc[model_id]
    recipe = read_for_run(run)
    recorded = row.get("threads")
    threads = int(recorded) if recorded is not None and recorded == recorded else 1  # NaN: older rows
    torch.set_num_threads(threads)
    dev = torch.device(device)
    pipe = make_pipeline(load(recipe.dataset, st.data_dir), recipe, dev, run.shape().resolution)
    arch = run.arch(run.samples().set_index("model_id", drop=False).loc[model_id])
    t0 = time.perf_counter()
    res = train_model(arch, pipe, recipe, dev, int(row["seed"]), int(row["batch_size"]))
    return {"space": space, "model_id": model_id, "published": float(row["error_min"]),
            "retrained": res.error_min, "diff": res.error_min - float(row["error_min"]),
            "threads": threads, "published_device": row["device"], "seconds": time.perf_counter() - t0,
            "published_commit": row.get("git_commit")}
