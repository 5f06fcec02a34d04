"""From run directories to EDF comparisons: which models count, with which error.

`ok` models count with their error; `diverged` ones at chance error (or are dropped with
failed="drop"); `failed`/`oom` models are left out. Every result states the counts.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dsd.analysis import edf as E
from dsd.analysis.comparison import Comparison, Options, Pair, RunEDF
from dsd.analysis.conditions import differences, drawn_notes
from dsd.errors import DsdError
from dsd.sizes import parse_window
from dsd.store.results import read_results
from dsd.store.run import open_run

MIN_MODELS = 3
COMPLEXITY = ("flops", "params", "acts")
# Result columns a metric may name directly; the _ema ones exist only where the trainer kept
# a moving average of the weights (pycls sweeps), null elsewhere.
METRICS = ("error_min", "error_last", "error_min_ema", "error_last_ema")


@dataclass
class RunErrors:
    name: str
    path: Path
    table: pd.DataFrame          # used models: samples columns + "error"
    counts: dict[str, int]
    chance: float
    warnings: list[str] = field(default_factory=list)


def parse_metric(metric: str) -> tuple[str, int | None]:
    if metric in METRICS:
        return metric, None
    m = re.fullmatch(r"error@(\d+)", metric)
    if not m or int(m.group(1)) < 1:
        raise DsdError(f"--metric must be {', '.join(METRICS)} or error@K (K >= 1), got {metric!r}")
    return "error@", int(m.group(1))


def run_errors(path: str | Path, metric: str = "error_min", failed: str = "as-chance",
               columns: list[str] | None = None) -> RunErrors:
    """The models of one run that enter its EDF, with the chosen error; with `columns`,
    only those sample columns (and model_id) are read."""
    if failed not in ("as-chance", "drop"):
        raise DsdError(f"--failed must be as-chance or drop, got {failed!r}")
    run = open_run(path)
    kind, k = parse_metric(metric)
    wanted = None if columns is None else tuple(dict.fromkeys(["model_id", *columns]))
    curves = ("curve",) if kind == "error@" or columns is None else ()
    chosen = (kind,) if kind in METRICS else ()  # an _ema column only when asked for
    samples, final, corrupt, num_classes = _read(run, wanted, ("error_min", "error_last", *chosen, *curves))
    chance = 100.0 * (1 - 1 / num_classes)
    counts = {s: int((final.status == s).sum()) if not final.empty else 0
              for s in ("ok", "diverged", "failed", "oom")}
    counts["pending"] = len(samples) - sum(counts.values())
    warnings = [f"skipped damaged result file {p} ({why})" for p, why in corrupt]
    table, short = _used(final, samples, kind, k, failed, chance)
    counts["too_short"] = short
    if short and kind == "error@":
        warnings.append(f"{short} ok models have fewer than {k} epochs and are left out")
    elif short:
        warnings.append(f"{short} ok models have no {metric} recorded and are left out")
    if kind.endswith("_ema") and counts["ok"] and short == counts["ok"]:
        raise DsdError(f"{path} records no {metric} (the errors of an EMA of the weights, kept "
                       "by pycls sweeps that have test_ema_epoch); use --metric error_min")
    warnings += near_chance(table, chance)
    return RunErrors(run.name if run.name != "." else str(path), run.path,
                     table, counts, chance, warnings)


# A study report reads each run about fifteen times: the files are read once per state of
# the run directory (callers build new frames from these and never change them).
# Bounded, oldest first out: a notebook that reads hundreds of runs keeps the last few.
_READ_CACHE: OrderedDict[tuple, tuple] = OrderedDict()
_READ_CACHE_SIZE = 128


def _read(run, wanted: tuple | None, result_columns: tuple) -> tuple:
    key = (str(run.path.resolve()), wanted, result_columns)
    hit = _READ_CACHE.get(key)
    if hit and hit[0] == _state(run):
        _READ_CACHE.move_to_end(key)
        return hit[1]
    samples = run.samples(None if wanted is None else list(wanted)).set_index("model_id", drop=False)
    res = read_results(run.results_dir, columns=result_columns)  # may compact: state after it
    value = (samples, res.final(), list(res.corrupt), run.shape().num_classes)
    _READ_CACHE[key] = (_state(run), value)
    _READ_CACHE.move_to_end(key)
    while len(_READ_CACHE) > _READ_CACHE_SIZE:
        _READ_CACHE.popitem(last=False)
    return value


def _state(run) -> tuple:
    """What a run's files are now: every results file and the run's own files, by name,
    size and modification time."""
    def stat(p: Path) -> tuple:
        try:
            st = p.stat()
            return (p.name, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            return (p.name, None)

    results = sorted(stat(e) for e in run.results_dir.glob("*")) if run.results_dir.is_dir() else []
    return (stat(run.samples_path), stat(run.manifest_path), tuple(results))


def _used(final: pd.DataFrame, samples: pd.DataFrame, kind: str, k: int | None, failed: str,
          chance: float) -> tuple[pd.DataFrame, int]:
    """The models that enter the EDF (samples columns + error, status, curve), column-wise;
    and how many ok models were too short for error@K."""
    if final.empty:
        return pd.DataFrame(), 0
    empty = np.zeros(0)
    curves = (final.curve.map(lambda c: empty if c is None else np.asarray(c, dtype=float))
              if "curve" in final else pd.Series([empty] * len(final), index=final.index))
    ok = (final.status == "ok").to_numpy()
    if kind == "error@":
        err = curves.map(lambda c: c[k - 1] if len(c) >= k else np.nan).to_numpy(dtype=float)
    else:
        err = final[kind].to_numpy(dtype=float)
    short = ok & np.isnan(err)  # too few epochs for error@K; no EMA recorded for *_ema
    diverged = (final.status == "diverged").to_numpy() & (failed == "as-chance")
    err = np.where(diverged, chance, err)
    keep = ((ok & ~short) | diverged) & final.model_id.isin(samples.index).to_numpy()
    ids = final.model_id.to_numpy()[keep]
    table = samples.loc[ids].reset_index(drop=True)
    table["error"] = err[keep]
    table["status"] = final.status.to_numpy()[keep]
    table["curve"] = curves.to_numpy()[keep]
    return table, int(short.sum())


NEAR_CHANCE = 5.0  # points of error: a model this close to chance has learnt next to nothing


def near_chance(table: pd.DataFrame, chance: float) -> list[str]:
    """A warning when a run's models barely trained: their median error above half of
    chance, or models within NEAR_CHANCE points of it. Verdicts on such models compare
    training failures, not design spaces."""
    if table.empty:
        return []
    e = table.error[table.status == "ok"].to_numpy(dtype=float)
    if not len(e):
        return []
    close = int((e >= chance - NEAR_CHANCE).sum())
    out = []
    if np.median(e) > chance / 2:
        out.append(f"models barely trained: median error {np.median(e):.1f}% against chance "
                   f"{chance:.0f}%; train longer or on more images before reading verdicts")
    if close:
        out.append(f"{close} of {len(e)} ok models are within {NEAR_CHANCE:g} points of chance "
                   f"({chance:.0f}%)")
    return out


def compare(paths: list[str | Path], opt: Options, splits: list[str] | None = None) -> Comparison:
    """Everything `dsd edf compare` reports, typed (`.to_json()` gives the CLI's document).

    With `splits`, `paths` holds one run: one split compares the models that satisfy it
    with those that do not; several splits compare the groups they select.
    """
    _check(opt)
    # Without splits only the complexity columns are needed: read nothing else.
    runs = _load(paths, opt.metric, opt.failed, None if splits else list(COMPLEXITY))
    # With one run (show, --split) only a run that mixes recipes in itself is flagged.
    named = [(r.name, open_run(r.path)) for r in runs]
    differ = differences(named)
    if differ and opt.strict:
        raise DsdError("--strict: the runs were not trained under the same conditions, so their "
                       "EDFs would compare more than the spaces: " + "; ".join(differ))
    if splits:
        runs = split_runs(runs, splits)
    _require_models(runs, bool(splits))
    samples, dropped, rng_range = _samples(runs, opt)
    all_err = np.concatenate([s.errors for s in samples])
    grid = np.linspace(np.floor(all_err.min()), np.ceil(all_err.max()), opt.grid_points)
    rng = np.random.default_rng(opt.seed)
    out_runs = [_describe(r, s, d, grid, opt, rng) for r, s, d in zip(runs, samples, dropped)]
    pairs = [_pair(runs[i], runs[j], samples[i], samples[j], opt, rng)
             for i in range(len(runs)) for j in range(i + 1, len(runs))]
    return Comparison(opt, rng_range, grid, out_runs, pairs, differ, drawn_notes(named))


def window_samples(paths: list[str | Path], opt: Options) -> list[E.Sample]:
    """The runs' samples as `compare` builds them (raising as it would: too few models, an
    empty bin), without its bands and tests."""
    runs = _load(paths, opt.metric, opt.failed, list(COMPLEXITY))
    _require_models(runs, False)
    return _samples(runs, opt)[0]


def plain_samples(paths: list[str | Path], metric: str = "error_min",
                  failed: str = "as-chance") -> tuple[list[str], list[E.Sample]]:
    """The runs' names and plain error samples, read as `compare` reads them (the pilots
    of `dsd plan`)."""
    runs = _load(paths, metric, failed, list(COMPLEXITY))
    _require_models(runs, False)
    return [r.name for r in runs], [E.plain(r.table.error.to_numpy()) for r in runs]


def _load(paths: list[str | Path], metric: str, failed: str, cols: list[str] | None) -> list[RunErrors]:
    runs = [run_errors(p, metric, failed, cols) for p in paths]
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:  # runs/x/a and runs/y/a: tell them apart
            r.name = str(r.path)
    return runs


def _require_models(runs: list[RunErrors], splits: bool) -> None:
    for r in runs:
        if len(r.table) < MIN_MODELS:
            if splits:
                raise DsdError(f"the group {r.name!r} of {r.path} holds {len(r.table)} usable "
                               f"models; an EDF needs at least {MIN_MODELS}: loosen the rule "
                               "or train more models")
            raise DsdError(f"{r.path} has {len(r.table)} usable models (counts: "
                           f"{_fmt_counts(r.counts)}); an EDF needs at least {MIN_MODELS}: train "
                           "more with `dsd train-batch`")


def split_runs(runs: list[RunErrors], splits: list[str]) -> list[RunErrors]:
    from dsd.analysis.expr import evaluate_split

    if len(runs) != 1:
        raise DsdError("--split compares groups inside one run: pass exactly one run directory")
    r = runs[0]
    rows = r.table.to_dict("records")
    if not rows:
        raise DsdError(f"{r.path} has no usable models to split; train some first")
    groups = []
    for text in splits:
        mask = evaluate_split(text, rows)
        if len(splits) == 1 and (mask.all() or not mask.any()):
            which = "every" if mask.all() else "no"
            raise DsdError(f"the rule {text!r} holds for {which} model of {r.path} "
                           f"({len(rows)} models); there is nothing to compare it against")
        groups.append((text, mask))
        if len(splits) == 1:
            groups.append((f"not ({text})", ~mask))
    return [RunErrors(name, r.path, r.table[mask].reset_index(drop=True), _group_counts(r.table[mask]),
                      r.chance, r.warnings) for name, mask in groups]


def _group_counts(table: pd.DataFrame) -> dict[str, int]:
    """Counts of a split group: only models that entered the run's EDF can be in it."""
    return {"ok": int((table.status == "ok").sum()), "diverged": int((table.status == "diverged").sum()),
            "failed": 0, "oom": 0, "pending": 0, "too_short": 0}


