"""The command line as a user runs it: JSON output, exit codes, short errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT


def test_model_regnet_json(cli):
    r = cli("model", "regnet", "--depth", "22", "--w0", "24", "--wa", "24.48", "--wm", "2.54",
            "--group-w", "16", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ds"] == [1, 2, 7, 12] and out["ws"] == [32, 64, 160, 384]
    assert (out["flops"], out["params"], out["acts"]) == (397_678_568, 5_157_512, 3_143_272)


def test_model_anynet_verify(cli):
    r = cli("model", "anynet", "--depths", "1,2,3,1", "--widths", "32,64,160,384", "--group-ws",
            "16,16,16,16", "--bottlenecks", "1,2,4,1", "--se", "--dataset", "cifar10", "--verify",
            "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["params_torch"] == out["params"]
    assert out["flops_fvcore_conv_linear"] == out["flops"] - out["bias_adds"]


def test_bad_input_exit_2(cli):
    for args in (["model", "anynet", "--depths", "1,2", "--widths", "32", "--group-ws", "8"],
                 ["model", "regnet", "--depth", "10", "--w0", "20", "--wa", "3", "--wm", "2",
                  "--group-w", "8"],
                 ["model", "regnet", "--depth", "x"],
                 ["sample", "--space", "anynetx_a", "--flops", "9:1", "--out", "/tmp/never"],
                 ["sample", "--space", "anynetx_a", "--dataset", "mnist"]):
        r = cli(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr


def test_sample_command_writes_run(tmp_path, cli):
    out = tmp_path / "run"
    r = cli("sample", "--space", "regnety", "--n", "12", "--dataset", "fashion-mnist",
            "--flops", "5M:50M", "--out", str(out))
    assert r.returncode == 0, r.stderr
    import tomllib

    import pandas as pd

    m = tomllib.loads((out / "run.toml").read_text())
    assert (m["in_channels"], m["resolution"], m["num_classes"], m["stem_stride"]) == (1, 28, 10, 1)
    assert m["dataset"] == "fashion-mnist" and m["space"]["block"] == "y" and m["n"] == 12
    df = pd.read_parquet(out / "samples.parquet")
    assert len(df) == 12 and (df.block == "y").all() and df.flops.between(5e6, 50e6).all()
    assert "se" not in df  # retired: the block names the SE
    assert {"depth", "w0", "wa", "wm", "g", "b"} <= set(df.columns)


def test_sampling_never_imports_torch(tmp_path):
    code = ("import sys; from dsd.cli import app; "
            f"app(['sample', '--space', 'anynetx_c', '--n', '3', '--out', r'{tmp_path / 'r'}'], "
            "standalone_mode=False); app(['spaces', 'list'], standalone_mode=False); "
            "app(['model', 'regnet', '--depth', '13', '--w0', '24', '--wa', '36.44', '--wm', "
            "'2.49', '--group-w', '8'], standalone_mode=False); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_math_packages_never_import_torch():
    """Spaces, sampling, complexity and every statistic are pure numpy (a notebook without torch)."""
    mods = ["dsd.model.arch", "dsd.model.complexity", "dsd.space.spec", "dsd.space.sampler",
            "dsd.space.sample_run", "dsd.analysis.edf", "dsd.analysis.runs", "dsd.analysis.minofk",
            "dsd.analysis.plan", "dsd.analysis.fit", "dsd.analysis.trends", "dsd.analysis.refine",
            "dsd.analysis.expr", "dsd.store.results", "dsd.store.status", "dsd.study.findings",
            "dsd.data.registry"]
    code = (f"import importlib, sys; [importlib.import_module(m) for m in {mods!r}]; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; "
            "assert not bad, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_installed_package_works_from_any_directory(tmp_path):
    """A plain (non-editable) install carries the built-in spaces as package data."""
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--target", str(target), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    code = ("from dsd.space import spec; print(spec.builtin_dir()); print(spec.load('anynetx_e').name)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert str(target) in r.stdout and "anynetx_e" in r.stdout


def _readme_commands() -> list[list[str]]:
    """Every `dsd ...` command in the README's bash blocks, continuation lines joined."""
    import re
    import shlex

    text = (ROOT / "README.md").read_text()
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("dsd "):
                cmds.append(shlex.split(line)[1:])
    return cmds


