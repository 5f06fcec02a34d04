"""Failures contained, labels true (the CPU side; tests/test_cuda.py has the GPU side):
errors classified from stand-in exceptions, a lost device that stops its worker instead of
failing its queue, cuDNN's allocation failures retried like CUDA's out of memory, no cache
freed after a failed capture, compile runs labelled by what ran, and the precision column
that keeps fp32 and bf16 rows from mixing silently."""

from __future__ import annotations

import contextlib
import functools
import shutil

import pytest
import torch
import torch.nn.functional as F

import dsd.train.loop
from dsd.analysis.conditions import differences
from dsd.data.recipe import with_overrides
from dsd.data.registry import default_recipe
from dsd.model.arch import Shape, anynet_arch
from dsd.model.net import build
from dsd.space.sample_run import sample_new
from dsd.store.claims import try_claim
from dsd.store.results import read_results, write_result
from dsd.store.run import Run
from dsd.train import faults, step
from dsd.train.batch import run_batch
from dsd.train.faults import CaptureLatch, classify
from dsd.train.jobs import BatchOptions, RunJob

DIGITS = Shape(1, 8, 10, 1)
REAL_TRAIN_STEPS = dsd.train.loop.train_steps

OOMS = [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"),
        RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
        RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported")]
STICKY = [RuntimeError("CUDA error: an illegal memory access was encountered"),
          RuntimeError("CUDA error: device-side assert triggered\nCompile with `TORCH_USE_CUDA_DSA`"),
          getattr(torch, "AcceleratorError", RuntimeError)("CUDA error: unspecified launch failure"),
          RuntimeError("CUDA error: misaligned address")]


@pytest.mark.parametrize("exc", OOMS, ids=lambda e: str(e)[:30])
def test_allocation_failures_of_every_library_are_out_of_memory(exc):
    assert classify(exc) == "oom" and classify(exc, lambda: True) == "oom"


@pytest.mark.parametrize("exc", STICKY, ids=lambda e: str(e)[:30])
def test_sticky_cuda_errors_are_known_by_their_message(exc):
    assert classify(exc) == "sticky" and classify(exc, lambda: True) == "sticky"


def test_an_unknown_error_is_the_models_unless_the_device_stopped_working():
    boom = RuntimeError("shape mismatch in the model")
    assert classify(boom) == "other"  # a CPU: no probe
    assert classify(boom, lambda: True) == "other"
    assert classify(boom, lambda: False) == "sticky"  # CUDA calls fail from now on
    assert classify(ValueError("CUDNN_STATUS_ALLOC_FAILED"), lambda: True) == "other"  # not torch's


def test_no_cache_is_freed_after_a_failed_capture(monkeypatch):
    freed = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: freed.append(1))
    monkeypatch.setattr(faults, "GRAPHS", CaptureLatch())
    assert faults.free_cached_memory(torch.device("cuda")) and freed == [1]
    assert not faults.free_cached_memory(torch.device("cpu")) and freed == [1]
    faults.GRAPHS.trip("RuntimeError: operation not permitted when stream is capturing")
    assert not faults.free_cached_memory(torch.device("cuda")) and freed == [1]
    assert step.planned_mode("graph") == faults.GRAPHS.label and step.planned_mode("eager") == "eager"


def _run(tmp_path, n: int = 4, name: str = "run"):
    out = tmp_path / name
    sample_new("anynetx_c", n, out, DIGITS, {"flops": "100K:300K"}, seed=0, dataset="digits")
    return out


def _cfg(run, **kw) -> tuple[RunJob, BatchOptions]:
    recipe = with_overrides(default_recipe("digits"), epochs=1)
    return RunJob(Run(run), recipe), BatchOptions(device="cpu", **kw)


def _failing_for(monkeypatch, seeds: dict, after_steps: int = 2):
    """train_steps that raises seeds[seed] after a few steps (a model in flight), else trains."""
    calls = []

    def train(arch, pipe, recipe, device, seed, batch_size=None, *args, **kw):
        calls.append((seed, batch_size))
        exc = seeds.get(seed)
        if exc is not None and (classify(exc) != "oom" or batch_size == recipe.batch_size):
            for _ in range(after_steps):
                yield
            raise exc
        return (yield from REAL_TRAIN_STEPS(arch, pipe, recipe, device, seed, batch_size, *args, **kw))

    monkeypatch.setattr(dsd.train.loop, "train_steps", train)
    return calls


def test_cudnn_allocation_failure_is_retried_at_half_the_batch(tmp_path, monkeypatch):
    run = _run(tmp_path, 2)
    calls = _failing_for(monkeypatch, {1: RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED")})
    run_batch(*_cfg(run), 1, lambda ev: None)
    final = read_results(run / "results").final()
    assert list(final.status) == ["ok", "ok"] and list(final.batch_size) == [32, 16]
    assert "retried at batch 16 after: out of memory at batch 32: RuntimeError: cuDNN error: " \
           "CUDNN_STATUS_ALLOC_FAILED" in final.loc[1, "message"]
    assert calls == [(0, 32), (1, 32), (1, 16)]
    assert set(final.precision) == {"fp32"}  # written by the worker


@pytest.mark.parametrize("streams", [1, 2])
def test_a_lost_device_stops_the_worker_and_leaves_its_queue(tmp_path, monkeypatch, streams):
    """Model 1 hits an illegal memory access: its row says so, and models 2 and 3 get no
    `failed` row; their claims are free for the next run. With two streams, model 0 was in
    flight beside it and is left unwritten too."""
    run = _run(tmp_path, 4)
    _failing_for(monkeypatch, {1: RuntimeError("CUDA error: an illegal memory access was encountered")})
    events = []
    run_batch(*_cfg(run, streams=streams), 1, events.append)
    final = read_results(run / "results").final()
    assert list(final.model_id) == ([0, 1] if streams == 1 else [1])
    assert final.loc[1, "status"] == "failed"
    assert final.loc[1, "message"].startswith("the device became unusable (worker w0 stopped; its other "
                                              "models are left for the next run): RuntimeError: CUDA error: "
                                              "an illegal memory access")
    errors = [e["message"] for e in events if e["kind"] == "error"]
    assert len(errors) == 1 and "illegal memory access" in errors[0]
    for mid in (0, 2, 3):
        claim = try_claim(Run(run).claims_dir, mid)
        assert claim is not None  # nobody holds it
        claim.release(False)
    # The next run trains what was left, and not the model recorded as failed.
    monkeypatch.setattr(dsd.train.loop, "train_steps", REAL_TRAIN_STEPS)
    left = [2, 3] if streams == 1 else [0, 2, 3]
    assert run_batch(*_cfg(run), 1, lambda ev: None) == [(0, m) for m in left]



def test_an_ordinary_failure_still_moves_on(tmp_path, monkeypatch):
    run = _run(tmp_path, 3)
    _failing_for(monkeypatch, {1: RuntimeError("boom")})
    run_batch(*_cfg(run), 1, lambda ev: None)
    final = read_results(run / "results").final()
    assert dict(zip(final.model_id, final.status)) == {0: "ok", 1: "failed", 2: "ok"}


# -- compile: what ran -------------------------------------------------------------------

def _compile_models(n: int, device: torch.device, backend: str) -> list[tuple[str, bool]]:
    """n distinct models, two steps each under CompiledStep; for each, its label and whether
    dynamo made a graph during its steps."""
    counters = torch._dynamo.utils.counters["stats"]
    out = []
    for i in range(n):
        torch.manual_seed(i)
        w = 8 + 8 * i
        model = build(anynet_arch([1] * 4, [w, w, 2 * w, 2 * w], [1] * 4, [8] * 4, shape=DIGITS)).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        s = step.CompiledStep(model, opt, device, compiler=functools.partial(torch.compile, backend=backend))
        before = counters["unique_graphs"]
        for _ in range(2):
            loss = s(torch.randn(4, 1, 8, 8, device=device), torch.randint(0, 10, (4,), device=device), 0.01)
        assert torch.isfinite(loss)
        out.append((s.mode, counters["unique_graphs"] > before))
    return out


def check_compile_labels(n: int, limit: int | None = 2, device: torch.device = torch.device("cpu"),
                         backend: str = "eager") -> list[tuple[str, bool]]:
    """Every model's label is true: 'compile' exactly when dynamo compiled it. `limit` sets
    dynamo's recompile limit (None: torch's own, 8); `backend` "eager" is dynamo alone."""
    torch._dynamo.reset()
    patch = torch._dynamo.config.patch(recompile_limit=limit) if limit else contextlib.nullcontext()
    with patch:
        runs = _compile_models(n, device, backend)
    for i, (mode, compiled) in enumerate(runs):
        assert (mode == "compile") == compiled, (i, runs)
    return runs


def test_every_model_of_a_process_compiles_and_says_so(monkeypatch):
    """A recompile limit of 2 and four models: each compiles its own forward, and says so.
    The defect, one forward shared by every model (torch.compile(model)), leaves the third
    and fourth eager: the third hears dynamo's warning, the fourth runs eager silently."""
    check_compile_labels(4)
    monkeypatch.setattr(step, "own_forward", lambda model: model)
    with pytest.raises(AssertionError):
        check_compile_labels(4)
    torch._dynamo.reset()


def test_a_model_past_the_recompile_limit_is_labelled_partly_eager():
    torch._dynamo.reset()
    model = build(anynet_arch([1, 1, 1, 1], [8, 8, 16, 16], [1, 1, 1, 1], [8, 8, 8, 8], shape=DIGITS))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    s = step.CompiledStep(model, opt, torch.device("cpu"),
                          compiler=functools.partial(torch.compile, backend="eager"))
    with torch._dynamo.config.patch(recompile_limit=1, automatic_dynamic_shapes=False):
        for n in (4, 4, 6, 6):  # a new batch size: a recompile, past the limit
            loss = s(torch.randn(n, 1, 8, 8), torch.randint(0, 10, (n,)), 0.01)
    assert torch.isfinite(loss)
    assert s.mode == "compile, partly eager (torch._dynamo hit config.recompile_limit (1))", s.mode
    torch._dynamo.reset()


def test_eager_and_compiled_steps_agree_in_fp32():
    """The per-model forward changes nothing but the code object's identity."""
    torch.manual_seed(0)
    arch = anynet_arch([1, 1, 1, 1], [8, 8, 16, 16], [1, 1, 1, 1], [8, 8, 8, 8], shape=DIGITS)
    a, b = build(arch), build(arch)
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    with torch.no_grad():
        assert torch.equal(step.own_forward(b)(x), b(x))
        assert float(F.cross_entropy(step.own_forward(a)(x), y)) == float(F.cross_entropy(a(x), y))


# -- precision -----------------------------------------------------------------------------

def test_precision_names_the_arithmetic():
    assert step.precision("cpu") == "fp32" and step.precision("cuda") == "bf16-autocast"
    assert step.precision(torch.device("cuda"), amp=False) == "fp32"


def _row(mid: int, **kw) -> dict:
    return {"model_id": mid, "status": "ok", "error_min": 10.0, "error_last": 10.0, "curve": [10.0], **kw}


def test_runs_that_mix_precisions_are_flagged(tmp_path):
    """A CPU run (rows from before the column count as fp32 by their device), a GPU run, and
    a run resumed on the GPU: the comparison says so, and names the mixed run."""
    cpu, gpu, mixed = (_run(tmp_path, 2, name) for name in ("cpu", "gpu", "mixed"))
    for mid in (0, 1):
        write_result(cpu / "results", _row(mid, device="cpu:1threads"))  # an older row: no precision
        write_result(gpu / "results", _row(mid, device="cuda:NVIDIA H100", precision="bf16-autocast"))
    write_result(mixed / "results", _row(0, device="cpu:1threads", precision="fp32"))
    write_result(mixed / "results", _row(1, device="cuda:NVIDIA H100", precision="bf16-autocast"))
    write_result(mixed / "results", _row(2, status="failed", precision="fp64"))  # not final: not counted
    runs = lambda *names: [(n, Run(tmp_path / n)) for n in names]  # noqa: E731
    assert [d for d in differences(runs("cpu", "cpu")) if "precision" in d] == []
    assert "precision differs: fp32 (cpu), bf16-autocast (gpu)" in differences(runs("cpu", "gpu"))
    got = differences(runs("cpu", "mixed"))
    assert "precision differs: fp32 (cpu), mixed (mixed)" in got
    assert "precision differs within mixed: its models were trained in bf16-autocast (1 models), " \
           "fp32 (1 models)" in got
    assert [d for d in differences(runs("mixed")) if "precision" in d] == [got[-1]]
    shutil.rmtree(cpu / "results")
    assert [d for d in differences(runs("cpu", "gpu")) if "precision" in d] == []  # untrained: nothing to say
