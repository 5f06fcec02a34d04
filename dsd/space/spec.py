"""Declared design spaces: TOML files, validated, with `extends` resolved.

A space file names its generator (`anynet`: per-stage d, w, b, g; `regnet`: the six
RegNet numbers), its block type (x, or y with squeeze-excitation), its number of stages,
how each parameter is drawn (per stage, or `shared`: drawn once and copied to every
stage), ordering constraints (rejection conditions, never sorting), and optionally a
default flops window, and recipe fields drawn per model (`dsd.data.recipe_dims`). See
spaces/README.md for the format.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

from dsd.data.recipe import Recipe
from dsd.data.recipe_dims import DRAWABLE
from dsd.errors import DsdError
from dsd.model.layers import ACTS
from dsd.model.params import BY_NAME, NETWORK, PARAMS, STAGE
from dsd.model.params import GENERATOR_PARAMS as GENERATOR_PARAMS
from dsd.space.distributions import KINDS, Dist

# What each generator declares, what every parameter may take, and which parameters a block
# must read to be declared: the parameter table (dsd.model.params).
TOP_KEYS = {"name", "description", "extends", "generator", "block", "stages", "stem_width",
            "flops", "params", "constraints", "stem", "strides", "kernels", "act", "se_ratio",
            "head_width"}
# `groups` (the number of groups, as the ICCV 2019 spaces draw it) replaces `g` (the group
# width) where a block reads g: the group width is then the bottleneck width / groups.
GROUP_COUNT = "groups"
# One value per network; recipe fields a space draws ([params.lr], ...) are scalars too.
SCALAR_PARAMS = (*(p.name for p in PARAMS if p.scope == NETWORK), *DRAWABLE)
PARAM_KEYS = {"dist", "low", "high", "q", "values", "shared", "same_as"}
ORDERINGS = ("nondecreasing", "nonincreasing")


@dataclass(frozen=True)
class Param:
    name: str
    dist: Dist
    shared: bool = False
    same_as: str | None = None  # tied: takes the drawn value of that parameter


@dataclass(frozen=True)
class Space:
    name: str
    description: str
    generator: str
    block: str                       # the block type; the first of `blocks` when drawn
    stages: int                      # the most stages a network has (per-stage arrays' width)
    stem_width: int
    params: dict[str, Param]
    constraints: dict[str, str]
    flops: str | None
    source: str
    table: dict = field(repr=False, compare=False, default_factory=dict)
    stem: str = "simple"
    strides: tuple[int, ...] = ()
    kernels: tuple[int, ...] = ()
    act: str = "relu"
    se_ratio: float = 0.0
    head_width: int = 0
    blocks: tuple[str, ...] = ()     # drawn block types ([params.block]); empty when fixed
    acts: tuple[str, ...] = ()       # drawn activations ([params.act]); empty when fixed
    stems: tuple[str, ...] = ()      # drawn stems ([params.stem]); empty when fixed

    @property
    def se(self) -> bool:
        """Squeeze-excitation: the block has it by default (y), or an SE ratio asks for it."""
        from dsd.model.blocks import BLOCKS

        block = BLOCKS.get(self.block)
        return (block is not None and block.default_se > 0) or self.se_ratio > 0

    @property
    def stage_counts(self) -> tuple[int, ...]:
        """Every stage count a network of the space may have ([params.stages], or `stages`)."""
        p = self.params.get("stages")
        return tuple(sorted(int(v) for v in p.dist.values)) if p else (self.stages,)

    def shape_kwargs(self) -> dict:
        """What every network of the space shares besides its drawn numbers (Arch fields)."""
        return {"block": self.block, "stem": self.stem, "stem_w": self.stem_width,
                "strides": self.strides or (2,) * self.stages,
                "ks": self.kernels or (3,) * self.stages, "act": self.act,
                "se_ratio": self.se_ratio, "head_w": self.head_width}


def from_table(table: dict, source: str) -> Space:
    """A space from an already resolved table (as a run's manifest stores it)."""
    return _validate(dict(table), Path(source))


def with_overrides(space: Space, **keys) -> Space:
    """The space with top-level keys replaced (a study's strides, say), validated again;
    the run's manifest then records the replaced table, so its networks rebuild as drawn."""
    return from_table(dict(space.table, **{k: v for k, v in keys.items() if v is not None}),
                      space.source)


def configurations(space: Space) -> int:
    """Number of distinct drawn configurations, before constraints and windows (exact)."""
    total = 0
    for stages in space.stage_counts:  # a network of s stages draws s values per stage param
        part = 1
        for p in space.params.values():
            if p.same_as or p.name == "stages":
                continue
            reps = 1 if (p.shared or space.generator == "regnet") else stages
            part *= int(p.dist.count()) ** reps
        total += part
    return total


def describe(space: Space) -> dict:
    """What `dsd spaces list/show --json` print: the space as data, counts exact."""
    kw = space.shape_kwargs()
    return {"name": space.name, "description": space.description, "source": space.source,
            "generator": space.generator, "blocks": list(space.blocks or (space.block,)),
            "stages": list(space.stage_counts), "stem": list(space.stems or (space.stem,)),
            "stem_width": space.stem_width, "strides": list(kw["strides"]),
            "kernels": list(kw["ks"]), "act": list(space.acts or (space.act,)),
            "se_ratio": space.se_ratio, "default_flops": space.flops,
            "shared": [k for k, p in space.params.items()
                       if p.shared and space.generator == "anynet" and k not in SCALAR_PARAMS],
            "constraints": dict(space.constraints), "recipe": drawn_recipe(space),
            "params": {k: {"distribution": "same as " + p.same_as if p.same_as else p.dist.describe(),
                           "values": p.dist.count()} for k, p in space.params.items()},
            "configurations": configurations(space)}


def drawn_recipe(space: Space) -> list[str]:
    """The recipe fields the space draws per model ([params.lr], ...), in DRAWABLE's order."""
    return [k for k in DRAWABLE if k in space.params]


def all_files() -> list[Path]:
    """Every space `dsd spaces list` shows: ./spaces/*.toml, then the built-in ones."""
    local = sorted(Path("spaces").glob("*.toml")) if Path("spaces").is_dir() else []
    names = {p.stem for p in local}
    return local + [p for p in sorted(builtin_dir().glob("*.toml")) if p.stem not in names]


def builtin_dir() -> Path:
    """The built-in space files: package data when installed, ../spaces in a checkout."""
    installed = Path(str(resources.files("dsd"))) / "builtin_spaces"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "spaces"  # editable install: the source


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


def find(name_or_path: str, near: Path | None = None) -> Path:
    """A space file: an existing path, a file beside `near`, or a built-in name."""
    p = Path(name_or_path)
    candidates = [p] if p.suffix == ".toml" else []
    if near is not None:
        candidates.append(near / f"{name_or_path}.toml")
    candidates += [Path(f"spaces/{name_or_path}.toml"), builtin_dir() / f"{name_or_path}.toml"]
    for c in candidates:
        if c.is_file():
            return c
    raise DsdError(f"no space named {name_or_path!r}: not a file, and not one of the built-in "
                   f"spaces ({', '.join(builtin_names())}); `dsd spaces list` shows them")


def load(name_or_path: str) -> Space:
    path = find(name_or_path)
    table = _resolve(path, [])
    return _validate(table, path)


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise DsdError(f"{path}: not valid TOML ({e}); fix the syntax") from None


def _resolve(path: Path, stack: list[Path]) -> dict:
    """The file's table merged over its `extends` chain (child keys win)."""
    real = path.resolve()
    if real in stack:
        chain = " -> ".join(p.stem for p in stack + [real])
        raise DsdError(f"{path}: key 'extends' forms a cycle ({chain}); remove one link")
    table = _read(path)
    parent_name = table.pop("extends", None)
    if parent_name is None:
        return table
    if not isinstance(parent_name, str):
        raise DsdError(f"{path}: key 'extends' must be a space name or path (a string)")
    try:
        parent_path = find(parent_name, near=path.parent)
    except DsdError as e:
        raise DsdError(f"{path}: key 'extends': {e}") from None
    return _merge(_resolve(parent_path, stack + [real]), table)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def _fail(path: Path, key: str, what: str) -> DsdError:
    return DsdError(f"{path}: key '{key}': {what}")


def _get(t: dict, key: str, typ, path: Path, prefix: str = "", default=None):
    if key not in t:
        if default is None:
            raise _fail(path, prefix + key, f"missing; add `{key} = ...`")
        return default
    v = t[key]
    ok = isinstance(v, typ) and not (typ in (int, (int, float)) and isinstance(v, bool))
    if not ok:
        name = {str: "a string", int: "an integer", bool: "true or false"}.get(typ, "a number")
        raise _fail(path, prefix + key, f"expected {name}, got {v!r}")
    return v


def _validate(t: dict, path: Path) -> Space:
    unknown = sorted(set(t) - TOP_KEYS)
    if unknown:
        raise _fail(path, unknown[0], f"unknown key; allowed keys are {', '.join(sorted(TOP_KEYS))}")
    gen = _get(t, "generator", str, path, default="anynet")
    if gen not in GENERATOR_PARAMS:
        raise _fail(path, "generator", f"unknown generator {gen!r}; use 'anynet' or 'regnet'")
    from dsd.model.blocks import BLOCKS, STEMS

    block = _get(t, "block", str, path, default="x")
    if block not in BLOCKS:
        raise _fail(path, "block", f"unknown block {block!r}; use one of {', '.join(BLOCKS)}")
    stem = _get(t, "stem", str, path, default="simple")
    if stem not in STEMS:
        raise _fail(path, "stem", f"unknown stem {stem!r}; use one of {', '.join(STEMS)}")
    stages = _stage_count(t, path)
    strides = _per_stage(t, "strides", stages, path, lambda v: v >= 1, "at least 1")
    kernels = _per_stage(t, "kernels", stages, path, lambda v: v >= 1 and v % 2 == 1, "odd")
    act = _get(t, "act", str, path, default="relu")
    if act not in ACTS:
        raise _fail(path, "act", f"unknown activation {act!r}; use relu or silu")
    se_ratio = float(_get(t, "se_ratio", (int, float), path, default=0.0))
    if not 0 <= se_ratio < 1:
        raise _fail(path, "se_ratio", "must be in [0, 1): SE width / block input width")
    pt = dict(t.get("params", {})) if isinstance(t.get("params", {}), dict) else t.get("params")
    named = isinstance(pt, dict)
    blocks = _drawn_names(pt.pop("block", None), "block", BLOCKS, gen, path) if named else ()
    acts = _drawn_names(pt.pop("act", None), "act", ACTS, gen, path) if named else ()
    stems = _drawn_names(pt.pop("stem", None), "stem", STEMS, gen, path) if named else ()
    recipe = _recipe_params(pt, path) if named else {}
    block, act = blocks[0] if blocks else block, acts[0] if acts else act
    stem = stems[0] if stems else stem
    params = _params(pt, gen, blocks or (block,), path)
    for name, names in (("block", blocks), ("act", acts), ("stem", stems)):  # an index into names
        if names:
            params[name] = Param(name, Dist("choice", values=tuple(range(len(names)))), True)
    params.update(recipe)
    # A drawn k, se_ratio or stem_w overrides the fixed key (a parent file may set it).
    own_se = [b for b in (blocks or (block,)) if BLOCKS[b].default_se]  # a block with its own SE
    if "se_ratio" in params and own_se:
        raise _fail(path, "params.se_ratio", f"the {own_se[0]} block fixes SE at "
                    f"{BLOCKS[own_se[0]].default_se:g}; draw se_ratio with block = \"x\" (0 draws no SE)")
    constraints = _constraints(t.get("constraints", {}), gen, params, path)
    flops = _get(t, "flops", str, path, default="") or None
    if flops is not None:
        from dsd.sizes import parse_window
        try:
            parse_window(flops)
        except DsdError as e:
            raise _fail(path, "flops", str(e)) from None
    return Space(
        name=_get(t, "name", str, path, default=path.stem),
        description=_get(t, "description", str, path, default=""),
        generator=gen, block=block, stages=stages,
        stem_width=_get(t, "stem_width", int, path, default=32),
        params=params, constraints=constraints, flops=flops, source=str(path), table=t,
        stem=stem, strides=strides, kernels=kernels, act=act, se_ratio=se_ratio,
        head_width=_get(t, "head_width", int, path, default=0), blocks=blocks, acts=acts,
        stems=stems,
    )


def _stage_count(t: dict, path: Path) -> int:
    """The per-stage arrays' width: `stages`, or the largest count [params.stages] draws
    (strides and kernels then list that many; a network of s stages uses the first s)."""
    drawn = t.get("params", {}).get("stages") if isinstance(t.get("params"), dict) else None
    if drawn is None:
        stages = _get(t, "stages", int, path, default=4)
        if not 1 <= stages <= 5:
            raise _fail(path, "stages", "must be between 1 and 5")
        return stages
    vals = drawn.get("values") if isinstance(drawn, dict) else None
    if not (isinstance(drawn, dict) and drawn.get("dist") == "choice" and isinstance(vals, list)
            and vals and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5
                             for v in vals)):
        raise _fail(path, "params.stages", 'draw the stage count with dist = "choice" and '
                    "values between 1 and 5, e.g. values = [3, 4]")
    if "stages" in t and t["stages"] != max(vals):
        raise _fail(path, "stages", f"is {t['stages']!r} but [params.stages] draws up to "
                    f"{max(vals)}; remove `stages` (the largest drawn count is used)")
    return max(vals)


