"""A sweep's metrics against its swept value: one small panel per metric, the spread over repeats drawn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from figures._common import FigureInputError, new_figure, set_suptitle


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def plot_sweep(x: Sequence, series: Mapping[str, Sequence], *, x_label: str, title: str | None = None,
               ncols: int = 3) -> Figure:
    """Each metric in ``series`` (name -> one value per point, None where missing) against ``x`` (one per point).

    Points with the same x (other swept keys, e.g. seeds) are drawn as dots with their mean as a line; a
    numeric x is an axis (log scale when it spans more than two decades of positive values), any other x is
    categorical in the order first seen.
    """
    n = len(x)
    if n == 0 or not series:
        raise FigureInputError("plot_sweep needs at least one point and one metric")
    for name, values in series.items():
        if len(values) != n:
            raise FigureInputError(f"series {name!r} has {len(values)} values for {n} points")
    numeric = all(_is_number(v) for v in x)
    levels = sorted(set(x)) if numeric else list(dict.fromkeys(map(str, x)))
    pos = np.array([float(v) for v in x]) if numeric else np.array([levels.index(str(v)) for v in x], float)
    k = len(series)
    cols = min(ncols, k)
    rows = -(-k // cols)
    fig = new_figure(3.3 * cols + 0.4, 2.6 * rows + (0.6 if title else 0.3))
    axs = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (name, values) in zip(axs, series.items()):
        y = np.array([np.nan if not _is_number(v) else float(v) for v in values])
        ok = np.isfinite(y)
        ax.scatter(pos[ok], y[ok], s=14, color="tab:blue", alpha=0.6, zorder=3)
        centers = [float(v) for v in levels] if numeric else list(range(len(levels)))
        means = [np.nanmean(y[(pos == c) & ok]) if np.any((pos == c) & ok) else np.nan for c in centers]
        ax.plot(centers, means, color="black", lw=1.3, zorder=2)
        if numeric:
            positive = [c for c in centers if c > 0]
            if positive and min(centers) > 0 and max(positive) / min(positive) > 100:
                ax.set_xscale("log")
        else:
            ax.set_xticks(range(len(levels)), levels, rotation=30, ha="right", fontsize=7)
        if np.any(ok) and np.all(y[ok] > 0) and np.nanmax(y) / np.nanmin(y[ok]) > 50:
            ax.set_yscale("log")
        else:  # whole values on the ticks (1.0006), not an offset in the corner ("+1" over 0.0006)
            ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel(x_label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25)
    for ax in axs[k:]:
        ax.set_visible(False)
    if title:
        set_suptitle(fig, title, 11)
    return fig
