"""Studies as data: a two-space study through the real CLI, resumption after SIGKILL, and
one-line errors for malformed study files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, wait_for

from dsd.space.rebuild import arch_of
from dsd.store.results import read_results

STUDY = """
name = "tiny"
description = "two spaces on digits"
dataset = "digits"
n = 4
seed = 0
flops = "100K:300K"
spaces = ["anynetx_c", "regnetx"]
figures = ["edfs", "comparisons", "min_of_k", "trends"]

[recipe]
epochs = 1
train_subset = 400

[analysis]
normalize = "none"
bootstrap = 200
permutations = 100

[[comparisons]]
a = "anynetx_c"
b = "regnetx"
finding = "a RegNet space beats AnyNetX_C"
expect = "better"
"""


def _study(tmp_path, text: str = STUDY):
    p = tmp_path / "tiny.toml"
    p.write_text(text)
    return p


def _ids(run_dir) -> list[int]:
    return sorted(r["model_id"] for r in read_results(run_dir / "results").rows)


def test_two_space_study_end_to_end(tmp_path, cli):
    f = _study(tmp_path)
    r = cli("study", "run", str(f), "--workers", "1")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "tiny"
    assert _ids(out / "anynetx_c") == [0, 1, 2, 3] and _ids(out / "regnetx") == [0, 1, 2, 3]
    findings = (out / "FINDINGS.md").read_text()
    assert "a RegNet space beats AnyNetX_C" in findings and "PARTIAL" not in findings
    for name in ("edfs.png", "edfs.svg", "min-of-k.png", "trends.png", "report.html",
                 "comparisons/anynetx_c-vs-regnetx.png"):
        assert (out / name).exists(), name
    # Published models re-train to the same error (CPU, same threads: bit for bit).
    r = cli("study", "verify", str(f), "--models", "2")
    assert r.returncode == 0 and r.stdout.count("+0.00") >= 3, r.stdout + r.stderr
    assert "agrees as a population" in r.stdout and "platform differs" not in r.stdout
    # Re-running trains nothing and rebuilds the same findings.
    r = cli("study", "run", str(f))
    assert r.returncode == 0 and "nothing to train" in r.stdout, r.stderr
    assert (out / "FINDINGS.md").read_text() == findings
    # Deleting one run's results trains exactly that run again.
    before = {p.name for p in (out / "anynetx_c" / "results").glob("*.parquet")}
    for p in (out / "regnetx" / "results").glob("*.parquet"):
        p.unlink()
    r = cli("study", "run", str(f), "--workers", "1", "--no-report")
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (out / "anynetx_c" / "results").glob("*.parquet")} == before
    assert _ids(out / "regnetx") == [0, 1, 2, 3]
    # Raising n grows every run with the same stream and trains only the new models.
    before = {s: {p.name for p in (out / s / "results").glob("*.parquet")} for s in ("anynetx_c", "regnetx")}
    f.write_text(STUDY.replace("n = 4", "n = 6"))
    r = cli("study", "run", str(f), "--workers", "1", "--no-report")
    assert r.returncode == 0 and "extended anynetx_c from 4 to 6 models" in r.stdout, r.stderr
    for s in ("anynetx_c", "regnetx"):
        assert _ids(out / s) == list(range(6))
        assert before[s] <= {p.name for p in (out / s / "results").glob("*.parquet")}
        assert len(read_results(out / s / "results").rows) == 6  # 4 kept + 2 new, none twice
    # Lowering n, or changing the window, is refused by key, not silently mixed.
    grown = STUDY.replace("n = 4", "n = 6")
    for change, key in ((("n = 6", "n = 5"), "n: run has 6"), (('flops = "100K:300K"', 'flops = "100K:400K"'),
                                                               "flops: run has")):
        f.write_text(grown.replace(*change))
        r = cli("study", "run", str(f))
        assert r.returncode == 2 and key in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_study_killed_then_rerun_trains_every_model_once(tmp_path):
    f = _study(tmp_path, STUDY.replace("epochs = 1", "epochs = 3"))
    cmd = [sys.executable, "-m", "dsd", "study", "run", str(f), "--workers", "2", "--no-report"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=env, start_new_session=True)
    out = tmp_path / "tiny"
    done = lambda: sum(len(_ids(out / s)) for s in ("anynetx_c", "regnetx") if (out / s).exists())  # noqa: E731
    wait_for(lambda: done() >= 2, "the study wrote 2 results", proc=p)
    os.killpg(p.pid, signal.SIGKILL)  # the CLI and its workers at once
    p.wait()
    assert done() < 8, "the study finished before it was killed"
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr
    assert _ids(out / "anynetx_c") == [0, 1, 2, 3] and _ids(out / "regnetx") == [0, 1, 2, 3]


@pytest.mark.parametrize("change,key", [
    (("n = 4", "n = 2"), "n"),
    (('dataset = "digits"', 'dataset = "mnist"'), "dataset"),
    (('flops = "100K:300K"', 'flops = "lots"'), "flops"),
    (('spaces = ["anynetx_c", "regnetx"]', 'spaces = ["anynetx_c", "nope"]'), "spaces"),
    (('spaces = ["anynetx_c", "regnetx"]', 'spaces = "anynetx_c"'), "spaces"),
    (("epochs = 1", "epochs = 0"), "recipe"),
    (("epochs = 1", "epoch = 1"), "recipe.epoch"),
    (('expect = "better"', 'expect = "worse"'), "comparisons[0].expect"),
    (('b = "regnetx"', 'b = "regnety"'), "comparisons[0].b"),
    (('normalize = "none"', 'normalize = "depth"'), "analysis.normalize"),
    (('name = "tiny"', 'name = "tiny"\ncolour = 3'), "colour"),
    (('figures = ["edfs", "comparisons", "min_of_k", "trends"]', 'figures = ["pie"]'), "figures"),
    (("bootstrap = 200", 'bootstrap = "200"'), "analysis.bootstrap"),
    (('normalize = "none"', 'normalize = "none"\nalpha = "0.05"'), "analysis.alpha"),
    (('normalize = "none"', 'normalize = "none"\ncovariates = "depth"'), "analysis.covariates"),
    (("epochs = 1", 'epochs = "1"'), "recipe.epochs"),
    (("epochs = 1", "epochs = 1\nlr = true"), "recipe.lr"),
])
def test_bad_study_file_gets_one_line(tmp_path, cli, change, key):
    assert change[0] in STUDY, f"the case {change} no longer applies to the test's study file"
    f = _study(tmp_path, STUDY.replace(*change))
    r = cli("study", "run", str(f))
    assert r.returncode == 2, r.stdout
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and str(f) in line and f"'{key}'" in line, line
    assert not (tmp_path / "tiny").exists()  # nothing sampled from a bad file


def test_study_file_not_toml_or_missing(tmp_path, cli):
    f = tmp_path / "broken.toml"
    f.write_text("n = [\n")
    r = cli("study", "report", str(f))
    assert r.returncode == 2 and "not valid TOML" in r.stderr
    r = cli("study", "run", str(tmp_path / "none.toml"))
    assert r.returncode == 2 and "no study file" in r.stderr


DERIVED = STUDY.replace('permutations = 100', 'permutations = 100\ncovariates = ["depth"]').replace(
    '"trends"]', '"trends", "replicates"]') + """
[replicates]
models = 2
seeds = [1]

[fidelity]
spaces = ["anynetx_c", "regnetx"]
models = 4
recipe = { epochs = 2 }
"""


def test_replicates_and_fidelity_train_the_same_models_again(tmp_path, cli):
    """Derived runs: the parent's first models, same architectures, another seed or budget,
    never counted in the parent's EDF; growing them trains only the new models."""
    import pandas as pd

    f = _study(tmp_path, DERIVED)
    r = cli("study", "run", str(f), "--workers", "1", "--no-report")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "tiny"
    rep, fid = out / "replicates" / "seed-1" / "anynetx_c", out / "fidelity" / "regnetx"
    assert _ids(out / "anynetx_c") == [0, 1, 2, 3] and _ids(rep) == [0, 1] and _ids(fid) == [0, 1, 2, 3]
    parent = pd.read_parquet(out / "anynetx_c" / "samples.parquet").set_index("model_id")
    mine = pd.read_parquet(rep / "samples.parquet").set_index("model_id")
    assert mine.flops.to_dict() == parent.flops.loc[[0, 1]].to_dict()
    rows = {r["model_id"]: r for r in read_results(rep / "results").rows}
    first = {r["model_id"]: r for r in read_results(out / "anynetx_c" / "results").rows}
    assert rows[1]["seed"] == 1_000_003 + 1 and first[1]["seed"] == 1
    assert rows[1]["error_min"] != first[1]["error_min"] or rows[1]["curve"] != first[1]["curve"]
    assert {r["epochs"] for r in read_results(fid / "results").rows} == {2}
    assert {r["epochs"] for r in read_results(out / "regnetx" / "results").rows} == {1}
    # The report measures noise, fidelity and covariate-adjusted effects, each by the study's rule.
    r = cli("study", "report", str(f))
    assert r.returncode == 0, r.stderr
    md = (out / "FINDINGS.md").read_text()
    assert "- Status: complete." in md
    noise = md.split("## Noise")[1].split("##")[0]
    assert "| anynetx_c | 2 x 2 |" in noise and "| regnetx | 2 x 2 |" in noise
    assert "| a RegNet space beats AnyNetX_C | anynetx_c -> regnetx |" in noise
    fidelity = md.split("## Fidelity")[1].split("##")[0]
    assert "| anynetx_c | 4 |" in fidelity and "| anynetx_c -> regnetx | " in fidelity
    assert "plain, short | plain, long" in fidelity
    assert "| anynetx_c -> regnetx | +" in md.split("## Why the spaces differ")[1] or \
        "| anynetx_c -> regnetx | -" in md.split("## Why the spaces differ")[1]
    assert (out / "replicates.png").exists()
    # One page across studies, rebuilt by a command: each study's verdict, at the longer
    # budget, under seed noise.
    r = cli("study", "summary", str(f), "--out", str(tmp_path / "SUMMARY.md"))
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "SUMMARY.md").read_text()
    assert "same models, longer budget (short -> long)" in page and "same verdict under seed noise" in page
    assert "| a RegNet space beats AnyNetX_C | anynetx_c -> regnetx |" in page and "dsd study summary" in page
    # With no replicate trained yet, stability is not measured (resampling nothing would
    # agree with itself 100% of the time), and the page says so instead of printing 100%.
    moved = [d / "results" for d in (out / "replicates" / "seed-1").iterdir()]
    for d in moved:
        d.rename(d.with_name("results-away"))
    r = cli("study", "report", str(f))
    assert r.returncode == 0, r.stderr
    md = (out / "FINDINGS.md").read_text()
    assert "still to train: 0 of 4 replicate models have a final result" in md
    noise = md.split("## Noise")[1].split("##")[0]
    assert "no compared space has 2 models with every seed trained" in noise
    assert not re.search(r"\| \d+% \|", noise)
    for d in moved:
        d.with_name("results-away").rename(d)
    # Growing the replicates trains the next model only; shrinking them is refused by key.
    f.write_text(DERIVED.replace("models = 2\nseeds", "models = 3\nseeds"))
    before = {p.name for p in (rep / "results").glob("*.parquet")}
    r = cli("study", "run", str(f), "--workers", "1", "--no-report")
    assert r.returncode == 0, r.stderr
    assert _ids(rep) == [0, 1, 2] and before < {p.name for p in (rep / "results").glob("*.parquet")}
    f.write_text(DERIVED)
    r = cli("study", "run", str(f), "--no-report")
    assert r.returncode == 2 and "models: run has 3, asked 2" in r.stderr, r.stderr
    # A replicate run keeps its own seed against another explicit one.
    r = cli("train-batch", str(rep), "--seed", "5")
    assert r.returncode == 2 and "replicate trained with seed 1" in r.stderr, r.stderr


