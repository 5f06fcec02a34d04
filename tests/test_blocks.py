"""Block types and stems: one layer description, read by the complexity count and the
torch builder, checked against the built modules, fvcore and torchvision's networks."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pandas as pd
import pytest
import torch

from dsd.errors import DsdError
from dsd.model.arch import Shape, anynet_arch
from dsd.model.blocks import BLOCKS, STEMS
from dsd.model.complexity import complexity
from dsd.model.net import build, count_params
from dsd.model.verify import check_counts, random_arch
from dsd.space import spec as spaces
from dsd.space.rebuild import arch_of
from dsd.space.sample_run import sample_extend, sample_new
from dsd.space.sampler import draw_block, sample
from dsd.store.run import Run

CIFAR = Shape(3, 32, 10, 1)
SHAPES = [CIFAR, Shape()]


@pytest.mark.parametrize("block", list(BLOCKS))
def test_every_block_and_stem_counts_equal_the_module(block):
    """Random architectures (1-5 stages, random strides, kernels, activations, SE) of every
    stem at CIFAR and ImageNet shape: params, flops (fvcore) and acts (hooks) all equal.
    `dsd model check --n 200` runs the same check at full size."""
    rng = np.random.default_rng(list(BLOCKS).index(block))
    for stem in STEMS:
        for shape in SHAPES:
            arch = random_arch(rng, block, stem, shape)
            assert check_counts(arch) == {"params": True, "flops": True, "acts": True}, arch


def _torchvision_anchor(name: str):
    import torchvision
    from fvcore.nn import FlopCountAnalysis

    model = getattr(torchvision.models, name)()
    fa = FlopCountAnalysis(model.eval(), torch.zeros(1, 3, 224, 224))
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    ops = fa.by_operator()
    return count_params(model), int(ops["conv"] + ops["linear"])


RESNETS = {
    # name: (block, depths, widths, bottleneck ratios, group widths)
    "resnet18": ("res_basic", [2, 2, 2, 2], [64, 128, 256, 512], [1] * 4, [1] * 4),
    "resnet50": ("x", [3, 4, 6, 3], [256, 512, 1024, 2048], [4] * 4, [64, 128, 256, 512]),
    "resnext50_32x4d": ("x", [3, 4, 6, 3], [256, 512, 1024, 2048], [2] * 4, [4, 8, 16, 32]),
}


@pytest.mark.parametrize("name", list(RESNETS))
def test_torchvision_resnets_as_anynets(name):
    """ResNet-18 (basic blocks), ResNet-50 (the x block with one group) and ResNeXt-50
    32x4d, with the resnet stem and strides 1,2,2,2: torchvision's parameter count, and
    fvcore's count of torchvision's own module equals our flops minus the classifier's
    1,000 bias adds."""
    block, ds, ws, bs, gs = RESNETS[name]
    arch = anynet_arch(ds, ws, bs, gs, block=block, stem="resnet", stem_w=64, strides=(1, 2, 2, 2))
    assert arch.ws == tuple(ws)  # no width adjustment needed
    params, flops = _torchvision_anchor(name)
    cx = complexity(arch)
    assert cx["params"] == params
    assert cx["flops"] - 1000 == flops


def test_efficientnet_b0_as_mb_blocks():
    """pycls's EfficientNet-B0 (effnet.py: stem 32, seven MBConv stages, SE 0.25 of the
    block input, SiLU, a 1x1 head of 1,280): torchvision's 5,288,548 parameters and fvcore's
    count of torchvision's module; pycls publishes 0.39 GF and 5.3 M."""
    arch = anynet_arch([1, 2, 2, 3, 3, 4, 1], [16, 24, 40, 80, 112, 192, 320], [1] * 7, [1] * 7,
                       block="mb", stem_w=32, strides=(1, 2, 2, 2, 1, 2, 1), ks=(3, 3, 5, 3, 5, 5, 3),
                       act="silu", se_ratio=0.25, es=(1, 6, 6, 6, 6, 6, 6), head_w=1280)
    cx = complexity(arch)
    params, flops = _torchvision_anchor("efficientnet_b0")
    assert cx["params"] == params == 5_288_548
    assert round(cx["flops"] / 1e9, 2) == 0.39 and round(cx["params"] / 1e6, 1) == 5.3
    # fvcore leaves out the bias adds: the classifier's 1,000 and both SE convs' widths.
    se_bias = sum(w_exp + w_se for w_exp, w_se in _se_widths(arch))
    assert cx["flops"] - 1000 - se_bias == flops
    assert check_counts(arch) == {"params": True, "flops": True, "acts": True}


