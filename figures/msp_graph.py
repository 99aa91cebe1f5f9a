"""Pictures of a mixed-state presentation: the finite MSP as a graph, and beliefs of many words.

Array-in: the MSP's beliefs, successor table, token probabilities, depths and recurrence flags
(as `compmech.msp.MSP` holds them), so this module needs nothing else of compmech.

Graph layout. Three hidden states: each node at its belief in the 2-simplex (x = b1 + b2/2,
y = (√3/2) b2). Otherwise layered: transient states in rows by their depth from the prior (the
top row), ordered within a row by the first principal component of their beliefs; below them the
recurrent states (the ε-machine) on a circle, in the order a walk along their most probable
transitions visits them, so that most recurrent edges are short chords round the circle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from figures._common import FigureInputError, as_array, category_palette, new_figure
from figures.belief_frame import is_probability_set
from figures.simplex import _TRIANGLE, corner_names, draw_simplex, simplex_coords

_PROB_LABELS_UP_TO = 40  # more states than this: no probability on each arrow (too dense to read)


def _check_graph(beliefs, next_state, token_probs, depth, recurrent):
    b = as_array("beliefs", beliefs, 2)
    n = b.shape[0]
    nxt = np.asarray(next_state)
    probs = as_array("token_probs", token_probs, 2)
    if nxt.ndim != 2 or nxt.shape[0] != n or not np.issubdtype(nxt.dtype, np.integer):
        raise FigureInputError(
            f"next_state must be an integer array [n_states={n}, vocab], got {nxt.dtype} {nxt.shape}"
        )
    if probs.shape != nxt.shape:
        raise FigureInputError(f"token_probs has shape {probs.shape} but next_state has {nxt.shape}; they must match")
    if np.any(nxt >= n) or np.any(nxt < -1):
        raise FigureInputError(f"next_state entries must be state ids 0..{n - 1} or -1 (impossible token)")
    dep = np.asarray(depth)
    rec = np.asarray(recurrent, dtype=bool)
    if dep.shape != (n,) or rec.shape != (n,):
        raise FigureInputError(f"depth and recurrent must have shape ({n},), got {dep.shape} and {rec.shape}")
    return b, nxt.astype(np.int64), probs, dep.astype(np.int64), rec


def recurrent_cycle_order(members: np.ndarray, next_state: np.ndarray, token_probs: np.ndarray) -> list[int]:
    """The recurrent states in the order a greedy walk along the most probable unvisited successor visits them."""
    left = [int(m) for m in members]
    if not left:
        return []
    order = [left.pop(0)]
    while left:
        cur = order[-1]
        succ = [(token_probs[cur, x], int(j)) for x, j in enumerate(next_state[cur]) if j in left]
        nxt = max(succ)[1] if succ else left[0]
        left.remove(nxt)
        order.append(nxt)
    return order


def layered_layout(
    beliefs: np.ndarray, next_state: np.ndarray, token_probs: np.ndarray, depth: np.ndarray, recurrent: np.ndarray
) -> np.ndarray:
    """Node positions [n, 2]: transient states in rows by depth, recurrent states on a circle below."""
    centred = beliefs - beliefs.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    key = centred @ vt[0]  # [n] first principal component
    xy = np.zeros((beliefs.shape[0], 2))
    transient = np.flatnonzero(~recurrent)
    rows = np.unique(depth[transient]) if transient.size else np.array([], dtype=np.int64)
    widest = max([int((depth[transient] == r).sum()) for r in rows] + [1])
    gap = max(1.0, 6.0 / widest)
    members_of = {int(r): transient[depth[transient] == r] for r in rows}

    def place(r: int, order: np.ndarray) -> None:
        xy[order, 0] = (np.arange(order.size) - (order.size - 1) / 2) * gap
        xy[order, 1] = -float(r)

    for r, members in members_of.items():  # start: each row by the first principal component
        place(r, members[np.argsort(key[members], kind="stable")])
    src, tok = np.nonzero(next_state >= 0)
    dst = next_state[src, tok]
    # barycentre sweeps (down, up, down): each row ordered by the mean x of its neighbours in the
    # row above (or below), which removes most edge crossings between rows
    for sweep in (list(members_of), list(members_of)[::-1], list(members_of)):
        for r in sweep:
            members = members_of[r]
            bary = []
            for m in members:
                nbrs = np.concatenate([src[(dst == m) & ~recurrent[src]], dst[(src == m) & ~recurrent[dst]]])
                nbrs = nbrs[nbrs != m]
                bary.append(xy[nbrs, 0].mean() if nbrs.size else xy[m, 0])
            place(r, members[np.lexsort((key[members], np.array(bary)))])
    cycle = recurrent_cycle_order(np.flatnonzero(recurrent), next_state, token_probs)
    k = len(cycle)
    below = -(float(rows.max()) + 1.0) if rows.size else 0.0
    if k <= 2:  # one or two: side by side in a row below the transient ones
        xy[cycle, 0] = (np.arange(k) - (k - 1) / 2) * 2.0
        xy[cycle, 1] = below
    else:
        radius = max(1.2, 0.55 * k / np.pi)
        angles = np.pi / 2 - 2 * np.pi * np.arange(k) / k  # first at the top, clockwise
        xy[cycle, 0] = radius * np.cos(angles)
        xy[cycle, 1] = below - radius - (0.3 if rows.size else 0.0) + radius * np.sin(angles)
    return xy


def plot_msp_graph(
    beliefs,  # [n, S] belief of each MSP state
    next_state,  # [n, V] successor of state i on token x, -1 where the token is impossible
    token_probs,  # [n, V] P(x | state i)
    depth,  # [n] length of the shortest word reaching each state (0 = the prior)
    recurrent,  # [n] True for recurrent states
    *,
    token_names: Sequence[str] | None = None,
    state_names: Sequence[str] | None = None,  # [S] names of the hidden states
    simplex: bool | None = None,  # draw in the 2-simplex; default: when S == 3
    title: str | None = None,
) -> Figure:
    """The finite MSP as a graph: numbered nodes, arrows coloured by token and labelled with P(token | state).

    Recurrent states are large with a black outline, transient ones small and grey-edged; a
    recurrent state whose belief is one hidden state for certain is also labelled with that
    state's name. Self-loops are written beside their node as "↺ token p". The legend names the
    token colours and the two node kinds. See the module docstring for the layout.
    """
    b, nxt, probs, dep, rec = _check_graph(beliefs, next_state, token_probs, depth, recurrent)
    n, n_hidden = b.shape
    V = nxt.shape[1]
    tok = [str(t) for t in token_names] if token_names is not None else [str(x) for x in range(V)]
    if len(tok) != V:
        raise FigureInputError(f"token_names has {len(tok)} entries but next_state has {V} tokens")
    hidden = corner_names(n_hidden, state_names)
    in_simplex = (n_hidden == 3) if simplex is None else bool(simplex)
    if in_simplex:
        xy = simplex_coords(b)
        layout = "nodes at their beliefs in the 2-simplex"
    else:
        xy = layered_layout(b, nxt, probs, dep, rec)
        layout = "rows: depth from the prior (top); recurrent states below" + (", on a circle" if rec.sum() > 2 else "")
    span = np.ptp(xy, axis=0)
    width = float(np.clip(1.0 * span[0] + 2.5, 6.0, 14.0)) if not in_simplex else 6.5
    height = float(np.clip(width * (span[1] + 1.2) / (span[0] + 1.2), 3.5, 12.0)) + 0.8 if not in_simplex else 6.2
    fig = new_figure(width, height)
    ax = fig.subplots()
    palette = category_palette(V)  # one colour per token: colour-blind safe up to 10 tokens
    scale = 1.0 if in_simplex else max(float(span.max()), 1.0)
    rad = 0.15
    loops = np.zeros(n, int)
    label_probs = n <= _PROB_LABELS_UP_TO
    for i in range(n):
        for x in range(V):
            j = int(nxt[i, x])
            if j < 0:
                continue
            p = float(probs[i, x])
            color = tuple(palette[x])
            if i == j:  # a self-loop: written beside the node
                ax.annotate(
                    f"\u21ba {tok[x]} {p:.2g}",
                    xy[i],
                    xytext=(0, 9 + 8 * loops[i]),
                    textcoords="offset points",
                    ha="center",
                    fontsize=6.5,
                    color=color,
                    zorder=6,
                )
                loops[i] += 1
                continue
            ax.annotate(
                "",
                xy=xy[j],
                xytext=xy[i],
                zorder=2,
                arrowprops=dict(
                    arrowstyle="-|>",
                    color=color,
                    lw=0.8,
                    alpha=0.8,
                    shrinkA=8,
                    shrinkB=8,
                    mutation_scale=8,
                    connectionstyle=f"arc3,rad={rad}",
                ),
            )
            if label_probs:
                dx, dy = xy[j] - xy[i]
                on_arc = 0.5 * (xy[i] + xy[j]) + 0.5 * rad * np.array([dy, -dx])
                ax.text(
                    on_arc[0],
                    on_arc[1],
                    f"{p:.2g}",
                    fontsize=6,
                    color=color,
                    ha="center",
                    va="center",
                    zorder=5,
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8),
                )
    node_size = np.where(rec, 170, 95)
    ax.scatter(
        xy[:, 0],
        xy[:, 1],
        s=node_size,
        c=np.where(rec[:, None], [[1.0, 0.93, 0.75]], [[0.93, 0.93, 0.93]]),
        # matplotlib's stubs take no arrays for these two; its docs and code accept array-like (one per point)
        edgecolors=np.where(rec, "k", "0.55"),  # pyright: ignore[reportArgumentType]
        linewidths=np.where(rec, 1.1, 0.7),  # pyright: ignore[reportArgumentType]
        zorder=3,
    )
    for i in range(n):
        ax.text(
            xy[i, 0],
            xy[i, 1],
            str(i),
            fontsize=6.5 if n < 100 else 5,
            ha="center",
            va="center",
            zorder=4,
            fontweight="bold" if rec[i] else "normal",
        )
        if rec[i] and not in_simplex and np.max(b[i]) > 1 - 1e-9:  # (in the simplex the corner says it)
            ax.annotate(
                f"= {hidden[int(np.argmax(b[i]))]}",
                xy[i],
                xytext=(9, -9),
                textcoords="offset points",
                fontsize=6.5,
                color="0.25",
                zorder=4,
            )
    if in_simplex:
        draw_simplex(ax, hidden, zorder=1, color="0.6", lw=0.8)
        ax.set_xlim(-0.15, 1.15)
        ax.set_ylim(-0.12, _TRIANGLE[2, 1] + 0.12)
    else:
        pad = 0.6 + 0.02 * scale
        ax.set_xlim(xy[:, 0].min() - pad, xy[:, 0].max() + pad)
        ax.set_ylim(xy[:, 1].min() - pad, xy[:, 1].max() + pad)
    ax.set_aspect("equal")
    ax.axis("off")
    handles = [Line2D([], [], color=tuple(palette[x]), lw=1.5, label=f"token {tok[x]}") for x in range(V)]
    handles += [
        Line2D([], [], ls="", marker="o", ms=9, mfc=(1.0, 0.93, 0.75), mec="k", label="recurrent state"),
        Line2D([], [], ls="", marker="o", ms=7, mfc="0.93", mec="0.55", label="transient state"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=7.5, frameon=False)
    head = title or "Mixed-state presentation"
    arrows = "arrow labels: P(token | state)" if label_probs else "too many states to label each arrow"
    fig.suptitle(f"{head}\n{n} states ({int(rec.sum())} recurrent)\nlayout: {layout}; {arrows}", fontsize=9)
    return fig


def belief_layout(beliefs, *, simplex: bool | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """2-D positions [n, 2], RGB colours [n, 3] and the projection's name for beliefs [n, S].

    Three states (and `simplex` not False): the 2-simplex, RGB = belief. One state: a point.
    Two: P(state 1) on a line, red to blue. ``simplex=None`` (the default) uses the simplex and the
    line only for probability vectors (`figures.belief_frame.is_probability_set`): the
    quasi-probability beliefs of a generalized HMM get the principal axes. Otherwise the first two principal components,
    coloured by the first three PC scores rescaled to [0, 1].
    """
    b = as_array("beliefs", beliefs, 2)
    n, S = b.shape
    if simplex is None:
        simplex = is_probability_set(b)
    if S == 3 and simplex is not False:
        return simplex_coords(b), np.clip(b, 0, 1), "2-simplex"
    if S == 1:
        return np.zeros((n, 2)), np.full((n, 3), 0.3), "single state"
    if S == 2 and simplex is not False:
        xy = np.stack([b[:, 1], np.zeros(n)], axis=1)
        col = np.stack([b[:, 0], np.zeros(n), b[:, 1]], axis=1)
        return xy, np.clip(col, 0, 1), "P(state 1)"
    centred = b - b.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(3, vt.shape[0])
    z = centred @ vt[:k].T
    if k < 3:
        z = np.concatenate([z, np.zeros((n, 3 - k))], axis=1)
    span = z.max(axis=0) - z.min(axis=0)
    col = (z - z.min(axis=0)) / np.where(span > 0, span, 1.0)
    return z[:, :2], col, "PCA"


def plot_beliefs(
    beliefs, *, state_names: Sequence[str] | None = None, simplex: bool | None = None, title: str | None = None
) -> Figure:
    """Scatter of beliefs [n, S]: the 2-simplex with named corners and RGB = belief for 3 states, else see
    `belief_layout`."""
    b = as_array("beliefs", beliefs, 2)
    xy, col, proj = belief_layout(b, simplex=simplex)
    fig = new_figure(5.5, 5.2 if proj == "2-simplex" else 4.6)
    ax = fig.subplots()
    size = float(np.clip(4e4 / b.shape[0], 0.3, 6.0))
    ax.scatter(xy[:, 0], xy[:, 1], c=col, s=size, linewidths=0, rasterized=True, zorder=2)
    if proj == "2-simplex":
        draw_simplex(ax, corner_names(3, state_names))
        ax.set_xlim(-0.15, 1.15)
        ax.set_ylim(-0.12, _TRIANGLE[2, 1] + 0.1)
        ax.set_aspect("equal")
        ax.axis("off")
    elif proj == "P(state 1)":
        names = corner_names(2, state_names)
        ax.set_xlabel(f"P({names[1]})")
        ax.set_yticks([])
    else:
        ax.set_xlabel(f"{proj} 1")
        ax.set_ylabel(f"{proj} 2" if proj == "PCA" else "")
    ax.set_title(title or f"{b.shape[0]:,} beliefs", fontsize=9)
    return fig
