"""Benchmark: dsd's training step and pipeline against torchvision's (models per hour on a
GPU: bench/gpu.py).

Run from the repository root:

    .venv/bin/python bench/train.py [--sections 1,2,3] [--repeats 10] [--pipeline-repeats 5]

1. Training step, ours vs torchvision: dsd's module for regnet_arch(16, 56, 35.73, 2.28, 16)
   against `torchvision.models.regnet_x_800mf(num_classes=10)`, same batch, 32 px,
   channels_last, SGD with Nesterov momentum; one step = forward + cross-entropy + backward +
   optimizer step. Two pairs: stem stride 2 (torchvision's own network) and stem stride 1
   (dsd's CIFAR shape; torchvision's stem conv is set to stride 1 so the networks stay equal).
   Parameter counts and fvcore's operator counts are checked equal for each pair.
2. Whole pipeline on a Fashion-MNIST subset: `dsd.train.loop.train_model` on a `TensorPipeline`
   (one epoch + evaluation, model construction included) against a plain loop over a
   torchvision-style Dataset with PIL transforms and a DataLoader (num_workers 0 and 2).
3. GPU only (skipped with one line when no CUDA device is visible): training images/s of
   the GPU-resident `TensorPipeline` against a pinned-memory DataLoader feeding the same
   `dsd.train.loop._train_epoch` with the same model and batch, on a synthetic CIFAR-10
   directory in the real pickle format.

The machine is shared and noisy: every timing is a median over interleaved repeats (the
variants alternate A, B, B, A, ... so a load spike or a warm cache hits all of them alike)
and the figures to compare are the ratios measured side by side in this one run.

Dry-run aid: `--gpu-section-on-cpu --tiny` runs section 3's code path on the CPU with tiny
sizes (a syntax and logic check for machines without a GPU; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import nn

from dsd.data import loaders as data_mod
from dsd.data import registry
from dsd.data.recipe import Recipe, with_overrides
from dsd.data.registry import default_recipe
from dsd.model.arch import Arch, Shape, regnet_arch
from dsd.model.complexity import complexity
from dsd.model.net import build, count_params
from dsd.space.rebuild import arch_of
from dsd.store.run import Run

TARGET_STEP_RATIO = 0.95
REGNET_X_800MF = (16, 56, 35.73, 2.28, 16)   # depth, w0, wa, wm, group width
FASHION_MODEL = (10, 16, 16, 2.5, 8)         # about 5 MFLOPs at 28 px, stem stride 1
DEFAULT_THREADS = torch.get_num_threads()  # before --threads changes it

console = Console()


# ---------------------------------------------------------------------------------------------
# Timing helpers.
# ---------------------------------------------------------------------------------------------

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns: dict[str, Callable[[], float | None]], repeats: int,
                device: torch.device) -> dict[str, list[float]]:
    """Seconds per call of each fn, `repeats` times, alternating the order every repeat.

    A fn may return its own timing (seconds) to exclude its set-up; otherwise the call is timed.
    """
    names = list(fns)
    out: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        for k in (names if r % 2 == 0 else names[::-1]):
            sync(device)
            t0 = time.perf_counter()
            own = fns[k]()
            sync(device)
            out[k].append(own if own is not None else time.perf_counter() - t0)
    return out


@dataclass
class Spread:
    median: float
    lo: float
    hi: float
    q1: float
    q3: float

    @classmethod
    def of(cls, xs: list[float]) -> Spread:
        if len(xs) >= 4:
            q1, _, q3 = statistics.quantiles(xs, n=4)
        else:
            q1, q3 = min(xs), max(xs)
        return cls(statistics.median(xs), min(xs), max(xs), q1, q3)

    def text(self, fmt: str = ".3f") -> str:
        return (f"{self.median:{fmt}} (IQR {self.q1:{fmt}}..{self.q3:{fmt}}, "
                f"range {self.lo:{fmt}}..{self.hi:{fmt}})")


def ratios(num: list[float], den: list[float]) -> Spread:
    """Per-repeat ratios of two rates measured in the same repeat."""
    return Spread.of([a / b for a, b in zip(num, den)])


def best_ratio(num: list[float], den: list[float]) -> str:
    """Ratio of the best (least disturbed) repeats: a second view that load spikes barely move."""
    return f"{max(num) / max(den):.3f}"


def verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"


def stall_probe(n: int = 50) -> float:
    """Median ms of a tiny multi-threaded op (uint8 -> float, 100K elements).

    Quiet cores: a few microseconds. When other processes hold the cores, each parallel op can
    wait a scheduler slice (about 8 ms here) at its OpenMP barrier, which swamps small ops.
    """
    x = torch.zeros(128 * 784, dtype=torch.uint8)
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        x.float()
        ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


def machine_line(label: str) -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    dev = (f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
           else "no CUDA device visible")
    return (f"machine ({label}): {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
            f"load average (1/5/15 min) {load}; python {platform.python_version()}, torch "
            f"{torch.__version__} ({torch.get_num_threads()} threads); {dev}; stall probe "
            f"{stall_probe():.3f} ms (tiny parallel op, median; ~0.01 quiet, ~8 contended)")


def new_table(title: str, cols: list[str]) -> Table:
    t = Table(title=title)
    for i, c in enumerate(cols):
        t.add_column(c, justify="left" if i == 0 else "right")
    return t


def _autocast(device: torch.device):
    # As dsd.train.loop does: bf16 autocast on CUDA, plain fp32 on the CPU.
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


# ---------------------------------------------------------------------------------------------
# Section 1: one training step, dsd's module vs torchvision's regnet_x_800mf.
# ---------------------------------------------------------------------------------------------

def fvcore_ops(model: nn.Module, shape: Shape) -> dict[str, int]:
    from fvcore.nn import FlopCountAnalysis

    x = torch.zeros(1, shape.in_channels, shape.resolution, shape.resolution)
    was = model.training
    model.eval()
    fa = FlopCountAnalysis(model, x)
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    with torch.no_grad():
        ops = {k: int(v) for k, v in fa.by_operator().items()}
    model.train(was)
    return ops


def torchvision_regnet(stem_stride: int) -> nn.Module:
    from torchvision.models import regnet_x_800mf

    tv = regnet_x_800mf(num_classes=10)
    if stem_stride != 2:
        tv.stem[0].stride = (stem_stride, stem_stride)  # the rest of the network is unchanged
    return tv


def sgd(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                           nesterov=recipe.nesterov, weight_decay=recipe.wd)


def make_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
              device: torch.device, steps: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(steps):
            with _autocast(device):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return run


@dataclass
class StepPair:
    stem_stride: int
    device: torch.device
    params: dict[str, int]
    ops: dict[str, dict[str, int]]
    analytic: dict[str, int]
    seconds: dict[str, list[float]]
    batch: int
    steps: int

    def ips(self, k: str) -> list[float]:
        return [self.batch * self.steps / s for s in self.seconds[k]]


def bench_step(stem_stride: int, device: torch.device, batch: int, steps: int, repeats: int,
               warmup: int, check_flops: bool) -> StepPair:
    shape = Shape(3, 32, 10, stem_stride)
    arch = regnet_arch(*REGNET_X_800MF, shape=shape)
    recipe = default_recipe("cifar10")
    torch.manual_seed(0)
    models = {"dsd": build(arch), "torchvision": torchvision_regnet(stem_stride)}
    params = {k: count_params(m) for k, m in models.items()}
    ops = {k: fvcore_ops(m, shape) for k, m in models.items()} if check_flops else {}
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as dsd.train.loop.train_model sets it on CUDA
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=gen).to(device).contiguous(
        memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    fns = {}
    for k, m in models.items():
        m.to(device, memory_format=torch.channels_last).train()
        fns[k] = make_step(m, sgd(m, recipe), x, y, device, steps)
    for _ in range(warmup):  # first steps pay one-off costs (allocator, kernel selection)
        for fn in fns.values():
            fn()
    seconds = interleaved(fns, repeats, device)
    return StepPair(stem_stride, device, params, ops, complexity(arch), seconds, batch, steps)


def step_tables(pairs: list[StepPair]) -> tuple[Table, Table]:
    t = new_table("same network twice: dsd.model.net.build(regnet_arch(16, 56, 35.73, 2.28, 16)) vs "
                  "torchvision regnet_x_800mf(num_classes=10), 32 px",
                  ["stem stride", "params dsd", "params torchvision", "fvcore ops dsd",
                   "fvcore ops torchvision", "dsd analytic flops", "equal"])
    for p in pairs:
        fv = {k: sum(v.values()) for k, v in p.ops.items()}
        conv_lin = {k: v.get("conv", 0) + v.get("linear", 0) for k, v in p.ops.items()}
        same = p.params["dsd"] == p.params["torchvision"] and (
            not p.ops or p.ops["dsd"] == p.ops["torchvision"])
        t.add_row(str(p.stem_stride), f"{p.params['dsd']:,}", f"{p.params['torchvision']:,}",
                  f"{fv['dsd']:,} (conv+linear {conv_lin['dsd']:,})" if p.ops else "not counted",
                  f"{fv['torchvision']:,} (conv+linear {conv_lin['torchvision']:,})" if p.ops
                  else "not counted", f"{p.analytic['flops']:,}",
                  "[green]yes[/]" if same else "[red]NO[/]")
    s = new_table("training step images/s (forward + cross-entropy + backward + SGD step), "
                  "interleaved repeats", ["device / stem stride", "batch", "repeats x steps",
                                          "dsd img/s (median)", "torchvision img/s (median)",
                                          "dsd / torchvision per repeat: median (IQR, range)",
                                          "best / best", f"median ≥ {TARGET_STEP_RATIO}"])
    for p in pairs:
        r = ratios(p.ips("dsd"), p.ips("torchvision"))
        s.add_row(f"{p.device.type} / {p.stem_stride}", str(p.batch),
                  f"{len(p.seconds['dsd'])} x {p.steps}",
                  f"{statistics.median(p.ips('dsd')):,.1f}",
                  f"{statistics.median(p.ips('torchvision')):,.1f}", r.text(),
                  best_ratio(p.ips("dsd"), p.ips("torchvision")),
                  verdict(r.median >= TARGET_STEP_RATIO) if p.device.type == "cpu" else "-")
    return t, s


# ---------------------------------------------------------------------------------------------
# Section 2: the whole pipeline on Fashion-MNIST, dsd vs a plain DataLoader loop.
# ---------------------------------------------------------------------------------------------

class ArrayDataset(torch.utils.data.Dataset):
    """torchvision.datasets.FashionMNIST's __getitem__ over uint8 arrays [N, 1, H, W]."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.x[i, 0], mode="L")
        return self.transform(img), int(self.y[i])


