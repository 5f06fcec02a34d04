"""One training step (forward, cross-entropy, backward, SGD update), three ways.

- `eager`: PyTorch as written, every kernel launched from Python each step.
- `graph` (CUDA only): after a few eager warm-up steps on a side stream, the whole step
  is captured in a CUDA graph once and replayed for every later batch; the batch is
  copied into static input buffers and the learning rate lives in a device tensor, so a
  replay launches one graph instead of hundreds of kernels. If capture fails, the model
  carries on eagerly and the result row says why.
- `compile`: `torch.compile` on the model (opt-in; its compile time is part of the
  training time that the row reports).

Graph and eager runs follow the same SGD (Nesterov momentum, weight decay on every
parameter): `sgd_update_` is torch's update with the learning rate as a tensor, kept
in the optimizer's own momentum buffers so checkpoints read the same in every mode.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

STEP_MODES = ("eager", "graph", "compile")
WARMUP_STEPS = 3  # eager steps before capture: lazy initialisations (cuDNN's autotuner) happen here


def autocast(device: torch.device):
    # bf16 autocast pays off on GPUs; on CPUs it is slower than fp32 for these convs. A
    # captured graph must not reuse autocast's cached casts across replays.
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda",
                          cache_enabled=False)


def check_mode(mode: str, device: torch.device | str) -> str:
    """The step mode, or ValueError with what to use instead."""
    if mode not in STEP_MODES:
        raise ValueError(f"--step must be one of {', '.join(STEP_MODES)}, got {mode!r}")
    if mode == "graph" and torch.device(device).type != "cuda":
        raise ValueError("--step graph needs a CUDA device (--device cuda); on a CPU use eager")
    return mode


class EagerStep:
    """PyTorch's own SGD, stepped from Python: the reference every other mode matches."""

    def __init__(self, model: nn.Module, opt: torch.optim.SGD, device: torch.device):
        self.model, self.opt, self.device = model, opt, device
        self.mode = "eager"

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        for group in self.opt.param_groups:
            group["lr"] = lr
        with autocast(self.device):
            loss = F.cross_entropy(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()


class CompiledStep(EagerStep):
    def __init__(self, model: nn.Module, opt: torch.optim.SGD, device: torch.device):
        super().__init__(torch.compile(model), opt, device)
        self.mode = "compile"


def cuda_capture(fn: Callable[[], torch.Tensor],
                 device: torch.device) -> tuple[Callable[[], None], torch.Tensor]:
    """Capture `fn` in a CUDA graph without running it: (replay, the static tensor fn returns)."""
    torch.cuda.synchronize(device)
    graph = torch.cuda.CUDAGraph()
    # thread_local: a claim's heartbeat thread (file I/O only) must not void the capture.
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        out = fn()
    return graph.replay, out


def on_side_stream(fn: Callable[[], torch.Tensor], device: torch.device) -> torch.Tensor:
    """Run `fn` on a fresh stream that follows the current one, and have the current one wait
    for it: PyTorch's CUDA graph notes want the warm-up before capture off the capturing stream."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        out = fn()
    torch.cuda.current_stream(device).wait_stream(side)
    return out


class GraphStep:
    """The whole step in one CUDA graph, replayed on static buffers.

    `capture` and `warm_up` are the two CUDA-only seams (cuda_capture, on_side_stream); the
    tests put CPU stand-ins there to check everything else on a machine without a GPU.
    """

    def __init__(self, model: nn.Module, opt: torch.optim.SGD, device: torch.device,
                 capture=cuda_capture, warm_up=on_side_stream):
        self.model, self.opt, self.device = model, opt, device
        self.capture, self.warm_up = capture, warm_up
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
        if self.eager:
            return self._step(x, y)
        if self.warm < WARMUP_STEPS:
            self.warm += 1
            return self.warm_up(lambda: self._step(x, y), self.device)
        self.x, self.y = x.clone(), y.clone()
        for p in self.params:
            p.grad = None  # the graph allocates the gradients in its own pool
        try:
            self.replay, self.loss = self.capture(lambda: self._step(self.x, self.y), self.device)
        except torch.cuda.OutOfMemoryError:
            raise  # the worker's own path: one retry at half the batch
        except Exception as e:  # any op the capture refuses: carry on eagerly, and say so
            self.eager = True
            self.mode = f"eager (graph capture failed: {type(e).__name__}: {str(e).splitlines()[0][:160]})"
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            return self._step(x, y)
        self.replay()
        return self.loss

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(self.device):
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
