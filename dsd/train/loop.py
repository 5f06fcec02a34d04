"""Train one model under a recipe: the whole loop, readable in one sitting.

SGD with Nesterov momentum, half-period cosine per iteration (optional linear warmup),
cross-entropy, precise BatchNorm statistics before each evaluation, the held-out error
after every epoch. A loss that turns NaN/inf stops the model as `diverged`. With a
checkpoint path, the state is saved after each epoch and a rerun resumes from it, on
any device (a checkpoint written on a CPU resumes on a GPU and back).

`train_steps` is the loop as a generator that yields after every training step, so one
process can step several models in turn (dsd.train.streams); `train_model` runs it
through.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from dsd.data.recipe import Recipe
from dsd.model.arch import Arch
from dsd.model.net import build
from dsd.train.step import autocast, make_step
from dsd.train.streams import drive

CHECK_EVERY = 25  # steps between loss checks: each check waits for the device
CUDNN_BENCHMARK = True  # fixed shapes: let cuDNN pick its fastest kernels (tests turn it off to compare bits)


class Diverged(Exception):
    pass


@dataclass
class TrainResult:
    status: str                       # ok | diverged
    curve: list[float] = field(default_factory=list)
    train_loss: float = float("nan")
    epochs: int = 0
    seconds: float = 0.0
    images_per_second: float = 0.0    # images trained / seconds training, over every epoch
    message: str = ""
    train_seconds: float = 0.0        # the training steps alone (no BN recompute, no eval)
    step: str = "eager"               # how the steps ran (dsd.train.step), with any fallback

    @property
    def error_min(self) -> float:
        return min(self.curve) if self.curve else float("nan")

    @property
    def error_last(self) -> float:
        return self.curve[-1] if self.curve else float("nan")


Progress = Callable[[int, int, float], None]  # (epoch done, epochs, images/s)
StepProgress = Callable[[int, int, int, float], None]  # (epoch, step, steps, images/s so far)


def lr_at(recipe: Recipe, step: int, total: int, steps_per_epoch: int) -> float:
    """Half-period cosine over all steps, with an optional linear warmup."""
    lr = recipe.lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
    warm = recipe.warmup_epochs * steps_per_epoch
    if step < warm:
        alpha = step / warm
        lr *= recipe.warmup_factor * (1 - alpha) + alpha
    return lr


def train_model(arch: Arch, pipe, recipe: Recipe, device: torch.device, seed: int,
                batch_size: int | None = None, ckpt: Path | None = None,
                progress: Progress | None = None, on_step: StepProgress | None = None,
                step: str = "eager") -> TrainResult:
    """Train `arch` on `pipe` (a dsd.train.pipeline pipeline); seed fixes init and data order."""
    return drive(train_steps(arch, pipe, recipe, device, seed, batch_size, ckpt, progress, on_step, step))


def train_steps(arch: Arch, pipe, recipe: Recipe, device: torch.device, seed: int,
                batch_size: int | None = None, ckpt: Path | None = None,
                progress: Progress | None = None, on_step: StepProgress | None = None,
                step: str = "eager") -> Generator[None, None, TrainResult]:
    """train_model's loop, yielding after each training step; returns the TrainResult."""
    batch_size = batch_size or recipe.batch_size
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = CUDNN_BENCHMARK
    model = build(arch, recipe.zero_init_final_gamma).to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          nesterov=recipe.nesterov, weight_decay=recipe.wd)
    gen = pipe.generator(seed)
    res = TrainResult("ok")
    start_epoch = _resume(ckpt, model, opt, gen, res, seed)
    stepper = make_step(step, model, opt, device)
    steps = pipe.steps_per_epoch(batch_size)
    if steps < 1:
        raise ValueError(f"{pipe.n_train} training images give no batch of {batch_size}")
    total = steps * recipe.epochs
    for epoch in range(start_epoch, recipe.epochs):
        t0 = time.perf_counter()
        try:
            res.train_loss = yield from _train_epoch(model, stepper, pipe, recipe, device, gen, batch_size,
                                                     epoch * steps, total, steps, on_step)
        except Diverged as e:
            res.status, res.message = "diverged", _join(res.message, str(e))
            break
        finally:
            res.step = stepper.mode
        train_s = time.perf_counter() - t0
        if recipe.precise_bn:
            _precise_bn(model, pipe, device, gen, batch_size, recipe.precise_bn)
        res.curve.append(evaluate(model, pipe, device))
        res.epochs = epoch + 1
        res.seconds += time.perf_counter() - t0
        res.train_seconds += train_s  # restored from the checkpoint on resume, like seconds
        res.images_per_second = res.epochs * steps * batch_size / max(res.train_seconds, 1e-9)
        _save(ckpt, model, opt, gen, res, device)
        if progress:
            progress(epoch + 1, recipe.epochs, res.images_per_second)
    return res


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _train_epoch(model, stepper, pipe, recipe, device, gen, batch_size, step0, total, steps,
                 on_step: StepProgress | None = None) -> Generator[None, None, float]:
    model.train()
    loss_sum = torch.zeros((), device=device)
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(pipe.train_batches(batch_size, gen)):
        loss_sum += stepper(x, y, lr_at(recipe, step0 + i, total, steps))
        if (i + 1) % CHECK_EVERY == 0 or i + 1 == steps:
            if not torch.isfinite(loss_sum):
                raise Diverged(f"loss became {float(loss_sum)} at epoch {step0 // steps + 1}, "
                               f"step {i + 1}")
            if on_step:  # the check above waited for the device, so the rate is true
                ips = (i + 1) * batch_size / max(time.perf_counter() - t0, 1e-9)
                on_step(step0 // steps + 1, i + 1, steps, ips)
        yield
    return float(loss_sum) / steps


@torch.no_grad()
def evaluate(model: nn.Module, pipe, device: torch.device) -> float:
    """Top-1 error in percent on the held-out split."""
    model.eval()
    wrong = torch.zeros((), device=device, dtype=torch.long)
    for x, y in pipe.test_batches():
        with autocast(device):
            wrong += (model(x).argmax(1) != y).sum()
    return 100.0 * float(wrong) / pipe.n_test


@torch.no_grad()
def _precise_bn(model, pipe, device, gen, batch_size, images) -> None:
    """Recompute BN statistics as exact averages over `images` training images (pycls)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    moms = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
    model.train()
    seen = 0
    for k, (x, _) in enumerate(pipe.train_batches(batch_size, gen)):
        for m in bns:
            m.momentum = cumulative_momentum(k)
        with autocast(device):
            model(x)
        seen += len(x)
        if seen >= images:
            break
    for m, mom in zip(bns, moms):
        m.momentum = mom


def cumulative_momentum(k: int) -> float:
    """The BN momentum for batch k (from 0) that makes the running statistics the exact mean
    over batches 0..k. torch's momentum=None gives the same averages, but reads each layer's
    batch counter back to the host, one device sync per BN layer per batch."""
    return 1.0 / (k + 1)


def _save(ckpt: Path | None, model, opt, gen, res: TrainResult, device: torch.device) -> None:
    if ckpt is None:
        return
    tmp = ckpt.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                "device": device.type, "curve": res.curve, "train_loss": res.train_loss,
                "epochs": res.epochs, "seconds": res.seconds, "train_seconds": res.train_seconds,
                "message": res.message}, tmp)
    tmp.replace(ckpt)


def _resume(ckpt: Path | None, model, opt, gen, res: TrainResult, seed: int) -> int:
    if ckpt is None or not ckpt.exists():
        return 0
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])  # moves the momentum buffers to the parameters' device
        epochs = state["epochs"]
    except Exception:  # a damaged checkpoint only costs the epochs it held
        ckpt.unlink(missing_ok=True)
        return 0
    res.curve, res.train_loss = list(state["curve"]), state["train_loss"]
    res.epochs, res.seconds = epochs, state["seconds"]
    res.train_seconds = state.get("train_seconds", state["seconds"])  # older checkpoints
    res.message = state.get("message", "")
    try:
        gen.set_state(state["gen"])
    except (RuntimeError, ValueError):
        # A CPU generator's state does not fit a CUDA one (nor back): the weights, momentum
        # and curve carry over, and the data order of the remaining epochs is drawn afresh
        # from the seed and the epoch, so a rerun on this device repeats it.
        gen.manual_seed(seed * 1_000_003 + epochs)
        written = state.get("device", "another device")
        res.message = _join(res.message, f"resumed after epoch {epochs} from a checkpoint written on "
                                         f"{written}; later epochs' data order drawn afresh")
    return res.epochs
