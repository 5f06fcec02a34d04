"""Many small models on one GPU: models per hour, dsd's paths against a pycls-style baseline.

    python bench/gpu.py --data-dir FASHION_MNIST_DIR [--out DIR] [--small 16] [--big 8]
                        [--concurrency 2,4,8,16] [--big-concurrency 2,4,8] [--mps]
                        [--budget-s SECONDS]

Two sections, each on models sampled once from `regnetx` and trained by every variant
with the same recipe and seeds (3 epochs on 10,000 training images, batch 128, cosine
schedule, no precise-BN, evaluation on the whole test set after each epoch). Every
variant trains the same models, so the errors pair up model by model:

- small: --small models at 2M:6M flops on Fashion-MNIST (28 px, 1 channel);
- big: --big models at 200M:400M flops at CIFAR-10's shape (32 px, 3 channels), on
  Fashion-MNIST resized to 32 px and repeated to 3 channels, written in CIFAR-10's pickle
  format, so the errors mean something (no CIFAR-10 can be fetched where this runs).

Before anything is timed, one tiny model goes through the baseline's and dsd's paths (the
warm-up: CUDA's context, cuDNN's handles and first kernel loads would otherwise be
charged to whichever variant ran first). Then the variants, one after the other, each on a
fresh copy of the sampled run and with its global settings (cuDNN's benchmark mode, host
threads) set explicitly and recorded:

1. baseline: pycls-style: a torchvision-transform DataLoader (random crop + flip per image
   in worker processes, pinned memory, non-blocking copies), fp32, eager steps, one model
   at a time, in this file;
2. dsd today: what `dsd train-batch --device cuda` does by default: `--workers auto` (4
   worker processes on a GPU), eager steps (data resident on the GPU, bf16 autocast);
3. dsd graph, 1 process: every step replayed from a CUDA graph. Always run: the time
   budget estimates every later variant from its time per model;
4. dsd graph, 1 process, with the study's recipe (precise-BN on): what the published
   study's recipe costs; its errors are not the others' recipe, so it is never "best";
5. dsd graph with N worker processes sharing the GPU, and with one process stepping N
   models in turn on N CUDA streams, for N in --concurrency; with --mps the process
   variants run again under NVIDIA MPS when its control daemon can be started.

For each: wall time of the whole call (worker start-up, data loading and compile or
capture included), models per hour, the median of the models' own training images/s, mean
GPU utilisation (NVML, else nvidia-smi, sampled every 0.2 s), the median error, how the
steps ran, and its errors against the baseline's on the same models: the mean paired
difference with its 95% CI, a paired t-test and a Wilcoxon signed-rank test. With
--budget-s, each section gets an equal share of the time left when it starts; the first
three variants always run, and a later one whose estimate (dsd graph, 1 process's time per
model times the models) does not fit is skipped and named in the summary; processes and
streams alternate at each N so that a cut run still compares them. Then, per section: the
best variant against the baseline and against dsd today. Results go to
OUT/gpu_bench.jsonl (one line per variant, written as it ends, so a run cut short keeps
what it measured) and OUT/gpu_bench.md.

`--cpu-dry-run` runs every variant on the CPU with tiny sizes (the test suite does, so the
script is known to run before GPU time is spent on it); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_report import headline, markdown, median, paired, summary, table  # noqa: E402, F401

from dsd.data.loaders import subset  # noqa: E402
from dsd.data.recipe import Recipe, with_overrides  # noqa: E402
from dsd.data.registry import (
    default_recipe,  # noqa: E402
    load,  # noqa: E402
)
from dsd.model.arch import Shape  # noqa: E402
from dsd.model.net import build  # noqa: E402
from dsd.space.sample_run import sample_new  # noqa: E402
from dsd.store.results import read_results  # noqa: E402
from dsd.store.run import Run  # noqa: E402
from dsd.train.batch import resolve_workers, run_batch  # noqa: E402
from dsd.train.jobs import BatchOptions, RunJob, resolve_threads  # noqa: E402
from dsd.train.loop import lr_at  # noqa: E402
from dsd.train.one import model_of  # noqa: E402

console = Console(width=160)
BASELINE = "baseline (pycls-style)"


@dataclass
class Section:
    name: str
    dataset: str
    shape: Shape
    flops: str
    models: int
    concurrency: list[int]
    data_dir: str = ""
    run: Path = Path()
    recipe: Recipe | None = None


@dataclass
class Outcome:
    section: str
    variant: str
    models: int
    wall_s: float
    images_per_s: float          # median over models of each model's own training rate
    gpu_util: float | None
    errors: list[float] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)   # the model behind each error
    recipe: str = "bench"                          # or the study's, for the precise-BN variant
    settings: dict = field(default_factory=dict)   # global settings it ran under

    @property
    def per_hour(self) -> float:
        return 3600 * self.models / self.wall_s


# -- the data ----------------------------------------------------------------------------

def cifar_shaped_from_fashion(fashion_dir: str, out: Path, train: int) -> Path:
    """Fashion-MNIST at 32 px, 3 channels, in CIFAR-10's pickle format (5 train batches)."""
    data = load("fashion-mnist", fashion_dir)
    folder = out / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def resized(x: np.ndarray) -> np.ndarray:
        t = F.interpolate(torch.from_numpy(x).float(), size=(32, 32), mode="bilinear",
                          antialias=True, align_corners=False)
        return t.round().clamp(0, 255).to(torch.uint8).repeat(1, 3, 1, 1).reshape(len(x), -1).numpy()

    idx = subset(data.train_y, train, 0)
    parts = np.array_split(idx, 5)
    for i, part in enumerate(parts, 1):
        _write_batch(folder / f"data_batch_{i}", resized(data.train_x[part]), data.train_y[part])
    _write_batch(folder / "test_batch", resized(data.test_x), data.test_y)
    return out


