"""The training options of `train-batch` and `sweep launch` (`study run` takes a few).

Each option is made from the field it sets: its help text, flag (where it is not
--FIELD-NAME), type and default are declared once, on dsd.train.jobs.TrainRequest or, for
a recipe override, on dsd.data.recipe.Recipe (whose options default to the run's recipe).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing

import typer

from dsd.data.recipe import Recipe
from dsd.train.jobs import TrainRequest

# The options in the order --help lists them.
ORDER = ("dataset", "data_dir", "download", "epochs", "lr", "wd", "batch_size", "momentum",
         "warmup_epochs", "augment", "precise_bn", "zero_init_final_gamma", "train_subset",
         "test_subset", "seed", "device", "step", "streams", "retry_failed", "lease")

# The fields with an option (dsd.data.recipe.option): the recipe's are overrides.
_RECIPE = {f.name: f for f in dataclasses.fields(Recipe) if "help" in f.metadata}
_REQUEST = {f.name: f for f in dataclasses.fields(TrainRequest) if "help" in f.metadata}
RECIPE_KEYS = tuple(name for name in ORDER if name in _RECIPE)


def _option(name: str) -> tuple[type, typer.models.OptionInfo]:
    """The field's type (without None) and its typer option."""
    recipe = name in _RECIPE
    f = _RECIPE[name] if recipe else _REQUEST[name]
    typ = typing.get_type_hints(Recipe if recipe else TrainRequest)[name]
    if isinstance(typ, types.UnionType):
        typ = next(t for t in typing.get_args(typ) if t is not type(None))
    flag = f.metadata.get("flag", "--" + name.replace("_", "-"))
    return typ, typer.Option(None if recipe else f.default, flag, help=f.metadata["help"])


# name: (type, typer option)
TRAIN_OPTIONS: dict[str, tuple[type, typer.models.OptionInfo]] = {name: _option(name) for name in ORDER}


def with_train_options(fn):
    """Add the training options to a command; it receives them as one dict `train`."""
    hints = typing.get_type_hints(fn)
    own = [p.replace(annotation=hints.get(p.name, p.annotation))
           for p in inspect.signature(fn).parameters.values() if p.name != "train"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=typ)
             for name, (typ, opt) in TRAIN_OPTIONS.items()]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        train = {k: kwargs.pop(k) for k in TRAIN_OPTIONS if k in kwargs}
        return fn(*args, train=train, **kwargs)

    params = own + extra
    wrapper.__signature__ = inspect.Signature(params)
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    del wrapper.__wrapped__  # typer must see the new signature, not fn's
    return wrapper


def recipe_overrides(train: dict) -> dict:
    return {k: v for k, v in train.items() if k in RECIPE_KEYS}


def train_request(train: dict, **extra) -> TrainRequest:
    """The options as the library's TrainRequest."""
    asked = {k: v for k, v in train.items() if k in _REQUEST}
    return TrainRequest(**asked, overrides=recipe_overrides(train), **extra)
