"""Training figures: the excess loss per context position, and the loss over training.

Losses are cross-entropies in nats; relative loss = model CE / optimal CE (1.0 is Bayes-optimal),
excess = CE − optimal CE. Near convergence model and optimum agree to a part in a thousand, so
the figures show the difference, which is where the information is.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from figures._common import OKABE_ITO, FigureInputError, as_array, new_figure, same_shape, token_axis, wrap_title

BLUE = OKABE_ITO[0]


def plot_loss_by_position(
    loss_by_position, optimal_by_position, *, title: str | None = None, start_token: bool = False
) -> Figure:
    """Two stacked panels over context positions 1..T (tokens seen before the predicted one; 0..T-1
    with a ``start_token``, whose position has seen none and predicts the first token).

    Top (small): the model's and the optimal cross-entropy in nats, the scale the excess is
    judged against (they coincide near convergence). Bottom: the excess loss, model − optimum,
    in millinats (1e-3 nats); 0 is Bayes-optimal. Position 1 is the hardest
    for the optimum: one token says little about the hidden state.
    """
    loss = as_array("loss_by_position", loss_by_position, 1)
    opt = as_array("optimal_by_position", optimal_by_position, 1)
    same_shape("optimal_by_position", opt, "loss_by_position", loss)
    if np.any(opt <= 0):
        raise FigureInputError("optimal_by_position must be positive (a cross-entropy in nats)")
    pos = np.arange(loss.size) + (0 if start_token else 1)

    fig = new_figure(7.5, 5.4)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1, 2.2])
    # the optimum a thin line with open squares, the model filled dots drawn above it: where they coincide
    # (near convergence) the model's dot sits inside the optimum's square, both visible
    top.plot(
        pos,
        opt,
        "s-",
        color="k",
        lw=1,
        ms=6.5,
        mfc="none",
        mew=0.9,
        zorder=2,
        label="optimum (Bayes: entropy of the next token)",
    )
    top.plot(pos, loss, "o", color=BLUE, ms=3.2, zorder=3, label="model")
    top.set_ylabel("CE (nats)")
    top.set_title(wrap_title(fig, title or "Loss by context position", 10), fontsize=10)
    top.legend(fontsize=8, loc="upper right")
    top.grid(alpha=0.3)

    excess = 1e3 * (loss - opt)  # [T] millinats
    bottom.axhline(0.0, color="k", ls="--", lw=1, label="optimum")
    bottom.plot(pos, excess, "o-", color=BLUE, label="model − optimum", zorder=3)
    bottom.set_ylabel("excess loss (millinats)")
    bottom.set_xlabel(
        "context position (tokens seen; 0 = only the start token)" if start_token else "context position (tokens seen)"
    )
    bottom.set_xticks(pos if pos.size <= 20 else np.linspace(pos[0], pos[-1], 11).round())
    bottom.grid(alpha=0.3)
    bottom.legend(fontsize=8, loc="best")
    return fig


def plot_training_curve(
    tokens,  # [m] tokens seen at each evaluation (0 allowed: the evaluation before training)
    relative_loss,  # [m] exact validation CE / optimal CE
    *,
    train_relative=None,  # [m] or None: the training batches' loss / optimal CE, drawn as a light line
    title: str | None = None,
) -> Figure:
    """One panel: the excess relative loss (CE / optimal CE − 1) on a log axis against tokens seen.

    The x axis is logarithmic in tokens, with the evaluation before training (0 tokens) at its
    left end, so early training and the last factor of ten of convergence are both visible. The
    training loss (noisy, sampled batches) is a light line; its points at or below the optimum
    cannot sit on a log axis and are left out (their number is in the legend).
    """
    tok = as_array("tokens", tokens, 1)
    rel = as_array("relative_loss", relative_loss, 1)
    same_shape("relative_loss", rel, "tokens", tok)
    if np.any(tok < 0):
        raise FigureInputError("tokens must be non-negative (tokens seen at each evaluation)")
    if not np.any(tok > 0):
        raise FigureInputError("tokens must include an evaluation after training started (tokens > 0)")
    if np.any(rel <= 0):
        raise FigureInputError("relative_loss must be positive (CE / optimal CE)")
    train = None
    if train_relative is not None:
        train = as_array("train_relative", train_relative, 1, finite=False)
        same_shape("train_relative", train, "tokens", tok)

    order = np.argsort(tok, kind="stable")
    tok, rel = tok[order], rel[order]
    fig = new_figure(7.8, 4.6)
    ax = fig.subplots()
    if train is not None:
        train = train[order]
        ok = np.isfinite(train) & (train > 1.0)
        dropped = int((np.isfinite(train) & (train <= 1.0)).sum())
        label = "training batches" + (f" ({dropped} at or below the optimum not shown)" if dropped else "")
        if ok.any():
            ax.plot(
                tok[ok],
                train[ok] - 1.0,
                color=BLUE,
                alpha=0.35,
                lw=1,
                label=label,
                marker="." if ok.sum() < 30 else None,
            )
    excess = rel - 1.0
    ok = excess > 0
    marker = "o" if tok.size <= 60 else None
    below = int((~ok).sum())
    ax.plot(
        tok[ok],
        excess[ok],
        color=BLUE,
        marker=marker,
        ms=3,
        lw=1.6,
        label="exact validation loss" + (f" ({below} at or below the optimum not shown)" if below else ""),
    )
    token_axis(ax, tok, zero=True)
    ax.set_yscale("log")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("relative loss − 1   (CE / optimal CE − 1)")
    ax.set_title(wrap_title(fig, title or "Loss over training", 12))
    ax.annotate(
        f"final relative loss {rel[-1]:.5f}",
        xy=(0.98, 0.97),
        xycoords="axes fraction",
        ha="right",
        va="top",
        fontsize=9,
    )
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3, which="major")
    ax.grid(alpha=0.1, which="minor", axis="y")
    return fig
