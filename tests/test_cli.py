"""The command line as a user runs it: JSON output, exit codes, short errors."""

from __future__ import annotations

import json
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
    assert len(df) == 12 and df.se.all() and df.flops.between(5e6, 50e6).all()
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