def _se_widths(arch):
    """(expanded width, SE width) of every MB block of `arch`."""
    w_in = arch.stem_w
    for d, w, e in zip(arch.ds, arch.ws, arch.es):
        for i in range(d):
            w_b = w_in if i == 0 else w
            yield int(w_b * e), int(w_b * arch.se_ratio)
        w_in = w


def test_x_and_y_keep_pycls_module_names():
    """Block modules keep pycls's names (a, a_bn, b, b_bn, se, c, c_bn, proj), so the X/Y
    networks and their initialisation under a seed are those of before the registry."""
    arch = anynet_arch([1, 2], [16, 32], [1, 2], [8, 8], se=True, shape=Shape(1, 28, 10, 1))
    keys = list(build(arch).state_dict())
    assert keys[:2] == ["stem.0.weight", "stem.1.weight"]
    assert "stages.0.0.se.reduce.weight" in keys and "stages.0.0.proj.0.weight" in keys
    first = [k.split(".")[3] for k in keys if k.startswith("stages.0.0.")]
    assert list(dict.fromkeys(first)) == ["a", "a_bn", "b", "b_bn", "se", "c", "c_bn", "proj"]


def _sampled(tmp_path, text: str, n: int, window: str | None, seed: int, extend: int = 0):
    """A declared space sampled at CIFAR shape (and extended): its run and samples."""
    path = tmp_path / "space.toml"
    path.write_text(text)
    out = tmp_path / "run"
    sample_new(str(path), n, out, CIFAR, {"flops": window} if window else {}, seed=seed)
    if extend:
        sample_extend(out, extend)
    run = Run(out)
    return run, run.samples()


def _rebuilt(run: Run, df) -> list:
    """Every sampled model rebuilt from its row: the torch module has the params sampling
    recorded, and a fresh count gives its flops, params and acts. (row, arch) pairs."""
    out = []
    for _, row in df.iterrows():
        arch = arch_of(run, row)
        assert count_params(build(arch, device="meta")) == row.params
        assert complexity(arch) == {k: row[k] for k in ("flops", "params", "acts")}
        out.append((row, arch))
    return out


def test_space_of_its_own_block_stem_and_three_stages(tmp_path):
    """A declared space with res_basic blocks, the CIFAR stem and 3 stages (the first not
    downsampling): sampled under a window, every model builds with the counted params."""
    run, df = _sampled(tmp_path, 'name = "resnet3"\nblock = "res_basic"\nstem = "cifar"\n'
                       'stem_width = 16\nstages = 3\nstrides = [1, 2, 2]\n'
                       '[params.d]\ndist = "log_uniform"\nlow = 1\nhigh = 8\nq = 1\n'
                       '[params.w]\ndist = "log_uniform"\nlow = 16\nhigh = 128\nq = 8\n',
                       12, "20M:80M", seed=0)
    assert (df.block == "res_basic").all() and df.flops.between(20e6, 80e6).all()
    for _, arch in _rebuilt(run, df):
        assert (arch.stem, arch.strides, arch.stem_w) == ("cifar", (1, 2, 2), 16)


MB_SPACE = ('name = "mbspace"\nblock = "mb"\nact = "silu"\nse_ratio = 0.25\nhead_width = 256\n'
            'stages = 3\nstrides = [1, 2, 2]\nkernels = [3, 5, 3]\n'
            '[params.d]\ndist = "choice"\nvalues = [1, 2, 3]\n'
            '[params.w]\ndist = "log_uniform"\nlow = 16\nhigh = 96\nq = 8\n')


def test_mb_space_draws_expansion_ratios(tmp_path):
    """An MBConv space declares its expansion ratio e (per stage here); the models it gives
    build with their counted params, and --extend continues it."""
    run, df = _sampled(tmp_path, MB_SPACE + '[params.e]\ndist = "choice"\nvalues = [1, 3, 6]\n',
                       10, None, seed=1, extend=5)
    assert len(df) == 15 and len({tuple(e) for e in df.es}) > 3
    for row, arch in _rebuilt(run, df):
        assert arch.es == tuple(row.es) and arch.head_w == 256 and arch.ks == (3, 5, 3)


