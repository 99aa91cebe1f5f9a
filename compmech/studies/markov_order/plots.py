"""The order-k controls' figure: held-out R² per probe target beside its controls, and the exact losses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from figures._common import FigureInputError, new_figure, set_suptitle


def _values(name: str, values: Sequence[float | None], n: int) -> np.ndarray:
    if len(values) != n:
        raise FigureInputError(f"{name} needs one value per target ({n}); got {len(values)}")
    return np.array([np.nan if v is None else float(v) for v in values])


def plot_markov_order(
    targets: Sequence[str],  # probe targets: "true beliefs", "order-1 states", "order-1 words", ...
    r2_trained: Sequence[float | None],  # [targets] held-out R² of the trained model's probe
    r2_untrained: Sequence[float | None],  # [targets] the untrained model's
    r2_shuffled: Sequence[float | None],  # [targets] the held-out shuffled control's
    predictors: Sequence[str],  # loss panel: "order-0", "order-1", ..., "model" (the optimum is drawn as a line)
    losses: Sequence[float],  # [predictors] nats per token
    optimal: float,  # the optimal predictor's nats per token
    *,
    ceilings: Sequence[tuple[str, float]] = (),  # (label, R²): the order-k ceilings, drawn over the first target
    title: str | None = None,
) -> Figure:
    """Left: grouped bars of held-out R² per target (trained, untrained, shuffled control; missing values left out),
    with the order-k ceilings (the best any function of the last k tokens reads of the true beliefs) marked over the
    first group, the true beliefs. Right: cross-entropy per token of each predictor, with the optimum as a dashed line
    (the axis starts just below the optimum, so the excess is visible)."""
    n = len(targets)
    if n == 0 or len(predictors) != len(losses) or not predictors:
        raise FigureInputError("need at least one target, and one loss per predictor")
    trained = _values("r2_trained", r2_trained, n)
    untrained = _values("r2_untrained", r2_untrained, n)
    shuffled = _values("r2_shuffled", r2_shuffled, n)
    fig = new_figure(11.0, 4.4 if title else 4.0)
    left, right = fig.subplots(1, 2, width_ratios=[1.6, 1.0])
    x = np.arange(n)
    width = 0.27
    for offset, values, label, color in (
        (-width, trained, "trained", "tab:blue"),
        (0.0, untrained, "untrained", "tab:gray"),
        (width, shuffled, "shuffled control", "tab:red"),
    ):
        left.bar(x + offset, np.nan_to_num(values, nan=0.0), width, label=label, color=color)
    styles = ["--", ":", "-."]
    for i, (label, value) in enumerate(ceilings):
        left.hlines(
            value, -1.6 * width, 1.6 * width, colors="black", linestyles=styles[i % 3], linewidth=1.2, label=label
        )
    left.set_xticks(x, [t.replace(" ", "\n", 1) for t in targets], fontsize=8)
    low = float(np.nanmin(np.concatenate([trained, untrained, shuffled, [0.0]])))
    left.set_ylim(min(low - 0.05, 0.0), 1.05)
    left.axhline(0.0, color="black", linewidth=0.6)
    left.set_ylabel("R² on held-out contexts")
    left.set_title("probes onto the true beliefs and the order-k controls", fontsize=10)
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    values = np.asarray(losses, dtype=np.float64)
    y = np.arange(len(predictors))
    right.barh(y, values, color=["tab:blue" if p == "model" else "tab:olive" for p in predictors])
    right.axvline(optimal, color="black", linestyle="--", linewidth=1.0, label=f"optimal {optimal:.4f}")
    for yi, v in zip(y, values):
        right.text(v, yi, f" {v:.4f}", va="center", fontsize=8)
    span = float(values.max() - optimal)
    right.set_xlim(optimal - 0.15 * max(span, 1e-6), float(values.max()) + 0.35 * max(span, 1e-6))
    right.set_yticks(y, list(predictors), fontsize=8)
    right.invert_yaxis()
    right.set_xlabel("cross-entropy (nats / token)")
    right.set_title("what seeing only the last k tokens costs", fontsize=10)
    right.legend(fontsize=8, loc="lower right")
    if title:
        set_suptitle(fig, title, 11)
    return fig
