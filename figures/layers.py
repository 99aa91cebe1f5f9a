"""Probe error by layer: in-sample and held-out MSE side by side (log scale), the shuffled control apart.

Held-out errors come in two protocols (probe.json): ``mse_heldout_contexts`` — fit on some
distinct contexts, scored on the others, so no test row's context was seen in the fit — and
``mse_heldout`` — the paper's protocol, a split by strings with all positions pooled, which puts
most test contexts (every short prefix) into the fit too. Either may be null with a note.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from figures._common import FigureInputError, new_figure

# (key in each result record, key of its standard deviation, legend label, colour)
_BARS = (
    ("mse", None, "in-sample", "C0"),
    ("mse_heldout_contexts", "mse_heldout_contexts_std", "held-out contexts (never seen in the fit)", "C1"),
    ("mse_heldout", "mse_heldout_std", "held-out strings (paper's protocol)", "#f2c58f"),
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


def _paper_points(name: str, paper: Mapping[str, float] | None, names: list[str]) -> dict[str, float]:
    if not paper:
        return {}
    out = {}
    for layer, value in paper.items():
        if layer in names:
            v = float(value)
            if not v > 0:
                raise FigureInputError(f"{name}[{layer!r}] must be a positive MSE, got {value!r}")
            out[layer] = v
    return out


def plot_layer_mse(
    results: Mapping[str, Mapping[str, float]],  # layer -> {"mse", "mse_heldout_contexts", "mse_heldout", ...}
    *,
    paper: Mapping[str, float] | None = None,  # layer -> the paper's in-sample MSE
    paper_heldout: Mapping[str, float] | None = None,  # layer -> the paper's held-out MSE (string split)
    title: str | None = None,
) -> Figure:
    """Grouped bars per layer (in the order given): in-sample, held-out-contexts and held-out-strings MSE.

    A metric missing from every layer is left out; one missing (null) for a layer is marked "–"
    at the bar's place. Standard deviations over repeats, where present, are error bars; each
    held-out bar carries its value. The y axis is logarithmic. The paper's values (`paper`,
    `paper_heldout`) are black markers on the matching bars. The shuffled-target control, about
    the variance of the beliefs and orders of magnitude above a good probe, has its own narrow
    panel on the right, so it does not squash the bars.
    """
    if not results:
        raise FigureInputError("results is empty; pass {layer name: probe result dict}")
    records = {name: _record(name, value) for name, value in results.items()}
    names = list(records)
    x = np.arange(len(names))
    shown = [(k, s, lab, c) for k, s, lab, c in _BARS if any(records[n].get(k) is not None for n in names)]
    if not shown:
        raise FigureInputError("results has no 'mse' for any layer; pass probe result dicts as in probe.json")
    width = 0.8 / len(shown)
    positive: list[float] = []  # every plotted value > 0, for the y limits
    shuffled = np.array([_number(records[n].get("mse_shuffled")) for n in names])
    has_shuffled = bool(np.isfinite(shuffled).any())

    fig = new_figure(max(6.0, 1.0 * len(names) + 3.4), 4.6)
    if has_shuffled:
        ax, side = fig.subplots(1, 2, width_ratios=[max(4.0, 0.9 * len(names)), 1.25])
    else:
        ax, side = fig.subplots(), None
    bar_x: dict[str, np.ndarray] = {}
    for j, (key, std_key, label, color) in enumerate(shown):
        vals = np.array([_number(records[n].get(key)) for n in names])
        if np.any(vals < 0):
            raise FigureInputError(f"results has a negative {key!r}; MSEs are non-negative")
        err = np.nan_to_num([_number(records[n].get(std_key)) for n in names]) if std_key else None
        positive += [v for v in vals if np.isfinite(v) and v > 0]
        xs = x + (j - (len(shown) - 1) / 2) * width
        bar_x[key] = xs
        ax.bar(xs, np.nan_to_num(vals), width, yerr=err, color=color, label=label, capsize=2,
               error_kw=dict(lw=0.8), edgecolor="white", linewidth=0.5)
        marks = _paper_points("paper" if key == "mse" else "paper_heldout",
                              paper if key == "mse" else paper_heldout if key == "mse_heldout" else None, names)
        for name, xi, v in zip(names, xs, vals):
            if np.isfinite(v) and v > 0:  # the value above the bar, and above the paper's marker on it
                ax.annotate(f"{v:.2g}", (xi, max(v, marks.get(name, 0.0))), xytext=(0, 3), textcoords="offset points", ha="center",
                            va="bottom", fontsize=6.5, rotation=90 if len(shown) > 2 else 0)
            else:  # withheld (e.g. underdetermined): say so where the bar would be
                ax.annotate("–", (xi, 0), xytext=(0, 3), textcoords="offset points", xycoords=("data", "axes fraction"),
                            ha="center", va="bottom", fontsize=9, color="0.3")

    for mapping, key, label in ((paper, "mse", "paper (in-sample)"),
                                (paper_heldout, "mse_heldout", "paper (held-out strings)")):
        points = _paper_points("paper" if key == "mse" else "paper_heldout", mapping, names)
        if points and key in bar_x:
            px = [bar_x[key][names.index(n)] for n in points]
            py = list(points.values())
            positive += py
            if key == "mse":
                ax.scatter(px, py, marker="_", s=260, linewidths=2.4, color="k", zorder=3, label=label)
            else:
                ax.scatter(px, py, marker="D", s=22, facecolors="white", edgecolors="k", linewidths=1.2, zorder=3,
                           label=label)

    ax.set_yscale("log", nonpositive="clip")
    if positive:  # room below the smallest bar and above the largest for its label
        ax.set_ylim(min(positive) / 3.0, max(positive) * 4.0)
    long_names = max(len(n) for n in names) > 10  # another model's names (hidden_states.11, blocks.3.hook_...)
    ax.set_xticks(x, names, rotation=30 if len(names) > 6 or long_names else 0, ha="right" if long_names else "center")
    ax.set_xlabel("layer")
    ax.set_ylabel("probe MSE (log scale)")
    ax.set_title(title or "Linear probe MSE by layer")
    ax.grid(axis="y", alpha=0.3, which="both")

    if side is not None:
        side.plot(shuffled, x, ls="", marker="x", color="0.35", ms=6, mew=1.5)
        side.set_yticks(x, names, fontsize=7)
        side.set_ylim(len(names) - 0.5, -0.5)
        finite = shuffled[np.isfinite(shuffled)]
        lo, hi = float(finite.min()), float(finite.max())
        pad = max(0.15 * (hi - lo), 0.05 * hi, 1e-12)
        side.set_xlim(max(0.0, lo - pad), hi + pad)
        side.set_title("shuffled-target\ncontrol MSE", fontsize=8)
        side.tick_params(axis="x", labelsize=7, rotation=45)
        side.grid(alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig
