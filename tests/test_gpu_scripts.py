"""scripts/gpu_smoke.sh, the first thing run on a GPU machine, runs end to end on the CPU
(its dry run), and stops at once, saying why, when the data set was not carried."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _smoke(out: Path, data: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OUT=str(out), SMOKE_DRY_RUN="1", DSD_FASHION_MNIST=str(data), PY=sys.executable)
    return subprocess.run(["bash", "scripts/gpu_smoke.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").exists(),
                    reason="needs the Debian Fashion-MNIST (make fashion-mnist)")
def test_smoke_script_dry_run_passes_every_stage(tmp_path):
    r = _smoke(tmp_path, FASHION)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-2000:])
    stages = ["data", "imports", "graph-step", "end-to-end"]
    assert (tmp_path / "summary.txt").read_text().splitlines() == [
        *(f"smoke {s}: exit 0" for s in stages), "smoke: passed"]
    log = (tmp_path / "smoke.log").read_text()
    assert "train-images-idx3-ubyte.gz: 60000 items" in log and "Fashion-MNIST: (60000, 1, 28, 28)" in log
    assert '"status": "ok"' in log and '"precision": "fp32"' in log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smoke.log", "summary.txt"]  # nothing else in $OUT


def test_smoke_script_stops_first_when_the_data_set_is_missing(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    r = _smoke(tmp_path / "out", empty)
    assert r.returncode == 1
    assert (tmp_path / "out" / "summary.txt").read_text().splitlines() == ["smoke data: exit 1"]
    assert "missing: " in r.stdout and "make gpu-data" in r.stdout
