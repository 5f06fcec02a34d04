"""Recipes as design-space dimensions (issue #28, item 6): a space draws lr and wd per model
(NDS Fig. 12, pycls's cifar_optim sweep); each model trains under its own, the rows record
it, trends and splits read it, and the conditions check tells drawn from mixed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import ROOT

from dsd.analysis.conditions import differences, drawn_notes
from dsd.analysis.runs import Options, compare, run_errors
from dsd.analysis.trends import trends
from dsd.api import results as api_results
from dsd.data.recipe import with_overrides
from dsd.data.registry import default_recipe, load
from dsd.errors import DsdError
from dsd.model.arch import Shape
from dsd.space import spec as spaces
from dsd.space.rebuild import arch_of, recipe_of
from dsd.space.sample_run import sample_extend, sample_new
from dsd.space.sampler import model_keys, sample
from dsd.store.recipe_file import fix_for_run, read_for_run
from dsd.store.results import read_results
from dsd.store.run import Run
from dsd.train.batch import run_batch
from dsd.train.jobs import BatchOptions, RunJob, model_seed
from dsd.train.loop import train_model
from dsd.train.pipeline import make_pipeline

DIGITS = Shape(1, 8, 10, 1)
WINDOW = {"flops": "100K:300K"}
STUDY = """
name = "optim"
dataset = "digits"
n = 6
seed = 0
flops = "100K:300K"
spaces = ["regnetx_optim"]

[recipe]
epochs = 1
"""


def _sample(tmp_path, name: str, space: str = "regnetx_optim", n: int = 4) -> Run:
    out = tmp_path / name
    sample_new(space, n, out, DIGITS, WINDOW, seed=0, dataset="digits")
    return Run(out)


def _space_file(tmp_path, body: str, name: str = "s") -> str:
    p = tmp_path / f"{name}.toml"
    p.write_text(f'name = "{name}"\nextends = "regnetx"\n' + body)
    return str(p)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-space study of regnetx_optim on digits, trained (1 epoch) through the CLI."""
    from conftest import run_cli

    root = tmp_path_factory.mktemp("optim")
    f = root / "optim.toml"
    f.write_text(STUDY)
    r = run_cli("study", "run", str(f), "--workers", "1", "--no-report")
    assert r.returncode == 0, r.stderr
    return f, Run(root / "optim" / "regnetx_optim")


# --- spaces and sampling ---------------------------------------------------------------

def test_space_draws_lr_and_wd_within_ranges_and_records_them(tmp_path, cli):
    s, parent = spaces.load("regnetx_optim"), spaces.load("regnetx")
    assert spaces.drawn_recipe(s) == ["lr", "wd"] and s.params["lr"].shared
    # Scalars drawn once per network: the count multiplies by each field's values, once.
    assert spaces.configurations(s) == (spaces.configurations(parent) * s.params["lr"].dist.count()
                                        * s.params["wd"].dist.count())
    assert spaces.describe(s)["recipe"] == ["lr", "wd"]
    run = _sample(tmp_path, "a", n=12)
    df = run.samples()
    assert df.lr.dtype == np.float64 and df.wd.dtype == np.float64
    for col, (lo, hi) in (("lr", s.params["lr"].dist.reach()), ("wd", s.params["wd"].dist.reach())):
        assert df[col].between(lo, hi).all() and df[col].nunique() == len(df), df[col]
    assert df.lr.max() / df.lr.min() > 3  # spread over the range, not stuck at a bound
    # They change no network: the architectures are those regnetx draws from the same stream.
    plain = sample(parent, 12, DIGITS, {"flops": (100_000, 300_000)}, seed=0).rows
    assert [list(r["ws"]) for r in plain[:5]] == [list(w) for w in df.ws[:5]]
    # Extending continues the stream and keeps lr in the dedup key.
    sample_extend(run.path, 3)
    assert len(Run(run.path).samples().lr.unique()) == 15
    r = cli("spaces", "show", "regnetx_optim")
    assert r.returncode == 0 and "recipe drawn per model: lr, wd" in r.stdout, r.stderr


