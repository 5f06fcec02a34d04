"""Fidelity: do the same models rank alike at two training budgets? Pure numpy + scipy.

A short budget is only a proxy for the errors the papers care about; the NDS and RegNet
papers check that it ranks models as a longer one does. Given each model's error at both
budgets (paired by model id), this gives Spearman's rho and Kendall's tau with Fisher-z
confidence intervals (standard errors sqrt((1 + rho^2 / 2) / (n - 3)) for rho, Bonett and
Wright 2000, and sqrt(0.437 / (n - 4)) for tau, Fieller, Hartley and Pearson 1957), and
the mean change of error between the budgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankAgreement:
    n: int
    spearman: float
    spearman_ci: tuple[float, float]
    kendall: float
    kendall_ci: tuple[float, float]
    mean_short: float
    mean_long: float

    def to_json(self) -> dict:
        return {"n": self.n, "spearman": self.spearman, "spearman_ci": list(self.spearman_ci),
                "kendall": self.kendall, "kendall_ci": list(self.kendall_ci),
                "mean_short": self.mean_short, "mean_long": self.mean_long}


def _fisher_ci(r: float, se: float, ci: float) -> tuple[float, float]:
    from scipy import stats

    z = np.arctanh(np.clip(r, -0.999999, 0.999999))
    h = stats.norm.ppf(0.5 + ci / 2) * se
    return float(np.tanh(z - h)), float(np.tanh(z + h))


def rank_agreement(short: np.ndarray, long: np.ndarray, ci: float = 0.95) -> RankAgreement:
    """Rank agreement of paired errors (the same models at a short and a long budget)."""
    from scipy import stats

    a, b = np.asarray(short, float), np.asarray(long, float)
    n = len(a)
    if n < 5 or len(b) != n:
        raise ValueError(f"need at least 5 paired models, got {n} and {len(b)}")
    rho = float(stats.spearmanr(a, b).statistic)
    tau = float(stats.kendalltau(a, b).statistic)
    return RankAgreement(n, rho, _fisher_ci(rho, np.sqrt((1 + rho**2 / 2) / (n - 3)), ci),
                         tau, _fisher_ci(tau, np.sqrt(0.437 / (n - 4)), ci),
                         float(a.mean()), float(b.mean()))
