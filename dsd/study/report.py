"""Writing a study's outputs: figures (PNG + SVG), the HTML report and FINDINGS.md.

Everything lands in the study's output folder (`studies/NAME/`) and is rebuilt from the
run directories by `dsd study report`; nothing is edited by hand.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from rich.table import Table

from dsd.analysis.comparison import Comparison
from dsd.analysis.plots import edf_lines_figure, edf_plot, replicate_edfs_plot, save
from dsd.analysis.runs import MIN_MODELS, window_samples
from dsd.errors import DsdError
from dsd.study.findings import (
    StudyReport,
    _options,
    compare_in_window,
    comparison_rows,
    derived_counts,
    fmt_p,
    run_counts,
)
from dsd.study.robustness import (
    STABILITY_PERMUTATIONS,
    FidelityCheck,
    Replication,
    fidelity,
    replication,
)
from dsd.study.spec import Study


def write_study_report(st: Study) -> StudyReport:
    counts = run_counts(st)
    ready = [s for s in st.spaces
             if counts[st.label(s)] and counts[st.label(s)]["counts"]["ok"] >= MIN_MODELS]
    rows, notes = comparison_rows(st)
    prim = st.analysis.normalize
    rep = replication(st, {k: r["verdict"] for k, r in enumerate(rows) if prim in r})
    fid = fidelity(st)
    files: list[Path] = []
    figures: dict[str, list[Path]] = {}
    # The plain comparison of every ready space: the EDF and min-of-k figures and report.html.
    plain = compare_in_window(st, [st.run_dir(s) for s in ready], "none") if ready else None
    if "edfs" in st.figures:
        figures["edfs"] = _all_edfs(st, ready, "none", "edfs.png", plain)
    if "edfs_normalized" in st.figures and st.analysis.normalize != "none":
        figures["edfs_normalized"] = _all_edfs(st, ready, st.analysis.normalize,
                                               f"edfs-{st.analysis.normalize}.png")
    if "comparisons" in st.figures:
        for r in rows:
            cmp = r.get(st.analysis.normalize, {}).get("comparison")
            if cmp:
                figures[f"{r['a']} vs {r['b']}"] = edf_plot(
                    cmp, st.out / "comparisons" / f"{r['a']}-vs-{r['b']}.png")
    if "min_of_k" in st.figures and ready:
        from dsd.analysis.minofk import min_of_k_plot

        figures["min_of_k"] = min_of_k_plot(plain, st.out / "min-of-k.png")
    if "trends" in st.figures:
        figures["trends"] = _trends(st, ready)
    if "replicates" in st.figures and rep and rep.tables:
        figures["replicates"] = replicate_edfs_plot(rep.tables, st.out / "replicates.png")
    for paths in figures.values():
        files += paths
    partial = partial_status(st, counts)
    report = _html_report(st, ready, rows, partial, plain)
    if report:
        files.append(report)
    st.out.mkdir(parents=True, exist_ok=True)
    md = st.out / "FINDINGS.md"
    md.write_text(findings_markdown(st, rows, counts, figures, partial, notes)
                  + robustness_markdown(st, rows, rep, fid))
    files.append(md)
    return StudyReport(_rich_table(st, rows, partial), files, partial, rows)


def _all_edfs(st: Study, ready: list[str], normalize: str, name: str,
              plain: Comparison | None = None) -> list[Path]:
    """Every ready space's EDF; normalised, only the spaces with a model in every bin of
    the study window (the title names any left out). `plain`: the plain comparison of
    every ready space, when the caller has it."""
    shown = ready if normalize == "none" else [s for s in ready if _fills_window(st, s, normalize)]
    if not shown:
        return []
    cmp = plain if normalize == "none" and plain else compare_in_window(
        st, [st.run_dir(s) for s in shown], normalize)
    left = [st.label(s) for s in ready if s not in shown]
    title = f"{st.name}: error EDFs of {len(shown)} design spaces"
    if left:  # the figure appends its normalisation to the title's last line
        title += f"\nnot shown: {', '.join(left)} (an empty bin of {st.flops})"
    return save(edf_lines_figure(cmp, title), st.out / name)


def _fills_window(st: Study, space: str, normalize: str) -> bool:
    try:
        window_samples([st.run_dir(space)], _options(st, normalize))
        return True
    except DsdError:
        return False


def partial_status(st: Study, counts: dict) -> str:
    pending = {k: _pending(c) if c else st.n for k, c in counts.items()}
    left = sum(pending.values())
    if not left:
        return ""
    total = st.n * len(st.spaces)
    return f"{total - left} of {total} models have a final result (" + ", ".join(
        f"{k} {st.n - v}/{st.n}" for k, v in pending.items()) + ")"


def _status_text(st: Study, partial: str) -> str:
    """The FINDINGS status: the main models, then any replicate or fidelity models still to
    train (the verdicts stand without them; the noise and fidelity sections do not)."""
    derived = [f"{done} of {want} {purpose} models"
               for purpose, (done, want) in derived_counts(st).items() if done < want]
    if not derived:
        return "PARTIAL: " + partial if partial else "complete"
    main = "PARTIAL: " + partial if partial else "every space's models are trained"
    return f"{main}; still to train: {', '.join(derived)} have a final result"


def _pending(status: dict) -> int:
    """Models without a final result: not started, or in flight."""
    return status["counts"]["remaining"] + status["counts"]["in_flight"]


def _trends(st: Study, ready: list[str]) -> list[Path]:
    """Error against depth, flops and params, every space in one panel each
    (RegNet paper, Figs. 10-11 style; the RegNet-only quantities live in `dsd trend`)."""
    from dsd.analysis.runs import run_errors
    from dsd.analysis.trends import trends, trends_plot

    if not ready:
        return []
    runs = [run_errors(st.run_dir(s), "error_min") for s in ready]
    for r, s in zip(runs, ready):
        r.name = st.label(s)
    doc = trends(runs, ["depth", "flops", "params"])
    return trends_plot(doc, st.out / "trends.png")


def _predicts(expect: str) -> str:
    return "no direction (open)" if expect == "open" else f"b {expect.replace('_', ' ')}"


def _holm_text(m: dict) -> str:
    """The Holm p; a bound where the raw p it comes from is a permutation floor."""
    bound = fmt_p(m["p"], m["method"]).startswith("≤")
    return f"≤ {m['p_holm']:.3g}" if bound else f"{m['p_holm']:.3g}"


def findings_markdown(st: Study, rows: list[dict], counts: dict, figures: dict, partial: str,
                      notes: list[str]) -> str:
    prim = st.analysis.normalize
    a = st.analysis
    recipe = ", ".join(f"{k} {v}" for k, v in st.recipe.items()) or "the data set's defaults"
    lines = [f"# Findings: {st.name}", "",
             f"Generated by `dsd study report {st.path.as_posix()}` from the run directories in "
             f"`{st.out.as_posix()}/`; do not edit by hand.", "",
             f"{st.description}", "",
             f"- Data set: {st.dataset}; {st.n} models per space sampled at {st.flops} flops "
             f"(seed {st.seed}); recipe: {recipe}.",
             f"- Metric: {a.metric} (the best epoch's top-1 error, %, as pycls reports). "
             f"Verdicts read the {'plain' if prim == 'none' else prim + '-normalised'} EDFs "
             f"({a.bins} bins over the study window) with a KS test; each verdict reads its "
             f"p-value Holm-adjusted over the {len(rows)} comparisons at alpha = {a.alpha}, so "
             "the chance of any false verdict in the family stays at alpha; raw p beside it.",
             f"- Status: {_status_text(st, partial)}.", ""]
    head = ["finding", "a -> b", "paper predicts", f"D ({prim})", "p", "p (Holm)", "ahead",
            "D (plain)", "p (plain)", "median error a / b", "verdict"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m, p = r.get(prim), r.get("none")
        main = (f"{m['d']:.3f} | {fmt_p(m['p'], m['method'])} | {_holm_text(m)} | "
                f"{'b' if m['b_ahead'] else 'a'}" if m else " | | | ")
        plain = (f"{p['d']:.3f} | {fmt_p(p['p'], p['method'])} | {p['median_a']:.2f} / "
                 f"{p['median_b']:.2f}" if p else " | | ")
        lines.append(f"| {r['finding']} | {r['a']} -> {r['b']} | {_predicts(r['expect'])} | "
                     f"{main} | {plain} | **{r['verdict']}**: {r['reason']} |")
    disagree = [r for r in rows if r.get("verdict_plain") and r["verdict_plain"] != r["verdict"]]
    for r in disagree:
        lines.append(f"\nOn plain EDFs, {r['a']} -> {r['b']} would read: {r['verdict_plain']}.")
    lines += ["", "## Spaces", "",
              "| space | ok | diverged | failed/oom | pending | min | median | mean | max | "
              "median s/model | worker-h | threads |", "|" + "---|" * 12]
    for s in st.spaces:
        c = counts[st.label(s)]
        if c is None:
            lines.append(f"| {st.label(s)} | not sampled | | | | | | | | | | |")
            continue
        k, e = c["counts"], c["error_min"]
        cost = _cost(st.run_dir(s))
        err = " | ".join(f"{e[q]:.2f}" for q in ("min", "median", "mean", "max")) if e else " | | | "
        lines.append(f"| {st.label(s)} | {k['ok']} | {k['diverged']} | {k['failed'] + k['oom']} | "
                     f"{_pending(c)} | {err} | {cost['median_s']} | {cost['hours']} | {cost['threads']} |")
    span = _wall_span(st)
    if span:
        lines += ["", f"Results span {span}."]
    if figures:
        lines += ["", "## Figures", ""]
        for name, paths in figures.items():
            png = [q for q in paths if q.suffix == ".png"]
            if png:
                lines.append(f"- {name}: [{png[0].relative_to(st.out).as_posix()}]"
                             f"({png[0].relative_to(st.out).as_posix()})")
    warned = dict.fromkeys(f"{r.name}: {w}" for row in rows for key in ("none", prim) if key in row
                           for r in row[key]["comparison"].runs for w in r.warnings)
    if warned:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warned]
    if notes:
        lines += ["", "## Not computed", ""] + [f"- {n}" for n in notes]
    lines += ["", "## How to read the verdicts", "",
              "- Significant means the Holm-adjusted p is below alpha: over the study's "
              "comparisons, the chance of one or more false verdicts is at most alpha.",
              "- `better`: reproduced when b's EDF is significantly above a's (more models "
              "below each error); not reproduced when significantly below; otherwise not "
              "resolved at this n.",
              "- `no_worse`: not reproduced when b's EDF is significantly below a's; reproduced "
              "when significantly above (b is even better); otherwise consistent: no loss "
              "detected, which is weaker than reproduced. Where nothing is detected, the "
              "verdict states the true KS D (a location shift) that this n detects with 80% "
              "power at Holm's strictest level (alpha / comparisons), by simulation; a smaller "
              "difference, or one confined to a tail, may go undetected.",
              "- A permutation p at its floor reads `≤ 1/(P+1)` (P permutations): no "
              "permutation reached the observed D.",
              "- Not computable in this window: a space has no model in some complexity bin of "
              "the declared window; verdicts never fall back to a range chosen from the data.",
              "- A finding that does not reproduce here is a result about this data set, "
              "recipe and complexity regime, not a claim about the paper's ImageNet setting."]
    return "\n".join(lines) + "\n"


def robustness_markdown(st: Study, rows: list[dict], rep: Replication | None,
                        fid: FidelityCheck | None) -> str:
    """FINDINGS.md's sections on noise, fidelity and covariates (empty when undeclared)."""
    lines: list[str] = []
    if rep:
        lines += _noise_lines(st, rows, rep)
    if fid:
        lines += _fidelity_lines(st, fid)
    if st.analysis.covariates:
        lines += _covariate_lines(st, rows)
    return "\n".join(["", *lines]) + "\n" if lines else ""


