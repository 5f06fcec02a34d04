"""`dsd export`: pycls configs, torchvision and timm RegNets, ONNX, recipes, bad input."""

from __future__ import annotations

import re
import runpy

import pytest
import torch

from dsd.api import sample
from dsd.data.recipe import Recipe
from dsd.errors import DsdError
from dsd.interop.export import (
    Network,
    export,
    from_published,
    from_regnet,
    from_run,
    pycls_yaml_to_arch,
    to_onnx,
    to_pycls_yaml,
    to_timm,
    to_torchvision,
)
from dsd.model.arch import Shape, anynet_arch
from dsd.model.complexity import complexity
from dsd.model.net import build
from dsd.model.zoo import PUBLISHED, RegNetParams, find
from dsd.store.recipe_file import fix_for_run

yaml = pytest.importorskip("yaml")
SMALL = Shape(3, 32, 10, 2)  # small enough to run, and still a stride-2 stem on 3 channels


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs: a RegNetX and an AnyNetX (b in 1, 2, 4) at CIFAR's shape, an AnyNetX on digits."""
    d = tmp_path_factory.mktemp("runs")
    return {"regnetx": sample("regnetx", 2, d / "rx", dataset="cifar10", flops="10M:100M"),
            "anynetx": sample("anynetx_a", 3, d / "ax", dataset="cifar10", flops="10M:100M"),
            "digits": sample("anynetx_a", 2, d / "dg", dataset="digits", flops="100K:3M")}


# --- pycls ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PUBLISHED)
def test_published_pycls_config_round_trips(name):
    net = from_published(name)
    text = to_pycls_yaml(net)
    doc = yaml.safe_load(text)
    (d, w0, wa, wm, g), _ = PUBLISHED[name]
    assert doc["MODEL"]["TYPE"] == "regnet"
    assert [doc["REGNET"][k] for k in ("DEPTH", "W0", "WA", "WM", "GROUP_W")] == [d, w0, wa, wm, g]
    assert doc["REGNET"]["SE_ON"] is name.startswith("RegNetY")
    back = pycls_yaml_to_arch(text)
    assert back == net.arch
    assert complexity(back)["params"] == complexity(net.arch)["params"]


def test_bot_muls_are_pycls_multipliers_one_over_b():
    """pycls's bottleneck width is round(w * BOT_MUL): BOT_MULS must hold 1/b, read back as b."""
    arch = anynet_arch([1, 2, 2, 1], [64, 128, 256, 96], [2.0, 4.0, 1.0, 3.0], [8, 16, 32, 32],
                       shape=SMALL)
    text = to_pycls_yaml(Network(arch))
    bms = yaml.safe_load(text)["ANYNET"]["BOT_MULS"]
    assert bms[:3] == [0.5, 0.25, 1.0]
    assert [int(round(w * m)) for w, m in zip(arch.ws, bms)] == arch.bottleneck_widths()
    assert pycls_yaml_to_arch(text) == arch  # b = 3 survives 1/3 in decimal


def test_regnet_bottleneck_is_pycls_bot_mul_one_over_b():
    net = from_regnet(RegNetParams(13, 24, 36.44, 2.49, 8, b=2.0))
    text = to_pycls_yaml(net)
    assert yaml.safe_load(text)["REGNET"]["BOT_MUL"] == 0.5
    assert pycls_yaml_to_arch(text) == net.arch


# pycls's configs/archive/imagenet/anynet/X-50-32x4d: the ResNeXt-50 32x4d as an AnyNet.
RESNEXT50 = """
MODEL:
  TYPE: anynet
  NUM_CLASSES: 1000
ANYNET:
  STEM_TYPE: res_stem_in
  STEM_W: 64
  BLOCK_TYPE: res_bottleneck_block
  DEPTHS: [3, 4, 6, 3]
  WIDTHS: [256, 512, 1024, 2048]
  STRIDES: [1, 2, 2, 2]
  BOT_MULS: [0.5, 0.5, 0.5, 0.5]
  GROUP_WS: [4, 8, 16, 32]
TRAIN:
  IM_SIZE: 224
"""
# pycls's style of the dds baselines (SE_ON: True, 5e-5 as yacs reads it).
REGNETY400 = """
MODEL:
  TYPE: regnet
  NUM_CLASSES: 1000
REGNET:
  SE_ON: True
  DEPTH: 16
  W0: 48
  WA: 27.89
  WM: 2.09
  GROUP_W: 8
OPTIM:
  WEIGHT_DECAY: 5e-5
TRAIN:
  IM_SIZE: 224
"""


