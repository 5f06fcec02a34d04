"""The NDS release (facebookresearch/nds) as a dsd run: the ICCV 2019 paper's own models.

One JSON file per design space: a list of records (or {"top": [...], "mid": [...]}), each
with `net` (`block_type`; per-stage lists `ds`, `ws`, `ss`, `bot_muls`, `num_gs` whose
index 0 describes the stem), `optim` (`base_lr`, `wd`, `max_ep`), `rng_seed`, `params`,
`flops` and per-epoch `train_ep_top1`, `test_ep_top1` (top-1 error, %) and
`train_ep_loss`. (The format as microsoft/nni's NDS loader reads it.)

Every record becomes one model: samples.parquet holds its architecture with dsd's exact
complexity and NDS's own params and flops beside it (`nds_params`, `nds_flops`; NDS adds 5
flops per conv output element); results hold one `ok` row per record with `error_min`
(best epoch) and `error_last` (last epoch). Records whose params differ from dsd's count
are reported by index: the network was not understood the same way.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dsd.errors import DsdError
from dsd.interop.runs import write_imported_run
from dsd.model.arch import Arch, Shape, anynet_arch
from dsd.model.complexity import complexity

BLOCKS = {"res_bottleneck_block": "x", "res_basic_block": "res_basic", "double_plain_block": "vanilla"}
SHAPES = {"cifar10": (Shape(3, 32, 10, 1), "cifar"), "imagenet": (Shape(3, 224, 1000, 2), "resnet")}


@dataclass
class NdsImport:
    run: Path
    records: int
    block: str
    dataset: str
    params_mismatch: list[tuple[int, int, int]] = field(default_factory=list)  # (index, NDS, dsd)
    recipes: int = 1
    skipped: list[tuple[int, str]] = field(default_factory=list)


def read_records(path: Path) -> list[dict]:
    """The records of one NDS file, refusing anything else with one line."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DsdError(f"no NDS file at {path}; pass one of the release's JSON files, "
                       "e.g. ResNet.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DsdError(f"{path}: not valid JSON ({e}); is the file truncated? download it again") from None
    if isinstance(data, dict) and "top" in data and "mid" in data:
        data = list(data["top"]) + list(data["mid"])
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise DsdError(f"{path}: expected a list of NDS records (objects with 'net', 'params', "
                       "'test_ep_top1', ...)")
    return data


