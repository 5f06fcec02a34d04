"""pycls sweeps as dsd runs (`dsd import pycls-sweep`).

The sweeps are written here in pycls's own format: tools/sweep_collect.py dumps a list of
jobs, each its log as pycls/core/logging.py's load_log_data + sort_log_data read it (the
cfg unrounded, per-epoch stats rounded to 4 decimals, `epoch` "i/m" with `epoch_ind` and
`epoch_max`). Each job's network is given here independently of the import's cfg reading
(an Arch built directly, or dsd's RegNet generator), and its recorded params come from
outside dsd's analytic count: torchvision's modules and published counts, or the torch
module dsd builds. A wrong bottleneck inversion, a dropped SE or a misread stem therefore
shows as a complexity mismatch or a failed rebuild.
"""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torchvision

from dsd.analysis.runs import Options, compare, parse_metric
from dsd.errors import DsdError
from dsd.interop.pycls_sweep import import_pycls_sweep
from dsd.model.arch import Arch, Shape, regnet_arch
from dsd.model.complexity import complexity
from dsd.model.net import build, count_params
from dsd.model.zoo import PUBLISHED
from dsd.space.rebuild import arch_of
from dsd.store.recipe_file import read_for_run
from dsd.store.results import read_results
from dsd.store.run import Run

CIFAR = Shape(3, 32, 10, 1)  # res_stem_cifar: dsd's simple stem at stride 1
IMAGENET = Shape(3, 224, 1000, 2)
BLOCKS = {"x": "res_bottleneck_block", "y": "res_bottleneck_block", "res_basic": "res_basic_block",
          "vanilla": "vanilla_block"}
STEMS = {("simple", 1): "res_stem_cifar", ("simple", 2): "simple_stem_in", ("resnet", 2): "res_stem_in"}
EPOCHS = 10
# torchvision's published parameter counts of the same networks (tests/test_complexity.py:
# these round widths as pycls does); the others are counted on dsd's torch module.
TORCHVISION_PUBLISHED = {"RegNetX-800MF": "regnet_x_800mf", "RegNetX-1.6GF": "regnet_x_1_6gf",
                         "RegNetY-400MF": "regnet_y_400mf", "RegNetY-1.6GF": "regnet_y_1_6gf"}
# pycls's exact (flops, params, acts) of two published models (tests/test_complexity.py).
PYCLS_EXACT = {"RegNetX-400MF": (397_678_568, 5_157_512, 3_143_272),
               "RegNetY-400MF": (401_849_056, 4_344_144, 3_892_496)}


# --- writing jobs as pycls logs them --------------------------------------------------------

def _cfg(kind: str, section: dict, shape: Shape, lr=0.1, wd=5e-4, act="relu", seed=1) -> dict:
    dataset = "cifar10" if shape.resolution == 32 else "imagenet"
    return {"MODEL": {"TYPE": kind, "NUM_CLASSES": shape.num_classes, "ACTIVATION_FUN": act},
            kind.upper(): section,
            "OPTIM": {"BASE_LR": lr, "WEIGHT_DECAY": wd, "MAX_EPOCH": EPOCHS, "MOMENTUM": 0.9,
                      "NESTEROV": True, "WARMUP_EPOCHS": 1, "WARMUP_FACTOR": 0.1, "LR_POLICY": "cos"},
            "TRAIN": {"DATASET": dataset, "IM_SIZE": shape.resolution, "BATCH_SIZE": 256},
            "TEST": {"DATASET": dataset, "IM_SIZE": shape.resolution, "BATCH_SIZE": 200},
            "BN": {"USE_PRECISE_STATS": True, "NUM_SAMPLES_PRECISE": 1024,
                   "ZERO_INIT_FINAL_GAMMA": True},
            "RNG_SEED": seed, "OUT_DIR": "/tmp/pycls"}