def _noise_lines(st: Study, rows: list[dict], rep: Replication) -> list[str]:
    seeds = ", ".join(str(x) for x in (st.seed, *st.replicates.seeds))
    lines = ["## Noise: the same models trained with other seeds", "",
             f"The first {st.replicates.models} models of every space, trained with seeds "
             f"{seeds} (the first is the published one); noise SD is the spread of one model's "
             "error over seeds, between-model SD the spread of the models' own errors, ICC "
             "the share of one error's variance that belongs to the model (one-way random "
             "effects, 95% F interval). Points of error.", "",
             "| space | models x seeds | noise SD | between-model SD | ICC (95% CI) | "
             "mean abs. change vs published |",
             "|---|---|---|---|---|---|"]
    for name, nz in rep.noise.items():
        lines.append(f"| {name} | {nz.models} x {nz.replicates} | {nz.noise_sd:.2f} | "
                     f"{nz.between_sd:.2f} | {nz.icc:.2f} ({nz.icc_ci[0]:.2f}..{nz.icc_ci[1]:.2f}) | "
                     f"{nz.mean_abs_change:.2f} |")
    if not rep.noise:
        lines.append("| (none yet) | no space has 2 models with every seed trained (the "
                     "noise SD and ICC need two) | | | | |")
    lines += ["", f"Verdict stability: the share of {rep.resamples} resampled studies (each "
              "replicated model's error drawn at random from its seeds, the others as "
              "published; the same rule: Holm over the findings, the declared window, "
              f"{STABILITY_PERMUTATIONS} permutations) that reach the published verdict.", "",
              "| finding | a -> b | published verdict | same verdict under replicate noise |",
              "|---|---|---|---|"]
    for k, share in rep.stability.items():
        r = rows[k]
        lines.append(f"| {r['finding']} | {r['a']} -> {r['b']} | {r['verdict']} | {share:.0%} |")
    if not rep.stability:
        lines.append("| (none yet) | | | no compared space has 2 models with every seed trained |")
    return lines + [""]


