"""Training on a real GPU: skipped where torch sees no CUDA device (CI has none).

Run on a GPU machine with `python -m pytest -m cuda tests/test_cuda.py`; the
Fashion-MNIST tests read DSD_FASHION_MNIST (a folder with the four idx .gz files) or the
Debian package's folder. scripts/gpu_check.sh runs these and bench/gpu.py in one go.

Cheap checks first, since gpu_check.sh runs them under a time limit. Tests that break a
CUDA context on purpose (a failed capture, a device-side assert, a memory cap) run in a
subprocess, so the tests after them still find a healthy one. Each property a CPU stand-in
can show also has a CPU test that fails on a deliberately broken stand-in
(tests/test_graph_properties.py, tests/test_hygiene.py, tests/test_faults.py); the checks
here are the same functions with real captures (`Rig(CUDA)`), in fp32 at tight tolerances.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, train_first_epoch_then_stop
from test_faults import check_compile_labels
from test_graph_properties import (
    Rig,
    check_alternating_losses,
    check_bn_statistics,
    check_lr0_leaves_weights,
    check_matches_eager,
)

from dsd.data.recipe import with_overrides
from dsd.data.registry import default_recipe, load
from dsd.model.arch import Shape, anynet_arch
from dsd.model.net import build
from dsd.space.sample_run import sample_new
from dsd.store.results import read_results
from dsd.store.run import Run
from dsd.train import loop
from dsd.train.batch import run_batch
from dsd.train.jobs import BatchOptions, RunJob
from dsd.train.loop import train_model
from dsd.train.pipeline import make_pipeline
from dsd.train.step import EagerStep, GraphStep, SideStream
from dsd.train.streams import CudaLanes

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

DIGITS = Shape(1, 8, 10, 1)
CUDA = torch.device("cuda")
FASHION = os.environ.get("DSD_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def _arch():
    return anynet_arch([1, 2, 1, 1], [16, 32, 64, 64], [1, 1, 1, 1], [8, 8, 8, 8], shape=DIGITS)


@pytest.mark.parametrize("step", ["eager", "graph"])
def test_digits_learns_on_the_gpu(step):
    _learns_digits(step)


def _learns_digits(step: str) -> None:
    recipe = default_recipe("digits")
    pipe = make_pipeline(load("digits"), recipe, CUDA, 8)
    res = train_model(_arch(), pipe, recipe, CUDA, seed=0, step=step)
    assert res.status == "ok" and res.step == step, res.step  # graph: captured, no fallback
    assert res.error_min < 15.0, res.curve  # chance is 90%


@pytest.fixture
def exact(monkeypatch):
    """fp32 that repeats itself: no TF32, deterministic cuDNN kernels chosen by heuristics
    (not by timing, which may pick another kernel per run); restored afterwards."""
    b = torch.backends
    saved = (b.cudnn.deterministic, b.cudnn.benchmark, b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32)
    b.cudnn.deterministic, b.cudnn.benchmark = True, False
    b.cudnn.allow_tf32 = b.cuda.matmul.allow_tf32 = False
    monkeypatch.setattr(loop, "CUDNN_BENCHMARK", False)
    yield
    b.cudnn.deterministic, b.cudnn.benchmark, b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("check", [check_matches_eager, check_lr0_leaves_weights, check_alternating_losses,
                                   check_bn_statistics], ids=lambda c: c.__name__)
def test_fp32_graph_keeps_the_property(exact, check):
    """A learning rate that jumps every step (graph vs eager to 1e-4, where a frozen lr is off by
    1e-2), lr 0 after capture (weights bit-unchanged), alternating batches (alternating
    losses), BN statistics without precise-BN: tests/test_graph_properties.py's checks."""
    check(rig=Rig(CUDA))


def test_warm_up_streams_are_never_a_models_stream():
    """Sixteen models' streams and forty step objects' warm-up streams: the warm-ups come from
    the other priority's pool, so however torch's round-robin turns, none is a model's."""
    lanes = CudaLanes(16, CUDA)
    slots = {s.cuda_stream for s in lanes.streams}
    sides = [SideStream() for _ in range(40)]
    for side in sides:
        side(lambda: torch.ones(1, device=CUDA), CUDA)
    assert len(slots) == 16
    assert slots.isdisjoint({side.stream.cuda_stream for side in sides})
    torch.cuda.synchronize()


