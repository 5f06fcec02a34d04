"""Layers as data: what a network is made of, each layer knowing its own cost.

A block or stem is a list of these. Complexity (`dsd.model.complexity`) walks the list and
sums each layer's `cost`; the torch builder (`dsd.model.net`) turns each into its module.
Widths may be ints (one network) or int64 arrays (many candidates at once), so one
description serves both the sampler's vectorised count and the builder.

Costs are pycls's convention (`pycls/models/blocks.py`): flops are multiply-accumulates of
convs and linears plus one add per output element of a biased layer, params count weights,
biases and 2 per BatchNorm channel, acts count the output elements of convs, linears and
max pools. Pure Python and numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Width = Any  # an int, or an int64 numpy array with one entry per candidate


@dataclass(frozen=True)
class Cost:
    flops: Width = 0
    params: Width = 0
    acts: Width = 0

    def __add__(self, o: Cost) -> Cost:
        return Cost(self.flops + o.flops, self.params + o.params, self.acts + o.acts)

    def times(self, k: Width) -> Cost:
        return Cost(self.flops * k, self.params * k, self.acts * k)


def side(h: int, stride: int) -> int:
    """Output side of a 'same'-padded odd kernel (or pool) with this stride."""
    return (h - 1) // stride + 1


@dataclass(frozen=True)
class Conv:
    name: str
    w_in: Width
    w_out: Width
    k: int = 1
    stride: int = 1
    groups: Width = 1
    bias: bool = False

    def out(self, h: int) -> int:
        return side(h, self.stride)

    def cost(self, h: int) -> Cost:
        h = self.out(h)
        k2 = self.k * self.k
        extra = self.w_out if self.bias else 0
        return Cost(k2 * self.w_in * self.w_out * h * h // self.groups + extra * h * h,
                    k2 * self.w_in * self.w_out // self.groups + extra, self.w_out * h * h)


@dataclass(frozen=True)
class BN:
    name: str
    w: Width
    final: bool = False  # the block's last BN: zeroed gamma with zero_init_final_gamma

    def out(self, h: int) -> int:
        return h

    def cost(self, h: int) -> Cost:
        return Cost(0, 2 * self.w, 0)


ACTS = ("relu", "silu")  # activation kinds (the torch builder maps each to its module)


@dataclass(frozen=True)
class Act:
    name: str
    kind: str = "relu"   # one of ACTS

    def out(self, h: int) -> int:
        return h

    def cost(self, h: int) -> Cost:
        return Cost()


@dataclass(frozen=True)
class MaxPool:
    name: str
    w: Width
    k: int = 3
    stride: int = 2

    def out(self, h: int) -> int:
        return side(h, self.stride)

    def cost(self, h: int) -> Cost:
        h = self.out(h)
        return Cost(0, 0, self.w * h * h)


@dataclass(frozen=True)
class SE:
    """Squeeze-excitation on w channels: pool, 1x1 to w_se (bias), act, 1x1 back (bias), gate."""

    name: str
    w: Width
    w_se: Width
    act: str = "relu"

    def out(self, h: int) -> int:
        return h

    def cost(self, h: int) -> Cost:
        return (Conv("reduce", self.w, self.w_se, bias=True).cost(1)
                + Conv("expand", self.w_se, self.w, bias=True).cost(1))


@dataclass(frozen=True)
class Gate:
    """Layers that exist only where `on` holds (a bool, or a bool per candidate), such as
    MBConv's expansion, absent when the expansion ratio is 1. They keep the resolution."""

    layers: tuple
    on: Any

    def out(self, h: int) -> int:
        return h

    def cost(self, h: int) -> Cost:
        total = Cost()
        for layer in self.layers:
            total = total + layer.cost(h)
        return total.times(self.on)


Layer = Conv | BN | Act | MaxPool | SE | Gate


@dataclass(frozen=True)
class Unit:
    """A block or a stem: its main path, an optional projection shortcut, and how the
    shortcut joins: `skip` is "none" (no residual), "proj" (projection when the shape
    changes, identity otherwise) or "identity" (identity when the shape is kept, else none).
    `use_proj` says, per candidate, whether the projection exists (a bool or bool array).
    `after` is the activation after the sum, if any."""

    main: tuple[Layer, ...]
    skip: str = "none"
    proj: tuple[Layer, ...] = ()
    use_proj: Any = False
    use_identity: Any = False
    after: Act | None = None

    def out(self, h: int) -> int:
        for layer in self.main:
            h = layer.out(h)
        return h

    def cost(self, h: int) -> Cost:
        total, x = Cost(), h
        for layer in self.main:
            total = total + layer.cost(x)
            x = layer.out(x)
        if self.proj:
            p, x = Cost(), h
            for layer in self.proj:
                p = p + layer.cost(x)
                x = layer.out(x)
            total = total + p.times(self.use_proj)
        return total
