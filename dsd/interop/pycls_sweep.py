"""A pycls sweep (facebookresearch/pycls) as a dsd run: every job's network and its errors.

pycls's tools/sweep_collect.py writes SWEEP/sweep.json: a list with one entry per job, the
job's log as pycls/core/logging.py's load_log_data + sort_log_data read it: `cfg` (the whole
config), `complexity` ({flops, params, acts}), per-epoch stats `train_epoch`, `test_epoch`
and, where the trainer kept an EMA of the weights, `test_ema_epoch` (dicts of lists:
`top1_err`, `min_top1_err`, `epoch` "3/100", `epoch_ind`, `epoch_max`, `loss`, ...), and
`log_file`, `err_file`, `err`.

Every job whose network dsd can hold (MODEL.TYPE anynet or regnet) becomes one model:
samples.parquet holds its architecture with dsd's recomputed complexity and pycls's beside
it (`pycls_flops`, `pycls_params`, `pycls_acts`; they must be equal, and jobs where they
are not are reported), and for regnet jobs its RegNet numbers (depth, w0, wa, wm, g, b).
Results hold one row per job: `error_min` / `error_last` (best / last test epoch's top-1
error), their EMA twins, the curve, and the job's recipe (see `pycls_recipe`). A job that
stopped before its last epoch is `failed` (so it stays out of EDFs, yet is counted); one
whose test error or training loss turned NaN is `diverged`. A run has one input shape and
data set: jobs that differ there from the first usable job are skipped and listed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from dsd.analysis.conditions import varying_keys
from dsd.data.recipe import Recipe
from dsd.errors import DsdError
from dsd.interop.export import PYCLS_DEFAULTS, _inverse, pycls_cfg_to_arch
from dsd.interop.pycls_recipe import pycls_recipe
from dsd.interop.runs import ARCH_COLS, rebuild_space, write_imported_run
from dsd.model.arch import Arch
from dsd.model.complexity import complexity
from dsd.store.recipe_file import write_for_run
from dsd.store.run import Run

COMPLEXITY = ("flops", "params", "acts")
MAX_STAGES = 5  # what a dsd space holds
TOL = 1e-3  # pycls logs errors to 4 decimals: its running minimum and the curve agree to that


@dataclass(frozen=True)
class Mismatch:
    """A job whose recorded complexity differs from dsd's count of its config's network."""

    index: int  # the job's index in sweep.json
    name: str  # its log directory
    diffs: dict[str, tuple[int, int]]  # flops/params/acts: (pycls, dsd)


@dataclass
class PyclsImport:
    run: Path
    jobs: int  # imported, one model each
    dataset: str
    checked: int  # jobs with a recorded complexity, compared with dsd's
    mismatches: list[Mismatch] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (index, why)
    statuses: dict[str, int] = field(default_factory=dict)
    recipes: int = 1
    varying: list[str] = field(default_factory=list)  # recipe keys that differ between jobs
    notes: list[tuple[int, str]] = field(default_factory=list)  # (index, what was odd)


@dataclass(frozen=True)
class _Job:
    """One usable job, read: its network, dsd's complexity, recipe and result row."""

    index: int
    data: dict
    arch: Arch
    cx: dict
    recipe: Recipe
    recipe_text: str  # the Recipe and the pycls settings it has no field for, as JSON
    row: dict
    note: str


def sweep_file(path: str | Path) -> Path:
    """SWEEP: the sweep.json file, or the sweep directory holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / "sweep.json"
    if not path.is_file():
        raise DsdError(f"no pycls sweep file at {path}; pass sweep.json or its sweep directory "
                       "(pycls's tools/sweep_collect.py writes it)")
    return path


def read_sweep(path: Path) -> list[dict]:
    """The jobs of a sweep.json, refusing anything else with one line."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DsdError(f"{path}: not valid JSON ({e}); is the file truncated? collect the "
                       "sweep again") from None
    if not isinstance(data, list) or not data or not all(isinstance(j, dict) for j in data):
        raise DsdError(f"{path}: expected pycls's sweep.json, a non-empty list of jobs (objects "
                       "with 'cfg', 'complexity', 'test_epoch', ...)")
    return data


def job_name(job: dict) -> str:
    """The job's log directory name (pycls's name for the job), or '' when unknown."""
    log = job.get("log_file")
    return Path(log).parent.name if isinstance(log, str) and log else ""


def job_arch(job: dict) -> Arch:
    """The network a job's config describes; ValueError or DsdError saying why not."""
    cfg = job.get("cfg")
    if not isinstance(cfg, dict) or not cfg:
        raise ValueError("no cfg in its log (the job never started)")
    arch = pycls_cfg_to_arch(cfg)
    if arch.num_stages > MAX_STAGES:
        raise ValueError(f"{arch.num_stages} stages; a dsd space holds 1 to {MAX_STAGES}")
    return arch


