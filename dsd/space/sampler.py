"""Drawing distinct models from a space under complexity windows.

Candidates come in fixed blocks of BLOCK draws; block k uses its own generator seeded
by (seed, k), so the stream is the same on every machine, and a position in it is just
(block, offset). `--extend` resumes at the recorded position, so sampling 10 then
extending by 10 gives exactly the models that sampling 20 at once gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dsd.errors import DsdError
from dsd.model.arch import Shape, adjust_compat_batch, regnet_block_widths
from dsd.model.complexity import complexity_batch
from dsd.sizes import format_size, format_window
from dsd.space.spec import Space

BLOCK = 1 << 15
METRICS = ("flops", "params", "acts")
Window = tuple[int | None, int | None] | None


@dataclass
class Candidates:
    """Valid, adjusted candidates of one block (rows in draw order)."""

    index: np.ndarray          # position within the block
    ds: np.ndarray
    ws: np.ndarray
    bs: np.ndarray
    gs: np.ndarray
    scalars: dict[str, np.ndarray]
    cx: dict[str, np.ndarray]

    def take(self, mask: np.ndarray) -> Candidates:
        return Candidates(self.index[mask], self.ds[mask], self.ws[mask], self.bs[mask],
                          self.gs[mask], {k: v[mask] for k, v in self.scalars.items()},
                          {k: v[mask] for k, v in self.cx.items()})


@dataclass
class SampleResult:
    rows: list[dict]
    drawn: int                    # candidates drawn in this call
    valid: int                    # of those, valid and inside the constraints
    in_window: int                # of those, inside every window (duplicates included)
    position: tuple[int, int]     # stream position after the last accepted model


def draw_block(space: Space, shape: Shape, seed: int, block: int, size: int = BLOCK) -> Candidates:
    """Draw one block, keep the valid candidates, adjust them and count their complexity."""
    rng = np.random.default_rng([seed, block])
    s = space.stages
    if space.generator == "regnet":
        c = _regnet_block(space, rng, size)
    else:
        raw = {}
        for name in ("d", "w", "b", "g"):
            p = space.params[name]
            if p.same_as:
                continue
            v = p.dist.draw(rng, (size,) if p.shared else (size, s))
            raw[name] = np.repeat(v[:, None], s, axis=1) if p.shared else v
        for name in ("d", "w", "b", "g"):
            if space.params[name].same_as:
                raw[name] = raw[space.params[name].same_as].copy()
        keep = np.ones(size, dtype=bool)
        for name, order in space.constraints.items():
            step = np.diff(raw[name], axis=1)
            keep &= np.all(step >= 0 if order == "nondecreasing" else step <= 0, axis=1)
        scalars = {}
        if space.params["b"].shared:
            scalars["b"] = raw["b"][:, 0].astype(np.float64)
        if space.params["g"].shared:
            scalars["g"] = raw["g"][:, 0].astype(np.int64)
        c = Candidates(np.arange(size), raw["d"].astype(np.int64), raw["w"], raw["b"],
                       raw["g"], scalars, {}).take(keep)
    ws, gs = adjust_compat_batch(c.ws, c.bs, c.gs.astype(np.int64))
    c.ws, c.gs = ws, gs
    cx = complexity_batch(c.ds, c.ws, c.bs, c.gs, space.se, shape, space.stem_width)
    c.cx = {"flops": cx.flops, "params": cx.params, "acts": cx.acts}
    return c


def _regnet_block(space: Space, rng: np.random.Generator, size: int) -> Candidates:
    names = ("depth", "w0", "wa", "wm", "g", "b")
    v = {k: space.params[k].dist.draw(rng, (size,)) for k in names if not space.params[k].same_as}
    v.update({k: v[space.params[k].same_as].copy() for k in names if space.params[k].same_as})
    depth = v["depth"].astype(np.int64)
    max_d = int(depth.max())
    ws_all, ks = regnet_block_widths(depth, v["w0"], v["wa"], v["wm"], 8, max_d)
    live = np.arange(max_d)[None, :] < depth[:, None]
    starts = np.ones_like(live)
    starts[:, 1:] = ws_all[:, 1:] != ws_all[:, :-1]
    starts &= live
    n_stages = starts.sum(axis=1)
    total = np.where(live, ks, -1).max(axis=1) + 1
    s = space.stages
    keep = (n_stages == s) & (total == s)
    idx = np.nonzero(keep)[0]
    # Stage j begins at the j-th width change; its depth runs to the next change.
    pos = np.nonzero(starts[idx])[1].reshape(-1, s)
    ends = np.concatenate([pos[:, 1:], depth[idx, None]], axis=1)
    ds = ends - pos
    ws = np.take_along_axis(ws_all[idx], pos, axis=1)
    bs = np.repeat(v["b"][idx, None], s, axis=1).astype(np.float64)
    gs = np.repeat(v["g"][idx, None], s, axis=1)
    ints = ("depth", "w0", "g")
    scalars = {k: v[k][idx].astype(np.int64 if k in ints else np.float64)
               for k in ("depth", "w0", "wa", "wm", "g", "b")}
    return Candidates(idx, ds, ws.astype(np.float64), bs, gs, scalars, {})


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


def arch_key(ds, ws, gs, bs, se: bool) -> bytes:
    parts = [np.asarray(x, dtype=np.float64).tobytes() for x in (ds, ws, gs, bs)]
    return b"|".join(parts) + (b"y" if se else b"x")


def sample(
    space: Space, n: int, shape: Shape, windows: dict[str, Window], seed: int,
    start: tuple[int, int] = (0, 0), seen: set[bytes] | None = None, first_id: int = 0,
    max_candidates: int = 200_000_000, probe: int = 4_000_000,
    progress: Callable[[int, int, int], None] | None = None,
) -> SampleResult:
    """Draw n distinct models inside `windows`, continuing the stream at `start`.

    Gives up with a DsdError when `probe` candidates yield no model (the window is out of
    the space's reach) or when the measured acceptance rate says `max_candidates` would
    not be enough.
    """
    seen = set() if seen is None else seen
    rows: list[dict] = []
    drawn = valid = hits = 0
    fmin, fmax = None, None
    block, offset = start
    position = start
    while len(rows) < n:
        c = draw_block(space, shape, seed, block)
        if offset:
            c = c.take(c.index >= offset)
        drawn += BLOCK - offset
        valid += len(c.index)
        if len(c.index):
            fmin = int(c.cx["flops"].min()) if fmin is None else min(fmin, int(c.cx["flops"].min()))
            fmax = int(c.cx["flops"].max()) if fmax is None else max(fmax, int(c.cx["flops"].max()))
        c = c.take(in_windows(c, windows))
        hits += len(c.index)
        for i in range(len(c.index)):
            key = arch_key(c.ds[i], c.ws[i], c.gs[i], c.bs[i], space.se)
            if key in seen:
                continue
            seen.add(key)
            rows.append(_row(c, i, space, first_id + len(rows)))
            position = (block, int(c.index[i]) + 1)
            if len(rows) == n:
                break
        block, offset = block + 1, 0
        if progress is not None:
            progress(len(rows), n, drawn)
        _check_budget(space, windows, len(rows), n, drawn, valid, hits, fmin, fmax,
                      max_candidates, probe)
    return SampleResult(rows, drawn, valid, hits, position)


def _check_budget(space, windows, got, n, drawn, valid, hits, fmin, fmax, max_candidates, probe):
    if got >= n:
        return
    win = ", ".join(f"{k} {format_window(w)}" for k, w in windows.items() if w is not None)
    if hits == 0 and drawn >= probe:
        span = ("no valid model at all" if fmin is None
                else f"its models span {format_size(fmin)}..{format_size(fmax)} flops")
        raise DsdError(f"space '{space.name}' gave no model inside {win or 'the window'} in "
                       f"{drawn:,} candidates ({span}); widen the window (--flops LO:HI) or "
                       "change the shape (--resolution, --dataset)")
    if got and drawn >= probe:
        need = drawn * n / got
        if need > max_candidates:
            raise DsdError(f"space '{space.name}' accepts only 1 in {drawn / got:,.0f} "
                           f"candidates inside {win}; {n} models would need about {need:,.0f} "
                           f"candidates (limit {max_candidates:,}); widen the window or ask "
                           "for fewer models")
    if drawn >= max_candidates:
        raise DsdError(f"space '{space.name}': only {got} of {n} models after {drawn:,} "
                       "candidates; widen the window or ask for fewer models")


def _row(c: Candidates, i: int, space: Space, model_id: int) -> dict:
    row = {
        "model_id": model_id,
        "ds": [int(x) for x in c.ds[i]],
        "ws": [int(x) for x in c.ws[i]],
        "gs": [int(x) for x in c.gs[i]],
        "bs": [float(x) for x in c.bs[i]],
        "se": space.se,
    }
    for k, v in c.scalars.items():
        x = v[i]
        row[k] = int(x) if np.issubdtype(v.dtype, np.integer) else float(x)
    for k in METRICS:
        row[k] = int(c.cx[k][i])
    return row
