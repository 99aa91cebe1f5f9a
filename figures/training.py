"""Training figures: loss per context position against the optimum, and loss over training.

Losses are cross-entropies in nats; relative loss = model CE / optimal CE (1.0 is Bayes-optimal).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from figures._common import FigureInputError, as_array, new_figure, same_shape


def plot_loss_by_position(loss_by_position, optimal_by_position, *, title: str | None = None) -> Figure:
    """Two stacked panels over context positions 1..T (tokens seen before the predicted one).

    Top: the model's cross-entropy and the optimal one (nats). Bottom: their ratio, with the
    optimum at 1. Position 1 is the hardest: one token says little about the hidden state.
    """
    loss = as_array("loss_by_position", loss_by_position, 1)
    opt = as_array("optimal_by_position", optimal_by_position, 1)
    same_shape("optimal_by_position", opt, "loss_by_position", loss)
    if np.any(opt <= 0):
        raise FigureInputError("optimal_by_position must be positive (a cross-entropy in nats)")
    pos = np.arange(1, loss.size + 1)

    fig = new_figure(6.0, 5.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    top.plot(pos, loss, "o-", color="C0", label="model")
    top.plot(pos, opt, "s--", color="k", mfc="none", label="optimal (Bayes)")
    top.set_ylabel("cross-entropy (nats)")
    top.set_title(title or "Loss by context position")
    top.legend()
    top.grid(alpha=0.3)

    rel = loss / opt
    bottom.axhline(1.0, color="k", ls="--", lw=1)
    bottom.plot(pos, rel, "o-", color="C0")
    bottom.set_ylabel("relative loss (model / optimal)")
    bottom.set_xlabel("context position (tokens seen)")
    bottom.set_xticks(pos if pos.size <= 20 else np.linspace(1, pos.size, 11).round())
    bottom.grid(alpha=0.3)
    bottom.ticklabel_format(axis="y", useOffset=False)
    return fig


def plot_training_curve(
    tokens,  # [m] tokens seen at each evaluation
    relative_loss,  # [m]
    *,
    loss=None,  # [m] or None, nats
    optimal_loss: float | None = None,  # nats
    title: str | None = None,
) -> Figure:
    """Relative loss against tokens seen (log x), with the optimum at 1.0.

    Panels: relative loss; the excess CE/optimal - 1 on log-log axes (where the last factor of
    ten of convergence is visible); and, if `loss` is given, the loss in nats with the optimum.
    Non-positive excess (evaluation noise below the optimum) is left out of the log panel.
    """
    tok = as_array("tokens", tokens, 1)
    rel = as_array("relative_loss", relative_loss, 1)
    same_shape("relative_loss", rel, "tokens", tok)
    if np.any(tok <= 0):
        raise FigureInputError("tokens must be positive (they are plotted on a log axis)")
    nats = None
    if loss is not None:
        nats = as_array("loss", loss, 1)
        same_shape("loss", nats, "tokens", tok)
    if optimal_loss is not None and not (np.isfinite(optimal_loss) and optimal_loss > 0):
        raise FigureInputError(f"optimal_loss must be a positive number of nats, got {optimal_loss}")

    n_panels = 2 if nats is None else 3
    fig = new_figure(4.6 * n_panels, 4.0)
    axes = fig.subplots(1, n_panels)

    ax = axes[0]
    ax.axhline(1.0, color="k", ls="--", lw=1, label="optimal")
    ax.plot(tok, rel, color="C0", label="model")
    ax.set_xscale("log")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("relative loss (CE / optimal CE)")
    ax.set_title("Relative loss")
    ax.annotate(f"final {rel[-1]:.5f}", xy=(0.97, 0.95), xycoords="axes fraction", ha="right", va="top")
    ax.legend(loc="center right")
    ax.grid(alpha=0.3, which="both")

    ax = axes[1]
    excess = rel - 1.0
    ok = excess > 0
    ax.plot(tok[ok], excess[ok], color="C0", marker="." if ok.sum() < 50 else None)
    ax.set_xscale("log")
    if ok.any():
        ax.set_yscale("log")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("excess loss (CE / optimal CE − 1)")
    ax.set_title("Excess over the optimum (log scale)")
    ax.grid(alpha=0.3, which="both")

    if nats is not None:
        ax = axes[2]
        ax.plot(tok, nats, color="C0", label="model")
        if optimal_loss is not None:
            ax.axhline(optimal_loss, color="k", ls="--", lw=1, label=f"optimal {optimal_loss:.4f}")
        ax.set_xscale("log")
        ax.set_xlabel("tokens seen")
        ax.set_ylabel("cross-entropy (nats)")
        ax.set_title("Loss")
        ax.legend()
        ax.grid(alpha=0.3, which="both")

    if title:
        fig.suptitle(title)
    return fig
