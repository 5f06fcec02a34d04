"""The house's floors: every import goes down (or across within a floor), none up, and no
module imports itself back through others. Floors, bottom first:

  leaf      errors, sizes, version, tomlw, provenance
  model     architectures, blocks, complexity (no run, no data)
  data      data sets and recipes
  store     the run directory and everything in it (manifest, samples, results, claims)
  space     spaces, sampling into runs, rebuilding a run's networks
  train     training
  analysis  statistics over runs
  study     studies
  interop   other tools' formats
  cluster   sweeps
  cli, api  the edges
"""

from __future__ import annotations

import ast
from collections import defaultdict

from conftest import ROOT

FLOORS = ["leaf", "model", "data", "store", "space", "train", "analysis", "study", "interop",
          "cluster", "edge"]
LEAF = {"errors", "sizes", "version", "tomlw", "provenance"}
EDGE = {"cli", "api", "__main__", "__init__"}


def _floor(module: str) -> str:
    part = module.split(".")[1] if "." in module else "__init__"
    if part in LEAF:
        return "leaf"
    if part in EDGE:
        return "edge"
    return part


def _imports() -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for path in (ROOT / "dsd").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dsd"):
                names = [node.module] if node.module != "dsd" else [f"dsd.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("dsd")]
            else:
                continue
            out[module].update(n for n in names if n != module)
    return out


def test_no_import_runs_up_the_floors():
    rank = {f: i for i, f in enumerate(FLOORS)}
    up = sorted(f"{m} -> {t}" for m, targets in _imports().items() for t in targets
                if _floor(t) in rank and _floor(m) in rank and rank[_floor(t)] > rank[_floor(m)])
    assert not up, "imports that run up the floors:\n" + "\n".join(up)


def test_no_import_cycle():
    graph = _imports()
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in (ROOT / "dsd").rglob("*.py")}
    # `from dsd.x import name` depends on module dsd.x; `from dsd import name` on dsd itself
    # unless name is a module.
    resolve = lambda t: t if t in modules else t.rsplit(".", 1)[0]  # noqa: E731
    seen, stack, cycles = set(), [], []

    def visit(m: str) -> None:
        if m in stack:
            cycles.append(" -> ".join(stack[stack.index(m):] + [m]))
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for t in graph.get(m, ()):
            visit(resolve(t))
        stack.pop()

    for m in sorted(graph):
        visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