def regnet_job(d, w0, wa, wm, g, se=False, b=1.0, shape=CIFAR, stem_w=32):
    """(truth, cfg) of a RegNet: the truth from dsd's generator, not from the cfg."""
    truth = regnet_arch(d, w0, wa, wm, g, b, se=se, shape=shape, stem_w=stem_w)
    section = {"STEM_TYPE": STEMS["simple", shape.stem_stride], "STEM_W": stem_w,
               "BLOCK_TYPE": "res_bottleneck_block", "DEPTH": d, "W0": w0, "WA": wa, "WM": wm,
               "GROUP_W": g, "BOT_MUL": 1.0 / b, "SE_ON": se, "SE_R": 0.25, "STRIDE": 2}
    return truth, _cfg("regnet", section, shape)


def anynet_job(block, ds, ws, bs, gs, strides, shape=CIFAR, stem="simple", stem_w=32, act="relu"):
    """(truth, cfg) of an AnyNet: the truth an Arch built directly; pycls's BOT_MULS are 1/b."""
    truth = Arch(tuple(ds), tuple(ws), tuple(float(b) for b in bs), tuple(gs), block, stem_w, shape,
                 stem, tuple(strides), act=act)
    section = {"STEM_TYPE": STEMS[stem, shape.stem_stride], "STEM_W": stem_w,
               "BLOCK_TYPE": BLOCKS[block], "DEPTHS": ds, "WIDTHS": ws, "STRIDES": strides,
               "BOT_MULS": [1.0 / b for b in bs], "GROUP_WS": gs, "SE_ON": block == "y",
               "SE_R": 0.25, "HEAD_W": 0}
    return truth, _cfg("anynet", section, shape, act=act)


def _stats(errs, phase: str, epochs=EPOCHS) -> dict:
    """A phase's per-epoch stats as sort_log_data leaves them (floats logged to 4 decimals)."""
    n = len(errs)
    out = {"epoch": [f"{i + 1}/{epochs}" for i in range(n)], "epoch_ind": list(range(1, n + 1)),
           "epoch_max": [epochs] * n, "top1_err": [round(e, 4) for e in errs],
           "top5_err": [round(e / 3, 4) for e in errs], "time_epoch": [1.5] * n, "mem": [100] * n}
    if phase == "train":
        out["loss"] = [round(e / 40, 4) for e in errs]
    else:
        out["min_top1_err"] = [round(min(errs[: i + 1]), 4) for i in range(n)]
    return out


def job(truth: Arch, cfg: dict, name: str, base: float, done=EPOCHS, ema=True, flops_off=0,
        params=None) -> dict:
    """One sweep.json entry: a decaying test-error curve from `base`, its train and EMA twins,
    and the recorded complexity (params from `params` where given, else dsd's torch module)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    curve = [base + 30 * 0.7**i + rng.normal(0, 0.3) for i in range(done)]
    cx = complexity(truth)
    recorded = {"flops": cx["flops"] + flops_off, "acts": cx["acts"],
                "params": params if params is not None else count_params(build(truth, device="meta"))}
    out = {"cfg": cfg, "complexity": recorded, "train_epoch": _stats([e - 5 for e in curve], "train"),
           "test_epoch": _stats(curve, "test"), "log_file": f"/sweeps/s/logs/{name}/stdout.log",
           "err_file": f"/sweeps/s/logs/{name}/stderr.log", "err": ""}
    if ema:
        out["test_ema_epoch"] = _stats([e - 0.5 for e in curve], "test")
    return out


def random_regnets(n: int, seed: int):
    """RegNet numbers drawn as pycls's sweeps draw them, kept where 2 to 4 stages result."""
    rng, out = np.random.default_rng(seed), []
    while len(out) < n:
        d, w0 = int(rng.integers(6, 16)), 8 * int(rng.integers(2, 9))
        wa, wm = round(float(rng.uniform(8, 40)), 2), round(float(rng.uniform(1.5, 3.0)), 2)
        g = int(rng.choice([8, 16]))
        if 2 <= regnet_arch(d, w0, wa, wm, g, shape=CIFAR).num_stages <= 4:
            out.append((d, w0, wa, wm, g))
    return out


