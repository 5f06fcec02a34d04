"""Error EDFs and their statistics (Radosavovic et al. 2019; README, Statistics). Pure numpy.

F(e) = total weight of the models with error <= e. Plain weights are 1/n. A complexity
normalised EDF splits the complexity range [lo, hi] into K equal bins and gives a model in
bin j the weight 1 / (count_j * K), so every bin weighs 1/K whatever the space's own
complexity distribution. Bands are pointwise percentile bootstraps on a fixed grid,
resampling counts (stratified within bins when normalised), and DKW bands with Kish's
effective n. Two EDFs are compared by the KS statistic D.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from dsd.errors import DsdError


@dataclass
class Sample:
    """The errors of one run's models, their weights and (when normalised) their bins."""

    errors: np.ndarray
    weights: np.ndarray
    bins: np.ndarray | None = None   # bin index per model, normalised EDFs only
    n_bins: int = 0

    @property
    def n(self) -> int:
        return len(self.errors)

    @property
    def n_eff(self) -> float:
        """Kish's effective sample size (sum w)^2 / sum w^2; n for plain weights."""
        return float(self.weights.sum() ** 2 / (self.weights**2).sum())


def plain(errors: np.ndarray) -> Sample:
    e = np.asarray(errors, dtype=float)
    return Sample(e, np.full(len(e), 1.0 / len(e)))


def normalized(errors: np.ndarray, cx: np.ndarray, bins: int, lo: float, hi: float) -> Sample:
    """Complexity-normalised weights on [lo, hi] (models outside must be dropped first)."""
    e, c = np.asarray(errors, dtype=float), np.asarray(cx, dtype=float)
    counts, edges = np.histogram(c, bins=bins, range=(lo, hi))
    if (counts == 0).any():
        empty = int(np.argmin(counts))
        raise DsdError(f"complexity bin {empty + 1} of {bins} ({edges[empty]:.4g}..{edges[empty + 1]:.4g}) "
                       "holds no model of a run; use fewer --bins or a narrower --range")
    idx = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, bins - 1)
    return Sample(e, 1.0 / (counts[idx] * bins), idx, bins)


def edf(s: Sample, grid: np.ndarray) -> np.ndarray:
    """F(e) for each e of the grid: total weight of the errors <= e."""
    order = np.argsort(s.errors, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(s.weights[order])])
    return cum[np.searchsorted(s.errors[order], grid, side="right")]


@dataclass
class Cells:
    """A sample folded into cells of equal (stratum, key, weight): resampling the models
    with replacement within each stratum draws multinomial counts over its cells, so a
    bootstrap costs cells, not models. Exact, whatever the number of models."""

    key: np.ndarray        # per cell: what the statistic needs of its models (a grid slot, an error)
    weight: np.ndarray     # per cell: the weight of one of its models
    size: np.ndarray       # per cell: how many models it holds
    strata: list[np.ndarray]  # cell indices of each stratum (one stratum unless normalised)

    def resample(self, n_boot: int, rng: np.random.Generator) -> np.ndarray:
        """[n_boot, cells] resampled model counts (each stratum keeps its size)."""
        out = np.zeros((n_boot, len(self.key)))
        for members in self.strata:
            m = self.size[members]
            out[:, members] = rng.multinomial(m.sum(), m / m.sum(), size=n_boot)
        return out


def cells(s: Sample, key: np.ndarray) -> Cells:
    """Fold `s` by (bin, key, weight); `key` holds one value per model."""
    bins = np.zeros(s.n, dtype=np.int64) if s.bins is None else np.asarray(s.bins, np.int64)
    # One integer code per (bin, key, weight): three 1-d uniques instead of a row-wise one.
    parts = [np.unique(np.asarray(x), return_inverse=True) for x in (bins, key, s.weights)]
    code = np.zeros(s.n, dtype=np.int64)
    for values, inverse in parts:
        code = code * len(values) + inverse.ravel()
    uniq, first, size = np.unique(code, return_index=True, return_counts=True)
    cell_bin = bins[first]
    strata = [np.nonzero(cell_bin == j)[0] for j in np.unique(cell_bin)]
    return Cells(np.asarray(key, float)[first], s.weights[first], size, strata)