def _drawn_names(t, what: str, known, gen: str, path: Path) -> tuple[str, ...]:
    """[params.block], [params.act] or [params.stem]: a choice of names, one per network."""
    if t is None:
        return ()
    key = f"params.{what}"
    if gen != "anynet":
        raise _fail(path, key, f"{what} is drawn only by the anynet generator")
    vals = t.get("values") if isinstance(t, dict) else None
    example = ", ".join(f'"{k}"' for k in list(known)[:2])
    if not (isinstance(t, dict) and t.get("dist") == "choice" and isinstance(vals, list) and vals
            and all(isinstance(v, str) for v in vals)):
        raise _fail(path, key, f'draw it with dist = "choice" and values = [{example}]')
    unknown = [v for v in vals if v not in known]
    if unknown or len(set(vals)) < len(vals):
        raise _fail(path, key + ".values", f"unknown or repeated {what} "
                    f"{unknown[0] if unknown else vals}; use names from {', '.join(known)}")
    return tuple(vals)


def _per_stage(t: dict, key: str, stages: int, path: Path, ok, what: str) -> tuple[int, ...]:
    v = t.get(key)
    if v is None:
        return ()
    if not (isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)):
        raise _fail(path, key, f"expected a list of integers, one per stage, got {v!r}")
    if len(v) != stages:
        raise _fail(path, key, f"has {len(v)} values for {stages} stages; give one per stage")
    if not all(ok(x) for x in v):
        raise _fail(path, key, f"every value must be {what}, got {v}")
    return tuple(v)


