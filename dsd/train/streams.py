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


class CudaLanes:
    """One CUDA stream per slot, made once: torch hands out streams round-robin from a small
    pool, so a stream made per job could be one that another job in flight is using."""

    def __init__(self, k: int, device):
        import torch

        self.device = torch.device(device)
        self.streams = [torch.cuda.Stream(self.device) for _ in range(k)]

    def admit(self, slot: int) -> None:
        """A new job's stream first waits for what the current stream made before it (the
        pipeline's resident data, its mean and std): pool streams do not wait on their own."""
        import torch

        self.streams[slot].wait_stream(torch.cuda.current_stream(self.device))

    def enter(self, slot: int):
        import torch

        return torch.cuda.stream(self.streams[slot])


class HostLanes:
    """On a CPU the jobs simply take turns."""

    def admit(self, slot: int) -> None:
        pass

    def enter(self, slot: int):
        return contextlib.nullcontext()


def lanes_for(k: int, device):
    import torch

    return CudaLanes(k, device) if torch.device(device).type == "cuda" else HostLanes()


def step_in_turn(jobs: Iterable[Generator], k: int, device, lanes=None) -> None:
    """Keep up to `k` jobs in flight and advance each by one step in turn until all end.

    A new job is taken from `jobs` (which may claim a model as it yields it) only when one
    in flight has ended. Jobs still in flight when this returns or raises are closed, so
    their own clean-up (releasing a claim) runs. `lanes` (default: lanes_for) says where
    each slot's steps run.
    """
    lanes = lanes or lanes_for(k, device)
    jobs = iter(jobs)
    active: list[tuple[Generator, int]] = []
    try:
        while True:
            free = [s for s in range(k) if s not in {slot for _, slot in active}]
            while free and (job := next(jobs, None)) is not None:
                slot = free.pop(0)
                lanes.admit(slot)
                active.append((job, slot))
            if not active:
                return
            for entry in list(active):
                job, slot = entry
                with lanes.enter(slot):
                    try:
                        next(job)
                    except StopIteration:
                        active.remove(entry)
    finally:
        for job, _ in active:
            job.close()
