"""Sizes with K/M/G suffixes (powers of 1000) and closed windows LO:HI."""

from __future__ import annotations

import re

from dsd.errors import DsdError

_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_NUM = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGT]?)\s*$", re.I)


def parse_size(text: str) -> int:
    m = _NUM.match(text)
    if not m:
        raise DsdError(f"cannot read size {text!r}: use a number with an optional K, M or G "
                       "suffix, e.g. 400M")
    return int(round(float(m.group(1)) * _SUFFIX[m.group(2).upper()]))


def parse_window(text: str | None) -> tuple[int | None, int | None] | None:
    """'360M:400M' -> (360e6, 400e6); an empty side is open; None or '' -> no window."""
    if text is None or text.strip() == "":
        return None
    if text.count(":") != 1:
        raise DsdError(f"cannot read window {text!r}: use LO:HI, e.g. 360M:400M (either side "
                       "may be empty, e.g. :400M)")
    lo, hi = (s.strip() for s in text.split(":"))
    lo_v = parse_size(lo) if lo else None
    hi_v = parse_size(hi) if hi else None
    if lo_v is not None and hi_v is not None and lo_v > hi_v:
        raise DsdError(f"empty window {text!r}: the low end is above the high end; swap them")
    return lo_v, hi_v


def format_size(v: float) -> str:
    for suf, f in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(v) >= f:
            return f"{v / f:.3g}{suf}"
    return f"{v:.3g}"


def format_window(w: tuple[int | None, int | None] | None) -> str:
    if w is None:
        return "any"
    lo, hi = w
    return f"{'' if lo is None else format_size(lo)}:{'' if hi is None else format_size(hi)}"
