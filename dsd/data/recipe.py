"""Training recipes: the papers' defaults per data set, every field overridable.

One run trains under one recipe: the first train-batch writes it to train.toml and
later ones must match it, so an EDF never mixes recipes. A space may draw some fields per
model on purpose (`dsd.data.recipe_dims`): train.toml then holds the base recipe, and each
model replaces those fields with its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace

from dsd.errors import DsdError


def option(help: str, flag: str | None = None) -> dict:
    """A field's command-line option, as its metadata: its help text and, where it is not
    --FIELD-NAME, its flag (dsd.cli.train_options makes the options from them)."""
    return {"help": help} if flag is None else {"help": help, "flag": flag}


@dataclass(frozen=True)
class Recipe:
    """A field with an `option` is overridable from the command line (--epochs, ...)."""

    dataset: str
    epochs: int = field(default=10, metadata=option("Epochs per model."))
    batch_size: int = field(default=128, metadata=option("Training batch size."))
    lr: float = field(default=0.1, metadata=option("Base learning rate."))
    wd: float = field(default=5e-4, metadata=option("Weight decay."))
    momentum: float = field(default=0.9, metadata=option("SGD momentum."))
    nesterov: bool = True
    warmup_epochs: float = field(default=0.0, metadata=option("Linear warmup epochs."))
    warmup_factor: float = 0.1
    augment: str = field(default="flip-crop",  # flip-crop | none | inception
                         metadata=option("flip-crop, none or inception."))
    crop_pad: int = 4
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    precise_bn: int = field(default=2048, metadata=option(  # 0 = off
        "Training images for precise BN statistics before each evaluation (0 = off)."))
    zero_init_final_gamma: bool = field(default=False, metadata=option(
        "Zero the last BN gamma of every block.", "--zero-init-final-gamma/--no-zero-init-final-gamma"))
    train_subset: int = field(default=0, metadata=option(  # 0 = the whole training split
        "Seeded stratified subset of K training images."))
    test_subset: int = field(default=0, metadata=option("Seeded stratified subset of K held-out images."))
    subset_seed: int = 0
    eval_batch_size: int = 500

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def with_overrides(recipe: Recipe, **overrides) -> Recipe:
    """The recipe with every non-None override applied (checked for sense)."""
    names = {f.name for f in fields(Recipe)}
    vals = {k: v for k, v in overrides.items() if v is not None and k in names}
    r = replace(recipe, **vals)
    checks = [(r.epochs >= 1, "--epochs must be at least 1"),
              (r.batch_size >= 2, "--batch-size must be at least 2 (BatchNorm needs a batch)"),
              (r.lr > 0, "--lr must be positive"), (r.wd >= 0, "--wd must not be negative"),
              (r.augment in ("flip-crop", "none", "inception"),
               "--augment must be flip-crop, none or inception"),
              (r.train_subset >= 0 and r.test_subset >= 0, "subsets must not be negative"),
              (r.precise_bn >= 0, "--precise-bn takes a number of images (0 = off)")]
    for ok, msg in checks:
        if not ok:
            raise DsdError(msg)
    return r


def from_dict(d: dict) -> Recipe:
    names = {f.name for f in fields(Recipe)}
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
    return Recipe(**kw)
