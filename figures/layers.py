"""Probe error by layer: in-sample and held-out MSE side by side (log scale), the shuffled control a reference line.

Held-out errors come in two protocols (probe.json): ``mse_heldout_contexts`` — fit on some
distinct contexts, scored on the others, so no test row's context was seen in the fit — and
``mse_heldout`` — the paper's protocol, a split by strings with all positions pooled, which puts
most test contexts (every short prefix) into the fit too. Either may be null with a note.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from figures._common import OKABE_ITO, FigureInputError, layer_label, new_figure

# (key in each result record, key of its standard deviation, legend label, colour: Okabe-Ito, colour-blind safe)
_BARS = (
    ("mse", None, "in-sample", OKABE_ITO[0]),
    ("mse_heldout_contexts", "mse_heldout_contexts_std", "held-out contexts (never seen in the fit)", OKABE_ITO[1]),
    ("mse_heldout", "mse_heldout_std", "held-out strings (paper's protocol)", OKABE_ITO[5]),
)
#: The shuffled-target control is drawn as one reference line when its values over the layers differ by less
#: than this fraction of their mean (it is about the variance of the beliefs, the same for every layer).
SHUFFLED_ONE_LINE = 0.05


def _record(name: str, value) -> Mapping[str, float]:
    """A result record as a mapping; objects with a `to_dict()` method (probe results) are accepted."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if not isinstance(value, Mapping):
        raise FigureInputError(
            f"results[{name!r}] must be a mapping of metric name -> float, got {type(value).__name__}"
        )
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
    `paper_heldout`) are black markers on the matching bars. Layers are named as a reader knows
    them (`figures.layer_label`: "after block 4"). The shuffled-target control, about the variance
    of the beliefs and so about the same for every layer, is a dashed reference line across the
    panel labelled with its value (its range when the layers differ by more than `SHUFFLED_ONE_LINE`
    of the mean: then one short dash per layer), so no panel is spent on one constant.
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

    fig = new_figure(max(6.0, 1.05 * len(names) + 2.4), 4.6)
    ax = fig.subplots()
    bar_x: dict[str, np.ndarray] = {}
    for j, (key, std_key, label, color) in enumerate(shown):
        vals = np.array([_number(records[n].get(key)) for n in names])
        if np.any(vals < 0):
            raise FigureInputError(f"results has a negative {key!r}; MSEs are non-negative")
        err = np.nan_to_num([_number(records[n].get(std_key)) for n in names]) if std_key else None
        positive += [v for v in vals if np.isfinite(v) and v > 0]
        xs = x + (j - (len(shown) - 1) / 2) * width
        bar_x[key] = xs
        ax.bar(
            xs,
            np.nan_to_num(vals),
            width,
            yerr=err,
            color=color,
            label=label,
            capsize=2,
            error_kw=dict(lw=0.8),
            edgecolor="white",
            linewidth=0.5,
        )
        marks = _paper_points(
            "paper" if key == "mse" else "paper_heldout",
            paper if key == "mse" else paper_heldout if key == "mse_heldout" else None,
            names,
        )
        for name, xi, v in zip(names, xs, vals):
            if np.isfinite(v) and v > 0:  # the value above the bar, and above the paper's marker on it
                ax.annotate(
                    f"{v:.2g}",
                    (xi, max(v, marks.get(name, 0.0))),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=6.5,
                    rotation=90 if len(shown) > 2 else 0,
                )
            else:  # withheld (e.g. underdetermined): say so where the bar would be
                ax.annotate(
                    "–",
                    (xi, 0),
                    xytext=(0, 3),
                    textcoords="offset points",
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    va="bottom",
                    fontsize=9,
                    color="0.3",
                )

    for mapping, key, label in (
        (paper, "mse", "paper (in-sample)"),
        (paper_heldout, "mse_heldout", "paper (held-out strings)"),
    ):
        points = _paper_points("paper" if key == "mse" else "paper_heldout", mapping, names)
        if points and key in bar_x:
            px = [bar_x[key][names.index(n)] for n in points]
            py = list(points.values())
            positive += py
            if key == "mse":
                ax.scatter(px, py, marker="_", s=260, linewidths=2.4, color="k", zorder=3, label=label)
            else:
                ax.scatter(
                    px, py, marker="D", s=22, facecolors="white", edgecolors="k", linewidths=1.2, zorder=3, label=label
                )

    if has_shuffled:
        finite = shuffled[np.isfinite(shuffled)]
        positive += [float(v) for v in finite if v > 0]
        lo, hi = float(finite.min()), float(finite.max())
        style: dict[str, Any] = dict(color="0.3", ls="--", lw=1.1, zorder=1)
        if hi - lo <= SHUFFLED_ONE_LINE * float(finite.mean()):
            ax.axhline(float(finite.mean()), **style, label="shuffled-target control (every layer)")
            text = f"shuffled control {float(finite.mean()):.2g}"
        else:
            for xi, v in zip(x, shuffled):
                if np.isfinite(v):
                    ax.plot([xi - 0.45, xi + 0.45], [v, v], **style)
            ax.plot([], [], **style, label="shuffled-target control (each layer)")
            text = f"shuffled control {lo:.2g}\u2013{hi:.2g}"
        ax.annotate(
            text,
            (1.0, hi),
            xycoords=("axes fraction", "data"),
            xytext=(-3, 3),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=7.5,
            color="0.3",
        )

    ax.set_yscale("log", nonpositive="clip")
    if positive:  # room below the smallest bar and above the largest for its label
        ax.set_ylim(min(positive) / 3.0, max(positive) * 4.0)
    labels = [layer_label(n) for n in names]
    ax.set_xticks(x, [textwrap.fill(lab, 16) for lab in labels], rotation=30 if len(names) > 8 else 0, fontsize=8.5)
    ax.set_xlabel("probed activation")
    ax.set_ylabel("probe MSE (log scale)")
    ax.set_title(title or "Linear probe MSE by layer")
    ax.grid(axis="y", alpha=0.3, which="both")

    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig
