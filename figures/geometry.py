"""Belief geometry beyond the next token: pairwise-distance scatter and the PCA of mixed states.

The paper's RRXOR figures: distances between probed beliefs against distances between true
beliefs (R² 0.95) and between optimal next-token distributions (R² 0.31); and the 36 mixed
states in the first two principal components, true and as the probe places them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from figures._common import (
    OKABE_ITO,
    FigureInputError,
    as_array,
    category_palette,
    new_figure,
    same_shape,
    set_suptitle,
)

_HEXBIN_ABOVE = 5000  # more pairs than this: a 2-D histogram instead of single points
_PAPER_KEYS = ("beliefs", "next_token")
#: Why the two R² can be one number (written under the figure and beside the number in the report).
SAME_GEOMETRY_NOTE = (
    "The two R² are equal, not a copy: for this process the next-token distribution is an "
    "affine image of the belief that scales every distance by one factor (e.g. Mess3, whose "
    "emission matrix is circulant), so next-token geometry and belief geometry coincide."
)


def _r2_value(name: str, value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise FigureInputError(f"{name} must be a number (nan if undefined), got {value!r}") from None
    if np.isinf(out):
        raise FigureInputError(f"{name} must be finite or nan, got {value!r}")
    return out


def _fmt_r2(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.3f}"


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """Least-squares intercept and slope of y ~ a + b x, or None if x is constant."""
    xc = x - x.mean()
    sxx = float(xc @ xc)
    if sxx <= 0.0:
        return None
    slope = float(xc @ (y - y.mean())) / sxx
    return float(y.mean() - slope * x.mean()), slope


def plot_distance_scatter(
    d_probed,  # [n_pairs] distances between probe predictions
    d_beliefs,  # [n_pairs] distances between the true beliefs of the same pairs
    d_next,  # [n_pairs] distances between the optimal next-token distributions of the same pairs
    *,
    r2_beliefs: float,
    r2_next: float,
    paper: Mapping[str, float] | None = None,
    same_geometry: bool = False,
    title: str | None = None,
) -> Figure:
    """Two panels over the same pairs of contexts: probed distance (x) against true-belief distance
    and against next-token-distribution distance (y), each with its least-squares line and R².

    `paper` (e.g. {"beliefs": 0.95, "next_token": 0.31}) adds the paper's R² to the titles.
    Up to a few thousand pairs are drawn as points; more as a hexagonal 2-D histogram with a
    log colour scale (pairs per bin), so that 2M pairs stay readable and cheap to save.
    `same_geometry` (the next-token distributions are an affine image of the beliefs that scales
    every distance by one factor, as for Mess3's circulant emission matrix) writes under the
    figure why the two R² are the same number.
    """
    x = as_array("d_probed", d_probed, 1)
    ys = {"d_beliefs": as_array("d_beliefs", d_beliefs, 1), "d_next": as_array("d_next", d_next, 1)}
    for name, arr in ys.items():
        same_shape(name, arr, "d_probed", x)
    for name, arr in (("d_probed", x), *ys.items()):
        if np.any(arr < 0):
            raise FigureInputError(f"{name} must be non-negative (distances)")
    if x.size < 2:
        raise FigureInputError(f"d_probed must hold at least 2 pairs, got {x.size}")
    r2s = (_r2_value("r2_beliefs", r2_beliefs), _r2_value("r2_next", r2_next))
    paper = {} if paper is None else dict(paper)
    unknown = sorted(set(paper) - set(_PAPER_KEYS))
    if unknown:
        raise FigureInputError(f"paper has unknown keys {unknown}; use {list(_PAPER_KEYS)}")
    for key, value in paper.items():
        _r2_value(f"paper[{key!r}]", value)

    panels = (
        (ys["d_beliefs"], "distance between true beliefs", "Probed vs true beliefs", "beliefs"),
        (
            ys["d_next"],
            "distance between optimal next-token distributions",
            "Probed vs next-token distributions",
            "next_token",
        ),
    )
    hexbin = x.size > _HEXBIN_ABOVE
    fig = new_figure(11.5 if hexbin else 10.0, 4.6)
    for ax, (y, ylabel, head, key), r2 in zip(fig.subplots(1, 2), panels, r2s):
        if hexbin:
            hb = ax.hexbin(x, y, gridsize=70, bins="log", mincnt=1, cmap="viridis", linewidths=0, rasterized=True)
            fig.colorbar(hb, ax=ax, label="pairs per bin (log scale)", pad=0.01)
        else:
            ax.scatter(
                x,
                y,
                s=6,
                alpha=float(np.clip(np.sqrt(500 / x.size), 0.15, 0.8)),
                color=OKABE_ITO[0],
                linewidths=0,
                rasterized=True,
                label="pair of contexts",
            )
        xs = np.array([0.0, float(x.max())])
        if key == "beliefs":
            ax.plot(xs, xs, ls=":", color="0.45", lw=1.2, label="y = x")
        fit = _line(x, y)
        if fit is not None:
            a, b = fit
            sign = "−" if a < 0 else "+"
            ax.plot(xs, a + b * xs, color=OKABE_ITO[3], lw=2, label=f"least squares: y = {b:.3f} x {sign} {abs(a):.3g}")
        ax.set_xlim(0.0, float(x.max()) * 1.03 or 1.0)
        ax.set_ylim(0.0, float(y.max()) * 1.05 or 1.0)
        ax.set_xlabel("distance between probed beliefs")
        ax.set_ylabel(ylabel)
        subtitle = f"R² = {_fmt_r2(r2)}"
        if key in paper:
            subtitle += f"  (paper {float(paper[key]):.2f})"
        ax.set_title(f"{head}\n{subtitle}")
        ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
        ax.grid(alpha=0.3)
    set_suptitle(fig, title or f"Pairwise distances over {x.size:,} pairs of contexts", 12)
    if same_geometry:
        fig.supxlabel(SAME_GEOMETRY_NOTE.replace(", so ", ",\nso "), fontsize=8, color="0.25")
    return fig


def state_palette(n: int) -> np.ndarray:
    """[n, 3] qualitative colours, one per state (`figures._common.category_palette`: colour-blind safe up to
    10 states, then tab20, then tab20 + tab20b + tab20c cycled)."""
    return category_palette(n)


def _state_ids(labels, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct labels (sorted) and each row's index into them."""
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise FigureInputError(f"labels must have shape ({n},) (one state per row), got {labels.shape}")
    uniq, index = np.unique(labels, return_inverse=True)
    return uniq, index.reshape(-1)


def _group_means(values: np.ndarray, index: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(index, minlength=k).astype(np.float64)
    sums = [np.bincount(index, weights=values[:, j], minlength=k) for j in range(values.shape[1])]
    return np.stack(sums, axis=1) / counts[:, None]  # [k, S]


def plot_state_pca(
    true_beliefs,  # [n, S]
    predicted,  # [n, S] probe predictions of the same rows
    labels,  # [n] mixed-state id of each row
    *,
    title: str | None = None,
) -> Figure:
    """Mixed states in the first two principal components: true (left) and as the probe places them (right).

    The PCA is fitted (numpy SVD) on the distinct true states — the mean true belief of each
    label, each state counted once however often it occurs — and applied to both panels, with
    the same limits. One colour per state. Left: the true states (large markers). Right: each
    row's prediction (small, semi-transparent) and each state's mean prediction (large, black
    edge). Axis labels give each component's share of the true states' variance.
    """
    true = as_array("true_beliefs", true_beliefs, 2)
    pred = as_array("predicted", predicted, 2)
    same_shape("predicted", pred, "true_beliefs", true)
    n, n_dims = true.shape
    uniq, index = _state_ids(labels, n)
    k = uniq.size

    states = _group_means(true, index, k)  # [k, S]
    mean = states.mean(axis=0)
    _, sv, vt = np.linalg.svd(states - mean, full_matrices=False)
    axes = np.zeros((n_dims, 2))
    m = min(2, vt.shape[0])
    axes[:, :m] = vt[:m].T
    signs = np.sign(axes[np.argmax(np.abs(axes), axis=0), np.arange(2)])  # deterministic orientation
    axes *= np.where(signs == 0, 1.0, signs)
    var = np.zeros(2)
    total = float(np.sum(sv**2))
    if total > 0:
        var[:m] = sv[:m] ** 2 / total

    def project(b: np.ndarray) -> np.ndarray:
        return (b - mean) @ axes  # [., 2]

    true_xy, pred_xy, state_xy = project(true), project(pred), project(states)
    centre_xy = project(_group_means(pred, index, k))
    colors = state_palette(k)

    # limits: every true state and the bulk (0.5-99.5%) of the predictions, padded, shared by both panels
    if n >= 200:
        bulk = np.percentile(pred_xy, [0.5, 99.5], axis=0)
    else:
        bulk = np.stack([pred_xy.min(0), pred_xy.max(0)])
    lo = np.minimum.reduce([state_xy.min(0), centre_xy.min(0), bulk[0]])
    hi = np.maximum.reduce([state_xy.max(0), centre_xy.max(0), bulk[1]])
    span = np.maximum(hi - lo, 1e-9)
    pad = 0.07 * span.max()
    lo, hi = lo - pad, hi + pad

    big = float(np.clip(2400 / k, 40, 140))
    small = float(np.clip(2e4 / n, 1.0, 14.0))
    order = np.random.default_rng(0).permutation(n)
    # height from the data's aspect ratio: about equal units on both axes (PCA keeps distances)
    aspect = float((hi[1] - lo[1]) / (hi[0] - lo[0]))
    fig = new_figure(11.0, float(np.clip(4.6 * aspect, 2.5, 7.0)) + 1.4)
    left, right = fig.subplots(1, 2)
    left.scatter(true_xy[:, 0], true_xy[:, 1], s=small, c=colors[index], alpha=0.5, linewidths=0, rasterized=True)
    left.scatter(state_xy[:, 0], state_xy[:, 1], s=big, c=colors, marker="o", edgecolors="k", linewidths=0.8, zorder=3)
    left.set_title(f"True mixed states ({k})")
    right.scatter(
        pred_xy[order, 0],
        pred_xy[order, 1],
        s=small,
        c=colors[index[order]],
        alpha=float(np.clip(np.sqrt(2e3 / n), 0.15, 0.6)),
        linewidths=0,
        rasterized=True,
    )
    right.scatter(
        centre_xy[:, 0], centre_xy[:, 1], s=big, c=colors, marker="D", edgecolors="k", linewidths=0.8, zorder=3
    )
    right.scatter(
        state_xy[:, 0], state_xy[:, 1], s=big * 0.6, facecolors="none", edgecolors="0.25", linewidths=0.7, zorder=2
    )
    right.set_title("Probe predictions, same projection")
    handles = [
        Line2D([], [], ls="", marker="o", ms=9, mfc="0.7", mec="k", label="true state"),
        Line2D([], [], ls="", marker="o", ms=3, mfc="0.5", mec="none", alpha=0.6, label="prediction (one row)"),
        Line2D([], [], ls="", marker="D", ms=8, mfc="0.7", mec="k", label="mean prediction of a state"),
        Line2D([], [], ls="", marker="o", ms=7, mfc="none", mec="0.25", label="true state (outline, right)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9, frameon=False)
    for ax in (left, right):
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_xlabel(f"PC 1 ({100 * var[0]:.1f}% of variance)")
        ax.grid(alpha=0.3)
        ax.set_ylabel(f"PC 2 ({100 * var[1]:.1f}% of variance)")
    set_suptitle(fig, title or "Mixed states in the principal components of the true beliefs; one colour per state", 12)
    return fig