def test_readme_commands_parse():
    """Every command the README shows names real subcommands and options with valid values."""
    import typer

    from dsd.cli import app

    cmds = _readme_commands()
    assert len(cmds) > 20
    for args in cmds:
        cmd, rest = typer.main.get_command(app), list(args)
        while hasattr(cmd, "commands"):  # a group: descend by name
            name, rest = rest[0], rest[1:]
            assert name in cmd.commands, f"README: no command {name!r} in dsd {' '.join(args)}"
            cmd = cmd.commands[name]
        try:
            cmd.make_context(cmd.name, rest)
        except Exception as e:  # typer's vendored click raises its UsageError family here
            msg = e.format_message() if hasattr(e, "format_message") else repr(e)
            raise AssertionError(f"README command does not parse: dsd {' '.join(args)}: {msg}") from None


def test_help_flags_show_no_type(cli):
    """A flag takes no value, so --help must not print `<bool>` after it."""
    r = cli("edf", "compare", "--help")
    assert r.returncode == 0 and "--json" in r.stdout and "<bool>" not in r.stdout
    assert "<int>" in cli("study", "run", "--help").stdout  # options with values keep their type


def test_training_options_are_made_from_the_fields_they_set():
    """Every field with an option (dsd.data.recipe.option) is a training option, and every
    option is such a field: its help, flag, type and default come from it."""
    import dataclasses

    from dsd.cli.train_options import ORDER, RECIPE_KEYS, TRAIN_OPTIONS, train_request
    from dsd.data.recipe import Recipe
    from dsd.train.jobs import TrainRequest

    declared = {f.name: f for c in (Recipe, TrainRequest) for f in dataclasses.fields(c)
                if "help" in f.metadata}
    assert sorted(ORDER) == sorted(declared) == sorted(TRAIN_OPTIONS)
    assert TRAIN_OPTIONS["zero_init_final_gamma"][1].param_decls == (
        "--zero-init-final-gamma/--no-zero-init-final-gamma",)
    assert TRAIN_OPTIONS["lease"][1].default == 300.0 and TRAIN_OPTIONS["lr"][1].default is None
    assert TRAIN_OPTIONS["dataset"][0] is str and TRAIN_OPTIONS["warmup_epochs"][0] is float
    asked = {name: opt.default for name, (_, opt) in TRAIN_OPTIONS.items()} | {"epochs": 3}
    req = train_request(asked, limit=2)
    assert req == TrainRequest(overrides={k: (3 if k == "epochs" else None) for k in RECIPE_KEYS},
                               limit=2)


def test_readme_python_api_example_runs(tmp_path):
    """The README's Python API example, run as shown, in a fresh directory."""
    import re

    code = re.search(r"## Python API.*?```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert code, "README has no Python API example"
    r = subprocess.run([sys.executable, "-c", code.group(1)], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "parameters" in r.stdout and "KS D" in r.stdout
    assert len(list((tmp_path / "runs/nb/anynetx_a/results").glob("*.parquet"))) == 4


def test_import_dsd_is_light_and_exposes_the_api():
    code = ("import sys, dsd; assert 'torch' not in sys.modules and 'pandas' not in sys.modules; "
            "names = ['open_run', 'sample', 'train_batch', 'results', 'build_model', 'compare']; "
            "assert all(callable(getattr(dsd, n)) for n in names); "
            "assert set(names) <= set(dir(dsd))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_ctrl_c_during_sample_says_so_and_writes_nothing(tmp_path):
    """A sample of two million models, interrupted long before it ends."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    out = tmp_path / "never"
    p = subprocess.Popen([sys.executable, "-m", "dsd", "sample", "--space", "anynetx_a", "--n", "2000000",
                          "--flops", "360M:400M", "--out", str(out)], cwd=ROOT, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(6)  # past the imports, into sampling
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "interrupted: nothing was written" in err, err
    assert not out.exists() or not any(out.iterdir())
