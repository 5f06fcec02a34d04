"""Every published RegNet out to every tool, checked: too heavy for the test suite.

For each of the 24 RegNets of pycls's model zoo (X and Y, 200MF..32GF): the pycls YAML read
back to the same network, torchvision's and timm's modules, and the ONNX file, each with
its parameter count against dsd's analytic count (which `tests/test_complexity.py` ties to
pycls's exact figures), and ONNX's outputs against the torch module's through onnxruntime.
The ONNX check runs at 64 px to keep it to minutes (the parameters do not depend on the
resolution; the network's layers are the same). Prints one row per network.

    python bench/export_check.py [--resolution 64] [--only RegNetX-200MF ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsd.interop.export import (  # noqa: E402
    from_published,
    pycls_yaml_to_arch,
    to_onnx,
    to_pycls_yaml,
    to_timm,
    to_torchvision,
)
from dsd.model.complexity import complexity  # noqa: E402
from dsd.model.zoo import PUBLISHED  # noqa: E402


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def check(name: str, resolution: int, tmp: Path) -> dict:
    net = from_published(name)
    ours = complexity(net.arch)["params"]
    row = {"name": name, "dsd params": ours,
           "pycls yaml": pycls_yaml_to_arch(to_pycls_yaml(net)) == net.arch,
           "torchvision": _count(to_torchvision(net.arch)) == ours,
           "timm": _count(to_timm(net)) == ours}
    small = replace(net.arch, shape=replace(net.arch.shape, resolution=resolution))
    t0 = time.perf_counter()
    path = to_onnx(small, tmp / f"{name}.onnx")  # raises unless onnxruntime agrees
    row["onnx"] = True
    row["onnx s"] = round(time.perf_counter() - t0, 1)
    path.unlink()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    names = args.only or list(PUBLISHED)
    print("| network | dsd params | pycls YAML round-trips | torchvision params equal | "
          "timm params equal | ONNX = torch (onnxruntime) | ONNX s |")
    print("|---|---|---|---|---|---|---|")
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            r = check(name, args.resolution, Path(d))
            ok = all(r[k] for k in ("pycls yaml", "torchvision", "timm", "onnx"))
            bad += not ok
            print(f"| {name} | {r['dsd params']:,} | {r['pycls yaml']} | {r['torchvision']} | "
                  f"{r['timm']} | {r['onnx']} | {r['onnx s']} |", flush=True)
    print(f"{len(names) - bad} of {len(names)} networks pass every check")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
