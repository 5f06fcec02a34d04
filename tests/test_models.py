"""Every sampled model's analytic params equal its torch module's, and it runs."""

from __future__ import annotations

import pytest
import torch

from dsd.model.arch import Arch, Shape
from dsd.model.complexity import complexity
from dsd.model.net import build, count_params
from dsd.model.verify import verify_arch
from dsd.space import spec as spaces
from dsd.space.sampler import sample

SMALL = Shape(1, 28, 10, 1)


def _archs(name: str, n: int, seed: int = 0) -> list[Arch]:
    space = spaces.load(name)
    rows = sample(space, n, SMALL, {}, seed=seed).rows
    return [Arch(tuple(r["ds"]), tuple(r["ws"]), tuple(r["bs"]), tuple(r["gs"]), r["block"],
                 space.stem_width, SMALL) for r in rows]


@pytest.mark.parametrize("name", spaces.builtin_names())
def test_params_equal_torch_on_200_samples(name):
    for arch in _archs(name, 200):
        assert count_params(build(arch, device="meta")) == complexity(arch)["params"], arch


@pytest.mark.parametrize("name", ["anynetx_a", "regnety"])
def test_fvcore_agrees_on_samples(name):
    for arch in _archs(name, 3, seed=4):
        v = verify_arch(arch)
        assert v["flops_fvcore_conv_linear"] == complexity(arch)["flops"] - v["bias_adds"]


def test_forward_and_init():
    arch = _archs("regnety", 1)[0]
    torch.manual_seed(0)
    m = build(arch, zero_init_final_gamma=True)
    assert m(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert float(m.fc.weight.detach().std()) == pytest.approx(0.01, rel=0.2)
    assert all(float(b.c_bn.weight.detach().abs().sum()) == 0 for s in m.stages for b in s)
    stem = getattr(m.stem, "0").weight
    fan_out = 9 * stem.shape[0]
    assert float(stem.detach().std()) == pytest.approx((2 / fan_out) ** 0.5, rel=0.25)
