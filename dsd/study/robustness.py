"""How far a study's verdicts survive training noise and a longer budget.

Replicates (the same models trained with other seeds) give each space's noise and each
verdict's stability: the share of resampled studies, each model's error drawn from its
seeds at random, that reach the published verdict under the same rule (Holm over the
family, the declared window). Fidelity runs (the same models at a longer budget) give
the rank agreement of the two budgets, and each comparison's verdict at both, on the
same models.

Every verdict here goes through `test_pair` and `family_verdicts`, the study's own rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dsd.analysis import edf as E
from dsd.analysis.fidelity import RankAgreement, rank_agreement
from dsd.analysis.noise import Noise, noise
from dsd.analysis.runs import run_errors
from dsd.errors import DsdError
from dsd.sizes import parse_window
from dsd.study.findings import holm, judge, no_worse_bound
from dsd.study.spec import Study

STABILITY_RESAMPLES = 200
STABILITY_PERMUTATIONS = 500


def errors_by_model(path, metric: str) -> pd.DataFrame:
    """model_id -> error and flops of a run's usable models ({} before training)."""
    try:
        t = run_errors(path, metric).table
    except DsdError:
        return pd.DataFrame(columns=["error", "flops"])
    if t.empty:
        return pd.DataFrame(columns=["error", "flops"])
    return t.set_index("model_id")[["error", "flops"]]


def test_pair(st: Study, a: pd.DataFrame, b: pd.DataFrame, normalize: str,
              rng: np.random.Generator, permutations: int) -> tuple:
    """(D, p, b ahead, a's sample, b's sample) of two spaces' errors under the study's test,
    in its window."""
    if normalize == "none":
        sa, sb = E.plain(a.error.to_numpy()), E.plain(b.error.to_numpy())
        p = E.ks_plain_pvalue(sa, sb)[0]
    else:
        lo, hi = parse_window(st.flops)
        samples = []
        for t in (a, b):
            inside = t[t.flops.between(lo, hi)]
            samples.append(E.normalized(inside.error.to_numpy(), inside.flops.to_numpy(),
                                        st.analysis.bins, lo, hi))
        sa, sb = samples
        p = E.ks_permutation_pvalue(sa, sb, permutations, rng)[0]
    d, at = E.ks_statistic(sa, sb)
    ahead = float(E.edf(sb, np.array([at]))[0] - E.edf(sa, np.array([at]))[0]) > 0
    return d, p, ahead, sa, sb


def family_verdicts(st: Study, tests: dict[int, tuple]) -> dict[int, str]:
    """Verdicts of the comparisons (by index) that could be tested, Holm over them, with the
    equivalence bound for no_worse findings when the study declares a margin."""
    keys = sorted(tests)
    adjusted = holm([tests[k][1] for k in keys])
    out = {}
    for k, p in zip(keys, adjusted):
        expect, (_, _, ahead, sa, sb) = st.comparisons[k].expect, tests[k]
        bound = no_worse_bound(st, sa, sb, len(keys)) if expect == "no_worse" else None
        out[k] = judge(expect, p, ahead, st.analysis.alpha, None, bound, st.analysis.margin)[0]
    return out


@dataclass
class Replication:
    noise: dict[str, Noise]              # per space
    tables: dict[str, np.ndarray]        # per space: errors [models, seeds], published seed first
    stability: dict[int, float]          # per comparison index: share of resamples agreeing
    # (only comparisons with a replicated model in a or b: elsewhere nothing is resampled)
    resamples: int


def replication(st: Study, published: dict[int, str],
                resamples: int = STABILITY_RESAMPLES) -> Replication | None:
    """Noise per space and each published verdict's stability under replicate noise."""
    if not st.replicates:
        return None
    metric, seeds = st.analysis.metric, st.replicates.seeds
    base = {st.label(s): errors_by_model(st.run_dir(s), metric) for s in st.spaces}
    reps = {st.label(s): [errors_by_model(st.replicate_dir(s, seed), metric).error for seed in seeds]
            for s in st.spaces}
    noises, choices = {}, {}
    for name, t in base.items():
        table = pd.concat([t.error] + reps[name], axis=1, join="inner").dropna()
        if len(table) >= 2:
            noises[name] = noise(table.to_numpy())
            choices[name] = table
    rng = np.random.default_rng(st.analysis.seed)
    # A comparison neither of whose spaces has a replicated model yet would agree with itself
    # in every resample: its stability is not measured, not 100%.
    measured = [k for k in published if {st.comparisons[k].a, st.comparisons[k].b} & set(choices)]
    agree = {k: 0 for k in measured}
    if not measured:
        return Replication(noises, {}, {}, resamples)
    for _ in range(resamples):
        drawn = {}
        for name, t in base.items():
            t = t.copy()
            if name in choices:
                c = choices[name]
                pick = rng.integers(0, c.shape[1], len(c))
                t.loc[c.index, "error"] = c.to_numpy()[np.arange(len(c)), pick]
            drawn[name] = t
        tests = {}
        for k in published:
            c = st.comparisons[k]
            tests[k] = test_pair(st, drawn[c.a], drawn[c.b], st.analysis.normalize, rng,
                                 STABILITY_PERMUTATIONS)
        for k, v in family_verdicts(st, tests).items():
            if k in agree:
                agree[k] += v == published[k]
    return Replication(noises, {k: c.to_numpy() for k, c in choices.items()},
                       {k: v / resamples for k, v in agree.items()}, resamples)


@dataclass
class FidelityCheck:
    agreement: dict[str, RankAgreement]      # per fidelity space
    models: dict[str, int]                   # per fidelity space: models trained at both budgets
    # comparison index -> (normalize, budget) -> (verdict, D, Holm p)
    verdicts: dict[int, dict[tuple[str, str], tuple[str, float, float]]]


def fidelity(st: Study) -> FidelityCheck | None:
    """Rank agreement per space and verdicts at both budgets on the same models, by the
    study's rule (its normalisation, in its window) and on plain EDFs."""
    if not st.fidelity:
        return None
    metric = st.analysis.metric
    short, long = {}, {}
    for s in st.fidelity.spaces:
        name = st.label(s)
        at_long = errors_by_model(st.fidelity_dir(s), metric)
        at_short = errors_by_model(st.run_dir(s), metric)
        both = at_short.index.intersection(at_long.index)
        short[name], long[name] = at_short.loc[both], at_long.loc[both]
    agreement = {k: rank_agreement(short[k].error, long[k].error) for k in short if len(short[k]) >= 5}
    pairs = [k for k, c in enumerate(st.comparisons)
             if c.a in short and c.b in short and min(len(short[c.a]), len(short[c.b])) >= 3]
    out: dict[int, dict] = {k: {} for k in pairs}
    for normalize in dict.fromkeys([st.analysis.normalize, "none"]):
        for budget, data in (("short", short), ("long", long)):
            tests, rng = {}, np.random.default_rng(st.analysis.seed)
            for k in pairs:
                c = st.comparisons[k]
                try:
                    tests[k] = test_pair(st, data[c.a], data[c.b], normalize, rng,
                                         st.analysis.permutations)
                except DsdError:
                    out[k][normalize, budget] = ("not computable in this window", float("nan"),
                                                 float("nan"))
            if not tests:
                continue
            adjusted = dict(zip(sorted(tests), holm([tests[k][1] for k in sorted(tests)])))
            for k, v in family_verdicts(st, tests).items():
                out[k][normalize, budget] = (v, tests[k][0], adjusted[k])
    return FidelityCheck(agreement, {k: len(v) for k, v in short.items()}, out)
