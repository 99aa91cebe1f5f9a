"""The architecture-independence grid: one process per row, the exact beliefs and then the probed beliefs
of each architecture, every panel of a row in that process's belief frame.

Riechers, Elliott & Shai (2025) find the same belief geometry in transformers, RNNs, LSTMs and GRUs;
this figure puts the probes of one study side by side so that claim can be read at a glance. The first
column is the truth (the exact beliefs of the distinct contexts); each further column is one
architecture's probed beliefs of the same contexts, drawn in the frame fitted on the truth
(`figures.belief_frame`: the simplex, named coordinates such as the Bloch disk, or the principal
axes) and coloured by the TRUE belief of each point, so a model that has the geometry reproduces the
first column's picture and colours, and one that has not smears them. Arrays and records only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from figures._common import FigureInputError, as_array, new_figure, same_shape, set_suptitle
from figures.belief_frame import BeliefFrame, belief_frame
from figures.simplex import SIMPLEX_FRAME, corner_names, draw_simplex, frame_limits, style_belief_panel

#: At most this many points are drawn per panel (a fixed random subset, the same in every panel of a row):
#: enough to show a fractal, few enough that a 5 x 5 grid of ~90k-context sets stays quick to save.
MAX_POINTS = 20_000
#: A probe whose held-out MSE is at most this fraction of the shuffled control "finds the geometry" (the
#: panel title says so); the same threshold as the study's table.
FOUND_FRACTION = 0.10


@dataclass(frozen=True, eq=False)
class ProbedCell:
    """One architecture's probe of one process: what the panel draws and what its title says."""

    kind: str  # "transformer" | "lstm" | "gru" | "rnn" (any label)
    n_params: int  # the model's parameter count
    layer: str  # the activation the probe read (e.g. "block_4", "layers.1.hidden", "concat")
    mse_heldout: float  # held-out probe MSE of that layer (the study: the test half of its context-disjoint split)
    mse_shuffled: float  # the shuffled-target control's MSE of that layer, held out on the same contexts
    probed: np.ndarray  # [n, S] probed beliefs of the row's contexts (same order as the row's true beliefs)


@dataclass(frozen=True, eq=False)
class ProcessRow:
    """One process: its exact beliefs, the frame to draw them in, and one cell per architecture (None: no run)."""

    title: str  # e.g. "mess3 (x = 0.05, alpha = 0.85), context 10"
    true_beliefs: np.ndarray  # [n, S] exact beliefs of the distinct contexts
    cells: Sequence[ProbedCell | None]  # one per column of the grid, in the grid's order
    frame: BeliefFrame | None = None  # default: belief_frame(true_beliefs)
    state_names: Sequence[str] | None = None  # simplex corner names (3-state HMMs)


def cell_title(cell: ProbedCell) -> str:
    """'gru, 142k params, layers.1.hidden' / 'held out 0.19% of shuffled' (two lines)."""
    ratio = cell.mse_heldout / cell.mse_shuffled if cell.mse_shuffled > 0 else float("nan")
    mark = "" if not np.isfinite(ratio) else (" ✓" if ratio <= FOUND_FRACTION else " ✗")
    return (
        f"{cell.kind}, {cell.n_params / 1e3:.0f}k params\n{cell.layer}\n"
        f"held out {cell.mse_heldout:.2g} = {100 * ratio:.2g}% of shuffled{mark}"
    )


