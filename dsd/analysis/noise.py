"""Training noise from replicates: the same models trained with several seeds. Pure numpy.

A table errors[model, replicate] (the first column the published seed) splits the
variance of a model's error into the part that belongs to the model and the part a new
seed would redraw, by one-way random-effects ANOVA:

  noise SD        sqrt(MSW): the spread of one model's error over seeds
  between-model   sqrt(max(0, (MSB - MSW) / r)): the spread of the models' true errors
  ICC(1)          (MSB - MSW) / (MSB + (r - 1) MSW): the share of a single error's variance
                  that is the model's; its CI from the F distribution (Shrout & Fleiss 1979)

The EDF averaged over replicates (the NDS paper's appendix, Fig. 14) is the mean of the
per-seed EDFs; a per-seed EDF is what a study trained with that seed would have drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Noise:
    models: int
    replicates: int
    noise_sd: float
    between_sd: float
    icc: float
    icc_ci: tuple[float, float]
    mean_abs_change: float   # mean |error(seed) - error(published)|, points

    def to_json(self) -> dict:
        return {"models": self.models, "replicates": self.replicates, "noise_sd": self.noise_sd,
                "between_sd": self.between_sd, "icc": self.icc, "icc_ci": list(self.icc_ci),
                "mean_abs_change": self.mean_abs_change}


def noise(errors: np.ndarray, ci: float = 0.95) -> Noise:
    """The decomposition above for errors [models, replicates] (no missing values)."""
    from scipy import stats

    x = np.asarray(errors, dtype=float)
    n, r = x.shape
    if n < 2 or r < 2:
        raise ValueError(f"need at least 2 models with 2 replicates each, got {n} x {r}")
    means = x.mean(axis=1)
    msb = r * np.sum((means - x.mean()) ** 2) / (n - 1)
    msw = np.sum((x - means[:, None]) ** 2) / (n * (r - 1))
    icc = (msb - msw) / (msb + (r - 1) * msw) if msb + msw > 0 else 0.0
    a = (1 - ci) / 2
    if msw == 0:  # every seed gave every model the same error: all of it is the model's
        lo = hi = 1.0
    else:
        f = msb / msw
        fl = f / stats.f.ppf(1 - a, n - 1, n * (r - 1))
        fu = f * stats.f.ppf(1 - a, n * (r - 1), n - 1)
        lo, hi = (fl - 1) / (fl + r - 1), (fu - 1) / (fu + r - 1)
    change = np.abs(x[:, 1:] - x[:, :1]).mean()
    return Noise(n, r, float(np.sqrt(msw)), float(np.sqrt(max(0.0, (msb - msw) / r))),
                 float(icc), (float(lo), float(min(hi, 1.0))), float(change))


def averaged_edf(errors: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per-seed EDFs [replicates, grid], their mean over seeds) of errors [models, replicates]."""
    x = np.sort(np.asarray(errors, dtype=float), axis=0)
    per_seed = np.stack([np.searchsorted(x[:, j], grid, side="right") / len(x)
                         for j in range(x.shape[1])])
    return per_seed, per_seed.mean(axis=0)
