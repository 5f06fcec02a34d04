"""Step modes, models stepped in turn, and checkpoints across devices (the CPU side; the
CUDA side is tests/test_cuda.py)."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli, train_first_epoch_then_stop

from dsd.data.recipe import with_overrides
from dsd.data.registry import default_recipe, load
from dsd.model.arch import Shape, anynet_arch
from dsd.model.net import build
from dsd.space.sample_run import sample_new
from dsd.store.results import read_results
from dsd.store.run import Run
from dsd.train.batch import run_batch
from dsd.train.faults import CaptureLatch
from dsd.train.jobs import BatchOptions, RunJob
from dsd.train.loop import train_model
from dsd.train.pipeline import make_pipeline
from dsd.train.step import EagerStep, GraphStep, momentum_buffers, sgd_update_
from dsd.train.streams import step_in_turn

DIGITS = Shape(1, 8, 10, 1)


def _arch():
    return anynet_arch([1, 2, 1, 1], [8, 16, 16, 32], [1, 1, 1, 1], [8, 8, 8, 8], shape=DIGITS)


@pytest.mark.parametrize("nesterov,wd", [(True, 5e-4), (False, 0.0), (True, 0.0)])
def test_tensor_lr_update_is_torchs_sgd(nesterov, wd):
    """The graph mode's update, with the learning rate in a tensor, against torch.optim.SGD.

    The two differ in rounding only (torch adds alpha * g in one fused op), so the steps
    are few and small: on this BN network a rounding difference grows about 5x per step
    at lr 0.1.
    """
    torch.manual_seed(0)
    a = build(_arch())
    b = build(_arch())
    b.load_state_dict(a.state_dict())
    start = [p.detach().clone() for p in a.parameters()]
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    ref = torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=wd)
    ours = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=wd)
    params, bufs = list(b.parameters()), momentum_buffers(ours)
    neg_lr = torch.zeros(())
    for step in range(4):
        lr = 0.02 * (1 - step / 8)
        for g in ref.param_groups:
            g["lr"] = lr
        ref.zero_grad()
        F.cross_entropy(a(x), y).backward()
        ref.step()
        for p in params:
            p.grad = None
        F.cross_entropy(b(x), y).backward()
        neg_lr.fill_(-lr)
        sgd_update_(params, bufs, neg_lr, 0.9, wd, nesterov)
    moved = max(float((p.detach() - q).abs().max()) for p, q in zip(a.parameters(), start))
    assert moved > 1e-3  # the comparison below is about trained weights, not the initial ones
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    # The state stays torch's: torch's own step continues from our buffers.
    for p, q in zip(ref.state.values(), ours.state.values()):
        torch.testing.assert_close(p["momentum_buffer"], q["momentum_buffer"], rtol=1e-4, atol=1e-5)


def _run(tmp_path, name: str, n: int = 4):
    out = tmp_path / name
    sample_new("anynetx_c", n, out, DIGITS, {"flops": "100K:300K"}, seed=0, dataset="digits")
    return out


def test_models_stepped_in_turn_train_as_if_alone(tmp_path):
    one = _run(tmp_path, "one")
    turns = tmp_path / "turns"
    shutil.copytree(one, turns)
    recipe = with_overrides(default_recipe("digits"), epochs=2, train_subset=400)
    run_batch(RunJob(Run(one), recipe), BatchOptions(device="cpu"), 1, lambda ev: None)
    events = []
    run_batch(RunJob(Run(turns), recipe), BatchOptions(device="cpu", streams=3), 1, events.append)
    a = read_results(one / "results").final().sort_index()
    b = read_results(turns / "results").final().sort_index()
    assert list(b.status) == ["ok"] * 4
    assert [list(c) for c in a.curve] == [list(c) for c in b.curve]
    assert list(a.train_loss) == list(b.train_loss)
    # They really were in flight together: three models started before the first ended.
    kinds = [(e["kind"], e.get("model_id")) for e in events if e["kind"] in ("start", "done")]
    assert [k for k, _ in kinds[:4]] == ["start", "start", "start", "done"], kinds
    assert not list((turns / "claims").glob("*.lock"))


def test_a_failing_model_in_turn_is_recorded_and_the_others_finish(tmp_path, monkeypatch):
    import dsd.train.loop

    run = _run(tmp_path, "run")
    real = dsd.train.loop.train_steps

    def train(arch, pipe, recipe, device, seed, *args, **kw):
        if seed == 1:
            yield
            yield
            raise RuntimeError("boom in flight")
        return (yield from real(arch, pipe, recipe, device, seed, *args, **kw))

    monkeypatch.setattr(dsd.train.loop, "train_steps", train)
    recipe = with_overrides(default_recipe("digits"), epochs=1)
    run_batch(RunJob(Run(run), recipe), BatchOptions(device="cpu", streams=2), 1, lambda ev: None)
    final = read_results(run / "results").final()
    assert dict(zip(final.model_id, final.status)) == {0: "ok", 1: "failed", 2: "ok", 3: "ok"}
    assert "boom in flight" in final.loc[1, "message"]
    assert set(final.step) == {"eager"}


def test_jobs_in_flight_are_closed_when_stepping_stops():
    closed = []

    def job(k):
        try:
            for _ in range(10):
                yield
            if k == 1:
                raise KeyboardInterrupt
        finally:
            closed.append(k)

    with pytest.raises(KeyboardInterrupt):
        step_in_turn((job(k) for k in range(5)), 3, "cpu")
    assert sorted(closed) == [0, 1, 2]  # 3 and 4 were never taken


def test_checkpoint_from_another_device_resumes(tmp_path):
    """A checkpoint whose data-order generator is another device's (a CUDA generator's state
    is 16 bytes, a CPU one's 5056) keeps its epochs; the rest of the data order is redrawn."""
    torch.set_num_threads(1)
    recipe = with_overrides(default_recipe("digits"), epochs=3)
    pipe = make_pipeline(load("digits"), recipe, torch.device("cpu"), 8)
    ckpt = tmp_path / "m.pt"

    state = train_first_epoch_then_stop(_arch(), pipe, recipe, torch.device("cpu"), 1, ckpt)
    assert state["device"] == "cpu"
    state["gen"], state["device"] = torch.zeros(16, dtype=torch.uint8), "cuda"
    torch.save(state, ckpt)
    seen = []
    res = train_model(_arch(), pipe, recipe, torch.device("cpu"), 1, ckpt=ckpt,
                      progress=lambda e, n, ips: seen.append(e))
    assert seen == [2, 3] and res.curve[0] == state["curve"][0] and res.status == "ok"
    assert "written on cuda" in res.message and "after epoch 1" in res.message
    assert res.error_min < 40  # it went on learning (chance is 90%)