def test_block_parameters_are_declared_exactly_where_read(tmp_path):
    """An mb space without an expansion ratio, or a res_basic space with a bottleneck
    ratio, gets one line naming the parameter."""
    path = tmp_path / "mb.toml"
    path.write_text(MB_SPACE)
    with pytest.raises(DsdError, match=r"params\.e.*missing"):
        spaces.load(str(path))
    path.write_text('extends = "anynetx_a"\nblock = "res_basic"\n')
    with pytest.raises(DsdError, match=r"res_basic block does not read 'b'"):
        spaces.load(str(path))


@pytest.mark.parametrize("text,where", [
    ('block = "mbconv"', "block"), ('stem = "vit"', "stem"), ("strides = [1, 2]", "strides"),
    ('act = "gelu"', "act"), ("kernels = [3, 4, 3, 3]", "kernels"), ("stages = 7", "stages"),
])
def test_bad_space_declarations_name_the_key(tmp_path, text, where):
    path = tmp_path / "bad.toml"
    path.write_text('extends = "anynetx_a"\n' + text + "\n")
    with pytest.raises(DsdError, match=where):
        spaces.load(str(path))


def test_model_anynet_flags(cli):
    r = cli("model", "anynet", "--block", "res_basic", "--stem", "resnet", "--stem-w", "64",
            "--depths", "2,2,2,2", "--widths", "64,128,256,512", "--strides", "1,2,2,2", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"] == 11_689_512
    for bad, msg in ((["--block", "z"], "--block"), (["--strides", "1,2"], "--strides"),
                     (["--kernel", "2,2,2,2"], "--kernel"), (["--act", "tanh"], "--act")):
        r = cli("model", "anynet", "--depths", "1,1,1,1", "--widths", "8,8,8,8",
                "--group-ws", "8,8,8,8", *bad)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_pandas_reads_the_block_column(tmp_path):
    sample_new("anynetx_b", 3, tmp_path / "r", Shape(1, 28, 10, 1), {}, seed=0)
    assert list(pd.read_parquet(tmp_path / "r" / "samples.parquet").block) == ["x"] * 3


def test_train_batch_and_edf_on_blocks_of_other_types(tmp_path, cli):
    """Downstream of the registry: an MBConv space and a vanilla one, sampled at digits
    shape, trained one epoch through the CLI, compared by `edf compare`."""
    for name, body in (("mbs", MB_SPACE.replace('name = "mbspace"', 'name = "mbs"')
                        + '[params.e]\ndist = "choice"\nvalues = [1, 3]\n'),
                       ("van", 'name = "van"\nblock = "vanilla"\nstem = "cifar"\nstages = 2\n'
                               'strides = [1, 2]\n[params.d]\ndist = "choice"\nvalues = [1, 2]\n'
                               '[params.w]\ndist = "choice"\nvalues = [8, 16, 24]\n')):
        (tmp_path / f"{name}.toml").write_text(body)
        r = cli("sample", "--space", str(tmp_path / f"{name}.toml"), "--n", "3", "--dataset",
                "digits", "--out", str(tmp_path / name))
        assert r.returncode == 0, r.stderr
        r = cli("train-batch", str(tmp_path / name), "--epochs", "1", "--train-subset", "400",
                "--device", "cpu")
        assert r.returncode == 0, r.stderr
    r = cli("edf", "compare", str(tmp_path / "mbs"), str(tmp_path / "van"), "--json",
            "--bootstrap", "100")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [x["counts"]["ok"] for x in doc["runs"]] == [3, 3]


def test_kernels_drawn_per_stage(tmp_path):
    """[params.k]: each stage's kernel drawn (or shared); samples record it, models build
    with their counted complexity, and an even kernel is refused."""
    run, df = _sampled(tmp_path, 'extends = "anynetx_a"\nname = "kx"\n[params.k]\n'
                       'dist = "choice"\nvalues = [1, 3, 5]\n', 12, "5M:50M", seed=2)
    assert {k for ks in df.ks for k in ks} == {1, 3, 5}
    for row, arch in _rebuilt(run, df):
        assert arch.ks == tuple(row.ks)
    path = tmp_path / "bad.toml"
    path.write_text('extends = "anynetx_a"\n[params.k]\ndist = "choice"\nvalues = [2, 3]\n')
    with pytest.raises(DsdError, match="odd"):
        spaces.load(str(path))


def test_se_ratio_and_stem_width_drawn(tmp_path):
    """[params.se_ratio] and [params.stem_w]: one value per network (0 draws no SE); the
    samples record them, the models build with their counted params, --extend continues."""
    run, df = _sampled(tmp_path, 'extends = "anynetx_c"\nname = "sx"\n'
                       '[params.se_ratio]\ndist = "choice"\nvalues = [0, 0.25, 0.5]\n'
                       '[params.stem_w]\ndist = "choice"\nvalues = [16, 32, 48]\n',
                       12, "5M:80M", seed=3, extend=6)
    assert set(df.se_ratio) == {0, 0.25, 0.5} and set(df.stem_w) == {16, 32, 48}
    assert "se" not in df  # retired: se_ratio says it
    for row, arch in _rebuilt(run, df):
        assert (arch.se_ratio, arch.stem_w) == (row.se_ratio, row.stem_w)
        assert arch.se == (row.se_ratio > 0)
    path = tmp_path / "bad.toml"
    path.write_text('extends = "anynetx_c"\nblock = "y"\n[params.se_ratio]\ndist = "choice"\n'
                    'values = [0.25]\n')
    with pytest.raises(DsdError, match="y block fixes SE"):
        spaces.load(str(path))


def test_block_type_drawn_per_network(tmp_path):
    """[params.block]: each network's block type drawn; b and g stay 1 for the types that
    do not read them; every model builds with its counted complexity; --extend continues
    the stream and never repeats a network."""
    run, df = _sampled(tmp_path, 'extends = "anynetx_c"\nname = "mix"\n[params.block]\n'
                       'dist = "choice"\nvalues = ["x", "res_basic", "vanilla"]\n',
                       15, "5M:80M", seed=4, extend=15)
    assert set(df.block) == {"x", "res_basic", "vanilla"} and len(df) == 30
    plain = df[df.block != "x"]
    assert all(set(b) == {1.0} for b in plain.bs) and all(set(g) == {1} for g in plain.gs)
    keys = {(r.block, tuple(r.ds), tuple(r.ws), tuple(r.gs), tuple(r.bs)) for r in df.itertuples()}
    assert len(keys) == 30
    for row, arch in _rebuilt(run, df):
        assert arch.block == row.block
    path = tmp_path / "bad.toml"
    path.write_text('extends = "anynetx_c"\n[params.block]\ndist = "choice"\nvalues = ["z"]\n')
    with pytest.raises(DsdError, match="params.block"):
        spaces.load(str(path))


STAGES_SPACE = ('name = "st"\nblock = "res_basic"\nstem = "cifar"\nstem_width = 16\n'
                'strides = [1, 2, 2, 2]\n[params.stages]\ndist = "choice"\nvalues = [2, 3, 4]\n'
                '[params.d]\ndist = "log_uniform"\nlow = 1\nhigh = 6\nq = 1\n'
                '[params.w]\ndist = "log_uniform"\nlow = 16\nhigh = 128\nq = 8\n'
                '[constraints]\nw = "nondecreasing"\n')


def test_stage_count_drawn_per_network(tmp_path):
    """[params.stages]: each network's stage count drawn; samples.parquet keeps its own
    stages only, the first strides apply, constraints bind only the stages it has, every
    model builds with its counted complexity, and --extend never repeats a network."""
    run, df = _sampled(tmp_path, STAGES_SPACE, 20, "5M:80M", seed=5, extend=20)
    assert set(df.stages) == {2, 3, 4} and len(df) == 40
    assert all(len(r.ds) == len(r.ws) == len(r.gs) == r.stages for r in df.itertuples())
    assert all(list(r.ws) == sorted(r.ws) for r in df.itertuples())
    assert len({(tuple(r.ds), tuple(r.ws)) for r in df.itertuples()}) == 40
    for row, arch in _rebuilt(run, df):
        assert arch.strides == (1, 2, 2, 2)[: row.stages]
    # Nondecreasing widths over 2 stages pass far more often than over 4: had the absent
    # stages' draws been constrained too, every count would pass equally often.
    space = spaces.load(str(tmp_path / "space.toml"))
    counts = np.bincount(draw_block(space, CIFAR, seed=5, block=0).scalars["stages"])
    assert counts[2] > 5 * counts[4] > 0
    # The same stream sampled at once gives the same 40 networks (extend resumes it).
    (tmp_path / "once").mkdir()
    at_once = _sampled(tmp_path / "once", STAGES_SPACE, 40, "5M:80M", seed=5)[1]
    assert [tuple(x) for x in at_once.ws] == [tuple(x) for x in df.ws]


def test_stage_count_checked_against_the_built_module():
    """Networks of 2, 3 and 4 stages drawn from one space: the torch module's params,
    fvcore's flops and hooked acts equal the count sampling recorded."""
    space = spaces.from_table(tomllib.loads(STAGES_SPACE), "st.toml")
    res = sample(space, 12, CIFAR, {"flops": (5_000_000, 80_000_000)}, seed=9)
    assert {row["stages"] for row in res.rows} == {2, 3, 4}
    for row in res.rows:
        n = row["stages"]
        arch = anynet_arch(row["ds"], row["ws"], row["bs"], row["gs"], shape=CIFAR, stem_w=16,
                           block="res_basic", stem="cifar", strides=(1, 2, 2, 2)[:n])
        assert complexity(arch)["flops"] == row["flops"]
        assert all(check_counts(arch).values())


def test_drawn_stage_count_declarations(tmp_path):
    """A stage count outside 1..5, a `stages` key that disagrees, an ordering on it, and
    strides for fewer stages than drawn each get one line; configurations sum over counts."""
    path = tmp_path / "s.toml"
    for text, where in (('values = [3, 6]', "params.stages"), ('values = [2.5]', "params.stages")):
        path.write_text(STAGES_SPACE.replace("values = [2, 3, 4]", text))
        with pytest.raises(DsdError, match=where):
            spaces.load(str(path))
    for extra, where in (("stages = 3\n", "'stages'"), ("[constraints]\nstages = 'nondecreasing'\n",
                                                       "constraints.stages")):
        path.write_text(extra + STAGES_SPACE if extra.startswith("stages") else
                        STAGES_SPACE.replace('[constraints]\nw = "nondecreasing"\n', extra))
        with pytest.raises(DsdError, match=where):
            spaces.load(str(path))
    path.write_text(STAGES_SPACE.replace("strides = [1, 2, 2, 2]", "strides = [1, 2, 2]"))
    with pytest.raises(DsdError, match="strides"):
        spaces.load(str(path))
    path.write_text(STAGES_SPACE.replace("[constraints]\nw = \"nondecreasing\"\n", ""))
    s = spaces.load(str(path))
    assert s.stages == 4 and s.stage_counts == (2, 3, 4)
    assert spaces.configurations(s) == sum((6 * 15) ** k for k in (2, 3, 4))


# Released NDS records (microsoft/nni, docs/source/tutorials/nasbench_as_dataset.rst): the
# ICCV 2019 CIFAR networks (stem 16, strides 1-2-2) with NDS's own params and flops counts.
NDS_RECORDS = [  # block, ds, ws, bottleneck multipliers, numbers of groups, params, flops
    ("x", [16, 1, 4], [64, 128, 16], [0.25] * 3, [2, 1, 2], 83_002, 69_890_986),
    ("res_basic", [12, 12, 12], [24, 24, 40], [1] * 3, [1] * 3, 594_138, 184_519_578),
    ("vanilla", [12, 12, 12], [24, 32, 40], [1] * 3, [1] * 3, 689_770, 208_363_930),
]


@pytest.mark.parametrize("block,ds,ws,mul,groups,params,flops", NDS_RECORDS)
def test_released_nds_records_have_our_params(block, ds, ws, mul, groups, params, flops):
    """NDS's params equal ours to the unit; its flops add 5 per conv output element (acts
    less the classifier's outputs) to pycls's count, on every block type released."""
    bs = [1 / m for m in mul]
    gs = [round(w * m) // n for w, m, n in zip(ws, mul, groups)]
    arch = anynet_arch(ds, ws, bs, gs, shape=CIFAR, stem="cifar", stem_w=16, strides=(1, 2, 2),
                       block=block)
    assert arch.gs == tuple(gs)  # the group widths split evenly: no adjustment
    cx = complexity(arch)
    assert cx["params"] == params == count_params(build(arch, device="meta"))
    assert cx["flops"] + 5 * (cx["acts"] - CIFAR.num_classes) == flops


def test_iccv_spaces_sample_at_their_window(tmp_path):
    """nds_resnet and nds_resnext_a at CIFAR shape and the NDS notebooks' params window:
    ResNeXt-A's drawn numbers of groups split each bottleneck width exactly, and every
    model builds with its counted complexity."""
    for name in ("nds_resnet", "nds_resnext_a"):
        out = tmp_path / name
        sample_new(name, 30, out, CIFAR, {"params": "154K:856K"}, seed=0)
        run = Run(out)
        df = run.samples()
        assert df.params.between(154_000, 856_000).all() and len(df) == 30
        for row, arch in _rebuilt(run, df):
            assert arch.stem == "cifar" and arch.strides == (1, 2, 2) and arch.stem_w == 16
            if name == "nds_resnext_a":
                groups = [w / b / g for w, b, g in zip(row.ws, row.bs, row.gs)]
                assert set(groups) <= {1, 2, 4} and set(row.bs) <= {1, 2, 4}
                assert set(row.ds) <= {1, 2, 4, 8, 16} and set(row.ws) <= {16, 32, 64, 128, 256}
    s = spaces.load("nds_resnext_a")
    assert spaces.configurations(s) == (5 * 5 * 3 * 3) ** 3  # aw_nas's count of the space


def test_number_of_groups_declarations(tmp_path):
    """`groups` replaces g where the block reads it: both at once, or groups for a block
    without groups, is one line."""
    path = tmp_path / "g.toml"
    path.write_text('extends = "nds_resnext_a"\n[params.g]\ndist = "choice"\nvalues = [1]\n')
    with pytest.raises(DsdError, match="either g"):
        spaces.load(str(path))
    path.write_text('extends = "nds_resnet"\n[params.groups]\ndist = "choice"\nvalues = [1]\n')
    with pytest.raises(DsdError, match="does not read 'groups'"):
        spaces.load(str(path))


def test_activation_stem_and_strides_drawn(tmp_path):
    """[params.act], [params.stem] (one per network) and [params.s] (per stage): samples
    record them, every model builds with its counted complexity, --extend continues,
    `dsd fit --to-space` keeps the fitted models' most common ones, and bad declarations
    are one line."""
    run, df = _sampled(tmp_path, 'extends = "anynetx_c"\nname = "as"\n[params.act]\n'
                       'dist = "choice"\nvalues = ["relu", "silu"]\n[params.s]\ndist = "choice"\n'
                       'values = [1, 2]\n[params.stem]\ndist = "choice"\nvalues = ["simple", "resnet"]\n',
                       12, "5M:80M", seed=7, extend=6)
    assert set(df.act) == {"relu", "silu"} and {s for ss in df.ss for s in ss} == {1, 2}
    assert set(df.stem) == {"simple", "resnet"}
    assert len({(r.act, r.stem, tuple(r.ss), tuple(r.ds), tuple(r.ws)) for r in df.itertuples()}) == 18
    for row, arch in _rebuilt(run, df):
        assert (arch.act, arch.stem, arch.strides) == (row.act, row.stem, tuple(row.ss))
    from dsd.analysis.refine import space_from_fits

    rows = [r for _, r in df.iterrows()]
    acts = [r.act for r in rows[:5]]
    top = max(dict.fromkeys(acts), key=acts.count)
    table = space_from_fits([(r, _fit(r)) for r in rows[:5]], _errors(run), "fitted")
    stems = [r.stem for r in rows[:5]]
    assert table["act"] == top and len(table["strides"]) == 4
    assert table["stem"] == max(dict.fromkeys(stems), key=stems.count)
    path = tmp_path / "bad.toml"
    for text, where in (('[params.act]\ndist = "choice"\nvalues = ["gelu"]\n', "params.act"),
                        ('[params.s]\ndist = "uniform"\nlow = 1\nhigh = 2\n', "params.s"),
                        ('[params.s]\ndist = "choice"\nvalues = [0, 2]\n', "params.s"),
                        ('[params.stem]\ndist = "choice"\nvalues = ["vit"]\n', "params.stem")):
        path.write_text('extends = "anynetx_c"\n' + text)
        with pytest.raises(DsdError, match=where):
            spaces.load(str(path))


def _fit(row):
    from dsd.analysis.fit import block_widths, fit_widths

    return fit_widths(block_widths(row["ds"], row["ws"]))


def _errors(run: Run):
    from types import SimpleNamespace

    return SimpleNamespace(path=run.path)
