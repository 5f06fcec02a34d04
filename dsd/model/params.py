"""The architecture parameters, one row each: the vocabulary every other part reads.

A row says what a space may declare as `[params.NAME]` (`dsd.space.spec`), how the
sampler draws and stores it (`dsd.space.sampler`: per stage or once per network, its
dtype), which samples.parquet column holds it (`dsd.store.run`: a per-stage list column
such as `ds`, or a scalar column), which `Arch` field it fills, and what values it may
take. Recipe fields a space may draw (lr, wd, ...) are not architecture parameters: they
live in `dsd.data.recipe_dims`.

The rows are in the sampler's draw order (anynet): a parameter added later goes last, so
the numbers every existing space draws stay the same. samples.parquet's column order is a
file format, frozen below for the parameters that existed when it was fixed; later ones
follow in table order.

Pure Python: importing this module imports neither numpy nor torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

STAGE, NETWORK = "stage", "network"
PARQUET = {int: "int64", float: "float64", str: "string"}


@dataclass(frozen=True)
class ArchParam:
    name: str                     # the space file's [params.NAME]
    scope: str                    # STAGE: one value per stage (or shared), NETWORK: one per network
    type: type                    # int, float, or str (a name, drawn as an index into a list)
    default: object               # the value when the space neither draws nor fixes it (None: required)
    doc: str
    generators: tuple[str, ...] = ("anynet",)
    list_col: str | None = None   # samples.parquet's per-stage list column
    scalar_col: bool = True       # a value drawn once per network (or shared) is a scalar column
    scalar_stored: bool = True    # ... which samples.parquet stores (a shared s: as ss only)
    arch: str | None = None       # the Arch field (and complexity_batch keyword) it fills
    read_by: str = "block"        # "block": declared only where the block reads it; "net": by every block
    optional: bool = False        # drawn when declared, else fixed by the space (or the default)
    positive: bool = False        # every value must be > 0
    choice_only: str = ""         # drawn only from a choice: an example list, e.g. "[3, 5]"
    values_ok: Callable[[object], bool] | None = None  # a check of every choice value ...
    values_what: str = ""         # ... and what it asks for
    plural: str = ""              # what the values are called in messages ("kernels")

    @property
    def integer(self) -> bool:
        """Takes integer values only (a name's index is an int, but the name is not)."""
        return self.type is int

    @property
    def parquet(self) -> str:
        """The parquet type of its values (list items, or the scalar column)."""
        return PARQUET[self.type]


def _odd(v) -> bool:
    return isinstance(v, int) and v > 0 and bool(v % 2)


def _pos_int(v) -> bool:
    return isinstance(v, int) and v >= 1


PARAMS: tuple[ArchParam, ...] = (
    ArchParam("d", STAGE, int, None, "depth: blocks in the stage", list_col="ds", scalar_col=False,
              arch="ds", read_by="net", positive=True),
    ArchParam("w", STAGE, int, None, "width: output channels of the stage", list_col="ws",
              scalar_col=False, arch="ws", read_by="net", positive=True),
    ArchParam("b", STAGE, float, 1.0, "bottleneck ratio: inner width w / b",
              ("anynet", "regnet"), list_col="bs", arch="bs", positive=True),
    ArchParam("g", STAGE, int, 1, "group width of the grouped conv", ("anynet", "regnet"),
              list_col="gs", arch="gs", positive=True),
    ArchParam("groups", STAGE, int, None, "number of groups (in place of g): g = (w / b) / groups",
              positive=True),
    ArchParam("e", STAGE, float, 1.0, "expansion ratio (mb): inner width int(w_in * e)",
              list_col="es", arch="es"),
    ArchParam("k", STAGE, int, 3, "kernel of the spatial conv", list_col="ks", arch="ks",
              optional=True, choice_only="[3, 5]", values_ok=_odd,
              values_what="odd positive integers", plural="kernels"),
    ArchParam("s", STAGE, int, 2, "stride of the stage's first block", list_col="ss",
              scalar_stored=False, arch="strides", read_by="net", optional=True, choice_only="[1, 2]",
              values_ok=_pos_int, values_what="positive integers", plural="strides"),
    ArchParam("se_ratio", NETWORK, float, 0.0, "SE width / block input width; 0: the block's own",
              arch="se_ratio", optional=True),
    ArchParam("stem_w", NETWORK, int, 32, "stem width", arch="stem_w", read_by="net", optional=True),
    ArchParam("block", NETWORK, str, "x", "block type (dsd.model.blocks.BLOCKS)", arch="block",
              read_by="net", optional=True),
    ArchParam("act", NETWORK, str, "relu", "activation (dsd.model.layers.ACTS)", arch="act",
              read_by="net", optional=True),
    ArchParam("stem", NETWORK, str, "simple", "stem (dsd.model.blocks.STEMS)", arch="stem",
              read_by="net", optional=True),
    ArchParam("stages", NETWORK, int, 4, "number of stages", read_by="net", optional=True),
    ArchParam("depth", NETWORK, int, None, "RegNet: total blocks", ("regnet",), positive=True),
    ArchParam("w0", NETWORK, int, None, "RegNet: initial width", ("regnet",), positive=True),
    ArchParam("wa", NETWORK, float, None, "RegNet: width slope", ("regnet",)),
    ArchParam("wm", NETWORK, float, None, "RegNet: width multiplier", ("regnet",)),
)
BY_NAME: dict[str, ArchParam] = {p.name: p for p in PARAMS}

# What each generator's space declares, in order (error messages, Space.params). anynet's:
# its rows in table order, less the names ([params.block], ...) that the spec reads apart.
# regnet's: the RegNet paper's six numbers, in the order the sampler draws them.
GENERATOR_PARAMS: dict[str, tuple[str, ...]] = {
    "anynet": tuple(p.name for p in PARAMS if "anynet" in p.generators and p.type is not str),
    "regnet": ("depth", "w0", "wa", "wm", "g", "b"),
}

# samples.parquet's column order (a file format): frozen for today's parameters.
_LIST_ORDER = ("d", "w", "g", "b", "e", "k", "s")
_SCALAR_ORDER = ("b", "g", "e", "k", "s", "se_ratio", "stem_w", "block", "act", "stem", "stages",
                 "groups", "depth", "w0", "wa", "wm")


def _in_order(frozen: tuple[str, ...], rows) -> list[ArchParam]:
    rank = {n: i for i, n in enumerate(frozen)}
    return sorted(rows, key=lambda p: rank.get(p.name, len(frozen) + PARAMS.index(p)))


def per_stage() -> list[ArchParam]:
    """The per-stage parameters with a list column, in samples.parquet's column order."""
    return _in_order(_LIST_ORDER, [p for p in PARAMS if p.list_col])


def scalars() -> list[ArchParam]:
    """The parameters that may be a scalar column (drawn once per network, or shared), in
    samples.parquet's column order (names included: they are stored as strings)."""
    return _in_order(_SCALAR_ORDER, [p for p in PARAMS if p.scalar_col])


def list_cols() -> dict[str, str]:
    """{list column: parquet type of its items}, e.g. {"ds": "int64", ...}."""
    return {p.list_col: p.parquet for p in per_stage()}


def scalar_cols() -> dict[str, str]:
    """{scalar column: parquet type} of the numeric scalars (names are string columns)."""
    return {p.name: p.parquet for p in scalars() if p.type is not str and p.scalar_stored}


def name_params() -> tuple[str, ...]:
    """The parameters whose values are names (block, act, stem), in table order."""
    return tuple(p.name for p in PARAMS if p.type is str)


def stage_args() -> list[ArchParam]:
    """The per-stage values a block reads (`dsd.model.blocks.StageArgs`, by name), in table
    order: the Arch field (a tuple per stage) gives each stage's value."""
    return [p for p in PARAMS if p.scope == STAGE and p.read_by == "block" and p.arch]


def key_scalars() -> tuple[str, ...]:
    """The network-wide values that tell two networks with equal per-stage lists apart:
    those an Arch holds (a stage count is the lists' length; RegNet's numbers made them)."""
    return tuple(p.name for p in PARAMS if p.scope == NETWORK and p.arch)