def test_reads_pycls_configs_as_pycls_builds_them():
    import torchvision

    x50 = pycls_yaml_to_arch(RESNEXT50)
    assert x50.bottleneck_widths() == [128, 256, 512, 1024]
    with torch.device("meta"):
        tv = torchvision.models.resnext50_32x4d()
    assert complexity(x50)["params"] == _params(tv) == 25_028_904
    assert pycls_yaml_to_arch(REGNETY400) == from_published("RegNetY-400MF").arch


# pycls/core/config.py's defaults of every key the export writes: yacs refuses unknown keys
# and a value of another type than the default's (an int for a float).
PYCLS_DEFAULTS = {
    "MODEL": {"TYPE": "", "NUM_CLASSES": 10, "ACTIVATION_FUN": "relu"},
    "ANYNET": {"STEM_TYPE": "simple_stem_in", "STEM_W": 32, "BLOCK_TYPE": "res_bottleneck_block",
               "DEPTHS": [], "WIDTHS": [], "STRIDES": [], "BOT_MULS": [], "GROUP_WS": [],
               "HEAD_W": 0, "SE_ON": False, "SE_R": 0.25},
    "REGNET": {"STEM_TYPE": "simple_stem_in", "STEM_W": 32, "BLOCK_TYPE": "res_bottleneck_block",
               "STRIDE": 2, "SE_ON": False, "SE_R": 0.25, "DEPTH": 10, "W0": 32, "WA": 5.0,
               "WM": 2.5, "GROUP_W": 16, "BOT_MUL": 1.0, "HEAD_W": 0},
    "BN": {"USE_PRECISE_STATS": True, "NUM_SAMPLES_PRECISE": 8192, "ZERO_INIT_FINAL_GAMMA": False},
    "OPTIM": {"BASE_LR": 0.1, "LR_POLICY": "cos", "MAX_EPOCH": 200, "MOMENTUM": 0.9,
              "NESTEROV": True, "WEIGHT_DECAY": 5e-4, "WARMUP_FACTOR": 0.1, "WARMUP_EPOCHS": 0},
    "TRAIN": {"DATASET": "", "SPLIT": "train", "BATCH_SIZE": 128, "IM_SIZE": 224},
    "TEST": {"DATASET": "", "SPLIT": "val", "BATCH_SIZE": 200, "IM_SIZE": 256},
}


def _yacs_merge(text: str):
    yacs = pytest.importorskip("yacs.config")
    cfg = yacs.CfgNode(PYCLS_DEFAULTS)
    cfg.merge_from_other_cfg(yacs.CfgNode.load_cfg(text))
    return cfg


def test_sampled_models_round_trip_through_pycls(runs):
    for kind, form in (("anynetx", "anynet"), ("regnetx", "regnet")):
        run = runs[kind]
        for model_id in run.samples()["model_id"]:
            net = from_run(run, int(model_id))
            text = to_pycls_yaml(net, Recipe("cifar10", warmup_epochs=2))
            assert pycls_yaml_to_arch(text) == net.arch
            cfg = _yacs_merge(text)
            assert cfg.MODEL.TYPE == form
            assert cfg[form.upper()].STEM_TYPE == "res_stem_cifar"  # 32 px: stride-1 stem
            assert (cfg.TRAIN.DATASET, cfg.TEST.SPLIT, cfg.OPTIM.WARMUP_EPOCHS) == ("cifar10", "test", 2)


