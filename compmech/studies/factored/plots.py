"""Factored geometry: the cumulative explained variance of a set of activations against the two predicted dimensions."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from figures._common import FigureInputError, as_array, new_figure, set_suptitle


def plot_explained_variance(
    curves: Sequence[np.ndarray],  # each [D_i] cumulative explained variance (checkpoints first, final last)
    labels: Sequence[str],  # one per curve
    *,
    dim_factored: int,  # sum(d_k - 1)
    dim_joint: int,  # prod(d_k) - 1
    untrained: np.ndarray | None = None,  # [D] the untrained model's curve
    truth: np.ndarray | None = None,  # [D] the true joint beliefs' curve
    factor_truth: np.ndarray | None = None,  # [D] the true factor beliefs' curve (side by side)
    title: str | None = None,
    max_components: int | None = None,
) -> Figure:
    """Cumulative explained variance against the number of principal components, one curve per checkpoint
    (light to dark, the last bold), with the factored and joint dimensions marked (the two hypotheses: a
    factored representation needs ``dim_factored`` components, a joint one ``dim_joint``) and 95% as a guide; the
    true joint and factor beliefs' own curves (``truth``, ``factor_truth``) show the counts each needs per share."""
    if not curves or len(curves) != len(labels):
        raise FigureInputError("curves and labels must be non-empty lists of the same length")
    arrays = [as_array(f"curves[{i}]", c, 1) for i, c in enumerate(curves)]
    for extra, name in ((untrained, "untrained"), (truth, "truth"), (factor_truth, "factor_truth")):
        if extra is not None:
            as_array(name, extra, 1)
    if int(dim_factored) < 1 or int(dim_joint) < int(dim_factored):
        raise FigureInputError(f"need 1 <= dim_factored <= dim_joint; got {dim_factored}, {dim_joint}")
    top = max_components or int(min(max(len(a) for a in arrays), max(2 * dim_joint, dim_factored + 6, 12)))
    fig = new_figure(7.2, 4.4 if title else 4.0)
    ax = fig.subplots()
    cmap = mpl.colormaps["viridis"]
    n = len(arrays)
    for i, (c, label) in enumerate(zip(arrays, labels)):
        last = i == n - 1
        k = np.arange(1, min(len(c), top) + 1)
        ax.plot(
            k,
            c[: len(k)],
            color=cmap(0.15 + 0.7 * i / max(n - 1, 1)) if not last else "black",
            lw=2.2 if last else 1.1,
            marker="o" if last else None,
            ms=3,
            label=label,
            zorder=3 if last else 2,
        )
    if untrained is not None:
        k = np.arange(1, min(len(untrained), top) + 1)
        ax.plot(k, np.asarray(untrained)[: len(k)], color="0.6", lw=1.4, label="untrained model")
    if truth is not None:
        k = np.arange(1, min(len(truth), top) + 1)
        ax.plot(k, np.asarray(truth)[: len(k)], color="tab:red", lw=1.2, ls=":", label="true joint beliefs")
    if factor_truth is not None:
        k = np.arange(1, min(len(factor_truth), top) + 1)
        ax.plot(k, np.asarray(factor_truth)[: len(k)], color="tab:blue", lw=1.2, ls=":", label="true factor beliefs")
    for dim, text, color in ((dim_factored, "factored", "tab:blue"), (dim_joint, "joint", "tab:red")):
        if dim <= top:
            ax.axvline(dim, color=color, ls="--", lw=1.0)
            ax.text(
                dim,
                0.02,
                f" {text}: {dim}",
                color=color,
                fontsize=8,
                rotation=90,
                va="bottom",
                ha="right",
                transform=ax.get_xaxis_transform(),
            )
        else:
            ax.text(
                0.99,
                0.03,
                f"{text} dimension {dim} (off the axis)",
                color=color,
                fontsize=8,
                ha="right",
                transform=ax.transAxes,
            )
    ax.axhline(0.95, color="0.5", lw=0.7, ls=":")
    ax.set_xlim(0.5, top + 0.5)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("principal components")
    ax.set_ylabel("cumulative explained variance")
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7, loc="lower right", ncol=2 if n > 5 else 1, framealpha=0.9)
    if title:
        set_suptitle(fig, title, 11)
    return fig


