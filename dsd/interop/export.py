"""One network out to the tools researchers train with: pycls, torchvision, timm, ONNX.

Each target gets the network in its own terms, or a `DsdError` saying in one line what the
tool cannot express and why. Every export is checked before anything is written: the
exported model's parameter count must equal dsd's analytic count (`complexity`), so a
network that would come out different is refused rather than written.

What `export` writes (PATH is `out`; a PATH without a suffix gets the target's own):

    pycls        PATH.yaml: a pycls config (with a recipe, in pycls's OPTIM/TRAIN/BN keys)
    torchvision  PATH.pth: the state dict (torch.save), PATH.json: the constructor's
    timm         arguments, PATH.py: a builder that needs only torch and the target library
    onnx         PATH.onnx: dsd's own module, checked against onnxruntime
    and, with a recipe, for every target but pycls: PATH.recipe.json (dsd's Recipe).

Sources: `from_published` (the pycls model zoo), `from_regnet` (six numbers), `from_run`
(a sampled model), or `Network(arch)` for any AnyNet. torch and the optional packages
(`pip install 'dsd[export]'`) are imported only inside the functions that need them.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from dsd.data.recipe import Recipe
from dsd.data.registry import default_recipe
from dsd.errors import DsdError
from dsd.model.arch import IMAGENET, Arch, Shape, regnet_arch
from dsd.model.blocks import BLOCKS
from dsd.model.complexity import complexity
from dsd.model.zoo import RegNetParams, find, published
from dsd.space.rebuild import arch_of, recipe_of
from dsd.store.recipe_file import read_for_run
from dsd.store.run import Run, open_run

TARGETS = ("pycls", "torchvision", "timm", "onnx")
SUFFIX = {"pycls": ".yaml", "torchvision": ".pth", "timm": ".pth", "onnx": ".onnx"}
INSTALL = "pip install 'dsd[export]'"


@dataclass(frozen=True)
class Network:
    """One network to export: its Arch and, when it came from them, its RegNet parameters
    (pycls and timm can then say it in six numbers)."""

    arch: Arch
    regnet: RegNetParams | None = None
    name: str = ""


@dataclass(frozen=True)
class Exported:
    target: str
    paths: tuple[Path, ...]
    params: int
    form: str  # what the target holds, in its own words ("pycls regnet", "timm RegNet", ...)


# --- sources ----------------------------------------------------------------------------

def from_published(name: str, shape: Shape = IMAGENET) -> Network:
    """A published pycls RegNet by name ("RegNetX-400MF"), at `shape` (ImageNet's by default)."""
    p = published(name)
    return Network(p.arch(shape), p, find(name))


def from_regnet(params: RegNetParams, shape: Shape = IMAGENET) -> Network:
    p = params
    return Network(p.arch(shape), p, f"RegNet d={p.depth} w0={p.w0} wa={p.wa} wm={p.wm} g={p.group_w}")


def from_run(run: Run | str | Path, model_id: int) -> Network:
    """Model `model_id` of a sampled run, at the run's shape; a model of a RegNet space keeps
    its six numbers where they rebuild exactly its stages."""
    r = run if isinstance(run, Run) else open_run(run)
    samples = r.samples().set_index("model_id", drop=False)
    if model_id not in samples.index:
        raise DsdError(f"{r.path} has no model {model_id} (ids {samples.index.min()}.."
                       f"{samples.index.max()})")
    row = samples.loc[model_id]
    arch = arch_of(r, row)
    return Network(arch, _row_regnet(row, arch), f"{r.path} model {model_id}")


def run_recipe(run: Run | str | Path, model_id: int | None = None) -> Recipe:
    """The recipe a run trains under: its train.toml, or before its first train-batch its data
    set's default (which train-batch would fix unless told otherwise); with `model_id`, that
    model's own, where the run's space draws recipe fields per model."""
    r = run if isinstance(run, Run) else open_run(run)
    rec = read_for_run(r)
    if rec is None:
        dataset = r.manifest().dataset
        if not dataset:
            raise DsdError(f"{r.path} has no recipe yet (train.toml) nor a data set to take the "
                           "default recipe of")
        rec = default_recipe(dataset)
    if model_id is None:
        return rec
    return recipe_of(r, rec, r.samples().set_index("model_id", drop=False).loc[model_id])


def _row_regnet(row, arch: Arch) -> RegNetParams | None:
    cols = ("depth", "w0", "wa", "wm", "g")
    if any(row.get(c) is None or row.get(c) != row.get(c) for c in cols):  # absent or NaN
        return None
    b = row.get("b")
    p = RegNetParams(int(row["depth"]), int(row["w0"]), float(row["wa"]), float(row["wm"]),
                     int(row["g"]), float(b) if b is not None and b == b else 1.0, arch.se)
    return p if _stages_of(p, arch) else None


def _stages_of(p: RegNetParams, arch: Arch) -> bool:
    """Whether the six numbers generate exactly this Arch's stages (at uniform strides)."""
    try:
        a = regnet_arch(p.depth, p.w0, p.wa, p.wm, p.group_w, p.b, shape=arch.shape)
    except DsdError:
        return False
    same = (a.ds, a.ws, a.bs, a.gs) == (arch.ds, arch.ws, arch.bs, arch.gs)
    return same and len(set(arch.strides)) == 1


# --- the one entry point ----------------------------------------------------------------

def export(target: str, net: Network, out: str | Path, recipe: Recipe | None = None) -> Exported:
    """Write `net` for `target` at `out` (see the module docstring for the files)."""
    if target not in TARGETS:
        raise DsdError(f"unknown export target {target!r}; use one of {', '.join(TARGETS)}")
    out = Path(out)
    out = out if out.suffix else out.with_suffix(SUFFIX[target])
    params = complexity(net.arch)["params"]
    if target == "pycls":
        _write_text(out, to_pycls_yaml(net, recipe))
        kind = "regnet" if _pycls_regnet(net) else "anynet"
        return Exported(target, (out,), params, f"pycls {kind} config")
    if target == "onnx":
        paths = [to_onnx(net.arch, out)]
        form = f"ONNX, input {_input_desc(net.arch.shape)}, checked with onnxruntime"
    else:
        args = torchvision_args(net.arch) if target == "torchvision" else timm_args(net, recipe)
        model = (build_torchvision if target == "torchvision" else build_timm)(args)
        _check_params(target, _count(model), params)
        if target == "timm":
            _check_timm_stages(model, net.arch)
        paths = _save_module(target, model, args, out, net.name or str(out.stem), params)
        form = "torchvision RegNet" if target == "torchvision" else "timm RegNet"
    if recipe is not None:
        paths.append(_write_text(out.with_suffix(".recipe.json"), _json(recipe.to_dict()) + "\n"))
    return Exported(target, tuple(paths), params, form)


def _check_params(target: str, theirs: int, ours: int) -> None:
    if theirs != ours:
        raise DsdError(f"the {target} export has {theirs:,} parameters but dsd counts {ours:,} for "
                       "this network: it would not be the same network, so nothing was written")


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _require(module: str, target: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        package = {"yaml": "pyyaml"}.get(module, module.split(".")[0])
        raise DsdError(f"the {target} export needs {package}: {INSTALL}") from None


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)  # a reader never sees half a file
    return path


def _input_desc(sh: Shape) -> str:
    return f"N x {sh.in_channels} x {sh.resolution} x {sh.resolution}"


def _se_ratio(arch: Arch) -> float:
    """The SE ratio the block really uses (0: no SE); y's 0 means its default 0.25."""
    blk = BLOCKS[arch.block]
    if "se_ratio" not in blk.reads:
        return 0.0
    return arch.se_ratio if arch.se_ratio > 0 else blk.default_se


def _refuse(tool: str, problems: list[str]) -> None:
    if problems:
        raise DsdError(f"{tool} cannot express this network: {'; '.join(problems)}")


def _xy_problems(arch: Arch, any_channels: bool) -> list[str]:
    """What the X/Y-only RegNets of torchvision and timm cannot take (timm: `any_channels`)."""
    sh, out = arch.shape, []
    if arch.block not in ("x", "y"):
        out.append(f"it has only the X/Y residual bottleneck block, not {arch.block}")
    channels_ok = any_channels or sh.in_channels == 3
    if arch.stem != "simple" or sh.stem_stride != 2 or not channels_ok:
        mine = f"stride {sh.stem_stride}" if arch.stem == "simple" else f"the {arch.stem} stem"
        need = "" if any_channels else " on 3 channels"
        mine += "" if any_channels else f" on {sh.in_channels} channel{'s' * (sh.in_channels != 1)}"
        out.append(f"its stem is a 3x3 conv of stride 2{need} (this network's: {mine})")
    if set(arch.ks) != {3}:
        out.append(f"its blocks have 3x3 convs (this network's kernels: {_csv(arch.ks)})")
    return out


def _csv(xs) -> str:
    return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in xs)


