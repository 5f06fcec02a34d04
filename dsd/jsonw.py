"""JSON for documents that hold numpy scalars and arrays (the analyses' outputs)."""

from __future__ import annotations

import json


def dumps(obj) -> str:
    """Indented when small; compact when large (per-model arrays of big runs), which json
    encodes in C, 10x faster."""
    text = json.dumps(obj, default=_plain)
    if len(text) < 100_000:
        text = json.dumps(obj, indent=2, default=_plain)
    return text


def _plain(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
