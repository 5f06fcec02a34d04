"""The stages of scripts/gpu_smoke.sh, one subcommand each; each prints what it saw and
exits non-zero when its check fails.

    python scripts/gpu_smoke.py data [DIR]            the four Fashion-MNIST files, whole
    python scripts/gpu_smoke.py imports --device D    torch, CUDA, the device, dsd, the data
    python scripts/gpu_smoke.py graph-step --device D  one captured step against eager ones
    python scripts/gpu_smoke.py end-to-end --device D  dsd train-batch on one model

`data` imports neither torch nor numpy: it runs first and fast, before anything that
could hide a missing data set. `--device cpu` is the dry run the test suite uses.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = {"train-images-idx3-ubyte": 60000, "train-labels-idx1-ubyte": 60000,
         "t10k-images-idx3-ubyte": 10000, "t10k-labels-idx1-ubyte": 10000}


def fashion_dir() -> Path:
    return Path(os.environ.get("DSD_FASHION_MNIST") or ROOT / ".data" / "fashion-mnist")


def data(folder: Path) -> None:
    """Each idx file present, gzip intact, and holding the count of items it should."""
    for name, count in FILES.items():
        path = folder / f"{name}.gz"
        if not path.is_file():
            sys.exit(f"missing: {path} (make gpu-data copies it into .data/; carry .data)")
        with gzip.open(path, "rb") as f:
            magic, n = struct.unpack(">II", f.read(8))
            size = len(f.read())  # reads to the end: a truncated file fails here
        if n != count or magic not in (2049, 2051):
            sys.exit(f"damaged: {path}: magic {magic}, {n} items (want {count})")
        print(f"{path}: {n} items, {size} bytes of data")


def imports(device: str) -> None:
    import torch

    print(f"python {sys.version.split()[0]}; torch {torch.__version__}; CUDA {torch.version.cuda}; "
          f"cuDNN {torch.backends.cudnn.version()}")
    if device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("torch sees no CUDA device")
        p = torch.cuda.get_device_properties(0)
        print(f"{p.name}: {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, "
              f"capability {p.major}.{p.minor}")
    import dsd.cli  # noqa: F401  (the CLI and what it imports: typer, rich, pandas, pyarrow, scipy)
    from dsd.data.registry import load
    from dsd.train import batch, loop, step, streams  # noqa: F401

    for optional in ("fvcore", "submitit", "pynvml"):  # not needed to train; named if absent
        try:
            __import__(optional)
        except ImportError:
            print(f"note: {optional} is not installed (training does not need it)")
    d = load("fashion-mnist", str(fashion_dir()))
    print(f"Fashion-MNIST: {d.train_x.shape} train, {d.test_x.shape} test, from {d.source}")


def graph_step(device: str) -> None:
    """Six fp32 steps as a graph and eagerly from the same weights: the graph captured, and
    the losses the same. On a CPU nothing can be captured: the eager fallback is checked."""
    import torch

    from dsd.model.arch import Shape, anynet_arch
    from dsd.model.net import build
    from dsd.train.faults import CaptureLatch
    from dsd.train.step import EagerStep, GraphStep

    dev = torch.device(device)
    torch.manual_seed(0)
    arch = anynet_arch([1, 2, 1, 1], [16, 32, 64, 64], [1, 1, 1, 1], [8, 8, 8, 8], shape=Shape(1, 28, 10, 1))
    a, b = (build(arch).to(dev, memory_format=torch.channels_last) for _ in range(2))
    b.load_state_dict(a.state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9, nesterov=True, weight_decay=5e-4)
            for m in (a, b)]
    eager = EagerStep(a, opts[0], dev, amp=False)
    kw = {} if device == "cuda" else {"capture": _no_capture, "warm_up": lambda fn, d: fn()}
    graph = GraphStep(b, opts[1], dev, latch=CaptureLatch(), amp=False, **kw)
    t0 = time.perf_counter()
    la, lb = [], []
    for _ in range(6):
        x = torch.randn(64, 1, 28, 28, device=dev).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (64,), device=dev)
        la.append(float(eager(x, y, 0.02)))
        lb.append(float(graph(x, y, 0.02)))
    print(f"mode {graph.mode!r}; eager losses {[round(v, 5) for v in la]}; "
          f"graph {[round(v, 5) for v in lb]}; {time.perf_counter() - t0:.2f} s")
    if device == "cuda" and (graph.replay is None or graph.mode != "graph"):
        sys.exit("the step was not captured")
    worst = max(abs(u - v) / abs(u) for u, v in zip(la, lb))
    if worst > 1e-3:
        sys.exit(f"graph and eager losses differ by {worst:.2e} (relative)")


def _no_capture(fn, device):
    raise RuntimeError("CPU dry run: no CUDA graph to capture")


def end_to_end(device: str) -> None:
    """`dsd sample` then `dsd train-batch` on one Fashion-MNIST model, as a user runs them."""
    gpu = device == "cuda"
    with tempfile.TemporaryDirectory(prefix="dsd-smoke-") as tmp:
        run = Path(tmp) / "run"
        _dsd("sample", "--space", "regnetx", "--n", "1", "--dataset", "fashion-mnist",
             "--flops", "2M:6M" if gpu else "1M:3M", "--out", str(run))
        t0 = time.perf_counter()
        _dsd("train-batch", str(run), "--device", device, "--step", "graph" if gpu else "eager",
             "--workers", "1", "--epochs", "1", "--train-subset", "10000" if gpu else "1000",
             "--test-subset", "2000" if gpu else "500", "--data-dir", str(fashion_dir()))
        took = time.perf_counter() - t0
        from dsd.store.results import read_results

        row = read_results(run / "results").final().iloc[0]
    keys = ("status", "error_min", "step", "precision", "batch_size", "images_per_second", "device",
            "message")
    print(json.dumps({k: _plain(row[k]) for k in keys} | {"train_batch_s": round(took, 1)}))
    # One epoch on 10,000 images learns (chance is 90%); the dry run's few steps need not.
    want = ("ok", "graph", "bf16-autocast", 60.0) if gpu else ("ok", "eager", "fp32", 100.0)
    if (row.status, row.step, row.precision) != want[:3] or not row.error_min <= want[3]:
        sys.exit(f"want status, step, precision {want[:3]} and an error of at most {want[3]}%: got "
                 f"{row.status}, {row.step}, {row.precision}, {row.error_min:.2f}%")


def _dsd(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "dsd", *args], cwd=ROOT, text=True, capture_output=True)
    print(f"$ dsd {' '.join(args)}", r.stdout[-600:].strip(), r.stderr[-1500:].strip(), sep="\n")
    if r.returncode:
        sys.exit(f"dsd {args[0]} exited {r.returncode}")


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stage", choices=("data", "imports", "graph-step", "end-to-end"))
    ap.add_argument("folder", nargs="?", help="data: the Fashion-MNIST folder")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = ap.parse_args()
    if args.stage == "data":
        data(Path(args.folder) if args.folder else fashion_dir())
    elif args.stage == "imports":
        imports(args.device)
    elif args.stage == "graph-step":
        graph_step(args.device)
    else:
        end_to_end(args.device)


if __name__ == "__main__":
    main()