# --- pycls --------------------------------------------------------------------------------

PYCLS_BLOCKS = {"vanilla": "vanilla_block", "res_basic": "res_basic_block",
                "x": "res_bottleneck_block", "y": "res_bottleneck_block",
                "res_bottleneck_linear": "res_bottleneck_linear_block"}
# pycls's stem types as dsd (stem, stem stride): res_stem_cifar is dsd's simple stem at
# stride 1 (the same layers as dsd's cifar stem); res_stem_in ignores the stride.
PYCLS_STEMS = {"simple_stem_in": ("simple", 2), "res_stem_cifar": ("simple", 1),
               "res_stem_in": ("resnet", None)}
# pycls's own datasets; its cifar10 has splits train and test, not val.
PYCLS_DATASETS = {"cifar10": ("cifar10", "test"), "imagenet-folder": ("imagenet", "val")}
# pycls/core/config.py defaults, for the keys a config leaves out.
PYCLS_DEFAULTS = {"STEM_TYPE": "simple_stem_in", "STEM_W": 32, "BLOCK_TYPE": "res_bottleneck_block",
                  "SE_ON": False, "SE_R": 0.25, "HEAD_W": 0, "DEPTH": 10, "W0": 32, "WA": 5.0,
                  "WM": 2.5, "GROUP_W": 16, "BOT_MUL": 1.0, "STRIDE": 2}


