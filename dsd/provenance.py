"""Which code produced a result: the dsd version and, in a git checkout, the commit.

Every result row records both, so a published number can be traced to the code that
trained it (airbench saves its own source beside its results for the same reason).
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from dsd import __version__


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
    return {"dsd_version": __version__, "git_commit": git_commit()}