def cifar_networks():
    """(truth, cfg) of the CIFAR sweep's jobs: random RegNetX/Y numbers (one with b = 2) and
    AnyNets of every block pycls and dsd share."""
    nets = [regnet_job(*p, se=i >= 3) for i, p in enumerate(random_regnets(5, seed=3))]
    nets.append(regnet_job(*random_regnets(1, seed=9)[0], b=2.0))
    nets += [
        anynet_job("x", [1, 2, 2, 1], [32, 64, 128, 256], [4, 4, 4, 4], [8, 8, 16, 16], [1, 2, 2, 2]),
        anynet_job("y", [2, 2, 2, 2], [48, 96, 192, 384], [1, 1, 1, 1], [16, 16, 16, 16], [1, 2, 2, 2]),
        anynet_job("y", [1, 3, 2], [64, 128, 256], [2, 2, 2], [8, 16, 32], [1, 2, 2], stem_w=16),
        anynet_job("res_basic", [2, 2, 2], [16, 32, 64], [1, 1, 1], [1, 1, 1], [1, 2, 2], stem_w=16),
        anynet_job("res_basic", [1, 1, 2, 2], [24, 48, 96, 192], [1] * 4, [1] * 4, [1, 2, 2, 2]),
        anynet_job("vanilla", [1, 2, 2], [32, 64, 128], [1, 1, 1], [1, 1, 1], [1, 2, 2]),
        anynet_job("vanilla", [2, 2, 2], [24, 48, 96], [1, 1, 1], [1, 1, 1], [1, 2, 2], act="silu"),
    ]
    return nets


IMAGENET_JOBS = ("RegNetX-400MF", "RegNetY-400MF", "RegNetX-800MF", "RegNetX-1.6GF",
                 "RegNetY-1.6GF", "RegNetY-800MF", "resnet18", "resnext50_32x4d")


def imagenet_networks():
    """(truth, cfg, params, name) at ImageNet's shape, as IMAGENET_JOBS lists them: published
    RegNets, and torchvision's ResNet-18 and ResNeXt-50 as pycls anynets."""
    out = []
    for name in IMAGENET_JOBS[:6]:
        (d, w0, wa, wm, g), _ = PUBLISHED[name]
        truth, cfg = regnet_job(d, w0, wa, wm, g, se=name.startswith("RegNetY"), shape=IMAGENET)
        tv = TORCHVISION_PUBLISHED.get(name)
        params = (list(torchvision.models.get_model_weights(tv))[0].meta["num_params"] if tv
                  else PYCLS_EXACT[name][1] if name in PYCLS_EXACT else None)
        out.append((truth, cfg, params, name))
    r18 = anynet_job("res_basic", [2, 2, 2, 2], [64, 128, 256, 512], [1] * 4, [1] * 4, [1, 2, 2, 2],
                     shape=IMAGENET, stem="resnet", stem_w=64)
    x50 = anynet_job("x", [3, 4, 6, 3], [256, 512, 1024, 2048], [2] * 4, [4, 8, 16, 32],
                     [1, 2, 2, 2], shape=IMAGENET, stem="resnet", stem_w=64)
    for (truth, cfg), tv in ((r18, "resnet18"), (x50, "resnext50_32x4d")):
        out.append((truth, cfg, _meta_params(tv), tv))
    return out


def _meta_params(name: str) -> int:
    import torch

    with torch.device("meta"):
        return count_params(getattr(torchvision.models, name)())


def write_sweep(path, jobs: list[dict]):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jobs, sort_keys=True))  # as sweep_collect.py writes it
    return path


BAD_FLOPS, UNFINISHED, DIVERGED, RESUMED, NO_EMA = 1, 2, 4, 6, (0, 7, 10)


