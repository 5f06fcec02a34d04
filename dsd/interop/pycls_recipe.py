"""A pycls job's training recipe in dsd's terms, from its config (pycls/core/config.py).

dsd's `Recipe` fields are read from their pycls keys, with pycls's defaults for keys a config
leaves out; what the data set fixes beyond them (augmentation, normalisation) is dsd's
default for that data set, which follows pycls's. The pycls settings a `Recipe` has no field
for (schedule, label smoothing, mixup, EMA, ...) are kept beside it under their pycls names,
so that two jobs that differ only in them still count as two recipes.
"""

from __future__ import annotations

from dataclasses import fields, replace

from dsd.data.recipe import Recipe
from dsd.data.registry import DATASETS, default_recipe
from dsd.interop.export import PYCLS_DATASETS

# pycls's data set names as dsd's (export writes the other way).
DATASET_NAMES = {pycls: ours for ours, (pycls, _) in PYCLS_DATASETS.items()}
# Recipe field: (pycls key, pycls's default).
FIELDS = {"epochs": ("OPTIM.MAX_EPOCH", 200), "lr": ("OPTIM.BASE_LR", 0.1),
          "wd": ("OPTIM.WEIGHT_DECAY", 5e-4), "momentum": ("OPTIM.MOMENTUM", 0.9),
          "nesterov": ("OPTIM.NESTEROV", True), "warmup_epochs": ("OPTIM.WARMUP_EPOCHS", 0),
          "warmup_factor": ("OPTIM.WARMUP_FACTOR", 0.1), "batch_size": ("TRAIN.BATCH_SIZE", 128),
          "eval_batch_size": ("TEST.BATCH_SIZE", 200),
          "zero_init_final_gamma": ("BN.ZERO_INIT_FINAL_GAMMA", False)}
# pycls settings without a Recipe field, with pycls's defaults.
EXTRAS = {"OPTIM.OPTIMIZER": "sgd", "OPTIM.LR_POLICY": "cos", "OPTIM.MIN_LR": 0.0,
          "OPTIM.STEPS": [], "OPTIM.LR_MULT": 0.1, "OPTIM.DAMPENING": 0.0,
          "OPTIM.EMA_ALPHA": 1e-5, "OPTIM.EMA_UPDATE_PERIOD": 32,
          "TRAIN.LABEL_SMOOTHING": 0.0, "TRAIN.MIXUP_ALPHA": 0.0, "TRAIN.CUTMIX_ALPHA": 0.0,
          "TRAIN.AUGMENT": "", "TRAIN.MIXED_PRECISION": False, "TEST.IM_SIZE": 256,
          "BN.USE_CUSTOM_WEIGHT_DECAY": False, "BN.CUSTOM_WEIGHT_DECAY": 0.0}


def dataset_name(cfg: dict) -> str:
    """dsd's name of the job's training set (pycls's own name where dsd has none)."""
    name = str(_get(cfg, "TRAIN.DATASET", "") or "unknown")
    return DATASET_NAMES.get(name, name)


def pycls_recipe(cfg: dict) -> tuple[Recipe, dict]:
    """The job's Recipe, and its pycls settings without a Recipe field (`pycls.KEY`)."""
    dataset = dataset_name(cfg)
    base = default_recipe(dataset) if dataset in DATASETS else Recipe(dataset)
    kinds = {f.name: type(getattr(base, f.name)) for f in fields(Recipe)}
    vals = {k: kinds[k](_get(cfg, key, default)) for k, (key, default) in FIELDS.items()}
    precise = bool(_get(cfg, "BN.USE_PRECISE_STATS", True))
    vals["precise_bn"] = int(_get(cfg, "BN.NUM_SAMPLES_PRECISE", 8192)) if precise else 0
    extras = {f"pycls.{k}": _get(cfg, k, default) for k, default in EXTRAS.items()}
    return replace(base, **vals), extras


def _get(cfg: dict, key: str, default):
    section, name = key.split(".")
    sec = cfg.get(section)
    return sec.get(name, default) if isinstance(sec, dict) else default
