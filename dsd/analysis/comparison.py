"""The typed result of comparing runs' error EDFs: what `dsd edf compare` reports.

`compare` (dsd.analysis.runs) computes a `Comparison`; the library reads its fields, and
only the CLI and the JSON edge turn it into a document with `to_json()`. A new statistic
is a typed field here (with its key in `to_json()` and its column in `run_rows()` or
`pair_rows()`, which `edf compare`'s tables and the HTML report both print) plus the line
of `compare` that fills it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsd.analysis import edf as E


@dataclass
class Options:
    """What `compare` computes and how: the CLI's `edf compare` options."""

    metric: str = "error_min"
    normalize: str = "none"
    bins: int = 10
    range: str | None = None
    bootstrap: int = 10_000
    ci: float = 0.95
    seed: int = 0
    failed: str = "as-chance"
    permutations: int = 2_000
    grid_points: int = 201
    min_of_k_bootstrap: int = 1_000
    strict: bool = False  # refuse runs trained under different conditions


@dataclass(frozen=True)
class RunEDF:
    """One run's (or one split group's) EDF on the comparison's grid, with its bands."""

    name: str
    path: Path
    sample: E.Sample               # the errors and weights the EDF is made of
    dropped: int                   # models outside the normalisation range
    counts: dict[str, int]
    chance_error: float
    min_error: float
    good_range: tuple[float, float]   # pycls's good range of the best model's error
    mean_error: float
    median_error: float
    edf: np.ndarray
    band: tuple[np.ndarray, np.ndarray]   # pointwise bootstrap
    sim: tuple[np.ndarray, np.ndarray]    # simultaneous: exact KS quantile at floor(n_eff)
    sim_eps: float
    dkw: tuple[np.ndarray, np.ndarray]
    warnings: list[str]
    min_of_k: dict

    @property
    def n(self) -> int:
        return self.sample.n

    @property
    def n_eff(self) -> float:
        return self.sample.n_eff

    def to_json(self) -> dict:
        s, (lo, hi) = self.sample, self.good_range
        return {"name": self.name, "path": str(self.path), "n": s.n, "n_eff": s.n_eff,
                "dropped": self.dropped, "counts": self.counts, "chance_error": self.chance_error,
                "min_error": self.min_error,
                # "min_error_ci" is the good range's old name, kept for one release.
                "min_error_good_range": [lo, hi], "min_error_ci": [lo, hi],
                "mean_error": self.mean_error, "median_error": self.median_error,
                "edf": self.edf.tolist(), "band_lo": self.band[0].tolist(),
                "band_hi": self.band[1].tolist(), "band": "pointwise bootstrap",
                "sim_lo": self.sim[0].tolist(), "sim_hi": self.sim[1].tolist(),
                "sim_eps": self.sim_eps, "sim_band": "simultaneous: exact KS quantile at floor(n_eff)",
                "dkw_lo": self.dkw[0].tolist(), "dkw_hi": self.dkw[1].tolist(),
                "warnings": self.warnings, "errors": s.errors.tolist(), "weights": s.weights.tolist(),
                "bins": None if s.bins is None else s.bins.tolist(), "n_bins": s.n_bins,
                "min_of_k": self.min_of_k}


@dataclass(frozen=True)
class Pair:
    """The two-sample KS test of runs a and b."""

    a: str
    b: str
    ks_d: float
    p_value: float
    p_method: str
    argmax_error: float    # the error where |F_b - F_a| is largest

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "ks_d": self.ks_d, "p_value": self.p_value,
                "p_method": self.p_method, "argmax_error": self.argmax_error}


@dataclass(frozen=True)
class Comparison:
    """Runs' EDFs on one grid, every pair's KS test, and what the runs' conditions share."""

    options: Options
    range: tuple[float, float] | None     # the normalisation range; None for plain EDFs
    grid: np.ndarray
    runs: list[RunEDF]
    pairs: list[Pair]
    differences: list[str]                # how the runs' training conditions differ
    notes: list[str]                      # recipe fields drawn per model, on purpose

    @property
    def metric(self) -> str:
        return self.options.metric

    @property
    def normalize(self) -> str:
        return self.options.normalize

    @property
    def bins(self) -> int | None:
        return self.options.bins if self.normalize != "none" else None

    @property
    def ci(self) -> float:
        return self.options.ci

    def b_ahead(self, pair: int = 0) -> bool:
        """Whether run b's EDF is above run a's where the pair's KS D is taken (b's errors lower)."""
        p = self.pairs[pair]
        ia = next(i for i, r in enumerate(self.runs) if r.name == p.a)
        ib = next(i for i, r in enumerate(self.runs) if r.name == p.b)
        at = np.array([p.argmax_error])
        fa, fb = (E.edf(E.Sample(r.sample.errors, r.sample.weights), at)[0]
                  for r in (self.runs[ia], self.runs[ib]))
        return float(fb - fa) > 0

    def run_rows(self) -> list[dict[str, str]]:
        """The per-run table, as display strings: `edf compare` and the HTML report print it."""
        return [{"run": r.name, "n": str(r.n),
                 "ok/div/fail/pend": "{ok}/{diverged}/{failed_oom}/{pending}".format(
                     **r.counts, failed_oom=r.counts["failed"] + r.counts["oom"]),
                 "out of range": str(r.dropped), "min": f"{r.min_error:.2f}",
                 "best's good range": "{:.2f}..{:.2f}".format(*r.good_range),
                 "median": f"{r.median_error:.2f}", "mean": f"{r.mean_error:.2f}",
                 f"{self.ci:.0%} band +-": f"{r.sim_eps:.3f}"} for r in self.runs]

    def pair_rows(self) -> list[dict[str, str]]:
        """The KS test of every pair, as display strings (plain p-values, no exponents)."""
        return [{"a": p.a, "b": p.b, "D": f"{p.ks_d:.3f}",
                 "p-value": "< 0.0001" if p.p_value < 1e-4 else f"{p.p_value:.3g}",
                 "at error": f"{p.argmax_error:.2f}", "method": p.p_method} for p in self.pairs]

    def to_json(self) -> dict:
        o = self.options
        return {"metric": o.metric, "normalize": o.normalize, "bins": self.bins,
                "range": None if self.range is None else list(self.range), "ci": o.ci,
                "bootstrap": o.bootstrap, "seed": o.seed, "failed": o.failed,
                "grid": self.grid.tolist(), "runs": [r.to_json() for r in self.runs],
                "pairs": [p.to_json() for p in self.pairs], "differences": self.differences,
                "notes": self.notes}