def _check(opt: Options) -> None:
    if opt.normalize not in ("none",) + COMPLEXITY:
        raise DsdError(f"--normalize must be none, flops, params or acts, got {opt.normalize!r}")
    if opt.bins < 1 or opt.bootstrap < 10 or not 0 < opt.ci < 1 or opt.permutations < 10:
        raise DsdError("need --bins >= 1, --bootstrap >= 10, 0 < --ci < 1, --permutations >= 10")


def _samples(runs: list[RunErrors], opt: Options):
    if opt.normalize == "none":
        return [E.plain(r.table.error.to_numpy()) for r in runs], [0] * len(runs), None
    c = opt.normalize
    if opt.range:
        lo, hi = parse_window(opt.range)
        lo = lo if lo is not None else max(r.table[c].min() for r in runs)
        hi = hi if hi is not None else min(r.table[c].max() for r in runs)
    else:
        lo = max(r.table[c].min() for r in runs)
        hi = min(r.table[c].max() for r in runs)
    if lo >= hi:
        raise DsdError(f"the runs' {c} ranges do not overlap (shared range {lo:.4g}..{hi:.4g}); "
                       "compare runs sampled in a common window, or pass --range LO:HI")
    samples, dropped = [], []
    for r in runs:
        inside = r.table[c].between(lo, hi)
        dropped.append(int((~inside).sum()))
        r.table = r.table[inside].reset_index(drop=True)
        if len(r.table) < MIN_MODELS:
            raise DsdError(f"{r.path}: only {len(r.table)} models inside the shared {c} range "
                           f"{lo:.4g}..{hi:.4g}; widen --range or sample more")
        samples.append(E.normalized(r.table.error.to_numpy(), r.table[c].to_numpy(), opt.bins, lo, hi))
    return samples, dropped, (float(lo), float(hi))


