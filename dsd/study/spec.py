"""A study as data: spaces, n, window, data set, recipe, seed, comparisons, figures.

A study file (TOML) declares everything a design-space study needs; `dsd study run FILE`
samples every space not sampled yet, trains every model without a final result (the
same claims, shards and resumption as train-batch) and writes the analysis. Re-running
the same command continues where it stopped. Run directories live beside the file:
`studies/NAME.toml` keeps its runs in `studies/NAME/SPACE/`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from dsd.data.recipe import Recipe
from dsd.errors import DsdError

TOP_KEYS = {"name", "description", "out", "dataset", "data_dir", "n", "seed", "flops", "spaces",
            "recipe", "analysis", "comparisons", "figures", "replicates", "fidelity", "shape"}
REPLICATE_KEYS = {"models", "seeds"}
SHAPE_KEYS = {"resolution", "stem_stride", "strides"}
FIDELITY_KEYS = {"spaces", "models", "recipe"}
ANALYSIS_KEYS = {"normalize", "bins", "alpha", "bootstrap", "permutations", "seed", "metric",
                 "covariates", "margin"}
COMPARISON_KEYS = {"a", "b", "finding", "expect"}
EXPECT = {
    "better": "b's errors are lower than a's",
    "no_worse": "b's errors are not higher than a's",
    "open": "no direction is sourced; the study measures which, if either, is better",
}
FIGURES = ("edfs", "edfs_normalized", "comparisons", "min_of_k", "trends", "replicates")


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    finding: str
    expect: str


@dataclass(frozen=True)
class Analysis:
    normalize: str = "flops"
    bins: int = 5
    alpha: float = 0.05
    bootstrap: int = 2_000
    permutations: int = 2_000
    seed: int = 0
    metric: str = "error_min"
    covariates: tuple[str, ...] = ()   # expressions of a model's columns (dsd edf adjust)
    margin: float | None = None        # points: how much worse a no_worse finding may be


@dataclass(frozen=True)
class NetShape:
    """The network's shape for every space of a study, so that its spaces fit its images:
    images resized on the device to `resolution`, the stem's stride, per-stage strides."""

    resolution: int | None = None
    stem_stride: int | None = None
    strides: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Replicates:
    """The first `models` models of every space trained again with each of `seeds`."""

    models: int
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Fidelity:
    """The first `models` models of `spaces` trained again under the study's recipe with
    `recipe` on top (another budget: more epochs, more images)."""

    spaces: tuple[str, ...]
    models: int
    recipe: dict


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    path: Path
    out: Path
    dataset: str
    data_dir: str | None
    n: int
    seed: int
    flops: str
    spaces: tuple[str, ...]
    recipe: dict
    analysis: Analysis
    comparisons: tuple[Comparison, ...]
    figures: tuple[str, ...] = field(default=FIGURES)
    replicates: Replicates | None = None
    fidelity: Fidelity | None = None
    shape: NetShape = field(default_factory=NetShape)

    def input_shape(self):
        """The data set's shape with the study's resolution and stem stride."""
        from dataclasses import replace as _replace

        from dsd.data.registry import dataset_shape

        base = dataset_shape(self.dataset)
        return _replace(base, **{k: v for k, v in (("resolution", self.shape.resolution),
                                                   ("stem_stride", self.shape.stem_stride)) if v})

    def space(self, space: str):
        """The space as the study samples it (its strides replaced by the study's)."""
        from dsd.space import spec as spaces

        s = spaces.load(self.space_ref(space))
        if self.shape.strides:
            s = spaces.with_overrides(s, strides=list(self.shape.strides))
        return s

    def label(self, space: str) -> str:
        """The run directory name of a space: its file stem (a name is its own stem)."""
        return Path(space).stem

    def run_dir(self, space: str) -> Path:
        return self.out / self.label(space)

    def run_dirs(self) -> list[Path]:
        return [self.run_dir(s) for s in self.spaces]

    def replicate_dir(self, space: str, seed: int) -> Path:
        return self.out / "replicates" / f"seed-{seed}" / self.label(space)

    def fidelity_dir(self, space: str) -> Path:
        return self.out / "fidelity" / self.label(space)

    def derived(self) -> list[tuple[str, Path, str, int, int | None]]:
        """Every derived run: (space, directory, purpose, models, train seed)."""
        out = []
        if self.replicates:
            out += [(s, self.replicate_dir(s, seed), "replicate", self.replicates.models, seed)
                    for seed in self.replicates.seeds for s in self.spaces]
        if self.fidelity:
            out += [(s, self.fidelity_dir(s), "fidelity", self.fidelity.models, None)
                    for s in self.fidelity.spaces]
        return out

    def space_ref(self, space: str) -> str:
        """A space path is relative to the study file; a name is a built-in or ./spaces name."""
        if space.endswith(".toml"):
            return str(self.path.parent / space)
        return space