def test_the_same_network_under_another_lr_is_another_model():
    cols = {"ds": np.array([[1, 2]] * 2), "ws": np.array([[8, 16]] * 2), "gs": np.array([[8, 8]] * 2),
            "bs": np.array([[1.0, 1.0]] * 2), "block": np.array(["x", "x"])}
    same = model_keys(cols)
    assert same[0] == same[1]
    keys = model_keys(dict(cols, lr=np.array([0.1, 0.2])))
    assert keys[0] != keys[1]


def test_drawn_epochs_are_integers(tmp_path):
    path = _space_file(tmp_path, '[params.epochs]\ndist = "choice"\nvalues = [1, 2]\n'
                                 '[params.momentum]\ndist = "uniform"\nlow = 0.8\nhigh = 0.95\nq = 0.05\n')
    run = _sample(tmp_path, "e", space=path, n=8)
    df = run.samples()
    assert df.epochs.dtype == np.int64 and set(df.epochs) == {1, 2}
    assert set(np.round(df.momentum, 6)) <= {0.8, 0.85, 0.9, 0.95}
    base = default_recipe("digits")
    row = df.set_index("model_id", drop=False).loc[3]
    r = recipe_of(run, base, row)
    assert (r.epochs, r.momentum, r.lr) == (int(row.epochs), float(row.momentum), base.lr)
    # Each model trains for its own number of epochs; the API keeps both columns apart.
    torch.set_num_threads(1)
    run_batch(RunJob(run, with_overrides(base, epochs=1)), BatchOptions(device="cpu", limit=3), 1,
              lambda ev: None)
    got = api_results(run)
    done = got[got.status == "ok"]
    assert len(done) == 3 and (done.epochs_trained == done.epochs).all() and set(got.epochs) == {1, 2}


@pytest.mark.parametrize("body,key", [
    ('[params.batch_size]\ndist = "choice"\nvalues = [32, 64]\n', "params.batch_size"),
    ('[params.nesterov]\ndist = "choice"\nvalues = [0, 1]\n', "params.nesterov"),
    ('[params.lr]\ndist = "uniform"\nlow = -0.1\nhigh = 0.5\nq = 0.01\n', "params.lr.low"),
    ('[params.lr]\ndist = "log_uniform"\nlow = -0.1\nhigh = 0.5\nq = 0.01\n', "params.lr.low"),
    ('[params.lr]\ndist = "uniform"\nlow = 0.001\nhigh = 0.5\nq = 0.01\n', "params.lr.low"),  # rounds to 0
    ('[params.lr]\ndist = "choice"\nvalues = [0.1, 0]\n', "params.lr.values"),
    ('[params.wd]\ndist = "uniform"\nlow = -1e-4\nhigh = 1e-3\nq = 1e-5\n', "params.wd.low"),
    ('[params.momentum]\ndist = "uniform"\nlow = 0.5\nhigh = 1.0\nq = 0.1\n', "params.momentum.high"),
    ('[params.epochs]\ndist = "choice"\nvalues = [1.5, 2]\n', "params.epochs.dist"),
    ('[params.epochs]\ndist = "choice"\nvalues = [0, 2]\n', "params.epochs.values"),
    ('[params.lr]\nsame_as = "wa"\n', "params.lr.same_as"),
    ('[params.lr]\ndist = "choice"\nvalues = [0.1, 0.2]\n[constraints]\nlr = "nondecreasing"\n',
     "constraints.lr"),
])
def test_bad_recipe_declarations_name_the_key(tmp_path, body, key):
    with pytest.raises(DsdError) as e:
        spaces.load(_space_file(tmp_path, body))
    assert f"key '{key}'" in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("body,words", [
    ('[params.batch_size]\ndist = "choice"\nvalues = [32, 64]\n', "not drawn per model"),
    ('[params.lrr]\ndist = "choice"\nvalues = [0.1]\n', "recipe fields it may draw are lr, wd"),
    ('[params.lr]\ndist = "uniform"\nlow = -0.1\nhigh = 0.5\nq = 0.01\n', "'lr' must be positive"),
])
def test_cli_bad_recipe_declaration_is_one_line_exit_2(tmp_path, cli, body, words):
    r = cli("spaces", "show", _space_file(tmp_path, body))
    assert r.returncode == 2 and words in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# --- training ----------------------------------------------------------------------------