def bootstrap_band(s: Sample, grid: np.ndarray, n_boot: int, ci: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise percentile bootstrap band of F on the grid, by resampling counts.

    A model adds to F(g) for every grid point g at or above its error, so models are
    folded into cells by the first grid point they reach (and bin and weight); each
    resample draws multinomial counts over the cells, stratified within bins when
    normalised. Its cost grows with the grid, not with the number of models.
    """
    slot = np.searchsorted(grid, s.errors, side="left")   # first grid point >= the error
    c = cells(s, slot)
    reach = (c.key[:, None] <= np.arange(len(grid))[None, :]) * c.weight[:, None]  # [cells, grid]
    fb = c.resample(n_boot, rng) @ reach
    alpha = (1 - ci) / 2
    lo, hi = np.quantile(fb, [alpha, 1 - alpha], axis=0)
    return lo, hi


def dkw_band(s: Sample, grid: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    """Dvoretzky-Kiefer-Wolfowitz band, eps = sqrt(log(2/alpha) / (2 n_eff))."""
    eps = dkw_eps(s.n_eff, ci)
    f = edf(s, grid)
    return np.clip(f - eps, 0, 1), np.clip(f + eps, 0, 1)


def dkw_eps(n: float, ci: float) -> float:
    return float(np.sqrt(np.log(2 / (1 - ci)) / (2 * n)))


def simultaneous_eps(s: Sample, ci: float) -> float:
    """Half-width of a band that covers the whole EDF at level ci: the exact quantile of
    the one-sample KS statistic at n = floor(Kish's n_eff). Exact for plain EDFs of
    continuous errors (conservative with ties); for normalised EDFs the stratified weights
    vary less than Kish's n_eff assumes, so the band is conservative (tests/test_edf.py
    measures its coverage both ways)."""
    return _kstwo_ppf(ci, max(1, int(np.floor(s.n_eff + 1e-9))))


@functools.lru_cache(maxsize=1024)
def _kstwo_ppf(ci: float, n: int) -> float:
    # scipy's exact quantile takes ~0.1 s (a root search over the exact CDF); a study
    # report asks for the same few (ci, n) over a hundred times.
    from scipy import stats

    return float(stats.kstwo.ppf(ci, n))


def simultaneous_band(s: Sample, grid: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    eps = simultaneous_eps(s, ci)
    f = edf(s, grid)
    return np.clip(f - eps, 0, 1), np.clip(f + eps, 0, 1)


def best_probabilities(errors: np.ndarray, share: float = 0.25) -> np.ndarray:
    """Per model, the probability that it is the best of a random share*n of the models
    (drawn with replacement, ties sharing equally): with k draws from n models sorted by
    error, the best has rank r or worse with probability ((n - r + 1) / n)^k."""
    errors = np.asarray(errors, dtype=float)
    n = len(errors)
    k = max(1, int(n * share))
    order = np.argsort(errors, kind="stable")
    e = errors[order]
    first = np.searchsorted(e, e, side="left")      # tie group of each model: [first, last]
    last = np.searchsorted(e, e, side="right") - 1
    at_least = lambda r: ((n - r) / n) ** k  # noqa: E731  P(best rank >= r), r from 0
    p = np.empty(n)
    p[order] = (at_least(first) - at_least(last + 1)) / (last - first + 1)
    return p


def good_range(values: np.ndarray, errors: np.ndarray, share: float = 0.25, ci: float = 0.95,
               best: np.ndarray | None = None) -> tuple[float, float, float]:
    """pycls's good range: the value of the best model of a random share*n of the models
    (drawn with replacement); its (1-ci)/2, 50% and 1-(1-ci)/2 quantiles.

    Computed exactly from `best_probabilities` (pass them as `best` to reuse them across
    parameters) instead of by resampling. Cost: one sort.
    """
    values = np.asarray(values, dtype=float)
    p = best_probabilities(errors, share) if best is None else best
    by_value = np.argsort(values, kind="stable")
    cdf = np.cumsum(p[by_value])
    a = (1 - ci) / 2
    picks = np.searchsorted(cdf, np.array([a, 0.5, 1 - a]) * cdf[-1], side="left")
    lo, med, hi = values[by_value][np.minimum(picks, len(values) - 1)]
    return float(lo), float(med), float(hi)


def ks_statistic(a: Sample, b: Sample) -> tuple[float, float]:
    """sup_e |F_a(e) - F_b(e)| over all observed errors, and the error where it is reached."""
    pooled = np.unique(np.concatenate([a.errors, b.errors]))
    diff = np.abs(edf(a, pooled) - edf(b, pooled))
    i = int(np.argmax(diff))
    return float(diff[i]), float(pooled[i])


def ks_plain_pvalue(a: Sample, b: Sample) -> tuple[float, str]:
    from scipy import stats

    r = stats.ks_2samp(a.errors, b.errors)
    return float(r.pvalue), f"scipy ks_2samp ({getattr(r, 'method', 'auto')})"


def ks_permutation_pvalue(a: Sample, b: Sample, n_perm: int,
                          rng: np.random.Generator) -> tuple[float, str]:
    """p-value of the weighted D by shuffling run labels within each complexity bin.

    Shuffling within bins keeps each run's per-bin counts, so its weights stay defined.
    Only how many of A's labels land in each (bin, error) cell moves D, and that count is
    multivariate hypergeometric: drawn per cell, the cost follows the distinct errors, not n.
    """
    errors = np.concatenate([a.errors, b.errors])
    bins = np.concatenate([a.bins, b.bins]).astype(np.int64)
    in_a = np.concatenate([np.ones(a.n, bool), np.zeros(b.n, bool)])
    cell, cell_of = np.unique(np.stack([bins.astype(float), errors], axis=1), axis=0,
                              return_inverse=True)
    cell_of = cell_of.ravel()
    size = np.bincount(cell_of, minlength=len(cell))
    obs_a = np.bincount(cell_of[in_a], minlength=len(cell))
    cbin = cell[:, 0].astype(np.int64)
    # Weight of a model in bin j: 1 / (count_j * K), for run A and run B.
    ca = np.bincount(a.bins, minlength=a.n_bins)
    cb = np.bincount(b.bins, minlength=b.n_bins)
    wa, wb = 1.0 / (ca[cbin] * a.n_bins), 1.0 / (cb[cbin] * b.n_bins)
    counts = np.zeros((n_perm, len(cell)))
    for j in range(a.n_bins):
        members = np.nonzero(cbin == j)[0]
        counts[:, members] = rng.multivariate_hypergeometric(size[members], int(ca[j]), size=n_perm)
    order = np.argsort(cell[:, 1], kind="stable")
    _, starts = np.unique(cell[order, 1], return_index=True)   # tie groups across bins

    def d_of(count_a: np.ndarray) -> np.ndarray:
        signed = (count_a * wa - (size - count_a) * wb)[..., order]
        by_error = np.add.reduceat(signed, starts, axis=-1)
        return np.abs(np.cumsum(by_error, axis=-1)).max(axis=-1)

    d_perm = d_of(counts)
    d_obs = d_of(obs_a.astype(float))
    p = (1 + np.count_nonzero(d_perm >= d_obs - 1e-12)) / (1 + n_perm)
    return float(p), f"permutation within {a.n_bins} complexity bins ({n_perm})"