def load(path: str | Path) -> Study:
    p = Path(path)
    if not p.is_file():
        raise DsdError(f"no study file at {p}; the built-in one is studies/fashion-mnist.toml")
    try:
        t = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise DsdError(f"{p}: not valid TOML ({e}); fix the syntax") from None
    return _validate(t, p)


def _fail(p: Path, key: str, what: str) -> DsdError:
    return DsdError(f"{p}: key '{key}': {what}")


def _get(t: dict, key: str, typ, p: Path, default=None, prefix: str = ""):
    if key not in t:
        if default is None:
            raise _fail(p, prefix + key, f"missing; add `{key} = ...`")
        return default
    v = t[key]
    if not isinstance(v, typ) or (isinstance(v, bool) and typ is not bool):
        name = {str: "a string", int: "an integer", bool: "true or false", list: "a list",
                dict: "a table"}.get(typ, "a number")
        raise _fail(p, prefix + key, f"expected {name}, got {v!r}")
    return v


def _validate(t: dict, p: Path) -> Study:
    unknown = sorted(set(t) - TOP_KEYS)
    if unknown:
        raise _fail(p, unknown[0], f"unknown key; allowed keys are {', '.join(sorted(TOP_KEYS))}")
    from dsd.data.registry import DATASETS
    from dsd.sizes import parse_window

    dataset = _get(t, "dataset", str, p)
    if dataset not in DATASETS:
        raise _fail(p, "dataset", f"unknown data set {dataset!r}; use one of {', '.join(DATASETS)}")
    n = _get(t, "n", int, p)
    if n < 3:
        raise _fail(p, "n", f"an EDF needs at least 3 models per space, got {n}")
    flops = _get(t, "flops", str, p)
    try:
        if parse_window(flops) is None:
            raise DsdError("empty window")
    except DsdError as e:
        raise _fail(p, "flops", f"{e}; write a window such as \"1M:3M\"") from None
    spaces = _get(t, "spaces", list, p)
    if len(spaces) < 1 or not all(isinstance(s, str) and s for s in spaces):
        raise _fail(p, "spaces", "needs a list of space names or .toml paths, e.g. [\"anynetx_a\"]")
    _check_spaces(spaces, p)
    labels = [Path(s).stem for s in spaces]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise _fail(p, "spaces", f"{dup[0]!r} appears twice; each space gets one run directory")
    study = Study(
        name=_get(t, "name", str, p, default=p.stem),
        description=_get(t, "description", str, p, default=""),
        path=p, out=p.parent / _get(t, "out", str, p, default=p.stem), dataset=dataset,
        data_dir=t.get("data_dir"), n=n, seed=_get(t, "seed", int, p, default=0), flops=flops,
        spaces=tuple(spaces), recipe=_recipe(_get(t, "recipe", dict, p, default={}), dataset, p),
        analysis=_analysis(_get(t, "analysis", dict, p, default={}), p),
        comparisons=_comparisons(_get(t, "comparisons", list, p, default=[]), labels, p),
        figures=_figures(_get(t, "figures", list, p, default=list(FIGURES)), p),
    )
    seed = study.seed
    return replace(study, replicates=_replicates(t.get("replicates"), n, seed, p),
                   fidelity=_fidelity(t.get("fidelity"), n, labels, dataset, study.recipe, p),
                   shape=_shape(t.get("shape"), p))


