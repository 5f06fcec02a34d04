"""The parameter table (`dsd.model.params`) against today's facts: samples.parquet's
columns and types (a file format), what each generator declares, the draw order, the
dedup key. A parameter added to the table later goes last: every check here holds for
today's parameters whatever is appended (`_today` keeps them, in the derived order)."""

from __future__ import annotations

import pytest

from dsd.model import params

# samples.parquet as written before the table (dsd.store.run's literals): the expectation.
SCALAR_TYPES = {"b": "float64", "g": "int64", "e": "float64", "k": "int64",
                "se_ratio": "float64", "stem_w": "int64", "stages": "int64",
                "groups": "int64", "depth": "int64",
                "w0": "int64", "wa": "float64", "wm": "float64"}
LIST_COLS = {"ds": "int64", "ws": "int64", "gs": "int64", "bs": "float64",
             "es": "float64", "ks": "int64", "ss": "int64"}
ANYNET = ("d", "w", "b", "g", "groups", "e", "k", "s", "se_ratio", "stem_w", "stages")
TODAY = {"d", "w", "b", "g", "groups", "e", "k", "s", "se_ratio", "stem_w", "block", "act", "stem",
         "stages", "depth", "w0", "wa", "wm"}


def _today(items, names=TODAY):
    """Today's entries of a derived sequence (or dict), in the derived order; the others
    (added later) must all come after them."""
    items = list(items)
    keep = [x for x in items if (x[0] if isinstance(x, tuple) else x) in names]
    assert items[: len(keep)] == keep, f"a new entry sorts before today's: {items}"
    return keep


def test_parquet_columns_are_todays_format():
    assert _today(params.list_cols().items(), LIST_COLS) == list(LIST_COLS.items())
    assert _today(params.scalar_cols().items()) == list(SCALAR_TYPES.items())
    assert params.name_params() == ("block", "act", "stem")


def test_generators_and_draw_order():
    assert _today(params.GENERATOR_PARAMS["anynet"]) == list(ANYNET)
    assert params.GENERATOR_PARAMS["regnet"] == ("depth", "w0", "wa", "wm", "g", "b")
    # the sampler's anynet draw order
    assert _today(p.name for p in params.PARAMS if "anynet" in p.generators) == [
        "d", "w", "b", "g", "groups", "e", "k", "s", "se_ratio", "stem_w", "block", "act", "stem",
        "stages"]
    regnet = {p.name for p in params.PARAMS if "regnet" in p.generators}
    assert regnet == set(params.GENERATOR_PARAMS["regnet"])


def test_rows_agree_with_todays_rules():
    by = params.BY_NAME
    names = lambda pred: {p.name for p in params.PARAMS if p.name in TODAY and pred(p)}  # noqa: E731
    assert all(p.list_col == p.name + "s" for p in params.PARAMS if p.list_col)
    assert names(lambda p: p.positive) == {"d", "depth", "w", "w0", "g", "b", "groups"}
    assert names(lambda p: p.integer) == {"d", "depth", "w", "w0", "g", "groups", "k", "s",
                                          "stem_w", "stages"}
    assert names(lambda p: p.optional) == {"k", "s", "se_ratio", "stem_w", "block", "act", "stem",
                                           "stages"}
    assert names(lambda p: p.read_by == "block" and "anynet" in p.generators) == {
        "b", "g", "groups", "e", "k", "se_ratio"}
    assert _today(p.name for p in params.PARAMS if p.scope == params.NETWORK
                  and "anynet" in p.generators) == ["se_ratio", "stem_w", "block", "act", "stem",
                                                    "stages"]
    assert _today(params.key_scalars()) == ["se_ratio", "stem_w", "block", "act", "stem"]
    assert _today(p.name for p in params.scalars()) == [
        "b", "g", "e", "k", "s", "se_ratio", "stem_w", "block", "act", "stem", "stages", "groups",
        "depth", "w0", "wa", "wm"]
    assert by["k"].values_ok(3) and not by["k"].values_ok(2) and not by["s"].values_ok(0)
    assert (by["s"].arch, by["k"].arch, by["e"].default, by["k"].default) == ("strides", "ks", 1.0, 3)