def to_pycls_yaml(net: Network, recipe: Recipe | None = None) -> str:
    """A pycls config of the network: `MODEL.TYPE: regnet` where its RegNet numbers rebuild it
    in pycls, else `anynet` with per-stage lists. pycls's bottleneck multiplier is 1/b."""
    arch, sh = net.arch, net.arch.shape
    _refuse("pycls", _pycls_problems(arch))
    model: dict = {"TYPE": "anynet", "NUM_CLASSES": sh.num_classes}
    if arch.act != "relu":  # older pycls has no ACTIVATION_FUN key: written only when needed
        model["ACTIVATION_FUN"] = arch.act
    body = {"STEM_TYPE": _pycls_stem(arch), "STEM_W": arch.stem_w,
            "BLOCK_TYPE": PYCLS_BLOCKS[arch.block]}
    p = _pycls_regnet(net)
    if p is not None:
        model["TYPE"] = "regnet"
        body.update(DEPTH=p.depth, W0=p.w0, WA=float(p.wa), WM=float(p.wm), GROUP_W=p.group_w,
                    BOT_MUL=1.0 / p.b, STRIDE=arch.strides[0])
    else:
        body.update(DEPTHS=list(arch.ds), WIDTHS=list(arch.ws), STRIDES=list(arch.strides),
                    BOT_MULS=[1.0 / b for b in arch.bs], GROUP_WS=list(arch.gs))
    se = _se_ratio(arch)
    body["SE_ON"] = se > 0
    if se > 0:
        body["SE_R"] = float(se)
    if arch.head_w:
        body["HEAD_W"] = arch.head_w
    doc = {"MODEL": model, model["TYPE"].upper(): body,
           "TRAIN": {"IM_SIZE": sh.resolution}, "TEST": {"IM_SIZE": _pycls_test_size(sh, recipe)}}
    notes = _pycls_recipe(doc, recipe) if recipe is not None else []
    head = [f"# {net.name or 'a network'}, exported by `dsd export pycls`; "
            f"{complexity(arch)['params']:,} parameters."]
    text = "\n".join(head + [f"# {n}" for n in notes] + [_yaml(doc)]) + "\n"
    # The check: the network pycls builds from this text, counted as pycls counts it.
    _check_params("pycls", complexity(pycls_yaml_to_arch(text))["params"], complexity(arch)["params"])
    return text


