"""How many models per space does a comparison need? Power of the KS test by resampling.

Given two pilot runs, take each run's EDF as its space's error distribution and ask: if
we sampled n models from each space, how often would a two-sample KS test at level
alpha (scipy's `ks_2samp`, the test `dsd edf compare` reports for plain EDFs) reject
"same distribution"? That share is the power at n. We draw n errors from each pilot EDF
(with replacement, ties and all), run the test, repeat `reps` times, and search the
smallest n whose power reaches the target: doubling, then bisection.

The n-vs-D curve is the ICCV 2019 paper's Fig. 7: the KS D between two samples of n
models of one space, against n (a run resampled against itself): the D that chance
alone produces at each n, to set beside the D observed between the pilots.

The pilots' own sampling noise is not propagated: with small pilots the promised n is
an estimate, best re-checked once more models are in.
"""

from __future__ import annotations

import numpy as np

from dsd.analysis import edf as E


def _draw(errors: np.ndarray, p: np.ndarray, n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    return errors[rng.choice(len(errors), size=(reps, n), p=p)]


def power_at(a: E.Sample, b: E.Sample, n: int, alpha: float, reps: int,
             rng: np.random.Generator) -> float:
    """Share of `reps` KS tests on n draws from each pilot EDF that reject at alpha."""
    from scipy import stats

    xa = _draw(a.errors, a.weights / a.weights.sum(), n, reps, rng)
    xb = _draw(b.errors, b.weights / b.weights.sum(), n, reps, rng)
    hits = sum(stats.ks_2samp(xa[r], xb[r]).pvalue < alpha for r in range(reps))
    return hits / reps


def null_d(s: E.Sample, n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """KS D between two independent samples of n models from one space (its EDF)."""
    p = s.weights / s.weights.sum()
    x = np.sort(_draw(s.errors, p, n, reps, rng), axis=1)
    y = np.sort(_draw(s.errors, p, n, reps, rng), axis=1)
    pooled = np.concatenate([x, y], axis=1)
    fx = np.stack([np.searchsorted(x[r], pooled[r], side="right") for r in range(reps)]) / n
    fy = np.stack([np.searchsorted(y[r], pooled[r], side="right") for r in range(reps)]) / n
    return np.abs(fx - fy).max(axis=1)


def validate(power: float, alpha: float, reps: int, n_max: int) -> None:
    from dsd.errors import ParamError

    for name, ok, what in (("power", 0 < power < 1, "must be between 0 and 1, e.g. 0.8"),
                           ("alpha", 0 < alpha < 1, "must be between 0 and 1, e.g. 0.05"),
                           ("reps", reps >= 20, "must be at least 20"),
                           ("n_max", n_max >= 4, "must be at least 4")):
        if not ok:
            raise ParamError(name, what)


def plan(a: E.Sample, b: E.Sample, power: float = 0.8, alpha: float = 0.05, reps: int = 400,
         n_max: int = 20_000, seed: int = 0) -> dict:
    """The n per space at which the KS test reaches `power`, and the curves behind it."""
    rng = np.random.default_rng(seed)
    curve: dict[int, float] = {}

    def pw(n: int) -> float:
        if n not in curve:
            curve[n] = power_at(a, b, n, alpha, reps, rng)
        return curve[n]

    lo, hi = 2, 4
    while pw(hi) < power and hi < n_max:
        lo, hi = hi, min(2 * hi, n_max)
    found = pw(hi) >= power
    while found and hi - lo > max(1, lo // 50):  # bisection to about 2%
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if pw(mid) < power else (lo, mid)
    d_obs, _ = E.ks_statistic(a, b)
    ns = sorted({int(x) for x in np.unique(np.geomspace(4, max(8, 2 * hi), 12).round())})
    null = {"n": ns, "mean": [], "lo": [], "hi": []}
    for n in ns:
        d = np.concatenate([null_d(a, n, reps // 2, rng), null_d(b, n, reps // 2, rng)])
        null["mean"].append(float(d.mean()))
        q = np.quantile(d, [0.05, 0.95])
        null["lo"].append(float(q[0]))
        null["hi"].append(float(q[1]))
    return {"n": hi if found else None, "power": power, "alpha": alpha, "reps": reps,
            "observed_d": d_obs, "n_max": n_max, "pilot_n": [a.n, b.n],
            "power_curve": {"n": sorted(curve), "power": [curve[k] for k in sorted(curve)]},
            "null_d": null}


def plan_plot(doc: dict, names: tuple[str, str], path) -> list:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from dsd.analysis.plots import COLORS, figure, save

    fig, _ = figure(11, 4.2)
    fig.clf()
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    pc = doc["power_curve"]
    ax1.plot(pc["n"], pc["power"], "o-", color=COLORS[0], markersize=3,
             label="KS test power (resampled pilots)")
    ax1.axhline(doc["power"], color="0.4", linestyle="--", linewidth=1, label=f"target {doc['power']:.0%}")
    if doc["n"]:
        ax1.axvline(doc["n"], color=COLORS[1], linewidth=1, label=f"n = {doc['n']} per space")
    ax1.set(xlabel="models per space (n)", ylabel=f"power at alpha {doc['alpha']}",
            ylim=(0, 1.02), title=f"{names[0]} vs {names[1]}: power of the KS test")
    nd = doc["null_d"]
    ax2.fill_between(nd["n"], nd["lo"], nd["hi"], color=COLORS[2], alpha=0.2, linewidth=0,
                     label="90% of D between two samples of one space")
    ax2.plot(nd["n"], nd["mean"], "o-", color=COLORS[2], markersize=3, label="mean D, same space")
    ax2.axhline(doc["observed_d"], color=COLORS[1], linestyle="--", linewidth=1,
                label=f"observed D between the pilots ({doc['observed_d']:.2f})")
    ax2.set(xlabel="models per space (n)", ylabel="KS statistic D",
            title="D from chance alone against n (ICCV 2019, Fig. 7)")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for ax, xs in ((ax1, pc["n"]), (ax2, nd["n"])):
        if max(xs) / min(xs) > 10:  # log only where n spans a decade to label
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_formatter(plain)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, path)
