"""One training step (forward, cross-entropy, backward, SGD update), three ways.

- `eager`: PyTorch as written, every kernel launched from Python each step.
- `graph` (CUDA only): after a few eager warm-up steps on a side stream, the whole step
  is captured in a CUDA graph once and replayed for every later batch; the batch is
  copied into static input buffers and the learning rate lives in a device tensor, so a
  replay launches one graph instead of hundreds of kernels. If capture fails, the model
  carries on eagerly and the result row says why; so do the process's later models
  (dsd.train.faults.CaptureLatch).
- `compile`: `torch.compile` on the model (opt-in; its compile time is part of the
  training time that the row reports). Each model compiles its own forward, so dynamo's
  recompile limit, which counts per code object, is not spent by the models before it;
  a model that hits it anyway is labelled partly eager.

Graph and eager runs follow the same SGD (Nesterov momentum, weight decay on every
parameter): `sgd_update_` is torch's update with the learning rate as a tensor, kept
in the optimizer's own momentum buffers so checkpoints read the same in every mode.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dsd.train import faults
from dsd.train.recompiles import LIMIT_HITS

STEP_MODES = ("eager", "graph", "compile")
WARMUP_STEPS = 3  # eager steps before capture: lazy initialisations (cuDNN's autotuner) happen here


def autocast(device: torch.device, amp: bool = True):
    # bf16 autocast pays off on GPUs; on CPUs it is slower than fp32 for these convs. A
    # captured graph must not reuse autocast's cached casts across replays.
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.type == "cuda",
                          cache_enabled=False)


def precision(device: torch.device | str, amp: bool = True) -> str:
    """The arithmetic a model trains in on `device`: the results' `precision` column."""
    return "bf16-autocast" if amp and torch.device(device).type == "cuda" else "fp32"


def check_mode(mode: str, device: torch.device | str) -> str:
    """The step mode, or ValueError with what to use instead."""
    if mode not in STEP_MODES:
        raise ValueError(f"--step must be one of {', '.join(STEP_MODES)}, got {mode!r}")
    if mode == "graph" and torch.device(device).type != "cuda":
        raise ValueError("--step graph needs a CUDA device (--device cuda); on a CPU use eager")
    return mode