def _write_batch(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    with open(path, "wb") as f:
        pickle.dump({b"data": x, b"labels": [int(v) for v in y]}, f, protocol=pickle.HIGHEST_PROTOCOL)


# -- the baseline: pycls-style, one model at a time ---------------------------------------

class ArrayDataset(torch.utils.data.Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray, tf):
        self.x, self.y, self.tf = x, y, tf

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.tf(torch.from_numpy(self.x[i])), int(self.y[i])


def baseline_loaders(sec: Section, device: torch.device, workers: int):
    from torchvision import transforms

    r = sec.recipe
    data = load(sec.dataset, sec.data_dir)
    tr = subset(data.train_y, r.train_subset or None, r.subset_seed)
    x, y = data.train_x[tr], data.train_y[tr]
    res = sec.shape.resolution
    if x.shape[-1] != res:
        raise SystemExit(f"baseline: {sec.dataset} is {x.shape[-1]} px, the models want {res}")
    norm = transforms.Normalize(r.mean, r.std)
    to_float = transforms.ConvertImageDtype(torch.float32)
    train_tf = transforms.Compose([transforms.RandomCrop(res, padding=r.crop_pad),
                                   transforms.RandomHorizontalFlip(), to_float, norm])
    pin = device.type == "cuda"
    kw = dict(num_workers=workers, pin_memory=pin, persistent_workers=workers > 0)
    train = torch.utils.data.DataLoader(ArrayDataset(x, y, train_tf), batch_size=r.batch_size,
                                        shuffle=True, drop_last=True, **kw)
    te = subset(data.test_y, r.test_subset or None, r.subset_seed)  # as dsd's pipeline picks it
    test = torch.utils.data.DataLoader(ArrayDataset(data.test_x[te], data.test_y[te],
                                                    transforms.Compose([to_float, norm])),
                                       batch_size=r.eval_batch_size, **kw)
    return train, test


def baseline(sec: Section, device: torch.device, workers: int, limit: int | None = None) -> Outcome:
    """fp32, eager, NCHW, batches from the DataLoader copied to the device one by one; the
    first `limit` models (all by default). Each model is the one dsd's variants train: its
    network, recipe and seed from dsd.train.one.model_of, as train_one and the workers take
    them; only the loop is the baseline's own."""
    job = RunJob(Run(sec.run), sec.recipe, seed=0)
    samples = job.run.samples().set_index("model_id", drop=False)
    ids = samples.model_id.tolist()[:limit]
    t0 = time.perf_counter()
    train, test = baseline_loaders(sec, device, workers)
    errors, rates = [], []
    for mid in ids:
        m = model_of(job, mid, samples.loc[mid])
        r = m.recipe
        torch.manual_seed(m.seed)
        model = build(m.arch, r.zero_init_final_gamma).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=r.lr, momentum=r.momentum, nesterov=r.nesterov,
                              weight_decay=r.wd)
        steps = len(train)
        total, trained, t_train, err = steps * r.epochs, 0, 0.0, float("inf")
        for epoch in range(r.epochs):
            model.train()
            te = time.perf_counter()
            for i, (x, y) in enumerate(train):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                for g in opt.param_groups:
                    g["lr"] = lr_at(r, epoch * steps + i, total, steps)
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                trained += len(y)
            _sync(device)
            t_train += time.perf_counter() - te
            err = min(err, _evaluate(model, test, device))  # dsd reports error_min too
        errors.append(err)
        rates.append(trained / t_train)
    del train, test  # its worker processes and pin-memory thread end before dsd's variants start
    gc.collect()
    return Outcome(sec.name, BASELINE, len(ids), time.perf_counter() - t0,
                   statistics.median(rates), None, errors, ["eager fp32"], ids)


