"""Constrained belief updates: one panel per process — attention against distance beside the predicted ``lambda^d``,
the OV vectors in the belief simplex beside the predicted update directions, the intermediate geometry."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from figures._common import FigureInputError, as_array, category_palette, count_ticks, new_figure, set_suptitle
from figures.simplex import draw_points

_CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])  # the 2-simplex in the plane
#: Arrows whose directions differ by less than this angle (radians) share one label at their tip.
_SAME_DIRECTION = 0.05


def _plane(b: np.ndarray) -> np.ndarray:
    """Three-state coordinates [..., 3] (summing to 1, possibly outside the simplex) -> the plane [..., 2]."""
    return b @ _CORNERS


def _colours(beliefs: np.ndarray) -> np.ndarray:
    return np.clip(beliefs, 0, 1) / np.maximum(np.clip(beliefs, 0, 1).sum(-1, keepdims=True), 1e-12)


def _grouped_tips(tips: np.ndarray, centre: np.ndarray) -> list[list[int]]:
    """Indices of arrows [V, 2] (tips, from ``centre``) grouped by direction and length: arrows that would overlap."""
    groups: list[list[int]] = []
    for x, tip in enumerate(tips):
        for g in groups:
            other = tips[g[0]]
            a, b = tip - centre, other - centre
            na, nb = np.linalg.norm(a), np.linalg.norm(b)
            if na < 1e-9 or nb < 1e-9:
                same = na < 1e-9 and nb < 1e-9
            else:
                cos = float(a @ b) / (na * nb)
                same = np.arccos(np.clip(cos, -1.0, 1.0)) < _SAME_DIRECTION and abs(na - nb) < 0.1 * max(na, nb)
            if same:
                g.append(x)
                break
        else:
            groups.append([x])
    return groups


def plot_cbu_panel(
    attention: np.ndarray,  # [H, D] mean attention of the last query against distance d = 0..D-1
    spread: np.ndarray,  # [H, D] its standard deviation over contexts
    predicted_rates: Sequence[float | None],  # one per head: the rate matched to it (None: no prediction)
    readout_rates: Sequence[float | None] | None,  # one per head: the exact readout rate (None: none)
    ov: np.ndarray,  # [V, 3] the main head's OV vectors projected into the belief simplex (displacements)
    updates: np.ndarray,  # [V, 3] the predicted update directions u_x
    constrained: np.ndarray,  # [R, 3] the predicted intermediate geometry (constrained beliefs)
    probed: np.ndarray,  # [R, 3] the intermediate residual stream probed onto the constrained beliefs
    beliefs: np.ndarray,  # [R, 3] the true beliefs (the colours)
    *,
    min_distance: int = 1,
    main_head: int = 0,
    title: str | None = None,
    token_names: Sequence[str] | None = None,  # [V] names written at the arrow tips (default: the token ids)
) -> Figure:
    """Four panels: (a) each head's attention of the last query against distance (log scale, band = spread; one
    colour per head, colour-blind safe) with the predicted ``rate^d`` (dashed: first order; dotted: the exact
    readout rate) drawn through the head's value at ``min_distance``; the y-range is the measured attention's, so a
    steep prediction leaves the panel instead of squashing the data; one legend entry per head (its rates) and one
    per line style. (b) the main head's OV vectors (solid, one colour per token, each tip named) and the predicted
    updates u_x (dotted, black; arrows that coincide share one name), from the simplex centre, each set scaled to its
    longest arrow (directions). (c) the constrained beliefs; (d) the intermediate stream's probe onto them,
    coloured by the true belief, on the same axes as (c); more than 20,000 rows are drawn as a 2-D histogram."""
    A = as_array("attention", attention, 2)
    S = as_array("spread", spread, 2, finite=False)
    if S.shape != A.shape or len(predicted_rates) != A.shape[0]:
        raise FigureInputError(
            f"attention {A.shape}, spread {S.shape} and predicted_rates ({len(predicted_rates)}) "
            "must cover the same heads"
        )
    ov, up = as_array("ov", ov, 2), as_array("updates", updates, 2)
    C, P, B = as_array("constrained", constrained, 2), as_array("probed", probed, 2), as_array("beliefs", beliefs, 2)
    if not (ov.shape[1] == up.shape[1] == C.shape[1] == P.shape[1] == B.shape[1] == 3):
        raise FigureInputError("the simplex panels need three-state coordinates")
    V = ov.shape[0]
    names = [str(x) for x in range(V)] if token_names is None else [str(t) for t in token_names]
    if len(names) != V:
        raise FigureInputError(f"token_names has {len(names)} entries for {V} tokens")
    fig = new_figure(15.5, (4.4 if title else 4.0) + 0.5)
    axes = fig.subplots(1, 4, width_ratios=[1.25, 1, 1, 1])

    # (a) attention against distance
    ax = axes[0]
    d = np.arange(A.shape[1])
    head_colours = category_palette(A.shape[0])
    handles = []
    for h in range(A.shape[0]):
        colour = head_colours[h]
        ax.semilogy(d, np.maximum(A[h], 1e-8), "o-", ms=3, color=colour, lw=1.6, zorder=3)
        ax.fill_between(d, np.maximum(A[h] - S[h], 1e-8), A[h] + S[h], color=colour, alpha=0.15, linewidth=0)
        rates = []
        for rs, style, what in ((predicted_rates, "--", "first order"), (readout_rates, ":", "readout")):
            rate = None if rs is None else rs[h]
            if rate is not None and min_distance < A.shape[1] and A[h, min_distance] > 0:
                pred = A[h, min_distance] * float(rate) ** (d - min_distance)
                ax.semilogy(d, np.maximum(np.abs(pred), 1e-8), style, color=colour, lw=1.1, zorder=2)
                rates.append(f"{what} {float(rate):.2f}")
        label = f"head {h}" + (" (main)" if h == main_head else "") + (f": {', '.join(rates)}" if rates else "")
        handles.append(Line2D([], [], color=colour, lw=1.6, marker="o", ms=3, label=label))
    handles += [
        Line2D([], [], color="0.25", lw=1.6, label="measured (band: ± sd)"),
        Line2D([], [], color="0.25", lw=1.1, ls="--", label="first order, |rate|^d"),
        Line2D([], [], color="0.25", lw=1.1, ls=":", label="readout, |rate|^d"),
    ]
    measured = np.concatenate([A[A > 0], (A + S)[np.isfinite(S) & (A + S > 0)]])
    if measured.size:
        lo, hi = max(float(measured.min()) / 4.0, 1e-8), float(measured.max()) * 2.5
        ax.set_ylim(lo, hi)
        ax.yaxis.set_major_locator(FixedLocator(count_ticks(lo, hi)))  # 1-2-5 steps, written as plain numbers
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("distance d from the last query")
    ax.set_ylabel("mean attention (log scale)")
    ax.set_xticks(d)
    ax.legend(handles=handles, fontsize=6.5, loc="lower left", framealpha=0.85, handlelength=2.2)
    ax.set_title("(a) attention against distance", fontsize=9)
    ax.grid(alpha=0.25, which="major")

    # (b) OV vectors and predicted update directions
    tri = np.vstack([_CORNERS, _CORNERS[:1]])
    centre = _CORNERS.mean(0)
    ax = axes[1]
    ax.plot(tri[:, 0], tri[:, 1], color="0.6", lw=0.8)
    token_colours = category_palette(V)
    for vecs, solid in ((up, False), (ov, True)):  # the predictions first: the measured arrows drawn above them
        flat = _plane(vecs) - _plane(np.zeros(3))  # displacements: the plane map is linear
        scale = 0.36 / max(np.linalg.norm(flat, axis=1).max(), 1e-12)
        tips = centre + scale * flat
        for x, tip in enumerate(tips):
            colour = tuple(token_colours[x]) if solid else "0.15"
            ax.annotate(
                "",
                xy=tip,
                xytext=centre,
                zorder=3 if solid else 2,
                arrowprops=dict(
                    arrowstyle="-|>",
                    ls="-" if solid else (0, (1.5, 1.5)),
                    color=colour,
                    lw=1.6 if solid else 1.1,
                    mutation_scale=9,
                    shrinkA=0,
                    shrinkB=0,
                ),
            )
        for group in _grouped_tips(tips, centre):
            tip = tips[group[0]]
            direction = tip - centre
            offset = 9 * direction / max(np.linalg.norm(direction), 1e-12) / 0.36
            ax.annotate(
                ",".join(names[x] for x in group),
                tip,
                xytext=(offset[0], offset[1]),
                textcoords="offset points",
                ha="center",
                va="center",
                fontsize=6.5,
                color=tuple(token_colours[group[0]]) if solid else "0.35",
                fontweight="bold" if solid else "normal",
                zorder=4,
            )
    ax.legend(
        handles=[
            Line2D([], [], color="0.3", lw=1.6, label=f"OV vectors, head {main_head} (token colour)"),
            Line2D([], [], color="0.15", lw=1.1, ls=(0, (1.5, 1.5)), label="predicted u_x"),
        ],
        fontsize=6.5,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.02),
        ncols=1,
        frameon=False,
    )
    ax.set_title("(b) OV vectors in the belief simplex", fontsize=9)

    # (c), (d): one set of axes for the theory and the probe, from the theory's points and the probe's bulk
    c_xy, p_xy = _plane(C), _plane(P)
    ref = np.concatenate([c_xy, _CORNERS])
    bulk = np.percentile(p_xy, [1, 99], axis=0) if p_xy.shape[0] >= 100 else np.stack([p_xy.min(0), p_xy.max(0)])
    lo, hi = np.minimum(ref.min(0), bulk[0]), np.maximum(ref.max(0), bulk[1])
    span = float((hi - lo).max())
    lo, hi = lo - 0.04 * span, hi + 0.04 * span
    colours = _colours(B)
    for ax, xy, name in (
        (axes[2], c_xy, "(c) constrained beliefs (theory)"),
        (axes[3], p_xy, "(d) intermediate stream, probed"),
    ):
        draw_points(ax, xy, colours, (lo[0], hi[0]), (lo[1], hi[1]), size=1.5)
        ax.plot(tri[:, 0], tri[:, 1], color="0.35", lw=0.8, zorder=3)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_title(name, fontsize=9)
    for ax in axes[1:]:
        ax.set_aspect("equal")
        ax.axis("off")
    if title:
        set_suptitle(fig, title)
    return fig