def test_step_and_streams_options(tmp_path):
    run = _run(tmp_path, "run", n=1)
    bad = run_cli("train-batch", str(run), "--device", "cpu", "--step", "graph")
    assert bad.returncode == 2 and "needs a CUDA device" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli("train-batch", str(run), "--device", "cpu", "--step", "fast")
    assert bad.returncode == 2 and "eager, graph, compile" in bad.stderr
    bad = run_cli("train-batch", str(run), "--device", "cpu", "--streams", "0")
    assert bad.returncode == 2 and "--streams must be at least 1" in bad.stderr
    bad = run_cli("sweep", "launch", str(run), "--executor", "local", "--step", "graph", "--dry-run")
    assert bad.returncode == 2 and "--gpus-per-task" in bad.stderr and "Traceback" not in bad.stderr
    assert not (run / "results").exists() or not list((run / "results").glob("*.parquet"))


def test_compiled_steps_train_and_say_so(tmp_path):
    run = _run(tmp_path, "run", n=1)
    r = run_cli("train-batch", str(run), "--device", "cpu", "--step", "compile", "--epochs", "2",
                "--workers", "1")
    assert r.returncode == 0, r.stderr
    row = read_results(run / "results").final().iloc[0]
    assert row.status == "ok" and row.step == "compile" and row.error_min < 60, row.to_dict()