def reference_sets(data: data_mod.ImageData, recipe: Recipe):
    """The same subsets as TensorPipeline (dsd.data.loaders.subset, same seed), torchvision transforms."""
    from torchvision import transforms

    norm = transforms.Normalize(recipe.mean, recipe.std)
    res = data.resolution
    train_tf = transforms.Compose([transforms.RandomCrop(res, padding=recipe.crop_pad),
                                   transforms.RandomHorizontalFlip(), transforms.ToTensor(), norm])
    test_tf = transforms.Compose([transforms.ToTensor(), norm])
    tr = data_mod.subset(data.train_y, recipe.train_subset or None, recipe.subset_seed)
    te = data_mod.subset(data.test_y, recipe.test_subset or None, recipe.subset_seed)
    return (ArrayDataset(data.train_x[tr], data.train_y[tr], train_tf),
            ArrayDataset(data.test_x[te], data.test_y[te], test_tf))


def reference_run(arch: Arch, train_set, test_set, recipe: Recipe, device: torch.device,
                  workers: int, seed: int) -> float:
    """A plain torchvision-style loop: build, one pass of every epoch, evaluate; returns error %."""
    from dsd.train.loop import lr_at

    torch.manual_seed(seed)
    model = build(arch, recipe.zero_init_final_gamma).to(device, memory_format=torch.channels_last)
    opt = sgd(model, recipe)
    gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=recipe.batch_size, shuffle=True,
                                         drop_last=True, num_workers=workers, generator=gen)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=recipe.eval_batch_size,
                                              num_workers=workers)
    steps = len(loader)
    total = steps * recipe.epochs
    wrong = 0
    for epoch in range(recipe.epochs):
        model.train()
        for i, (x, y) in enumerate(loader):
            for g in opt.param_groups:
                g["lr"] = lr_at(recipe, epoch * steps + i, total, steps)
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            y = y.to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        wrong = 0
        with torch.no_grad():
            for x, y in test_loader:
                x = x.to(device).contiguous(memory_format=torch.channels_last)
                wrong += int((model(x).argmax(1) != y.to(device)).sum())
    return 100.0 * wrong / len(test_set)


