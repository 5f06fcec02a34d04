"""Drawing distinct models from a space under complexity windows.

Candidates come in fixed blocks of BLOCK draws; block k uses its own generator seeded
by (seed, k), so the stream is the same on every machine, and a position in it is just
(block, offset). `--extend` resumes at the recorded position, so sampling 10 then
extending by 10 gives exactly the models that sampling 20 at once gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dsd.data.recipe_dims import DRAWABLE
from dsd.errors import DsdError
from dsd.model import params
from dsd.model.arch import Shape, adjust_compat_batch, regnet_block_widths, regnet_stage_index
from dsd.model.blocks import BLOCKS, STEMS, get_block
from dsd.model.complexity import complexity_batch
from dsd.model.layers import ACTS
from dsd.sizes import format_size, format_window
from dsd.space.spec import Space

BLOCK = 1 << 15
RECIPE_STREAM = 1  # drawn recipe fields come from a generator of their own (seed, block, this)
METRICS = ("flops", "params", "acts")
Window = tuple[int | None, int | None] | None
# numpy's dtype of a parameter's values (a name is drawn as its index into the space's list)
DTYPES = {int: np.int64, float: np.float64, str: np.int64}
LIST_DTYPES = {p.list_col: DTYPES[p.type] for p in params.per_stage()}


@dataclass
class Candidates:
    """Valid, adjusted candidates of one block (rows in draw order)."""

    index: np.ndarray          # position within the block
    lists: dict[str, np.ndarray]  # per-stage values by list column (ds, ws, bs, gs always;
    #                               es, ks, ss, ... where the space draws them)
    scalars: dict[str, np.ndarray]
    cx: dict[str, np.ndarray]

    def __getattr__(self, name: str):
        """A list column as an attribute (c.ds, c.es: None where not drawn)."""
        if name in LIST_DTYPES:
            return self.__dict__["lists"].get(name)
        raise AttributeError(name)

    def take(self, mask: np.ndarray) -> Candidates:
        sub = lambda d: {k: v[mask] for k, v in d.items()}  # noqa: E731
        return Candidates(self.index[mask], sub(self.lists), sub(self.scalars), sub(self.cx))


def concat(parts: list[Candidates]) -> Candidates | None:
    if not parts:
        return None
    cat = lambda d: {k: np.concatenate([getattr(p, d)[k] for p in parts])  # noqa: E731
                     for k in getattr(parts[0], d)}
    return Candidates(np.concatenate([p.index for p in parts]), cat("lists"), cat("scalars"),
                      cat("cx"))


@dataclass
class SampleResult:
    """The accepted models as columns ([models, stages] arrays and [models] scalars)."""

    columns: dict[str, np.ndarray]
    drawn: int                    # candidates drawn in this call
    valid: int                    # of those, valid and inside the constraints
    in_window: int                # of those, inside every window (duplicates included)
    distinct: int                 # distinct models among the in-window ones
    position: tuple[int, int]     # stream position after the last accepted model

    def __len__(self) -> int:
        return len(self.columns["model_id"])

    def quantiles(self, column: str, qs=(0, 25, 50, 75, 100)) -> list[float]:
        """Percentiles of one scalar column (the complexity of the drawn models)."""
        return [float(x) for x in np.percentile(self.columns[column], qs)]

    def head(self, k: int) -> list[dict]:
        """The first k models as one dict each."""
        rows = [{c: v[i].tolist() for c, v in self.columns.items()} for i in range(min(k, len(self)))]
        for r in rows:  # a network of fewer stages than the arrays' width: its own stages only
            for c in KEY_LISTS:
                if "stages" in r and c in r:
                    r[c] = r[c][: r["stages"]]
        return rows

    @property
    def rows(self) -> list[dict]:
        """Every model as a dict (a Python object per value: for small results)."""
        return self.head(len(self))


def draw_block(space: Space, shape: Shape, seed: int, block: int, size: int = BLOCK) -> Candidates:
    """Draw one block, keep the valid candidates, adjust them and count their complexity."""
    rng = np.random.default_rng([seed, block])
    s = space.stages
    if space.generator == "regnet":
        c = _regnet_block(space, rng, size)
    else:
        raw = {}
        # The table's order is the draw order: a parameter added to it draws after the others.
        names = [p.name for p in params.PARAMS if "anynet" in p.generators and p.name in space.params]
        for name in names:
            p = space.params[name]
            if p.same_as:
                continue
            v = p.dist.draw(rng, (size,) if p.shared else (size, s))
            raw[name] = np.repeat(v[:, None], s, axis=1) if p.shared else v
        for name in names:
            if space.params[name].same_as:
                raw[name] = raw[space.params[name].same_as].copy()
        raw.setdefault("b", np.full((size, s), 1.0))  # blocks that do not read it
        splits = _group_widths(raw) if "groups" in raw else np.ones((size, s), dtype=bool)
        raw.setdefault("g", np.full((size, s), 1))
        # A network of fewer stages than the arrays' width ignores the trailing draws.
        live = np.arange(s)[None, :] < raw["stages"][:, :1] if "stages" in raw else None
        keep = np.all(splits if live is None else splits | ~live, axis=1)
        for name, order in space.constraints.items():
            step = np.diff(raw[name], axis=1)
            ok = step >= 0 if order == "nondecreasing" else step <= 0
            keep &= np.all(ok if live is None else ok | ~live[:, 1:], axis=1)
        scalars = {}
        for p in params.scalars():
            if p.name in space.params and space.params[p.name].shared:
                scalars[p.name] = raw[p.name][:, 0].astype(DTYPES[p.type])
        if "block" in scalars:  # a drawn block type that reads no b or g: they stay 1
            for name, value in (("b", 1.0), ("g", 1)):
                unread = [j for j, b in enumerate(space.blocks) if name not in get_block(b).reads]
                raw[name] = np.where(np.isin(scalars["block"], unread)[:, None], value, raw[name])
        lists = {p.list_col: raw[p.name].astype(DTYPES[p.type])
                 for p in params.per_stage() if p.name in raw}
        c = Candidates(np.arange(size), lists, scalars, {}).take(keep)
    _draw_recipe(space, c, seed, block, size)
    c.lists["ws"], c.lists["gs"] = adjust_compat_batch(c.ws, c.bs, c.gs.astype(np.int64))
    if "stages" in c.scalars:
        _clear_absent_stages(c)
    c.cx = _count_groups(c, space, shape)
    return c


def _draw_recipe(space: Space, c: Candidates, seed: int, block: int, size: int) -> None:
    """The recipe fields the space draws, one value per candidate, into `c.scalars`. From a
    stream of their own, in DRAWABLE's order: the networks drawn stay those of the space
    without them, and reordering the file changes nothing."""
    names = [k for k in DRAWABLE if k in space.params]
    if not names:
        return
    rng = np.random.default_rng([seed, block, RECIPE_STREAM])
    for k in names:
        v = space.params[k].dist.draw(rng, (size,))[c.index]  # c.index: positions in the block
        c.scalars[k] = v.astype(np.int64 if DRAWABLE[k].integer else np.float64)


def _count_groups(c: Candidates, space: Space, shape: Shape) -> dict[str, np.ndarray]:
    """Complexity of every candidate. Rows that share a drawn block type, activation, stem,
    stage count and stride pattern are counted together (complexity_batch takes those
    once per call); with none drawn, all rows at once, in place."""
    n, s = len(c.index), space.stages
    names = lambda k, i: (getattr(space, k + "s") or (getattr(space, k),))[i]  # noqa: E731
    if not any(k in c.scalars for k in (*NAME_PARAMS, "stages")) and c.ss is None:
        net = {k: names(k, 0) for k in NAME_PARAMS}
        return _count(c, space, shape, dict(net, strides=space.shape_kwargs()["strides"]), s)
    cols = [c.scalars.get(k, np.zeros(n, dtype=np.int64)) for k in NAME_PARAMS]
    cols.append(c.scalars.get("stages", np.full(n, s)))
    groups = np.stack(cols, axis=1) if c.ss is None else np.concatenate(
        [np.stack(cols, axis=1), c.ss], axis=1)
    uniq, which = np.unique(groups, axis=0, return_inverse=True)
    cx = {k: np.zeros(n, dtype=np.int64) for k in METRICS}
    for i, (block, act, stem, stages, *strides) in enumerate(uniq.tolist()):
        rows = np.nonzero(which.ravel() == i)[0]
        net = {"block": names("block", block), "act": names("act", act), "stem": names("stem", stem),
               "strides": tuple(strides or space.shape_kwargs()["strides"])[:stages]}
        for k, v in _count(c.take(rows), space, shape, net, stages).items():
            cx[k][rows] = v
    return cx


def _group_widths(raw: dict[str, np.ndarray]) -> np.ndarray:
    """Group widths from a drawn number of groups: the bottleneck width w / b (rounded, as
    pycls's int(round(w * bot_mul))) split into that many groups. Where it does not split
    evenly the candidate is invalid (the mask returned is False there)."""
    w_b = np.round(raw["w"] / raw["b"]).astype(np.int64)
    n = raw["groups"].astype(np.int64)
    raw["g"] = np.maximum(w_b // n, 1)
    return (w_b % n == 0) & (n <= w_b)


def _clear_absent_stages(c: Candidates) -> None:
    """Zero every per-stage value past a network's stage count, so that equal networks have
    equal keys whatever was drawn for stages they do not have (samples.parquet drops them)."""
    dead = np.arange(c.ds.shape[1])[None, :] >= c.scalars["stages"][:, None]
    for name, v in c.lists.items():
        c.lists[name] = np.where(dead, 0, v).astype(v.dtype)


def _count(c: Candidates, space: Space, shape: Shape, net: dict, stages: int) -> dict[str, np.ndarray]:
    """Complexity of candidates that share `net` (block, act, stem, strides) and a stage count."""
    kw = dict(space.shape_kwargs(), **net)
    kw.update({k: c.scalars[k] for k in ("se_ratio", "stem_w") if k in c.scalars})  # drawn
    # Drawn per-stage values, by their Arch field (ds, ..., es, ks; strides come in `net`).
    kw.update({p.arch: c.lists[p.list_col][:, :stages] for p in params.per_stage()
               if p.list_col in c.lists and p.arch != "strides"})
    kw["ks"] = np.asarray(kw["ks"])[..., :stages]
    cx = complexity_batch(shape=shape, **kw)
    return {"flops": cx.flops, "params": cx.params, "acts": cx.acts}


def _regnet_block(space: Space, rng: np.random.Generator, size: int) -> Candidates:
    names = params.GENERATOR_PARAMS["regnet"]
    v = {k: space.params[k].dist.draw(rng, (size,)) for k in names if not space.params[k].same_as}
    v.update({k: v[space.params[k].same_as].copy() for k in names if space.params[k].same_as})
    s = space.stages
    depth = v["depth"].astype(np.int64)
    # Stage indices never decrease along the blocks, so the last block's index bounds the
    # stage count: computing it alone rejects most candidates before any per-block work.
    last = regnet_stage_index(depth - 1, v["w0"], v["wa"], v["wm"])
    idx = np.nonzero(last == s - 1)[0]
    depth = depth[idx]
    max_d = int(depth.max(initial=1))
    ws_all, _ = regnet_block_widths(depth, v["w0"][idx], v["wa"][idx], v["wm"][idx], 8, max_d)
    live = np.arange(max_d)[None, :] < depth[:, None]
    starts = np.ones_like(live)
    starts[:, 1:] = ws_all[:, 1:] != ws_all[:, :-1]
    starts &= live
    # Quantisation can merge neighbouring stage indices into one width.
    full = starts.sum(axis=1) == s
    idx, depth, ws_all, starts = idx[full], depth[full], ws_all[full], starts[full]
    # Stage j begins at the j-th width change; its depth runs to the next change.
    pos = np.nonzero(starts)[1].reshape(-1, s)
    ends = np.concatenate([pos[:, 1:], depth[:, None]], axis=1)
    ds = ends - pos
    ws = np.take_along_axis(ws_all, pos, axis=1)
    bs = np.repeat(v["b"][idx, None], s, axis=1).astype(np.float64)
    gs = np.repeat(v["g"][idx, None], s, axis=1)
    scalars = {k: v[k][idx].astype(DTYPES[params.BY_NAME[k].type]) for k in names}
    return Candidates(idx, {"ds": ds, "ws": ws.astype(np.float64), "bs": bs, "gs": gs}, scalars, {})


def in_windows(c: Candidates, windows: dict[str, Window]) -> np.ndarray:
    ok = np.ones(len(c.index), dtype=bool)
    for k, w in windows.items():
        if w is None:
            continue
        lo, hi = w
        if lo is not None:
            ok &= c.cx[k] >= lo
        if hi is not None:
            ok &= c.cx[k] <= hi
    return ok


KEY_LISTS = tuple(params.list_cols())   # per-stage columns that tell networks apart
# Per-network ones; a drawn recipe field tells models apart too (the same network under
# another lr is another model).
KEY_SCALARS = (*params.key_scalars(), *DRAWABLE)


def model_keys(cols: dict[str, np.ndarray]) -> np.ndarray:
    """One bytes key per model from its sample columns (samples.parquet's names; lists as
    [models, stages] arrays, block as names): equal keys, equal networks. Missing columns
    are values the space fixes for all."""
    parts = [np.asarray(cols[k], dtype=np.float64) for k in KEY_LISTS if k in cols]
    for k in KEY_SCALARS:
        if k in cols:
            v = _name_codes(cols[k], NAMES[k]) if k in NAMES else cols[k]
            parts.append(np.asarray(v, dtype=np.float64)[:, None])
    m = np.ascontiguousarray(np.concatenate(parts, axis=1))
    return m.view(np.dtype((np.void, m.shape[1] * 8))).ravel()


NAMES = {"block": tuple(BLOCKS), "act": ACTS, "stem": tuple(STEMS)}  # name columns, keyed by index
NAME_PARAMS = params.name_params()  # the keys of NAMES, from the table


def _name_codes(names: np.ndarray, known: tuple[str, ...]) -> np.ndarray:
    """Names as their index in `known`, vectorised."""
    known_a = np.asarray(known)
    order = np.argsort(known_a)
    return order[np.searchsorted(known_a[order], np.asarray(names).astype(str))]


def arch_key(ds, ws, gs, bs, block: str = "x") -> bytes:
    """`model_keys` of one network."""
    cols = {k: np.asarray(v)[None] for k, v in zip(("ds", "ws", "gs", "bs"), (ds, ws, gs, bs))}
    return model_keys({**cols, "block": np.array([block])})[0].tobytes()


@dataclass
class _Tally:
    """What the stream has shown so far: counts for the progress and the error messages."""

    drawn: int = 0
    valid: int = 0
    hits: int = 0
    fmin: int | None = None
    fmax: int | None = None
    counts: dict[bytes, int] = field(default_factory=dict)  # in-window draws per model
    f1: int = 0   # models met exactly once in this call
    f2: int = 0   # ... exactly twice

    def flops(self, f: np.ndarray) -> None:
        if len(f):
            lo, hi = int(f.min()), int(f.max())
            self.fmin = lo if self.fmin is None else min(self.fmin, lo)
            self.fmax = hi if self.fmax is None else max(self.fmax, hi)

    def admit(self, keys: list[bytes], seen: set[bytes]) -> np.ndarray:
        """Positions of the keys not seen before (first occurrence only); adds them to `seen`."""
        out = []
        counts = self.counts
        for i, k in enumerate(keys):
            c = counts.get(k, 0)
            counts[k] = c + 1
            self.f1 += (c == 0) - (c == 1)
            self.f2 += (c == 1) - (c == 2)
            if k not in seen:
                seen.add(k)
                out.append(i)
        self.hits += len(keys)
        return np.asarray(out, dtype=np.int64)

    def repeats(self) -> float:
        """Good-Turing: the share of in-window draws that repeated a model met before."""
        return 1 - self.f1 / self.hits if self.hits else 0.0

    def distinct_estimate(self) -> float:
        """Chao1: how many distinct models the window holds, from how often draws recurred.

        A lower-bound estimate (exact in expectation when all models are equally likely).
        """
        d, f1, f2 = len(self.counts), self.f1, self.f2
        return d + (f1 * f1 / (2 * f2) if f2 else f1 * (f1 - 1) / 2)


def sample(
    space: Space, n: int, shape: Shape, windows: dict[str, Window], seed: int,
    start: tuple[int, int] = (0, 0), seen: set[bytes] | None = None, first_id: int = 0,
    max_candidates: int = 200_000_000, probe: int = 4_000_000,
    progress: Callable[[int, int, int], None] | None = None,
) -> SampleResult:
    """Draw n distinct models inside `windows`, continuing the stream at `start`.

    `seen` holds the keys of models already in the run (they are skipped). Gives up with a
    DsdError when `probe` candidates yield no model (the window is out of the space's
    reach), when the window holds fewer distinct models than asked for, or when the
    measured rate says `max_candidates` would not be enough.
    """
    seen = set() if seen is None else seen
    earlier = len(seen)
    t = _Tally()
    parts: list[Candidates] = []
    got = 0
    block, offset = start
    position = start
    while got < n:
        c = draw_block(space, shape, seed, block)
        if offset:
            c = c.take(c.index >= offset)
        t.drawn += BLOCK - offset
        t.valid += len(c.index)
        t.flops(c.cx["flops"])
        c = c.take(in_windows(c, windows))
        keys = model_keys(_model_columns(c, space))
        new = t.admit(keys.tolist(), seen)[: n - got]
        if len(new):
            parts.append(c.take(new))
            got += len(new)
            position = (block, int(c.index[new[-1]]) + 1)
        block, offset = block + 1, 0
        if progress is not None:
            progress(got, n, t.drawn)
        if got < n:
            _check_budget(space, windows, got, n, t, earlier, max_candidates, probe)
    cols = _columns(concat(parts), space, first_id)
    return SampleResult(cols, t.drawn, t.valid, t.hits, len(t.counts), position)


def _check_budget(space, windows, got, n, t: _Tally, earlier: int,
                  max_candidates: int, probe: int) -> None:
    win = ", ".join(f"{k} {format_window(w)}" for k, w in windows.items() if w is not None)
    win = win or "the window"
    if t.hits == 0 and t.drawn >= probe:
        span = ("no valid model at all" if t.fmin is None
                else f"its models span {format_size(t.fmin)}..{format_size(t.fmax)} flops")
        raise DsdError(f"space '{space.name}' gave no model inside {win} in "
                       f"{t.drawn:,} candidates ({span}); widen the window (--flops LO:HI) or "
                       "change the shape (--resolution, --dataset)")
    if t.drawn < probe:
        return
    repeats = t.repeats()
    if repeats > 0.5:
        est = t.distinct_estimate()
        if est < earlier + n:
            raise DsdError(
                f"space '{space.name}' holds only about {est:,.0f} distinct models inside {win} "
                f"(estimated from {t.hits:,} in-window candidates, {repeats:.0%} of them repeats); "
                f"{earlier + n:,} were asked for ({got:,} of {n:,} new ones found); widen the "
                "window or ask for fewer models")
    if got:
        need = t.drawn * n / got
        if need > max_candidates:
            raise DsdError(f"space '{space.name}' gives only 1 new model in {t.drawn / got:,.0f} "
                           f"candidates inside {win} ({t.hits:,} in the window, {repeats:.0%} "
                           f"of them repeats); {n:,} models would need about {need:,.0f} "
                           f"candidates (limit {max_candidates:,}); widen the window or ask "
                           "for fewer models")
    if t.drawn >= max_candidates:
        raise DsdError(f"space '{space.name}': only {got} of {n} models after {t.drawn:,} "
                       "candidates; widen the window or ask for fewer models")


def _columns(c: Candidates | None, space: Space, first_id: int) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    m = 0 if c is None else len(c.index)
    cols["model_id"] = np.arange(first_id, first_id + m, dtype=np.int64)
    if c is None:
        return cols
    cols.update(_model_columns(c, space))
    for k in METRICS:
        cols[k] = c.cx[k].astype(np.int64)
    return cols


def _model_columns(c: Candidates, space: Space) -> dict[str, np.ndarray]:
    """What describes each candidate network, as samples.parquet stores it."""
    cols = {k: c.lists[k].astype(t) for k, t in LIST_DTYPES.items() if k in c.lists}
    blocks = (np.asarray(space.blocks)[c.scalars["block"]] if "block" in c.scalars
              else np.full(len(c.index), space.block))
    cols.update({k: v for k, v in c.scalars.items() if k not in NAME_PARAMS})
    cols["block"] = blocks
    for k, names in (("act", space.acts), ("stem", space.stems)):  # drawn names
        if k in c.scalars:
            cols[k] = np.asarray(names)[c.scalars[k]]
    return cols
