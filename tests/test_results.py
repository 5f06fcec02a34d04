"""Result shards and their compaction: every result read back exactly once, whatever runs
at the same time and whatever is killed when."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT

from dsd.store.results import FOLDED, read_results, write_result

WRITER = """
import sys, time
from pathlib import Path
from dsd.store.results import write_result
out, first, n = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for i in range(first, first + n):
    write_result(out, {"model_id": i, "status": "ok", "error_min": float(i), "error_last": float(i),
                       "curve": [float(i)]})
    time.sleep(0.002)
"""

# A compacting reader that SIGKILLs itself at its k-th os.replace: k = 1 is the rename of
# the new compacted table into place, k >= 2 the moves of folded shards; k = 0 never.
COMPACTOR = """
import os, signal, sys, time
from pathlib import Path
import dsd.store.results as R
out, kill_at, rounds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
calls = [0]
real = os.replace
def replace(a, b):
    if ".compacted-" in str(a) or "_folded" in str(b):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(a, b)
R.os.replace = replace
for _ in range(rounds):
    R.read_results(out, compact_at=1)
    time.sleep(0.01)
"""


def _spawn(code: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("seed", range(4))
def test_compaction_races_writers_and_a_killed_compactor(tmp_path, seed):
    rng = np.random.default_rng(seed)
    out = tmp_path / "results"
    out.mkdir()
    writers = [_spawn(WRITER, out, w * 1000, 40) for w in range(4)]
    killer = _spawn(COMPACTOR, out, int(rng.integers(1, 6)), 200)  # dies mid-compaction
    steady = _spawn(COMPACTOR, out, 0, 60)
    for p in writers:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    assert killer.wait(timeout=300) in (-signal.SIGKILL, 0), killer.stderr.read()
    assert steady.wait(timeout=300) == 0, steady.stderr.read()
    expected = sorted(w * 1000 + i for w in range(4) for i in range(40))
    for _ in range(2):  # the first read may compact what the killed one left; the second not
        res = read_results(out, compact_at=1)
        ids = sorted(res.table.column("model_id").to_pylist())
        assert ids == expected, f"seed {seed}: lost {set(expected) - set(ids)}, extra {len(ids) - 160}"
        assert not res.corrupt
    assert len([p for p in out.glob("compacted-*.parquet")]) == 1 and res.pending == 0
    assert res.compacted == 160


def test_damaged_compacted_table_is_named_and_its_results_recovered(tmp_path):
    out = tmp_path / "results"
    for i in range(10):
        write_result(out, {"model_id": i, "status": "ok", "error_min": 1.0 * i, "curve": [1.0]})
    read_results(out, compact_at=1)
    (table,) = out.glob("compacted-*.parquet")
    table.write_bytes(table.read_bytes()[:200])  # a torn or damaged file
    res = read_results(out, compact=False)
    assert [p.name for p, _ in res.corrupt] == [table.name]
    assert sorted(res.table.column("model_id").to_pylist()) == list(range(10))
    res = read_results(out)  # reports it again, compacts anew, moves it out of the way
    assert [p.name for p, _ in res.corrupt] == [table.name] and res.compacted == 10
    assert (out / f"_damaged-{table.name}").exists()
    res = read_results(out)
    assert not res.corrupt and sorted(res.table.column("model_id").to_pylist()) == list(range(10))


def test_previous_version_shards_read_unchanged(tmp_path):
    """Run directories written before compaction: no `shard` column, other types."""
    out = tmp_path / "results"
    out.mkdir()
    for i in range(3):
        t = pa.table({"model_id": pa.array([i], pa.int32()), "status": ["ok"],
                      "error_min": [10.0 + i], "curve": [[12.0, 10.0 + i]],
                      "finished_at": pa.array([dt.datetime(2026, 1, 1, 0, i)], pa.timestamp("ns"))})
        pq.write_table(t, out / f"{i}-oldhost-1-abcd.parquet")
    res = read_results(out, compact=False)
    rows = sorted(res.rows, key=lambda r: r["model_id"])
    assert [r["error_min"] for r in rows] == [10.0, 11.0, 12.0] and res.pending == 3
    assert rows[0]["shard"] == "0-oldhost-1-abcd" and rows[0]["finished_at"].tzinfo is not None
    res = read_results(out, compact_at=1)
    assert res.compacted == 3 and sorted((out / FOLDED).iterdir())  # the originals are kept
    assert [r["error_min"] for r in sorted(read_results(out).rows, key=lambda r: r["model_id"])] \
        == [10.0, 11.0, 12.0]


def test_plain_pandas_reads_the_directory(tmp_path):
    """A pyarrow/pandas user reads results/ as one table: same schema, no folded copies."""
    import pandas as pd

    out = tmp_path / "results"
    for i in range(6):
        write_result(out, {"model_id": i, "status": "ok", "error_min": 1.0, "curve": [1.0]})
    read_results(out, compact_at=1)
    write_result(out, {"model_id": 6, "status": "ok", "error_min": 1.0, "curve": [1.0]})
    df = pd.read_parquet(out).drop_duplicates("shard")
    assert sorted(df.model_id) == list(range(7))


def test_model_done_sees_compacted_results(tmp_path):
    from dsd.store.results import model_done

    out = tmp_path / "results"
    write_result(out, {"model_id": 3, "status": "failed", "curve": []})
    write_result(out, {"model_id": 4, "status": "ok", "error_min": 1.0, "curve": [1.0]})
    read_results(out, compact_at=1)
    assert not list(out.glob("4-*.parquet"))  # folded away
    assert model_done(out, 4) and model_done(out, 3) and not model_done(out, 3, retry_failed=True)
    assert not model_done(out, 5)


def test_projected_reads_never_compact_away_columns(tmp_path):
    """A read of a few columns that finds compaction due reads and rewrites every column;
    later projected reads return only what was asked (plus the keys), the same rows."""
    out = tmp_path / "results"
    for i in range(70):
        write_result(out, {"model_id": i, "status": "ok", "error_min": float(i),
                           "error_last": i + 1.0, "curve": [i + 2.0, float(i)], "device": "cpu"})
    first = read_results(out, columns=("error_min",))
    assert first.pending == 0 and first.compacted == 70
    (table,) = [pq.read_table(p).sort_by("model_id") for p in out.glob("compacted-*.parquet")]
    assert table.column("curve").to_pylist() == [[i + 2.0, float(i)] for i in range(70)]
    assert table.column("device").to_pylist() == ["cpu"] * 70
    again = read_results(out, columns=("error_min",))
    assert set(again.table.column_names) == {"model_id", "status", "finished_at", "shard",
                                             "error_min"}
    assert sorted(again.table.column("error_min").to_pylist()) == [float(i) for i in range(70)]
    whole = read_results(out).table.sort_by("model_id")
    assert whole.column("curve").to_pylist() == table.column("curve").to_pylist()


def _foreign_rows(ids, **cols) -> pa.Table:
    """What another tool or a user's script writes: many rows, no `shard` column."""
    n = len(ids)
    return pa.table({"model_id": list(ids), "status": ["ok"] * n,
                     "error_min": [10.0 + i for i in ids], "error_last": [11.0 + i for i in ids],
                     "epochs": [2] * n, "seconds": [1.0] * n, "dataset": ["digits"] * n,
                     "finished_at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * n, **cols})


def test_a_foreign_file_of_many_rows_counts_every_row(tmp_path, cli):
    """A results file without `shard` (another tool's export) once collapsed to one row."""
    import json

    from dsd.store.results import model_done

    run = tmp_path / "run"
    r = cli("sample", "--space", "anynetx_a", "--n", "50", "--dataset", "digits", "--out", str(run))
    assert r.returncode == 0, r.stderr
    out = run / "results"
    out.mkdir()
    pq.write_table(_foreign_rows(range(50)), out / "imported.parquet")
    status = json.loads(cli("status", str(run), "--json").stdout)
    assert status["counts"]["ok"] == 50 and status["counts"]["remaining"] == 0
    assert all(model_done(out, i) for i in (0, 17, 49))
    for _ in range(2):  # compaction, then a read of the compacted table beside the original
        res = read_results(out, compact_at=1)
        assert sorted(res.table.column("model_id").to_pylist()) == list(range(50))
        assert sorted(res.final().error_min) == [10.0 + i for i in range(50)]
    write_result(out, {"model_id": 3, "status": "ok", "error_min": 1.0, "curve": [1.0]})
    assert read_results(out).table.num_rows == 51  # a later attempt adds, replaces nothing


def test_a_file_whose_rows_share_a_shard_name_is_refused_by_name(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    pq.write_table(_foreign_rows(range(5), shard=["x"] * 5), out / "export.parquet")
    write_result(out, {"model_id": 9, "status": "ok", "error_min": 1.0, "curve": [1.0]})
    res = read_results(out, compact=False)
    assert res.table.column("model_id").to_pylist() == [9]
    ((path, why),) = res.corrupt
    assert path.name == "export.parquet" and "4 of its 5 rows" in why and "shard" in why


def test_a_damaged_shard_is_reported_until_its_model_is_trained_again(tmp_path):
    out = tmp_path / "results"
    bad = write_result(out, {"model_id": 3, "status": "ok", "error_min": 1.0, "curve": [1.0]})
    write_result(out, {"model_id": 4, "status": "ok", "error_min": 2.0, "curve": [1.0]})
    bad.write_bytes(bad.read_bytes()[:100])
    res = read_results(out)
    assert [p.name for p, _ in res.corrupt] == [bad.name]
    assert res.table.column("model_id").to_pylist() == [4]
    write_result(out, {"model_id": 3, "status": "ok", "error_min": 1.5, "curve": [1.5]})
    res = read_results(out)
    assert not res.corrupt and sorted(res.table.column("model_id").to_pylist()) == [3, 4]
    assert (out / f"_damaged-{bad.name}").exists() and not bad.exists()  # kept, out of every read


def test_runs_whose_models_barely_trained_are_flagged():
    import pandas as pd

    from dsd.analysis.runs import near_chance

    ok = lambda e: pd.DataFrame({"error": e, "status": ["ok"] * len(e)})  # noqa: E731
    assert near_chance(ok([20.0, 25.0, 30.0]), 90.0) == []
    w = near_chance(ok([54.0, 70.0, 88.0]), 90.0)
    assert len(w) == 2 and "barely trained" in w[0] and "1 of 3" in w[1]
