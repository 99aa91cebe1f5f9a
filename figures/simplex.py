"""Belief states in the probability simplex: the paper's fractal figure, true vs probed.

Three hidden states: the 2-simplex drawn as an equilateral triangle with vertices
state 0 -> (0, 0), state 1 -> (1, 0), state 2 -> (1/2, √3/2), a belief b going to

    x = b1 + b2 / 2,    y = (√3 / 2) b2

and coloured RGB = (b0, b1, b2). Predicted points are coloured by the TRUE belief of their row,
so a good probe reproduces the colour pattern of the true panel and a bad one smears it.

The panels use one frame fitted on the true beliefs (`figures.belief_frame`): the simplex above
for three-state probability vectors; otherwise (quasi-probability beliefs of a generalized HMM,
other numbers of states) the first two principal axes of the true belief set, or coordinates the
caller names (the Bloch disk of "tom quantum"), coloured by the true belief's scores in the frame.
Any number of states: pass `labels` (e.g. the MSP state of each row) to colour by category
instead, one colour per distinct label.

Large point sets (more than `DENSITY_ABOVE` points, e.g. the 88,572 contexts of Mess3 at context 10)
are drawn as a 2-D histogram (`density_image`): each bin takes the mean colour of its points and an
opacity that grows with the log of their number, so dense ridges of a probed fractal stay visible where
single dots would cover each other until the picture is one colour.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from figures._common import FigureInputError, as_array, category_palette, new_figure, same_shape, set_suptitle
from figures.belief_frame import BeliefFrame, belief_frame

SQRT3_2 = np.sqrt(3.0) / 2.0
_TRIANGLE = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, SQRT3_2], [0.0, 0.0]])
_DEFAULT_TITLES = ("True beliefs", "Probe predictions", "Shuffled-target control")


def simplex_coords(beliefs) -> np.ndarray:
    """[n, 3] beliefs -> [n, 2] points: x = b1 + b2/2, y = (√3/2) b2."""
    b = as_array("beliefs", beliefs, 2)
    if b.shape[1] != 3:
        raise FigureInputError(f"beliefs must have 3 columns (3 hidden states), got shape {b.shape}")
    return np.stack([b[:, 1] + 0.5 * b[:, 2], SQRT3_2 * b[:, 2]], axis=1)


def belief_colors(beliefs) -> np.ndarray:
    """[n, 3] beliefs -> [n, 3] RGB = (b0, b1, b2), clipped to [0, 1]."""
    b = as_array("beliefs", beliefs, 2)
    if b.shape[1] != 3:
        raise FigureInputError(f"beliefs must have 3 columns (3 hidden states), got shape {b.shape}")
    return np.clip(b, 0.0, 1.0)


def _label_colors(labels: np.ndarray) -> np.ndarray:
    """[n] categories -> [n, 3] colours, one per distinct label (`category_palette`: colour-blind safe up to 10)."""
    _, index = np.unique(labels, return_inverse=True)
    return category_palette(int(index.max()) + 1)[index.reshape(-1)]


def _default_point_size(n: int) -> float:
    # marker area in pt²: 1 at 50k points, smaller for more, never below a visible dot
    return float(np.clip(5e4 / n, 0.15, 12.0))


def _default_alpha(n: int) -> float:
    # opaque up to 2,000 points, then fading with the count, so that overlapping dots add up to a density
    return float(np.clip(np.sqrt(2e3 / n), 0.3, 1.0))


#: More points than this in one belief panel: drawn as a 2-D histogram (`density_image`), not as dots.
DENSITY_ABOVE = 20_000


def density_image(xy, colors, xlim, ylim, *, bins: int | None = None, categorical: bool = False) -> np.ndarray:
    """Points [n, 2] with colours [n, 3] as an RGBA image [by, bx, 4] over ``xlim`` x ``ylim`` (row 0 at the bottom).

    ``bins`` across x (default sqrt(n) within 120..400), square bins. A bin's colour is the mean colour of its
    points (``categorical``: the most frequent colour, for colours that stand for labels), its opacity
    0.2 + 0.8 log(1 + c) / log(1 + c99) for c > 0 points, c99 the 99th percentile of the occupied bins' counts
    (so a few very dense bins, such as the corners of a fractal, do not make every other bin pale); empty bins
    are transparent. Points outside the limits are left out.
    """
    xy = as_array("xy", xy, 2)
    colors = as_array("colors", colors, 2)
    if xy.shape[1] != 2 or colors.shape != (xy.shape[0], 3):
        raise FigureInputError(f"xy must be [n, 2] and colors [n, 3]; got {xy.shape} and {colors.shape}")
    (x0, x1), (y0, y1) = xlim, ylim
    bx = int(bins) if bins is not None else int(np.clip(np.sqrt(xy.shape[0]), 120, 400))
    by = max(1, int(round(bx * (y1 - y0) / (x1 - x0))))
    ix = np.floor((xy[:, 0] - x0) / (x1 - x0) * bx).astype(np.int64)
    iy = np.floor((xy[:, 1] - y0) / (y1 - y0) * by).astype(np.int64)
    inside = (ix >= 0) & (ix < bx) & (iy >= 0) & (iy < by)
    flat = iy[inside] * bx + ix[inside]  # [m] bin of each point inside
    counts = np.bincount(flat, minlength=bx * by).astype(np.float64)  # [by * bx]
    if categorical:
        palette, which = np.unique(colors[inside], axis=0, return_inverse=True)
        k = palette.shape[0]
        votes = np.bincount(flat * k + which.reshape(-1), minlength=bx * by * k).reshape(bx * by, k)
        rgb = palette[votes.argmax(axis=1)] if k else np.zeros((bx * by, 3))
    else:
        rgb = np.stack([np.bincount(flat, weights=colors[inside, j], minlength=bx * by) for j in range(3)], axis=1)
        rgb /= np.maximum(counts, 1.0)[:, None]
    occupied = counts[counts > 0]
    top = max(float(np.quantile(occupied, 0.99)), 2.0) if occupied.size else 2.0
    alpha = np.where(counts > 0, 0.2 + 0.8 * np.clip(np.log1p(counts) / np.log1p(top), 0.0, 1.0), 0.0)
    return np.concatenate([np.clip(rgb, 0.0, 1.0), alpha[:, None]], axis=1).reshape(by, bx, 4)


def draw_points(
    ax,
    xy,
    colors,
    xlim,
    ylim,
    *,
    density: bool | None = None,
    size: float | None = None,
    categorical: bool = False,
    zorder: float = 2,
):
    """Points [n, 2] coloured [n, 3] in a belief panel: a 2-D histogram (`density_image`) when ``density`` (default:
    more than `DENSITY_ABOVE` points), else dots of area ``size`` (default by count) in one fixed random order,
    so that no colour systematically covers another. Rasterized either way. Returns the artist."""
    xy = np.asarray(xy, dtype=np.float64)
    colors = np.asarray(colors, dtype=np.float64)
    n = xy.shape[0]
    if density if density is not None else n > DENSITY_ABOVE:
        image = density_image(xy, colors, xlim, ylim, categorical=categorical)
        return ax.imshow(
            image,
            extent=(xlim[0], xlim[1], ylim[0], ylim[1]),
            origin="lower",
            interpolation="nearest",
            rasterized=True,
            zorder=zorder,
            aspect="auto",
        )
    order = np.random.default_rng(0).permutation(n)
    return ax.scatter(
        xy[order, 0],
        xy[order, 1],
        s=_default_point_size(n) if size is None else float(size),
        c=colors[order],
        marker="o",
        linewidths=0,
        alpha=_default_alpha(n),
        rasterized=True,
        zorder=zorder,
    )


#: The fixed view of the 2-simplex in every belief panel: the triangle and a margin for corner labels
#: and for probed points that leave the simplex. Points beyond it are not drawn; their number is noted.
SIMPLEX_FRAME = ((-0.16, 1.16), (-0.13, SQRT3_2 + 0.1))


def corner_names(n_states: int, state_names: Sequence[str] | None) -> list[str]:
    """The names of the simplex corners: the process's state names when given, else "state 0", "state 1", ..."""
    if state_names is None:
        return [f"state {i}" for i in range(n_states)]
    names = [str(n) for n in state_names]
    if len(names) != n_states:
        raise FigureInputError(f"state_names has {len(names)} entries but the beliefs have {n_states} states")
    return names


