"""A study's analysis: comparisons with verdicts, figures, the HTML report, FINDINGS.md.

Each comparison of the study file states a finding of the papers and the direction it
predicts (`better`: b's errors are lower; `no_worse`: b's are not higher). The verdict
reads the KS test of the study's primary EDF (flops-normalised by default, as the papers
compare spaces) at the study's alpha:

  better    p < alpha, b ahead -> reproduced; p < alpha, a ahead -> not reproduced;
            otherwise -> not resolved at this n.
  no_worse  p < alpha, a ahead -> not reproduced; p < alpha, b ahead -> reproduced (b
            is even better); otherwise -> consistent: no loss detected, which is not
            proof of none, so the verdict states the smallest D this n detects.

"Ahead" is the sign of F_b(e) - F_a(e) where |F_b - F_a| is largest. Everything here is
recomputed from the run directories, so FINDINGS.md is never edited by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dsd.analysis import edf as E
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
    from dsd.store.status import run_status

    out = {}
    for s in st.spaces:
        d = st.run_dir(s)
        out[st.label(s)] = run_status(d) if (d / "samples.parquet").exists() else None
    return out


def ks_critical(n_a: float, n_b: float, alpha: float) -> float:
    """The smallest D a two-sample KS test at level alpha rejects (asymptotic)."""
    c = np.sqrt(-np.log(alpha / 2) / 2)
    return float(c * np.sqrt((n_a + n_b) / (n_a * n_b)))


def judge(expect: str, d: float, p: float, b_ahead: bool, alpha: float,
          d_crit: float) -> tuple[str, str]:
    """(verdict, reason) for one comparison; see the module docstring."""
    sig = p < alpha
    if expect == "better":
        if sig and b_ahead:
            return "reproduced", f"b is better (p {p:.2g} < {alpha})"
        if sig:
            return "not reproduced", f"the opposite: a is better (p {p:.2g} < {alpha})"
        return ("not resolved at this n",
                f"no significant difference (p {p:.2g}); this n detects D >= {d_crit:.2f}")
    if sig and not b_ahead:
        return "not reproduced", f"b is worse (p {p:.2g} < {alpha})"
    if sig:
        return "reproduced", f"b is even better (p {p:.2g} < {alpha})"
    return "consistent", f"no loss detected (p {p:.2g}); this n detects D >= {d_crit:.2f}"


def compare_in_window(st: Study, paths: list[Path], normalize: str) -> tuple[dict, str]:
    """The runs' comparison, and a note when it could not use the study's own window.

    Normalised EDFs use the study's window, the same bins for every comparison; where a
    space has no model in some bin of it (a narrow space, such as RegNetX, may not reach the
    window's lower end), the runs' shared range instead, as `dsd edf compare` does by
    default. The note says which range was used and why ("" when the window was)."""
    try:
        return compare(paths, _options(st, normalize)), ""
    except DsdError as e:
        if normalize == "none":
            raise
        doc = compare(paths, replace(_options(st, normalize), range=None))
        lo, hi = doc["range"]
        return doc, (f"over the study window, {e.args[0].split(';')[0]}; normalised over the "
                     f"shared {normalize} range {lo:.4g}..{hi:.4g} instead")


def _pair_doc(st: Study, a: str, b: str, normalize: str, notes: list[str]) -> dict:
    doc, note = compare_in_window(st, [st.run_dir(a), st.run_dir(b)], normalize)
    if note:
        notes.append(f"{a} vs {b} ({normalize}): {note}")
        lo, hi = doc["range"]
        doc["range_note"] = f"over the pair's shared {normalize} range {lo:.4g}..{hi:.4g}"
    return doc


def _direction(doc: dict) -> tuple[bool, dict]:
    ra, rb = doc["runs"]
    pair = doc["pairs"][0]
    at = np.array([pair["argmax_error"]])
    sa = E.Sample(np.asarray(ra["errors"]), np.asarray(ra["weights"]))
    sb = E.Sample(np.asarray(rb["errors"]), np.asarray(rb["weights"]))
    ahead = float(E.edf(sb, at)[0] - E.edf(sa, at)[0]) > 0
    return ahead, pair


def comparison_rows(st: Study) -> tuple[list[dict], list[str]]:
    """One row per comparison: plain and primary KS results, direction, verdict."""
    rows, notes = [], []
    primary = st.analysis.normalize
    for c in st.comparisons:
        row = {"finding": c.finding, "a": c.a, "b": c.b, "expect": c.expect}
        docs = {}
        for key in dict.fromkeys(["none", primary]):
            try:
                docs[key] = _pair_doc(st, c.a, c.b, key, notes)
            except DsdError as e:
                notes.append(f"{c.a} vs {c.b} ({key}): {e}")
        if primary not in docs:
            row.update(verdict="not yet computable", reason=notes[-1].split(": ", 1)[1])
        for key, doc in docs.items():
            ahead, pair = _direction(doc)
            ra, rb = doc["runs"]
            row[key] = {"d": pair["ks_d"], "p": pair["p_value"], "method": pair["p_method"],
                        "b_ahead": ahead, "n_a": ra["n"], "n_b": rb["n"],
                        "median_a": ra["median_error"], "median_b": rb["median_error"],
                        "n_eff_a": ra["n_eff"], "n_eff_b": rb["n_eff"], "doc": doc}
        if primary not in docs:
            rows.append(row)
            continue
        main = row[primary]
        crit = ks_critical(main["n_eff_a"], main["n_eff_b"], st.analysis.alpha)
        row["verdict"], row["reason"] = judge(c.expect, main["d"], main["p"], main["b_ahead"],
                                              st.analysis.alpha, crit)
        if main["doc"].get("range_note"):
            row["reason"] += f" ({main['doc']['range_note']})"
        if primary != "none" and "none" in row:
            plain = row["none"]
            v_plain, _ = judge(c.expect, plain["d"], plain["p"], plain["b_ahead"], st.analysis.alpha,
                               ks_critical(plain["n_a"], plain["n_b"], st.analysis.alpha))
            row["verdict_plain"] = v_plain
        rows.append(row)
    return rows, notes
