"""Training for real: learning on digits, failures as data, resumption, concurrency."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT, train_first_epoch_then_stop, wait_for

from dsd.data.loaders import load_cifar10
from dsd.data.recipe import with_overrides
from dsd.data.registry import default_recipe, load
from dsd.errors import DsdError
from dsd.model.arch import Shape, anynet_arch
from dsd.space.sample_run import sample_new
from dsd.store.results import read_results, write_result
from dsd.store.run import Run
from dsd.train.batch import run_batch
from dsd.train.jobs import BatchOptions, RunJob
from dsd.train.loop import train_model
from dsd.train.pipeline import make_pipeline

DIGITS = Shape(1, 8, 10, 1)


def _digits_run(tmp_path: Path, n: int, name: str = "run") -> Path:
    out = tmp_path / name
    sample_new("anynetx_c", n, out, DIGITS, {"flops": "100K:300K"}, seed=0, dataset="digits")
    return out


def _cfg(run: Path, **kw) -> tuple[RunJob, BatchOptions]:
    recipe = with_overrides(default_recipe("digits"), epochs=kw.pop("epochs", 2))
    return RunJob(Run(run), recipe), BatchOptions(device="cpu", **kw)


def test_digits_learns_far_below_chance():
    torch.set_num_threads(1)  # two test processes share two cores (conftest)
    arch = anynet_arch([1, 1, 1, 1], [16, 32, 64, 64], [1, 1, 1, 1], [8, 8, 8, 8], shape=DIGITS)
    recipe = default_recipe("digits")
    pipe = make_pipeline(load("digits"), recipe, torch.device("cpu"), 8)
    res = train_model(arch, pipe, recipe, torch.device("cpu"), seed=0)
    assert res.status == "ok" and len(res.curve) == recipe.epochs
    assert res.error_min < 15.0, res.curve  # chance is 90%
    assert res.curve[-1] < res.curve[0]


def test_same_seed_same_curve():
    arch = anynet_arch([1, 1, 1, 1], [8, 16, 16, 32], [1, 1, 1, 1], [8, 8, 8, 8], shape=DIGITS)
    recipe = with_overrides(default_recipe("digits"), epochs=2)
    pipe = make_pipeline(load("digits"), recipe, torch.device("cpu"), 8)
    a = train_model(arch, pipe, recipe, torch.device("cpu"), seed=3)
    b = train_model(arch, pipe, recipe, torch.device("cpu"), seed=3)
    assert a.curve == b.curve


def test_checkpoint_resumes_after_interrupt(tmp_path):
    arch = anynet_arch([1, 1, 1, 1], [8, 16, 16, 32], [1, 1, 1, 1], [8, 8, 8, 8], shape=DIGITS)
    recipe = with_overrides(default_recipe("digits"), epochs=3)
    pipe = make_pipeline(load("digits"), recipe, torch.device("cpu"), 8)
    ckpt = tmp_path / "m.pt"

    first = train_first_epoch_then_stop(arch, pipe, recipe, torch.device("cpu"), 1, ckpt)["curve"]
    epochs_seen = []
    res = train_model(arch, pipe, recipe, torch.device("cpu"), 1, ckpt=ckpt,
                      progress=lambda e, n, ips: epochs_seen.append(e))
    assert epochs_seen == [2, 3] and res.curve[0] == first[0] and len(res.curve) == 3
    # Provenance after resume: speed over all three epochs, the first one's time included.
    saved = torch.load(ckpt, weights_only=False)
    images = 3 * pipe.steps_per_epoch(recipe.batch_size) * recipe.batch_size
    assert saved["train_seconds"] == res.train_seconds <= res.seconds
    assert res.images_per_second == pytest.approx(images / res.train_seconds)


def test_divergence_and_failure_are_data(tmp_path, monkeypatch):
    import dsd.train.loop

    run = _digits_run(tmp_path, 4)
    real = dsd.train.loop.train_steps

    def train(arch, pipe, recipe, device, seed, *args, **kw):
        if seed == 1:  # a genuine divergence: the real loop with an absurd learning rate
            recipe = replace(recipe, lr=1e12)
        if seed == 2:
            raise RuntimeError("boom")
        return (yield from real(arch, pipe, recipe, device, seed, *args, **kw))

    monkeypatch.setattr(dsd.train.loop, "train_steps", train)
    run_batch(*_cfg(run), 1, lambda ev: None)
    final = read_results(run / "results").final()
    assert dict(zip(final.model_id, final.status)) == {0: "ok", 1: "diverged", 2: "failed", 3: "ok"}
    assert "boom" in final.loc[2, "message"] and "loss became" in final.loc[1, "message"]
    # Final rows are final: a rerun trains nothing; --retry-failed retrains only the failure.
    assert run_batch(*_cfg(run), 1, lambda ev: None) == []
    monkeypatch.setattr(dsd.train.loop, "train_steps", real)
    assert run_batch(*_cfg(run, retry_failed=True), 1, lambda ev: None) == [(0, 2)]
    assert read_results(run / "results").final().loc[2, "status"] == "ok"


def test_limit_and_shard(tmp_path):
    run = _digits_run(tmp_path, 5)
    run_batch(*_cfg(run, epochs=1, limit=2), 1, lambda ev: None)
    assert len(read_results(run / "results").rows) == 2
    run_batch(*_cfg(run, epochs=1, shard=(1, 2)), 1, lambda ev: None)
    ids = sorted(r["model_id"] for r in read_results(run / "results").rows)
    assert ids == [0, 1, 3]  # 0 and 1 from the limit, 3 from shard 1/2


def _train_proc(run: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dsd", "train-batch", str(run), "--epochs", "3",
                             "--device", "cpu", *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                            preexec_fn=_default_sigint)


# The kill and Ctrl-C tests need models that take a while, not the whole data set.
SUBSET = ("--train-subset", "400")


def _default_sigint() -> None:
    """A suite started in the background (`make test &`) ignores SIGINT, and so would its
    children: give the trainer the default, as a terminal would, so Ctrl-C can be tested."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _result_files(run: Path) -> list[Path]:
    return sorted((run / "results").glob("*.parquet")) if (run / "results").exists() else []


