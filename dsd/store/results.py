"""Training results: append-only shards under RUN/results/, read back as one table.

Each finished attempt is one parquet file with a unique name, written under a temporary
name outside the *.parquet pattern and renamed into place, so a reader never sees half a
file and no writer rewrites another's. A damaged file is reported by name and skipped.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FINAL = ("ok", "diverged")           # done for good
RETRYABLE = ("failed", "oom")        # done unless --retry-failed
STATUSES = FINAL + RETRYABLE

SCHEMA = pa.schema([
    ("model_id", pa.int64()), ("status", pa.string()), ("error_min", pa.float64()),
    ("error_last", pa.float64()), ("curve", pa.list_(pa.float64())), ("train_loss", pa.float64()),
    ("epochs", pa.int64()), ("seconds", pa.float64()), ("images_per_second", pa.float64()),
    ("device", pa.string()), ("dataset", pa.string()), ("recipe", pa.string()),
    ("worker", pa.string()), ("finished_at", pa.timestamp("us", tz="UTC")),
    ("message", pa.string()), ("seed", pa.int64()), ("batch_size", pa.int64()),
    ("threads", pa.int64()), ("dsd_version", pa.string()), ("git_commit", pa.string()),
])


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def write_result(results_dir: Path, row: dict) -> Path:
    """One result row as a new uniquely named shard; returns its path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    row = dict(row)
    row.setdefault("worker", worker_name())
    row.setdefault("finished_at", dt.datetime.now(dt.UTC))
    cols = {f.name: [row.get(f.name)] for f in SCHEMA}
    table = pa.table(cols, schema=SCHEMA)
    name = f"{row['model_id']}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp = results_dir / f".{name}.tmp"
    pq.write_table(table, tmp)
    final = results_dir / f"{name}.parquet"
    os.replace(tmp, final)
    return final


@dataclass
class Results:
    rows: list[dict] = field(default_factory=list)
    corrupt: list[tuple[Path, str]] = field(default_factory=list)

    def frame(self):
        """All attempts, as a DataFrame (columns of SCHEMA that the files have)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=[f.name for f in SCHEMA] if not self.rows else None)

    def final(self, retry_failed: bool = False):
        """One row per model that is done: ok/diverged first, then the latest attempt."""
        df = self.frame()
        if df.empty:
            return df
        done = df[df.status.isin(FINAL if retry_failed else STATUSES)].copy()
        done["_rank"] = done.status.isin(FINAL).astype(int)
        done = done.sort_values(["model_id", "_rank", "finished_at"])
        return done.groupby("model_id").tail(1).drop(columns="_rank").set_index("model_id",
                                                                                  drop=False)


def read_results(results_dir: Path) -> Results:
    out = Results()
    if not results_dir.is_dir():
        return out
    for path in sorted(results_dir.glob("*.parquet")):
        try:
            table = pq.read_table(path)
            out.rows.extend(_normalise(table.to_pylist()))
        except Exception as e:  # any damage: name the file, keep the others
            out.corrupt.append((path, f"{type(e).__name__}: {e}"))
    return out


def _normalise(rows: list[dict]) -> list[dict]:
    """Accept any types that cast to the schema (int32 ids, other timestamp units, gaps)."""
    for r in rows:
        for f in SCHEMA:
            r.setdefault(f.name, None)
        r["model_id"] = int(r["model_id"])
        ts = r["finished_at"]
        if isinstance(ts, dt.datetime) and ts.tzinfo is None:
            r["finished_at"] = ts.replace(tzinfo=dt.UTC)
        elif ts is None:
            r["finished_at"] = dt.datetime.fromtimestamp(0, dt.UTC)
    return rows


def done_ids(results_dir: Path, retry_failed: bool = False) -> set[int]:
    final = read_results(results_dir).final(retry_failed)
    return set() if final.empty else set(int(i) for i in final.model_id)


def model_done(results_dir: Path, model_id: int, retry_failed: bool = False) -> bool:
    """Whether this one model has a final row (reads only its own shards)."""
    wanted = FINAL if retry_failed else STATUSES
    for path in results_dir.glob(f"{model_id}-*.parquet"):
        try:
            statuses = pq.read_table(path, columns=["model_id", "status"]).to_pylist()
        except Exception:
            continue
        if any(int(r["model_id"]) == model_id and r["status"] in wanted for r in statuses):
            return True
    return False
