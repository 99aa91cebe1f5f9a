"""Probe error by layer: in-sample, held-out and shuffled-control MSE side by side (log scale)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from figures._common import FigureInputError, new_figure

# (key in each result record, legend label, colour)
_BARS = (
    ("mse", "in-sample", "C0"),
    ("mse_heldout", "held-out groups", "C1"),
    ("mse_shuffled", "shuffled-target control", "0.6"),
)


def _record(name: str, value) -> Mapping[str, float]:
    """A result record as a mapping; objects with a `to_dict()` method (probe results) are accepted."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if not isinstance(value, Mapping):
        raise FigureInputError(f"results[{name!r}] must be a mapping of metric name -> float, got {type(value).__name__}")
    return value


def _number(value) -> float:
    """A metric as a float; missing (None) becomes NaN and is not drawn."""
    return np.nan if value is None else float(value)


def plot_layer_mse(
    results: Mapping[str, Mapping[str, float]],  # layer -> {"mse", "mse_heldout", "mse_shuffled", ...}
    *,
    paper: Mapping[str, float] | None = None,  # layer -> the paper's in-sample MSE
    title: str | None = None,
) -> Figure:
    """Grouped bars per layer (in the order given) of in-sample, held-out and shuffled MSE.

    Missing metrics are left out; "mse_heldout_std", if present, is drawn as an error bar.
    The y axis is logarithmic: a good probe sits orders of magnitude below its control.
    `paper` adds black markers at the paper's values for the layers it names.
    """
    if not results:
        raise FigureInputError("results is empty; pass {layer name: probe result dict}")
    records = {name: _record(name, value) for name, value in results.items()}
    names = list(records)
    x = np.arange(len(names))
    width = 0.26
    positive: list[float] = []  # every plotted value > 0, for the y limits

    fig = new_figure(max(5.0, 1.25 * len(names) + 2.0), 4.4)
    ax = fig.subplots()
    for j, (key, label, color) in enumerate(_BARS):
        vals = np.array([_number(records[n].get(key)) for n in names])
        if np.all(np.isnan(vals)):
            continue
        if np.any(vals < 0):
            raise FigureInputError(f"results has a negative {key!r}; MSEs are non-negative")
        err = None
        if key == "mse_heldout":
            err = np.nan_to_num([_number(records[n].get("mse_heldout_std")) for n in names])
        positive += [v for v in vals if np.isfinite(v) and v > 0]
        xs = x + (j - 1) * width
        ax.bar(xs, vals, width, yerr=err, color=color, label=label, capsize=2,
               error_kw=dict(lw=0.8))
        if key == "mse":
            for xi, v in zip(xs, vals):
                if np.isfinite(v) and v > 0:
                    ax.annotate(f"{v:.2g}", (xi, v), xytext=(0, 2), textcoords="offset points",
                                ha="center", va="bottom", fontsize=7)

    if paper:
        px = [x[names.index(n)] - width for n in paper if n in names]
        py = [float(paper[n]) for n in paper if n in names]
        positive += [v for v in py if v > 0]
        if px:
            ax.scatter(px, py, marker="_", s=300, linewidths=2.2, color="k", zorder=3,
                       label="paper (in-sample)")

    ax.set_yscale("log", nonpositive="clip")
    if positive:  # room below the smallest bar and above the largest for its label
        ax.set_ylim(min(positive) / 3.0, max(positive) * 2.0)
    ax.set_xticks(x, names, rotation=30 if len(names) > 6 else 0)
    ax.set_xlabel("layer")
    ax.set_ylabel("MSE (log scale)")
    ax.set_title(title or "Linear probe MSE by layer")
    ax.grid(axis="y", alpha=0.3, which="both")
    fig.legend(loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    return fig
