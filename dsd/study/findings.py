"""A study's analysis: comparisons with verdicts, figures, the HTML report, FINDINGS.md.

Each comparison of the study file states a finding of the papers and the direction it
predicts (`better`: b's errors are lower; `no_worse`: b's are not higher). The verdict
reads the KS test of the study's primary EDF (flops-normalised by default, as the papers
compare spaces) over the study's declared window, with the p-value Holm-adjusted over
the study's comparisons, so that the family's chance of any false verdict stays at alpha:

  better    p_Holm < alpha, b ahead -> reproduced; p_Holm < alpha, a ahead -> not
            reproduced; otherwise -> not resolved at this n.
  no_worse  p_Holm < alpha, a ahead -> not reproduced; p_Holm < alpha, b ahead ->
            reproduced (b is even better); otherwise -> consistent: no loss detected,
            which is not proof of none, so the verdict states the true D that this n
            detects with 80% power (dsd.analysis.power).
  open      no direction could be sourced: p_Holm < alpha -> differs (b or a better);
            otherwise -> no difference detected at this n.

A space with no model in some bin of the declared window makes the comparison "not
computable in this window": a verdict never reads a range chosen from the data.
"Ahead" is the sign of F_b(e) - F_a(e) where |F_b - F_a| is largest. Everything here is
recomputed from the run directories, so FINDINGS.md is never edited by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dsd.analysis import edf as E
from dsd.analysis.comparison import Comparison
from dsd.analysis.runs import Options, compare
from dsd.errors import DsdError
from dsd.study.spec import Study


@dataclass
class StudyReport:
    table: object                       # a rich Table of the findings
    files: list[Path] = field(default_factory=list)
    partial: str = ""
    findings: list[dict] = field(default_factory=list)


def _options(st: Study, normalize: str) -> Options:
    """The study's statistics; flops bins span the study's own window, the same for every pair."""
    a = st.analysis
    return Options(metric=a.metric, normalize=normalize, bins=a.bins, bootstrap=a.bootstrap,
                   seed=a.seed, permutations=a.permutations,
                   range=st.flops if normalize == "flops" else None)


def run_counts(st: Study) -> dict[str, dict]:
    from dsd.store.run import Run
    from dsd.store.status import run_status

    out = {}
    for s in st.spaces:
        d = st.run_dir(s)
        out[st.label(s)] = run_status(d) if Run(d).samples_path.exists() else None
    return out


def derived_counts(st: Study) -> dict[str, tuple[int, int]]:
    """purpose ("replicate", "fidelity") -> (models with a final result, models declared),
    over every derived run; a run not made yet counts all its models as pending."""
    from dsd.store.run import Run
    from dsd.store.status import run_status

    out: dict[str, tuple[int, int]] = {}
    for _, d, purpose, models, _ in st.derived():
        done = 0
        if Run(d).samples_path.exists():
            c = run_status(d)["counts"]
            done = min(models, sum(c[k] for k in ("ok", "diverged", "failed", "oom")))
        have, want = out.get(purpose, (0, 0))
        out[purpose] = (have + done, want + models)
    return out


def holm(ps: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values."""
    order = np.argsort(ps, kind="stable")
    m, out, running = len(ps), [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


def judge(expect: str, p_holm: float, b_ahead: bool, alpha: float, d80: float | None = None,
          bound: tuple[float, float] | None = None, margin: float | None = None) -> tuple[str, str]:
    """(verdict, reason) for one comparison from its Holm-adjusted p; see the module doc.
    `d80` is the true D this n detects with 80% power, stated when nothing is detected;
    `bound` (median gap b - a, its upper bound) settles a no_worse finding against `margin`."""
    sig = p_holm < alpha
    at = f"Holm p {p_holm:.2g} < {alpha}"
    power = "" if d80 is None else f"; a true D of {d80:.2f} (location shift) is detected with 80% power"
    if expect == "open":
        if sig:
            return ("differs: b is better" if b_ahead else "differs: a is better"), f"({at})"
        return "no difference detected at this n", f"Holm p {p_holm:.2g}{power}"
    if expect == "better":
        if sig and b_ahead:
            return "reproduced", f"b is better ({at})"
        if sig:
            return "not reproduced", f"the opposite: a is better ({at})"
        return "not resolved at this n", f"no significant difference (Holm p {p_holm:.2g}){power}"
    if sig and not b_ahead:
        return "not reproduced", f"b is worse ({at})"
    if sig:
        return "reproduced", f"b is even better ({at})"
    if bound is not None and margin is not None:
        gap, upper = bound
        if upper < margin:
            return "reproduced", (f"no worse within the margin: b's median error is {gap:+.2f} points "
                                  f"from a's, at most {upper:+.2f} (upper bound) < {margin:g}")
        return "consistent", (f"no loss detected (Holm p {p_holm:.2g}), but the loss is bounded only "
                              f"at {upper:+.2f} points, not below the margin {margin:g}")
    return "consistent", f"no loss detected (Holm p {p_holm:.2g}){power}"


def no_worse_bound(st: Study, sa: E.Sample, sb: E.Sample, m: int) -> tuple[float, float] | None:
    """(median gap b - a, its upper bound at 1 - alpha/m), when the study declares a margin."""
    from dsd.analysis.equivalence import median_gap_upper

    if st.analysis.margin is None:
        return None
    level = st.analysis.alpha / m
    return median_gap_upper(sa, sb, level, n_boot=max(2000, int(40 / level)), seed=st.analysis.seed)


def fmt_p(p: float, method: str = "") -> str:
    """A p-value as a plain number: a permutation p at its floor 1/(P+1) reads as a bound,
    and one below 0.0001 as such (no scientific notation in tables)."""
    import re

    m = re.search(r"\((\d+)\)$", method)
    if m and p <= 1 / (int(m.group(1)) + 1) + 1e-15:
        return f"≤ 1/{int(m.group(1)) + 1}"
    return "< 0.0001" if p < 1e-4 else f"{p:.3g}"


def compare_in_window(st: Study, paths: list[Path], normalize: str) -> Comparison:
    """The runs' comparison over the study's declared window (normalised EDFs: the same
    bins for every comparison). A space with no model in some bin of it raises, saying
    what to change: a verdict never reads a range chosen from the data."""
    try:
        return compare(paths, _options(st, normalize))
    except DsdError as e:
        if normalize == "none" or "bin" not in str(e):
            raise
        raise DsdError(f"not computable in the study window {st.flops}: {str(e).split(';')[0]}; "
                       f"sample a wider window, use fewer analysis bins, or raise n so every "
                       "bin holds models") from None


def comparison_rows(st: Study) -> tuple[list[dict], list[str]]:
    """One row per comparison: plain and primary KS results, direction, verdict."""
    rows, notes = [], []
    primary = st.analysis.normalize
    for c in st.comparisons:
        row = {"finding": c.finding, "a": c.a, "b": c.b, "expect": c.expect}
        docs = {}
        for key in dict.fromkeys(["none", primary]):
            try:
                docs[key] = compare_in_window(st, [st.run_dir(c.a), st.run_dir(c.b)], key)
            except DsdError as e:
                notes.append(f"{c.a} vs {c.b} ({key}): {e}")
        if primary not in docs:
            why = notes[-1].split(": ", 1)[1]
            row.update(verdict="not computable in this window" if why.startswith("not computable")
                       else "not yet computable", reason=why)
        for key, cmp in docs.items():
            ra, rb = cmp.runs
            pair = cmp.pairs[0]
            row[key] = {"d": pair.ks_d, "p": pair.p_value, "method": pair.p_method,
                        "b_ahead": cmp.b_ahead(), "n_a": ra.n, "n_b": rb.n,
                        "median_a": ra.median_error, "median_b": rb.median_error,
                        "n_eff_a": ra.n_eff, "n_eff_b": rb.n_eff, "comparison": cmp}
        rows.append(row)
    _verdicts(st, rows)
    return rows, notes


def _verdicts(st: Study, rows: list[dict]) -> None:
    """Holm over the family of computable comparisons, then each verdict (plain EDFs too)."""
    from dsd.analysis.power import detectable_d

    alpha, prim = st.analysis.alpha, st.analysis.normalize
    for key in dict.fromkeys([prim, "none"]):
        family = [r for r in rows if key in r]
        for r, p in zip(family, holm([r[key]["p"] for r in family])):
            r[key]["p_holm"] = p
    m = max(1, sum(1 for r in rows if prim in r))
    for r in rows:
        if prim not in r:
            continue
        main = r[prim]
        ra, rb = main["comparison"].runs
        # Power at alpha / m, Holm's strictest step: what this n guarantees for any finding.
        main["d80"] = detectable_d(ra.sample.weights, rb.sample.weights, alpha / m, seed=st.analysis.seed)
        bound = no_worse_bound(st, ra.sample, rb.sample, m) if r["expect"] == "no_worse" else None
        main["median_gap_bound"] = bound
        r["verdict"], r["reason"] = judge(r["expect"], main["p_holm"], main["b_ahead"], alpha,
                                          main["d80"], bound, st.analysis.margin)
        if prim != "none" and "none" in r:
            plain = r["none"]
            r["verdict_plain"], _ = judge(r["expect"], plain["p_holm"], plain["b_ahead"], alpha)