def _shape(t, p: Path) -> NetShape:
    if _section(t, "shape", SHAPE_KEYS, p) is None:
        return NetShape()
    _check_types(t, NetShape, p, "shape.")
    strides = t.get("strides")
    if strides is not None and (not strides or not all(isinstance(x, int) and x >= 1 for x in strides)):
        raise _fail(p, "shape.strides", "a list of per-stage strides, each at least 1, e.g. [2, 2, 1, 1]")
    for k in ("resolution", "stem_stride"):
        if t.get(k) is not None and t[k] < 1:
            raise _fail(p, f"shape.{k}", "must be at least 1")
    return NetShape(t.get("resolution"), t.get("stem_stride"), tuple(strides) if strides else None)


def _section(t, name: str, keys: set[str], p: Path) -> dict | None:
    if t is None:
        return None
    if not isinstance(t, dict):
        raise _fail(p, name, f"expected a [{name}] table")
    unknown = sorted(set(t) - keys)
    if unknown:
        raise _fail(p, f"{name}.{unknown[0]}", f"unknown key; allowed are {', '.join(sorted(keys))}")
    return t


def _models(t: dict, name: str, n: int, p: Path) -> int:
    k = _get(t, "models", int, p, prefix=f"{name}.")
    if not 2 <= k <= n:
        raise _fail(p, f"{name}.models", f"between 2 and the study's n ({n}), got {k}")
    return k


def _replicates(t, n: int, seed: int, p: Path) -> Replicates | None:
    if _section(t, "replicates", REPLICATE_KEYS, p) is None:
        return None
    seeds = _get(t, "seeds", list, p, prefix="replicates.")
    if not seeds or not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds):
        raise _fail(p, "replicates.seeds", "a list of integer training seeds, e.g. [1, 2]")
    if seed in seeds or len(set(seeds)) < len(seeds):
        raise _fail(p, "replicates.seeds", f"distinct seeds other than the study's own ({seed})")
    return Replicates(_models(t, "replicates", n, p), tuple(seeds))


def _fidelity(t, n: int, labels: list[str], dataset: str, recipe: dict, p: Path) -> Fidelity | None:
    if _section(t, "fidelity", FIDELITY_KEYS, p) is None:
        return None
    spaces = _get(t, "spaces", list, p, prefix="fidelity.")
    bad = [s for s in spaces if s not in labels]
    if not spaces or bad:
        raise _fail(p, "fidelity.spaces", f"a list of the study's spaces ({', '.join(labels)})"
                    + (f"; {bad[0]!r} is not one" if bad else ""))
    extra = _get(t, "recipe", dict, p, prefix="fidelity.")
    if not extra:
        raise _fail(p, "fidelity.recipe", "the budget to train at, e.g. { epochs = 10 }")
    merged = _recipe({**recipe, **extra}, dataset, p, "fidelity.recipe")
    return Fidelity(tuple(spaces), _models(t, "fidelity", n, p), merged)


def _recipe(r: dict, dataset: str, p: Path, key: str = "recipe") -> dict:
    from dsd.data.recipe import with_overrides
    from dsd.data.registry import default_recipe

    names = {f.name for f in fields(Recipe)} - {"dataset"}
    unknown = sorted(set(r) - names)
    if unknown:
        raise _fail(p, f"{key}.{unknown[0]}", f"not a recipe field; fields are {', '.join(sorted(names))}")
    _check_types(r, Recipe, p, f"{key}.")
    try:
        with_overrides(default_recipe(dataset), **r)
    except (DsdError, TypeError) as e:
        raise _fail(p, key, str(e)) from None
    return dict(r)