def _pycls_problems(arch: Arch) -> list[str]:
    sh, out = arch.shape, []
    if arch.block not in PYCLS_BLOCKS:
        out.append(f"its AnyNet has no {arch.block} block (it has vanilla, res_basic, x/y and "
                   "res_bottleneck_linear)")
    if sh.in_channels != 3:
        out.append(f"it builds every stem on 3 input channels (this network takes {sh.in_channels})")
    if arch.stem == "simple" and sh.stem_stride not in (1, 2):
        out.append(f"its 3x3 stems have stride 1 or 2 (this network's: {sh.stem_stride})")
    if set(arch.ks) != {3}:
        out.append(f"its blocks have 3x3 convs (this network's kernels: {_csv(arch.ks)})")
    return out


def _pycls_stem(arch: Arch) -> str:
    if arch.stem == "resnet":
        return "res_stem_in"
    return "res_stem_cifar" if arch.stem == "cifar" or arch.shape.stem_stride == 1 else "simple_stem_in"


def _pycls_regnet(net: Network) -> RegNetParams | None:
    """The RegNet numbers to write as `MODEL.TYPE: regnet`, where pycls rebuilds the network
    from them; None: write per-stage lists (`anynet`)."""
    p = net.regnet
    if p is None or not _stages_of(p, net.arch):
        return None
    bot_mul = 1.0 / p.b  # pycls's RegNet asserts it is below 1 or a whole number
    return p if bot_mul < 1 or bot_mul % 1 == 0 else None


def _pycls_test_size(sh: Shape, recipe: Recipe | None) -> int:
    """pycls scales test images to TEST.IM_SIZE and center-crops TRAIN.IM_SIZE. dsd does the
    same (256/224) for image folders; its small data sets are evaluated uncropped."""
    folder = recipe.augment == "inception" if recipe is not None else sh.stem_stride == 2
    return int(round(sh.resolution * 256 / 224)) if folder else sh.resolution


