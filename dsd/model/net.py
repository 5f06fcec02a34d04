"""AnyNet in torch: stem, stages of X/Y blocks, head, built from an `Arch`.

Mirrors pycls's AnyNet layer for layer (same modules, same order, same init) so that
parameter counts and fvcore's operator counts match the analytic ones exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dsd.model.arch import SE_RATIO, Arch


def _conv(w_in: int, w_out: int, k: int, stride: int = 1, groups: int = 1,
          bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(w_in, w_out, k, stride=stride, padding=k // 2, groups=groups, bias=bias)


class SE(nn.Module):
    """Squeeze-excitation: global pool, 1x1 reduce, ReLU, 1x1 expand, sigmoid gate."""

    def __init__(self, w: int, w_se: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = _conv(w, w_se, 1, bias=True)
        self.expand = _conv(w_se, w, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.relu(self.reduce(self.pool(x)))
        return x * torch.sigmoid(self.expand(s))


class Block(nn.Module):
    """Residual bottleneck block with group conv (X), optionally with SE (Y)."""

    def __init__(self, w_in: int, w_out: int, stride: int, b: float, g: int, se: bool):
        super().__init__()
        w_b = int(round(w_out * (1.0 / b)))
        self.a = _conv(w_in, w_b, 1)
        self.a_bn = nn.BatchNorm2d(w_b)
        self.b = _conv(w_b, w_b, 3, stride=stride, groups=w_b // g)
        self.b_bn = nn.BatchNorm2d(w_b)
        # SE width follows the block's input width, as in pycls.
        self.se = SE(w_b, int(round(SE_RATIO * w_in))) if se else None
        self.c = _conv(w_b, w_out, 1)
        self.c_bn = nn.BatchNorm2d(w_out)
        self.c_bn.final_bn = True
        self.proj = None
        if w_in != w_out or stride != 1:
            self.proj = nn.Sequential(_conv(w_in, w_out, 1, stride=stride), nn.BatchNorm2d(w_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.a_bn(self.a(x)))
        y = torch.relu(self.b_bn(self.b(y)))
        if self.se is not None:
            y = self.se(y)
        y = self.c_bn(self.c(y))
        return torch.relu(y + (x if self.proj is None else self.proj(x)))


class AnyNet(nn.Module):
    def __init__(self, arch: Arch, zero_init_final_gamma: bool = False, init: bool = True):
        super().__init__()
        sh = arch.shape
        self.stem = nn.Sequential(
            _conv(sh.in_channels, arch.stem_w, 3, stride=sh.stem_stride),
            nn.BatchNorm2d(arch.stem_w),
            nn.ReLU(inplace=True),
        )
        stages, w_in = [], arch.stem_w
        for d, w, b, g in zip(arch.ds, arch.ws, arch.bs, arch.gs):
            blocks = [Block(w_in if i == 0 else w, w, 2 if i == 0 else 1, b, g, arch.se)
                      for i in range(d)]
            stages.append(nn.Sequential(*blocks))
            w_in = w
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w_in, sh.num_classes)
        if init:
            self.apply(lambda m: _init(m, zero_init_final_gamma))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
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