def _analysis(a: dict, p: Path) -> Analysis:
    unknown = sorted(set(a) - ANALYSIS_KEYS)
    if unknown:
        raise _fail(p, f"analysis.{unknown[0]}",
                    f"unknown key; allowed are {', '.join(sorted(ANALYSIS_KEYS))}")
    _check_types(a, Analysis, p, "analysis.")
    covs = a.get("covariates", [])
    if not all(isinstance(c, str) and c.strip() for c in covs):
        raise _fail(p, "analysis.covariates", "a list of expressions of a model's columns, e.g. "
                    "[\"depth\", \"(d3 + d4) / depth\"]")
    out = Analysis(**dict(a, covariates=tuple(covs)))
    if out.normalize not in ("none", "flops", "params", "acts"):
        raise _fail(p, "analysis.normalize", "use none, flops, params or acts")
    if not 0 < out.alpha < 1:
        raise _fail(p, "analysis.alpha", "a significance level between 0 and 1, e.g. 0.05")
    if out.margin is not None and not out.margin > 0:
        raise _fail(p, "analysis.margin", "points of error b may lose and still be no worse, e.g. 1.0")
    if out.bins < 1 or out.bootstrap < 10 or out.permutations < 10:
        raise _fail(p, "analysis", "need bins >= 1, bootstrap >= 10, permutations >= 10")
    return out


_TYPES = {"int": (int, "an integer"), "float": ((int, float), "a number"), "bool": (bool, "true or false"),
          "str": (str, "a string")}


def _check_types(t: dict, cls, p: Path, prefix: str) -> None:
    """Each key's value against the dataclass field's type, naming the key when it is not."""
    for f in fields(cls):
        if f.name not in t:
            continue
        v, kind = t[f.name], str(f.type).split("[")[0].split(" |")[0]
        typ, name = _TYPES.get(kind, (list, "a list"))
        if not isinstance(v, typ) or (isinstance(v, bool) and kind != "bool"):
            raise _fail(p, prefix + f.name, f"expected {name}, got {v!r}")


def _comparisons(items: list, labels: list[str], p: Path) -> tuple[Comparison, ...]:
    out = []
    for i, c in enumerate(items):
        pre = f"comparisons[{i}]."
        if not isinstance(c, dict):
            raise _fail(p, pre[:-1], "each comparison is a [[comparisons]] table with a, b, finding, expect")
        unknown = sorted(set(c) - COMPARISON_KEYS)
        if unknown:
            raise _fail(p, pre + unknown[0], f"unknown key; allowed are {', '.join(sorted(COMPARISON_KEYS))}")
        a, b = _get(c, "a", str, p, prefix=pre), _get(c, "b", str, p, prefix=pre)
        for k, v in (("a", a), ("b", b)):
            if v not in labels:
                raise _fail(p, pre + k, f"{v!r} is not one of the study's spaces ({', '.join(labels)})")
        expect = _get(c, "expect", str, p, prefix=pre)
        if expect not in EXPECT:
            meaning = "; ".join(f"{k}: {v}" for k, v in EXPECT.items())
            raise _fail(p, pre + "expect", f"use {' or '.join(EXPECT)} ({meaning})")
        out.append(Comparison(a, b, _get(c, "finding", str, p, prefix=pre), expect))
    return tuple(out)


def _figures(items: list, p: Path) -> tuple[str, ...]:
    for f in items:
        if f not in FIGURES:
            raise _fail(p, "figures", f"unknown figure {f!r}; known: {', '.join(FIGURES)}")
    return tuple(items)


def _check_spaces(names: list[str], p: Path) -> None:
    from dsd.space import spec as spaces

    for s in names:
        try:
            spaces.load(str(p.parent / s) if s.endswith(".toml") else s)
        except DsdError as e:
            raise _fail(p, "spaces", str(e)) from None


# --- running ------------------------------------------------------------------------


def sample_missing(study: Study, progress=None) -> list[str]:
    """Sample every space that has no run directory yet, and extend those the study file now
    asks more models of (the same random stream, as `dsd sample --extend`); refuse, naming
    the key, a run sampled under other settings. Returns what it wrote, as lines."""
    from dsd.space.sample_run import sample_extend, sample_new
    from dsd.store.run import Run

    made = []
    for s in study.spaces:
        out = study.run_dir(s)
        run = Run(out)
        if run.samples_path.exists():
            have = _check_run(study, s, run.manifest())
            if have < study.n:
                sample_extend(out, study.n - have, progress=progress)
                made.append(f"extended {study.label(s)} from {have} to {study.n} models in {out}")
            continue
        sample_new(study.space(s), study.n, out, study.input_shape(),
                   {"flops": study.flops}, study.seed, study.dataset, progress=progress)
        made.append(f"sampled {study.n} models of {study.label(s)} into {out}")
    return made