def test_arch_fields_exist():
    from dataclasses import fields

    from dsd.model.arch import Arch
    names = {f.name for f in fields(Arch)}
    assert {p.arch for p in params.PARAMS if p.arch} <= names


def test_store_columns_come_from_the_table():
    import pyarrow as pa

    from dsd.data.recipe_dims import DRAWABLE
    from dsd.store import run

    old_scalars = {"b": pa.float64(), "g": pa.int64(), "e": pa.float64(), "k": pa.int64(),
                   "se_ratio": pa.float64(), "stem_w": pa.int64(), "stages": pa.int64(),
                   "groups": pa.int64(), "depth": pa.int64(),
                   "w0": pa.int64(), "wa": pa.float64(), "wm": pa.float64(),
                   **{k: pa.int64() if f.integer else pa.float64() for k, f in DRAWABLE.items()}}
    old_lists = {"ds": pa.int64(), "ws": pa.int64(), "gs": pa.int64(), "bs": pa.float64(),
                 "es": pa.float64(), "ks": pa.int64(), "ss": pa.int64()}
    scalars = list(run.SCALAR_TYPES.items())
    assert [x for x in scalars if x[0] in old_scalars] == list(old_scalars.items())
    assert scalars[-len(DRAWABLE):] == list(old_scalars.items())[-len(DRAWABLE):]
    assert _today(run.LIST_COLS.items(), old_lists) == list(old_lists.items())
    assert run.NAME_COLS == ("block", "act", "stem")


def test_sampler_keys_come_from_the_table():
    from dsd.data.recipe_dims import DRAWABLE
    from dsd.space import sampler

    assert _today(sampler.KEY_LISTS, LIST_COLS) == ["ds", "ws", "gs", "bs", "es", "ks", "ss"]
    assert sampler.KEY_SCALARS == ("se_ratio", "stem_w", "block", "act", "stem", *DRAWABLE)
    assert set(sampler.NAMES) == set(sampler.NAME_PARAMS)


def test_spec_checks_come_from_the_table(tmp_path):
    """The space file's [params.*] checks read the table: an integer parameter tied to a
    fractional one is refused (k too, which only its choice check caught before)."""
    from dsd.errors import DsdError
    from dsd.space import spec

    base = ('stages = 2\n[params.d]\ndist = "choice"\nvalues = [1, 2]\n[params.w]\ndist = "choice"\n'
            'values = [8, 16]\n[params.b]\ndist = "choice"\nvalues = [1.5, 2]\n[params.g]\n'
            'dist = "choice"\nvalues = [8]\n')
    p = tmp_path / "tie.toml"
    p.write_text(base + '[params.k]\nsame_as = "b"\n')
    with pytest.raises(DsdError, match=r"'params\.k\.same_as': 'k' must take integer values"):
        spec.load(str(p))
    p.write_text(base.replace("stages = 2", 'block = "res_basic"\nstages = 2'))
    with pytest.raises(DsdError, match=r"the res_basic block does not read 'b'.*\(it reads k\)$"):
        spec.load(str(p))
    assert set(spec.SCALAR_PARAMS) >= {"se_ratio", "stem_w", "block", "act", "stem", "stages"}


def test_blocks_read_the_tables_stage_values():
    """A block reads its per-stage values from StageArgs by parameter name, each defaulting
    to the table's default; Arch fills every empty per-stage field with it."""
    from dataclasses import fields

    from dsd.model.arch import Arch
    from dsd.model.blocks import BLOCKS, StageArgs

    defaults = {f.name: f.default for f in fields(StageArgs)}
    assert _today(p.name for p in params.stage_args()) == ["b", "g", "e", "k"]
    assert all(defaults[p.name] == p.default for p in params.stage_args())
    reads = {r for b in BLOCKS.values() for r in b.reads}
    assert {p.name for p in params.stage_args()} <= reads
    a = Arch((1, 2), (8, 16), (1.0, 1.0), (1, 1))
    assert (a.strides, a.ks, a.es) == ((2, 2), (3, 3), (1.0, 1.0))