def _in_subprocess(code: str, *args: str, timeout: float = 300) -> str:
    """Python `code` in a fresh process (a CUDA context of its own); its stdout."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout, env=env)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    return r.stdout


def test_a_failed_capture_turns_the_next_model_eager():
    """A real capture that fails (a host sync inside it), then the next model: it captures
    nothing, trains eagerly like eager steps, and its label says why."""
    out = _in_subprocess("import torch; from test_graph_properties import Rig, check_later_models_go_eager; "
                         "print(check_later_models_go_eager(rig=Rig(torch.device('cuda'))))")
    assert "eager (graphs off in this process after a failed capture: " in out


@pytest.mark.xfail(strict=False, reason="evidence, not a requirement: whether PyTorch can capture "
                   "cleanly after a failed capture; dsd captures no more graphs either way")
def test_torch_captures_cleanly_after_a_failed_capture():
    _in_subprocess("import torch; from test_graph_properties import Rig, check_matches_eager; "
                   "rig = Rig(torch.device('cuda')); _, m, (_, o) = rig.pair(); "
                   "g = rig.graph(m, o, refuse=True)\nfor x, y in rig.batches(5): g(x, y, 0.05)\n"
                   "assert g.mode.startswith('eager (graph capture failed'), g.mode\n"
                   "check_matches_eager(rig=rig)")


def test_graph_replays_read_each_new_batch():
    """Eight different batches through eager and graph steps from the same weights: the
    same losses step by step (bf16 autocast in both), so each replay saw its new batch."""
    torch.manual_seed(0)
    a = build(_arch()).to(CUDA, memory_format=torch.channels_last)
    b = build(_arch()).to(CUDA, memory_format=torch.channels_last)
    b.load_state_dict(a.state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9, nesterov=True, weight_decay=5e-4)
            for m in (a, b)]
    eager, graph = EagerStep(a, opts[0], CUDA), GraphStep(b, opts[1], CUDA)
    gen = torch.Generator(device=CUDA).manual_seed(0)
    la, lb = [], []
    for i in range(8):
        x = torch.randn(32, 1, 8, 8, device=CUDA, generator=gen).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (32,), device=CUDA, generator=gen)
        lr = 0.02 * (1 - i / 8)
        la.append(float(eager(x, y, lr)))
        lb.append(float(graph(x, y, lr)))
    assert graph.replay is not None and graph.mode == "graph"
    assert len(set(round(v, 4) for v in lb)) == 8  # the loss moved with the data
    for u, v in zip(la, lb):
        assert abs(u - v) < 2e-2 * max(1.0, abs(u)), (la, lb)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=2e-2, atol=2e-3)


def _fashion_run(tmp_path: Path, n: int) -> Path:
    out = tmp_path / "fm"
    sample_new("regnetx", n, out, Shape(1, 28, 10, 1), {"flops": "2M:6M"}, seed=0, dataset="fashion-mnist")
    return out


def _fashion_cfg(run: Path, **kw) -> tuple[RunJob, BatchOptions]:
    if not Path(FASHION, "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"no Fashion-MNIST at {FASHION} (set DSD_FASHION_MNIST)")
    recipe = with_overrides(default_recipe("fashion-mnist"), epochs=kw.pop("epochs", 2),
                            train_subset=10000, test_subset=2000)
    return RunJob(Run(run), recipe, data_dir=FASHION), BatchOptions(device="cuda", **kw)


def _digits_run(tmp_path: Path, name: str, n: int) -> Path:
    out = tmp_path / name
    sample_new("anynetx_c", n, out, DIGITS, {"flops": "100K:300K"}, seed=0, dataset="digits")
    return out


def test_sixteen_models_in_turn_train_as_if_alone(tmp_path, exact):
    """Sixteen models on sixteen streams of one process against each model trained alone:
    with deterministic kernels the same curves and losses (a race between streams, or a
    warm-up on another model's stream, shows as a difference)."""
    alone = _digits_run(tmp_path, "alone", 16)
    turns = tmp_path / "turns"
    shutil.copytree(alone, turns)
    recipe = with_overrides(default_recipe("digits"), epochs=1)
    run_batch(RunJob(Run(alone), recipe), BatchOptions(device="cuda", step="graph"), 1, lambda ev: None)
    run_batch(RunJob(Run(turns), recipe), BatchOptions(device="cuda", step="graph", streams=16), 1,
              lambda ev: None)
    a = read_results(alone / "results").final().sort_index()
    b = read_results(turns / "results").final().sort_index()
    assert list(b.status) == ["ok"] * 16 and set(b.step) == {"graph"}, b.message.tolist()
    err = max(abs(u - v) for cu, cv in zip(a.curve, b.curve) for u, v in zip(cu, cv))
    loss = max(abs(u - v) / abs(u) for u, v in zip(a.train_loss, b.train_loss))
    assert err <= 0.6 and loss <= 1e-3, (err, loss, a.error_min.tolist(), b.error_min.tolist())


CAPPED = """
import shutil, sys, torch
from pathlib import Path
from dsd.data.recipe import with_overrides
from dsd.data.registry import default_recipe
from dsd.store.run import Run
from dsd.train.batch import run_batch
from dsd.train.jobs import BatchOptions, RunJob
fashion, run = sys.argv[1], Path(sys.argv[2])
base = with_overrides(default_recipe("fashion-mnist"), epochs=1, train_subset=8192, test_subset=1000,
                      precise_bn=0)
def train(path, batch):
    recipe = with_overrides(base, batch_size=batch)
    run_batch(RunJob(Run(path), recipe, data_dir=fashion), BatchOptions(device="cuda"), 1, lambda ev: None)
def need(batch):  # the memory one model takes at this batch, on a copy of the run
    probe = run.parent / f"probe-{batch}"
    shutil.copytree(run, probe)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    train(probe, batch)
    return torch.cuda.max_memory_reserved()
n1, n2 = need(1024), need(2048)
cap = 2 * n2 - n1  # halfway between what 2048 needs and what 4096 should (linear in the batch)
torch.cuda.empty_cache()
torch.cuda.set_per_process_memory_fraction(cap / torch.cuda.get_device_properties(0).total_memory)
train(run, 4096)
print(f"batch 1024 needed {n1 / 2**20:.0f} MiB, 2048 {n2 / 2**20:.0f} MiB; capped at {cap / 2**20:.0f} MiB")
"""


def test_half_the_batch_fits_under_a_memory_cap(tmp_path):
    """The retry path end to end: batch 4096 under a cap halfway between what batch 2048
    needed and what 4096 should need runs out of memory, and the retry at 2048 trains; the
    row says both."""
    run = _fashion_run(tmp_path, 1)
    _fashion_cfg(run)  # skips without the data
    print(_in_subprocess(CAPPED, FASHION, str(run)))
    row = read_results(run / "results").final().iloc[0]
    assert row.status == "ok" and row.batch_size == 2048, row.message
    assert "retried at batch 2048 after: out of memory at batch 4096" in row.message


LOST = """
import json, sys, torch
from pathlib import Path
import dsd.train.loop as loop
from dsd.data.recipe import with_overrides
from dsd.data.registry import default_recipe
from dsd.store.run import Run
from dsd.train.batch import run_batch
from dsd.train.jobs import BatchOptions, RunJob
real = loop.train_steps
def train(arch, pipe, recipe, device, seed, *args, **kw):
    if seed == 1:  # a device-side assert: an index out of bounds, on the device
        yield
        torch.zeros(4, device=device)[torch.tensor([10**6], device=device)].sum().item()
    return (yield from real(arch, pipe, recipe, device, seed, *args, **kw))
loop.train_steps = train
events = []
recipe = with_overrides(default_recipe("digits"), epochs=1)
run_batch(RunJob(Run(Path(sys.argv[1])), recipe), BatchOptions(device="cuda", step="graph"), 1, events.append)
print(json.dumps([e["message"] for e in events if e["kind"] == "error"]))
"""


def test_a_device_side_assert_stops_the_worker_and_leaves_its_queue(tmp_path):
    """A sticky CUDA error in model 1 of 4: model 1's row says the device was lost, models 2
    and 3 get no `failed` row (the next run trains them), and the worker says why it stopped."""
    run = _digits_run(tmp_path, "run", 4)
    errors = json.loads(_in_subprocess(LOST, str(run)).strip().splitlines()[-1])
    final = read_results(run / "results").final()
    assert list(final.model_id) == [0, 1], final.message.tolist()
    assert final.loc[0, "status"] == "ok" and final.loc[1, "status"] == "failed"
    assert "the device became unusable" in final.loc[1, "message"]
    assert len(errors) == 1 and "device-side assert" in errors[0], errors


FAILED_CAPTURE = """
import json, sys, torch
from pathlib import Path
import dsd.train.loop as loop
from dsd.data.recipe import with_overrides
from dsd.data.registry import default_recipe
from dsd.store.run import Run
from dsd.train import faults
from dsd.train.batch import run_batch
from dsd.train.jobs import BatchOptions, RunJob
from dsd.train.step import GraphStep, cuda_capture
from test_graph_properties import _capture_with_a_sync
made, freed = [], []
def make_step(mode, model, opt, device):
    made.append(mode)
    return GraphStep(model, opt, device, capture=_capture_with_a_sync if len(made) == 1 else cuda_capture)
loop.make_step = make_step
real_empty = torch.cuda.empty_cache
def empty_cache():
    freed.append(faults.GRAPHS.reason is not None)
    real_empty()
torch.cuda.empty_cache = empty_cache
recipe = with_overrides(default_recipe("digits"), epochs=3)
run_batch(RunJob(Run(Path(sys.argv[1])), recipe), BatchOptions(device="cuda", step="graph"), 1,
          lambda ev: None)
print(json.dumps({"freed_after_the_failure": any(freed), "made": made}))
"""


def test_after_a_failed_capture_later_models_train_eagerly_and_say_why(tmp_path):
    """train-batch with graphs: model 0's capture fails for real; it and model 1 train eagerly
    (no graph captured, no cache freed after the failure), learn, and their rows say why."""
    run = _digits_run(tmp_path, "run", 2)
    seen = json.loads(_in_subprocess(FAILED_CAPTURE, str(run)).strip().splitlines()[-1])
    final = read_results(run / "results").final()
    assert list(final.status) == ["ok", "ok"], final.message.tolist()
    assert final.loc[0, "step"].startswith("eager (graph capture failed: ")
    assert final.loc[1, "step"].startswith("eager (graphs off in this process after a failed capture: ")
    assert final.error_min.max() < 60, final.error_min.tolist()  # 3 epochs; chance is 90%
    assert seen == {"freed_after_the_failure": False, "made": ["graph", "graph"]}


@pytest.mark.parametrize("workers,streams,step", [(1, 1, "eager"), (2, 1, "graph"), (1, 3, "graph")])
def test_fashion_mnist_train_batch_end_to_end(tmp_path, workers, streams, step):
    run = _fashion_run(tmp_path, 4)
    run_batch(*_fashion_cfg(run, step=step, streams=streams), workers, lambda ev: None)
    final = read_results(run / "results").final()
    assert list(final.status) == ["ok"] * 4, final.message.tolist()
    assert set(final.step) == {step} and all(d.startswith("cuda:") for d in final.device)
    assert set(final.precision) == {"bf16-autocast"}
    assert final.error_min.max() < 35, final.error_min.tolist()  # chance is 90%


def test_real_out_of_memory_is_recorded(tmp_path):
    """A real CUDA OOM: the process may use 0.5% of the GPU, the batch needs more even when halved."""
    run = _fashion_run(tmp_path, 2)
    _fashion_cfg(run)  # skips without the data
    code = ("import sys, torch; torch.cuda.set_per_process_memory_fraction(0.005); "
            "from dsd.cli import main; sys.argv = ['dsd'] + sys.argv[1:]; main()")
    r = subprocess.run([sys.executable, "-c", code, "train-batch", str(run), "--device", "cuda",
                        "--workers", "1", "--epochs", "1", "--batch-size", "32768",
                        "--data-dir", FASHION], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    final = read_results(run / "results").final()
    assert list(final.status) == ["oom", "oom"], final.message.tolist()
    assert list(final.batch_size) == [16384, 16384] and "CUDA out of memory" in final.message.iloc[0]


def test_cpu_checkpoint_resumes_on_the_gpu(tmp_path):
    recipe = with_overrides(default_recipe("digits"), epochs=3)
    data = load("digits")
    ckpt = tmp_path / "m.pt"

    cpu = torch.device("cpu")
    first = train_first_epoch_then_stop(_arch(), make_pipeline(data, recipe, cpu, 8), recipe, cpu, 1,
                                        ckpt)["curve"]
    seen = []
    res = train_model(_arch(), make_pipeline(data, recipe, CUDA, 8), recipe, CUDA, 1, ckpt=ckpt,
                      progress=lambda e, n, ips: seen.append(e), step="graph")
    assert seen == [2, 3] and res.curve[0] == first[0] and res.status == "ok"
    assert "written on cpu" in res.message and res.error_min < 20
    assert torch.load(ckpt, weights_only=False)["device"] == "cuda"


def test_loss_matches_cross_entropy_reference():
    """The graph's static loss is the batch's cross-entropy, not a stale value."""
    torch.manual_seed(1)
    m = build(_arch()).to(CUDA, memory_format=torch.channels_last)
    opt = torch.optim.SGD(m.parameters(), lr=0.0, momentum=0.9)
    g = GraphStep(m, opt, CUDA)
    x = torch.randn(16, 1, 8, 8, device=CUDA)
    y = torch.randint(0, 10, (16,), device=CUDA)
    for _ in range(5):  # warm-up, capture, replays; lr 0 keeps the weights
        loss = float(g(x, y, 0.0))
    m.train()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        want = float(F.cross_entropy(m(x), y))
    assert g.replay is not None and abs(loss - want) < 1e-2


def test_ten_models_compile_in_one_process():
    """Ten distinct models under CompiledStep in one process, at torch's own recompile limit
    (8): every one is compiled, and labelled by what ran. DSD_COMPILE_BACKEND picks the
    backend (default aot_eager: dynamo and autograd's tracing without code generation; the
    test below runs inductor)."""
    runs = check_compile_labels(10, limit=None, device=CUDA,
                                backend=os.environ.get("DSD_COMPILE_BACKEND", "aot_eager"))
    assert [mode for mode, _ in runs] == ["compile"] * 10, runs


def test_digits_learns_with_torch_compile():
    """Last in the file: compiling can take a minute, and scripts/gpu_check.sh runs these
    under a time limit, so the cheaper checks come first."""
    _learns_digits("compile")