def _cpu_capture(model, opt):
    """A CPU stand-in for cuda_capture. Like a capture it leaves every tensor as it was (it
    runs the step once for its static output, then restores weights, BN statistics and
    momentum); a replay runs the step again on the static inputs and writes that output."""
    def capture(fn, device):
        weights = {k: v.clone() for k, v in model.state_dict().items()}
        bufs = [b.clone() for b in momentum_buffers(opt)]
        out = fn()
        model.load_state_dict(weights)
        for b, saved in zip(momentum_buffers(opt), bufs):
            b.copy_(saved)
        return (lambda: out.copy_(fn())), out
    return capture


def _pair(seed: int = 0):
    torch.manual_seed(seed)
    a, b = build(_arch()), build(_arch())
    b.load_state_dict(a.state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9, nesterov=True, weight_decay=5e-4)
            for m in (a, b)]
    return a, b, opts


def _batches(n: int):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g))
            for _ in range(n)]


def test_graph_step_logic_against_eager_on_cpu():
    """GraphStep's own logic (warm-up, static buffers, capture, replays reading each new
    batch) with the two CUDA calls replaced by CPU stand-ins: eager's losses and weights."""
    cpu = torch.device("cpu")
    a, b, (oa, ob) = _pair()
    eager = EagerStep(a, oa, cpu)
    graph = GraphStep(b, ob, cpu, capture=_cpu_capture(b, ob), warm_up=lambda fn, device: fn())
    la, lb, outs = [], [], []
    for i, (x, y) in enumerate(_batches(8)):
        lr = 0.02 * (1 - i / 8)
        la.append(float(eager(x, y, lr)))
        out = graph(x, y, lr)
        outs.append(out)
        lb.append(float(out))
    assert graph.replay is not None and graph.mode == "graph"
    assert all(o is outs[-1] for o in outs[3:])  # from the capture on: one static loss tensor
    assert len(set(round(v, 5) for v in lb)) == 8
    assert lb == pytest.approx(la, rel=1e-4)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_graph_capture_failure_goes_on_eagerly_and_says_so():
    cpu = torch.device("cpu")
    a, b, (oa, ob) = _pair()

    def refuse(fn, device):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    eager = EagerStep(a, oa, cpu)
    graph = GraphStep(b, ob, cpu, capture=refuse, warm_up=lambda fn, device: fn(), latch=CaptureLatch())
    for x, y in _batches(6):
        eager(x, y, 0.02)
        graph(x, y, 0.02)
    assert graph.mode == "eager (graph capture failed: RuntimeError: operation not permitted when " \
                         "stream is capturing)"
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_out_of_memory_in_capture_is_left_to_the_worker():
    cpu = torch.device("cpu")
    _, b, (_, ob) = _pair()

    def oom(fn, device):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")

    latch = CaptureLatch()
    graph = GraphStep(b, ob, cpu, capture=oom, warm_up=lambda fn, device: fn(), latch=latch)
    batches = _batches(4)
    for x, y in batches[:3]:
        graph(x, y, 0.02)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        graph(*batches[3], 0.02)
    # A failed capture all the same: the retry at half the batch, and every later model, run eagerly.
    assert latch.reason == "OutOfMemoryError: CUDA out of memory. Tried to allocate 1 GiB"
    retry = GraphStep(b, ob, cpu, capture=oom, warm_up=lambda fn, device: fn(), latch=latch)
    for x, y in batches:
        retry(x, y, 0.02)
    assert retry.mode == latch.label and retry.replay is None
