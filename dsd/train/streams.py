"""Several models trained in turn by one process: one step of each, round and round.

Each model's training is a generator (dsd.train.loop.train_steps) that yields after
every step. On a GPU each runs on its own CUDA stream, so while Python launches one
model's step the device still works through the others': small models, which alone
leave a GPU mostly idle, keep it busy from one process. Each model's result is the same
as when it trains alone (its own seed fixes its weights and its own generator its data
order), which the tests check on the CPU, where the steps simply take turns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterable


def drive(steps: Generator):
    """Run a step generator to its end; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def step_in_turn(jobs: Iterable[Generator], k: int, device) -> None:
    """Keep up to `k` jobs in flight and advance each by one step in turn until all end.

    A new job is taken from `jobs` (which may claim a model as it yields it) only when one
    in flight has ended. Jobs still in flight when this returns or raises are closed, so
    their own clean-up (releasing a claim) runs.
    """
    import torch

    cuda = torch.device(device).type == "cuda"
    # One stream per slot, made once: torch hands out streams round-robin from a small
    # pool, so a stream made per job could be one that another job in flight is using.
    streams = [torch.cuda.Stream(device) if cuda else None for _ in range(k)]
    jobs = iter(jobs)
    active: list[tuple[Generator, int]] = []
    try:
        while True:
            free = [s for s in range(k) if s not in {slot for _, slot in active}]
            while free and (job := next(jobs, None)) is not None:
                active.append((job, free.pop(0)))
            if not active:
                return
            for entry in list(active):
                job, slot = entry
                with torch.cuda.stream(streams[slot]) if cuda else contextlib.nullcontext():
                    try:
                        next(job)
                    except StopIteration:
                        active.remove(entry)
    finally:
        for job, _ in active:
            job.close()
