"""Stream hygiene, checked on the CPU with stand-ins for the CUDA calls: one warm-up stream
per step object, tensors that cross streams marked for the stream that reads them, each
model's stream waiting for the pipeline's uploads, and precise-BN without a device sync
per BN layer per batch (the same averages as torch's cumulative mode)."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from dsd.data.recipe import with_overrides
from dsd.data.registry import default_recipe, load
from dsd.model.arch import Shape, anynet_arch
from dsd.model.net import build
from dsd.train import loop
from dsd.train.pipeline import make_pipeline
from dsd.train.step import SideStream
from dsd.train.streams import step_in_turn

CPU = torch.device("cpu")


class FakeStream:
    def __init__(self, name: str):
        self.name, self.waited = name, []

    def wait_stream(self, other) -> None:
        self.waited.append(other.name)


class FakeTensor:
    def __init__(self):
        self.recorded = []

    def record_stream(self, stream) -> None:
        self.recorded.append(stream.name)


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda's stream calls, recorded: `current` is the stream a model steps on."""
    current = FakeStream("current")
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: current)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    return current


class StreamPerCall(SideStream):
    """The defect: a new stream for every warm-up, from torch's shared round-robin pool."""

    def __call__(self, fn, device):
        self.stream = None
        return super().__call__(fn, device)


def check_one_warm_up_stream(side_type) -> None:
    made = []

    def make(device):
        made.append(FakeStream(f"side{len(made)}"))
        return made[-1]

    side = side_type(make_stream=make)
    outs = [side(FakeTensor, "cuda") for _ in range(3)]
    assert len(made) == 1, f"{len(made)} streams for one step object's warm-ups"
    assert made[0].waited == ["current"] * 3  # each warm-up follows the model's stream ...
    assert all(o.recorded == ["current"] for o in outs)  # ... and its loss is marked as read there


def test_warm_ups_take_one_stream_per_step_object(fake_cuda):
    check_one_warm_up_stream(SideStream)
    assert fake_cuda.waited == ["side0"] * 3  # the model's stream waits for each warm-up
    with pytest.raises(AssertionError, match="3 streams"):
        check_one_warm_up_stream(StreamPerCall)


class Lanes:
    """Stand-in lanes for step_in_turn, recording the order of admissions and steps."""

    def __init__(self):
        self.log: list[tuple] = []

    def admit(self, slot: int) -> None:
        self.log.append(("admit", slot))

    def enter(self, slot: int):
        self.log.append(("enter", slot))
        return contextlib.nullcontext()


def test_each_new_job_waits_for_the_current_stream_before_its_first_step():
    """A model's first step reads the pipeline's data, made on another stream: its lane is
    admitted (made to wait for that stream) after the model is taken and before it steps."""
    lanes, steps = Lanes(), []

    def job(k, n):
        for i in range(n):
            steps.append((k, i, len(lanes.log)))
            yield

    step_in_turn((job(k, n) for k, n in enumerate([2, 4, 1, 3])), 2, "cpu", lanes)
    admits = [i for i, e in enumerate(lanes.log) if e[0] == "admit"]
    firsts = [at for k, i, at in steps if i == 0]
    assert len(admits) == 4 and len(firsts) == 4
    for admitted, first in zip(admits, firsts):
        assert admitted < first  # admitted before that job's first step, in the order taken
    assert [slot for kind, slot in lanes.log if kind == "admit"] == [0, 1, 0, 0]  # the slots freed


# -- precise-BN ------------------------------------------------------------------------

def _model_and_pipe():
    torch.manual_seed(0)
    arch = anynet_arch([1, 2, 1, 1], [8, 16, 16, 32], [1, 1, 1, 1], [8, 8, 8, 8], shape=Shape(1, 8, 10, 1))
    recipe = with_overrides(default_recipe("digits"), epochs=1)
    return build(arch), make_pipeline(load("digits"), recipe, CPU, 8)


def _torch_cumulative(model, pipe, images: int) -> None:
    """The reference: torch's own cumulative average (momentum=None), which reads each BN
    layer's batch count back to the host at every batch."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    seen = 0
    with torch.no_grad():
        for x, _ in pipe.train_batches(32, torch.Generator().manual_seed(3)):
            model(x)
            seen += len(x)
            if seen >= images:
                break


def test_precise_bn_averages_are_torchs_cumulative_ones_bit_for_bit():
    a, pipe = _model_and_pipe()
    b, _ = _model_and_pipe()
    _torch_cumulative(a, pipe, 320)
    loop._precise_bn(b, pipe, CPU, torch.Generator().manual_seed(3), 32, 320)
    want, got = dict(a.named_buffers()), dict(b.named_buffers())
    assert int(want["stem.1.num_batches_tracked"]) == 10  # ten batches of 32 averaged
    for name in want:
        assert torch.equal(want[name], got[name]), name
    assert all(m.momentum == 0.1 for m in b.modules() if isinstance(m, nn.BatchNorm2d))  # restored


def test_precise_bn_never_has_torch_read_the_batch_count():
    """momentum=None makes every BN layer read its batch counter back to the host: one sync
    per layer per batch. Each forward of the recompute must see a number instead."""
    model, pipe = _model_and_pipe()
    seen = []

    def hook(m, args):
        seen.append(m.momentum)

    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_pre_hook(hook)
    loop._precise_bn(model, pipe, CPU, torch.Generator().manual_seed(3), 32, 96)
    assert seen and None not in seen
    assert sorted(set(seen), reverse=True) == [1.0, 0.5, 1 / 3]
