"""The probed geometry over training: snapshots of the probe's predictions, and probe error vs tokens.

The paper (Mess3): the fractal sharpens as training proceeds — probe MSE 0.0118 / 0.0084 /
0.0025 after 6.4e4 / 6.4e5 / 3.2e6 tokens and 0.00039 at the end (~6.4e8 tokens).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from figures._common import OKABE_ITO, FigureInputError, as_array, new_figure, same_shape, set_suptitle, token_axis
from figures.belief_frame import BeliefFrame, belief_frame
from figures.simplex import (
    SIMPLEX_FRAME,
    _label_colors,
    corner_names,
    draw_points,
    draw_simplex,
    frame_limits,
    outside_frame,
    style_belief_panel,
)


def _snapshots(snapshots) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if isinstance(snapshots, (str, bytes)) or not isinstance(snapshots, Sequence) or len(snapshots) == 0:
        raise FigureInputError("snapshots must be a non-empty list of (caption, true_beliefs, predicted) tuples")
    out = []
    for i, item in enumerate(snapshots):
        if not isinstance(item, (tuple, list)) or len(item) != 3:
            raise FigureInputError(f"snapshots[{i}] must be a (caption, true_beliefs, predicted) tuple")
        caption, true, pred = item
        true = as_array(f"snapshots[{i}] true_beliefs", true, 2)
        pred = as_array(f"snapshots[{i}] predicted", pred, 2)
        same_shape(f"snapshots[{i}] predicted", pred, f"snapshots[{i}] true_beliefs", true)
        if out and true.shape[1] != out[0][1].shape[1]:
            raise FigureInputError(
                f"snapshots[{i}] true_beliefs has {true.shape[1]} states but snapshots[0] has "
                f"{out[0][1].shape[1]}; every snapshot must be over the same process"
            )
        out.append((str(caption), true, pred))
    if out[0][1].shape[1] < 2:
        raise FigureInputError(
            f"snapshots[0] true_beliefs must have at least 2 columns (states), got shape {out[0][1].shape}"
        )
    return out


def plot_belief_evolution(
    snapshots: Sequence[tuple[str, np.ndarray, np.ndarray]],  # (caption, true [n, S], predicted [n, S])
    *,
    title: str | None = None,
    labels=None,  # [n] categories to colour by, or None
    state_names: Sequence[str] | None = None,  # [S] hidden-state names for the simplex corners (3 states)
    frame: BeliefFrame | None = None,  # the frame of every panel; default belief_frame(last true beliefs)
) -> Figure:
    """One row of panels: each snapshot's probe predictions, then the true beliefs of the last snapshot.

    Every point is coloured by its TRUE belief, so a converging probe shows the colour pattern of
    the last panel emerging. One frame (`figures.belief_frame`, fitted on the last snapshot's true
    beliefs unless ``frame`` is given) for every panel. Three-state probability vectors: the 2-simplex
    (x = b1 + b2/2, y = (√3/2) b2, RGB = belief; see figures.simplex) in its fixed frame, outline above
    the points, corners named (`state_names`, else "state i") on the last panel. Otherwise the
    frame's axes (principal axes of the belief set, or named coordinates such as the Bloch disk),
    coloured by `labels` (one colour per distinct label; then every snapshot must have n rows) or
    else by the true belief's scores in the frame.
    All panels share their limits; each snapshot's title adds its MSE (mean over rows and states).
    More than `figures.simplex.DENSITY_ABOVE` points per panel are drawn as a 2-D histogram (`draw_points`).
    """
    snaps = _snapshots(snapshots)
    ref = snaps[-1][1]
    if labels is not None:
        labels = np.asarray(labels)
        for i, (_, true, _) in enumerate(snaps):
            if labels.shape != (true.shape[0],):
                raise FigureInputError(
                    f"labels must have shape ({true.shape[0]},) (one per row of snapshots[{i}]), got {labels.shape}"
                )

    if frame is None:
        frame = belief_frame(ref)
    simplex = frame.simplex
    project = frame.apply
    colour_of = frame.colors
    if simplex:
        names = corner_names(3, state_names)
        (lo0, hi0), (lo1, hi1) = SIMPLEX_FRAME
        lo, hi = np.array([lo0, lo1]), np.array([hi0, hi1])
    else:
        (lo0, hi0), (lo1, hi1) = frame_limits(project(ref), [project(p) for _, _, p in snaps], frame)
        lo, hi = np.array([lo0, lo1]), np.array([hi0, hi1])

    if labels is not None:
        label_colors = _label_colors(labels)

    panels = [(cap, t, p) for cap, t, p in snaps]  # captions carry what the caller measured
    panels.append(("True beliefs", ref, ref))
    n_panels = len(panels)
    aspect = (hi[1] - lo[1]) / (hi[0] - lo[0])
    width = 3.0
    # height: the panel's own (equal-aspect) height plus room for two title lines, and the suptitle
    fig = new_figure(width * n_panels, float(np.clip(width * aspect, 1.0, 4.5)) + (0.85 if simplex else 1.25))
    for i, (ax, (caption, true, points)) in enumerate(zip(fig.subplots(1, n_panels, squeeze=False)[0], panels)):
        colors = label_colors if labels is not None else colour_of(true)
        xy = project(points)
        draw_points(ax, xy, colors, (lo[0], hi[0]), (lo[1], hi[1]), categorical=labels is not None)
        style_belief_panel(ax, (lo[0], hi[0]), (lo[1], hi[1]), frame, ylabel=i == 0)
        if frame.outline is not None:
            ax.plot(frame.outline[:, 0], frame.outline[:, 1], color="0.35", lw=0.7, zorder=3)
        if simplex:
            draw_simplex(ax, names if i == n_panels - 1 else None, fontsize=7)
            beyond = int(outside_frame(xy).sum())
            if beyond:
                ax.text(
                    0.99,
                    0.99,
                    f"{beyond:,} beyond\nthe frame",
                    transform=ax.transAxes,
                    ha="right",
                    va="top",
                    fontsize=6.5,
                    color="0.3",
                )
        ax.set_title(caption, fontsize=9)
    set_suptitle(fig, title or "Probe predictions over training, coloured by the true belief", 11)
    return fig


def plot_probe_over_training(
    tokens,  # [m] tokens seen at each checkpoint
    probe_mse,  # [m]
    relative_loss,  # [m] CE / optimal CE
    *,
    paper_tokens=None,  # [p] or None
    paper_mse=None,  # [p] or None
    title: str | None = None,
) -> Figure:
    """Two log-log panels against tokens seen: the probe's MSE (with the paper's points if given),
    and the excess loss CE / optimal CE - 1. Non-positive excess (evaluation noise below the
    optimum), a probe MSE of 0 (an exact fit) and the untrained model's point at 0 tokens cannot
    be drawn on a log axis: they are left out of their panel and counted in its legend.
    """
    tok = as_array("tokens", tokens, 1)
    err = as_array("probe_mse", probe_mse, 1)
    rel = as_array("relative_loss", relative_loss, 1)
    same_shape("probe_mse", err, "tokens", tok)
    same_shape("relative_loss", rel, "tokens", tok)
    if np.any(tok < 0):
        raise FigureInputError("tokens must be >= 0 (tokens seen)")
    if np.any(err < 0):
        raise FigureInputError("probe_mse must be >= 0 (a mean squared error)")
    if (paper_tokens is None) != (paper_mse is None):
        raise FigureInputError("paper_tokens and paper_mse go together: pass both or neither")
    if paper_tokens is not None:
        p_tok = as_array("paper_tokens", paper_tokens, 1)
        p_mse = as_array("paper_mse", paper_mse, 1)
        same_shape("paper_mse", p_mse, "paper_tokens", p_tok)
        if np.any(p_tok <= 0) or np.any(p_mse <= 0):
            raise FigureInputError("paper_tokens and paper_mse must be positive (log axes)")

    order = np.argsort(tok, kind="stable")
    tok, err, rel = tok[order], err[order], rel[order]
    marker = "o" if tok.size <= 40 else None
    fig = new_figure(10.0, 4.2)
    left, right = fig.subplots(1, 2, sharex=True)

    drawn = (tok > 0) & (err > 0)  # log axes: 0 tokens (the untrained model) and an exact fit are not drawn
    left.plot(
        tok[drawn],
        err[drawn],
        color=OKABE_ITO[0],
        marker=marker,
        ms=4,
        label="this run" if drawn.all() else f"this run ({(~drawn).sum()} points at 0 tokens or 0 MSE not shown)",
    )
    if paper_tokens is not None:
        left.plot(p_tok, p_mse, ls="", marker="s", ms=7, mfc="none", mec="k", mew=1.4, label="paper (Shai et al. 2024)")
    shown = np.concatenate([tok[tok > 0], p_tok]) if paper_tokens is not None else tok[tok > 0]
    if shown.size:
        token_axis(left, shown)  # log, ticks "6.4×10⁴" as in every figure (shared with the right panel)
    if drawn.any() or paper_tokens is not None:
        left.set_yscale("log")
    left.set_xlabel("tokens seen")
    left.set_ylabel("probe MSE (beliefs)")
    left.set_title("Probe error over training")
    left.legend()
    left.grid(alpha=0.3)
    left.grid(alpha=0.1, which="minor")

    excess = rel - 1.0
    ok = (excess > 0) & (tok > 0)
    label = (
        "this run"
        if ok.all()
        else f"this run ({(~ok).sum()} points at or below the optimum, or at 0 tokens, not shown)"
    )
    right.plot(tok[ok], excess[ok], color=OKABE_ITO[1], marker=marker, ms=4, label=label)
    if ok.any():
        right.set_yscale("log")
    right.set_xlabel("tokens seen")
    right.set_ylabel("excess loss (CE / optimal CE − 1)")
    right.set_title("Loss over the optimum")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    right.grid(alpha=0.1, which="minor")
    right.tick_params(labelbottom=True)

    set_suptitle(fig, title or "Probe error and loss against tokens seen", 12)
    return fig