def plot_architecture_grid(
    rows: Sequence[ProcessRow],
    kinds: Sequence[str],
    *,
    suptitle: str | None = None,
    panel_size: float = 2.6,
    max_points: int = MAX_POINTS,
) -> Figure:
    """The grid: rows = processes, column 0 = exact beliefs, then one column per entry of ``kinds``.

    Each row's cells must be one per kind (None draws an empty "no run" panel). Every panel of a row
    uses the row's frame (fitted on its true beliefs), the same random subset of at most
    ``max_points`` contexts, and colours each point by its true belief. Probed points far outside the
    true set are clipped to the panel (the frame is the true set's, widened toward the bulk of the
    probed points by at most a quarter of its span), as in the run's own belief figure.
    """
    kinds = [str(k) for k in kinds]
    if not rows:
        raise FigureInputError("rows is empty: pass one ProcessRow per process")
    if not kinds:
        raise FigureInputError("kinds is empty: pass the architectures (one column each)")
    if int(max_points) < 1:
        raise FigureInputError(f"max_points must be a positive integer; got {max_points!r}")
    checked = []
    for r, row in enumerate(rows):
        true = as_array(f"rows[{r}].true_beliefs", row.true_beliefs, 2)
        if len(row.cells) != len(kinds):
            raise FigureInputError(
                f"rows[{r}] ({row.title}) has {len(row.cells)} cells but there are "
                f"{len(kinds)} kinds; pass one cell (or None) per kind"
            )
        probed = []
        for c, cell in enumerate(row.cells):
            if cell is None:
                probed.append(None)
                continue
            p = as_array(f"rows[{r}].cells[{c}].probed", cell.probed, 2)
            same_shape(f"rows[{r}].cells[{c}].probed", p, f"rows[{r}].true_beliefs", true)
            probed.append(p)
        checked.append((true, probed))

    n_cols = 1 + len(kinds)
    fig = new_figure(panel_size * n_cols + 0.3, (panel_size + 0.55) * len(rows) + (0.5 if suptitle else 0.1))
    axs = fig.subplots(len(rows), n_cols, squeeze=False)
    for r, (row, (true, probed)) in enumerate(zip(rows, checked)):
        frame = row.frame if row.frame is not None else belief_frame(true)
        n = true.shape[0]
        keep = np.random.default_rng(0).permutation(n)[: min(n, int(max_points))]  # also the drawing order
        colors = frame.colors(true)[keep]
        true_xy = frame.apply(true)[keep]
        probed_xy = [None if p is None else frame.apply(p)[keep] for p in probed]
        if frame.simplex:
            xlim, ylim = SIMPLEX_FRAME
        else:
            xlim, ylim = frame_limits(true_xy, [xy for xy in probed_xy if xy is not None], frame)
        size = float(np.clip(2e4 / keep.size, 0.3, 12.0))
        names = corner_names(3, row.state_names) if frame.simplex else None
        for c, ax in enumerate(axs[r]):
            xy = true_xy if c == 0 else probed_xy[c - 1]
            style_belief_panel(ax, xlim, ylim, frame, ylabel=False)
            ax.set_xlabel("")
            if xy is not None:
                ax.scatter(
                    xy[:, 0], xy[:, 1], s=size, c=colors, marker="o", linewidths=0, alpha=0.8, rasterized=True, zorder=2
                )
            else:
                ax.text(0.5, 0.5, "no run", transform=ax.transAxes, ha="center", va="center", color="0.4")
            if frame.outline is not None:
                ax.plot(frame.outline[:, 0], frame.outline[:, 1], color="0.35", lw=0.7, zorder=3)
            if frame.simplex:
                draw_simplex(ax, names if c == 0 else None, fontsize=6, lw=0.7)
            if c == 0:
                ax.set_title(f"exact beliefs\n{n:,} contexts", fontsize=8)
                ax.set_ylabel(row.title, fontsize=8)
            else:
                cell = row.cells[c - 1]
                ax.set_title(f"{kinds[c - 1]}: no run" if cell is None else cell_title(cell), fontsize=7.5)
        if not frame.simplex:
            axs[r][0].set_xlabel(frame.axis_labels[0], fontsize=6)
    if suptitle:
        set_suptitle(fig, suptitle, 11)
    return fig


@dataclass(frozen=True, eq=False)
class SimilarityPanel:
    """One process's CKA matrices between the architectures (and the true beliefs), trained and untrained."""

    title: str  # the process's label
    names: tuple[str, ...]  # K labels: the architectures, then "beliefs"
    trained: np.ndarray  # [K, K] CKA between the trained models (and each vs the beliefs); NaN: no comparison
    untrained: np.ndarray  # [K, K] the same for the models at initialisation
    null_q95: float  # the largest 95% quantile of the pairs' permutation nulls


def plot_similarity_heatmaps(
    panels: Sequence[SimilarityPanel], *, suptitle: str | None = None, panel_size: float = 2.9
) -> Figure:
    """Columns = processes; top row: CKA between the trained architectures and the beliefs, bottom row: the same
    at initialisation, on one colour scale [0, 1], each cell annotated with its value."""
    if not panels:
        raise FigureInputError("panels is empty: pass one SimilarityPanel per process")
    checked = []
    for p, panel in enumerate(panels):
        k = len(panel.names)
        trained = as_array(f"panels[{p}].trained", panel.trained, 2, finite=False)
        untrained = as_array(f"panels[{p}].untrained", panel.untrained, 2, finite=False)
        for name, m in (("trained", trained), ("untrained", untrained)):
            if m.shape != (k, k):
                raise FigureInputError(f"panels[{p}].{name} has shape {m.shape}; it must be ({k}, {k}), one per name")
        checked.append((trained, untrained))
    n = len(panels)
    fig = new_figure(panel_size * n + 1.2, 2 * panel_size + 0.7 + (0.8 if suptitle else 0.2))
    axs = fig.subplots(2, n, squeeze=False)
    image = None
    for c, (panel, mats) in enumerate(zip(panels, checked)):
        for r, (m, label) in enumerate(zip(mats, ("trained", "untrained"))):
            ax = axs[r][c]
            image = ax.imshow(np.ma.masked_invalid(m), vmin=0.0, vmax=1.0, cmap="viridis")
            ticks = range(len(panel.names))
            ax.set_xticks(
                ticks, panel.names if r == 1 else [""] * len(panel.names), rotation=45, ha="right", fontsize=7
            )
            ax.set_yticks(ticks, panel.names if c == 0 else [""] * len(panel.names), fontsize=7)
            for i in ticks:
                for j in ticks:
                    v = m[i, j]
                    text = "–" if not np.isfinite(v) else f"{v:.2f}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black" if v > 0.6 else "white")
            ax.set_title(f"{panel.title}, {label}\nnull 95% ≤ {panel.null_q95:.2g}", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axs, shrink=0.6, label="linear CKA")
    if suptitle:
        set_suptitle(fig, suptitle, 10)
    return fig
