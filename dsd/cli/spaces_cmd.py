"""`dsd spaces list | show NAME`."""

from __future__ import annotations

import typer
from rich.table import Table

from dsd.cli.app import app, console, print_json
from dsd.space import spec as spaces

spaces_app = typer.Typer(help="List and show the declared design spaces.", no_args_is_help=True)
app.add_typer(spaces_app, name="spaces")


JsonOpt = typer.Option(False, "--json", help="Print JSON (exact integer counts) instead of a table.")


@spaces_app.command("list")
def list_spaces(as_json: bool = JsonOpt) -> None:
    """All spaces: built-in ones and ./spaces/*.toml.

    Example: dsd spaces list --json
    """
    found = [spaces.load(str(p)) for p in spaces.all_files()]
    if as_json:
        print_json([spaces.describe(s) for s in found])
        return
    t = Table(title="design spaces")
    for col in ("name", "generator", "block", "stages", "shared", "constraints",
                "configurations", "default flops"):
        t.add_column(col, no_wrap=col == "name")
    for s in found:
        shared = ", ".join(k for k, p in s.params.items()
                           if p.shared and s.generator == "anynet" and k not in spaces.SCALAR_PARAMS)
        cons = ", ".join(f"{k} {v}" for k, v in s.constraints.items())
        block = "/".join(s.blocks).upper() if s.blocks else s.block.upper()
        t.add_row(s.name, s.generator, block, "/".join(map(str, s.stage_counts)), shared or "-", cons or "-",
                  f"{spaces.configurations(s):,}", s.flops or "-")
    console.print(t)
    console.print("`dsd spaces show NAME` describes one; add your own as ./spaces/NAME.toml "
                  "or pass a path.")


@spaces_app.command("show")
def show(name: str = typer.Argument(..., help="A space name or a path to a .toml file."),
         as_json: bool = JsonOpt) -> None:
    """One space: its parameters, how each is drawn, its constraints.

    Example: dsd spaces show anynetx_e
    """
    s = spaces.load(name)
    if as_json:
        print_json(spaces.describe(s))
        return
    console.print(f"[bold]{s.name}[/]  ({s.source})")
    if s.description:
        console.print(s.description)
    from dsd.model.blocks import get_block

    kw = s.shape_kwargs()
    drawn = lambda name, fixed: "drawn (below)" if name in s.params else fixed  # noqa: E731
    se = f", SE ratio {drawn('se_ratio', f'{s.se_ratio:g}')}" if s.se_ratio or "se_ratio" in s.params else ""
    head = f", head width {s.head_width}" if s.head_width else ""
    blocks = (f"block type drawn from {', '.join(s.blocks)}" if s.blocks
              else f"{s.block} blocks ({get_block(s.block).doc})")
    n_stages = (" or ".join(map(str, s.stage_counts)) + " (drawn)") if "stages" in s.params else s.stages
    console.print(f"generator {s.generator}, {blocks}, {n_stages} stages, default flops window "
                  f"{s.flops or 'none'}")
    console.print(f"stem {drawn('stem', s.stem)} (width {drawn('stem_w', s.stem_width)}), strides "
                  f"{drawn('s', list(kw['strides']))}, kernels {drawn('k', list(kw['ks']))}, "
                  f"activation {drawn('act', s.act)}{se}{head}")
    t = Table()
    for col in ("parameter", "distribution", "values", "drawn"):
        t.add_column(col)
    recipe = spaces.drawn_recipe(s)
    for p in s.params.values():
        drawn = "once (scalar)" if s.generator == "regnet" or p.name in spaces.SCALAR_PARAMS else (
            "once, copied to every stage" if p.shared else "per stage")
        drawn = "once (recipe field)" if p.name in recipe else drawn
        if p.same_as:
            t.add_row(p.name, f"same as {p.same_as}", "-", "tied: takes the value drawn for " + p.same_as)
        elif p.name in ("block", "act", "stem"):
            names = {"block": s.blocks, "act": s.acts, "stem": s.stems}[p.name]
            t.add_row(p.name, "choice {" + ", ".join(names) + "}", str(len(names)), drawn)
        else:
            t.add_row(p.name, p.dist.describe(), str(p.dist.count()), drawn)
    console.print(t)
    for k, v in s.constraints.items():
        console.print(f"constraint: {k} {v} across stages (rejection, not sorting)")
    if recipe:
        console.print(f"recipe drawn per model: {', '.join(recipe)} (each replaces the run's "
                      "train.toml value for that model; no effect on complexity)")
    console.print(f"configurations before constraints: {spaces.configurations(s):,}")