def test_rows_record_each_models_own_recipe_and_verify_retrains_it(trained, cli):
    f, run = trained
    base = read_for_run(run)
    assert base.lr == default_recipe("digits").lr and base.epochs == 1  # train.toml: the base
    samples = run.samples().set_index("model_id")
    final = read_results(run.results_dir).final()
    assert sorted(final.model_id) == list(range(6)) and (final.status == "ok").all()
    base_fields = {k: v for k, v in base.to_dict().items() if k not in ("lr", "wd")}
    for mid, text in zip(final.model_id, final.recipe):
        rec = json.loads(text)
        assert (rec["lr"], rec["wd"]) == (samples.lr[mid], samples.wd[mid])
        assert {k: rec[k] for k in base_fields} == base_fields
    # study verify re-trains each model under its own recipe: the same error, bit for bit.
    r = cli("study", "verify", str(f), "--models", "2")
    assert r.returncode == 0 and r.stdout.count("+0.00") >= 3, r.stdout + r.stderr
    assert "agrees as a population" in r.stdout


def test_a_model_retrained_alone_with_its_drawn_recipe_gives_its_error(trained):
    _, run = trained
    torch.set_num_threads(1)
    base = read_for_run(run)
    row = read_results(run.results_dir).final().loc[2]
    sample_row = run.samples().set_index("model_id", drop=False).loc[2]
    pipe = make_pipeline(load("digits"), base, torch.device("cpu"), 8)
    arch = arch_of(run, sample_row)
    own = train_model(arch, pipe, recipe_of(run, base, sample_row), torch.device("cpu"),
                      int(row.seed), int(row.batch_size))
    assert own.error_min == row.error_min
    # Not vacuous: the base recipe's lr and wd give another error.
    other = train_model(arch, pipe, base, torch.device("cpu"), int(row.seed), int(row.batch_size))
    assert other.error_min != row.error_min


def test_train_one_gives_the_batch_workers_row(trained):
    """dsd.train.one.train_one (the core of the workers, `study verify` and the bench) trains
    a model of the run to the row the batch worker wrote for it: its own drawn recipe, its
    seed, the same curve bit for bit."""
    from dsd.train.one import train_one

    _, run = trained
    final = read_results(run.results_dir).final()
    job, options = RunJob(run, read_for_run(run)), BatchOptions(device="cpu", threads=1)
    for mid in (0, 3):
        row = train_one(job, mid, options)
        want = final.loc[mid]
        assert row["status"] == want.status == "ok"
        assert row["curve"] == list(want.curve) and row["error_min"] == want.error_min
        for key in ("error_last", "train_loss", "epochs", "recipe", "seed", "batch_size", "device",
                    "threads", "step", "precision", "dataset"):
            assert row[key] == want[key], key
    assert len({final.loc[m].recipe for m in (0, 3)}) == 2  # two models, two drawn recipes


def test_train_toml_keeps_the_base_and_ignores_drawn_fields(trained):
    from dsd.train.setup import TrainRequest, prepare

    _, run = trained
    cfg = prepare(run.path, TrainRequest(dataset="digits", overrides={"epochs": 1, "lr": 0.3}),
                  load_data=False)
    assert cfg.recipe == read_for_run(run)  # --lr on a run that draws lr is not a new recipe
    with pytest.raises(DsdError, match=r"epochs: run has 1, asked 2\)"):
        prepare(run.path, TrainRequest(dataset="digits", overrides={"epochs": 2, "lr": 0.3}),
                load_data=False)


def test_resume_from_a_checkpoint_keeps_the_models_recipe(tmp_path):
    torch.set_num_threads(1)
    run = _sample(tmp_path, "r", n=1)
    base = with_overrides(default_recipe("digits"), epochs=2)
    fix_for_run(run, base)
    cfg = RunJob(run, base), BatchOptions(device="cpu")

    def stop_after_first_epoch(ev):
        if ev["kind"] == "epoch":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(*cfg, 1, stop_after_first_epoch)
    row = run.samples().set_index("model_id", drop=False).loc[0]
    saved = torch.load(run.ckpt(0), weights_only=False)
    assert saved["epochs"] == 1 and saved["opt"]["param_groups"][0]["weight_decay"] == row.wd
    run_batch(*cfg, 1, lambda ev: None)
    final = read_results(run.results_dir).final().loc[0]
    assert json.loads(final.recipe)["lr"] == row.lr and final.epochs == 2
    pipe = make_pipeline(load("digits"), base, torch.device("cpu"), 8)
    whole = train_model(arch_of(run, row), pipe, recipe_of(run, base, row), torch.device("cpu"),
                        model_seed(0, 0))
    assert whole.curve == list(final.curve)


