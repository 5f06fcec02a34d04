"""What a CUDA graph step must keep, checked on the CPU: GraphStep's own logic with a CPU
stand-in for the capture, and each check shown to catch the defect it is there for.

A replay that reads a stale batch, a learning rate frozen at capture, a loss that is not
rewritten, BN statistics the graph does not update, a process that captures again after
a failed capture: each is a stand-in (`StandIn(defect=...)`) that a check must fail on.
tests/test_cuda.py runs the same properties on a GPU, where the capture is real.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from dsd.model.arch import Shape, anynet_arch
from dsd.model.net import build
from dsd.train.faults import CaptureLatch
from dsd.train.step import EagerStep, GraphStep, cuda_capture

DIGITS = Shape(1, 8, 10, 1)
# Jumps between steps: a learning rate read late, or frozen at capture, moves the weights by
# about 1e-2 here; graph and eager differ by rounding, about 1e-7 (larger rates grow that).
LRS = [0.02, 0.004, 0.03, 0.0, 0.01, 0.04, 0.008, 0.025]
DEFECTS = ("stale batch", "frozen lr", "stale loss", "frozen BN")


class StandIn:
    """A CPU stand-in for cuda_capture, bound to one GraphStep. Like a capture it leaves every
    tensor as it was (it runs the step once for its static output, then restores weights, BN
    statistics and momentum); a replay runs the step again and writes the static output.
    `defect` breaks it the way a wrong graph would."""

    def __init__(self, step: GraphStep | None = None, defect: str | None = None):
        assert defect in (None, *DEFECTS)
        self.defect, self.step, self.calls = defect, step, 0

    def __call__(self, fn, device):
        self.calls += 1
        step = self.step
        weights = copy.deepcopy(step.model.state_dict())
        bufs = [b.clone() for b in step.bufs]
        out = fn()
        step.model.load_state_dict(weights)
        for b, saved in zip(step.bufs, bufs):
            b.copy_(saved)
        at_capture = {"x": step.x.clone(), "y": step.y.clone(), "neg_lr": step.neg_lr.clone()}
        return (lambda: self._replay(fn, out, at_capture)), out

    def _replay(self, fn, out, at_capture) -> None:
        step = self.step
        frozen = {"stale batch": ("x", "y"), "frozen lr": ("neg_lr",)}.get(self.defect, ())
        live = {k: getattr(step, k).clone() for k in frozen}
        for k in frozen:
            getattr(step, k).copy_(at_capture[k])
        bn = [t.clone() for t in _bn_buffers(step.model)] if self.defect == "frozen BN" else None
        loss = fn()
        if bn is not None:
            for t, saved in zip(_bn_buffers(step.model), bn):
                t.copy_(saved)
        for k in frozen:
            getattr(step, k).copy_(live[k])
        if self.defect != "stale loss":
            out.copy_(loss)


def _bn_buffers(model) -> list[torch.Tensor]:
    """The running statistics themselves (not copies)."""
    return [b for name, b in model.named_buffers() if "running" in name]


class Counting:
    """A real capture, counted."""

    def __init__(self, capture):
        self.capture, self.calls = capture, 0

    def __call__(self, fn, device):
        self.calls += 1
        return self.capture(fn, device)


def _refuse(fn, device):
    raise RuntimeError("operation not permitted when stream is capturing")


def _capture_with_a_sync(fn, device):
    """A real capture that fails as PyTorch makes it fail: a host sync inside the graph."""
    def step():
        out = fn()
        torch.cuda.synchronize(device)
        return out
    return cuda_capture(step, device)


def _arch():
    return anynet_arch([1, 2, 1, 1], [8, 16, 16, 32], [1, 1, 1, 1], [8, 8, 8, 8], shape=DIGITS)


@dataclass(frozen=True)
class Rig:
    """Where the checks run: the CPU with stand-ins for the capture (defects allowed), or a
    GPU with real captures (tests/test_cuda.py). Every step is fp32: bf16's rounding would
    hide what the checks look for."""

    device: torch.device = torch.device("cpu")

    @property
    def real(self) -> bool:
        return self.device.type == "cuda"

    def graph(self, model, opt, defect: str | None = None, latch: CaptureLatch | None = None,
              refuse: bool = False) -> GraphStep:
        latch = latch or CaptureLatch()
        if self.real:
            assert defect is None, "defects are stand-ins"
            capture = Counting(_capture_with_a_sync if refuse else cuda_capture)
            return GraphStep(model, opt, self.device, capture=capture, latch=latch, amp=False)
        stand_in = StandIn(defect=defect)
        g = GraphStep(model, opt, self.device, capture=_refuse if refuse else stand_in,
                      warm_up=lambda fn, device: fn(), latch=latch, amp=False)
        stand_in.step = g
        return g

    def eager(self, model, opt) -> EagerStep:
        return EagerStep(model, opt, self.device, amp=False)

    def pair(self, wd: float = 0.01):
        """Two copies of one model and their optimizers; weight decay large enough to matter."""
        torch.manual_seed(0)
        fmt = torch.channels_last if self.real else torch.preserve_format
        a, b = (build(_arch()).to(self.device, memory_format=fmt) for _ in range(2))
        b.load_state_dict(a.state_dict())
        opts = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=wd)
                for m in (a, b)]
        return a, b, opts

    def batches(self, n: int):
        g = torch.Generator().manual_seed(1)
        return [(torch.randn(16, 1, 8, 8, generator=g).to(self.device),
                 torch.randint(0, 10, (16,), generator=g).to(self.device)) for _ in range(n)]


CPU = Rig()


# -- the checks: each raises AssertionError when its property fails -------------------------

def check_matches_eager(defect=None, rig: Rig = CPU) -> None:
    """fp32, a learning rate that jumps every step, weight decay and momentum: the graph's
    losses and weights are eager's to rounding."""
    a, b, (oa, ob) = rig.pair()
    eager, graph = rig.eager(a, oa), rig.graph(b, ob, defect)
    la, lb = [], []
    for (x, y), lr in zip(rig.batches(len(LRS)), LRS):
        la.append(float(eager(x, y, lr)))
        lb.append(float(graph(x, y, lr)))
    assert graph.replay is not None and graph.mode == "graph"
    assert lb == pytest.approx(la, rel=1e-4), (la, lb)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5)