def test_pycls_recipe_of_a_run_and_epochs_override(cli, runs, tmp_path):
    run = runs["regnetx"]
    fix_for_run(run, Recipe("cifar10", epochs=7, lr=0.123, wd=3e-5, batch_size=64))
    out = tmp_path / "best.yaml"
    for extra, epochs in (("--recipe",), 7), (("--epochs", "100"), 100):
        r = cli("export", "pycls", str(run.path), "--model-id", "1", *extra, "--out", str(out))
        assert r.returncode == 0, r.stderr
        assert str(out) in r.stdout and f"{complexity(from_run(run, 1).arch)['params']:,} params" in r.stdout
        cfg = _yacs_merge(out.read_text())
        assert (cfg.OPTIM.BASE_LR, cfg.OPTIM.WEIGHT_DECAY, cfg.OPTIM.MAX_EPOCH) == (0.123, 3e-5, epochs)
        assert (cfg.TRAIN.BATCH_SIZE, cfg.OPTIM.LR_POLICY, cfg.OPTIM.NESTEROV) == (64, "cos", True)
        assert isinstance(yaml.safe_load(out.read_text())["OPTIM"]["WEIGHT_DECAY"], float)


def test_pycls_refuses_one_channel_input(runs):
    with pytest.raises(DsdError, match="pycls cannot express this network: .*3 input channels"):
        to_pycls_yaml(from_run(runs["digits"], 0))


# --- torchvision and timm --------------------------------------------------------------------

@pytest.mark.parametrize("name", PUBLISHED)
def test_published_torchvision_params_equal_dsd(name):
    """BlockParams with dsd's exact widths: all 24, including the three whose own
    regnet_x_* constructors round widths otherwise (test_complexity.TORCHVISION)."""
    arch = from_published(name).arch
    model = to_torchvision(arch, device="meta")
    assert type(model).__module__ == "torchvision.models.regnet"
    assert _params(model) == complexity(arch)["params"]
    assert [len(s) for s in model.trunk_output] == list(arch.ds)


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_timm_params_equal_dsd(name):
    pytest.importorskip("timm")
    net = from_published(name)
    model = to_timm(net, device="meta")
    assert type(model).__module__ == "timm.models.regnet"
    assert _params(model) == complexity(net.arch)["params"]