def record_arch(rec: dict, dataset: str) -> Arch:
    """The network of one record (index 0 of every list is the stem)."""
    net = rec.get("net")
    if not isinstance(net, dict):
        raise ValueError("no 'net'")
    if "genotype" in net:
        raise ValueError("a NAS cell network (DARTS, ENAS, ...): dsd holds AnyNet-style networks only")
    block = BLOCKS.get(net.get("block_type"))
    if block is None:
        raise ValueError(f"block_type {net.get('block_type')!r} is not one of {', '.join(BLOCKS)}")
    ds, ws, ss = (list(net.get(k) or []) for k in ("ds", "ws", "ss"))
    if not (len(ds) == len(ws) == len(ss) >= 2):
        raise ValueError("ds, ws and ss need the stem plus one value per stage")
    n = len(ds) - 1
    muls = list(net.get("bot_muls") or [0.0] + [1.0] * n)[1:]
    groups = list(net.get("num_gs") or [1] * (n + 1))[1:]
    if len(muls) != n or len(groups) != n:
        raise ValueError("bot_muls and num_gs need one value per stage after the stem")
    bs = [1.0 / m if m else 1.0 for m in muls]
    gs = [max(1, int(round(w * m)) // g) if block == "x" else 1 for w, m, g in zip(ws[1:], muls, groups)]
    shape, stem = SHAPES[dataset]
    return anynet_arch(ds[1:], ws[1:], bs, gs, shape=shape, stem=stem, stem_w=int(ws[0]),
                       strides=tuple(int(s) for s in ss[1:]), block=block)


def _errors(rec: dict) -> tuple[list[float], float | None]:
    curve = [float(x) for x in rec.get("test_ep_top1") or []]
    loss = [float(x) for x in rec.get("train_ep_loss") or []]
    return curve, (loss[-1] if loss else None)


def _recipe(rec: dict, dataset: str) -> dict:
    o = rec.get("optim") or {}
    return {"dataset": dataset, "lr": o.get("base_lr"), "wd": o.get("wd"), "epochs": o.get("max_ep"),
            "source": "nds"}


def import_nds(path: str | Path, out: str | Path, dataset: str | None = None) -> NdsImport:
    """Write the NDS file at `path` as a new run at `out` (see the module doc)."""
    path, out = Path(path), Path(out)
    dataset = dataset or ("imagenet" if path.stem.endswith("_in") else "cifar10")
    if dataset not in SHAPES:
        raise DsdError(f"--dataset must be cifar10 or imagenet (NDS's two), got {dataset!r}")
    records = read_records(path)
    archs, rows, skipped = [], [], []
    for i, rec in enumerate(records):
        try:
            archs.append((i, record_arch(rec, dataset), rec))
        except (ValueError, TypeError, KeyError) as e:
            skipped.append((i, str(e)))
        except DsdError as e:  # dsd's own checks of the numbers (a zero width, ...)
            skipped.append((i, str(e)))
    if not archs:
        raise DsdError(f"{path}: none of its {len(records)} records is an AnyNet-style network "
                       f"dsd can hold (first: record {skipped[0][0]}: {skipped[0][1]})")
    blocks = Counter(a.block for _, a, _ in archs)
    stages = Counter(len(a.ds) for _, a, _ in archs)
    if len(blocks) > 1 or len(stages) > 1:
        raise DsdError(f"{path}: records of several block types or stage counts ({dict(blocks)}, "
                       f"{dict(stages)}); NDS keeps one design space per file")
    mismatch = []
    cols = {k: [] for k in ("model_id", "ds", "ws", "gs", "bs", "ss", "stem_w", "flops", "params",
                            "acts", "nds_params", "nds_flops")}
    recipes = set()
    for mid, (i, arch, rec) in enumerate(archs):
        cx = complexity(arch)
        if rec.get("params") is not None and int(rec["params"]) != cx["params"]:
            mismatch.append((i, int(rec["params"]), cx["params"]))
        for k, v in (("model_id", mid), ("ds", arch.ds), ("ws", arch.ws), ("gs", arch.gs),
                     ("bs", arch.bs), ("ss", arch.strides), ("stem_w", arch.stem_w),
                     ("flops", cx["flops"]), ("params", cx["params"]), ("acts", cx["acts"]),
                     ("nds_params", rec.get("params")), ("nds_flops", rec.get("flops"))):
            cols[k].append(v)
        curve, loss = _errors(rec)
        recipe = _recipe(rec, dataset)
        recipes.add(json.dumps(recipe, sort_keys=True))
        rows.append(_result_row(mid, i, rec, curve, loss, recipe, path))
    first = archs[0][1]
    run = write_imported_run(out, _space_table(path, first, cols), first.shape, dataset, cols, rows,
                             source=f"NDS release file {path.name}")
    return NdsImport(run, len(archs), first.block, dataset, mismatch, len(recipes), skipped)


def _result_row(mid: int, index: int, rec: dict, curve: list[float], loss, recipe: dict, path: Path) -> dict:
    finite = [e for e in curve if np.isfinite(e)]
    status = "ok" if curve and len(finite) == len(curve) else "diverged"
    return {"model_id": mid, "status": status,
            "error_min": min(finite) if finite else None, "error_last": curve[-1] if finite else None,
            "curve": curve, "train_loss": loss, "epochs": len(curve), "seed": rec.get("rng_seed"),
            "dataset": recipe["dataset"], "recipe": json.dumps(recipe, sort_keys=True),
            "device": "nds release", "worker": "dsd import nds",
            "finished_at": dt.datetime(2019, 5, 31, tzinfo=dt.UTC),  # the release's date (arXiv v1)
            "message": f"imported from {path.name}, record {index}"}


def _space_table(path: Path, arch: Arch, cols: dict) -> dict:
    """A space table under which every imported network rebuilds as it was recorded."""
    values = lambda k: sorted({int(x) if k != "b" else float(x) for row in cols[k + "s"] for x in row})  # noqa: E731
    table = {"name": f"nds-{path.stem}", "description": f"imported from the NDS release ({path.name})",
             "generator": "anynet", "block": arch.block, "stem": arch.stem, "stages": len(arch.ds),
             "strides": list(arch.strides), "stem_width": arch.stem_w,
             "params": {"d": {"dist": "choice", "values": values("d")},
                        "w": {"dist": "choice", "values": values("w")}}}
    if arch.block == "x":
        table["params"]["b"] = {"dist": "choice", "values": values("b")}
        table["params"]["g"] = {"dist": "choice", "values": values("g")}
    widths = sorted(set(cols["stem_w"]))
    if len(widths) > 1:
        table["params"]["stem_w"] = {"dist": "choice", "values": widths}
    return table