def _pycls_recipe(doc: dict, r: Recipe) -> list[str]:
    """Add the recipe's pycls keys to doc; return what pycls has no key for (as comments)."""
    doc["OPTIM"] = {"BASE_LR": float(r.lr), "LR_POLICY": "cos", "MAX_EPOCH": int(r.epochs),
                    "MOMENTUM": float(r.momentum), "NESTEROV": bool(r.nesterov),
                    "WEIGHT_DECAY": float(r.wd), "WARMUP_EPOCHS": int(round(r.warmup_epochs)),
                    "WARMUP_FACTOR": float(r.warmup_factor)}
    doc["BN"] = {"ZERO_INIT_FINAL_GAMMA": bool(r.zero_init_final_gamma),
                 "USE_PRECISE_STATS": r.precise_bn > 0}
    if r.precise_bn > 0:
        doc["BN"]["NUM_SAMPLES_PRECISE"] = int(r.precise_bn)
    doc["TRAIN"]["BATCH_SIZE"] = int(r.batch_size)
    doc["TEST"]["BATCH_SIZE"] = int(r.eval_batch_size)
    notes = ["dsd steps the cosine every iteration, pycls once per epoch."]
    if r.dataset in PYCLS_DATASETS:
        name, split = PYCLS_DATASETS[r.dataset]
        doc["TRAIN"]["DATASET"], doc["TEST"]["DATASET"], doc["TEST"]["SPLIT"] = name, name, split
    else:
        notes.append(f"pycls has no {r.dataset} data set: set TRAIN/TEST.DATASET to one you "
                     "registered there.")
    if r.warmup_epochs != int(round(r.warmup_epochs)):
        notes.append(f"dsd warms up for {r.warmup_epochs:g} epochs; pycls counts whole epochs.")
    pad = f" (crop padding {r.crop_pad})" if r.augment == "flip-crop" else ""
    notes.append(f"dsd's augmentation {r.augment!r}{pad}, mean {_csv(r.mean)}, std {_csv(r.std)}: "
                 "pycls uses its data set's own.")
    if r.train_subset or r.test_subset:
        notes.append(f"dsd trained on subsets (train {r.train_subset}, test {r.test_subset}); "
                     "pycls uses whole splits.")
    return notes


def pycls_yaml_to_arch(text: str) -> Arch:
    """The Arch of a pycls anynet or regnet config file's text (see `pycls_cfg_to_arch`)."""
    return pycls_cfg_to_arch(_load_yaml(text))


def pycls_cfg_to_arch(doc: dict) -> Arch:
    """The Arch of a parsed pycls anynet or regnet config (pycls's defaults for keys it leaves
    out): a YAML file's mapping, or the `cfg` a pycls log (and so a sweep.json) records.

    The Arch is dsd's canonical one: res_stem_cifar reads as dsd's simple stem at stride 1,
    and a bottleneck block with SE at ratio 0.25 as a y block."""
    model = doc.get("MODEL") or {}
    kind = model.get("TYPE")
    if kind not in ("anynet", "regnet"):
        raise DsdError(f"pycls MODEL.TYPE {kind!r}: dsd reads anynet and regnet configs")
    sec = {**PYCLS_DEFAULTS, **(doc.get(kind.upper()) or {})}
    res = int((doc.get("TRAIN") or {}).get("IM_SIZE", 224))
    stem, stride = _from_pycls_stem(sec["STEM_TYPE"])
    shape = Shape(3, res, int(model.get("NUM_CLASSES", 10)), stride or (1 if res < 64 else 2))
    block, se_ratio = _from_pycls_block(sec)
    act = {"swish": "silu"}.get(model.get("ACTIVATION_FUN", "relu"), model.get("ACTIVATION_FUN", "relu"))
    if act not in ("relu", "silu"):
        raise DsdError(f"pycls MODEL.ACTIVATION_FUN {act!r}: dsd builds relu and silu networks")
    rest = dict(block=block, stem=stem, se_ratio=se_ratio, act=act, head_w=int(sec["HEAD_W"]))
    if kind == "regnet":
        a = regnet_arch(int(sec["DEPTH"]), int(sec["W0"]), float(sec["WA"]), float(sec["WM"]),
                        int(sec["GROUP_W"]), _inverse(sec["BOT_MUL"]), shape=shape,
                        stem_w=int(sec["STEM_W"]))
        return replace(a, strides=(int(sec["STRIDE"]),) * a.num_stages, **rest)
    ds = [int(d) for d in sec.get("DEPTHS") or []]
    # pycls's AnyNet builds the widths it is given: no width/group adjustment here.
    bms, gws = sec.get("BOT_MULS") or [1.0] * len(ds), sec.get("GROUP_WS") or [1] * len(ds)
    try:
        return Arch(tuple(ds), tuple(int(w) for w in sec.get("WIDTHS") or []),
                    tuple(_inverse(m) for m in bms), tuple(int(g) for g in gws),
                    stem_w=int(sec["STEM_W"]), shape=shape,
                    strides=tuple(int(s) for s in sec.get("STRIDES") or []), **rest)
    except ValueError as e:  # lists of different lengths
        raise DsdError(f"pycls ANYNET: {e}") from None


