"""Why two spaces differ: the space effect on error adjusted for named covariates.

Error is regressed on an intercept, an indicator of space b and the covariates (depth,
the share of blocks in late stages, params, any expression of a model's columns):

  error = c0 + effect * [model is from b] + sum_j beta_j * covariate_j + noise

The effect of b (in points of error, b minus a) with no covariate is the difference of
mean errors; with covariates it is the difference that remains between models of equal
covariates. If it shrinks toward zero when a covariate enters, that covariate carries
the difference: the spaces differ because they hold models of different depth, say,
not at equal depth. This is observational (the spaces were not randomised over the
covariate), so it suggests a cause for an experiment to test; it proves none.

Standard errors are heteroskedasticity-robust (HC2, which for a lone indicator equals
Welch's two-sample standard error), with t intervals on n - p degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Effect:
    estimate: float
    se: float
    ci: tuple[float, float]
    t: float

    def to_json(self) -> dict:
        return {"estimate": self.estimate, "se": self.se, "ci": list(self.ci), "t": self.t}


@dataclass(frozen=True)
class Adjusted:
    n_a: int
    n_b: int
    covariates: tuple[str, ...]
    raw: Effect                     # b - a, no covariate
    adjusted: Effect                # b - a at equal covariates
    slopes: dict[str, Effect]       # per unit of each covariate

    def to_json(self) -> dict:
        return {"n_a": self.n_a, "n_b": self.n_b, "covariates": list(self.covariates),
                "raw": self.raw.to_json(), "adjusted": self.adjusted.to_json(),
                "slopes": {k: v.to_json() for k, v in self.slopes.items()}}


def ols_hc2(y: np.ndarray, x: np.ndarray, ci: float = 0.95) -> list[Effect]:
    """Least squares of y on the columns of x, with HC2 standard errors."""
    from scipy import stats

    n, p = x.shape
    if n <= p:
        raise ValueError(f"{n} models cannot fit {p} coefficients")
    xtx_inv = np.linalg.pinv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    resid = y - x @ beta
    lev = np.einsum("ij,jk,ik->i", x, xtx_inv, x)
    meat = (x * (resid**2 / np.clip(1 - lev, 1e-12, None))[:, None]).T @ x
    se = np.sqrt(np.clip(np.diag(xtx_inv @ meat @ xtx_inv), 0, None))
    h = stats.t.ppf(0.5 + ci / 2, n - p)
    return [Effect(float(b), float(s), (float(b - h * s), float(b + h * s)),
                   float(b / s) if s > 0 else float("nan")) for b, s in zip(beta, se)]


def adjusted_effect(err_a: np.ndarray, err_b: np.ndarray, cov_a: np.ndarray, cov_b: np.ndarray,
                    names: list[str], ci: float = 0.95) -> Adjusted:
    """b's effect on error, raw and adjusted for the covariates (columns of cov_a / cov_b)."""
    ea, eb = np.asarray(err_a, float), np.asarray(err_b, float)
    y = np.r_[ea, eb]
    is_b = np.r_[np.zeros(len(ea)), np.ones(len(eb))]
    one = np.ones(len(y))
    raw = ols_hc2(y, np.c_[one, is_b], ci)[1]
    covs = np.r_[np.asarray(cov_a, float).reshape(len(ea), -1),
                 np.asarray(cov_b, float).reshape(len(eb), -1)]
    fit = ols_hc2(y, np.c_[one, is_b, covs], ci)
    return Adjusted(len(ea), len(eb), tuple(names), raw, fit[1], dict(zip(names, fit[2:])))


def adjust_runs(path_a, path_b, covariates: list[str], metric: str = "error_min",
                failed: str = "as-chance", flops: str | None = None, ci: float = 0.95) -> Adjusted:
    """`adjusted_effect` on two run directories' usable models (those inside the `flops`
    window "LO:HI" when given); covariates are expressions of a model's columns."""
    from dsd.analysis.expr import evaluate_values
    from dsd.analysis.runs import MIN_MODELS, run_errors
    from dsd.errors import DsdError
    from dsd.sizes import parse_window

    if not covariates:
        raise DsdError("name at least one covariate, e.g. --covariate depth")
    tables = []
    for p in (path_a, path_b):
        t = run_errors(p, metric, failed).table
        if flops and len(t):
            lo, hi = parse_window(flops)
            t = t[t.flops.between(lo if lo is not None else -np.inf, hi if hi is not None else np.inf)]
        if len(t) < len(covariates) + MIN_MODELS:
            raise DsdError(f"{p}: {len(t)} usable models, too few to adjust for "
                           f"{len(covariates)} covariates; train more")
        tables.append(t)
    covs = [np.c_[tuple(evaluate_values(c, t.to_dict("records")) for c in covariates)] for t in tables]
    return adjusted_effect(tables[0].error.to_numpy(), tables[1].error.to_numpy(), covs[0], covs[1],
                           list(covariates), ci)
