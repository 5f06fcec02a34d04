"""The architecture value object: the one description every other part reads.

An `Arch` is an AnyNet after width/group adjustment: per-stage depth `ds`, width `ws`,
bottleneck ratio `bs` (the paper's b, so the bottleneck width is w / b) and group
width `gs`, plus the block type and stem (by name, see `dsd.model.blocks`), the stem
width, each stage's stride and the input/output shape. The torch builder
(`dsd.model.net`) and the complexity counter (`dsd.model.complexity`) both read it, through
the one layer description of `dsd.model.blocks`.

Pure Python and numpy: importing this module never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dsd.errors import ParamError
from dsd.model import params

STEM_WIDTH = 32


@dataclass(frozen=True)
class Shape:
    """What the network eats and emits."""

    in_channels: int = 3
    resolution: int = 224
    num_classes: int = 1000
    stem_stride: int = 2


IMAGENET = Shape()


@dataclass(frozen=True)
class Arch:
    ds: tuple[int, ...]
    ws: tuple[int, ...]
    bs: tuple[float, ...]
    gs: tuple[int, ...]
    block: str = "x"
    stem_w: int = STEM_WIDTH
    shape: Shape = field(default=IMAGENET)
    stem: str = "simple"
    strides: tuple[int, ...] = ()    # per stage; empty: 2 everywhere
    se_ratio: float = 0.0            # 0: the block's own default (0.25 for y, none for x)
    ks: tuple[int, ...] = ()         # per stage kernel of the spatial conv; empty: 3 everywhere
    act: str = "relu"
    es: tuple[float, ...] = ()       # per stage expansion ratio (mb blocks); empty: 1 everywhere
    head_w: int = 0                  # a 1x1 conv-BN-act to this width before the pool; 0: none

    def __post_init__(self) -> None:
        n = len(self.ds)
        if not (len(self.ws) == len(self.bs) == len(self.gs) == n) or n == 0:
            raise ValueError("ds, ws, bs and gs need one entry per stage")
        # Every other per-stage field (strides, ks, es, ...): empty is the table's default.
        for p in params.per_stage():
            v = getattr(self, p.arch)
            if not v:
                object.__setattr__(self, p.arch, (p.default,) * n)
            elif len(v) != n:
                raise ValueError(f"{p.arch} need one entry per stage ({n}), got {v}")

    @property
    def se(self) -> bool:
        """Squeeze-excitation: the block has it by default (y), or an SE ratio asks for it."""
        from dsd.model.blocks import BLOCKS

        block = BLOCKS.get(self.block)
        return (block is not None and block.default_se > 0) or self.se_ratio > 0

    @property
    def num_stages(self) -> int:
        return len(self.ds)

    def bottleneck_widths(self) -> list[int]:
        return [int(round(w * (1.0 / b))) for w, b in zip(self.ws, self.bs)]


def adjust_compat(
    ws: list[int], bs: list[float], gs: list[int]
) -> tuple[list[int], list[int]]:
    """Make each stage's width divisible by its group width (pycls's rule).

    Returns the adjusted widths and group widths. Rounding is half-to-even, as in
    pycls (Python's and numpy's `round`).
    """
    ws_a = np.asarray(ws, dtype=np.float64)[None]
    bs_a = np.asarray(bs, dtype=np.float64)[None]
    gs_a = np.asarray(gs, dtype=np.int64)[None]
    w, g = adjust_compat_batch(ws_a, bs_a, gs_a)
    return w[0].tolist(), g[0].tolist()


def adjust_compat_batch(
    ws: np.ndarray, bs: np.ndarray, gs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised `adjust_compat` over arrays of shape [models, stages]."""
    bot_mul = 1.0 / np.asarray(bs, dtype=np.float64)
    v = np.maximum(1.0, ws * bot_mul).astype(np.int64)
    g = np.minimum(gs, v).astype(np.int64)
    inv = bot_mul.astype(np.int64)
    m = np.where(bot_mul > 1, np.lcm(g, np.maximum(inv, 1)), g)
    v = np.maximum(m, (np.round(v / m) * m).astype(np.int64))
    w = (v / bot_mul).astype(np.int64)
    return w, g


def quantized_linear_widths(
    depth: int, w0: float, wa: float, wm: float, q: int = 8
) -> tuple[list[int], list[int], int, int]:
    """RegNet's generator: per-block widths u_j = w0 + wa*j, snapped to w0*wm^k.

    Returns (stage widths, stage depths, number of stages, highest stage index + 1).
    The two counts differ when a stage index k is skipped.
    """
    ws_all, ks = regnet_block_widths(np.array([depth]), np.array([w0]), np.array([wa]),
                                     np.array([wm]), q, int(depth))
    ws_all, ks = ws_all[0], ks[0]
    stage_ws, stage_ds = np.unique(ws_all, return_counts=True)
    return stage_ws.tolist(), stage_ds.tolist(), len(stage_ws), int(ks.max()) + 1


