"""AnyNet in torch, built from an `Arch` through the layer description of `dsd.model.blocks`.

Every layer of a stem or block description becomes its module, registered under the
layer's name in description order, so parameter counts and fvcore's operator counts match
the analytic ones by construction, and the X/Y networks keep pycls's module names and
initialisation order.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dsd.model import layers as L
from dsd.model import params
from dsd.model.arch import Arch
from dsd.model.blocks import StageArgs, get_block, get_stem, head_conv

ACTS = {"relu": lambda: nn.ReLU(inplace=True), "silu": lambda: nn.SiLU(inplace=True)}


class SE(nn.Module):
    """Squeeze-excitation: global pool, 1x1 reduce, act, 1x1 expand, sigmoid gate."""

    def __init__(self, w: int, w_se: int, act: str = "relu"):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(w, w_se, 1, bias=True)
        self.act = ACTS[act]()
        self.expand = nn.Conv2d(w_se, w, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.expand(self.act(self.reduce(self.pool(x)))))


def module(layer: L.Layer) -> nn.Module:
    """The torch module of one described layer."""
    if isinstance(layer, L.Conv):
        return nn.Conv2d(int(layer.w_in), int(layer.w_out), layer.k, stride=layer.stride,
                         padding=layer.k // 2, groups=int(layer.groups), bias=layer.bias)
    if isinstance(layer, L.BN):
        bn = nn.BatchNorm2d(int(layer.w))
        bn.final_bn = layer.final
        return bn
    if isinstance(layer, L.Act):
        return ACTS[layer.kind]()
    if isinstance(layer, L.MaxPool):
        return nn.MaxPool2d(layer.k, stride=layer.stride, padding=layer.k // 2)
    if isinstance(layer, L.SE):
        return SE(int(layer.w), int(layer.w_se), layer.act)
    raise TypeError(f"no torch module for {layer!r}")


class UnitModule(nn.Module):
    """A described block or stem: its main path, then the shortcut and the activation after it."""

    def __init__(self, unit: L.Unit):
        super().__init__()
        layers = []
        for layer in unit.main:
            if isinstance(layer, L.Gate):
                layers += list(layer.layers) if bool(layer.on) else []
            else:
                layers.append(layer)
        self.names = [layer.name for layer in layers]
        for layer in layers:
            self.add_module(layer.name, module(layer))
        self.skip = unit.skip
        self.identity = bool(unit.use_identity)
        self.proj = nn.Sequential(*(module(x) for x in unit.proj)) if bool(unit.use_proj) else None
        self.after = module(unit.after) if unit.after is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for name in self.names:
            y = getattr(self, name)(y)
        if self.skip == "proj":
            y = y + (x if self.proj is None else self.proj(x))
        elif self.skip == "identity" and self.identity:
            y = y + x
        return y if self.after is None else self.after(y)


class AnyNet(nn.Module):
    def __init__(self, arch: Arch, zero_init_final_gamma: bool = False, init: bool = True):
        super().__init__()
        sh = arch.shape
        self.stem = UnitModule(get_stem(arch.stem).build(sh.in_channels, arch.stem_w, sh.stem_stride))
        blk = get_block(arch.block).build
        stages, w_in = [], arch.stem_w
        for i, (d, w, s) in enumerate(zip(arch.ds, arch.ws, arch.strides)):
            args = StageArgs(act=arch.act, se_ratio=arch.se_ratio,  # b, g, k, e, ...: the table's
                             **{p.name: getattr(arch, p.arch)[i] for p in params.stage_args()})
            blocks = [UnitModule(blk(w_in if i == 0 else w, w, s if i == 0 else 1, args))
                      for i in range(d)]
            stages.append(nn.Sequential(*blocks))
            w_in = w
        self.stages = nn.Sequential(*stages)
        self.head = UnitModule(head_conv(w_in, arch.head_w, arch.act)) if arch.head_w else None
        w_in = arch.head_w or w_in
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w_in, sh.num_classes)
        if init:
            self.apply(lambda m: _init(m, zero_init_final_gamma))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        if self.head is not None:
            x = self.head(x)
        return self.fc(torch.flatten(self.pool(x), 1))


def _init(m: nn.Module, zero_init_final_gamma: bool) -> None:
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
    elif isinstance(m, nn.BatchNorm2d):
        final = getattr(m, "final_bn", False) and zero_init_final_gamma
        nn.init.constant_(m.weight, 0.0 if final else 1.0)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.01)
        nn.init.zeros_(m.bias)


def build(arch: Arch, zero_init_final_gamma: bool = False, device: str | None = None) -> AnyNet:
    """The torch module for `arch` (on `device`, e.g. "meta" to count parameters cheaply)."""
    if device is None:
        return AnyNet(arch, zero_init_final_gamma)
    with torch.device(device):
        # Initialising meta tensors only costs time: they hold no values.
        return AnyNet(arch, zero_init_final_gamma, init=device != "meta")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