def draw_simplex(
    ax,
    state_names: Sequence[str] | None = None,
    *,
    fontsize: float = 8,
    lw: float = 0.9,
    zorder: float = 4,
    color: str = "0.2",
) -> None:
    """The triangle outline, by default above the points (a dense fractal never hides it), and its corner names."""
    ax.plot(_TRIANGLE[:, 0], _TRIANGLE[:, 1], color=color, lw=lw, zorder=zorder)
    if state_names is None:
        return
    for (x, y), name, (dx, dy), ha in zip(
        _TRIANGLE[:3], state_names, ((-3, -6), (3, -6), (0, 6)), ("right", "left", "center")
    ):
        ax.annotate(
            name,
            (x, y),
            xytext=(dx, dy),
            textcoords="offset points",
            ha=ha,
            va="top" if dy < 0 else "bottom",
            fontsize=fontsize,
            color="0.1",
            zorder=5,
            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.75),
        )


def outside_frame(xy: np.ndarray, frame=SIMPLEX_FRAME) -> np.ndarray:
    """[n] True for points [n, 2] beyond the fixed simplex frame."""
    (x0, x1), (y0, y1) = frame
    return (xy[:, 0] < x0) | (xy[:, 0] > x1) | (xy[:, 1] < y0) | (xy[:, 1] > y1)