def import_pycls_sweep(path: str | Path, out: str | Path) -> PyclsImport:
    """Write the pycls sweep at `path` (sweep.json or its directory) as a new run at `out`
    (see the module doc)."""
    path, out = sweep_file(path), Path(out)
    jobs, skipped = _usable(read_sweep(path))
    first = jobs[0]
    cols: dict[str, list] = {k: [] for k in (*ARCH_COLS, "block", "stem", "act",
                                             *(f"pycls_{k}" for k in COMPLEXITY),
                                             "depth", "w0", "wa", "wm", "g", "b")}
    finished_at = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)  # pycls logs no dates
    rows = []
    for mid, job in enumerate(jobs):
        _add_columns(cols, mid, job)
        rows.append(dict(job.row, model_id=mid, finished_at=finished_at, message=f"imported from "
                         f"{path}, job {job.index} ({job_name(job.data)})" + job.note))
    space = rebuild_space(f"pycls-{path.parent.name}", f"imported from the pycls sweep {path}",
                          [j.arch for j in jobs])
    run = write_imported_run(out, space, first.arch.shape, first.recipe.dataset, cols, rows,
                             source=f"pycls sweep {path}")
    recipes = {j.recipe_text: j.recipe for j in jobs}
    if len(recipes) == 1:  # one recipe: the run's train.toml, as a run dsd trained has
        write_for_run(Run(run), first.recipe)
    return PyclsImport(
        run, len(jobs), first.recipe.dataset,
        checked=sum(isinstance(j.data.get("complexity"), dict) for j in jobs),
        mismatches=[m for j in jobs if (m := _mismatch(j)) is not None], skipped=skipped,
        statuses={s: sum(r["status"] == s for r in rows) for s in ("ok", "diverged", "failed")},
        recipes=len(recipes), varying=varying_keys([json.loads(t) for t in recipes]),
        notes=[(j.index, j.note.removeprefix("; ")) for j in jobs if j.note])


def _usable(data: list[dict]) -> tuple[list[_Job], list[tuple[int, str]]]:
    """The jobs dsd can hold in one run, and the others with the reason."""
    jobs, skipped = [], []
    for i, job in enumerate(data):
        try:
            j = _read_job(i, job)
        except (DsdError, ValueError, TypeError, KeyError, AttributeError, ZeroDivisionError) as e:
            skipped.append((i, str(e) or type(e).__name__))
            continue
        why = _conflict(jobs[0], j) if jobs else None
        if why:
            skipped.append((i, why))
        else:
            jobs.append(j)
    if not jobs:
        i, why = skipped[0]
        raise DsdError(f"none of the sweep's {len(data)} jobs is an anynet or regnet network dsd "
                       f"can hold (first: job {i}: {why})")
    return jobs, skipped


def _read_job(i: int, job: dict) -> _Job:
    arch = job_arch(job)
    recipe, extras = pycls_recipe(job["cfg"])
    text = json.dumps({**recipe.to_dict(), **extras}, sort_keys=True)
    row, note = result_row(job, text, recipe.dataset, recipe.batch_size)
    return _Job(i, job, arch, complexity(arch), recipe, text, row, note)


def _conflict(first: _Job, job: _Job) -> str | None:
    """Why a job cannot join the first one's run: a run has one shape, data set, SE ratio
    and head (and pycls's networks all have 3x3 kernels)."""
    a, b = first.arch, job.arch
    pairs = (("input shape", _shape(b), _shape(a)), ("data set", job.recipe.dataset, first.recipe.dataset),
             ("SE ratio and head width", f"{b.se_ratio:g}, {b.head_w}", f"{a.se_ratio:g}, {a.head_w}"))
    for what, theirs, ours in pairs:
        if theirs != ours:
            return (f"its {what} ({theirs}) is not job {first.index}'s ({ours}); a run holds one: "
                    "collect such jobs in a sweep of their own")
    return None


def _shape(arch: Arch) -> str:
    s = arch.shape
    return f"{s.resolution} px, {s.num_classes} classes, stem stride {s.stem_stride}"


def _add_columns(cols: dict, mid: int, job: _Job) -> None:
    a, cfg = job.arch, job.data["cfg"]
    recorded = job.data.get("complexity") if isinstance(job.data.get("complexity"), dict) else {}
    values = {"model_id": mid, "ds": a.ds, "ws": a.ws, "gs": a.gs, "bs": a.bs, "ss": a.strides,
              "stem_w": a.stem_w, "block": a.block, "stem": a.stem, "act": a.act,
              **job.cx, **{f"pycls_{k}": _int(recorded.get(k)) for k in COMPLEXITY},
              **_regnet_numbers(cfg)}
    for k, v in values.items():
        cols[k].append(v)


def _regnet_numbers(cfg: dict) -> dict:
    """A regnet job's six numbers, as dsd's RegNet runs hold them (None for anynet jobs)."""
    if (cfg.get("MODEL") or {}).get("TYPE") != "regnet":
        return dict.fromkeys(("depth", "w0", "wa", "wm", "g", "b"))
    sec = {**PYCLS_DEFAULTS, **(cfg.get("REGNET") or {})}
    return {"depth": int(sec["DEPTH"]), "w0": int(sec["W0"]), "wa": float(sec["WA"]),
            "wm": float(sec["WM"]), "g": int(sec["GROUP_W"]), "b": _inverse(sec["BOT_MUL"])}


