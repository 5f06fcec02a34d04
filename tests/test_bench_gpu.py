"""bench/gpu.py's every code path, tiny, on the CPU: GPU time is scarce, so the script must
be known to run before it is spent on it. Its numbers here mean nothing; the test checks
the shape of what it reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.mark.skipif(not FASHION.exists(), reason="needs the Debian Fashion-MNIST (make fashion-mnist)")
def test_gpu_bench_dry_run(tmp_path):
    r = subprocess.run([sys.executable, "bench/gpu.py", "--cpu-dry-run", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "gpu_bench.jsonl").read_text().splitlines()]
    want = ["baseline (pycls-style)", "dsd today (1 worker, eager)", "dsd eager, 2 processes",
            "dsd eager, 1 process, 2 streams"]
    assert [r["variant"] for r in rows] == want * 2  # both sections, every variant
    for row in rows:
        assert row["models"] == 2 and len(row["errors"]) == 2 and row["wall_s"] > 0
        assert all(0 <= e <= 100 for e in row["errors"])
    md = (tmp_path / "gpu_bench.md").read_text()
    assert md.count("| baseline (pycls-style) | 2 |") == 2 and "KS D =" in md