def check_lr0_leaves_weights(defect=None, rig: Rig = CPU) -> None:
    """After capture, with momentum built up, lr = 0 leaves every weight bit-unchanged."""
    _, b, (_, ob) = rig.pair()
    graph = rig.graph(b, ob, defect)
    batches = rig.batches(7)
    for x, y in batches[:4]:  # three warm-up steps, then the capture
        graph(x, y, 0.05)
    before = [p.detach().clone() for p in b.parameters()]
    for x, y in batches[4:]:
        graph(x, y, 0.0)
    assert graph.replay is not None
    assert all(torch.equal(p, q) for p, q in zip(before, b.parameters()))


def check_alternating_losses(defect=None, rig: Rig = CPU) -> None:
    """After capture, at lr 0, batches A, B, A, B, ...: the static loss alternates with them,
    and is each batch's own cross-entropy."""
    _, b, (_, ob) = rig.pair()
    graph = rig.graph(b, ob, defect)
    for x, y in rig.batches(4):
        graph(x, y, 0.05)
    (xa, ya), (xb, yb) = rig.batches(6)[4:]
    losses = [float(graph(*((xa, ya) if i % 2 == 0 else (xb, yb)), 0.0)) for i in range(6)]
    assert losses[0] != losses[1], losses
    assert losses[0::2] == [losses[0]] * 3 and losses[1::2] == [losses[1]] * 3, losses
    fresh = copy.deepcopy(b).train()
    with torch.no_grad():
        want = [float(F.cross_entropy(fresh(x), y)) for x, y in ((xa, ya), (xb, yb))]
    assert losses[:2] == pytest.approx(want, rel=1e-5), (losses, want)


def check_bn_statistics(defect=None, rig: Rig = CPU) -> None:
    """Without precise-BN, the running statistics the graph leaves are eager's: nothing
    recomputes them before evaluation."""
    a, b, (oa, ob) = rig.pair()
    eager, graph = rig.eager(a, oa), rig.graph(b, ob, defect)
    for (x, y), lr in zip(rig.batches(len(LRS)), LRS):
        eager(x, y, lr)
        graph(x, y, lr)
    assert _bn_buffers(b)
    for p, q in zip(_bn_buffers(a), _bn_buffers(b)):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6)


def check_later_models_go_eager(shared: bool = True, rig: Rig = CPU) -> str:
    """After one model's capture fails, the next model of the process captures nothing: it
    trains eagerly, matches eager, and says why (returned). `shared=False` is the defect: a
    latch that does not outlive the model that tripped it."""
    latch = CaptureLatch()
    _, first, (_, o1) = rig.pair()
    g1 = rig.graph(first, o1, latch=latch, refuse=True)
    for x, y in rig.batches(5):
        g1(x, y, 0.05)
    assert latch.reason and g1.mode.startswith("eager (graph capture failed: "), g1.mode
    a, b, (oa, ob) = rig.pair()
    eager, g2 = rig.eager(a, oa), rig.graph(b, ob, latch=latch if shared else CaptureLatch())
    la, lb = [], []
    for (x, y), lr in zip(rig.batches(len(LRS)), LRS):
        la.append(float(eager(x, y, lr)))
        lb.append(float(g2(x, y, lr)))
    assert g2.capture.calls == 0 and g2.replay is None, "captured after a failed capture"
    assert g2.mode == latch.label, g2.mode
    assert lb == pytest.approx(la, rel=1e-4)
    return g2.mode


CHECKS = [check_matches_eager, check_lr0_leaves_weights, check_alternating_losses, check_bn_statistics]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_graph_step_keeps_the_property_on_cpu(check):
    check()


@pytest.mark.parametrize("check,defect", [
    (check_matches_eager, "stale batch"), (check_matches_eager, "frozen lr"),
    (check_lr0_leaves_weights, "frozen lr"),
    (check_alternating_losses, "stale loss"), (check_alternating_losses, "stale batch"),
    (check_bn_statistics, "frozen BN"),
], ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_each_check_catches_its_defect(check, defect):
    with pytest.raises(AssertionError):
        check(defect)


def test_bn_statistics_need_their_own_check():
    """A graph that does not update BN statistics trains the same losses and weights: only
    the statistics check sees it (precise-BN, which recomputes them, would hide it too)."""
    check_matches_eager("frozen BN")
    with pytest.raises(AssertionError):
        check_bn_statistics("frozen BN")


def test_a_failed_capture_turns_the_next_models_eager():
    assert check_later_models_go_eager() == (
        "eager (graphs off in this process after a failed capture: RuntimeError: operation not "
        "permitted when stream is capturing)")
    with pytest.raises(AssertionError, match="captured after a failed capture"):
        check_later_models_go_eager(shared=False)
