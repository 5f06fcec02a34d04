"""Training results: append-only shards under RUN/results/, folded into compacted tables.

Writing: each finished attempt is one parquet shard with a unique name
(`{model_id}-{host}-{pid}-{random}.parquet`), written under a hidden temporary name and
renamed into place, so a reader never sees half a file and no writer rewrites another's.
Every row carries its shard's name in `shard`.

Compaction (README, "Files of a run"): a reader that finds many shards, or more than one
compacted table, folds everything it read into a new `compacted-{time}-{random}.parquet`
(same schema; written hidden, then renamed), and only then moves the shards it folded
into `results/_folded/` and deletes the compacted tables it read. So at every moment every
row is in some file, a kill at any point leaves at worst a row in two files, and readers
drop duplicates by `shard`. A file that vanishes while being read (another reader
compacted it) restarts the read. A damaged compacted table is reported by name and its
rows are recovered from `_folded/`, which keeps every folded shard.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

FINAL = ("ok", "diverged")           # done for good
RETRYABLE = ("failed", "oom")        # done unless --retry-failed
STATUSES = FINAL + RETRYABLE
COMPACT_AT = 64                      # pending shards that make a reader compact
FOLDED = "_folded"                   # a leading _ hides it from pyarrow/pandas dataset reads

SCHEMA = pa.schema([
    ("model_id", pa.int64()), ("status", pa.string()), ("error_min", pa.float64()),
    ("error_last", pa.float64()), ("curve", pa.list_(pa.float64())), ("train_loss", pa.float64()),
    ("epochs", pa.int64()), ("seconds", pa.float64()), ("images_per_second", pa.float64()),
    ("device", pa.string()), ("dataset", pa.string()), ("recipe", pa.string()),
    ("worker", pa.string()), ("finished_at", pa.timestamp("us", tz="UTC")),
    ("message", pa.string()), ("seed", pa.int64()), ("batch_size", pa.int64()),
    ("threads", pa.int64()), ("dsd_version", pa.string()), ("git_commit", pa.string()),
    ("shard", pa.string()), ("step", pa.string()), ("platform", pa.string()),
    # The errors of the weights' moving average, where the trainer kept one (pycls imports).
    ("error_min_ema", pa.float64()), ("error_last_ema", pa.float64()),
    # The arithmetic of training: "fp32" (CPU) or "bf16-autocast" (GPU); see dsd.train.step.
    ("precision", pa.string()),
])


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def write_result(results_dir: Path, row: dict) -> Path:
    """One result row as a new uniquely named shard; returns its path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    row = dict(row)
    row.setdefault("worker", worker_name())
    row.setdefault("finished_at", dt.datetime.now(dt.UTC))
    name = f"{row['model_id']}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    row["shard"] = name
    cols = {f.name: [row.get(f.name)] for f in SCHEMA}
    table = pa.table(cols, schema=SCHEMA)
    tmp = results_dir / f".{name}.tmp"
    pq.write_table(table, tmp)
    final = results_dir / f"{name}.parquet"
    os.replace(tmp, final)
    return final


def write_rows(results_dir: Path, rows: list[dict], stem: str) -> Path:
    """Many result rows (an import) as one table `{stem}.parquet`, written hidden and renamed;
    row i carries the shard name `{stem}#i`, as a foreign file's rows are named on reading."""
    results_dir.mkdir(parents=True, exist_ok=True)
    final = results_dir / f"{stem}.parquet"
    if final.exists():
        raise FileExistsError(final)
    now = dt.datetime.now(dt.UTC)
    rows = [dict({"worker": worker_name(), "finished_at": now}, **r, shard=f"{stem}#{i}")
            for i, r in enumerate(rows)]
    table = pa.table({f.name: [r.get(f.name) for r in rows] for f in SCHEMA}, schema=SCHEMA)
    tmp = results_dir / f".{stem}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final


@dataclass
class Results:
    table: pa.Table = field(default_factory=lambda: SCHEMA.empty_table())
    corrupt: list[tuple[Path, str]] = field(default_factory=list)
    compacted: int = 0      # rows read from compacted tables
    pending: int = 0        # shards not folded yet

    @property
    def rows(self) -> list[dict]:
        return self.table.to_pylist()

    def frame(self):
        """All attempts, as a DataFrame with the columns of SCHEMA."""
        return self.table.to_pandas()

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


class _Vanished(Exception):
    """A file went away between listing and reading: another reader compacted it."""


