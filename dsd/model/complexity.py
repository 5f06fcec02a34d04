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

from dsd.model.arch import Arch, Shape
from dsd.model.blocks import StageArgs, get_block, get_stem, head_conv
from dsd.model.layers import Cost


@dataclass
class Complexity:
    flops: np.ndarray
    params: np.ndarray
    acts: np.ndarray


def complexity_batch(
    ds: np.ndarray, ws: np.ndarray, bs: np.ndarray, gs: np.ndarray, shape: Shape,
    block: str = "x", stem: str = "simple", stem_w: int | np.ndarray = 32,
    strides: tuple[int, ...] | None = None, se_ratio: float | np.ndarray = 0.0,
    ks: tuple[int, ...] | np.ndarray | None = None, act: str = "relu",
    es: np.ndarray | None = None, head_w: int = 0,
) -> Complexity:
    """Complexity of many AnyNets at once. ds/ws/bs/gs (and es, and ks when drawn per
    candidate): [models, stages]; ks may also be one kernel per stage for all."""
    ds, ws, gs = (np.asarray(x, dtype=np.int64) for x in (ds, ws, gs))
    bs = np.asarray(bs, dtype=np.float64)
    n, stages = ws.shape
    strides = strides or (2,) * stages
    ks = np.broadcast_to(np.asarray((3,) * stages if ks is None or len(ks) == 0 else ks,
                                    dtype=np.int64), (n, stages))
    es = np.ones((n, stages)) if es is None else np.asarray(es, dtype=np.float64)
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
        args = StageArgs(b=bs[:, i], g=gs[:, i], k=ks[:, i], act=act, se_ratio=se_ratio, e=es[:, i])
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
    net = {k: getattr(arch, k) for k in ("block", "stem", "stem_w", "strides", "se_ratio", "ks",
                                          "act", "head_w")}
    cx = complexity_batch(row(arch.ds), row(arch.ws), row(arch.bs), row(arch.gs), arch.shape,
                          es=row(arch.es), **net)
    return {"flops": int(cx.flops[0]), "params": int(cx.params[0]), "acts": int(cx.acts[0])}


def describe(arch: Arch) -> dict:
    """One network as `dsd model regnet|anynet --json` prints it: its stages and exact
    complexity."""
    return {"ds": list(arch.ds), "ws": list(arch.ws), "gs": list(arch.gs), "bs": list(arch.bs),
            "block": arch.block, "se": arch.se, "stem": arch.stem, "stem_w": arch.stem_w,
            "strides": list(arch.strides), "ks": list(arch.ks), "act": arch.act, **complexity(arch)}
