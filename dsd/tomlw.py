"""A small TOML writer for the manifests (the standard library only reads TOML)."""

from __future__ import annotations

import datetime as dt
import json
import math


def dumps(table: dict) -> str:
    lines: list[str] = []
    _table(table, [], lines)
    return "\n".join(lines).strip() + "\n"


def _table(t: dict, path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in t.items() if not isinstance(v, dict) and v is not None}
    tables = {k: v for k, v in t.items() if isinstance(v, dict)}
    if path and (scalars or not tables):
        lines.append("")
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in tables.items():
        _table(v, path + [k], lines)


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")
