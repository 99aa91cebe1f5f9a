"""The random-machines scatter grid: each outcome (rows: the probe's held-out error, the relative loss) against each
measure of the process (columns), one labelled point per process, unifilar and non-unifilar told apart, each panel
titled with its Spearman rho and permutation p. Infinite values (C_mu of a process with an infinite mixed-state
set) are drawn at the right edge, past a break, at an axis tick labelled ∞. Arrays and records only."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from figures._common import new_figure, set_suptitle


@dataclass(frozen=True)
class ScatterPanel:
    """One panel: ``x`` [M] (inf allowed, NaN not drawn) against ``y`` [M], with its title's statistics."""

    x_label: str
    y_label: str
    x: np.ndarray  # [M]
    y: np.ndarray  # [M]
    title: str
    log_y: bool = True
    y_floor: np.ndarray | None = None  # [M] optional reference drawn faintly (e.g. the untrained model)


def plot_scatter_grid(
    panels: Sequence[Sequence[ScatterPanel]],
    labels: Sequence[str],
    unifilar: Sequence[bool],
    *,
    suptitle: str | None = None,
    panel_size: float = 3.0,
) -> Figure:
    """Rows of `ScatterPanel`s sharing ``labels`` [M] (written beside each point) and ``unifilar`` [M] (marker)."""
    n_rows, n_cols = len(panels), max(len(r) for r in panels)
    fig = new_figure(panel_size * n_cols + 0.4, (panel_size + 0.4) * n_rows + (0.7 if suptitle else 0.1))
    axs = fig.subplots(n_rows, n_cols, squeeze=False)
    uni = np.asarray(unifilar, dtype=bool)
    for r, row in enumerate(panels):
        for c in range(n_cols):
            ax = axs[r][c]
            if c >= len(row):
                ax.set_visible(False)
                continue
            _panel(ax, row[c], labels, uni, first_col=c == 0)
    axs[0][0].legend(loc="best", fontsize=6, frameon=False)
    if suptitle:
        set_suptitle(fig, suptitle, 10)
    return fig


def _panel(ax, p: ScatterPanel, labels: Sequence[str], uni: np.ndarray, *, first_col: bool) -> None:
    x = np.asarray(p.x, dtype=np.float64)
    y = np.asarray(p.y, dtype=np.float64)
    finite = np.isfinite(x)
    inf = np.isposinf(x)
    shown = (finite | inf) & np.isfinite(y)
    xs = x.copy()
    if inf.any():
        lo, hi = (float(x[finite].min()), float(x[finite].max())) if finite.any() else (0.0, 1.0)
        span = max(hi - lo, 1e-9)
        x_inf = hi + 0.25 * span
        xs[inf] = x_inf
        ax.axvline(hi + 0.125 * span, color="0.8", lw=0.8, ls=":")
        ticks = [t for t in MaxNLocator(nbins=4).tick_values(lo, hi) if lo - 0.05 * span <= t <= hi]
        ax.set_xticks([*ticks, x_inf])
        ax.set_xticklabels([f"{t:g}" for t in ticks] + ["∞"])
    for mask, marker, colour, name in ((uni, "o", "C0", "unifilar"), (~uni, "s", "C3", "non-unifilar")):
        m = mask & shown
        if m.any():
            ax.scatter(xs[m], y[m], marker=marker, s=22, color=colour, label=name, zorder=3)
        if p.y_floor is not None:
            f = np.asarray(p.y_floor, dtype=np.float64)
            mf = mask & shown & np.isfinite(f)
            if mf.any():
                ax.scatter(xs[mf], f[mf], marker=marker, s=12, facecolors="none", edgecolors=colour, alpha=0.35)
    for i in np.flatnonzero(shown):
        ax.annotate(labels[int(i)], (xs[i], y[i]), fontsize=5, xytext=(2, 2), textcoords="offset points", color="0.25")
    if p.log_y and (y[shown] > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel(p.x_label, fontsize=8)
    if first_col:
        ax.set_ylabel(p.y_label, fontsize=8)
    ax.set_title(p.title, fontsize=7)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.2)


def stats_title(rho: float | None, p: float | None, n: int, lo: float | None, hi: float | None) -> str:
    """``ρ = 0.52 [0.1, 0.8], p = 0.04 (n = 8)`` or ``ρ undefined``."""
    if rho is None or p is None or math.isnan(rho):
        return f"ρ undefined (n = {n})"
    ci = "" if lo is None or hi is None else f" [{lo:.2f}, {hi:.2f}]"
    return f"ρ = {rho:.2f}{ci}, p = {p:.2g} (n = {n})"
