"""Analytic complexity against outside ground truth: published figures, torch, fvcore."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from dsd.model.arch import Shape, regnet_arch
from dsd.model.complexity import complexity, complexity_batch
from dsd.model.net import build, count_params
from dsd.model.verify import verify_arch
from dsd.model.zoo import PUBLISHED

# Exact reference values (flops, params, acts) at 224 px, 1000 classes, as pycls counts them.
REFERENCE = {
    "RegNetX-400MF": ((22, 24, 24.48, 2.54, 16, False), (397_678_568, 5_157_512, 3_143_272),
                      ([1, 2, 7, 12], [32, 64, 160, 384])),
    "RegNetY-400MF": ((16, 48, 27.89, 2.09, 8, True), (401_849_056, 4_344_144, 3_892_496),
                      ([1, 3, 6, 6], [48, 104, 208, 440])),
    "RegNetX-8.0GF": ((23, 80, 49.56, 2.88, 120, False), (7_995_133_416, 39_572_648, 14_059_688),
                      None),
}

# torchvision's RegNets built from the same six numbers; three of them round widths
# differently from pycls and are other networks (README, Commands: `dsd model`).
TORCHVISION = {
    "regnet_x_400mf": ((22, 24, 24.48, 2.54, 16, False), False),
    "regnet_x_800mf": ((16, 56, 35.73, 2.28, 16, False), True),
    "regnet_x_1_6gf": ((18, 80, 34.01, 2.25, 24, False), True),
    "regnet_x_3_2gf": ((25, 88, 26.31, 2.25, 48, False), True),
    "regnet_x_8gf": ((23, 80, 49.56, 2.88, 120, False), True),
    "regnet_x_16gf": ((22, 216, 55.59, 2.1, 128, False), True),
    "regnet_x_32gf": ((23, 320, 69.86, 2.0, 168, False), True),
    "regnet_y_400mf": ((16, 48, 27.89, 2.09, 8, True), True),
    "regnet_y_800mf": ((14, 56, 38.84, 2.4, 16, True), False),
    "regnet_y_1_6gf": ((27, 48, 20.71, 2.65, 24, True), True),
    "regnet_y_3_2gf": ((21, 80, 42.63, 2.66, 24, True), True),
    "regnet_y_8gf": ((17, 192, 76.82, 2.19, 56, True), False),
    "regnet_y_16gf": ((18, 200, 106.23, 2.48, 112, True), True),
    "regnet_y_32gf": ((20, 232, 115.89, 2.53, 232, True), True),
    "regnet_y_128gf": ((27, 456, 160.83, 2.52, 264, True), True),
}


def _regnet(d, w0, wa, wm, g, se=False, shape=Shape()):
    return regnet_arch(d, w0, wa, wm, g, se=se, shape=shape)


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_models_exact(name):
    (d, w0, wa, wm, g, se), expected, stages = REFERENCE[name]
    arch = _regnet(d, w0, wa, wm, g, se)
    cx = complexity(arch)
    assert (cx["flops"], cx["params"], cx["acts"]) == expected
    if stages:
        assert [list(arch.ds), list(arch.ws)] == [stages[0], stages[1]]


def test_regnetx_8gf_group_width_drops_in_narrow_stage():
    arch = _regnet(23, 80, 49.56, 2.88, 120)
    assert list(arch.ws) == [80, 240, 720, 1920]
    assert list(arch.gs) == [80, 120, 120, 120]


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_table(name):
    (d, w0, wa, wm, g), (gf, mp, ma) = PUBLISHED[name]
    cx = complexity(_regnet(d, w0, wa, wm, g, se=name.startswith("RegNetY")))
    assert round(cx["flops"] / 1e9, 1) == gf
    assert round(cx["params"] / 1e6, 1) == mp
    assert round(cx["acts"] / 1e6, 1) == ma


@pytest.mark.parametrize("name", TORCHVISION)
def test_params_equal_torchvision_published_count(name):
    """torchvision's own published parameter count of each of its RegNets."""
    (d, w0, wa, wm, g, se), same = TORCHVISION[name]
    weights = list(torchvision.models.get_model_weights(name))[0]
    ours = complexity(_regnet(d, w0, wa, wm, g, se))["params"]
    assert (ours == weights.meta["num_params"]) == same


@pytest.mark.parametrize("name", ["regnet_x_800mf", "regnet_x_1_6gf", "regnet_y_1_6gf"])
def test_params_equal_torchvision_module(name):
    (d, w0, wa, wm, g, se), _ = TORCHVISION[name]
    tv = getattr(torchvision.models, name)()
    ours = _regnet(d, w0, wa, wm, g, se)
    assert complexity(ours)["params"] == count_params(tv) == count_params(build(ours))


@pytest.mark.parametrize("name", REFERENCE)
def test_fvcore_conv_linear_equals_flops_minus_bias_adds(name):
    (d, w0, wa, wm, g, se), _, _ = REFERENCE[name]
    arch = _regnet(d, w0, wa, wm, g, se)
    v = verify_arch(arch)
    flops = complexity(arch)["flops"]
    assert v["params_torch"] == complexity(arch)["params"]
    if not se:  # only the classifier has a bias: fvcore's count is exactly flops - classes
        assert v["flops_fvcore_conv_linear"] == flops - 1000
    assert v["flops_fvcore_conv_linear"] == flops - v["bias_adds"]
    assert v["flops_fvcore"] > v["flops_fvcore_conv_linear"]  # BN and pooling on top


def test_torchvision_800mf_fvcore_conv_count():
    """fvcore on torchvision's regnet_x_800mf: conv 799,027,712, linear 672,000."""
    from fvcore.nn import FlopCountAnalysis

    tv = torchvision.models.regnet_x_800mf().eval()
    fa = FlopCountAnalysis(tv, torch.zeros(1, 3, 224, 224))
    fa.unsupported_ops_warnings(False)
    ops = fa.by_operator()
    ours = complexity(_regnet(16, 56, 35.73, 2.28, 16))["flops"]
    assert ops["conv"] + ops["linear"] == ours - 1000


def test_batch_equals_single_and_small_shapes():
    shape = Shape(1, 28, 10, 1)
    archs = [_regnet(13, 24, 36.44, 2.49, 8, se, shape) for se in (False, True)]
    for a in archs:
        cx = complexity_batch(np.array([a.ds] * 2), np.array([a.ws] * 2), np.array([a.bs] * 2),
                              np.array([a.gs] * 2), shape, a.block)
        single = complexity(a)
        assert (cx.flops[1], cx.params[1], cx.acts[1]) == tuple(single.values())
        v = verify_arch(a)
        assert v["params_torch"] == single["params"]
        assert v["flops_fvcore_conv_linear"] == single["flops"] - v["bias_adds"]


def test_module_runs_and_has_expected_output_shape():
    arch = _regnet(13, 24, 36.44, 2.49, 8, True, Shape(1, 28, 10, 1))
    out = build(arch)(torch.zeros(2, 1, 28, 28))
    assert out.shape == (2, 10)
