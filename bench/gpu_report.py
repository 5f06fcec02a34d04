"""bench/gpu.py's report: each variant's errors paired with the baseline's, the tables and
the markdown summary. An outcome is any object with bench/gpu.py's Outcome fields."""

from __future__ import annotations

import math
import statistics

import numpy as np
from rich.table import Table

NAN = float("nan")


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else NAN


def paired(base, other) -> dict:
    """`other`'s errors against `base`'s on the models both trained: the mean difference
    (other - base, points) with its 95% CI, a paired t-test and a Wilcoxon signed-rank test.
    Same models, same seeds: a path that trains as well as the baseline differs by training
    noise alone (data order and arithmetic differ), a mean difference near 0."""
    from scipy import stats

    a, b = dict(zip(base.ids, base.errors)), dict(zip(other.ids, other.errors))
    common = sorted(set(a) & set(b))
    d = np.array([b[i] - a[i] for i in common], dtype=float)
    out = {"n": len(d), "mean_diff": NAN, "ci_lo": NAN, "ci_hi": NAN, "t_p": NAN, "wilcoxon_p": NAN}
    if len(d) < 2:
        return out
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(d) - 1)) * sd / math.sqrt(len(d))
    if sd > 0:
        t_p = float(stats.ttest_rel([b[i] for i in common], [a[i] for i in common]).pvalue)
    else:  # every difference the same: no spread to test against
        t_p = 1.0 if mean == 0 else 0.0
    w_p = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    out.update(mean_diff=mean, ci_lo=mean - half, ci_hi=mean + half, t_p=t_p, wilcoxon_p=w_p)
    return out


def summary(outs: list) -> dict:
    """The best variant with the bench's recipe against the baseline (outs[0]) and dsd today."""
    base = outs[0]
    today = next((o for o in outs if o.variant.startswith("dsd today")), None)
    best = max((o for o in outs[1:] if o.recipe == "bench"), key=lambda o: o.per_hour)
    return {"section": base.section, "best": best.variant, "best_per_hour": best.per_hour,
            "vs_baseline": best.per_hour / base.per_hour,
            "vs_today": best.per_hour / today.per_hour if today else NAN,
            "paired": paired(base, best), "median_error_best": median(best.errors),
            "median_error_baseline": median(base.errors)}


def _diff(p: dict) -> str:
    if p["n"] < 2:
        return "n/a"
    return f"{p['mean_diff']:+.2f} ({p['ci_lo']:+.2f}..{p['ci_hi']:+.2f}), n {p['n']}"


def _p(p: dict) -> str:
    return "n/a" if p["n"] < 2 else f"{p['t_p']:.2g} / {p['wilcoxon_p']:.2g}"


def _cells(o, base) -> list[str]:
    p = paired(base, o)
    util = "n/a" if o.gpu_util is None else f"{o.gpu_util:.0f}"
    settings = ", ".join(f"{k} {v}" for k, v in o.settings.items())
    return [o.variant, o.recipe, str(o.models), f"{o.wall_s:.1f}", f"{o.per_hour:.0f}",
            f"{o.per_hour / base.per_hour:.2f}", f"{o.images_per_s:.0f}", util, f"{median(o.errors):.2f}",
            "" if o is base else _diff(p), "" if o is base else _p(p), ", ".join(o.steps), settings]


COLUMNS = ("variant", "recipe", "models", "wall s", "models/h", "x baseline", "img/s per model",
           "GPU util %", "median error %", "error - baseline's, points (95% CI)", "p (paired t / Wilcoxon)",
           "steps", "settings")
LEFT = ("variant", "recipe", "steps", "settings")


def table(outs: list) -> Table:
    t = Table(title=f"{outs[0].section}: models per hour")
    for c in COLUMNS:
        t.add_column(c, justify="left" if c in LEFT else "right")
    for o in outs:
        t.add_row(*_cells(o, outs[0]))
    return t


def headline(s: dict) -> str:
    p = s["paired"]
    tests = (f"mean difference {p['mean_diff']:+.2f} points (95% CI {p['ci_lo']:+.2f}..{p['ci_hi']:+.2f}), "
             f"paired t p = {p['t_p']:.3g}, Wilcoxon p = {p['wilcoxon_p']:.3g}") if p["n"] >= 2 else \
        "too few common models for a paired test"
    return (f"Best: {s['best']}, {s['vs_baseline']:.2f}x the baseline, {s['vs_today']:.2f}x dsd today; "
            f"its errors against the baseline's on the {p['n']} models both trained: {tests} "
            f"(medians {s['median_error_best']:.2f}% and {s['median_error_baseline']:.2f}%).")


def markdown(outs: list, s: dict, skipped: list[str]) -> str:
    lines = [f"### {s['section']}", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---" if c in LEFT else "---:" for c in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cells(o, outs[0])) + " |" for o in outs]
    lines += ["", headline(s), ""]
    if skipped:
        lines += [f"Not run, the time budget spent: {'; '.join(skipped)}.", ""]
    return "\n".join(lines)
