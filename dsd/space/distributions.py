"""Vectorised draws of quantised values, with pycls's semantics (closed [low, high], quantum q).

uniform:       f ~ U(low, high + q), rounded down to a multiple of q.
log_uniform:   q' = min(q, low/2), f = exp(U(log(low - q'), log high)), rounded up to a multiple of q.
choice:        one of `values`, equally likely.
power2_or_log: a power of two in [low, high]; if it reaches q, redrawn log-uniform in
               [max(low, q), high] with quantum min(high, q) (pycls's group-width sampler).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("uniform", "log_uniform", "choice", "power2_or_log")


@dataclass(frozen=True)
class Dist:
    kind: str
    low: float = 0.0
    high: float = 0.0
    q: float = 1.0
    values: tuple[float, ...] = ()

    def draw(self, rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
        if self.kind == "choice":
            vals = np.asarray(self.values)
            return vals[rng.integers(0, len(vals), size=size)]
        if self.kind == "uniform":
            return uniform(rng, self.low, self.high, self.q, size)
        if self.kind == "log_uniform":
            return log_uniform(rng, self.low, self.high, self.q, size)
        if self.kind == "power2_or_log":
            return power2_or_log(rng, self.low, self.high, self.q, size)
        raise ValueError(f"unknown distribution {self.kind!r}")

    @property
    def is_integer(self) -> bool:
        if self.kind == "choice":
            return all(float(v).is_integer() for v in self.values)
        return all(float(v).is_integer() for v in (self.low, self.high, self.q))

    def count(self) -> int:
        """How many distinct values the distribution can produce."""
        if self.kind == "choice":
            return len(set(self.values))
        if self.kind == "power2_or_log":
            p2 = sum(1 for k in range(64) if self.low <= 2**k < min(self.q, self.high + 1))
            return p2 + _multiples(max(self.low, self.q), self.high, min(self.high, self.q))
        return _multiples(self.low, self.high, self.q)

    def support(self) -> tuple[float, float]:
        if self.kind == "choice":
            return min(self.values), max(self.values)
        return self.low, self.high

    def reach(self) -> tuple[float, float]:
        """The smallest and largest values a draw can give: quantisation can step past
        `low` (uniform rounds down, log_uniform starts q' below it) and `high` (uniform's
        last step). power2_or_log: its declared bounds."""
        q = self.q
        if self.kind == "uniform":
            top = np.ceil(self.high / q + 1 - 1e-9) - 1  # floor(f / q) for f < high + q
            return float(quantize(np.floor(self.low / q + 1e-9), q)), float(quantize(top, q))
        if self.kind == "log_uniform":
            start = (self.low - min(q, self.low / 2)) / q
            return float(quantize(np.ceil(start), q)), float(quantize(np.ceil(self.high / q - 1e-9), q))
        return self.support()

    def describe(self) -> str:
        if self.kind == "choice":
            return "choice {" + ", ".join(_fmt(v) for v in self.values) + "}"
        return f"{self.kind} [{_fmt(self.low)}, {_fmt(self.high)}] q {_fmt(self.q)}"


def _multiples(low: float, high: float, q: float) -> int:
    return int(np.floor(high / q + 1e-9) - np.ceil(low / q - 1e-9)) + 1


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def quantize(k: np.ndarray, q: float) -> np.ndarray:
    """k * q as the double nearest to the decimal value, as pycls's Decimal path gives.

    k * 0.1 is not always the double nearest k/10; dividing by the integer 1/q is.
    """
    inv = 1.0 / q
    if q < 1 and abs(inv - round(inv)) < 1e-9:
        return k / round(inv)
    return k * q


def uniform(rng, low, high, q, size):
    f = rng.uniform(low, high + q, size=size)
    return quantize(np.floor(f / q), q)


def log_uniform(rng, low, high, q, size):
    qs = min(q, low / 2)
    f = np.exp(rng.uniform(np.log(low - qs), np.log(high), size=size))
    return quantize(np.ceil(f / q), q)


def power2_or_log(rng, low, high, q, size):
    p2 = 2.0 ** np.floor(rng.uniform(np.log2(low), np.log2(high) + 1, size=size))
    redraw = log_uniform(rng, max(low, q), high, min(high, q), size)
    return np.where(p2 >= q, redraw, p2)