def window_gaps(study: Study) -> list[str]:
    """Before any training: each sampled space whose models leave a complexity bin of the
    study window empty (its comparisons would not be computable in the window)."""
    import numpy as np

    from dsd.sizes import parse_window
    from dsd.store.run import Run

    if study.analysis.normalize != "flops":
        return []
    lo, hi = parse_window(study.flops)
    out = []
    for s in study.spaces:
        run = Run(study.run_dir(s))
        if not run.samples_path.exists():
            continue
        counts, edges = np.histogram(run.samples(["flops"]).flops, bins=study.analysis.bins, range=(lo, hi))
        empty = [f"{edges[j]:.3g}..{edges[j + 1]:.3g}" for j in np.nonzero(counts == 0)[0]]
        if empty:
            out.append(f"{study.label(s)} has no model in flops bin(s) {', '.join(empty)} of the window "
                       f"{study.flops}: its comparisons will not be computable; widen the window or use "
                       "fewer bins before training")
    return out


def derive_missing(study: Study) -> list[Path]:
    """Make (or grow) the replicate and fidelity runs; returns those written."""
    from dsd.store.derived import ensure_derived
    from dsd.store.run import Run

    return [out for s, out, purpose, models, seed in study.derived()
            if ensure_derived(Run(study.run_dir(s)), out, models, purpose, seed)]


def _check_run(study: Study, space: str, m) -> int:
    """The run's model count, after checking it was sampled as the study file says: the same
    space, window, seed, data set and shape, and no more models than `n`."""
    from dsd.space.spec import from_table

    table = m.space_table()
    shape, sampled = study.input_shape(), from_table(table, "run.toml")
    want = {"seed": study.seed, "flops": study.flops, "dataset": study.dataset,
            "resolution": shape.resolution, "stem_stride": shape.stem_stride,
            "strides": list(study.space(space).shape_kwargs()["strides"]),
            "space": _space_key(study.space(space).table)}
    got = {"seed": m.seed, "flops": m.flops, "dataset": m.dataset,
           "resolution": m.resolution, "stem_stride": m.stem_stride,
           "strides": list(sampled.shape_kwargs()["strides"]), "space": _space_key(table)}
    diff = [f"{k}: run has {got[k]!r}, study file says {want[k]!r}" if k != "space" else
            f"space: {study.label(space)}'s declaration changed since the run was sampled"
            for k in want if got[k] != want[k]]
    have = m.n or 0
    if have > study.n:
        diff.append(f"n: run has {have}, study file says {study.n} (a study grows, never shrinks)")
    if diff:
        raise DsdError(f"{study.run_dir(space)} was sampled under other settings ({'; '.join(diff)}); "
                       "restore the study file, or move that run directory away to sample it again")
    return have


def _space_key(table: dict) -> dict:
    return {k: v for k, v in table.items() if k not in ("name", "description")}


def configs(study: Study, device: str = "auto", limit: int | None = None, threads: int | None = None,
            step: str = "eager", streams: int = 1):
    """One checked RunJob per space and derived run (the recipe is fixed in each run's
    train.toml), and the batch's options, checked once for them all."""
    from dsd.train.setup import TrainRequest, batch_options, prepare

    req = TrainRequest(dataset=study.dataset, data_dir=study.data_dir, overrides=study.recipe,
                       seed=study.seed, device=device, limit=limit, threads=threads, step=step,
                       streams=streams)
    longer = replace(req, overrides=study.fidelity.recipe) if study.fidelity else req
    jobs = [prepare(study.run_dir(s), req) for s in study.spaces] + [
        prepare(out, longer if purpose == "fidelity" else replace(req, seed=seed or 0))
        for _, out, purpose, _, seed in study.derived()]
    return jobs, batch_options(req)