def test_sigkill_mid_batch_then_restart_loses_nothing(tmp_path):
    run = _digits_run(tmp_path, 6)
    p = _train_proc(run, *SUBSET)
    wait_for(lambda: len(_result_files(run)) >= 2, "the trainer wrote 2 results", proc=p)
    p.send_signal(signal.SIGKILL)
    p.wait()
    before = {f.name: f.read_bytes() for f in _result_files(run)}
    assert len(before) < 6, "the trainer finished every model before it was killed"
    r = _train_proc(run, *SUBSET)
    assert r.wait(timeout=600) == 0, r.stderr.read()
    after = _result_files(run)
    ids = sorted(pq_ids(after))
    assert ids == list(range(6))  # every model exactly once
    assert all((run / "results" / n).read_bytes() == b for n, b in before.items())  # none lost
    assert not list((run / "ckpt").glob("*.pt")) and not list((run / "claims").glob("*.lock"))


def pq_ids(files: list[Path]) -> list[int]:
    return [int(pd.read_parquet(f).model_id.iloc[0]) for f in files]


def test_two_concurrent_workers_train_disjoint_models(tmp_path):
    run = _digits_run(tmp_path, 6)
    procs = [_train_proc(run, "--epochs", "1", "--workers", "1") for _ in range(2)]  # two processes
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()
    rows = read_results(run / "results").rows
    assert sorted(r["model_id"] for r in rows) == list(range(6))
    assert len({r["worker"] for r in rows}) == 2  # both took part


def test_workers_processes(tmp_path):
    run = _digits_run(tmp_path, 4)
    events = []
    run_batch(*_cfg(run, epochs=1), 2, events.append)
    rows = read_results(run / "results").rows
    assert sorted(r["model_id"] for r in rows) == list(range(4))
    assert {e["worker"] for e in events if e["kind"] == "done"} <= {"w0", "w1"}


def test_corrupt_shard_is_named_and_others_read(tmp_path, cli):
    run = _digits_run(tmp_path, 3)
    write_result(run / "results", {"model_id": 0, "status": "ok", "error_min": 10.0,
                                   "error_last": 11.0, "curve": [11.0, 10.0]})
    bad = run / "results" / "1-x-1-dead.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    res = read_results(run / "results")
    assert [r["model_id"] for r in res.rows] == [0] and res.corrupt[0][0] == bad
    r = cli("status", str(run))
    assert r.returncode == 0 and bad.name in r.stderr.replace("\n", "")