@pytest.mark.parametrize("section,key", [
    ("[replicates]\nmodels = 2\nseeds = [0]", "replicates.seeds"),
    ("[replicates]\nmodels = 9\nseeds = [1]", "replicates.models"),
    ("[replicates]\nmodels = 2\nseeds = [1]\nkeep = 1", "replicates.keep"),
    ('[fidelity]\nspaces = ["regnety"]\nmodels = 2\nrecipe = { epochs = 2 }', "fidelity.spaces"),
    ('[fidelity]\nspaces = ["regnetx"]\nmodels = 2\nrecipe = { epoch = 2 }', "fidelity.recipe.epoch"),
    ('[fidelity]\nspaces = ["regnetx"]\nmodels = 2\nrecipe = {}', "fidelity.recipe"),
])
def test_bad_derived_sections_get_one_line(tmp_path, cli, section, key):
    f = _study(tmp_path, STUDY + "\n" + section + "\n")
    r = cli("study", "run", str(f))
    line = r.stderr.strip()
    assert r.returncode == 2 and len(line.splitlines()) == 1 and f"'{key}'" in line, line


def test_study_shape_declares_strides_and_resolution_and_warns_of_empty_bins(tmp_path, cli):
    """[shape]: every space sampled with the study's strides at its resolution (images are
    resized on the device); a changed shape is refused by key; a window a space cannot
    fill is named before any training."""
    from dsd.store.run import Run

    text = STUDY.replace("[recipe]", "[shape]\nresolution = 12\nstrides = [2, 2, 1, 1]\n\n[recipe]")
    text = text.replace('normalize = "none"', 'normalize = "flops"\nbins = 4').replace(
        'flops = "100K:300K"', 'flops = "1M:3M"')
    f = _study(tmp_path, text)
    r = cli("study", "run", str(f), "--workers", "1", "--no-report", "--limit", "1")
    assert r.returncode == 0, r.stderr
    for s in ("anynetx_c", "regnetx"):
        run = Run(tmp_path / "tiny" / s)
        assert run.shape().resolution == 12
        arch = arch_of(run, run.samples().iloc[0])
        assert arch.strides == (2, 2, 1, 1)
    out = tmp_path / "tiny"
    trained = [r for s in ("anynetx_c", "regnetx") for r in read_results(out / s / "results").rows]
    assert [r["status"] for r in trained] == ["ok"]  # --limit 1: one model, trained at 12 px
    f.write_text(text.replace("strides = [2, 2, 1, 1]", "strides = [2, 2, 2, 2]"))
    r = cli("study", "run", str(f), "--no-report")
    assert r.returncode == 2 and "strides: run has [2, 2, 1, 1]" in r.stderr, r.stderr
    # A window no space fills: named after sampling, before any training (the library call
    # `study run` makes; training a model of this window would only cost time here).
    from dsd.study import spec as S

    f.write_text(text.replace('flops = "1M:3M"', 'flops = "1M:3G"')
                 .replace('name = "tiny"', 'name = "w"\nout = "wide"'))
    st = S.load(f)
    S.sample_missing(st)
    gaps = S.window_gaps(st)
    assert gaps and all("no model in flops bin" in g and "before training" in g for g in gaps)


def test_summary_says_whether_a_finding_holds_and_leaves_untrained_studies_open():
    from dsd.study.summary import _holds

    assert _holds(["reproduced", "reproduced"]) == "yes, in every column"
    assert _holds(["consistent", "reproduced"]) == "yes, in every column"
    assert _holds(["reproduced", "not yet computable"]) == \
        "so far: in every computed column; 1 column not yet computable"
    assert _holds(["reproduced", "not reproduced: a is better"]).startswith("no")
    assert _holds(["not yet computable", "not yet computable"]) == "open: nothing computable yet"
    assert _holds(["reproduced", "not resolved at this n"]).startswith("not established: holds in some")
    assert _holds(["not resolved at this n", "not computable in this window"]).startswith(
        "not established: unresolved")
    assert _holds(["", ""]) == ""
    assert _holds(["reproduced (partial study)"]) == \
        "so far: in every computed column; 1 from a partial study"
    assert _holds(["differs: b is better", "differs: b is better (partial study)"]) == \
        "open finding (no direction): the same in every column; 1 from a partial study"
    assert _holds(["differs: b is better", "no difference detected"]).endswith("see each column")