def plot_dimension_over_training(
    tokens: Sequence[float],  # [C] tokens seen at each checkpoint (the final model last)
    components: np.ndarray,  # [C] components the activations need for `share` of the variance
    participation: np.ndarray,  # [C] the participation ratio of the activations' spectrum
    *,
    share: str,  # the variance share of ``components``, e.g. "0.95"
    dim_factored: int,  # sum(d_k - 1)
    dim_joint: int,  # prod(d_k) - 1
    joint_belief_dim: int | None = None,  # the true joint beliefs' own affine dimension, if it differs
    truth_counts: tuple[int, int] | None = None,  # (true factor beliefs', true joint beliefs') counts for `share`
    overlaps: dict[str, np.ndarray] | None = None,  # pair "i-j" -> [C] the authors' subspace overlap
    nulls: dict[str, tuple[float, float]] | None = None,  # pair -> (mean, 95th percentile) of random subspaces
    untrained: tuple[float, dict[str, float]] | None = None,  # (untrained count for `share`, pair -> its overlap)
    title: str | None = None,
) -> Figure:
    """Left: the activations' effective dimension over training (components for a share of the variance, and the
    participation ratio) against the factored prediction sum(d_k - 1) and the joint one prod(d_k) - 1 (and the true
    beliefs' own counts for the same share, like with like). Right: each pair of factors' subspace overlap over
    training beside its null, random subspaces of the same dimensions (mean and 95th percentile)."""
    t = as_array("tokens", tokens, 1)
    c = as_array("components", components, 1)
    pr = as_array("participation", participation, 1)
    if not (len(t) == len(c) == len(pr)) or len(t) < 1:
        raise FigureInputError(
            f"tokens, components and participation need one entry per checkpoint; got {len(t)}, {len(c)}, {len(pr)}"
        )
    fig = new_figure(11.0, 4.4 if title else 4.0)
    ax, bx = fig.subplots(1, 2)
    ax.plot(t, c, "o-", color="black", lw=1.8, ms=4, label=f"activations: components for {float(share):.0%}")
    ax.plot(t, pr, "s--", color="0.35", lw=1.2, ms=3, label="activations: participation ratio")
    ax.axhline(dim_factored, color="tab:blue", ls="--", lw=1.1, label=f"factored: sum(d_k - 1) = {dim_factored}")
    ax.axhline(dim_joint, color="tab:red", ls="--", lw=1.1, label=f"joint: prod(d_k) - 1 = {dim_joint}")
    if joint_belief_dim is not None and joint_belief_dim != dim_joint:
        ax.axhline(joint_belief_dim, color="tab:red", ls="-.", lw=1.0, label=f"joint beliefs' rank: {joint_belief_dim}")
    if truth_counts is not None:
        f, j = truth_counts
        ax.axhline(f, color="tab:blue", ls=":", lw=1.0, label=f"true factor beliefs, {float(share):.0%}: {f}")
        ax.axhline(j, color="tab:red", ls=":", lw=1.0, label=f"true joint beliefs, {float(share):.0%}: {j}")
    t0 = float(t[0]) / 4  # the untrained model, left of the first checkpoint
    if untrained is not None:
        ax.scatter([t0], [untrained[0]], marker="x", color="0.4", zorder=4, label=f"untrained model: {untrained[0]:g}")
    ax.set_xscale("log")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("dimensions")
    top = max(dim_joint, float(np.max(c)), float(np.max(pr)), untrained[0] if untrained is not None else 0.0)
    ax.set_ylim(0, top * 1.35 + 0.5)  # room for the legend above the curves
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7, loc="upper right", framealpha=0.9)
    ax.set_title("effective dimension of the activations", fontsize=10)
    cmap = mpl.colormaps["tab10"]
    for n, (pair, values) in enumerate(sorted((overlaps or {}).items())):
        color = cmap(n % 10)
        v = as_array(f"overlaps[{pair}]", values, 1)
        bx.plot(t[: len(v)], v, "o-", color=color, lw=1.5, ms=4, label=f"factors {pair}")
        if nulls and pair in nulls:
            mean, q95 = nulls[pair]
            bx.axhspan(0, q95, color=color, alpha=0.08)
            bx.axhline(mean, color=color, ls=":", lw=1.0)
        if untrained is not None and pair in untrained[1]:
            bx.scatter([t0], [untrained[1][pair]], marker="x", color=color, zorder=4)
    if nulls:
        bx.fill_between([], [], color="0.5", alpha=0.15, label="random subspaces: to the 95th percentile")
        bx.plot([], [], color="0.5", ls=":", label="random subspaces: mean")
    if untrained is not None:
        bx.scatter([], [], marker="x", color="0.4", label="untrained model")
    bx.set_xscale("log")
    bx.set_ylim(0, 1.02)
    bx.set_xlabel("tokens seen")
    bx.set_ylabel("subspace overlap (0 orthogonal, 1 nested)")
    bx.grid(alpha=0.25)
    bx.legend(fontsize=7, loc="upper right", framealpha=0.9)
    bx.set_title("overlap of the factors' probe subspaces (the authors' score)", fontsize=10)
    if title:
        set_suptitle(fig, title, 11)
    return fig
