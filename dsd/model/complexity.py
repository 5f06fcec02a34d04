"""Exact analytic complexity (flops, params, acts) in pycls's convention.

flops: multiply-accumulates of convs and linears, plus one add per output element of
a layer with a bias. params: conv/linear weights and biases, 2 per BatchNorm channel.
acts: elements of every conv and linear output. Everything is an exact int64.

The counter is vectorised over candidates: arrays of shape [models, stages]. Sampling a
constrained space evaluates millions of candidates, one numpy pass per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsd.model.arch import SE_RATIO, Arch, Shape


@dataclass
class Complexity:
    flops: np.ndarray
    params: np.ndarray
    acts: np.ndarray


def _conv(w_in, w_out, h_out, k=1, groups=1, bias=False):
    """(flops, params, acts) of one conv layer whose output is h_out x h_out."""
    weights = k * k * w_in * w_out // groups
    flops = k * k * w_in * w_out * h_out * h_out // groups + (w_out * h_out * h_out if bias else 0)
    params = weights + (w_out if bias else 0)
    return flops, params, w_out * h_out * h_out


def _block(w_in, w_out, wb, g, h_in, h_out, se, proj):
    """One X/Y block: 1x1, grouped 3x3 (stride), [SE], 1x1, [projection shortcut]."""
    groups = wb // g
    parts = [
        _conv(w_in, wb, h_in),
        _conv(wb, wb, h_out, k=3, groups=groups),
        _conv(wb, w_out, h_out),
    ]
    bn = 2 * wb + 2 * wb + 2 * w_out
    f = sum(p[0] for p in parts)
    p = sum(p[1] for p in parts) + bn
    a = sum(p[2] for p in parts)
    if se is not None:
        w_se = np.round(SE_RATIO * w_in).astype(np.int64)
        s1, s2 = _conv(wb, w_se, 1, bias=True), _conv(w_se, wb, 1, bias=True)
        f, p, a = f + se * (s1[0] + s2[0]), p + se * (s1[1] + s2[1]), a + se * (s1[2] + s2[2])
    if proj is not None:
        sf, sp, sa = _conv(w_in, w_out, h_out)
        f, p, a = f + proj * sf, p + proj * (sp + 2 * w_out), a + proj * sa
    return f, p, a


def complexity_batch(
    ds: np.ndarray, ws: np.ndarray, bs: np.ndarray, gs: np.ndarray,
    se: np.ndarray | bool, shape: Shape, stem_w: int = 32,
) -> Complexity:
    """Complexity of many AnyNets at once. ds/ws/bs/gs: [models, stages]; se: [models]."""
    ds, ws, gs = (np.asarray(x, dtype=np.int64) for x in (ds, ws, gs))
    bs = np.asarray(bs, dtype=np.float64)
    n, stages = ws.shape
    se = np.broadcast_to(np.asarray(se, dtype=np.int64), (n,))
    wbs = np.round(ws * (1.0 / bs)).astype(np.int64)

    h = (shape.resolution - 1) // shape.stem_stride + 1
    flops = np.full(n, 9 * shape.in_channels * stem_w * h * h, dtype=np.int64)
    params = np.full(n, 9 * shape.in_channels * stem_w + 2 * stem_w, dtype=np.int64)
    acts = np.full(n, stem_w * h * h, dtype=np.int64)
    w_prev = np.full(n, stem_w, dtype=np.int64)
    for i in range(stages):
        w, wb, g, d = ws[:, i], wbs[:, i], gs[:, i], ds[:, i]
        h_out = (h - 1) // 2 + 1
        first = _block(w_prev, w, wb, g, h, h_out, se, proj=1)
        rest = _block(w, w, wb, g, h_out, h_out, se, proj=None)
        flops += first[0] + (d - 1) * rest[0]
        params += first[1] + (d - 1) * rest[1]
        acts += first[2] + (d - 1) * rest[2]
        w_prev, h = w, h_out
    nc = shape.num_classes
    flops += w_prev * nc + nc
    params += w_prev * nc + nc
    acts += nc
    return Complexity(flops, params, acts)


def complexity(arch: Arch) -> dict[str, int]:
    """flops, params and acts of one architecture, as Python ints."""
    row = lambda xs: np.asarray(xs)[None]  # noqa: E731
    cx = complexity_batch(row(arch.ds), row(arch.ws), row(arch.bs), row(arch.gs),
                          np.array([arch.se]), arch.shape, arch.stem_w)
    return {"flops": int(cx.flops[0]), "params": int(cx.params[0]), "acts": int(cx.acts[0])}