@dataclass
class PipelineBench:
    recipe: Recipe
    arch: Arch
    n_train: int
    n_test: int
    seconds: dict[str, list[float]]
    errors: dict[str, list[float]] = field(default_factory=dict)

    def ips(self, k: str) -> list[float]:
        steps = self.n_train // self.recipe.batch_size
        return [steps * self.recipe.batch_size * self.recipe.epochs / s for s in self.seconds[k]]


def bench_pipeline(train_subset: int, test_subset: int, repeats: int, workers: list[int],
                   precise_bn: int) -> PipelineBench:
    from dsd.train.loop import train_model
    from dsd.train.pipeline import make_pipeline

    device = torch.device("cpu")
    data = registry.load("fashion-mnist")
    recipe = with_overrides(default_recipe("fashion-mnist"), epochs=1, train_subset=train_subset,
                            test_subset=test_subset, precise_bn=precise_bn)
    arch = regnet_arch(*FASHION_MODEL, shape=Shape(1, data.resolution, data.num_classes, 1))
    pipe = make_pipeline(data, recipe, device, data.resolution)
    train_set, test_set = reference_sets(data, recipe)
    assert len(train_set) == pipe.n_train and len(test_set) == pipe.n_test
    errors: dict[str, list[float]] = {}
    seed = [0]

    def ours() -> None:
        res = train_model(arch, pipe, recipe, device, seed[0])
        errors.setdefault("dsd", []).append(res.error_last)

    def reference(nw: int) -> Callable[[], None]:
        def run() -> None:
            err = reference_run(arch, train_set, test_set, recipe, device, nw, seed[0])
            errors.setdefault(f"DataLoader nw={nw}", []).append(err)
        return run

    fns: dict[str, Callable[[], None]] = {"dsd": ours}
    fns.update({f"DataLoader nw={nw}": reference(nw) for nw in workers})
    small = with_overrides(recipe, train_subset=2 * recipe.batch_size, test_subset=100)
    tr_small, te_small = reference_sets(data, small)  # warm-up: imports, allocator, first kernels
    train_model(arch, make_pipeline(data, small, device, data.resolution), small, device, 0)
    for nw in workers:
        reference_run(arch, tr_small, te_small, small, device, nw, 0)
    seconds = interleaved(fns, repeats, device)
    return PipelineBench(recipe, arch, pipe.n_train, pipe.n_test, seconds, errors)