def test_results_accept_other_types(tmp_path):
    """A shard from another tool: int32 ids, ms timestamps, missing optional columns."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "results").mkdir()
    t = pa.table({"model_id": pa.array([4], pa.int32()), "status": ["ok"],
                  "error_min": [12.5], "curve": [[13.0, 12.5]],
                  "finished_at": pa.array([dt.datetime(2026, 1, 1)], pa.timestamp("ms"))})
    pq.write_table(t, tmp_path / "results" / "4-other.parquet")
    final = read_results(tmp_path / "results").final()
    assert final.loc[4, "error_min"] == 12.5 and final.loc[4, "status"] == "ok"


def _write_fake_cifar(root: Path, n_train: int = 50, n_test: int = 20) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", n_train) for i in range(1, 6)] + [("test_batch", n_test)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, n)), b"batch_label": name.encode()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return root


def test_fake_cifar10_loads_and_trains(tmp_path, cli):
    root = _write_fake_cifar(tmp_path / "data")
    d = load_cifar10(str(root))
    assert d.train_x.shape == (250, 3, 32, 32) and d.test_x.shape == (20, 3, 32, 32)
    assert d.train_x.dtype == np.uint8 and d.num_classes == 10
    run = tmp_path / "c"
    assert cli("sample", "--space", "anynetx_c", "--n", "1", "--dataset", "cifar10", "--flops",
               ":5M", "--out", str(run)).returncode == 0
    r = cli("train-batch", str(run), "--data-dir", str(root), "--epochs", "1", "--batch-size", "25",
            "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert read_results(run / "results").final().loc[0, "status"] == "ok"


def test_bad_inputs_exit_2(tmp_path, cli):
    run = _digits_run(tmp_path, 1)
    r = cli("train-batch", str(run), "--dataset", "cifar10", "--data-dir", str(tmp_path / "none"))
    assert r.returncode == 2 and "cifar-10-batches-py" in r.stderr and "Traceback" not in r.stderr
    r = cli("train-batch", str(run), "--dataset", "fashion-mnist", "--data-dir", str(tmp_path))
    assert r.returncode == 2 and "Fashion-MNIST not found" in r.stderr
    assert cli("train-batch", str(run), "--epochs", "1", "--device", "cpu").returncode == 0
    r = cli("train-batch", str(run), "--epochs", "2")
    assert r.returncode == 2 and "another recipe" in r.stderr
    r = cli("train-batch", str(tmp_path / "missing"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    with pytest.raises(DsdError, match="channels"):
        from dsd.train.setup import TrainRequest, prepare

        cif = tmp_path / "cif"
        sample_new("anynetx_c", 1, cif, Shape(3, 32, 10, 1), {}, seed=0, dataset="cifar10")
        prepare(cif, TrainRequest(dataset="digits", device="cpu"))


def test_cuda_oom_is_retried_at_half_batch_then_recorded(tmp_path, monkeypatch):
    """The OOM path without a GPU: the real handler, fed the real exception type."""
    import dsd.train.loop

    run = _digits_run(tmp_path, 2)
    real = dsd.train.loop.train_steps
    batches = []

    def train(arch, pipe, recipe, device, seed, batch_size=None, *args, **kw):
        batches.append((seed, batch_size))
        if seed == 0 or (seed == 1 and batch_size == recipe.batch_size):
            yield  # a step or more ran before memory ran out
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return (yield from real(arch, pipe, recipe, device, seed, batch_size, *args, **kw))

    monkeypatch.setattr(dsd.train.loop, "train_steps", train)
    run_batch(*_cfg(run, epochs=1), 1, lambda ev: None)
    final = read_results(run / "results").final()
    assert final.loc[0, "status"] == "oom" and final.loc[0, "batch_size"] == 16
    assert final.loc[1, "status"] == "ok" and final.loc[1, "batch_size"] == 16
    assert "retried at batch 16" in final.loc[1, "message"]
    assert batches == [(0, 32), (0, 16), (1, 32), (1, 16)]


def test_ctrl_c_stops_cleanly(tmp_path):
    run = _digits_run(tmp_path, 6)
    p = _train_proc(run, *SUBSET)
    wait_for(lambda: len(_result_files(run)) >= 1, "the trainer wrote a result", proc=p)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=120) == 130
    done = _result_files(run)
    assert 1 <= len(done) < 6
    assert not list((run / "claims").glob("[0-9]")) or all(
        not _claim_alive(c) for c in (run / "claims").glob("[0-9]"))
    r = _train_proc(run, *SUBSET)
    assert r.wait(timeout=600) == 0
    assert sorted(pq_ids(_result_files(run))) == list(range(6))


def _claim_alive(info: Path) -> bool:
    from dsd.store.claims import in_flight

    return int(info.name) in in_flight(info.parent)


def _write_image_folder(root: Path, classes=("cat", "dog", "eel"), per_class=(12, 4)) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in zip(("train", "val"), per_class):
        for k, c in enumerate(classes):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                arr = rng.integers(0, 60, (40, 48, 3), dtype=np.uint8) + 60 * k
                Image.fromarray(arr.astype(np.uint8)).save(root / split / c / f"{i}.png")
    return root


def test_imagenet_folder_loads_and_trains(tmp_path, cli):
    root = _write_image_folder(tmp_path / "imgs")
    run = tmp_path / "f"
    r = cli("sample", "--space", "anynetx_c", "--n", "1", "--dataset", "imagenet-folder",
            "--resolution", "32", "--num-classes", "3", "--flops", ":5M", "--out", str(run))
    assert r.returncode == 0, r.stderr
    r = cli("train-batch", str(run), "--data-dir", str(root), "--epochs", "2", "--batch-size", "6",
            "--precise-bn", "12", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    final = read_results(run / "results").final()
    assert final.loc[0, "status"] == "ok" and len(final.loc[0, "curve"]) == 2
    r = cli("train-batch", str(run), "--data-dir", str(tmp_path / "nothing"))
    assert r.returncode == 2 and "train/" in r.stderr


def test_claims_other_host_heartbeat_lease(tmp_path):
    """A claim from another host is respected until its heartbeat is older than the lease;
    one from this host whose owner died is taken over at once."""
    import json as js

    from dsd.store.claims import try_claim

    claims = tmp_path / "claims"
    claims.mkdir()
    info = claims / "7"
    info.write_text(js.dumps({"host": "elsewhere", "pid": 1, "heartbeat": time.time()}))
    assert try_claim(claims, 7, lease=60) is None
    info.write_text(js.dumps({"host": "elsewhere", "pid": 1, "heartbeat": time.time() - 120}))
    c = try_claim(claims, 7, lease=60)
    assert c is not None and try_claim(claims, 7, lease=60) is None  # held by us now
    c.release(done=False)
    import socket

    info.write_text(js.dumps({"host": socket.gethostname(), "pid": 2**22 + 12345,
                              "heartbeat": time.time()}))
    c = try_claim(claims, 7, lease=60)  # the lock is free: its owner is gone
    assert c is not None
    c.release(done=True)
    assert not info.exists()


def test_progress_lines_and_status_when_output_is_not_a_terminal(tmp_path, cli):
    """A log file gets plain, timestamped lines as training goes, not one dump at the end."""
    run = _digits_run(tmp_path, 2)
    r = cli("train-batch", str(run), "--epochs", "2", "--device", "cpu", "--workers", "1")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for want in ("2 models to train", "model 0: start", "step ", "img/s, model ETA",
                 "epoch 1/2 done", "epoch 2/2 done", "2/2 models done", "trained 2 models"):
        assert want in out, (want, out)
    status = cli("status", str(run), "--json")
    counts = json.loads(status.stdout)["counts"]
    assert counts["ok"] + counts["diverged"] == 2 and counts["remaining"] == 0
    assert counts["in_flight"] == 0


def test_wrong_data_set_advice_names_only_fitting_ones(tmp_path, cli):
    run = tmp_path / "inet"
    assert cli("sample", "--space", "anynetx_c", "--n", "2", "--out", str(run)).returncode == 0
    r = cli("train-batch", str(run))
    assert r.returncode == 2 and "imagenet-folder" in r.stderr and "Traceback" not in r.stderr
    assert "fits its models (3 channels, 1000 classes): imagenet-folder;" in r.stderr
    r = cli("train-batch", str(run), "--dataset", "digits")
    assert r.returncode == 2 and "digits has 1 channel but" in r.stderr
    assert "dsd sample --space anynetx_c --dataset digits" in r.stderr