def _params(pt: dict, gen: str, blocks: tuple[str, ...], path: Path) -> dict[str, Param]:
    from dsd.model.blocks import BLOCKS

    block = "/".join(blocks)
    if not isinstance(pt, dict):
        raise _fail(path, "params", "must be a table of [params.NAME] sections")
    need = GENERATOR_PARAMS[gen]
    if gen == "anynet":  # b, g, e only where the block reads them
        reads = tuple(dict.fromkeys(r for b in blocks for r in BLOCKS[b].reads))
        if GROUP_COUNT in pt and "g" in pt:
            raise _fail(path, f"params.{GROUP_COUNT}", "declare either g (the group width) or "
                        "groups (the number of groups), not both")
        if "g" in reads and GROUP_COUNT in pt:
            reads = tuple(GROUP_COUNT if r == "g" else r for r in reads)
        # A parameter that the block reads is declared exactly where the block reads it (and
        # an optional one may be left out); one every block reads, always (when required).
        need = tuple(k for k in need if (BY_NAME[k].read_by == "net" or k in reads)
                     and (not BY_NAME[k].optional or k in pt))
        for k in pt:
            if k in GENERATOR_PARAMS[gen] and BY_NAME[k].read_by == "block" and k not in reads:
                stage = ", ".join(r for r in reads if r in BY_NAME and BY_NAME[r].scope == STAGE)
                raise _fail(path, f"params.{k}", f"the {block} block does not read '{k}'; remove "
                            f"[params.{k}] (it reads {stage})")
    for k in pt:
        if k not in need:
            raise _fail(path, f"params.{k}", f"unknown parameter for generator '{gen}'; "
                        f"its parameters are {', '.join(need)}, and the recipe fields it may "
                        f"draw are {', '.join(DRAWABLE)}")
    missing = [k for k in need if k not in pt]
    if missing:
        raise _fail(path, f"params.{missing[0]}", "missing; every parameter of the generator "
                    f"'{gen}' ({', '.join(need)}) needs a [params.{missing[0]}] section")
    drawn = {k: _param(k, pt[k], gen, path) for k in need if not _tied(pt[k])}
    tied = {k: _tie(k, pt[k], drawn, path) for k in need if _tied(pt[k])}
    return {k: drawn.get(k) or tied[k] for k in need}


