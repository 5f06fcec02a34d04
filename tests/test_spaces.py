"""Declared spaces: built-ins, extends, and one-line errors for malformed files."""

from __future__ import annotations

import pytest

from dsd.errors import DsdError
from dsd.space import spec as spaces

BUILTIN = ["anynetx_a", "anynetx_b", "anynetx_c", "anynetx_d", "anynetx_e", "nds_resnet",
           "nds_resnext_a", "nds_resnext_b", "nds_vanilla", "regnet_res_basic", "regnet_vanilla",
           "regnetx", "regnetx_initial", "regnetx_optim", "regnety"]


def test_builtins_resolve_their_chain():
    assert spaces.builtin_names() == BUILTIN
    a, b, c = spaces.load("anynetx_a"), spaces.load("anynetx_b"), spaces.load("anynetx_c")
    d, e = spaces.load("anynetx_d"), spaces.load("anynetx_e")
    assert [a.params["b"].shared, b.params["b"].shared, b.params["g"].shared] == [False, True, False]
    assert c.params["g"].shared and c.params["b"].shared
    assert d.constraints == {"w": "nondecreasing"}
    assert e.constraints == {"w": "nondecreasing", "d": "nondecreasing"}
    assert e.params["w"].dist == a.params["w"].dist  # inherited unchanged
    y = spaces.load("regnety")
    assert y.se and not spaces.load("regnetx").se and y.generator == "regnet"
    for block in ("res_basic", "vanilla"):  # the RegNet paper's block types, RegNet widths
        r = spaces.load(f"regnet_{block}")
        assert r.block == block and r.params["wa"].dist == spaces.load("regnetx").params["wa"].dist


def test_initial_regnet_space_has_the_papers_ranges():
    """RegNet paper 3.3: d < 64, w0 and wa < 256, 1.5 <= wm <= 3, b and g as in AnyNetX_E."""
    import numpy as np

    from dsd.model.arch import IMAGENET
    from dsd.space.sampler import draw_block

    s, e = spaces.load("regnetx_initial"), spaces.load("anynetx_e")
    c = draw_block(s, IMAGENET, seed=0, block=0)
    v = c.scalars
    assert len(c.index) > 1000 and v["depth"].max() < 64 and v["w0"].max() < 256
    assert v["wa"].max() < 256 and 1.5 <= v["wm"].min() and v["wm"].max() <= 3
    assert set(np.unique(v["b"])) <= set(e.params["b"].dist.values)
    assert set(np.unique(v["g"])) <= set(e.params["g"].dist.values)
    assert s.params["b"].dist == e.params["b"].dist and s.params["g"].dist == e.params["g"].dist


def test_anynetx_a_has_about_1e18_configurations():
    assert 1e18 <= spaces.configurations(spaces.load("anynetx_a")) < 1e19


def _write(tmp_path, name, text):
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return p


GOOD = """
generator = "anynet"
stages = 2
[params.d]
dist = "uniform"
low = 1
high = 3
[params.w]
dist = "log_uniform"
low = 8
high = 64
q = 8
[params.b]
dist = "choice"
values = [1]
[params.g]
dist = "choice"
values = [8]
"""


def test_user_file_and_extends_by_path(tmp_path):
    _write(tmp_path, "mine", GOOD)
    child = _write(tmp_path, "child", 'extends = "mine"\n[params.g]\nshared = true\n')
    s = spaces.load(str(child))
    assert s.name == "child" and s.stages == 2 and s.params["g"].shared


@pytest.mark.parametrize("text,key", [
    ("colour = 3\n" + GOOD, "colour"),
    (GOOD.replace("stages = 2", 'stages = "two"'), "stages"),
    (GOOD.replace("low = 1\nhigh = 3", "low = 5\nhigh = 3"), "params.d.low"),
    (GOOD.replace('dist = "uniform"', 'dist = "gaussian"'), "params.d.dist"),
    (GOOD.replace("values = [1]", "values = []"), "params.b.values"),
    (GOOD.replace("[params.g]\ndist", "[params.g]\nbogus = 1\ndist"), "params.g.bogus"),
    (GOOD + "[constraints]\nw = 'sorted'\n", "constraints.w"),
    (GOOD.replace('generator = "anynet"', 'generator = "resnet"'), "generator"),
    (GOOD.replace("[params.d]", "[params.depth]"), "params.depth"),
    (GOOD.replace('[params.g]\ndist = "choice"\nvalues = [8]', '[params.g]\nsame_as = "g"'),
     "params.g.same_as"),
    (GOOD.replace('[params.g]\ndist = "choice"\nvalues = [8]', '[params.g]\nsame_as = "x"'),
     "params.g.same_as"),
    (GOOD.replace('[params.b]\ndist = "choice"\nvalues = [1]', '[params.b]\nsame_as = "g"').replace(
        '[params.g]\ndist = "choice"\nvalues = [8]', '[params.g]\nsame_as = "d"'), "params.b.same_as"),
])
def test_malformed_file_names_file_and_key(tmp_path, text, key):
    p = _write(tmp_path, "bad", text)
    with pytest.raises(DsdError) as e:
        spaces.load(str(p))
    msg = str(e.value)
    assert str(p) in msg and f"'{key}'" in msg and "\n" not in msg