def plot_belief_panels(
    true_beliefs,  # [n, S]
    predicted,  # [n, S]
    shuffled=None,  # [n, S] or None
    *,
    titles: Sequence[str] | None = None,
    suptitle: str | None = None,
    point_size: float | None = None,
    labels=None,  # [n] categories to colour by (S != 3 only), or None
    state_names: Sequence[str] | None = None,  # [S] names of the hidden states (simplex corners)
    frame: BeliefFrame | None = None,  # the frame of every panel; default belief_frame(true_beliefs)
    density: bool | None = None,  # a 2-D histogram instead of dots; default: more than DENSITY_ABOVE points
) -> Figure:
    """Two panels of one size side by side: the true beliefs and the probe's predictions.

    Every panel colours point i by its TRUE belief (see the module docstring) and has no ticks.
    Three states: the simplex in one fixed frame (`SIMPLEX_FRAME`), corners named by
    `state_names` (else "state i"), outline on top; probed points that leave the simplex stay
    visible up to the frame, and the number beyond it is written in the panel. More than
    `DENSITY_ABOVE` points are drawn as a 2-D histogram (`draw_points`), fewer as dots.

    The shuffled-target control (``shuffled``), which collapses to about one point (the mean belief),
    is drawn in the predictions' panel: its predictions as small dark dots and a × at their mean, named
    in a legend under the panels by ``titles[2]``, with their spread (the largest distance from the ×).
    ``titles``: the two panels' titles, and a third for the control when it is given.
    """
    true = as_array("true_beliefs", true_beliefs, 2)
    pred = as_array("predicted", predicted, 2)
    same_shape("predicted", pred, "true_beliefs", true)
    shuf = None
    if shuffled is not None:
        shuf = as_array("shuffled", shuffled, 2)
        same_shape("shuffled", shuf, "true_beliefs", true)
    n_titles = 2 if shuf is None else 3
    if titles is None:
        titles = _DEFAULT_TITLES[:n_titles]
    titles = list(titles)
    if len(titles) != n_titles:
        raise FigureInputError(
            f"titles must have {n_titles} entries (the true and the probed panel"
            f"{', the shuffled control' if shuf is not None else ''}), got {len(titles)}"
        )
    n, n_states = true.shape
    if n_states < 2:
        raise FigureInputError(f"true_beliefs must have at least 2 columns (states), got {n_states}")

    if frame is None:
        frame = belief_frame(true)
    simplex = frame.simplex
    project = frame.apply
    if simplex:
        names = corner_names(3, state_names)
        xlim, ylim = SIMPLEX_FRAME
    else:
        xlim, ylim = frame_limits(project(true), [project(pred)], frame)

    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise FigureInputError(f"labels must have shape ({n},) (one per point), got {labels.shape}")
        colors = _label_colors(labels)
    else:
        colors = frame.colors(true)

    # panel height from the data's aspect ratio, so wide projections leave no empty bands
    aspect = (ylim[1] - ylim[0]) / (xlim[1] - xlim[0])
    panel_w = 4.0
    fig = new_figure(
        2 * panel_w + 0.3,
        float(np.clip(panel_w * aspect, 1.8, 5.0)) + (0.75 if suptitle else 0.45) + (0.35 if shuf is not None else 0.0),
    )
    axs = fig.subplots(1, 2, squeeze=False)[0]
    for i, (ax, beliefs, title) in enumerate(zip(axs, (true, pred), titles)):
        xy = project(beliefs)
        draw_points(ax, xy, colors, xlim, ylim, density=density, size=point_size, categorical=labels is not None)
        style_belief_panel(ax, xlim, ylim, frame, ylabel=i == 0)
        if frame.outline is not None:
            ax.plot(frame.outline[:, 0], frame.outline[:, 1], color="0.35", lw=0.8, zorder=3)
        if simplex:
            draw_simplex(ax, names)
            beyond = int(outside_frame(xy).sum())
            if beyond:
                ax.text(
                    0.99,
                    0.99,
                    f"{beyond:,} of {n:,} points\nbeyond the frame",
                    transform=ax.transAxes,
                    ha="right",
                    va="top",
                    fontsize=7,
                    color="0.3",
                )
        ax.set_title(title, fontsize=10)
    if shuf is not None:
        xy = project(shuf)
        centre = xy.mean(axis=0)
        spread = float(np.sqrt(((xy - centre) ** 2).sum(axis=1)).max())
        ax = axs[1]
        ax.scatter(xy[:, 0], xy[:, 1], s=1.0, color="0.15", linewidths=0, alpha=0.5, rasterized=True, zorder=5)
        ax.plot(*centre, ls="", marker="X", ms=9, mfc="0.1", mec="white", mew=1.2, zorder=6)
        handle = Line2D([], [], ls="", marker="X", ms=9, mfc="0.1", mec="white", mew=1.2)
        unit = " (the triangle's side is 1)" if simplex else ""
        fig.legend(
            [handle],
            [f"{titles[2]}: its predictions (dark dots) all lie within {spread:.2g} of \u00d7{unit}"],
            loc="outside lower center",
            fontsize=8.5,
            frameon=False,
        )
    if suptitle:
        set_suptitle(fig, suptitle, 11)
    return fig


def frame_limits(
    true_xy: np.ndarray, others: Sequence[np.ndarray], frame: BeliefFrame
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits of a non-simplex panel: the true points [n, 2] (and the outline), widened toward the
    bulk (1-99%) of the other point sets by at most a quarter of the true span each way."""
    ref = true_xy if frame.outline is None else np.concatenate([true_xy, frame.outline])
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    span = max(float((hi - lo).max()), 1e-9)
    if others:
        bulk = [np.percentile(o, [1, 99], axis=0) for o in others]
        lo = np.maximum(np.minimum(lo, np.min([b[0] for b in bulk], axis=0)), lo - 0.25 * span)
        hi = np.minimum(np.maximum(hi, np.max([b[1] for b in bulk], axis=0)), hi + 0.25 * span)
    lo, hi = lo - 0.06 * span, hi + 0.06 * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def style_belief_panel(ax, xlim, ylim, frame: BeliefFrame, *, ylabel: bool = True) -> None:
    """Limits, equal aspect, no ticks; a bare triangle for the simplex, the frame's axis names otherwise."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(not frame.simplex)
    if not frame.simplex:
        ax.set_xlabel(frame.axis_labels[0])
        if ylabel:
            ax.set_ylabel(frame.axis_labels[1])
