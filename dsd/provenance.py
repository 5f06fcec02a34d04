"""Which code and machine produced a result: the dsd version, the git commit, and the
platform (torch, CPU model, BLAS and oneDNN builds, CPU capability, CUDA).

Every result row records them, so a published number can be traced to the code that
trained it (airbench saves its own source beside its results for the same reason), and a
difference on another machine can be explained by what differs.
"""

from __future__ import annotations

import functools
import json
import platform as _platform
import re
import subprocess
from pathlib import Path

from dsd.version import __version__


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout dsd runs from (with '+dirty' for local changes), or None."""
    src = Path(__file__).resolve().parent.parent
    if not (src / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no",
                                "--", "dsd"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def stamp() -> dict[str, str | None]:
    return {"dsd_version": __version__, "git_commit": git_commit(), "platform": platform_json()}


@functools.lru_cache(maxsize=1)
def platform_info() -> dict[str, str | None]:
    """What shapes a model's floating-point result besides the code and the seed."""
    import torch

    config = torch.__config__.show()
    find = lambda pattern: (m.group(1).strip() if (m := re.search(pattern, config)) else None)  # noqa: E731
    return {"torch": torch.__version__, "python": _platform.python_version(), "cpu": _cpu_model(),
            "blas": find(r"BLAS_INFO=(\w+)"), "onednn": find(r"MKL-DNN (v[\d.]+)"),
            "cpu_capability": find(r"CPU capability usage: (\w+)"), "cuda": torch.version.cuda}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _platform.processor() or _platform.machine()


def platform_json() -> str:
    return json.dumps(platform_info(), sort_keys=True)
