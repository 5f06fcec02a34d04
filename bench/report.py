"""`dsd study report` on the published study: this checkout against an earlier commit.

Both versions run on the same copy of the study's files, alternating, each as a whole
command (process start included); each writes FINDINGS.md, which must be byte-identical
between them (the script fails otherwise). Prints the median seconds of each and the ratio.

    .venv/bin/python bench/report.py --base REF [--study studies/fashion-mnist.toml] [--repeats 3]

REF is any git revision (a tag, a commit): it is checked out into a temporary worktree.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _report(code: Path, study: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dsd", "study", "report", str(study)], cwd=study.parent.parent,
                   env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="The earlier git revision to compare with.")
    ap.add_argument("--study", default="studies/fashion-mnist.toml")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    study = (ROOT / args.study).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = tmp / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base],
                       check=True, capture_output=True)
        try:
            copy = tmp / "work" / "studies"
            copy.mkdir(parents=True)
            shutil.copy(study, copy / study.name)
            shutil.copytree(study.with_suffix(""), copy / study.stem)
            target = copy / study.name
            findings = copy / study.stem / "FINDINGS.md"
            times: dict[str, list[float]] = {"base": [], "here": []}
            texts: dict[str, bytes] = {}
            print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
            for i in range(args.repeats):
                for name, code in (("base", base), ("here", ROOT)):
                    times[name].append(_report(code, target))
                    texts[name] = findings.read_bytes()
                    print(f"  repeat {i + 1}: {name} {times[name][-1]:.1f} s", flush=True)
            print(f"load average after: {os.getloadavg()[0]:.2f}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                           capture_output=True)
    b, h = statistics.median(times["base"]), statistics.median(times["here"])
    same = texts["base"] == texts["here"]
    print(f"| study report | {args.base} | this checkout | ratio |\n|---|---:|---:|---:|\n"
          f"| {args.study} | {b:.1f} s | {h:.1f} s | {b / h:.2f}x |")
    print("FINDINGS.md byte-identical: " + ("yes" if same else "NO"))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
