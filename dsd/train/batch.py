"""train-batch: train every model of a run that has no final result yet.

Workers (this process, or N spawned processes sharing the device) walk the same list
of models; a claim decides who trains which, so any number of workers, on any number of
hosts, can point at one run directory. A crash or kill loses at most the model in flight.
Failures are data: NaN loss -> diverged, out of memory (CUDA's, cuDNN's or cuBLAS's) ->
oom (after one retry at half the batch), any other exception -> failed; the batch moves
on. A lost device (a sticky CUDA error) is not the models' failure: the worker records
the model in flight and stops, leaving the rest of its queue unclaimed (dsd.train.faults).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import traceback
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace

from dsd.errors import DsdError
from dsd.store.claims import try_claim
from dsd.store.results import model_done, write_result
from dsd.store.run import Run
from dsd.train import faults, one
from dsd.train.jobs import BatchOptions, RunJob, resolve_threads
from dsd.train.streams import drive, step_in_turn

Event = dict
Emit = Callable[[Event], None]

Item = tuple[int, int]  # (index of the run's job, model id)


def todo(run: Run, options: BatchOptions) -> list[int]:
    from dsd.store.results import done_ids

    ids = run.samples(["model_id"]).model_id.tolist()
    done = done_ids(run.results_dir, options.retry_failed)
    i, n = options.shard
    return [m for m in ids if m not in done and m % n == i]


def interleave(lists: list[list[int]]) -> list[Item]:
    """Round-robin over runs, so a study stopped early holds a share of every space."""
    out: list[Item] = []
    for k in range(max((len(x) for x in lists), default=0)):
        out += [(i, ids[k]) for i, ids in enumerate(lists) if k < len(ids)]
    return out


def _jobs(jobs: RunJob | list[RunJob]) -> list[RunJob]:
    return [jobs] if isinstance(jobs, RunJob) else list(jobs)


@dataclass
class _RunContext:
    job: RunJob
    run: Run
    samples: object
    pipe: object


class Worker:
    """Trains models of one or more runs, one at a time, through the claims.

    Runs that share a data set, recipe and resolution share one pipeline (the data set
    is loaded once per process). Each model trains through dsd.train.one, as
    `train_one` trains it; the worker adds the claims, checkpoints, the out-of-memory
    retry, models stepped in turn and what a failure means.
    """

    def __init__(self, jobs: RunJob | list[RunJob], options: BatchOptions, emit: Emit,
                 name: str = "w0"):
        import torch

        self.jobs, self.options = _jobs(jobs), options
        self.emit, self.name = emit, name
        one.set_threads(options)
        self.device = torch.device(options.device)
        self.device_name = one.device_name(self.device)  # now: after a sticky error CUDA cannot tell
        self._contexts: dict[int, _RunContext] = {}
        self._pipes: dict[tuple, object] = {}

    def context(self, i: int) -> _RunContext:
        if i not in self._contexts:
            job = self.jobs[i]
            run = job.run
            key = (job.recipe, job.data_dir, run.shape().resolution)
            if key not in self._pipes:
                self._pipes[key] = one.pipeline(job, self.device)
            run.ckpt_dir.mkdir(exist_ok=True)
            self._contexts[i] = _RunContext(job, run, run.samples().set_index("model_id", drop=False),
                                            self._pipes[key])
        return self._contexts[i]

    def work(self, items: list[Item] | list[int], budget: Callable[[], bool] | None = None) -> None:
        models = self._claimed(items, budget)  # one step generator per claimed model
        if self.options.streams > 1:
            step_in_turn(models, self.options.streams, self.device)
            return
        for model in models:
            drive(model)

    def _claimed(self, items, budget) -> Iterator[Generator]:
        """One generator per model this worker claims: it trains the model (yielding after
        each step), writes its result row and lets the claim go, whatever happens."""
        for item in items:
            i, mid = item if isinstance(item, tuple) else (0, item)
            if budget is not None and not budget():
                return
            ctx = self.context(i)
            claim = try_claim(ctx.run.claims_dir, mid, self.options.lease)
            if claim is not None:
                yield self._job(ctx, mid, claim)

    def _job(self, ctx: _RunContext, mid: int, claim) -> Generator[None, None, None]:
        done = False
        try:
            if model_done(ctx.run.results_dir, mid, self.options.retry_failed):
                done = True
                return
            try:
                row = yield from self.attempt(ctx, mid)
            except faults.DeviceLost as lost:  # its row, then the worker stops
                write_result(ctx.run.results_dir, lost.row)
                done = True
                self.emit({"kind": "done", "worker": self.name, "run": ctx.run.name, "model_id": mid,
                           "status": "failed", "error": float("nan")})
                raise
            write_result(ctx.run.results_dir, row)
            done = True
            ctx.run.ckpt(mid).unlink(missing_ok=True)
            self.emit({"kind": "done", "worker": self.name, "run": ctx.run.name, "model_id": mid,
                       "status": row["status"], "error": row["error_min"]})
        finally:
            claim.release(done)

    def attempt(self, ctx: _RunContext, mid: int) -> Generator[None, None, dict]:
        """Train one model, yielding after each step; every outcome becomes a result row."""
        from dsd.train import loop
        from dsd.train.step import planned_mode

        mode = self.options.step
        m = one.model_of(ctx.job, mid, ctx.samples.loc[mid])  # the model's own drawn fields
        recipe, batch = m.recipe, m.batch_size
        ckpt = ctx.run.ckpt(mid)
        self.emit({"kind": "start", "worker": self.name, "run": ctx.run.name, "model_id": mid})

        def progress(epoch: int, epochs: int, ips: float) -> None:
            self.emit({"kind": "epoch", "worker": self.name, "run": ctx.run.name, "model_id": mid,
                       "epoch": epoch, "epochs": epochs, "ips": ips})

        def on_step(epoch: int, step: int, steps: int, ips: float) -> None:
            left = (recipe.epochs - epoch + 1) * steps - step  # training steps of this model
            self.emit({"kind": "step", "worker": self.name, "run": ctx.run.name, "model_id": mid,
                       "epoch": epoch, "epochs": recipe.epochs, "step": step, "steps": steps,
                       "ips": ips, "eta": left * batch / max(ips, 1e-9)})

        res, message = None, ""
        for attempt in range(2):
            try:
                res = yield from one.steps(m, ctx.pipe, self.device, batch, ckpt, progress, on_step, mode)
                break
            except KeyboardInterrupt:
                raise
            except Exception as e:  # a failure is data: record it and move on
                res = self._failure(e, m, batch)
                if res is not None:
                    break
                message = f"out of memory at batch {batch}: {faults.first_line(e)}"
                if attempt == 0:
                    batch //= 2  # one retry at half the batch, recorded in batch_size
                    continue
                res = loop.TrainResult("oom", message=message, step=planned_mode(mode))
        if message and res.status == "ok":
            retried = f"retried at batch {batch} after: {message}"
            res.message = f"{res.message}; {retried}" if res.message else retried
        return one.result_row(m, res, batch, self.device, self.device_name)

    def _failure(self, e: Exception, m: one.Model, batch: int):
        """A failed model's `failed` result; None for out of memory (the caller retries or
        records `oom`); DeviceLost, carrying this model's row, when the device is gone."""
        from dsd.train import loop
        from dsd.train.step import planned_mode

        mode = self.options.step
        probe = (lambda: faults.cuda_usable(self.device)) if self.device.type == "cuda" else None
        kind = faults.classify(e, probe)
        if kind == "sticky":
            why = (f"the device became unusable (worker {self.name} stopped; its other models are "
                   f"left for the next run): {faults.first_line(e)}")
            res = loop.TrainResult("failed", message=why, step=planned_mode(mode))
            raise faults.DeviceLost(why, one.result_row(m, res, batch, self.device,
                                                        self.device_name)) from e
        if kind == "other":
            tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
            return loop.TrainResult("failed", message=f"{type(e).__name__}: {e} ({tb})",
                                    step=planned_mode(mode))
        faults.free_cached_memory(self.device)
        m.run.ckpt(m.model_id).unlink(missing_ok=True)
        return None