def regnet_block_widths(
    depth: np.ndarray, w0: np.ndarray, wa: np.ndarray, wm: np.ndarray, q: int, max_depth: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-block widths and stage indices for many RegNets, shape [models, max_depth].

    Blocks past a model's depth repeat its last block so that run-length counting
    of stages stays simple; callers mask them with `j < depth`.
    """
    j = np.arange(max_depth)[None, :]
    j = np.minimum(j, depth[:, None] - 1)
    w0c, wac, wmc = w0[:, None], wa[:, None], wm[:, None]
    ks = regnet_stage_index(j, w0c, wac, wmc)
    ws = w0c * np.power(wmc, ks)
    ws = (np.round(ws / q)).astype(np.int64) * q
    return ws, ks.astype(np.int64)


def regnet_stage_index(j: np.ndarray, w0: np.ndarray, wa: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """Stage index of block j: round(log_wm(u_j / w0)) with u_j = w0 + wa*j (as float)."""
    u = j * wa + w0
    return np.round(np.log(u / w0) / np.log(wm))


def regnet_arch(
    depth: int, w0: float, wa: float, wm: float, group_w: int, b: float = 1,
    se: bool = False, shape: Shape = IMAGENET, stem_w: int = STEM_WIDTH,
) -> Arch:
    """The AnyNet that RegNet parameters (d, w0, wa, wm, g, b) describe (Y blocks with se)."""
    checks = [("depth", depth >= 1, "must be at least 1"), ("group_w", group_w >= 1, "must be at least 1"),
              ("bottleneck", b > 0, "must be positive"), ("wa", wa >= 0, "must not be negative"),
              ("w0", w0 > 0 and w0 % 8 == 0, "must be a positive multiple of 8"),
              ("wm", wm > 1, "must be greater than 1")]
    for name, ok, what in checks:
        if not ok:
            raise ParamError(name, what)
    ws, ds, _, _ = quantized_linear_widths(depth, w0, wa, wm)
    bs = [b] * len(ws)
    ws, gs = adjust_compat(ws, bs, [group_w] * len(ws))
    return Arch(tuple(ds), tuple(ws), tuple(float(x) for x in bs), tuple(gs), "y" if se else "x",
                stem_w, shape)


def anynet_arch(
    ds: list[int], ws: list[int], bs: list[float], gs: list[int], se: bool = False,
    shape: Shape = IMAGENET, stem_w: int = STEM_WIDTH, block: str | None = None,
    stem: str = "simple", strides: tuple[int, ...] = (), ks: tuple[int, ...] = (),
    act: str = "relu", se_ratio: float = 0.0, es: tuple[float, ...] = (), head_w: int = 0,
) -> Arch:
    """An AnyNet from per-stage values, after the width/group adjustment (X blocks, or Y
    with se, unless `block` names another type)."""
    lengths = {"depths": len(ds), "widths": len(ws), "bottlenecks": len(bs), "group_ws": len(gs)}
    if len(set(lengths.values())) != 1 or not ds:
        raise ParamError("widths", "depths, widths, group widths and bottlenecks need one value per "
                         f"stage; got {', '.join(f'{v} {k}' for k, v in lengths.items())}")
    for name, vals in (("depths", ds), ("widths", ws), ("group_ws", gs)):
        if min(vals) < 1:
            raise ParamError(name, "every value must be at least 1")
    if min(bs) <= 0:
        raise ParamError("bottlenecks", "every value must be positive")
    ws2, gs2 = adjust_compat(ws, bs, gs)
    return Arch(tuple(int(d) for d in ds), tuple(ws2), tuple(float(b) for b in bs),
                tuple(gs2), block or ("y" if se else "x"), stem_w, shape, stem, tuple(strides),
                se_ratio, tuple(ks), act, tuple(float(e) for e in es), head_w)


def stage_resolutions(arch: Arch) -> list[int]:
    """Output side length of the stem, then of every stage."""
    from dsd.model.blocks import get_stem
    from dsd.model.layers import side

    sh = arch.shape
    h = get_stem(arch.stem).build(sh.in_channels, arch.stem_w, sh.stem_stride).out(sh.resolution)
    out = [h]
    for s in arch.strides:
        h = side(h, s)
        out.append(h)
    return out