def _describe(r: RunErrors, s: E.Sample, dropped: int, grid, opt: Options, rng) -> RunEDF:
    from dsd.analysis.minofk import min_of_k

    band = E.bootstrap_band(s, grid, opt.bootstrap, opt.ci, rng)
    dkw = E.dkw_band(s, grid, opt.ci)
    sim = E.simultaneous_band(s, grid, opt.ci)
    lo, _, hi = E.good_range(s.errors, s.errors, ci=opt.ci)
    mean = float(np.sum(s.weights * s.errors) / s.weights.sum())
    return RunEDF(r.name, r.path, s, dropped, r.counts, r.chance, float(s.errors.min()), (lo, hi),
                  mean, _wmedian(s), E.edf(s, grid), band, sim, E.simultaneous_eps(s, opt.ci), dkw,
                  r.warnings, min_of_k(s, opt.min_of_k_bootstrap, opt.ci, rng))


def _wmedian(s: E.Sample) -> float:
    order = np.argsort(s.errors)
    cum = np.cumsum(s.weights[order]) / s.weights.sum()
    return float(s.errors[order][np.searchsorted(cum, 0.5)])


def _pair(a: RunErrors, b: RunErrors, sa: E.Sample, sb: E.Sample, opt: Options, rng) -> Pair:
    d, at = E.ks_statistic(sa, sb)
    if opt.normalize == "none":
        p, method = E.ks_plain_pvalue(sa, sb)
    else:
        p, method = E.ks_permutation_pvalue(sa, sb, opt.permutations, rng)
    return Pair(a.name, b.name, d, p, method, at)


def _fmt_counts(c: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.items())