class EagerStep:
    """PyTorch's own SGD, stepped from Python: the reference every other mode matches."""

    def __init__(self, model: nn.Module, opt: torch.optim.SGD, device: torch.device, amp: bool = True):
        self.model, self.opt, self.device, self.amp = model, opt, device, amp
        self.mode = "eager"

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        for group in self.opt.param_groups:
            group["lr"] = lr
        with autocast(self.device, self.amp):
            loss = F.cross_entropy(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()


def own_forward(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """`model(x)` behind a code object of its own. Dynamo caches compiled code per code
    object and stops compiling one after `recompile_limit` (8) variants: compiling every
    model's shared `forward` would leave the ninth model of a process eager, silently."""
    def forward(x: torch.Tensor) -> torch.Tensor:
        return model(x)
    forward.__code__ = forward.__code__.replace()  # a copy: a new identity, the same code
    return forward


class CompiledStep(EagerStep):
    """EagerStep on a compiled forward; `mode` turns 'compile, partly eager (...)' when dynamo
    reports a compile limit hit during one of this model's steps."""

    def __init__(self, model: nn.Module, opt: torch.optim.SGD, device: torch.device, amp: bool = True,
                 compiler: Callable = torch.compile):
        super().__init__(compiler(own_forward(model)), opt, device, amp)
        self.mode = "compile"
        LIMIT_HITS.install()

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        seen = LIMIT_HITS.count
        loss = super().__call__(x, y, lr)
        if LIMIT_HITS.count != seen and self.mode == "compile":
            self.mode = f"compile, partly eager ({LIMIT_HITS.last})"
        return loss


def cuda_capture(fn: Callable[[], torch.Tensor],
                 device: torch.device) -> tuple[Callable[[], None], torch.Tensor]:
    """Capture `fn` in a CUDA graph without running it: (replay, the static tensor fn returns)."""
    torch.cuda.synchronize(device)
    graph = torch.cuda.CUDAGraph()
    # thread_local: a claim's heartbeat thread (file I/O only) must not void the capture.
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        out = fn()
    return graph.replay, out


class SideStream:
    """Runs warm-up steps off the capturing stream, as PyTorch's CUDA graph notes want.

    One stream per step object, made at its first use and taken from the high-priority
    pool: torch hands out its 32 streams per priority round-robin, so a stream made per
    warm-up would, at --streams of about 10 or more, be the very stream of another model in
    flight. The returned tensor is marked as used by the stream that reads it, so its
    memory is not handed out again on this stream while that read may still be pending.
    """

    def __init__(self, make_stream: Callable[[torch.device], object] | None = None):
        self.make_stream = make_stream or (lambda device: torch.cuda.Stream(device, priority=-1))
        self.stream = None

    def __call__(self, fn: Callable[[], torch.Tensor], device: torch.device) -> torch.Tensor:
        if self.stream is None:
            self.stream = self.make_stream(device)
        current = torch.cuda.current_stream(device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            out = fn()
        current.wait_stream(self.stream)
        out.record_stream(current)
        return out


class GraphStep:
    """The whole step in one CUDA graph, replayed on static buffers.

    `capture` and `warm_up` are the two CUDA-only seams (cuda_capture, a SideStream); the
    tests put CPU stand-ins there to check everything else on a machine without a GPU.
    `latch` is the process's record of a failed capture (dsd.train.faults.GRAPHS).
    """

    def __init__(self, model: nn.Module, opt: torch.optim.SGD, device: torch.device,
                 capture=cuda_capture, warm_up=None, latch: faults.CaptureLatch | None = None,
                 amp: bool = True):
        self.model, self.opt, self.device, self.amp = model, opt, device, amp
        self.capture, self.warm_up = capture, warm_up or SideStream()
        self.latch = latch or faults.GRAPHS
        self.params = [p for g in opt.param_groups for p in g["params"]]
        (group,) = opt.param_groups
        self.momentum, self.wd, self.nesterov = group["momentum"], group["weight_decay"], group["nesterov"]
        self.bufs = momentum_buffers(opt)
        self.neg_lr = torch.zeros((), device=device)
        self.replay: Callable[[], None] | None = None
        self.warm, self.mode = 0, "graph"
        self.eager = False  # set when capture failed

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        self.neg_lr.fill_(-lr)
        if self.replay is not None:
            self.x.copy_(x)
            self.y.copy_(y)
            self.replay()
            return self.loss
        if not self.eager and self.latch.reason is not None:  # another model's capture failed
            self.eager, self.mode = True, self.latch.label
        if self.eager:
            return self._step(x, y)
        if self.warm < WARMUP_STEPS:
            self.warm += 1
            return self.warm_up(lambda: self._step(x, y), self.device)
        return self._capture(x, y)

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.x, self.y = x.clone(), y.clone()
        for p in self.params:
            p.grad = None  # the graph allocates the gradients in its own pool
        try:
            self.replay, self.loss = self.capture(lambda: self._step(self.x, self.y), self.device)
        except Exception as e:  # any op the capture refuses: carry on eagerly, and say so
            why = faults.first_line(e)
            self.latch.trip(why)
            self.eager, self.mode = True, f"eager (graph capture failed: {why})"
            if faults.is_oom(e):
                raise  # the worker's own path: one retry at half the batch (eagerly now)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            return self._step(x, y)
        self.replay()
        return self.loss

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.amp):
            loss = F.cross_entropy(self.model(x), y)
        for p in self.params:
            p.grad = None
        loss.backward()
        sgd_update_(self.params, self.bufs, self.neg_lr, self.momentum, self.wd, self.nesterov)
        return loss.detach()


def momentum_buffers(opt: torch.optim.SGD) -> list[torch.Tensor]:
    """The optimizer's momentum buffers, made zero where torch has not made them yet.

    A zero buffer gives torch's first step exactly (it clones the first gradient, and
    momentum * 0 + g = g), and keeps the state in `opt`, so a checkpoint saved in one
    mode resumes in another.
    """
    bufs = []
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            bufs.append(state["momentum_buffer"])
    return bufs


@torch.no_grad()
def sgd_update_(params: list[torch.Tensor], bufs: list[torch.Tensor], neg_lr: torch.Tensor,
                momentum: float, wd: float, nesterov: bool) -> None:
    """torch.optim.SGD's step (no dampening) with the learning rate read from a tensor."""
    grads = [p.grad for p in params]
    if wd:
        torch._foreach_add_(grads, params, alpha=wd)
    torch._foreach_mul_(bufs, momentum)
    torch._foreach_add_(bufs, grads)
    if nesterov:
        torch._foreach_add_(grads, bufs, alpha=momentum)
        step = grads
    else:
        step = torch._foreach_mul(bufs, 1.0)  # the buffers themselves must not be scaled
    torch._foreach_mul_(step, neg_lr)
    torch._foreach_add_(params, step)


def make_step(mode: str, model: nn.Module, opt: torch.optim.SGD, device: torch.device):
    """The step object for `mode` (see check_mode); its `.mode` says what actually ran."""
    check_mode(mode, device)
    return {"eager": EagerStep, "graph": GraphStep, "compile": CompiledStep}[mode](model, opt, device)


def planned_mode(mode: str) -> str:
    """What a model asking for `mode` would run as in this process now: the step column of a
    model that failed before its step object could say."""
    return faults.GRAPHS.label if mode == "graph" and faults.GRAPHS.reason is not None else mode
