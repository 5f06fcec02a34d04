"""Exact analytic complexity (flops, params, acts) in pycls's convention.

The count walks the same layer description the torch builder reads (`dsd.model.blocks`,
`dsd.model.layers`): stem, then per stage its first block and d - 1 copies of the next,
then the head (global pool and a biased linear). Everything is an exact int64.

The counter is vectorised over candidates: arrays of shape [models, stages]. Sampling a
constrained space evaluates millions of candidates, one numpy pass per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsd.model import params
from dsd.model.arch import Arch, Shape
from dsd.model.blocks import StageArgs, get_block, get_stem, head_conv
from dsd.model.layers import Cost

STAGE_ARGS = params.stage_args()  # b, g, e, k: what a block reads per stage
DTYPES = {int: np.int64, float: np.float64}


@dataclass
class Complexity:
    flops: np.ndarray
    params: np.ndarray
    acts: np.ndarray


def complexity_batch(
    ds: np.ndarray, ws: np.ndarray, bs: np.ndarray, gs: np.ndarray, shape: Shape,
    block: str = "x", stem: str = "simple", stem_w: int | np.ndarray = 32,
    strides: tuple[int, ...] | None = None, se_ratio: float | np.ndarray = 0.0,
    ks: tuple[int, ...] | np.ndarray | None = None, act: str = "relu", head_w: int = 0,
    **stage_values: np.ndarray | None,
) -> Complexity:
    """Complexity of many AnyNets at once. ds/ws/bs/gs (and ks when drawn per candidate):
    [models, stages]; ks may also be one kernel per stage for all. `stage_values`: the
    other per-stage values a block reads, by Arch field (es=..., see dsd.model.params),
    [models, stages]; a missing one is the table's default everywhere."""
    unknown = set(stage_values) - {p.arch for p in STAGE_ARGS}
    if unknown:
        raise TypeError(f"complexity_batch() got unexpected keyword arguments {sorted(unknown)}")
    ds, ws = (np.asarray(x, dtype=np.int64) for x in (ds, ws))
    n, stages = ws.shape
    strides = strides or (2,) * stages
    given = dict(stage_values, bs=bs, gs=gs, ks=ks)
    per = {}  # StageArgs field -> [models, stages]
    for p in STAGE_ARGS:
        v = given.get(p.arch)
        v = (p.default,) * stages if v is None or len(v) == 0 else v
        per[p.name] = np.broadcast_to(np.asarray(v, dtype=DTYPES[p.type]), (n, stages))
    blk = get_block(block).build
    front = get_stem(stem).build(shape.in_channels, stem_w, shape.stem_stride)
    h = shape.resolution
    total = front.cost(h)
    h = front.out(h)
    total = Cost(*(np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)).copy()
                   for v in (total.flops, total.params, total.acts)))
    w_prev = np.broadcast_to(np.asarray(stem_w, dtype=np.int64), (n,)).copy()
    for i in range(stages):
        w, s = ws[:, i], strides[i]
        args = StageArgs(act=act, se_ratio=se_ratio, **{k: v[:, i] for k, v in per.items()})
        first = blk(w_prev, w, s, args)
        h_out = first.out(h)
        total = total + first.cost(h) + blk(w, w, 1, args).cost(h_out).times(ds[:, i] - 1)
        w_prev, h = w, h_out
    if head_w:
        total = total + head_conv(w_prev, head_w, act).cost(h)
        w_prev = np.full(n, head_w, dtype=np.int64)
    nc = shape.num_classes
    head = Cost(w_prev * nc + nc, w_prev * nc + nc, np.full(n, nc, dtype=np.int64))
    total = total + head
    return Complexity(total.flops, total.params, total.acts)


def complexity(arch: Arch) -> dict[str, int]:
    """flops, params and acts of one architecture, as Python ints."""
    row = lambda xs: np.asarray(xs)[None]  # noqa: E731
    net = {k: getattr(arch, k) for k in ("block", "stem", "stem_w", "strides", "se_ratio", "act",
                                          "head_w")}
    # every per-stage Arch field (ds, ws, bs, gs, es, ks, ...) but the strides, in `net`
    lists = {p.arch: row(getattr(arch, p.arch)) for p in params.per_stage() if p.arch != "strides"}
    cx = complexity_batch(shape=arch.shape, **lists, **net)
    return {"flops": int(cx.flops[0]), "params": int(cx.params[0]), "acts": int(cx.acts[0])}


def describe(arch: Arch) -> dict:
    """One network as `dsd model regnet|anynet --json` prints it: its stages and exact
    complexity."""
    return {"ds": list(arch.ds), "ws": list(arch.ws), "gs": list(arch.gs), "bs": list(arch.bs),
            "block": arch.block, "se": arch.se, "stem": arch.stem, "stem_w": arch.stem_w,
            "strides": list(arch.strides), "ks": list(arch.ks), "act": arch.act, **complexity(arch)}
