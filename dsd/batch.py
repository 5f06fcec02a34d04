"""train-batch: train every model of a run that has no final result yet.

Workers (this process, or N spawned processes sharing the device) walk the same list
of models; a claim decides who trains which, so any number of workers, on any number of
hosts, can point at one run directory. A crash or kill loses at most the model in flight.
Failures are data: NaN loss -> diverged, CUDA out-of-memory -> oom (after one retry at
half the batch), any other exception -> failed; the batch moves on.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from dsd.claims import DEFAULT_LEASE, try_claim
from dsd.errors import DsdError
from dsd.recipe import Recipe
from dsd.results import model_done, write_result
from dsd.rundir import Run

Event = dict
Emit = Callable[[Event], None]


@dataclass(frozen=True)
class BatchConfig:
    run: str
    recipe: Recipe
    data_dir: str | None = None
    device: str = "cpu"
    seed: int = 0
    limit: int | None = None
    retry_failed: bool = False
    shard: tuple[int, int] = (0, 1)
    lease: float = DEFAULT_LEASE
    threads: int | None = None


def model_seed(seed: int, model_id: int) -> int:
    """--seed plus the model id fix the initialisation and the data order."""
    return seed * 1_000_003 + model_id


def todo(run: Run, cfg: BatchConfig) -> list[int]:
    from dsd.results import done_ids

    ids = [int(i) for i in run.samples().model_id]
    done = done_ids(run.results_dir, cfg.retry_failed)
    i, n = cfg.shard
    return [m for m in ids if m not in done and m % n == i]


class Worker:
    """Trains models of one run, one at a time, through the claims."""

    def __init__(self, cfg: BatchConfig, emit: Emit, name: str = "w0"):
        import torch

        from dsd import data
        from dsd.pipeline import make_pipeline

        self.cfg, self.emit, self.name = cfg, emit, name
        self.run = Run(Path(cfg.run))
        self.samples = self.run.samples().set_index("model_id", drop=False)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(cfg.device)
        ds = data.load(cfg.recipe.dataset, cfg.data_dir)
        self.pipe = make_pipeline(ds, cfg.recipe, self.device, self.run.shape().resolution)
        (self.run.path / "ckpt").mkdir(exist_ok=True)

    def work(self, ids: list[int], budget: Callable[[], bool] | None = None) -> None:
        for mid in ids:
            if budget is not None and not budget():
                return
            claim = try_claim(self.run.path / "claims", mid, self.cfg.lease)
            if claim is None:
                continue
            done = False
            try:
                if model_done(self.run.results_dir, mid, self.cfg.retry_failed):
                    done = True
                    continue
                row = self.attempt(mid)
                write_result(self.run.results_dir, row)
                done = True
                (self.run.path / "ckpt" / f"{mid}.pt").unlink(missing_ok=True)
                self.emit({"kind": "done", "worker": self.name, "model_id": mid,
                           "status": row["status"], "error": row["error_min"]})
            finally:
                claim.release(done)

    def attempt(self, mid: int) -> dict:
        """Train one model; every outcome becomes a result row."""
        import torch

        from dsd.train import TrainResult, train_model

        arch = self.run.arch(self.samples.loc[mid])
        seed = model_seed(self.cfg.seed, mid)
        batch = self.cfg.recipe.batch_size
        ckpt = self.run.path / "ckpt" / f"{mid}.pt"
        self.emit({"kind": "start", "worker": self.name, "model_id": mid})

        def progress(epoch: int, epochs: int, ips: float) -> None:
            self.emit({"kind": "epoch", "worker": self.name, "model_id": mid, "epoch": epoch,
                       "epochs": epochs, "ips": ips})

        res, message = None, ""
        for attempt in range(2):
            try:
                res = train_model(arch, self.pipe, self.cfg.recipe, self.device, seed, batch,
                                  ckpt, progress)
                break
            except torch.cuda.OutOfMemoryError as e:
                torch.cuda.empty_cache()
                ckpt.unlink(missing_ok=True)
                message = f"CUDA out of memory at batch {batch}: {str(e).splitlines()[0]}"
                if attempt == 0:
                    batch //= 2  # one retry at half the batch, recorded in batch_size
                    continue
                res = TrainResult("oom", message=message)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # a failure is data: record it and move on
                tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
                res = TrainResult("failed", message=f"{type(e).__name__}: {e} ({tb})")
                break
        if message and res.status == "ok":
            res.message = f"retried at batch {batch} after: {message}"
        return self._row(mid, res, seed, batch)

    def _row(self, mid: int, res, seed: int, batch: int) -> dict:
        return {
            "model_id": mid, "status": res.status, "error_min": res.error_min,
            "error_last": res.error_last, "curve": res.curve, "train_loss": res.train_loss,
            "epochs": res.epochs, "seconds": res.seconds,
            "images_per_second": res.images_per_second, "device": self._device_name(),
            "dataset": self.cfg.recipe.dataset, "recipe": self.cfg.recipe.to_json(),
            "message": res.message, "seed": seed, "batch_size": batch,
        }

    def _device_name(self) -> str:
        import torch

        if self.device.type == "cuda":
            return f"cuda:{torch.cuda.get_device_name(self.device)}"
        return f"cpu:{torch.get_num_threads()}threads"


def die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL to this process when its parent dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def child_main(cfg: BatchConfig, ids: list[int], name: str, queue, started, lock) -> None:
    """Entry point of a spawned worker process."""
    die_with_parent()

    def emit(ev: Event) -> None:
        queue.put(ev)

    def budget() -> bool:
        if cfg.limit is None:
            return True
        with lock:
            if started.value >= cfg.limit:
                return False
            started.value += 1
            return True

    try:
        Worker(cfg, emit, name).work(ids, budget)
    except KeyboardInterrupt:
        pass
    except DsdError as e:
        queue.put({"kind": "error", "worker": name, "message": str(e)})
    finally:
        queue.put({"kind": "exit", "worker": name, "pid": os.getpid(),
                   "host": socket.gethostname()})


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DsdError("--device cuda: no CUDA device is visible here; use --device cpu or auto")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise DsdError(f"--device must be auto, cpu or cuda, got {name!r}")
    return name


def config_threads(cfg: BatchConfig, workers: int) -> BatchConfig:
    """Split the cores among the workers so they do not oversubscribe (GPU workers too:
    their host-side ops stall when many threads contend for few cores)."""
    cores = len(os.sched_getaffinity(0))
    return replace(cfg, threads=max(1, cores // workers))


def run_batch(cfg: BatchConfig, workers: int, on_event: Emit) -> list[int]:
    """Train the run's remaining models with `workers` processes; returns the todo list."""
    run = Run(Path(cfg.run))
    ids = todo(run, cfg)
    if not ids:
        return ids
    on_event({"kind": "plan", "total": len(ids) if cfg.limit is None else min(cfg.limit, len(ids))})
    cfg = config_threads(cfg, workers)
    if workers <= 1:
        started = 0

        def budget() -> bool:
            nonlocal started
            started += 1
            return cfg.limit is None or started <= cfg.limit

        Worker(cfg, on_event).work(ids, budget)
        return ids
    _run_children(cfg, workers, ids, on_event)
    return ids


def _run_children(cfg: BatchConfig, workers: int, ids: list[int], on_event: Emit) -> None:
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")  # CUDA cannot be forked; spawn is safe everywhere
    q, started, lock = ctx.Queue(), ctx.Value("i", 0), ctx.Lock()
    procs = []
    for i in range(workers):
        # Each worker starts at its own offset so they do not all contend for one model.
        mine = ids[i::workers] + [m for j, m in enumerate(ids) if j % workers != i]
        p = ctx.Process(target=child_main, args=(cfg, mine, f"w{i}", q, started, lock), daemon=True)
        p.start()
        procs.append(p)
    try:
        while any(p.is_alive() for p in procs) or not q.empty():
            try:
                on_event(q.get(timeout=0.5))
            except queue_mod.Empty:
                continue
    except KeyboardInterrupt:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        raise
    finally:
        for p in procs:
            p.join(timeout=5)