@torch.no_grad()
def _evaluate(model, loader, device) -> float:
    model.eval()
    wrong = n = 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        wrong += int((model(x).argmax(1) != y).sum())
        n += len(y)
    return 100.0 * wrong / n


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- dsd's paths ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    name: str
    workers: int
    step: str
    streams: int = 1
    precise_bn: bool = False   # the study's recipe: precise-BN statistics before each evaluation
    required: bool = False     # run whatever the budget says


def dsd_variant(sec: Section, device: str, v: Variant, work: Path, limit: int | None = None) -> Outcome:
    run_dir = work / f"{sec.dataset}-{v.name.replace(' ', '_').replace(',', '').replace(':', '')}"
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(sec.run, run_dir, ignore=shutil.ignore_patterns("results", "ckpt", "claims"))
    recipe = replace(sec.recipe, precise_bn=default_recipe(sec.dataset).precise_bn) if v.precise_bn \
        else sec.recipe
    job = RunJob(Run(run_dir), recipe, data_dir=sec.data_dir or None, seed=0)
    options = BatchOptions(device=device, step=v.step, streams=v.streams, threads=dsd_threads(device),
                           limit=limit)
    failures: list[str] = []
    t0 = time.perf_counter()

    def on_event(ev: dict) -> None:
        if ev["kind"] == "error":
            failures.append(ev["message"])

    run_batch(job, options, v.workers, on_event)
    wall = time.perf_counter() - t0
    final = read_results(run_dir / "results").final()
    bad = final[final.status != "ok"]
    if len(bad) or failures:
        console.print(f"[red]{v.name}: {len(bad)} models not ok: {bad.message.tolist()[:3]} {failures[:3]}")
    ok = final[final.status == "ok"]
    return Outcome(sec.name, v.name, len(final), wall,
                   float(ok.images_per_second.median()) if len(ok) else float("nan"), None,
                   [float(e) for e in ok.error_min], sorted(set(final.step.dropna())),
                   [int(i) for i in ok.model_id],
                   f"study (precise-BN {recipe.precise_bn})" if v.precise_bn else "bench")


# -- global settings ----------------------------------------------------------------------

HOST_THREADS = torch.get_num_threads()  # torch's own default here, before anything sets it


def dsd_threads(device: str) -> int:
    """What `dsd train-batch` gives each worker (one thread, or OMP_NUM_THREADS)."""
    return 1 if device == "cpu" else resolve_threads(None)


def apply_settings(name: str, device: str) -> dict:
    """Set the process-wide settings a variant runs under, explicitly: an in-process variant
    leaves its own behind (dsd's worker sets the thread count, dsd's loop turns cuDNN's
    benchmark on), which would otherwise become the next variant's. The baseline gets
    pycls's (cuDNN benchmark on, torch's default threads), dsd's variants dsd's."""
    threads = HOST_THREADS if name == BASELINE else dsd_threads(device)
    torch.set_num_threads(threads)
    torch.backends.cudnn.benchmark = True
    return {"cudnn.benchmark": True, "threads": threads}


def warm_up(sec: Section, device: str, work: Path) -> float:
    """One tiny model through the baseline's and dsd's graph path, untimed; its seconds."""
    t0 = time.perf_counter()
    r = sec.recipe
    tiny = replace(sec, recipe=with_overrides(r, epochs=1, train_subset=min(r.train_subset or 10**9,
                                                                             4 * r.batch_size)))
    apply_settings(BASELINE, device)
    baseline(tiny, torch.device(device), 0, limit=1)
    apply_settings("warm-up", device)
    dsd_variant(tiny, device, Variant("warm-up", 1, graph_mode(device)), work, limit=1)
    return time.perf_counter() - t0


def graph_mode(device: str) -> str:
    return "graph" if device.startswith("cuda") else "eager"


class Utilisation:
    """Mean GPU utilisation while a variant runs (NVML, else nvidia-smi), or None."""

    def __init__(self, device: str):
        self.samples: list[float] = []
        self.read = _nvml_reader() if device.startswith("cuda") else None
        self._stop = threading.Event()

    def __enter__(self):
        if self.read:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            v = self.read()
            if v is not None:
                self.samples.append(v)

    def __exit__(self, *exc):
        self._stop.set()
        if self.read:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None


