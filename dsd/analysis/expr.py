"""A small, safe expression language for splitting a run's models (`--split`).

Expressions are parsed with Python's `ast` and interpreted node by node against a
whitelist; nothing is ever passed to `eval`. Names are the model's columns: per-stage
lists ds, ws, gs, bs (and d1.., w1.., g1.., b1.. for single stages), depth (the sum of
ds), the drawn scalars (b, g, w0, wa, wm, stages, ...), the recipe fields the space draws per
model (lr, wd, ...), the block type's name (block), flops, params, acts and error. Allowed:

  numbers, true/false, quoted names (compared with == and !=, e.g. block == "res_basic"),
  + - * / // % ** (exponents up to 64 in size; every value stays within 1e300),
  < <= > >= == != (chained), and or not,
  xs[i] (negative i counts from the end), sum(xs) min(xs) max(xs) len(xs) mean(xs) abs(x),
  xs.all_equal() xs.nondecreasing() xs.nonincreasing() xs.sum() xs.min() xs.max()

Examples: "wm >= 2.5", "block == 'vanilla'", "lr > 0.05", "bs.all_equal()", "ws.nondecreasing()",
"sum(ds) > 20", "ws[-1] / ws[0] > 8 and block == 'x'".
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable

import numpy as np

from dsd.errors import DsdError

MAX_EXPONENT = 64          # |exponent| of **: larger ones only make huge or tiny numbers
MAX_MAGNITUDE = 1e300      # any intermediate result: beyond it, arithmetic is meaningless here
MAX_NODES = 200            # an expression longer than this is not a split rule
MAX_CHARS = 1000
MAX_NAME = 64              # a quoted name: a block type, never text to build on


def _pow(a, b):
    if abs(b) > MAX_EXPONENT:
        raise ValueError(f"exponent {b:g} is out of range (|exponent| <= {MAX_EXPONENT})")
    if a == 0 and b < 0:
        raise ZeroDivisionError("0 cannot be raised to a negative power")
    return float(a) ** b


_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
        ast.Pow: _pow}
_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
        ast.Eq: operator.eq, ast.NotEq: operator.ne}
_FUNCS: dict[str, Callable] = {"sum": lambda x: float(np.sum(x)), "min": lambda x: float(np.min(x)),
                               "max": lambda x: float(np.max(x)), "len": lambda x: len(x),
                               "mean": lambda x: float(np.mean(x)), "abs": abs}
_METHODS: dict[str, Callable] = {
    "all_equal": lambda x: bool(np.all(np.asarray(x) == np.asarray(x)[0])),
    "nondecreasing": lambda x: bool(np.all(np.diff(x) >= 0)),
    "nonincreasing": lambda x: bool(np.all(np.diff(x) <= 0)),
    "sum": lambda x: float(np.sum(x)), "min": lambda x: float(np.min(x)),
    "max": lambda x: float(np.max(x)),
}


class Expr:
    """A parsed, checked expression; call it with a model's variables."""

    def __init__(self, text: str, names: set[str], flag: str = "--split"):
        self.text, self.flag = text, flag
        if len(text) > MAX_CHARS:
            raise self._error(f"too long ({len(text)} characters, at most {MAX_CHARS})")
        try:
            self.tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as e:
            raise self._error(f"invalid syntax ({e.msg}) near column {e.offset or 1}") from None
        except (RecursionError, MemoryError):
            raise self._error("nested too deeply") from None
        if sum(1 for _ in ast.walk(self.tree)) > MAX_NODES:
            raise self._error(f"too long (more than {MAX_NODES} parts); split it into simpler rules")
        self._check(self.tree, names)

    def _error(self, what: str, node: ast.AST | None = None) -> DsdError:
        col = getattr(node, "col_offset", None)
        where = f" at column {col + 1}" if col is not None else ""
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        return DsdError(f"bad {self.flag} {shown!r}: {what}{where}; see `dsd edf compare --help`")

    def _check(self, node: ast.AST, names: set[str]) -> None:
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise self._error(f"unknown name '{node.id}' (known: {', '.join(sorted(names))})", node)
        elif isinstance(node, ast.Call):
            f = node.func
            if node.keywords:
                raise self._error("keyword arguments are not allowed", node)
            if isinstance(f, ast.Name) and f.id in _FUNCS:
                if len(node.args) != 1:
                    raise self._error(f"{f.id}() takes one argument", node)
            elif isinstance(f, ast.Attribute) and f.attr in _METHODS:
                if node.args:
                    raise self._error(f".{f.attr}() takes no argument", node)
                self._check(f.value, names)
            else:
                raise self._error(f"unknown function '{ast.unparse(f)}'", node)
            for a in node.args:
                self._check(a, names)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                if len(node.value) > MAX_NAME:
                    raise self._error(f"a quoted name is at most {MAX_NAME} characters", node)
                return
            if not isinstance(node.value, (int, float, bool)):
                raise self._error(f"only numbers, true/false and quoted names are allowed, not "
                                  f"{node.value!r}", node)
            if isinstance(node.value, (int, float)) and not abs(node.value) <= MAX_MAGNITUDE:
                raise self._error(f"the number {str(node.value)[:20]} is out of range "
                                  f"(|x| <= {MAX_MAGNITUDE:g})", node)
        elif isinstance(node, (ast.BoolOp, ast.UnaryOp, ast.Compare, ast.BinOp, ast.Subscript)):
            ok = (isinstance(node, ast.BoolOp)
                  or (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)))
                  or (isinstance(node, ast.Compare) and all(type(o) in _CMP for o in node.ops))
                  or (isinstance(node, ast.BinOp) and type(node.op) in _BIN)
                  or isinstance(node, ast.Subscript))
            if not ok:
                raise self._error(f"operator in '{ast.unparse(node)}' is not allowed", node)
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, (ast.operator, ast.cmpop, ast.boolop, ast.unaryop,
                                          ast.expr_context)):
                    self._check(child, names)
        else:
            raise self._error(f"'{ast.unparse(node)}' is not allowed here", node)

    def __call__(self, env: dict) -> object:
        try:
            return self._eval(self.tree, env)
        except (IndexError, TypeError, ZeroDivisionError, ValueError, OverflowError) as e:
            raise self._error(f"cannot evaluate it ({e})") from None

    def _eval(self, n: ast.AST, env: dict):
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.Name):
            return env[n.id]
        if isinstance(n, ast.BoolOp):
            vals = (bool(self._eval(v, env)) for v in n.values)
            return all(vals) if isinstance(n.op, ast.And) else any(vals)
        if isinstance(n, ast.UnaryOp):
            v = self._eval(n.operand, env)
            return (not v) if isinstance(n.op, ast.Not) else (-v if isinstance(n.op, ast.USub) else +v)
        if isinstance(n, ast.BinOp):
            left, right = self._eval(n.left, env), self._eval(n.right, env)
            if isinstance(left, str) or isinstance(right, str):  # "x" * 10**9 would build it
                raise TypeError("names can only be compared (== and !=), not computed with")
            out = _BIN[type(n.op)](left, right)
            if not abs(out) <= MAX_MAGNITUDE:  # also catches inf and nan
                raise OverflowError(f"a result is out of range (|x| <= {MAX_MAGNITUDE:g})")
            return out
        if isinstance(n, ast.Compare):
            left = self._eval(n.left, env)
            for op, right_node in zip(n.ops, n.comparators):
                right = self._eval(right_node, env)
                if not _CMP[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(n, ast.Subscript):
            seq, idx = self._eval(n.value, env), self._eval(n.slice, env)
            if isinstance(idx, bool) or not isinstance(idx, int):
                raise TypeError("an index must be an integer")
            return seq[idx]
        if isinstance(n, ast.Call):
            if isinstance(n.func, ast.Name):
                return _FUNCS[n.func.id](self._eval(n.args[0], env))
            return _METHODS[n.func.attr](self._eval(n.func.value, env))
        raise TypeError(f"cannot evaluate {ast.unparse(n)}")


def model_env(row: dict) -> dict:
    """The variables of one model: its columns, plus single stages as d1, w1, ..."""
    env = {}
    for k, v in row.items():
        if k in ("ds", "ws", "gs", "bs"):
            arr = [float(x) for x in v]
            env[k] = arr
            for i, x in enumerate(arr):
                env[f"{k[0]}{i + 1}"] = x
        elif isinstance(v, (bool, np.bool_)):
            env[k] = bool(v)
        elif isinstance(v, str):  # the block type's name
            env[k] = v
        elif isinstance(v, (int, float, np.integer, np.floating)) and v == v:  # skips NaN
            env[k] = float(v) if isinstance(v, (float, np.floating)) else int(v)
    if "ds" in env and "depth" not in env:  # AnyNet runs draw per-stage depths only
        env["depth"] = int(sum(env["ds"]))
    return env


def evaluate_split(text: str, rows: list[dict]) -> np.ndarray:
    """Which models satisfy the expression (a boolean per row)."""
    envs = [model_env(r) for r in rows]
    names = set.intersection(*(set(e) for e in envs)) if envs else set()
    expr = Expr(text, names)
    return np.array([bool(expr(e)) for e in envs], dtype=bool)


def evaluate_values(text: str, rows: list[dict], flag: str = "--covariate") -> np.ndarray:
    """The expression's number for each model (a covariate: depth, "(d3 + d4) / depth")."""
    envs = [model_env(r) for r in rows]
    names = set.intersection(*(set(e) for e in envs)) if envs else set()
    expr = Expr(text, names, flag)
    out = np.empty(len(envs))
    for i, e in enumerate(envs):
        v = expr(e)
        if isinstance(v, str):
            raise expr._error("gives a name, not a number")
        out[i] = float(v)
    return out