def cifar_jobs(shift=0.0, lr_wd=None):
    """The CIFAR sweep: one job records wrong flops, one stopped at epoch 6, one diverged,
    one was resumed (epoch 5 logged twice, pycls's running minimum restarted), three lack an
    EMA; and two jobs dsd cannot hold in this run (another stem stride; an EfficientNet)."""
    jobs = []
    for i, (truth, cfg) in enumerate(cifar_networks()):
        if lr_wd is not None:
            cfg["OPTIM"]["BASE_LR"], cfg["OPTIM"]["WEIGHT_DECAY"] = lr_wd[i % len(lr_wd)]
        j = job(truth, cfg, f"{i:03d}", 8 + i % 5 + shift, done=6 if i == UNFINISHED else EPOCHS,
                ema=i not in NO_EMA, flops_off=12_345 if i == BAD_FLOPS else 0)
        if i == DIVERGED:
            j["test_epoch"]["top1_err"][-3:] = [float("nan")] * 3
        if i == RESUMED:
            _resume_at_epoch_5(j)
        if i == UNFINISHED:
            j["err"] = "Traceback ...\nRuntimeError: CUDA out of memory.\n"
        jobs.append(j)
    stride2 = anynet_job("vanilla", [1, 1], [16, 32], [1, 1], [1, 1], [1, 2], shape=Shape(3, 32, 10, 2))
    jobs.append(job(*stride2, "stride2", 20))
    effnet = dict(jobs[0], cfg=dict(jobs[0]["cfg"], MODEL={"TYPE": "effnet", "NUM_CLASSES": 10}))
    jobs.append(effnet)
    return jobs


def _resume_at_epoch_5(j: dict) -> None:
    """A job that crashed while checkpointing epoch 5 and resumed from epoch 4: epoch 5 is
    logged twice (the later one counts), and pycls's running minimum restarted at the
    resume, so it misses the best epoch (epoch 2 here)."""
    t = j["test_epoch"]
    errs = t["top1_err"]
    errs[1] = round(min(errs) - 1.0, 4)
    logged = errs[:4] + [round(errs[4] + 1.0, 4)] + errs[4:]
    inds = [*range(1, 6), *range(5, EPOCHS + 1)]
    mins = [min(logged[: i + 1]) for i in range(5)] + [min(logged[5: i + 1]) for i in range(5, len(logged))]
    t.update(top1_err=logged, epoch_ind=inds, epoch=[f"{i}/{EPOCHS}" for i in inds],
             epoch_max=[EPOCHS] * len(inds), min_top1_err=mins,
             top5_err=[round(e / 3, 4) for e in logged], time_epoch=[1.5] * len(inds),
             mem=[100] * len(inds))


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    d = tmp_path_factory.mktemp("pycls")
    imagenet = imagenet_networks()
    return {
        "cifar": write_sweep(d / "cifar" / "sweep.json", cifar_jobs()),
        "cifar_b": write_sweep(d / "cifar_b" / "sweep.json", cifar_jobs(shift=2.0)),
        "lr_wd": write_sweep(d / "lr_wd" / "sweep.json",
                             cifar_jobs(lr_wd=[(0.05, 1e-4), (0.1, 5e-4), (0.2, 5e-5), (0.4, 1e-4)])),
        "imagenet": write_sweep(d / "imagenet" / "sweep.json",
                                [job(t, c, n, 25 + i, params=p) for i, (t, c, p, n) in enumerate(imagenet)]),
        "dir": d,
    }