def test_same_as_ties_a_parameter_to_another(tmp_path):
    """The RegNet paper's w0 = wa variant, as a child of the initial RegNet space."""
    import numpy as np

    from dsd.model.arch import IMAGENET
    from dsd.space.sampler import draw_block

    p = _write(tmp_path, "w0wa", 'extends = "regnetx_initial"\n[params.wa]\nsame_as = "w0"\n')
    s = spaces.load(str(p))
    assert s.params["wa"].same_as == "w0"
    c = draw_block(s, IMAGENET, seed=0, block=0)
    assert len(c.index) > 100 and np.array_equal(c.scalars["wa"], c.scalars["w0"].astype(float))
    # Untied draws keep their stream: the parent's depths are the child's depths.
    parent = draw_block(spaces.load("regnetx_initial"), IMAGENET, seed=0, block=0, size=64)
    child = draw_block(s, IMAGENET, seed=0, block=0, size=64)
    assert spaces.configurations(s) < spaces.configurations(spaces.load("regnetx_initial"))
    assert parent.scalars["depth"].dtype == child.scalars["depth"].dtype
    bad = _write(tmp_path, "w0float", 'extends = "regnetx_initial"\n[params.w0]\nsame_as = "wa"\n')
    with pytest.raises(DsdError, match="integer values"):
        spaces.load(str(bad))


def test_cyclic_extends(tmp_path):
    _write(tmp_path, "one", 'extends = "two"\n' + GOOD)
    p = _write(tmp_path, "two", 'extends = "one"\n')
    with pytest.raises(DsdError, match="'extends' forms a cycle"):
        spaces.load(str(p))


def test_invalid_toml(tmp_path):
    p = _write(tmp_path, "broken", "stages = [\n")
    with pytest.raises(DsdError, match="not valid TOML"):
        spaces.load(str(p))


def test_cli_malformed_space_exits_2_without_traceback(tmp_path, cli):
    p = _write(tmp_path, "bad", GOOD.replace('dist = "uniform"', 'dist = "gaussian"'))
    r = cli("spaces", "show", str(p))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "params.d.dist" in r.stderr
    r = cli("sample", "--space", str(p), "--n", "3", "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_cli_lists_and_shows(cli):
    r = cli("spaces", "list")
    assert r.returncode == 0 and all(n in r.stdout for n in BUILTIN)
    r = cli("spaces", "show", "anynetx_e")
    assert r.returncode == 0 and "nondecreasing" in r.stdout


def test_iccv_2019_spaces_have_the_papers_configuration_counts(cli):
    """The ICCV 2019 paper's design-space table (Section 3): Vanilla and ResNet 1,259,712,
    ResNeXt-A 11,390,625, ResNeXt-B 52,734,375; exact integers through --json."""
    import json

    r = cli("spaces", "list", "--json")
    assert r.returncode == 0, r.stderr
    counts = {s["name"]: s["configurations"] for s in json.loads(r.stdout)}
    assert {k: counts[k] for k in ("nds_vanilla", "nds_resnet", "nds_resnext_a", "nds_resnext_b")} == {
        "nds_vanilla": 1_259_712, "nds_resnet": 1_259_712, "nds_resnext_a": 11_390_625,
        "nds_resnext_b": 52_734_375}
    assert counts["anynetx_a"] == 1_846_757_322_198_614_016  # exact, not 1.8e+18
    one = json.loads(cli("spaces", "show", "nds_resnext_b", "--json").stdout)
    assert one["params"]["groups"]["values"] == 5 and one["blocks"] == ["x"] and one["strides"] == [1, 2, 2]
