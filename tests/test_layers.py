"""The house's floors: every import goes down (or across within a floor), none up, and no
module imports itself back through others. Floors, bottom first:

  leaf      errors, sizes, version, tomlw, jsonw, provenance
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
LEAF = {"errors", "sizes", "version", "tomlw", "jsonw", "provenance"}
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


# --- parse, call, render ---------------------------------------------------------------


def test_commands_hold_no_numerics():
    """A command parses, makes one library call and renders: arrays and frames stay in the
    library, so no cli module imports numpy or pandas (at any depth)."""
    bad = []
    for path in sorted((ROOT / "dsd" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            bad += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("numpy", "pandas")]
    assert not bad, "cli modules importing numerics:\n" + "\n".join(bad)


def _command_names() -> set[str]:
    from typer.main import get_command

    import dsd.cli  # noqa: F401  (registers every command)
    from dsd.cli.app import app

    def walk(cmd, prefix):
        if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*prefix, name])
        else:
            yield " ".join(prefix)

    return set(walk(get_command(app), []))


def test_every_command_has_its_library_call_in_the_api():
    import dsd
    from dsd import api

    assert set(api.COMMANDS) == _command_names()
    for command, fn in api.COMMANDS.items():
        assert fn is None or (fn in api.__all__ and callable(getattr(api, fn))), command
    assert set(dsd._API) == set(api.__all__)
    assert all(getattr(dsd, n) is getattr(api, n) for n in api.__all__)


def test_api_calls_give_what_the_commands_print(tmp_path, cli):
    """plan, fit, trend, show and status through the API equal the commands' --json."""
    import json

    from test_edf import _fake_run

    from dsd import api

    a = _fake_run(tmp_path, "a", 30, n=24)
    b = _fake_run(tmp_path, "b", 26, n=24, seed=1, space="regnetx")

    def cmd(*args):
        r = cli(*args, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    assert cmd("plan", str(a), str(b), "--shift", "2", "--boot", "20") == \
        json.loads(json.dumps(api.plan(a, b, shift=2.0, boot=20)))
    assert cmd("fit", str(b), "--top", "3") == json.loads(json.dumps(api.fit(b, 3)))
    assert cmd("trend", str(a), "--param", "depth") == json.loads(json.dumps(api.trend([a], ["depth"])))
    assert cmd("edf", "show", str(a), "--bootstrap", "50") == \
        json.loads(json.dumps(api.show(a, bootstrap=50).to_json()))
    assert cmd("status", str(a)) == json.loads(json.dumps(api.status(a)))