def pipeline_table(b: PipelineBench) -> Table:
    c = complexity(b.arch)
    t = new_table(f"one epoch + evaluation on Fashion-MNIST ({b.n_train:,} train / {b.n_test:,} test, "
                  f"batch {b.recipe.batch_size}, flip + {b.recipe.crop_pad}-px pad-crop, "
                  f"precise BN {b.recipe.precise_bn}), model ds={list(b.arch.ds)} "
                  f"ws={list(b.arch.ws)} g={b.arch.gs[0]} ({c['flops'] / 1e6:.1f} MFLOPs)",
                  ["pipeline", "repeats", "train img / wall s (median)", "median wall s",
                   "dsd / this, per repeat: median (IQR, range)", "best / best",
                   "top-1 error % (median)"])
    dsd_ips = b.ips("dsd")
    for k in b.seconds:
        err = statistics.median(b.errors[k]) if b.errors.get(k) else float("nan")
        t.add_row(k, str(len(b.seconds[k])), f"{statistics.median(b.ips(k)):,.0f}",
                  f"{statistics.median(b.seconds[k]):.2f}",
                  "-" if k == "dsd" else ratios(dsd_ips, b.ips(k)).text(),
                  "-" if k == "dsd" else best_ratio(dsd_ips, b.ips(k)), f"{err:.1f}")
    return t


