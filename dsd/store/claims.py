"""Claims: which worker trains which model, safe across processes and hosts.

A worker claims model ID by taking an exclusive fcntl lock on RUN/claims/ID.lock and
holding it while it trains. The kernel drops the lock when the process dies (SIGKILL
included), so a dead worker's model is free again at once on the same host. Beside the
lock, RUN/claims/ID holds the owner's host, pid and a heartbeat refreshed by a thread:
on a shared file system without working cross-host locks, a claim from another host is
respected until its heartbeat is older than the lease.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from pathlib import Path

DEFAULT_LEASE = 300.0


class Claim:
    def __init__(self, claims_dir: Path, model_id: int, fd: int, lease: float):
        self.dir, self.model_id, self.fd, self.lease = claims_dir, model_id, fd, lease
        self.info = claims_dir / str(model_id)
        self._stop = threading.Event()
        self._beat()
        self._thread = threading.Thread(target=self._heartbeat, daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        tmp = self.dir / f".{self.model_id}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                   "heartbeat": time.time()}))
        os.replace(tmp, self.info)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease / 4):
            try:
                self._beat()
            except OSError:
                pass

    def release(self, done: bool) -> None:
        """Give the model up; once it is done, the claim files go too."""
        self._stop.set()
        self._thread.join()
        if done:
            self.info.unlink(missing_ok=True)
            (self.dir / f"{self.model_id}.lock").unlink(missing_ok=True)
        os.close(self.fd)


def try_claim(claims_dir: Path, model_id: int, lease: float = DEFAULT_LEASE) -> Claim | None:
    """Claim the model, or None when a live worker holds it."""
    claims_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(claims_dir / f"{model_id}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if _held_elsewhere(claims_dir / str(model_id), lease):
        os.close(fd)
        return None
    return Claim(claims_dir, model_id, fd, lease)


def _held_elsewhere(info: Path, lease: float) -> bool:
    """A fresh heartbeat from another host: its lock may not reach us."""
    try:
        data = json.loads(info.read_text())
    except (OSError, ValueError):
        return False
    if data.get("host") == socket.gethostname():
        return False  # on this host the lock is authoritative and we hold it
    return time.time() - float(data.get("heartbeat", 0)) < lease


def in_flight(claims_dir: Path, lease: float = DEFAULT_LEASE) -> list[int]:
    """Models whose claim looks alive: a live pid on this host, a fresh heartbeat elsewhere."""
    out = []
    if not claims_dir.is_dir():
        return out
    for info in claims_dir.iterdir():
        if not info.name.isdigit():
            continue
        try:
            data = json.loads(info.read_text())
        except (OSError, ValueError):
            continue
        if data.get("host") == socket.gethostname():
            alive = pid_alive(int(data.get("pid", -1)))
        else:
            alive = time.time() - float(data.get("heartbeat", 0)) < lease
        if alive:
            out.append(int(info.name))
    return sorted(out)


def pid_alive(pid: int) -> bool:
    """Whether a process runs: a zombie (exited, not yet reaped, as under a container's
    init that does not reap) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): trust kill(0)
    return state != "Z"
