"""Block types and stems, by name: each is one function from its arguments to a `Unit`.

Adding a block type is one function here with `@block(...)`, declaring the per-stage
parameters it reads; complexity and the torch builder need nothing else. Widths may be
ints or numpy arrays of candidates (see `dsd.model.layers`).

The blocks follow pycls's AnyNet (`pycls/models/anynet.py`): `vanilla` (two 3x3
conv-BN-ReLU, no shortcut), `res_basic` (ResNet's basic block), `x` (residual bottleneck
with a grouped 3x3: the ResNet bottleneck when the group width equals the bottleneck
width), `y` (x with squeeze-excitation), `res_bottleneck_linear` (the same transform with
an identity shortcut only where the shape is kept and no activation after the sum), and
`mb`, the MBConv of pycls's `effnet.py` (1x1 expansion of the input width, depthwise kxk,
SE from the input width, linear 1x1 projection).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dsd.model.layers import BN, SE, Act, Conv, Gate, MaxPool, Unit, Width


@dataclass(frozen=True)
class StageArgs:
    """The per-stage parameters a block may read (arrays over candidates, or scalars)."""

    b: Any = 1.0          # bottleneck ratio: inner width w / b
    g: Any = 1            # group width of the grouped conv
    k: int = 3            # kernel of the spatial conv
    act: str = "relu"
    se_ratio: Any = 0.0   # SE width = round(se_ratio * block input width); 0: no SE
    e: Any = 1.0          # expansion ratio (mb): inner width int(w_in * e)


@dataclass(frozen=True)
class BlockType:
    name: str
    build: Callable[[Width, Width, int, StageArgs], Unit]
    reads: tuple[str, ...]  # the StageArgs fields it uses (the others are ignored)
    doc: str
    default_se: float = 0.0


BLOCKS: dict[str, BlockType] = {}


def block(name: str, reads: tuple[str, ...], doc: str, default_se: float = 0.0):
    def register(fn):
        BLOCKS[name] = BlockType(name, fn, reads, doc, default_se)
        return fn
    return register


def get_block(name: str) -> BlockType:
    if name not in BLOCKS:
        raise KeyError(f"unknown block {name!r}; known: {', '.join(BLOCKS)}")
    return BLOCKS[name]


def _changes_shape(w_in: Width, w_out: Width, stride: int) -> Any:
    """Whether the shortcut needs a projection (per candidate when widths are arrays)."""
    return (np.asarray(w_in) != np.asarray(w_out)) | (stride != 1)


def _proj(w_in: Width, w_out: Width, stride: int) -> tuple:
    return (Conv("0", w_in, w_out, 1, stride), BN("1", w_out))


@block("vanilla", ("k", "act"), "two kxk conv-BN-act, no shortcut")
def vanilla(w_in: Width, w_out: Width, stride: int, a: StageArgs) -> Unit:
    return Unit((Conv("a", w_in, w_out, a.k, stride), BN("a_bn", w_out), Act("a_act", a.act),
                 Conv("b", w_out, w_out, a.k), BN("b_bn", w_out), Act("b_act", a.act)))


@block("res_basic", ("k", "act"), "ResNet basic block: two kxk convs, shortcut, act after the sum")
def res_basic(w_in: Width, w_out: Width, stride: int, a: StageArgs) -> Unit:
    main = (Conv("a", w_in, w_out, a.k, stride), BN("a_bn", w_out), Act("a_act", a.act),
            Conv("b", w_out, w_out, a.k), BN("b_bn", w_out, final=True))
    return Unit(main, "proj", _proj(w_in, w_out, stride), _changes_shape(w_in, w_out, stride),
                after=Act("act", a.act))


def _int(v):
    """A 0-d array back to an int (one network); arrays of candidates stay arrays."""
    v = np.asarray(v)
    return int(v) if v.ndim == 0 else v


def _se(w: Width, w_in: Width, ratio: Any, act: str, rounding) -> Gate:
    """SE on w channels, its width rounding(ratio * block input width) as in pycls; present
    where the ratio is positive (the ratio may be drawn per candidate)."""
    ratio = np.asarray(ratio, dtype=float)
    w_se = _int(rounding(ratio * np.asarray(w_in)).astype(np.int64))
    return Gate((SE("se", w, w_se, act),), ratio > 0)


def _bottleneck(w_in: Width, w_out: Width, stride: int, a: StageArgs, se_ratio: Any,
                skip: str = "proj") -> Unit:
    w_b = _int(np.round(np.asarray(w_out) * (1.0 / np.asarray(a.b, dtype=float))).astype(np.int64))
    main = [Conv("a", w_in, w_b, 1), BN("a_bn", w_b), Act("a_act", a.act),
            Conv("b", w_b, w_b, a.k, stride, groups=w_b // a.g), BN("b_bn", w_b), Act("b_act", a.act)]
    main.append(_se(w_b, w_in, se_ratio, a.act, np.round))
    main += [Conv("c", w_b, w_out, 1), BN("c_bn", w_out, final=True)]
    if skip == "identity":
        return Unit(tuple(main), "identity", use_identity=~_changes_shape(w_in, w_out, stride))
    return Unit(tuple(main), "proj", _proj(w_in, w_out, stride), _changes_shape(w_in, w_out, stride),
                after=Act("act", a.act))


@block("x", ("b", "g", "k", "act", "se_ratio"),
       "residual bottleneck: 1x1, grouped kxk (group width g), 1x1; inner width w/b")
def x_block(w_in: Width, w_out: Width, stride: int, a: StageArgs) -> Unit:
    return _bottleneck(w_in, w_out, stride, a, a.se_ratio)


@block("y", ("b", "g", "k", "act", "se_ratio"), "the x block with squeeze-excitation (SE ratio 0.25)",
       default_se=0.25)
def y_block(w_in: Width, w_out: Width, stride: int, a: StageArgs) -> Unit:
    return _bottleneck(w_in, w_out, stride, a, np.where(np.asarray(a.se_ratio) > 0, a.se_ratio, 0.25))


@block("res_bottleneck_linear", ("b", "g", "k", "act", "se_ratio"),
       "the x transform with an identity shortcut where the shape is kept, none after the sum "
       "(b < 1 expands: the inverted linear bottleneck)")
def res_bottleneck_linear(w_in: Width, w_out: Width, stride: int, a: StageArgs) -> Unit:
    return _bottleneck(w_in, w_out, stride, a, a.se_ratio, skip="identity")


@block("mb", ("e", "k", "act", "se_ratio"),
       "MBConv: 1x1 expansion to int(w_in * e) (none when e = 1), depthwise kxk, SE of "
       "int(w_in * se_ratio), linear 1x1; identity shortcut where the shape is kept")
def mb(w_in: Width, w_out: Width, stride: int, a: StageArgs) -> Unit:
    w_in_a = np.asarray(w_in)
    w_exp = _int((w_in_a * np.asarray(a.e, dtype=float)).astype(np.int64))
    main = [Gate((Conv("exp", w_in, w_exp, 1), BN("exp_bn", w_exp), Act("exp_af", a.act)),
                 np.asarray(w_exp) != w_in_a),
            Conv("dwise", w_exp, w_exp, a.k, stride, groups=w_exp), BN("dwise_bn", w_exp),
            Act("dwise_af", a.act)]
    main.append(_se(w_exp, w_in, a.se_ratio, a.act, np.trunc))  # pycls: int(w_in * se_r)
    main += [Conv("lin_proj", w_exp, w_out, 1), BN("lin_proj_bn", w_out)]
    return Unit(tuple(main), "identity", use_identity=~_changes_shape(w_in, w_out, stride))


# --- stems ----------------------------------------------------------------------------

@dataclass(frozen=True)
class StemType:
    name: str
    build: Callable[[int, int, int], Unit]   # (in channels, stem width, shape's stem stride)
    doc: str


STEMS: dict[str, StemType] = {}


def stem(name: str, doc: str):
    def register(fn):
        STEMS[name] = StemType(name, fn, doc)
        return fn
    return register


@stem("simple", "3x3 conv-BN-ReLU with the shape's stem stride (2 at ImageNet size): pycls's simple_stem_in")
def simple_stem(c_in: int, w: int, stride: int) -> Unit:
    return Unit((Conv("0", c_in, w, 3, stride), BN("1", w), Act("2")))


@stem("cifar", "3x3 conv-BN-ReLU, stride 1: pycls's res_stem_cifar")
def cifar_stem(c_in: int, w: int, stride: int) -> Unit:
    return Unit((Conv("0", c_in, w, 3, 1), BN("1", w), Act("2")))


@stem("resnet", "7x7 conv stride 2, BN, ReLU, 3x3 max pool stride 2: pycls's res_stem_in")
def resnet_stem(c_in: int, w: int, stride: int) -> Unit:
    return Unit((Conv("0", c_in, w, 7, 2), BN("1", w), Act("2"), MaxPool("3", w, 3, 2)))


def get_stem(name: str) -> StemType:
    if name not in STEMS:
        raise KeyError(f"unknown stem {name!r}; known: {', '.join(STEMS)}")
    return STEMS[name]


def head_conv(w_in: Width, w_out: int, act: str) -> Unit:
    """The optional 1x1 conv-BN-act before the pool (EfficientNet's head)."""
    return Unit((Conv("conv", w_in, w_out, 1), BN("conv_bn", w_out), Act("conv_af", act)))
