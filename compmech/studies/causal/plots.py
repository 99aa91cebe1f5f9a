"""The causal study's figures: the per-layer effects of steering and ablation, and steered outputs in the simplex of
next tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from figures._common import FigureInputError, as_array, new_figure, set_suptitle

SQRT3_2 = float(np.sqrt(3.0) / 2)


def _errorbar(ax, x, estimates, label: str, color: str, marker: str, offset: float) -> None:
    means = [e.mean for e in estimates]
    errs = [0.0 if not np.isfinite(e.stderr) else e.stderr for e in estimates]
    ax.errorbar(np.asarray(x) + offset, means, yerr=errs, label=label, color=color, marker=marker, capsize=3, lw=1.4)


def plot_causal_layers(record: Any, *, title: str | None = None) -> Figure:
    """Panels over the layers of a `CausalRecord`: for each steering method, the fraction of the KL closed toward each
    target kind beside the same-norm random and orthogonal-complement controls (toward the first kind); then the loss
    with each method's subspace ablated (mean, resample) beside random subspaces of the same dimension, the clean
    model, the optimal loss and the order-0 / order-1 predictors' exact losses."""
    layers = [lr.layer for lr in record.layers]
    if not layers:
        raise FigureInputError("the record has no layers")
    x = np.arange(len(layers))
    first = record.layers[0].steering[0]
    pos = first.position
    methods = list(dict.fromkeys(s.method for s in record.layers[0].steering))
    kinds = list(dict.fromkeys(s.target for s in record.layers[0].steering))
    fig = new_figure(5.0 * (len(methods) + 1) + 2.0, 4.6)
    axes = fig.subplots(1, len(methods) + 1)
    colors = {"contexts": "#1f77b4", "vertices": "#9467bd"}

    def pick(lr, method, kind):
        return next(s for s in lr.steering if s.method == method and s.target == kind and s.position == pos)

    lo = 0.0
    for ax, method in zip(axes, methods):
        for i, kind in enumerate(kinds):
            est = [pick(lr, method, kind).closed for lr in record.layers]
            _errorbar(ax, x, est, f"{method} delta → {kind}", colors.get(kind, "C0"), "o", -0.08 + 0.05 * i)
        rand = [pick(lr, method, kinds[0]).closed_random for lr in record.layers]
        comp = [pick(lr, method, kinds[0]).closed_complement for lr in record.layers]
        _errorbar(ax, x, rand, "random direction (same norm)", "#7f7f7f", "s", 0.04)
        _errorbar(ax, x, comp, "orthogonal complement (same norm)", "#ff7f0e", "^", 0.09)
        lo = min(lo, *(e.mean for e in rand + comp))
        ax.axhline(1.0, color="k", lw=0.6, ls=":")
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set_xticks(x, layers, rotation=30)
        ax.set_ylabel("fraction of KL to target law closed")
        ax.set_title(f"steering with the {method} delta at position {pos}", fontsize=10)
        ax.legend(fontsize=7, loc="best")
    for ax in axes[:-1]:
        ax.set_ylim(min(-0.1, lo - 0.05), 1.1)
    ax2 = axes[-1]
    styles = {"probe": ("#d62728", "#e377c2"), "encoding": ("#8c564b", "#17becf")}
    for j, method in enumerate(methods):
        ab = [next(a for a in lr.ablation if a.method == method) for lr in record.layers]
        c1, c2 = styles.get(method, ("C3", "C4"))
        _errorbar(ax2, x, [a.mean_belief for a in ab], f"{method} subspace, mean-ablated", c1, "o", -0.1 + 0.04 * j)
        _errorbar(ax2, x, [a.resample_belief for a in ab], f"{method} subspace, resampled", c2, "D", -0.02 + 0.04 * j)
    ab0 = [lr.ablation[0] for lr in record.layers]
    _errorbar(ax2, x, [a.mean_random for a in ab0], "random subspace, mean-ablated", "#7f7f7f", "s", 0.06)
    _errorbar(ax2, x, [a.resample_random for a in ab0], "random subspace, resampled", "#bcbd22", "^", 0.1)
    _errorbar(ax2, x, [a.clean for a in ab0], "clean model", "#2ca02c", ".", 0.0)
    b = record.baselines
    for value, label, style in (
        (record.optimal_loss, "optimal (exact)", "-"),
        (b.order1, "order-1 predictor (exact)", "--"),
        (b.order0, "order-0 predictor (exact)", ":"),
    ):
        ax2.axhline(value, color="k", lw=0.9, ls=style, label=label)
    ax2.set_xticks(x, layers, rotation=30)
    ax2.set_ylabel("cross-entropy (nats / token)")
    ax2.set_title(f"ablating a {ab0[0].dim}-dim subspace at every position", fontsize=10)
    ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        set_suptitle(fig, f"{title}: causal interventions along the belief subspace")
    return fig


def simplex_xy(p: np.ndarray) -> np.ndarray:
    """Points of the 2-simplex [..., 3] (renormalised) -> plane coordinates [..., 2] of an equilateral triangle with
    token 0 at (0, 0), token 1 at (1, 0) and token 2 at (1/2, sqrt(3)/2)."""
    p = np.asarray(p, np.float64)
    p = p / p.sum(axis=-1, keepdims=True)
    return np.stack([p[..., 1] + 0.5 * p[..., 2], SQRT3_2 * p[..., 2]], axis=-1)


def plot_steered_simplex(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray]],  # (layer, target laws [n, >=3], steered outputs [n, >=3])
    *,
    columns: int = 3,
    target_kind: str = "contexts",
    max_lines: int = 60,
    title: str | None = None,
) -> Figure:
    """One panel per layer: the model's next-token distributions after steering (dots) beside the exact target laws
    (rings), in the simplex of the first three tokens (a start token's column, if any, is dropped and the rest
    renormalised), with a segment from each target to its steered output for the first ``max_lines`` pairs."""
    if not panels:
        raise FigureInputError("panels must be a non-empty list of (layer, targets, steered)")
    n = len(panels)
    cols = max(1, min(n, int(columns)))
    rows = (n + cols - 1) // cols
    fig = new_figure(3.4 * cols, 3.3 * rows + (0.5 if title else 0))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    corners = simplex_xy(np.eye(3))
    for ax, (layer, targets, steered) in zip(axes, panels):
        t = simplex_xy(as_array("targets", targets, 2)[:, :3])
        s = simplex_xy(as_array("steered", steered, 2)[:, :3])
        ax.plot(*np.vstack([corners, corners[:1]]).T, color="k", lw=0.8)
        for i in range(min(max_lines, len(t))):
            ax.plot([t[i, 0], s[i, 0]], [t[i, 1], s[i, 1]], color="#999999", lw=0.4, zorder=1)
        ax.scatter(
            t[:, 0], t[:, 1], s=22, facecolors="none", edgecolors="#1f77b4", lw=0.7, label="target law", zorder=2
        )
        ax.scatter(s[:, 0], s[:, 1], s=5, color="#d62728", label="steered model", zorder=3)
        for k, (cx, cy) in enumerate(corners):
            ax.text(cx, cy + (0.04 if k == 2 else -0.07), f"token {k}", ha="center", fontsize=7)
        ax.set_title(layer, fontsize=9)
        ax.set_aspect("equal")
        ax.set_xlim(-0.08, 1.08)
        ax.set_ylim(-0.12, SQRT3_2 + 0.1)
        ax.axis("off")
    for ax in axes[n:]:
        ax.axis("off")
    axes[0].legend(fontsize=7, loc="upper left")
    if title:
        set_suptitle(fig, f"{title}: next-token laws after steering toward {target_kind}")
    return fig