def _nvml_reader():
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception:
        pass
    if not shutil.which("nvidia-smi"):
        return None

    def smi() -> float | None:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True).stdout.split()
        return float(out[0]) if out else None
    return smi


class Mps:
    """NVIDIA's Multi-Process Service for the process variants, if its daemon starts."""

    def __init__(self, work: Path):
        self.dir = work / "mps"
        self.env = {"CUDA_MPS_PIPE_DIRECTORY": str(self.dir / "pipe"),
                    "CUDA_MPS_LOG_DIRECTORY": str(self.dir / "log")}

    def start(self) -> str | None:
        exe = shutil.which("nvidia-cuda-mps-control")
        if not exe:
            return "nvidia-cuda-mps-control is not on the PATH"
        for d in self.env.values():
            Path(d).mkdir(parents=True, exist_ok=True)
        r = subprocess.run([exe, "-d"], env={**os.environ, **self.env}, capture_output=True, text=True)
        if r.returncode:
            return f"the MPS daemon did not start: {r.stderr.strip()[:200]}"
        os.environ.update(self.env)  # spawned workers inherit it and become MPS clients
        return None

    def stop(self) -> None:
        subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, env={**os.environ, **self.env},
                       capture_output=True)
        for k in self.env:
            os.environ.pop(k, None)


# -- the run -------------------------------------------------------------------------------

class Budget:
    """A wall-clock budget for the whole bench (0 or None: no limit). Each section gets an equal
    share of what is left when it starts, so a slow first section cannot starve the second;
    a variant starts only if the estimate of its time fits in its section's share."""

    def __init__(self, seconds: float | None, sections: int, clock=time.monotonic):
        self.clock, self.left = clock, sections
        self.end = clock() + seconds if seconds else None
        self.section_end: float | None = None

    def start_section(self) -> None:
        if self.end is not None:
            now = self.clock()
            self.section_end = now + max(0.0, self.end - now) / max(1, self.left)
            self.left -= 1

    def fits(self, estimate_s: float) -> bool:
        return self.section_end is None or self.clock() + estimate_s <= self.section_end


def plan(concurrency: list[int], graph: str, today_workers: int) -> list[Variant]:
    """dsd's variants in the order they run. The first two are required; the second is the
    one later estimates are taken from. Processes and streams alternate at each N, so a run
    cut short by its budget still compares the two at the N it reached."""
    today = f"dsd today (auto: {today_workers} workers, eager)"
    out = [Variant(today, today_workers, "eager", required=True),
           Variant(f"dsd {graph}, 1 process", 1, graph, required=True),
           Variant(f"dsd {graph}, 1 process, precise-BN (the study's recipe)", 1, graph, precise_bn=True)]
    for n in (n for n in concurrency if n > 1):
        out.append(Variant(f"dsd {graph}, {n} processes", n, graph))
        out.append(Variant(f"dsd {graph}, 1 process, {n} streams", 1, graph, streams=n))
    return out


def run_section(sec: Section, args, work: Path, device: str, log,
                budget: Budget) -> tuple[list[Outcome], list[str]]:
    """Every variant of one section; returns what ran and the names skipped for the budget.
    The baseline, dsd today and dsd graph on 1 process always run: without them nothing
    can be compared or estimated."""
    outs: list[Outcome] = []
    skipped: list[str] = []
    variants = plan(sec.concurrency, graph_mode(device), resolve_workers("auto", device))
    reference = variants[1].name  # dsd graph, 1 process: later estimates are its time per model

    def run(v: Variant) -> None:
        if not v.required and not budget.fits(estimate(outs, reference, sec.models)):
            skipped.append(v.name)
            console.print(f"  {v.name}: not run, the time budget is spent")
            return
        settings = apply_settings(v.name, device)
        with Utilisation(device) as u:
            o = baseline(sec, torch.device(device), args.loader_workers) if v.name == BASELINE \
                else dsd_variant(sec, device, v, work)
        o.gpu_util, o.settings = u.mean, settings
        outs.append(o)
        log(o)
        console.print(f"  {o.variant}: {o.models} models in {o.wall_s:.1f} s, {o.per_hour:.0f}/h, "
                      f"median error {median(o.errors):.2f}%, steps {', '.join(o.steps)}")

    budget.start_section()
    console.print(f"  warm-up (not counted): {warm_up(sec, device, work):.1f} s")
    run(Variant(BASELINE, 1, "eager", required=True))
    for v in variants:
        run(v)
    if args.mps:
        under_mps(work, [replace(v, name=f"{v.name}, MPS") for v in variants if v.workers > 1], run)
    return outs, skipped


