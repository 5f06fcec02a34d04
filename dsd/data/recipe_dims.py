"""Recipe fields a design space may draw per model, as NDS (Fig. 12) and pycls's
`cifar_optim` sweep draw the learning rate and weight decay: the recipe shapes error as
much as the architecture does.

A space declares them as `[params.lr]`, `[params.wd]`, ... with any distribution; each
model gets its own value (a scalar, stored in samples.parquet under the field's name) and
trains under the run's recipe (train.toml) with its drawn fields replaced. They change how
a network trains, never its shape or complexity.

A new drawable field is one entry in DRAWABLE (the name of a `Recipe` field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Drawable:
    integer: bool
    ok: Callable[[float], bool]   # a value the training loop accepts
    what: str                     # what `ok` asks, for the one-line error
    log: bool = False             # error against it reads best on a log axis


DRAWABLE: dict[str, Drawable] = {
    "lr": Drawable(False, lambda v: v > 0, "positive", log=True),
    "wd": Drawable(False, lambda v: v >= 0, "at least 0", log=True),
    "momentum": Drawable(False, lambda v: 0 <= v < 1, "in [0, 1)"),
    "epochs": Drawable(True, lambda v: v >= 1, "at least 1"),
    "warmup_epochs": Drawable(False, lambda v: v >= 0, "at least 0"),
}


def drawn_fields(space_table: Mapping | None) -> tuple[str, ...]:
    """The recipe fields a space table (as a run's manifest records it) draws, in
    DRAWABLE's order."""
    params = (space_table or {}).get("params")
    return tuple(k for k in DRAWABLE if isinstance(params, Mapping) and k in params)


def model_values(row, names: tuple[str, ...]) -> dict[str, int | float]:
    """One model's drawn fields from its samples row (a dict or a pandas row), typed as
    the recipe holds them."""
    out = {}
    for k in names:
        v = row[k]
        out[k] = int(v) if DRAWABLE[k].integer else float(v)
    return out


def log_scaled(name: str) -> bool:
    """Whether plots put a drawn field on a log axis (lr and wd: spread over decades)."""
    return name in DRAWABLE and DRAWABLE[name].log