def _fidelity_lines(st: Study, fid: FidelityCheck) -> list[str]:
    extra = ", ".join(f"{k} {v}" for k, v in st.fidelity.recipe.items() if st.recipe.get(k) != v)
    lines = ["## Fidelity: the same models at a longer budget", "",
             f"The first {st.fidelity.models} models of {', '.join(st.fidelity.spaces)} trained "
             f"again with {extra or 'the fidelity recipe'} (the study's recipe otherwise), "
             "paired by model id. Rank agreement with Fisher-z 95% intervals:", "",
             "| space | models at both budgets | Spearman (95% CI) | Kendall (95% CI) | "
             "mean error short / long |",
             "|---|---|---|---|---|"]
    for name, n in fid.models.items():
        a = fid.agreement.get(name)
        if a is None:
            lines.append(f"| {name} | {n} | | | |")
            continue
        lines.append(f"| {name} | {n} | {a.spearman:.2f} ({a.spearman_ci[0]:.2f}..{a.spearman_ci[1]:.2f}) "
                     f"| {a.kendall:.2f} ({a.kendall_ci[0]:.2f}..{a.kendall_ci[1]:.2f}) | "
                     f"{a.mean_short:.2f} / {a.mean_long:.2f} |")
    if fid.verdicts:
        prim = st.analysis.normalize
        keys = list(dict.fromkeys([prim, "none"]))
        head = [f"{'plain' if k == 'none' else k}, {b}" for k in keys for b in ("short", "long")]
        lines += ["", "Each comparison on the same models at both budgets (the study's rule; Holm "
                  "over these comparisons; D and Holm p in brackets):", "",
                  "| a -> b | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
        for k, v in fid.verdicts.items():
            c = st.comparisons[k]
            cells = [_verdict_cell(v.get((n, b))) for n in keys for b in ("short", "long")]
            lines.append(f"| {c.a} -> {c.b} | " + " | ".join(cells) + " |")
    return lines + [""]


def _verdict_cell(v) -> str:
    if v is None:
        return ""
    verdict, d, p = v
    return verdict if d != d else f"{verdict} (D {d:.2f}, p {p:.2g})"


def _covariate_lines(st: Study, rows: list[dict]) -> list[str]:
    from dsd.analysis.adjust import adjust_runs

    covs = list(st.analysis.covariates)
    lines = ["## Why the spaces differ: effects at equal covariates", "",
             f"b minus a in points of {st.analysis.metric}, the models in the study window, raw "
             f"and adjusted for {', '.join(f'`{c}`' for c in covs)} (least squares, HC2 "
             "standard errors, 95% t intervals). Observational: a covariate that takes the "
             "effect toward zero may carry the difference; an experiment that varies it tests "
             "that.", "",
             "| a -> b | raw (95% CI, t) | adjusted (95% CI, t) | " +
             " | ".join(f"per unit of `{c}`" for c in covs) + " |",
             "|---|---|---|" + "---|" * len(covs)]
    fmt = lambda e: f"{e.estimate:+.2f} ({e.ci[0]:+.2f}..{e.ci[1]:+.2f}, t {e.t:.1f})"  # noqa: E731
    for r in rows:
        try:
            res = adjust_runs(st.run_dir(r["a"]), st.run_dir(r["b"]), covs, st.analysis.metric,
                              flops=st.flops)
        except DsdError as e:
            lines.append(f"| {r['a']} -> {r['b']} | {e} | |" + " |" * len(covs))
            continue
        lines.append(f"| {r['a']} -> {r['b']} | {fmt(res.raw)} | {fmt(res.adjusted)} | " +
                     " | ".join(fmt(res.slopes[c]) for c in covs) + " |")
    return lines + [""]


def _cost(run_dir: Path) -> dict:
    from dsd.store.results import read_results
    from dsd.store.run import Run

    final = read_results(Run(run_dir).results_dir).final()
    if final.empty:
        return {"median_s": "", "hours": "", "threads": ""}
    thr = sorted({int(t) for t in final.get("threads", []) if t == t and t is not None})
    return {"median_s": f"{float(np.median(final.seconds)):.1f}",
            "hours": f"{float(final.seconds.sum()) / 3600:.2f}",  # one worker each: core-hours
            "threads": ",".join(str(t) for t in thr) or "?"}


def _wall_span(st: Study) -> str:
    import pandas as pd

    from dsd.store.results import read_results
    from dsd.store.run import Run

    times = []
    for d in st.run_dirs():
        f = read_results(Run(d).results_dir).final()
        if not f.empty:
            times += list(pd.to_datetime(f.finished_at))
    if len(times) < 2:
        return ""
    return (f"{min(times):%Y-%m-%d %H:%M} to {max(times):%Y-%m-%d %H:%M} UTC (wall span, pauses "
            "between sessions included; the compute is in the table above)")


def _html_report(st: Study, ready: list[str], rows: list[dict], partial: str,
                 plain: Comparison | None) -> Path | None:
    from dsd.analysis.report import build_report

    if len(ready) < 1:
        return None
    prim = st.analysis.normalize
    cells = []
    for r in rows:
        m = r.get(prim)
        stats = (f"<td>{m['d']:.3f}</td><td>{html.escape(fmt_p(m['p'], m['method']))}</td>"
                 f"<td>{html.escape(_holm_text(m))}</td>" if m else "<td></td><td></td><td></td>")
        cells.append(f"<tr><td style='text-align:left'>{html.escape(r['finding'])}</td>"
                     f"<td>{html.escape(r['a'])} &rarr; {html.escape(r['b'])}</td>{stats}"
                     f"<td style='text-align:left'><b>{html.escape(r['verdict'])}</b>: "
                     f"{html.escape(r['reason'])}</td></tr>")
    status = f"<p><b>Partial study</b>: {html.escape(partial)}</p>" if partial else ""
    preface = (f"<h2>Findings</h2>{status}<p>Verdicts read the study's declared analysis: "
               f"{html.escape(_declared(st))}. The sections below describe the runs (plain EDFs, "
               "parameters, widths, curves); FINDINGS.md holds the normalised figures.</p>"
               "<table><tr><th>finding</th><th>a &rarr; b</th>"
               f"<th>D ({prim})</th><th>p</th><th>p (Holm)</th><th>verdict</th></tr>{''.join(cells)}</table>")
    return build_report([str(st.run_dir(s)) for s in ready], st.out / "report.html",
                        _options(st, "none"), preface=preface, normalised=False, cmp=plain)


def _declared(st: Study) -> str:
    a = st.analysis
    how = ("plain EDFs" if a.normalize == "none"
           else f"{a.normalize}-normalised EDFs, {a.bins} bins over {st.flops}")
    return (f"{how}, KS with {a.permutations} permutations, Holm over {len(st.comparisons)} "
            f"findings at alpha {a.alpha}")


def _rich_table(st: Study, rows: list[dict], partial: str) -> Table:
    prim = st.analysis.normalize
    t = Table(title=f"{st.name}: findings ({prim} EDFs, alpha {st.analysis.alpha})"
              + (" [partial]" if partial else ""))
    for col in ("finding", "a -> b", "D", "p", "p (Holm)", "ahead", "verdict"):
        t.add_column(col)
    for r in rows:
        m = r.get(prim)
        t.add_row(r["finding"], f"{r['a']} -> {r['b']}", f"{m['d']:.3f}" if m else "",
                  fmt_p(m["p"], m["method"]) if m else "", _holm_text(m) if m else "",
                  ("b" if m["b_ahead"] else "a") if m else "", r["verdict"])
    return t