def die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL to this process when its parent dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def child_main(jobs: list[RunJob], options: BatchOptions, items: list[Item], name: str, queue,
               started, lock) -> None:
    """Entry point of a spawned worker process."""
    die_with_parent()

    def emit(ev: Event) -> None:
        queue.put(ev)

    limit = options.limit

    def budget() -> bool:
        if limit is None:
            return True
        with lock:
            if started.value >= limit:
                return False
            started.value += 1
            return True

    try:
        Worker(jobs, options, emit, name).work(items, budget)
    except KeyboardInterrupt:
        pass
    except (DsdError, faults.DeviceLost) as e:
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


# Not measured on a GPU yet: small models leave one mostly idle, so several share it.
CUDA_AUTO_WORKERS = 4


def cores() -> int:
    return len(os.sched_getaffinity(0))


def resolve_workers(workers: str | int, device: str, threads: int | None = None) -> int:
    """--workers N, or auto: on a CPU one worker per core (or per --threads cores).

    Measured on a 2-core machine (README, Training): small models train faster as two
    one-thread processes than as one two-thread process, idle or under load.
    """
    if isinstance(workers, int) or str(workers).isdigit():
        n = int(workers)
        if n < 1:
            raise DsdError("--workers must be at least 1 (or auto)")
        return n
    if workers != "auto":
        raise DsdError(f"--workers takes a number or auto, got {workers!r}")
    if device.startswith("cuda"):
        return CUDA_AUTO_WORKERS
    return max(1, cores() // (threads or 1))


def run_batch(jobs: RunJob | list[RunJob], options: BatchOptions, workers: int,
              on_event: Emit) -> list[Item]:
    """Train the remaining models of one or more runs with `workers` processes (sharing
    the device), all under the same options; returns the todo list as (run index, model
    id) items, interleaved."""
    jobs = _jobs(jobs)
    items = interleave([todo(j.run, options) for j in jobs])
    if not items:
        return items
    limit = options.limit
    on_event({"kind": "plan", "total": len(items) if limit is None else min(limit, len(items))})
    options = replace(options, threads=resolve_threads(options.threads))
    if workers <= 1:
        started = 0

        def budget() -> bool:
            nonlocal started
            started += 1
            return limit is None or started <= limit

        try:
            Worker(jobs, options, on_event).work(items, budget)
        except faults.DeviceLost as e:
            on_event({"kind": "error", "worker": "w0", "message": str(e)})
        return items
    _run_children(jobs, options, workers, items, on_event)
    return items


def _run_children(jobs: list[RunJob], options: BatchOptions, workers: int, items: list[Item],
                  on_event: Emit) -> None:
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")  # CUDA cannot be forked; spawn is safe everywhere
    q, started, lock = ctx.Queue(), ctx.Value("i", 0), ctx.Lock()
    procs = []
    for i in range(workers):
        # Each worker starts at its own offset so they do not all contend for one model.
        mine = items[i::workers] + [m for j, m in enumerate(items) if j % workers != i]
        # Not daemonic: a worker may need children of its own (an image folder's DataLoader
        # workers); die_with_parent and the joins below keep it from outliving us.
        p = ctx.Process(target=child_main, args=(jobs, options, mine, f"w{i}", q, started, lock),
                        daemon=False)
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
            if p.is_alive():
                p.kill()