def _recipe_params(pt: dict, path: Path) -> dict[str, Param]:
    """[params.lr], [params.wd], ...: recipe fields drawn once per network (removed from
    `pt`). They change how a network trains, never its shape or complexity, so any
    generator may draw them; every value the distribution can give must suit the field."""
    recipe_fields = {f.name for f in fields(Recipe) if f.name != "dataset"}
    out = {}
    for name in [k for k in pt if k in recipe_fields]:
        key = f"params.{name}"
        if name not in DRAWABLE:
            raise _fail(path, key, f"the recipe field '{name}' is not drawn per model (a space may "
                        f"draw {', '.join(DRAWABLE)}); set it for the whole run with train-batch")
        t = pt.pop(name)
        if isinstance(t, dict) and "same_as" in t:
            raise _fail(path, key + ".same_as", "recipe fields are drawn on their own, not tied")
        p = _param(name, t, "anynet", path)
        rule = DRAWABLE[name]
        if rule.integer and not p.dist.is_integer:
            raise _fail(path, key + ".dist", f"'{name}' takes integer values: use integer bounds "
                        "and q, or a choice of integers")
        for bound, v in zip(("low", "high"), p.dist.reach()):
            if not rule.ok(v):
                where = key + (".values" if p.dist.kind == "choice" else f".{bound}")
                raise _fail(path, where, f"'{name}' must be {rule.what}, but "
                            f"{p.dist.describe()} can draw {v:g}")
        out[name] = Param(name, p.dist, shared=True)
    return out