_SHARD_NAME = re.compile(r"\d+-")  # write_result's names: `{model_id}-{host}-...`
KEY = ("model_id", "status", "finished_at", "shard")  # what final() and dedupe need


def read_results(results_dir: Path, compact: bool = True, compact_at: int = COMPACT_AT,
                 columns: tuple[str, ...] | None = None) -> Results:
    """Every result of a run, each once; compacts when it finds `compact_at` shards or more
    (or several compacted tables, or a damaged one) and may write to the directory.

    `columns` reads only those (plus model_id, status, finished_at and shard) when no
    compaction is due; a compacting read reads every column, since it rewrites them.
    """
    schema = SCHEMA
    if columns is not None:
        keep = set(columns) | set(KEY)
        schema = pa.schema([f for f in SCHEMA if f.name in keep])
    for _ in range(20):
        try:
            return _read(Path(results_dir), compact, compact_at, schema)
        except _Vanished:
            continue
    raise OSError(f"{results_dir}: files keep vanishing while being read; is a foreign tool "
                  "deleting them?")


def _visible(results_dir: Path, pattern: str) -> list[Path]:
    return sorted(p for p in results_dir.glob(pattern) if not p.name.startswith(("_", ".")))


def _read(results_dir: Path, compact: bool, compact_at: int, schema: pa.Schema) -> Results:
    out = Results(table=schema.empty_table())
    if not results_dir.is_dir():
        return out
    tables, read_compacted, damaged = [], [], []
    files = _visible(results_dir, "*.parquet")
    compacted = [p for p in files if p.name.startswith("compacted-")]
    shards = [p for p in files if not p.name.startswith("compacted-")]
    if compact and (len(shards) >= compact_at or len(compacted) > 1):
        schema = SCHEMA
    for path in compacted:
        t = _read_file(path, out, schema)
        if t is None:
            damaged.append(path)
        else:
            tables.append(t)
            read_compacted.append(path)
            out.compacted += t.num_rows
    if damaged and compact and schema != SCHEMA:
        return _read(results_dir, compact, compact_at, SCHEMA)  # recovery rewrites every column
    if damaged:  # its rows live on as folded shards: read them all back
        tables += [t for p in _visible(results_dir / FOLDED, "*.parquet")
                   if (t := _read_file(p, out, schema, vanish_ok=True)) is not None]
    read_shards = []
    for path in shards:
        t = _read_file(path, out, schema)
        if t is not None:
            tables.append(t)
            read_shards.append(path)
    out.pending = len(read_shards)
    out.table = _dedupe(pa.concat_tables(tables) if tables else schema.empty_table())
    _settle_damaged_shards(results_dir, out, compact)
    if schema == SCHEMA and compact and (len(read_shards) >= compact_at
                                         or len(read_compacted) > 1 or damaged):
        try:
            _compact(results_dir, out, read_compacted, read_shards, damaged)
        except OSError:
            pass  # a read-only or full file system: reading still works, only slower
    return out


def _settle_damaged_shards(results_dir: Path, out: Results, move: bool) -> None:
    """A damaged shard of a model that has a final row elsewhere (it was trained again) is
    no longer news: it leaves the warnings, and a compacting reader moves it aside."""
    if not out.corrupt or not out.table.num_rows:
        return
    status = out.table.column("status").to_pylist()
    done = {m for m, st in zip(out.table.column("model_id").to_pylist(), status) if st in FINAL}
    keep = []
    for path, why in out.corrupt:
        m = _SHARD_NAME.match(path.name)
        if m and path.parent == results_dir and int(m.group(0)[:-1]) in done:
            if move:
                _quietly(os.replace, path, results_dir / f"_damaged-{path.name}")
            continue
        keep.append((path, why))
    out.corrupt = keep


def _read_file(path: Path, out: Results, schema: pa.Schema = SCHEMA,
               vanish_ok: bool = False) -> pa.Table | None:
    try:
        with pq.ParquetFile(path) as f:  # lighter than pq.read_table's dataset machinery
            present = [n for n in schema.names if n in f.schema_arrow.names]
            return _conform(f.read(columns=present), path, schema)
    except FileNotFoundError:
        if vanish_ok:
            return None
        raise _Vanished() from None
    except Exception as e:  # any damage: name the file, keep the others
        out.corrupt.append((path, str(e) if isinstance(e, ForeignRows) else f"{type(e).__name__}: {e}"))
        return None