# ---------------------------------------------------------------------------------------------
# Section 3: the GPU-resident pipeline vs a pinned DataLoader.
# ---------------------------------------------------------------------------------------------

def write_synthetic_cifar(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """cifar-10-batches-py in the real pickle format: five train batches and a test batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per = n_train // 5
    for name, n in [(f"data_batch_{i}", per) for i in range(1, 6)] + [("test_batch", n_test)]:
        batch = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=pickle.HIGHEST_PROTOCOL)
    return root


class LoaderPipe:
    """A DataLoader with dsd's pipeline interface, so dsd.train.loop._train_epoch can consume it."""

    def __init__(self, train_set, recipe: Recipe, device: torch.device, workers: int):
        self.device, self.recipe = device, recipe
        self.n_train = len(train_set)
        pin = device.type == "cuda"
        self.loader = torch.utils.data.DataLoader(
            train_set, batch_size=recipe.batch_size, shuffle=True, drop_last=True,
            num_workers=workers, pin_memory=pin, persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None)

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.n_train // batch_size

    def generator(self, seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)  # unused: the DataLoader shuffles on the host

    def train_batches(self, batch_size: int, gen: torch.Generator):
        assert batch_size == self.recipe.batch_size
        for x, y in self.loader:
            x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            yield x, y.to(self.device, non_blocking=True)


class CifarArrayDataset(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR10's __getitem__ over uint8 arrays [N, 3, H, W]."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform):
        self.x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # HWC, as CIFAR10 keeps it
        self.y, self.transform = y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


@dataclass
class GpuPipeBench:
    arch: Arch
    n_train: int
    batch: int
    workers: int
    seconds: dict[str, list[float]]
    steps: int

    def ips(self, k: str) -> list[float]:
        return [self.steps * self.batch / s for s in self.seconds[k]]


def bench_gpu_pipeline(cifar: Path, arch: Arch, recipe: Recipe, device: torch.device,
                       workers: int, repeats: int) -> GpuPipeBench:
    from torchvision import transforms

    from dsd.train.loop import Diverged, _train_epoch
    from dsd.train.pipeline import TensorPipeline
    from dsd.train.step import EagerStep
    from dsd.train.streams import drive

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as dsd.train.loop.train_model sets it on CUDA
    data = data_mod.load_cifar10(str(cifar))
    pipe = TensorPipeline(data, recipe, device, 32)
    tr = data_mod.subset(data.train_y, recipe.train_subset or None, recipe.subset_seed)
    tf = transforms.Compose([transforms.RandomCrop(32, padding=recipe.crop_pad),
                             transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                             transforms.Normalize(recipe.mean, recipe.std)])
    loader_pipe = LoaderPipe(CifarArrayDataset(data.train_x[tr], data.train_y[tr], tf), recipe,
                             device, workers)
    steps = pipe.steps_per_epoch(recipe.batch_size)
    assert steps == loader_pipe.steps_per_epoch(recipe.batch_size) and steps >= 1

    def make(p) -> Callable[[], None]:
        torch.manual_seed(0)
        model = build(arch).to(device, memory_format=torch.channels_last)
        opt = sgd(model, recipe)
        gen = p.generator(0)  # TensorPipeline: a generator on its device, as train_model uses

        def run() -> None:  # the same step code for both (dsd's own): only the data path differs
            try:
                drive(_train_epoch(model, EagerStep(model, opt, device), p, recipe, device, gen,
                                   recipe.batch_size, 0, steps * 1000, steps))
            except Diverged:  # random labels should not diverge; if they do, say so
                diverged.append(1)
        return run

    diverged: list[int] = []
    ref = f"DataLoader nw={workers}" + (" pinned, non_blocking" if device.type == "cuda" else "")
    fns = {"TensorPipeline (resident)": make(pipe), ref: make(loader_pipe)}
    for fn in fns.values():  # warm-up epoch: worker start-up, cudnn/kernel selection
        fn()
    seconds = interleaved(fns, repeats, device)
    if diverged:
        console.print(f"[red]{len(diverged)} epochs diverged and stopped early: their img/s is wrong[/]")
    return GpuPipeBench(arch, pipe.n_train, recipe.batch_size, workers, seconds, steps)


def gpu_pipe_table(b: GpuPipeBench, device: torch.device) -> Table:
    c = complexity(b.arch)
    t = new_table(f"training images/s on {device.type}: one epoch of {b.n_train:,} synthetic CIFAR "
                  f"images, batch {b.batch}, dsd.train.loop._train_epoch, model ds={list(b.arch.ds)} "
                  f"ws={list(b.arch.ws)} ({c['flops'] / 1e6:.1f} MFLOPs)",
                  ["data path", "repeats", "train img/s (median)",
                   "resident / this, per repeat: median (IQR, range)", "best / best"])
    first = next(iter(b.seconds))
    for k in b.seconds:
        t.add_row(k, str(len(b.seconds[k])), f"{statistics.median(b.ips(k)):,.0f}",
                  "-" if k == first else ratios(b.ips(first), b.ips(k)).text(".2f"),
                  "-" if k == first else best_ratio(b.ips(first), b.ips(k)))
    return t


def gpu_section(args: argparse.Namespace) -> None:
    on_cpu = not torch.cuda.is_available()
    if on_cpu and not args.gpu_section_on_cpu:
        console.print("section 3 (GPU pipeline): no CUDA device is visible "
                      "(torch.cuda.is_available() is False); section skipped.")
        return
    device = "cpu" if on_cpu else "cuda"
    if on_cpu:
        console.print("[yellow]section 3 dry run on the CPU (--gpu-section-on-cpu): a code-path "
                      "check only, the numbers mean nothing[/]")
    else:  # as `dsd train-batch` runs on a GPU host: torch's default thread count
        torch.set_num_threads(DEFAULT_THREADS)
    tiny = args.tiny
    n_train, n_test = (500, 100) if tiny else (50_000, 10_000)
    flops = ":5M" if tiny else args.gpu_pipe_flops
    with tempfile.TemporaryDirectory(prefix="dsd-bench-train-") as tmp_s:
        tmp = Path(tmp_s)
        t0 = time.perf_counter()
        cifar = write_synthetic_cifar(tmp / "cifar", n_train, n_test)
        console.print(f"synthetic CIFAR-10 ({n_train:,} train / {n_test:,} test, random uint8, "
                      f"pickle format) written in {time.perf_counter() - t0:.1f} s")

        from dsd.space.sample_run import sample_new

        sample_new(args.gpu_pipe_space, 1, tmp / "model", Shape(3, 32, 10, 1), {"flops": flops},
                   seed=0, dataset="cifar10")
        model = Run(tmp / "model")
        arch = arch_of(model, model.samples().iloc[0])
        pipe_recipe = with_overrides(default_recipe("cifar10"),
                                     train_subset=(256 if tiny else args.gpu_pipe_train_subset) or None)
        b = bench_gpu_pipeline(cifar, arch, pipe_recipe, torch.device(device),
                               2 if tiny else args.gpu_pipe_workers, 2 if tiny else args.gpu_pipe_repeats)
        console.print(gpu_pipe_table(b, torch.device(device)))


# ---------------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", default="1,2,3", help="which sections to run, e.g. 1,2")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    g = p.add_argument_group("section 1: training step")
    g.add_argument("--batch", type=int, default=64, help="images per step")
    g.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
    g.add_argument("--repeats", type=int, default=20, help="interleaved repeats per model")
    g.add_argument("--warmup", type=int, default=2, help="untimed repeats first")
    g.add_argument("--stem-strides", default="2,1", help="stem strides to compare (2 = torchvision's)")
    g.add_argument("--no-fvcore", action="store_true", help="skip fvcore's operator counts")
    g = p.add_argument_group("section 2: whole pipeline on Fashion-MNIST")
    g.add_argument("--train-subset", type=int, default=5000)
    g.add_argument("--test-subset", type=int, default=1000)
    g.add_argument("--pipeline-repeats", type=int, default=7)
    g.add_argument("--loader-workers", default="0,2", help="DataLoader num_workers to compare")
    g.add_argument("--precise-bn", type=int, default=0,
                   help="dsd's precise-BN images (the reference loop has none, so 0 by default)")
    g = p.add_argument_group("section 3: GPU (skipped without CUDA)")
    g.add_argument("--gpu-pipe-space", default="regnetx")
    g.add_argument("--gpu-pipe-flops", default="20M:60M")
    g.add_argument("--gpu-pipe-workers", type=int, default=8, help="DataLoader workers (pinned)")
    g.add_argument("--gpu-pipe-train-subset", type=int, default=0, help="0 = all 50,000")
    g.add_argument("--gpu-pipe-repeats", type=int, default=5)
    g.add_argument("--gpu-section-on-cpu", action="store_true",
                   help="dry-run aid: run section 3's code path on the CPU (use with --tiny)")
    g.add_argument("--tiny", action="store_true",
                   help="dry-run aid: tiny sizes everywhere (a code-path check, not a measurement)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # fvcore's use of torch.jit
    warnings.filterwarnings("ignore", message=".*'mode' parameter is deprecated.*")  # PIL
    if not console.is_terminal:
        console.width = 200  # keep the tables unwrapped when the output goes to a file
    torch.set_num_threads(args.threads)
    if args.tiny:
        args.batch, args.steps, args.repeats, args.warmup = 8, 1, 2, 1
        args.train_subset, args.test_subset, args.pipeline_repeats = 512, 200, 2
    sections = {s.strip() for s in args.sections.split(",")}
    console.print(machine_line("start"))
    console.print(f"command: {' '.join([sys.executable] + sys.argv)}")
    t_start = time.perf_counter()

    if "1" in sections:
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
        pairs = [bench_step(int(s), d, args.batch, args.steps, args.repeats, args.warmup,
                            not args.no_fvcore)
                 for d in devices for s in args.stem_strides.split(",")]
        t, s = step_tables(pairs)
        console.print(t)
        console.print(s)
        console.print(f"each repeat times {args.steps} steps per model on one fixed random batch; "
                      f"{args.warmup} untimed warm-up repeats first; order alternates A,B / B,A. "
                      "Stride 1: torchvision's stem conv set to stride 1 (dsd's CIFAR shape).")
        bad = [p for p in pairs if p.params["dsd"] != p.params["torchvision"]
               or (p.ops and p.ops["dsd"] != p.ops["torchvision"])]
        if bad:
            raise AssertionError(f"dsd and torchvision networks differ at stem strides "
                                 f"{[p.stem_stride for p in bad]}")

    if "2" in sections:
        b = bench_pipeline(args.train_subset, args.test_subset, args.pipeline_repeats,
                           [int(w) for w in args.loader_workers.split(",")], args.precise_bn)
        console.print(pipeline_table(b))
        console.print("img/s = training images (full batches) / wall time of model construction + "
                      "one epoch + evaluation. dsd: dsd.train.loop.train_model on TensorPipeline; "
                      "reference: PIL RandomCrop(pad) + RandomHorizontalFlip + ToTensor + Normalize, "
                      "DataLoader(batch, shuffle, drop_last), same SGD and cosine lr. "
                      "Errors after 1 epoch differ by random draws only.")

    if "3" in sections:
        gpu_section(args)

    console.print(f"total {time.perf_counter() - t_start:.0f} s")
    console.print(machine_line("end"))


if __name__ == "__main__":
    main()