# --- analyses ------------------------------------------------------------------------------

def test_trend_and_split_read_lr(trained, cli):
    _, run = trained
    lr = run.samples().lr
    doc = trends([run_errors(run.path)], ["lr", "wd"], bins=3)
    assert doc["params"] == ["lr", "wd"]
    assert sorted(doc["trends"][0]["x"]) == sorted(lr)
    cut = float(np.median(lr))
    split = compare([run.path], Options(bootstrap=100), [f"lr > {cut}"])
    assert [r.n for r in split.runs] == [3, 3]
    plot = run.path.parent / "trend.png"
    r = cli("trend", str(run.path), "--param", "lr", "--param", "wd", "--plot", str(plot))
    assert r.returncode == 0 and plot.exists() and "good range of lr" in r.stdout, r.stderr
    r = cli("edf", "compare", str(run.path), "--split", f"lr > {cut}", "--bootstrap", "100")
    assert r.returncode == 0 and "note: regnetx_optim draws lr, wd per model" in r.stdout, r.stderr
    assert "differ" not in r.stderr, r.stderr


def test_conditions_tell_drawn_from_mixed(trained, tmp_path):
    _, run = trained
    rows = read_results(run.results_dir).final()
    assert len(set(rows.recipe)) == 6  # six recipes in the rows ...
    assert differences([("a", run)]) == []  # ... but drawn on purpose: not a mixed run
    assert len(drawn_notes([("a", run)])) == 1
    # Between runs, a drawn field is compared by its distribution.
    base = default_recipe("digits")
    narrow = _space_file(tmp_path, '[params.lr]\ndist = "log_uniform"\nlow = 0.03\nhigh = 0.5\nq = 1e-10\n'
                                   '[params.wd]\ndist = "log_uniform"\nlow = 1e-5\nhigh = 1e-3\nq = 1e-10\n')
    same, other, fixed = (_sample(tmp_path, n, s) for n, s in (("same", "regnetx_optim"), ("other", narrow),
                                                               ("fixed", "regnetx")))
    for r in (same, other, fixed):
        fix_for_run(r, with_overrides(base, epochs=1))
    assert differences([("a", run), ("same", same)]) == []
    d = differences([("a", run), ("other", other)])
    assert len(d) == 1 and d[0].startswith("recipe.lr differs: drawn log_uniform [0.03, 1]"), d
    d = differences([("a", run), ("fixed", fixed)])
    assert [x.split(" differs")[0] for x in d] == ["recipe.lr", "recipe.wd"], d
    assert f"{base.lr:g} (fixed)" in d[0], d


def test_builtin_space_cites_its_ranges():
    text = (ROOT / "spaces" / "regnetx_optim.toml").read_text()
    assert "cifar_optim.yaml" in text and "[0.25, 5.0]" in text


def test_refined_space_and_export_keep_the_drawn_recipe(trained, tmp_path):
    from dsd.analysis.refine import fit_top, space_from_fits, write_space
    from dsd.interop.export import run_recipe

    _, run = trained
    r = run_errors(run.path)
    path = write_space(space_from_fits(fit_top(r, 3), r, "refined"), tmp_path / "refined.toml")
    refined, drawn = spaces.load(str(path)), spaces.load("regnetx_optim")
    assert spaces.drawn_recipe(refined) == ["lr", "wd"]
    assert refined.params["lr"].dist == drawn.params["lr"].dist
    sample_row = run.samples().set_index("model_id").loc[2]
    assert (run_recipe(run, 2).lr, run_recipe(run, 2).wd) == (sample_row.lr, sample_row.wd)
    assert run_recipe(run).lr == read_for_run(run).lr  # the run's own: the base