def _copy_from_dsd(arch, other, proj_first: bool) -> None:
    """Load dsd's module's tensors into another tool's network, pairing them in order
    (torchvision registers each block's projection before its transform: `proj_first`)."""
    keys = list(other.state_dict())
    if proj_first:
        first = {}
        for i, k in enumerate(keys):
            m = re.match(r"(.*block\d+-\d+)\.", k)
            if m:
                first.setdefault(m[1], i)

        def rank(ik):
            m = re.match(r"(.*block\d+-\d+)\.(proj)?", ik[1])
            return (first[m[1]], m[2] is not None, ik[0]) if m else (ik[0], False, ik[0])
        keys = [k for _, k in sorted(enumerate(keys), key=rank)]
    ours = build(arch).eval()
    values = list(ours.state_dict().values())
    assert [tuple(v.shape) for v in values] == [tuple(other.state_dict()[k].shape) for k in keys]
    other.load_state_dict(dict(zip(keys, values)))
    x = torch.randn(2, 3, arch.shape.resolution, arch.shape.resolution,
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(other.eval()(x), ours(x), atol=1e-5, rtol=1e-4)


X200_B2 = RegNetParams(13, 24, 36.44, 2.49, 8, b=2.0)  # RegNetX-200MF's numbers with b = 2
FUNCTION_CASES = {
    "RegNetX-200MF": lambda: from_published("RegNetX-200MF", SMALL),
    "RegNetY-200MF": lambda: from_published("RegNetY-200MF", SMALL),
    "RegNet b=2": lambda: from_regnet(X200_B2, SMALL),
    "AnyNet b=2,4,1,3 with SE": lambda: Network(anynet_arch(
        [1, 2, 2, 1], [64, 128, 256, 96], [2.0, 4.0, 1.0, 3.0], [8, 16, 32, 32], se=True, shape=SMALL)),
}


@pytest.mark.parametrize("name", FUNCTION_CASES)
def test_torchvision_and_timm_compute_dsds_function(name):
    """Not only the parameter count: with dsd's weights, the same outputs."""
    net = FUNCTION_CASES[name]()
    _copy_from_dsd(net.arch, to_torchvision(net.arch), proj_first=True)
    if net.regnet is not None:
        pytest.importorskip("timm")
        _copy_from_dsd(net.arch, to_timm(net), proj_first=False)


@pytest.mark.parametrize("target", ["torchvision", "timm"])
def test_saved_module_rebuilds_from_its_builder(target, tmp_path):
    pytest.importorskip(target)
    net = from_published("RegNetY-200MF", SMALL)
    done = export(target, net, tmp_path / "y200", Recipe("cifar10", epochs=3))
    pth, js, py, rec = done.paths
    assert (pth.suffix, js.suffix, py.suffix, rec.name) == (".pth", ".json", ".py", "y200.recipe.json")
    model = runpy.run_path(str(py))["build"](str(pth))
    saved = torch.load(pth, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert _params(model) == done.params == complexity(net.arch)["params"]


def test_timm_refuses_per_stage_lists():
    arch = anynet_arch([1, 2, 4, 2], [32, 64, 128, 256], [1.0] * 4, [16] * 4)
    with pytest.raises(DsdError, match="timm's RegNet cannot express .* not per-stage lists"):
        to_timm(Network(arch))


# --- ONNX -----------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["RegNetX-200MF", "digits AnyNet"])
def test_onnx_matches_the_torch_module(which, runs, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    if which == "RegNetX-200MF":
        net = from_published(which, SMALL)
        model = build(net.arch).eval()
        path = to_onnx(net.arch, tmp_path / "net.onnx", model)
    else:  # through `export`, which builds the module itself: the same seed, the same weights
        net = from_run(runs["digits"], 0)
        torch.manual_seed(0)
        done = export("onnx", net, tmp_path / "net", Recipe("digits", epochs=3))
        torch.manual_seed(0)
        model = build(net.arch).eval()
        path = done.paths[0]
        assert [p.name for p in done.paths] == ["net.onnx", "net.recipe.json"]
        assert done.params == complexity(net.arch)["params"] == _params(model)
    sh = net.arch.shape
    x = torch.randn(3, sh.in_channels, sh.resolution, sh.resolution,  # not the export's batch size
                    generator=torch.Generator().manual_seed(1))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[1:] == [sh.in_channels, sh.resolution, sh.resolution]
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(x), atol=1e-4, rtol=1e-4)


# --- the command line -----------------------------------------------------------------------

def _one_line_error(r, *words: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


def test_cli_unknown_published_name(cli, tmp_path):
    r = cli("export", "torchvision", "RegNetX-999MF", "--out", str(tmp_path / "x"))
    _one_line_error(r, "RegNetX-999MF", "RegNetY-32GF")
    assert find("regnety-32gf") == "RegNetY-32GF"


def test_cli_model_id_not_in_run(cli, runs, tmp_path):
    r = cli("export", "onnx", str(runs["digits"].path), "--model-id", "7", "--out", str(tmp_path / "x"))
    _one_line_error(r, "no model 7", "ids 0..1")


def test_cli_block_torchvision_cannot_express(cli, tmp_path):
    r = cli("export", "torchvision", "anynet", "--block", "res_basic", "--depths", "2,2",
            "--widths", "64,128", "--out", str(tmp_path / "x"))
    _one_line_error(r, "torchvision's RegNet cannot express", "res_basic")
    assert not list(tmp_path.iterdir())


def test_cli_missing_optional_package(cli, tmp_path):
    shadow = tmp_path / "shadow" / "timm"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    r = cli("export", "timm", "RegNetX-200MF", "--out", str(tmp_path / "x"),
            env={"PYTHONPATH": str(shadow.parent)})
    _one_line_error(r, "pip install 'dsd[export]'")