class ForeignRows(ValueError):
    """A results file whose rows cannot each be told apart: refused whole, named."""


def _conform(t: pa.Table, path: Path, schema: pa.Schema = SCHEMA) -> pa.Table:
    """Any older or foreign shard to `schema`: missing columns null, types cast, and every
    row given its own shard name where it carries none (see `_row_names`)."""
    n = t.num_rows
    cols = []
    for f in schema:
        if f.name == "shard":
            cols.append(_row_names(t, path))
        elif f.name in t.column_names:
            col = t.column(f.name)
            if f.name == "finished_at" and pa.types.is_timestamp(col.type) and col.type.tz is None:
                col = pc.assume_timezone(col, "UTC")
            cols.append(col.cast(f.type))
        else:
            cols.append(pa.nulls(n, f.type))
    return pa.table(cols, schema=schema)


def _row_names(t: pa.Table, path: Path) -> pa.Array:
    """The shard name of each row, the identity readers deduplicate by.

    A row without one is named after its file: the file's stem for a one-row file (an
    older dsd shard), `stem#i` for row i of a longer one (another tool's export), so that
    every row of such a file counts once, on every read and after compaction. Names must
    be unique within a file: dsd never writes a file otherwise, and deduplicating such a
    file would silently keep one row of many, so it is refused whole instead.
    """
    n = t.num_rows
    given = (t.column("shard").cast(pa.string()).to_pylist() if "shard" in t.column_names
             else [None] * n)
    names = [g if g is not None else (path.stem if n == 1 else f"{path.stem}#{i}")
             for i, g in enumerate(given)]
    if len(set(names)) < n:
        raise ForeignRows(f"{n - len(set(names))} of its {n} rows repeat another row's 'shard' "
                          "name, so they cannot be told apart; give each row its own name, "
                          "or drop the shard column and dsd names them")
    return pa.array(names, pa.string())


def _dedupe(t: pa.Table) -> pa.Table:
    """One row per shard: a shard read both as itself and inside a compacted table counts once."""
    if t.num_rows == 0:
        return t
    shard = t.column("shard").to_numpy(zero_copy_only=False)
    _, first = np.unique(shard, return_index=True)
    return t.take(np.sort(first)) if len(first) < t.num_rows else t


def _compact(results_dir: Path, out: Results, compacted: list[Path], shards: list[Path],
             damaged: list[Path]) -> None:
    name = f"compacted-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}.parquet"
    tmp = results_dir / f".{name}.tmp"
    pq.write_table(out.table, tmp)
    os.replace(tmp, results_dir / name)
    # Only now, with every row safe in the new table, remove what it folded.
    folded = results_dir / FOLDED
    folded.mkdir(exist_ok=True)
    for p in shards:
        _quietly(os.replace, p, folded / p.name)
    for p in compacted:
        _quietly(os.unlink, p)
    for p in damaged:  # kept for inspection, out of every later read
        _quietly(os.replace, p, results_dir / f"_damaged-{p.name}")
    out.compacted, out.pending = out.table.num_rows, 0
    for p in results_dir.glob(".compacted-*.tmp"):  # left by a compactor killed mid-write
        if time.time() - p.stat().st_mtime > 3600:
            _quietly(os.unlink, p)


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except FileNotFoundError:
        pass  # another compactor got there first


def done_ids(results_dir: Path, retry_failed: bool = False) -> set[int]:
    final = read_results(results_dir, columns=()).final(retry_failed)
    return set() if final.empty else set(final.model_id.tolist())


def model_done(results_dir: Path, model_id: int, retry_failed: bool = False) -> bool:
    """Whether this one model has a final row: its own shards, then the compacted tables
    (only its rows, by a pushed-down filter)."""
    wanted = FINAL if retry_failed else STATUSES
    # Every file that may hold its rows: its own shards, compacted tables, and any file not
    # named as a dsd shard (another tool's export, which can hold any model).
    paths = list(results_dir.glob(f"{model_id}-*.parquet")) + [
        p for p in _visible(results_dir, "*.parquet") if not _SHARD_NAME.match(p.name)]
    for path in paths:
        try:
            t = pq.read_table(path, columns=["model_id", "status"], filters=[("model_id", "=", model_id)])
        except FileNotFoundError:  # compacted away meanwhile: ask the whole table
            return model_id in done_ids(results_dir, retry_failed)
        except Exception:
            continue
        if any(s in wanted for s in t.column("status").to_pylist()):
            return True
    return False