def _from_pycls_stem(name: str) -> tuple[str, int | None]:
    if name not in PYCLS_STEMS:
        raise DsdError(f"pycls stem {name!r}: dsd knows {', '.join(PYCLS_STEMS)}")
    return PYCLS_STEMS[name]


def _from_pycls_block(sec: dict) -> tuple[str, float]:
    by_name = {v: k for k, v in PYCLS_BLOCKS.items() if k != "y"}
    name = sec["BLOCK_TYPE"]
    if name not in by_name:
        raise DsdError(f"pycls block {name!r}: dsd knows {', '.join(by_name)}")
    block, se = by_name[name], float(sec["SE_R"]) if sec["SE_ON"] else 0.0
    if block == "x" and se > 0:
        return "y", (0.0 if se == BLOCKS["y"].default_se else se)
    return block, (se if "se_ratio" in BLOCKS[block].reads else 0.0)


def _inverse(bot_mul) -> float:
    """dsd's b from pycls's bottleneck multiplier 1/b; 12 significant digits undo the float
    rounding of 1/b, so b = 3 written as 0.333... reads back as exactly 3.0."""
    return float(f"{1.0 / float(bot_mul):.12g}")


def _load_yaml(text: str) -> dict:
    yaml = _require("yaml", "pycls")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise DsdError(f"not a YAML file: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise DsdError("a pycls config is a YAML mapping (MODEL:, ANYNET: ...)")
    return _decode(doc)


def _decode(v):
    """As yacs reads a config: strings that are Python literals become values ("5e-5")."""
    if isinstance(v, dict):
        return {k: _decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_decode(x) for x in v]
    if isinstance(v, str):
        try:
            return ast.literal_eval(v)
        except (ValueError, SyntaxError):
            return v
    return v


def _yaml(doc: dict, indent: int = 0) -> str:
    """Nested mappings of scalars and flat lists, in pycls's own config style."""
    lines = []
    for k, v in doc.items():
        if isinstance(v, dict):
            lines += [f"{' ' * indent}{k}:", _yaml(v, indent + 2)]
        else:
            lines.append(f"{' ' * indent}{k}: {_scalar(v)}")
    return "\n".join(lines)


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        # yacs refuses an int where pycls's default is a float; and YAML reads 5e-05 as a
        # string, 5.0e-05 as a float.
        r = repr(v)
        return r.replace("e", ".0e", 1) if "e" in r and "." not in r else r
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    return str(v)


# --- torchvision ----------------------------------------------------------------------------

def torchvision_args(arch: Arch) -> dict:
    """The arguments of torchvision's `RegNet(BlockParams(...), ...)` that build this network,
    with dsd's exact stage widths (not `BlockParams.from_init_params`, which rounds otherwise)."""
    problems = _xy_problems(arch, any_channels=False)
    if arch.head_w:
        problems.append(f"it has no conv before the pool (this network has one {arch.head_w} wide)")
    _refuse("torchvision's RegNet", problems)
    se = _se_ratio(arch)
    return {"block_params": {"depths": list(arch.ds), "widths": list(arch.ws),
                             "group_widths": list(arch.gs),
                             "bottleneck_multipliers": [1.0 / b for b in arch.bs],
                             "strides": list(arch.strides), "se_ratio": float(se) if se else None},
            "num_classes": arch.shape.num_classes, "stem_width": arch.stem_w, "activation": arch.act}


def build_torchvision(args: dict, device: str | None = None):
    """torchvision's RegNet from `torchvision_args` (device "meta" to count parameters cheaply)."""
    tv = _require("torchvision.models.regnet", "torchvision")
    import torch
    from torch import nn

    a = args
    with torch.device(device or "cpu"):
        return tv.RegNet(tv.BlockParams(**a["block_params"]), num_classes=a["num_classes"],
                         stem_width=a["stem_width"],
                         activation={"relu": nn.ReLU, "silu": nn.SiLU}[a["activation"]])


def to_torchvision(arch: Arch, device: str | None = None):
    """The torchvision RegNet of an X/Y network, its parameter count checked against dsd's."""
    model = build_torchvision(torchvision_args(arch), device)
    _check_params("torchvision", _count(model), complexity(arch)["params"])
    return model


# --- timm ---------------------------------------------------------------------------------

def timm_args(net: Network, recipe: Recipe | None = None) -> dict:
    """`RegNetCfg` fields and `RegNet` keywords of timm's RegNet for a network given by RegNet
    numbers: timm generates the stages itself from them and takes no per-stage lists."""
    arch, p = net.arch, net.regnet
    problems = _xy_problems(arch, any_channels=True)
    if p is None:
        problems.append("it takes RegNet numbers (depth, w0, wa, wm, g), not per-stage lists: "
                        "export a published name, `regnet` flags or a model of a RegNet space")
    elif not _stages_of(p, arch) or set(arch.strides) != {2}:
        problems.append("the network's RegNet numbers do not generate its stages at stride 2")
    if arch.num_stages != 4:
        problems.append(f"it has exactly 4 stages (this network: {arch.num_stages})")
    _refuse("timm's RegNet", problems)
    cfg = {"depth": p.depth, "w0": p.w0, "wa": float(p.wa), "wm": float(p.wm), "group_size": p.group_w,
           "bottle_ratio": 1.0 / p.b, "se_ratio": float(_se_ratio(arch)), "stem_width": arch.stem_w,
           "num_features": arch.head_w, "act_layer": arch.act}
    kw = {"in_chans": arch.shape.in_channels, "num_classes": arch.shape.num_classes}
    if recipe is not None:  # the recipe's init, in timm's own term
        kw["zero_init_last"] = bool(recipe.zero_init_final_gamma)
    return {"cfg": cfg, **kw}


def build_timm(args: dict, device: str | None = None):
    """timm's RegNet from `timm_args` (device "meta" to count parameters cheaply)."""
    tm = _require("timm.models.regnet", "timm")
    kw = {k: v for k, v in args.items() if k != "cfg"}
    return tm.RegNet(tm.RegNetCfg(**args["cfg"]), device=device, **kw)


def to_timm(net: Network, device: str | None = None):
    """timm's RegNet of a RegNet-parameterised X/Y network, its stages and parameter count
    checked against dsd's."""
    model = build_timm(timm_args(net), device)
    _check_params("timm", _count(model), complexity(net.arch)["params"])
    _check_timm_stages(model, net.arch)
    return model


def _check_timm_stages(model, arch: Arch) -> None:
    """timm generates the widths itself (in float32, adjusting groups its own way): insist it
    built the same (depth, width, group width) per stage."""
    got = []
    for i in range(arch.num_stages):
        blocks = list(getattr(model, f"s{i + 1}").children())
        conv2 = blocks[0].conv2.conv
        got.append((len(blocks), blocks[0].conv3.conv.out_channels, conv2.out_channels // conv2.groups))
    want = list(zip(arch.ds, arch.ws, arch.gs))
    if got != want:
        raise DsdError(f"timm generates the stages (depth, width, group width) {got} from these "
                       f"RegNet numbers, dsd (as pycls) {want}: nothing was written")


# --- saving torch modules -------------------------------------------------------------------

BUILDER = '''"""{name}: {what}, exported by `dsd export {target}` ({params:,} parameters).

    model = build()  # freshly initialised
    model = build("{pth}")  # with the exported state dict loaded
"""

import torch
{imports}

ARGS = {args}


def build(weights=None):
    {body}
    if weights is not None:
        model.load_state_dict(torch.load(weights, weights_only=True))
    return model
'''
BUILD_BODY = {  # target: (imports, the body's first lines, what it is)
    "torchvision": ("from torch import nn\nfrom torchvision.models.regnet import BlockParams, RegNet",
                    'act = {"relu": nn.ReLU, "silu": nn.SiLU}[ARGS["activation"]]\n'
                    '    model = RegNet(BlockParams(**ARGS["block_params"]), activation=act,\n'
                    '                   num_classes=ARGS["num_classes"], stem_width=ARGS["stem_width"])',
                    "a torchvision RegNet"),
    "timm": ("from timm.models.regnet import RegNet, RegNetCfg",
             'kw = {k: v for k, v in ARGS.items() if k != "cfg"}\n'
             '    model = RegNet(RegNetCfg(**ARGS["cfg"]), **kw)',
             "a timm RegNet"),
}


def _save_module(target: str, model, args: dict, out: Path, name: str, params: int) -> list[Path]:
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(out)
    imports, body, what = BUILD_BODY[target]
    py = BUILDER.format(name=name, what=what, target=target, params=params, pth=out.name,
                        imports=imports, args=_python_literal(args),
                        body=body)
    return [out, _write_text(out.with_suffix(".json"), _json(args) + "\n"),
            _write_text(out.with_suffix(".py"), py)]


def _python_literal(args: dict) -> str:
    """args as Python source, laid out as JSON is (pprint's layout is hard to read)."""
    words = {"null": "None", "true": "True", "false": "False"}
    return re.sub(r"\b(null|true|false)\b", lambda m: words[m[0]], _json(args))


def _json(obj) -> str:
    """Indented JSON with each list of numbers on one line."""
    text = json.dumps(obj, indent=4)
    return re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m[1]) + "]", text)


# --- ONNX ---------------------------------------------------------------------------------

ONNX_ATOL = ONNX_RTOL = 1e-4  # as numpy's allclose: a trained model's logits are larger


def to_onnx(arch: Arch, out: str | Path, model=None) -> Path:
    """dsd's module of `arch` (`model`, e.g. trained, or a fresh one) in eval mode as ONNX
    (torch.onnx's dynamo exporter; the batch size is free, channels and resolution are the
    arch's), written only once onnxruntime's output on a fixed input matches the module's
    within ONNX_ATOL + ONNX_RTOL * |output|."""
    for m in ("onnx", "onnxscript", "onnxruntime"):
        _require(m, "onnx")
    import torch

    from dsd.model.net import build, count_params

    model = (build(arch) if model is None else model).eval()
    _check_params("onnx", count_params(model), complexity(arch)["params"])
    sh, out = arch.shape, Path(out)
    x = torch.randn(2, sh.in_channels, sh.resolution, sh.resolution,
                    generator=torch.Generator().manual_seed(0))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.onnx")
    try:
        # One self-contained file (dsd's networks are far below protobuf's 2 GB).
        torch.onnx.export(model, (x,), tmp, input_names=["image"], output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True,
                          external_data=False, verbose=False)
        with torch.no_grad():
            want = model(x).numpy()
        _check_onnxruntime(tmp, x.numpy(), want)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _check_onnxruntime(path: Path, x, want) -> None:
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    if got.shape != want.shape or not np.allclose(got, want, rtol=ONNX_RTOL, atol=ONNX_ATOL):
        err = float(np.abs(got - want).max()) if got.shape == want.shape else float("nan")
        raise DsdError(f"onnxruntime's output differs from the torch module's by {err:.2g} "
                       f"(shapes {got.shape}, {want.shape}): nothing was written")
