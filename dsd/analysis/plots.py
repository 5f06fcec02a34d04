"""Plots: PNG and SVG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dsd.analysis.comparison import Comparison

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def figure(width: float = 6.4, height: float = 4.4):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def inch_margins(fig, left: float, right: float, top: float, bottom: float, wspace: float = 0.0,
                 hspace: float = 0.0) -> None:
    """Place a grid of panels by fixed margins and gaps in inches. For a grid whose text
    sizes are fixed, this replaces tight_layout, which measures every tick label first
    (for a 20-panel grid, a third of its drawing time)."""
    w, h = fig.get_size_inches()
    nrows, ncols = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()
    cell_w = (w - left - right - wspace * (ncols - 1)) / ncols
    cell_h = (h - top - bottom - hspace * (nrows - 1)) / nrows
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        wspace=wspace / cell_w, hspace=hspace / cell_h)


def plain_log_axis(ax, axis: str = "y", base: int = 10) -> None:
    """Log scale with plain tick labels (32, 64, 128; not 10^1.5): widths and flops read as
    numbers. base=2 puts the ticks at powers of two (channel widths). With base 10, minor
    ticks are labelled only when the span holds no full decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda v, _: _compact(v))
    which = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log", base=base)
    lo, hi = (ax.get_ylim() if axis == "y" else ax.get_xlim())
    which.set_major_formatter(plain)
    if base != 10:
        which.set_major_locator(LogLocator(base=base))
        which.set_minor_formatter(NullFormatter())
        return
    if hi / max(lo, 1e-12) < 1e3:  # up to three decades: ticks at 1, 2, 5 of each
        which.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    which.set_minor_formatter(NullFormatter())


def plain_linear_axis(ax, axis: str = "x") -> None:
    """Linear scale, tick labels as 1.2M rather than 1.2 with a 1e6 offset in the corner."""
    from matplotlib.ticker import FuncFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(FuncFormatter(lambda v, _: _compact(v)))


def _compact(v: float) -> str:
    """1000 -> 1K, 2500000 -> 2.5M: tick labels that stay short."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


def save(fig, path: str | Path, rect: tuple[float, float, float, float] | None = None) -> list[Path]:
    """Write PATH (PNG or SVG by its extension) and its sibling in the other format."""
    import matplotlib.pyplot as plt

    p = Path(path)
    if p.suffix.lower() not in (".png", ".svg"):
        p = p.with_suffix(".png")
    p.parent.mkdir(parents=True, exist_ok=True)
    paths = [p, p.with_suffix(".svg" if p.suffix.lower() == ".png" else ".png")]
    fig.tight_layout(rect=rect)  # rect: room left for a figure legend or title
    # Same data, same bytes: no date in the SVG and fixed element ids, so rebuilding a
    # published study's figures leaves a checkout clean.
    with plt.rc_context({"svg.hashsalt": "dsd"}):
        for q in paths:
            fig.savefig(q, metadata={"Date": None} if q.suffix.lower() == ".svg" else None)
    plt.close(fig)
    return paths


def edf_plot(cmp: Comparison, path: str | Path) -> list[Path]:
    return save(edf_figure(cmp), path)


def edf_figure(cmp: Comparison):
    """EDFs with their bootstrap bands; legend `name: n | min | mean` as in pycls."""
    fig, ax = figure()
    grid = cmp.grid
    for i, r in enumerate(cmp.runs):
        c = COLORS[i % len(COLORS)]
        first = i == 0
        ax.fill_between(grid, *r.sim, color=c, alpha=0.15, linewidth=0, step="post",
                        label=f"{cmp.ci:.0%} simultaneous band (whole curve)" if first else None)
        for k, band in enumerate(r.band):
            ax.step(grid, band, where="post", color=c, linewidth=0.7, linestyle=":",
                    label=f"{cmp.ci:.0%} pointwise bootstrap band" if first and k == 0 else None)
        e, w = r.sample.errors, r.sample.weights
        order = np.argsort(e)
        xs = np.r_[grid[0], e[order], grid[-1]]
        ys = np.r_[0.0, np.cumsum(w[order]) / w.sum(), 1.0]
        label = f"{r.name}: n={r.n} | min={r.min_error:.2f} | mean={r.mean_error:.2f}"
        ax.step(xs, ys, where="post", color=c, linewidth=1.8, label=label)
    norm = cmp.normalize
    title = f"error EDF ({cmp.metric}" + (f", normalised by {norm}, {cmp.bins} bins)"
                                             if norm != "none" else ")")
    if cmp.differences:  # the comparison mixes recipes or data: say so on the figure
        title += "\nWARNING: runs trained under different conditions: " + ", ".join(
            d.split(" differs")[0] for d in cmp.differences)
    ax.set(xlabel="error (%)",
           ylabel="cumulative prob.", title=title, ylim=(0, 1), xlim=(grid[0], grid[-1]))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def edf_lines_figure(cmp: Comparison, title: str):
    """Many EDFs in one figure, lines only (the papers' Fig. 5/7 style): with seven
    spaces, overlapping bands would hide the curves; each run's band is in its own plot."""
    fig, ax = figure(7.2, 4.8)
    grid = cmp.grid
    for i, r in enumerate(cmp.runs):
        e, w = r.sample.errors, r.sample.weights
        order = np.argsort(e)
        xs = np.r_[grid[0], e[order], grid[-1]]
        ys = np.r_[0.0, np.cumsum(w[order]) / w.sum(), 1.0]
        label = f"{r.name}: n={r.n} | min={r.min_error:.2f} | mean={r.mean_error:.2f}"
        ax.step(xs, ys, where="post", color=COLORS[i % len(COLORS)], linewidth=1.6, label=label)
    norm = cmp.normalize
    how = f"normalised by {norm}, {cmp.bins} bins" if norm != "none" else "plain"
    ax.set(xlabel=f"error (%) [{cmp.metric}]", ylabel="cumulative prob. (share of models)",
           title=f"{title} ({how})", ylim=(0, 1), xlim=(grid[0], grid[-1]))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    return fig


def replicate_edfs_plot(tables: dict[str, np.ndarray], path: str | Path) -> list[Path]:
    """One panel per space: the EDF of its replicated models under each seed (thin) and
    their average over seeds (thick; the NDS paper's appendix, Fig. 14 style)."""
    from dsd.analysis.noise import averaged_edf

    names = list(tables)
    cols = min(4, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = figure(3.0 * cols, 2.6 * rows + 0.4)
    fig.clf()
    allx = np.concatenate([np.ravel(t) for t in tables.values()])
    grid = np.linspace(np.floor(allx.min()), np.ceil(allx.max()), 301)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        per_seed, avg = averaged_edf(tables[name], grid)
        for j, f in enumerate(per_seed):
            ax.step(grid, f, where="post", color=COLORS[j % len(COLORS)], linewidth=0.8, alpha=0.7,
                    label=f"seed {j}" if j else "published seed")
        ax.step(grid, avg, where="post", color="black", linewidth=1.8, label="average over seeds")
        ax.set(title=f"{name} ({len(tables[name])} models)", xlabel="error (%)", ylim=(0, 1),
               ylabel="cumulative prob." if i % cols == 0 else None)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=6, loc="lower right")
    fig.suptitle("the same models trained with each seed: EDFs per seed and their average")
    return save(fig, path, rect=(0, 0, 1, 0.95))
