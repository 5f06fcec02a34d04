"""Training progress as plain lines, for output that is not a terminal (a log file, a
Slurm or local sweep task): every model's start and end, every epoch, and within an epoch a
line at most every `every` seconds per worker, each with the speed and the time left."""

from __future__ import annotations

import time
from collections.abc import Callable


def _clock(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class PlainLog:
    """Turn training events into timestamped lines; `write` gets each line."""

    def __init__(self, write: Callable[[str], None], total: int | None = None, every: float = 30.0):
        self.write, self.total, self.every = write, total, every
        self.done, self.t0 = 0, time.time()
        self.last: dict[str, float] = {}

    def __call__(self, ev: dict) -> None:
        line = self.line(ev)
        if line:
            self.write(f"{time.strftime('%H:%M:%S')} {line}")

    def line(self, ev: dict) -> str | None:
        kind, w = ev["kind"], ev.get("worker", "w0")
        who = f"{w} {ev.get('run', '')} model {ev.get('model_id')}".replace("  ", " ")
        if kind == "plan":
            self.total = ev["total"]
            return f"{self.total} models to train"
        if kind == "start":
            self.last[w] = 0.0  # the first step line comes at once: training, not loading
            return f"{who}: start"
        if kind == "step":
            if time.time() - self.last.get(w, 0) < self.every:
                return None
            self.last[w] = time.time()
            return (f"{who}: epoch {ev['epoch']}/{ev['epochs']}, step {ev['step']}/{ev['steps']}, "
                    f"{ev['ips']:.0f} img/s, model ETA {_clock(ev['eta'])}")
        if kind == "epoch":
            self.last[w] = time.time()
            return f"{who}: epoch {ev['epoch']}/{ev['epochs']} done, {ev['ips']:.0f} img/s"
        if kind == "done":
            self.done += 1
            return f"{who}: {ev['status']}, error {ev['error']:.2f}%; {self._batch_eta()}"
        if kind == "error":
            return f"{w}: {ev['message']}"
        return None

    def _batch_eta(self) -> str:
        took = time.time() - self.t0
        if not self.total:
            return f"{self.done} done in {_clock(took)}"
        left = max(self.total - self.done, 0) * took / self.done
        return f"{self.done}/{self.total} models done in {_clock(took)}, batch ETA {_clock(left)}"