@pytest.fixture(scope="module")
def cifar_run(sweeps, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cifar"
    return import_pycls_sweep(sweeps["cifar"].parent, out)  # the sweep directory


# --- the library ----------------------------------------------------------------------------

def test_every_good_job_has_pycls_complexity_and_rebuilds(cifar_run, sweeps):
    r = cifar_run
    nets = cifar_networks()
    assert r.jobs == len(nets) == 13 and r.dataset == "cifar10" and r.checked == 13
    # Only the job with deliberately wrong flops differs, named by index and log directory.
    assert [(m.index, m.name, m.diffs) for m in r.mismatches] == [
        (BAD_FLOPS, f"{BAD_FLOPS:03d}", {"flops": (complexity(nets[BAD_FLOPS][0])["flops"] + 12_345,
                                                    complexity(nets[BAD_FLOPS][0])["flops"])})]
    assert [i for i, _ in r.skipped] == [13, 14]
    assert "stem stride 2" in r.skipped[0][1] and "effnet" in r.skipped[1][1]
    run = Run(r.run)
    df = run.samples().sort_values("model_id")
    jobs = json.loads(sweeps["cifar"].read_text())
    for (truth, _), row, j in zip(nets, df.to_dict("records"), jobs):
        assert arch_of(run, row) == truth  # the run rebuilds the job's network exactly
        assert (row["flops"], row["params"], row["acts"]) == tuple(complexity(truth).values())
        assert row["pycls_params"] == j["complexity"]["params"] == row["params"]
        assert row["pycls_acts"] == row["acts"] and row["block"] == truth.block
    assert df.stages.tolist() == [a.num_stages for a, _ in nets]  # stage counts vary
    regnet = df[df.depth.notna()]
    assert len(regnet) == 6 and regnet.wa.tolist() == [c["REGNET"]["WA"] for _, c in nets[:6]]
    assert regnet.b.tolist() == [1.0] * 5 + [2.0] and df.depth.isna().sum() == 7


def test_imagenet_published_regnets_and_resnets(sweeps, tmp_path):
    r = import_pycls_sweep(sweeps["imagenet"], tmp_path / "in")
    assert r.jobs == 8 and r.mismatches == [] and r.skipped == [] and r.dataset == "imagenet-folder"
    df = Run(r.run).samples().sort_values("model_id")
    for name, want in PYCLS_EXACT.items():
        i = IMAGENET_JOBS.index(name)
        assert (df.flops.iloc[i], df.params.iloc[i], df.acts.iloc[i]) == want
    assert Run(r.run).manifest().resolution == 224 and set(df.stem) == {"simple", "resnet"}


def test_errors_curves_ema_and_statuses_land_as_recorded(cifar_run, sweeps):
    jobs = json.loads(sweeps["cifar"].read_text())
    final = read_results(Run(cifar_run.run).results_dir).final().sort_index()
    assert len(final) == 13 and cifar_run.statuses == {"ok": 11, "diverged": 1, "failed": 1}
    for mid, row in final.iterrows():
        test = jobs[mid]["test_epoch"]
        errs = test["top1_err"]
        if mid == RESUMED:  # epoch 5 twice: the later one counts
            errs = errs[:4] + errs[5:]
            assert row.epochs == EPOCHS
        assert row.curve.tolist() == pytest.approx(errs, nan_ok=True)
        assert row.train_loss == jobs[mid]["train_epoch"]["loss"][-1]
        if mid == DIVERGED:
            assert row.status == "diverged" and row.error_min == min(errs[:-3])
            continue
        assert row.error_min == min(errs) and row.error_last == errs[-1]
        assert row.epochs == len(errs) and row.seed == 1 and row.batch_size == 256
        ema = jobs[mid].get("test_ema_epoch")
        if ema:
            assert (row.error_min_ema, row.error_last_ema) == (min(ema["top1_err"]), ema["top1_err"][-1])
        else:
            assert math.isnan(row.error_min_ema) and math.isnan(row.error_last_ema)
        want = "failed" if mid == UNFINISHED else "ok"
        assert row.status == want, row.message
    assert "stopped at epoch 6 of 10" in final.message[UNFINISHED]
    assert "CUDA out of memory" in final.message[UNFINISHED]
    assert (RESUMED, ) == tuple(i for i, n in cifar_run.notes if "min_top1_err" in n)


def test_one_recipe_from_the_cfg_becomes_train_toml(cifar_run):
    run = Run(cifar_run.run)
    rec = read_for_run(run)
    assert cifar_run.recipes == 1 and cifar_run.varying == []
    assert (rec.dataset, rec.epochs, rec.lr, rec.wd, rec.batch_size, rec.eval_batch_size) == (
        "cifar10", EPOCHS, 0.1, 5e-4, 256, 200)
    assert (rec.warmup_epochs, rec.precise_bn, rec.zero_init_final_gamma, rec.nesterov) == (
        1.0, 1024, True, True)
    row = json.loads(read_results(run.results_dir).final().recipe.iloc[0])
    assert row["lr"] == 0.1 and row["pycls.OPTIM.LR_POLICY"] == "cos"


def test_lr_wd_sweep_has_no_train_toml_and_is_flagged(sweeps, cifar_run, tmp_path):
    r = import_pycls_sweep(sweeps["lr_wd"], tmp_path / "lrwd")
    assert r.recipes == 4 and r.varying == ["lr", "wd"] and read_for_run(Run(r.run)) is None
    recipes = read_results(Run(r.run).results_dir).final().recipe.map(json.loads)
    assert [x["lr"] for x in recipes[:4]] == [0.05, 0.1, 0.2, 0.4]
    doc = compare([cifar_run.run, r.run], Options(bootstrap=100))
    within = [d for d in doc.differences if d.startswith("recipe differs within")]
    assert len(within) == 1 and "4 recipes (varying: lr, wd)" in within[0]
    assert any(d.startswith("recipe.lr differs: 0.1 (cifar), mixed (lrwd)") for d in doc.differences)
    assert not any("untrained" in d for d in doc.differences)
    with pytest.raises(DsdError, match="--strict"):
        compare([cifar_run.run, r.run], Options(bootstrap=100, strict=True))
    # One run alone (edf show) is flagged too.
    assert compare([r.run], Options(bootstrap=100)).differences == within


def test_ema_metric(cifar_run, sweeps, tmp_path):
    b = import_pycls_sweep(sweeps["cifar_b"], tmp_path / "b")
    assert parse_metric("error_last_ema") == ("error_last_ema", None)
    doc = compare([cifar_run.run, b.run], Options(bootstrap=100, metric="error_min_ema"))
    final = read_results(Run(cifar_run.run).results_dir).final()
    ok = final[(final.status == "ok") & final.error_min_ema.notna()]
    assert sorted(doc.runs[0].sample.errors) == sorted(ok.error_min_ema.tolist()) + [90.0]  # + diverged
    assert any("no error_min_ema recorded" in w for w in doc.runs[0].warnings)
    assert doc.differences == []


def test_results_without_ema_columns_still_read(tmp_path):
    """A results file written before the EMA columns existed reads them as nulls."""
    d = tmp_path / "results"
    d.mkdir()
    pq.write_table(pa.table({"model_id": [0], "status": ["ok"], "error_min": [9.0]}), d / "old.parquet")
    t = read_results(d, columns=("error_min_ema",)).table
    assert t.column("error_min_ema").to_pylist() == [None]


def test_broken_cfg_reading_is_caught(sweeps, tmp_path):
    """Had the import read pycls's BOT_MUL as dsd's b, or dropped SE, the recomputed
    complexity would differ from pycls's: the check catches exactly such mistakes."""
    jobs = json.loads(sweeps["cifar"].read_text())
    x_job, y_job = jobs[6], jobs[7]  # b = 4; SE
    x_job["cfg"]["ANYNET"]["BOT_MULS"] = [4.0] * 4  # a sweep written with b instead of 1/b
    y_job["cfg"]["ANYNET"]["SE_ON"] = False
    r = import_pycls_sweep(write_sweep(tmp_path / "s" / "sweep.json", jobs[6:8]), tmp_path / "r")
    assert [m.index for m in r.mismatches] == [0, 1]
    assert all("params" in m.diffs for m in r.mismatches)


# --- the CLI, end to end --------------------------------------------------------------------

def test_cli_import_then_every_analysis(sweeps, tmp_path, cli):
    a, b = tmp_path / "a", tmp_path / "b"
    r = cli("import", "pycls-sweep", str(sweeps["cifar"]), "--out", str(a))
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "imported 13 jobs (cifar10)" in out and "11 ok, 1 diverged, 1 unfinished" in out
    assert "equal to pycls's for 12 of 13 jobs" in out
    err = " ".join(r.stderr.split())
    assert f"job {BAD_FLOPS} ({BAD_FLOPS:03d}): flops pycls" in err
    assert "job 13:" in err and "job 14:" in err and "recipes" not in err
    assert cli("import", "pycls-sweep", str(sweeps["cifar_b"]), "--out", str(b)).returncode == 0
    fast = ("--bootstrap", "200", "--permutations", "100")
    mink = tmp_path / "mink.png"
    r = cli("edf", "compare", str(a), str(b), "--normalize", "flops", "--bins", "2", *fast,
            "--plot-min-of-k", str(mink))
    assert r.returncode == 0, r.stderr
    assert mink.exists() and "different conditions" not in r.stderr
    r = cli("edf", "compare", str(a), str(b), "--metric", "error_min_ema", "--bootstrap", "200")
    assert r.returncode == 0, r.stderr
    assert cli("edf", "show", str(a), "--bootstrap", "200").returncode == 0
    page = tmp_path / "r.html"
    r = cli("report", str(a), str(b), "--out", str(page), "--bootstrap", "200")
    assert r.returncode == 0 and page.exists(), r.stderr
    r = cli("trend", str(a), "--param", "regnet")
    assert r.returncode == 0, r.stderr


def test_cli_mixed_recipes_warn_and_strict_refuses(sweeps, tmp_path, cli):
    a, m = tmp_path / "a", tmp_path / "m"
    assert cli("import", "pycls-sweep", str(sweeps["cifar"]), "--out", str(a)).returncode == 0
    r = cli("import", "pycls-sweep", str(sweeps["lr_wd"]), "--out", str(m))
    assert r.returncode == 0, r.stderr
    assert "warning: the jobs were trained under 4 recipes (varying: lr, wd)" in " ".join(r.stderr.split())
    r = cli("edf", "compare", str(a), str(m), "--bootstrap", "100")
    assert r.returncode == 0, r.stderr
    assert "recipe differs within m: its models were trained under 4 recipes" in " ".join(r.stderr.split())
    r = cli("edf", "compare", str(a), str(m), "--bootstrap", "100", "--strict")
    assert r.returncode == 2 and "--strict" in r.stderr and "Traceback" not in r.stderr


def test_cli_bad_sweeps_get_one_line(sweeps, tmp_path, cli):
    good = sweeps["cifar"].read_text()
    effnet = [dict(j, cfg=dict(j["cfg"], MODEL={"TYPE": "effnet"})) for j in json.loads(good)[:2]]
    cases = {"truncated": good[: len(good) // 2], "object": '{"a": 1}', "empty": "[]",
             "strings": '["a", "b"]', "effnet": json.dumps(effnet), "binary": b"\xff\xfe\x00"}
    for name, text in cases.items():
        f = tmp_path / name / "sweep.json"
        f.parent.mkdir()
        (f.write_bytes if isinstance(text, bytes) else f.write_text)(text)
        r = cli("import", "pycls-sweep", str(f), "--out", str(tmp_path / f"run-{name}"))
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (name, r.stderr)
        assert "Traceback" not in r.stderr
    r = cli("import", "pycls-sweep", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "no pycls sweep file" in r.stderr
    r = cli("import", "pycls-sweep", str(sweeps["cifar"]), "--out", str(tmp_path / "ok"))
    assert r.returncode == 0, r.stderr
    r = cli("import", "pycls-sweep", str(sweeps["cifar"]), "--out", str(tmp_path / "ok"))
    assert r.returncode == 2 and "already holds a run" in r.stderr


def test_shape_conflicts_keep_the_first_jobs_shape(sweeps, tmp_path):
    """An ImageNet job inside a CIFAR sweep is skipped by index, with its shape."""
    cifar = json.loads(sweeps["cifar"].read_text())[:3]
    inet = json.loads(sweeps["imagenet"].read_text())[:1]
    r = import_pycls_sweep(write_sweep(tmp_path / "s" / "sweep.json", cifar + inet), tmp_path / "r")
    assert r.jobs == 3 and r.skipped[0][0] == 3 and "224 px, 1000 classes" in r.skipped[0][1]
    with pytest.raises(DsdError, match="already holds a run"):
        import_pycls_sweep(tmp_path / "s", tmp_path / "r")
    r = import_pycls_sweep(write_sweep(tmp_path / "t" / "sweep.json", [replace_cfg(cifar[0])]),
                           tmp_path / "t-run")
    assert r.statuses == {"ok": 1, "diverged": 0, "failed": 0}


def replace_cfg(j: dict) -> dict:
    """A job whose cfg leaves most keys to pycls's defaults (older pycls logs have fewer)."""
    cfg = {k: j["cfg"][k] for k in ("MODEL", "REGNET", "TRAIN")}
    return dict(j, cfg=cfg, test_epoch={k: v for k, v in j["test_epoch"].items()
                                        if k not in ("epoch_ind", "epoch_max")})