def estimate(outs: list[Outcome], reference: str, models: int) -> float:
    """Seconds that `models` models should take: the reference variant's time per model."""
    ref = next(o for o in outs if o.variant == reference)
    return ref.wall_s / max(1, ref.models) * models


def under_mps(work: Path, variants: list[Variant], run) -> None:
    mps = Mps(work)
    why = mps.start()
    if why:
        console.print(f"  MPS not measured: {why}")
        return
    try:
        for v in variants:
            run(v)
    finally:
        mps.stop()


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist",
                    help="Fashion-MNIST folder (the four idx .gz files)")
    ap.add_argument("--out", default="bench-gpu-out")
    ap.add_argument("--small", type=int, default=16)
    ap.add_argument("--big", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train-images", type=int, default=10000)
    ap.add_argument("--test-images", type=int, default=0, help="a test subset (0: all)")
    ap.add_argument("--concurrency", default="2,4,8,16")
    ap.add_argument("--big-concurrency", default="2,4,8")
    ap.add_argument("--sections", default="small,big")
    ap.add_argument("--loader-workers", type=int, default=8, help="the baseline DataLoader's workers")
    ap.add_argument("--budget-s", type=float, default=0,
                    help="wall-clock budget in seconds, shared equally by the sections; a variant "
                         "that would not fit is skipped and named in the summary (0: none)")
    ap.add_argument("--mps", action="store_true", help="also run the process variants under NVIDIA MPS")
    ap.add_argument("--cpu-dry-run", action="store_true", help="every variant, tiny, on the CPU")
    return ap.parse_args()


def main() -> None:
    args = parse()
    device = "cpu" if args.cpu_dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench/gpu.py needs a CUDA device (or --cpu-dry-run)")
    if args.cpu_dry_run:
        args.small, args.big, args.epochs, args.train_images, args.test_images = 2, 2, 1, 256, 256
        args.concurrency = args.big_concurrency = "2"
        args.loader_workers = 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jsonl, md = out / "gpu_bench.jsonl", out / "gpu_bench.md"
    jsonl.write_text("")
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (dry run: the numbers mean nothing)"
    head = (f"bench/gpu.py on {name}; torch {torch.__version__}; {os.cpu_count()} CPUs; "
            f"{args.epochs} epochs on {args.train_images} images; args: {' '.join(sys.argv[1:])}")
    console.print(head)
    md.write_text(f"{head}\n\n")

    def log(o: Outcome) -> None:
        with jsonl.open("a") as f:
            f.write(json.dumps({**o.__dict__, "per_hour": o.per_hour}) + "\n")

    with tempfile.TemporaryDirectory(prefix="dsd-gpu-bench-") as tmp:
        work = Path(tmp)
        sections = make_sections(args, device, work)
        budget = Budget(args.budget_s, len(sections))
        for sec in sections:
            sec.run = work / f"sampled-{sec.dataset}"
            sample_new("regnetx", sec.models, sec.run, sec.shape, {"flops": sec.flops}, seed=0,
                       dataset=sec.dataset)
            sec.recipe = replace(with_overrides(default_recipe(sec.dataset), epochs=args.epochs,
                                                train_subset=args.train_images,
                                                test_subset=args.test_images), precise_bn=0)
            console.rule(sec.name)
            outs, skipped = run_section(sec, args, work, device, log, budget)
            s = summary(outs)
            console.print(table(outs))
            console.print(headline(s))
            with md.open("a") as f:
                f.write(markdown(outs, s, skipped) + "\n")
    console.print(f"wrote {jsonl} and {md}")


def make_sections(args, device: str, work: Path) -> list[Section]:
    cuda = device == "cuda"
    sections = []
    if "small" in args.sections:
        sections.append(Section("small: regnetx 2M-6M flops, Fashion-MNIST 28 px", "fashion-mnist",
                                Shape(1, 28, 10, 1), "2M:6M" if cuda else "1M:3M",
                                args.small, _ints(args.concurrency), args.data_dir))
    if "big" in args.sections:
        cifar = cifar_shaped_from_fashion(args.data_dir, work / "cifar", args.train_images)
        sections.append(Section("big: regnetx 200M-400M flops, 32 px x 3 channels", "cifar10",
                                Shape(3, 32, 10, 1), "200M:400M" if cuda else "1M:3M",
                                args.big, _ints(args.big_concurrency), str(cifar)))
    return sections


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


if __name__ == "__main__":
    main()
