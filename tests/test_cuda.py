"""Training on a real GPU: skipped where torch sees no CUDA device (CI has none).

Run on a GPU machine with `python -m pytest -m cuda tests/test_cuda.py`; the
Fashion-MNIST test reads DSD_FASHION_MNIST (a folder with the four idx .gz files) or the
Debian package's folder. scripts/gpu_check.sh runs these and bench/gpu.py in one go.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, train_first_epoch_then_stop

from dsd.data.loaders import load
from dsd.data.recipe import with_overrides
from dsd.data.registry import default_recipe
from dsd.model.arch import Shape, anynet_arch
from dsd.model.net import build
from dsd.space.sample_run import sample_new
from dsd.store.results import read_results
from dsd.store.run import Run
from dsd.train.batch import BatchConfig, run_batch
from dsd.train.loop import train_model
from dsd.train.pipeline import make_pipeline
from dsd.train.step import EagerStep, GraphStep

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


def _fashion_cfg(run: Path, **kw) -> BatchConfig:
    if not Path(FASHION, "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"no Fashion-MNIST at {FASHION} (set DSD_FASHION_MNIST)")
    recipe = with_overrides(default_recipe("fashion-mnist"), epochs=kw.pop("epochs", 2),
                            train_subset=10000, test_subset=2000)
    return BatchConfig(Run(run), recipe, data_dir=FASHION, device="cuda", **kw)


@pytest.mark.parametrize("workers,streams,step", [(1, 1, "eager"), (2, 1, "graph"), (1, 3, "graph")])
def test_fashion_mnist_train_batch_end_to_end(tmp_path, workers, streams, step):
    run = _fashion_run(tmp_path, 4)
    run_batch(_fashion_cfg(run, step=step, streams=streams), workers, lambda ev: None)
    final = read_results(run / "results").final()
    assert list(final.status) == ["ok"] * 4, final.message.tolist()
    assert set(final.step) == {step} and all(d.startswith("cuda:") for d in final.device)
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


def test_digits_learns_with_torch_compile():
    """Last in the file: compiling can take a minute, and scripts/gpu_check.sh runs these
    under a time limit, so the cheaper checks come first."""
    _learns_digits("compile")
