"""The sweep's figure (arrays in, a figure out): per process and architecture, the loss over the floor beside the
order-k predictors', the probe beside the order-k ceilings and the untrained model, and the norm-shuffled control."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from figures._common import FigureInputError, new_figure, set_suptitle

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
_STYLES = ("--", ":", "-.")


def _grid(name: str, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != shape:
        raise FigureInputError(f"{name} has shape {arr.shape}; it must be {shape} (processes x columns)")
    return arr


def plot_quantum_sweep(
    processes: Sequence[str],  # [P] x-axis labels (e.g. "β = 2.25", "post_quantum")
    kinds: Sequence[str],  # [K] the architectures
    excess: np.ndarray,  # [P, K] the model's exact loss over the floor, minus 1 (NaN: no run)
    order_excess: np.ndarray,  # [P, O] each order-k predictor's loss over the floor, minus 1
    orders: Sequence[int],  # [O]
    r2: np.ndarray,  # [P, K] held-out R² onto the true beliefs
    r2_untrained: np.ndarray,  # [P, K] the untrained model's
    ceilings: np.ndarray,  # [P, O] the order-k ceilings (R²)
    r2_unnormalized: np.ndarray,  # [P, K] held-out R² onto the unnormalised beliefs
    r2_norm_shuffled: np.ndarray,  # [P, K] onto the norm-shuffled ones
    *,
    title: str | None = None,
) -> Figure:
    """Three panels over the processes. Top: loss over the floor (log scale) of each architecture (markers) and of the
    order-k predictors (black lines): a model below the order-k line uses more than the last k tokens. Middle:
    held-out R² onto the true beliefs (filled: trained, hollow: untrained) with the order-k ceilings (black lines):
    above a ceiling, the probe reads more of the belief than any function of the last k tokens holds. Bottom: held-out
    R² onto the unnormalised beliefs (filled) and onto the norm-shuffled ones (crosses)."""
    P, K, O = len(processes), len(kinds), len(orders)
    if P == 0 or K == 0 or O == 0:
        raise FigureInputError("need at least one process, one architecture and one order")
    excess = _grid("excess", excess, (P, K))
    order_excess = _grid("order_excess", order_excess, (P, O))
    r2 = _grid("r2", r2, (P, K))
    r2_untrained = _grid("r2_untrained", r2_untrained, (P, K))
    ceilings = _grid("ceilings", ceilings, (P, O))
    unnorm = _grid("r2_unnormalized", r2_unnormalized, (P, K))
    shuffled = _grid("r2_norm_shuffled", r2_norm_shuffled, (P, K))
    fig = new_figure(max(7.5, 1.1 * P + 2.5), 10.0 if title else 9.6)
    top, mid, bottom = fig.subplots(3, 1, sharex=True)
    x = np.arange(P)
    offsets = (np.arange(K) - (K - 1) / 2) * min(0.14, 0.7 / K)

    half = 0.42  # each process's order-k value: a short segment across its column (processes are not a continuum)
    for i, k in enumerate(orders):
        style = _STYLES[i % len(_STYLES)]
        top.hlines(order_excess[:, i], x - half, x + half, colors="black", linestyles=style, lw=1.1, label=f"order-{k}")
        mid.hlines(
            ceilings[:, i], x - half, x + half, colors="black", linestyles=style, lw=1.1, label=f"order-{k} ceiling"
        )
    for j, kind in enumerate(kinds):
        c = _COLORS[j % len(_COLORS)]
        top.scatter(x + offsets[j], excess[:, j], color=c, s=28, zorder=3, label=kind)
        mid.scatter(x + offsets[j], r2[:, j], color=c, s=28, zorder=3, label=f"{kind}")
        mid.scatter(x + offsets[j], r2_untrained[:, j], facecolors="none", edgecolors=c, s=28, zorder=3)
        bottom.scatter(x + offsets[j], unnorm[:, j], color=c, s=28, zorder=3, label=f"{kind}: unnormalised")
        bottom.scatter(x + offsets[j], shuffled[:, j], color=c, marker="x", s=30, zorder=3, label=f"{kind}: shuffled")
    mid.scatter([], [], facecolors="none", edgecolors="0.3", s=28, label="untrained (hollow)")
    positive = np.concatenate([excess[np.isfinite(excess) & (excess > 0)], order_excess[order_excess > 0]])
    if positive.size:
        top.set_yscale("log")
        top.set_ylim(positive.min() / 2, positive.max() * 2)
    top.set_ylabel("loss / floor − 1")
    top.set_title("exact loss over the floor: architectures (dots) and order-k predictors (lines)", fontsize=9)
    mid.set_ylabel("R² held out")
    mid.set_title("probe onto the true beliefs: trained (filled), untrained (hollow), order-k ceilings", fontsize=9)
    bottom.set_ylabel("R² held out")
    bottom.set_title("unnormalised beliefs (dots) and their norm-shuffled control (crosses)", fontsize=9)
    for ax in (mid, bottom):
        finite = np.concatenate([a[np.isfinite(a)] for a in (r2, r2_untrained, ceilings, unnorm, shuffled)] + [[0.0]])
        ax.set_ylim(max(-0.1, min(0.0, float(finite.min())) - 0.05), 1.05)
        ax.axhline(0.0, color="0.6", lw=0.6)
    for ax in (top, mid, bottom):
        for edge in x[:-1] + 0.5:
            ax.axvline(edge, color="0.85", lw=0.6)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    bottom.set_xticks(x, list(processes), fontsize=8)
    if title:
        set_suptitle(fig, title, 11)
    return fig
