"""Power of the KS comparison of two EDFs, by simulation. Pure numpy.

"This n detects D >= x" is only honest as a power statement: the true KS distance that
the test rejects with a stated probability (80% by default) at a stated level. The
rejection threshold of an observed D is not that: a true D at the threshold is detected
about half the time.

The alternative simulated is a location shift: errors of a ~ N(0, 1), of b ~ N(delta, 1),
whose true KS distance is 2 Phi(delta / 2) - 1. The KS test is distribution-free under the
null, and a location shift is the alternative it detects best per unit of D; a
difference confined to one tail needs a larger D (the README says so). Each model keeps
the weight it has in the comparison (1/n, or its complexity-normalised weight), so the
critical value and the power are those of the weighted statistic the study reads.
"""

from __future__ import annotations

import numpy as np
from scipy import special

SIMS = 4_000          # alternative draws per power evaluation
NULL_SIMS = 20_000    # null draws for the critical value


def weighted_d(ea: np.ndarray, wa: np.ndarray, eb: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """KS D between weighted EDFs, for each row of ea [R, na] and eb [R, nb] (no ties)."""
    e = np.concatenate([ea, eb], axis=1)
    signed = np.concatenate([wa / wa.sum(), -wb / wb.sum()])
    order = np.argsort(e, axis=1)
    return np.abs(np.cumsum(signed[order], axis=1)).max(axis=1)


def shift_for_d(d: float | np.ndarray) -> np.ndarray:
    """The location shift (in SDs) between two unit normals at KS distance d."""
    return 2 * np.sqrt(2) * special.erfinv(np.asarray(d, dtype=float))


def d_for_shift(delta: float | np.ndarray) -> np.ndarray:
    return special.erf(np.asarray(delta, dtype=float) / (2 * np.sqrt(2)))


def critical_d(wa: np.ndarray, wb: np.ndarray, level: float, rng: np.random.Generator,
               sims: int = NULL_SIMS) -> float:
    """The weighted D that the null exceeds with probability `level`."""
    null = weighted_d(rng.standard_normal((sims, len(wa))), wa,
                      rng.standard_normal((sims, len(wb))), wb)
    return float(np.quantile(null, 1 - level))


def power_at(d: float, wa: np.ndarray, wb: np.ndarray, level: float, seed: int = 0,
             sims: int = SIMS) -> float:
    """Probability that a true location-shift D of `d` is detected at `level`."""
    rng = np.random.default_rng(seed)
    crit = critical_d(wa, wb, level, rng)
    za, zb = rng.standard_normal((sims, len(wa))), rng.standard_normal((sims, len(wb)))
    return float(np.mean(weighted_d(za, wa, zb + shift_for_d(d), wb) > crit))


def detectable_d(wa: np.ndarray, wb: np.ndarray, level: float, power: float = 0.8,
                 seed: int = 0, sims: int = SIMS) -> float:
    """The smallest true KS distance (location shift) detected with `power` at `level`.

    One set of draws serves every candidate D (common random numbers), so the simulated
    power rises monotonically with D and a bisection finds it to 0.001.
    """
    rng = np.random.default_rng(seed)
    wa, wb = np.asarray(wa, float), np.asarray(wb, float)
    crit = critical_d(wa, wb, level, rng)
    za, zb = rng.standard_normal((sims, len(wa))), rng.standard_normal((sims, len(wb)))
    detected = lambda d: np.mean(weighted_d(za, wa, zb + shift_for_d(d), wb) > crit)  # noqa: E731
    lo, hi = 0.0, 0.999
    if detected(hi) < power:
        return 1.0  # not even a near-total separation: too few models
    while hi - lo > 0.001:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if detected(mid) < power else (lo, mid)
    return round(hi, 3)


def plain_weights(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)