def _tied(t) -> bool:
    return isinstance(t, dict) and "same_as" in t


def _tie(name: str, t: dict, drawn: dict[str, Param], path: Path) -> Param:
    """`same_as = "w0"`: the parameter takes the drawn value of another one (the RegNet
    paper's w0 = wa variant). It overrides distribution keys a parent file may set."""
    key = f"params.{name}.same_as"
    target = t["same_as"]
    if not isinstance(target, str) or target == name:
        raise _fail(path, key, "names another parameter of the space, e.g. same_as = \"w0\"")
    if target not in drawn:
        raise _fail(path, key, f"{target!r} is not a drawn parameter of this space (tie to one "
                    f"of {', '.join(drawn)}; ties do not chain)")
    src = drawn[target]
    if name in BY_NAME and BY_NAME[name].integer and not src.dist.is_integer:
        raise _fail(path, key, f"'{name}' must take integer values, but {target!r} does not")
    return Param(name, src.dist, src.shared, target)


def _param(name: str, t: dict, gen: str, path: Path) -> Param:
    pre = f"params.{name}."
    row = BY_NAME.get(name)  # None for a recipe field
    if not isinstance(t, dict):
        raise _fail(path, pre[:-1], "must be a table with `dist = ...`")
    unknown = sorted(set(t) - PARAM_KEYS)
    if unknown:
        raise _fail(path, pre + unknown[0], f"unknown key; allowed are {', '.join(sorted(PARAM_KEYS))}")
    kind = _get(t, "dist", str, path, pre)
    if kind not in KINDS:
        raise _fail(path, pre + "dist", f"unknown distribution {kind!r}; use one of {', '.join(KINDS)}")
    shared = _get(t, "shared", bool, path, pre, default=False)
    if gen == "regnet" or name in SCALAR_PARAMS:
        shared = True  # the six RegNet numbers are scalars by construction
    if kind == "choice":
        vals = t.get("values")
        if not isinstance(vals, list) or not vals or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            raise _fail(path, pre + "values", "choice needs a non-empty list of numbers, "
                        "e.g. values = [1, 2, 4]")
        dist = Dist(kind, values=tuple(vals))
        if row and row.values_ok and not all(row.values_ok(v) for v in vals):
            raise _fail(path, pre + "values", f"{row.plural} must be {row.values_what}, got {vals}")
    else:
        low = _get(t, "low", (int, float), path, pre)
        high = _get(t, "high", (int, float), path, pre)
        q = _get(t, "q", (int, float), path, pre, default=1)
        if low > high:
            raise _fail(path, pre + "low", f"empty range: low {low} > high {high}; swap them")
        if q <= 0:
            raise _fail(path, pre + "q", "the quantum must be positive")
        if kind != "uniform" and low <= 0:
            raise _fail(path, pre + "low", f"{kind} needs low > 0")
        if row and row.choice_only:
            raise _fail(path, pre + "dist", f"draw {row.plural} with dist = \"choice\", e.g. "
                        f"values = {row.choice_only}")
        dist = Dist(kind, float(low), float(high), float(q))
    if row and row.integer and not dist.is_integer:
        raise _fail(path, pre + "dist", f"'{name}' must take integer values: use integer bounds and q")
    if row and row.positive and dist.support()[0] <= 0:
        raise _fail(path, pre + "low", f"'{name}' must be positive")
    return Param(name, dist, shared)


def _constraints(ct: dict, gen: str, params: dict[str, Param], path: Path) -> dict[str, str]:
    if not isinstance(ct, dict):
        raise _fail(path, "constraints", "must be a table such as [constraints] w = 'nondecreasing'")
    for k, v in ct.items():
        if gen != "anynet" or k not in params or k in SCALAR_PARAMS:
            raise _fail(path, f"constraints.{k}", "ordering constraints apply to the per-stage "
                        "parameters of an anynet space (d, w, b, g)")
        if v not in ORDERINGS:
            raise _fail(path, f"constraints.{k}",
                        f"unknown ordering {v!r}; use one of {', '.join(ORDERINGS)}")
    return dict(ct)