def _mismatch(job: _Job) -> Mismatch | None:
    recorded = job.data.get("complexity")
    if not isinstance(recorded, dict):
        return None
    diffs = {k: (_int(recorded.get(k)), job.cx[k]) for k in COMPLEXITY
             if recorded.get(k) is not None and _int(recorded.get(k)) != job.cx[k]}
    return Mismatch(job.index, job_name(job.data), diffs) if diffs else None


def _int(v) -> int | None:
    return None if v is None else int(v)


# --- one job's result row ---------------------------------------------------------------

def result_row(job: dict, recipe: str, dataset: str, batch_size: int) -> tuple[dict, str]:
    """The job's result row (but its model id) and a note on anything odd ('' when none)."""
    test, train = job.get("test_epoch"), job.get("train_epoch")
    curve, loss = per_epoch(test, "top1_err"), per_epoch(train, "loss")
    finite = [e for e in curve if math.isfinite(e)]
    ema = [e for e in per_epoch(job.get("test_ema_epoch"), "top1_err") if math.isfinite(e)]
    status, note = _status(job, curve, finite, loss)
    if finite and status == "ok":
        note += _check_min(test, min(finite))
    row = {"status": status,
           "error_min": min(finite) if finite else None,
           "error_last": curve[-1] if curve and math.isfinite(curve[-1]) else None,
           "error_min_ema": min(ema) if ema else None,
           "error_last_ema": ema[-1] if ema else None,
           "curve": curve, "epochs": len(curve), "train_loss": loss[-1] if loss else None,
           "seconds": _seconds(job), "seed": _seed(job), "batch_size": batch_size,
           "dataset": dataset, "recipe": recipe, "device": "pycls sweep",
           "worker": "dsd import pycls-sweep"}
    return row, note


def _status(job: dict, curve: list[float], finite: list[float], loss: list[float]) -> tuple[str, str]:
    if not curve:
        return "failed", "; no test epoch logged (stopped during its first epoch)" + _err(job)
    if len(finite) < len(curve) or (loss and not math.isfinite(loss[-1])):
        return "diverged", "; its test error or training loss is NaN"
    done, most = progress(job.get("test_epoch"), job.get("cfg") or {})
    if done < most:
        return "failed", f"; stopped at epoch {done} of {most}" + _err(job)
    return "ok", ""


def _check_min(test: dict, best: float) -> str:
    """pycls's running minimum against the curve's: they differ after a resumed job (pycls
    restarts the minimum), and the curve, which holds every epoch, is then the one used."""
    mins = test.get("min_top1_err") or []
    theirs = _float(mins[-1]) if mins else None
    if theirs is None or not math.isfinite(theirs) or abs(theirs - best) <= TOL:
        return ""
    return (f"; pycls's min_top1_err {theirs:g} is not its curve's best epoch {best:g} (a resumed "
            "job?); error_min is the curve's")


def _err(job: dict) -> str:
    """The last line the job wrote to stderr, where it wrote one (why it stopped)."""
    lines = [x.strip() for x in str(job.get("err") or "").splitlines() if x.strip()]
    return f"; its stderr ends: {lines[-1][:200]}" if lines else ""


def per_epoch(stats, key: str) -> list[float]:
    """One value of `key` per logged epoch, in epoch order; an epoch logged twice (a job
    resumed from a checkpoint) keeps its last value."""
    if not isinstance(stats, dict) or not isinstance(stats.get(key), list):
        return []
    vals = [_float(v) for v in stats[key]]
    inds = _epoch_field(stats, "epoch_ind", 0)
    if len(inds) != len(vals):
        return vals
    by_epoch = dict(zip(inds, vals))
    return [by_epoch[i] for i in sorted(by_epoch)]


def progress(test, cfg: dict) -> tuple[int, int]:
    """(last epoch tested, epochs the job was to train)."""
    inds = _epoch_field(test, "epoch_ind", 0) if isinstance(test, dict) else []
    maxes = _epoch_field(test, "epoch_max", 1) if isinstance(test, dict) else []
    most = maxes[-1] if maxes else int((cfg.get("OPTIM") or {}).get("MAX_EPOCH", 200))
    return (max(inds) if inds else 0), most


def _epoch_field(stats: dict, key: str, part: int) -> list[int]:
    """epoch_ind / epoch_max, or their parts of "i/m" where an older pycls logged only that."""
    if isinstance(stats.get(key), list):
        return [int(x) for x in stats[key]]
    return [int(str(e).split("/")[part]) for e in stats.get("epoch") or []]


def _float(v) -> float:
    return math.nan if v is None else float(v)


def _seconds(job: dict) -> float | None:
    """The job's training and test time, where pycls logged `time_epoch`."""
    times = [t for k in ("train_epoch", "test_epoch", "test_ema_epoch")
             for t in per_epoch(job.get(k), "time_epoch")]
    return float(sum(times)) if times else None


def _seed(job: dict) -> int | None:
    seed = job["cfg"].get("RNG_SEED")
    return int(seed) if isinstance(seed, int | float) else None
