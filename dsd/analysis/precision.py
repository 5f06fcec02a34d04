"""Were the runs of a comparison trained in the same arithmetic?

A GPU trains in bf16 autocast, a CPU in fp32 (dsd.train.step.precision); each result row
records which in `precision`. A run resumed on another device, or two runs trained on
different devices, mix them: the comparison then measures the arithmetic too. Rows from
before the column are fp32 when their device is a CPU, and unknown otherwise.
"""

from __future__ import annotations

from collections import Counter

from dsd.store.results import FINAL, read_results
from dsd.store.run import Run


def row_precisions(run: Run) -> Counter:
    """How many finished models (ok or diverged) each precision trained; read only, no writes."""
    t = read_results(run.results_dir, compact=False, columns=("precision", "device")).table
    out: Counter = Counter()
    for prec, device, status in zip(t.column("precision").to_pylist(), t.column("device").to_pylist(),
                                    t.column("status").to_pylist()):
        if status not in FINAL:
            continue
        if prec is None and (device or "").startswith("cpu"):
            prec = "fp32"  # dsd has never used autocast on a CPU
        if prec is not None:
            out[prec] += 1
    return out


def precision_differences(runs: list[tuple[str, Run]]) -> list[str]:
    """One line if the runs were trained in different precisions, and one per run whose own
    models were (empty: the same everywhere, or not recorded)."""
    counts = {name: row_precisions(run) for name, run in runs}
    out = []
    shown = {name: (next(iter(c)) if len(c) == 1 else "mixed") for name, c in counts.items() if c}
    if len(set(shown.values())) > 1:
        out.append("precision differs: " + ", ".join(f"{v} ({n})" for n, v in shown.items()))
    for name, c in counts.items():
        if len(c) > 1:
            parts = ", ".join(f"{p} ({k} models)" for p, k in sorted(c.items()))
            out.append(f"precision differs within {name}: its models were trained in {parts}")
    return out
