"""Constrained belief updates: one panel per process — attention against distance beside the predicted ``lambda^d``,
the OV vectors in the belief simplex beside the predicted update directions, the intermediate geometry."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from figures._common import FigureInputError, as_array, new_figure, set_suptitle

_CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])  # the 2-simplex in the plane


def _plane(b: np.ndarray) -> np.ndarray:
    """Three-state coordinates [..., 3] (summing to 1, possibly outside the simplex) -> the plane [..., 2]."""
    return b @ _CORNERS


def _colours(beliefs: np.ndarray) -> np.ndarray:
    return np.clip(beliefs, 0, 1) / np.maximum(np.clip(beliefs, 0, 1).sum(-1, keepdims=True), 1e-12)


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
) -> Figure:
    """Four panels: (a) each head's attention of the last query against distance (log scale, band = spread) with
    the predicted ``rate^d`` (dashed: first order; dotted: the exact readout rate) drawn through the head's value at
    ``min_distance``; (b) the main head's OV vectors and
    the predicted updates u_x as arrows from the simplex centre (each set scaled to its longest arrow: directions);
    (c) the constrained beliefs; (d) the intermediate stream's probe onto them, coloured by the true belief."""
    A = as_array("attention", attention, 2)
    S = as_array("spread", spread, 2, finite=False)
    if S.shape != A.shape or len(predicted_rates) != A.shape[0]:
        raise FigureInputError(f"attention {A.shape}, spread {S.shape} and predicted_rates ({len(predicted_rates)}) "
                               "must cover the same heads")
    ov, up = as_array("ov", ov, 2), as_array("updates", updates, 2)
    C, P, B = as_array("constrained", constrained, 2), as_array("probed", probed, 2), as_array("beliefs", beliefs, 2)
    if not (ov.shape[1] == up.shape[1] == C.shape[1] == P.shape[1] == B.shape[1] == 3):
        raise FigureInputError("the simplex panels need three-state coordinates")
    fig = new_figure(15.5, 4.4 if title else 4.0)
    axes = fig.subplots(1, 4)
    d = np.arange(A.shape[1])
    for h in range(A.shape[0]):
        line = axes[0].semilogy(d, np.maximum(A[h], 1e-8), "o-", ms=3, label=f"head {h}")[0]
        axes[0].fill_between(d, np.maximum(A[h] - S[h], 1e-8), A[h] + S[h], color=line.get_color(), alpha=0.15)
        for rates, style, what in ((predicted_rates, "--", "first order"), (readout_rates, ":", "readout")):
            rate = None if rates is None else rates[h]
            if rate is not None and min_distance < A.shape[1] and A[h, min_distance] > 0:
                pred = A[h, min_distance] * float(rate) ** (d - min_distance)
                axes[0].semilogy(d, np.maximum(pred, 1e-8), style, color=line.get_color(), lw=1,
                                 label=f"{what} {float(rate):.2f}^d")
    axes[0].set_xlabel("distance d from the last query")
    axes[0].set_ylabel("mean attention")
    axes[0].legend(fontsize=7)
    axes[0].set_title("(a) attention against distance", fontsize=9)

    tri = np.vstack([_CORNERS, _CORNERS[:1]])
    centre = _CORNERS.mean(0)
    ax = axes[1]
    ax.plot(tri[:, 0], tri[:, 1], color="0.6", lw=0.8)
    for vecs, style, label in ((ov, "-", f"OV, head {main_head}"), (up, ":", "predicted u_x")):
        flat = _plane(vecs) - _plane(np.zeros(3))  # displacements: the plane map is linear
        scale = 0.35 / max(np.linalg.norm(flat, axis=1).max(), 1e-12)
        for x, v in enumerate(flat):
            ax.annotate("", xy=centre + scale * v, xytext=centre,
                        arrowprops=dict(arrowstyle="->", ls=style, color=f"C{x % 10}", lw=1.5))
        ax.plot([], [], ls=style, color="k", label=label)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("(b) OV vectors in the belief simplex", fontsize=9)
    for ax, pts, name in ((axes[2], C, "(c) constrained beliefs (theory)"),
                          (axes[3], P, "(d) intermediate stream, probed")):
        xy = _plane(pts)
        ax.plot(tri[:, 0], tri[:, 1], color="0.6", lw=0.8)
        ax.scatter(xy[:, 0], xy[:, 1], s=1.5, c=_colours(B), linewidths=0, rasterized=True)
        ax.set_title(name, fontsize=9)
    for ax in axes[1:]:
        ax.set_aspect("equal")
        ax.axis("off")
    if title:
        set_suptitle(fig, title)
    return fig
