"""A sweep's metrics against its swept value: one small panel per metric, every run a dot, mean ± sd over repeats.

Panels are titled in words (`sweep_label`: a map of the usual summary.json keys, and a fallback that reads any
dotted key), share one x-range (a metric missing for some runs does not shrink its panel), and draw each run as a
dot, the mean over the runs at one swept value (the repeats: seeds) as a line, and ± one sample standard deviation
as a band wherever there are two or more.

The y-range rule (`y_span`): a panel's y-axis spans at least 4 pooled standard deviations over repeats and at least
2 % of the metric's largest absolute value, centred on the data, so that differences within the noise, or a few
parts in a thousand of a metric's size, are drawn as the near-flat line they are, not stretched to the panel's
height. Positive values spanning more than a factor 50 get a log axis instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from figures._common import FigureInputError, category_palette, new_figure, set_suptitle

#: Words for the keys sweeps usually name (summary.json metrics, config keys); any other key gets `sweep_label`'s
#: fallback.
SWEEP_LABELS = {
    "relative_loss": "relative loss (CE / optimal CE)",
    "probe.mse": "probe MSE (in-sample)",
    "probe.mse_heldout": "probe MSE, held-out strings",
    "probe.mse_heldout_contexts": "probe MSE, held-out contexts",
    "probe.mse_shuffled": "shuffled-control MSE",
    "probe.r2": "probe R² (in-sample)",
    "probe.r2_heldout_contexts": "probe R², held-out contexts",
    "probe_untrained.mse_heldout_contexts": "untrained model: probe MSE, held-out contexts",
    "probe_untrained.r2_heldout_contexts": "untrained model: probe R², held-out contexts",
    "geometry.distance_r2_beliefs": "distance R², probed vs true beliefs",
    "geometry.distance_r2_next_token": "distance R², probed vs next-token laws",
    "seed": "seed",
    "model.d_model": "model width (d_model)",
    "model.n_layers": "number of layers",
    "model.n_heads": "number of heads",
    "model.context_length": "context length",
    "model.kind": "model",
    "training.steps": "training steps",
    "training.learning_rate": "learning rate",
    "training.batch_size": "batch size",
    "process.coupling": "coupling between the factors",
}
#: The smallest y-span of a panel: this many pooled standard deviations over repeats ...
NOISE_SPANS = 4.0
#: ... and this fraction of the metric's largest absolute value (see the module docstring).
MIN_RELATIVE_SPAN = 0.02


def sweep_label(key: str) -> str:
    """A swept key or metric in words: `SWEEP_LABELS`, else its last name with spaces for underscores, a trailing
    number as "at N", and where it lives in brackets: "studies.factored.components.0.95" -> "components at 0.95
    (factored)", "process.params.x" -> "x (process)", "studies.cbu.main_fitted_lambda" -> "main fitted λ (cbu)"."""
    key = str(key)
    if key in SWEEP_LABELS:
        return SWEEP_LABELS[key]
    parts = key.split(".")
    i = len(parts)
    while i > 1 and parts[i - 1].isdigit():
        i -= 1
    name, number = parts[i - 1], ".".join(parts[i:])
    where = [p for p in parts[: i - 1] if p not in ("studies", "params")]
    words = re.sub(r"\blambda\b", "λ", name.replace("_", " "))
    words += f" at {number}" if number else ""
    return words + (f" ({', '.join(where)})" if where else "")


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def y_span(values: np.ndarray, sd: float | None) -> tuple[float, float]:
    """The y-limits of a linear panel (see the module docstring): the data [lo, hi] padded by 8 %, widened about
    its centre to at least ``NOISE_SPANS`` x ``sd`` (the pooled standard deviation over repeats, None without
    repeats) and ``MIN_RELATIVE_SPAN`` x the largest |value|."""
    lo, hi = float(np.min(values)), float(np.max(values))
    need = max(NOISE_SPANS * (sd or 0.0), MIN_RELATIVE_SPAN * float(np.max(np.abs(values))))
    span = hi - lo
    if span < need:
        mid = 0.5 * (lo + hi)
        lo, hi = mid - 0.5 * need, mid + 0.5 * need
        span = need
    if span == 0.0:  # every value 0
        return -1.0, 1.0
    return lo - 0.08 * span, hi + 0.08 * span


def _stats(pos: np.ndarray, y: np.ndarray, centres: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per centre: mean, sample sd (NaN below two values) and count of the finite values at it."""
    mean, sd, count = [], [], []
    for c in centres:
        v = y[(pos == c) & np.isfinite(y)]
        count.append(v.size)
        mean.append(v.mean() if v.size else np.nan)
        sd.append(v.std(ddof=1) if v.size > 1 else np.nan)
    return np.array(mean), np.array(sd), np.array(count)


def plot_sweep(
    x: Sequence,
    series: Mapping[str, Sequence],
    *,
    x_label: str,
    title: str | None = None,
    ncols: int = 3,
    groups: Sequence | None = None,
) -> Figure:
    """Each metric in ``series`` (name -> one value per point, None where missing) against ``x`` (one per point).

    Points with the same x (and the same ``groups`` entry, when given: the other swept keys that are not repeats,
    e.g. "alpha = 0.2") are repeats (seeds): each is a dot, their mean a line with markers, ± one sample sd a band.
    A numeric x is an axis (log scale when it spans more than two decades of positive values), any other x is
    categorical in the order first seen; every panel shows the full x-range. Metric names and ``x_label`` are
    written in words (`sweep_label`); y-ranges follow `y_span`. A metric missing for some points says how many.
    """
    n = len(x)
    if n == 0 or not series:
        raise FigureInputError("plot_sweep needs at least one point and one metric")
    for name, values in series.items():
        if len(values) != n:
            raise FigureInputError(f"series {name!r} has {len(values)} values for {n} points")
    if groups is not None and len(groups) != n:
        raise FigureInputError(f"groups has {len(groups)} entries for {n} points; give one per point (or None)")
    numeric = all(_is_number(v) for v in x)
    levels = sorted(set(x)) if numeric else list(dict.fromkeys(map(str, x)))
    pos = np.array([float(v) for v in x]) if numeric else np.array([levels.index(str(v)) for v in x], float)
    centres = [float(v) for v in levels] if numeric else list(range(len(levels)))
    group_of = ["" for _ in range(n)] if groups is None else [str(g) for g in groups]
    group_names = list(dict.fromkeys(group_of))
    colours = category_palette(max(len(group_names), 1))
    log_x = False
    if numeric:
        positive = [c for c in centres if c > 0]
        log_x = bool(positive) and min(centres) > 0 and max(positive) / min(positive) > 100

    k = len(series)
    cols = min(ncols, k)
    rows = -(-k // cols)
    fig = new_figure(3.4 * cols + 0.4, 2.7 * rows + (0.6 if title else 0.3) + 0.35)
    axs = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharex=True)).ravel()
    repeats = False
    for ax, (name, values) in zip(axs, series.items()):
        y = np.array([np.nan if not _is_number(v) else float(v) for v in values])
        ok = np.isfinite(y)
        drawn: list[np.ndarray] = [y[ok]]
        sds: list[float] = []
        for g, colour in zip(group_names, colours):
            mine = np.array([gi == g for gi in group_of])
            ax.scatter(pos[mine & ok], y[mine & ok], s=12, color=colour, alpha=0.45, linewidths=0, zorder=3)
            mean, sd, count = _stats(pos[mine], y[mine], centres)
            has = count > 0
            ax.plot(np.array(centres)[has], mean[has], color=colour, lw=1.4, marker="o", ms=3.5, zorder=4)
            band = has & np.isfinite(sd)
            if band.any():
                repeats = True
                ax.fill_between(
                    np.array(centres)[band],
                    (mean - sd)[band],
                    (mean + sd)[band],
                    color=colour,
                    alpha=0.18,
                    linewidth=0,
                    zorder=2,
                )
                drawn += [(mean - sd)[band], (mean + sd)[band]]
                sds += [float(s) for s in sd[band]]
        missing = int((~ok).sum())
        if missing:
            ax.text(
                0.98,
                0.97,
                f"{missing} of {n} runs without it",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=6.5,
                color="0.35",
            )
        if numeric and log_x:
            ax.set_xscale("log")
        values_drawn = np.concatenate(drawn) if ok.any() else np.zeros(0)
        if ok.any() and np.all(y[ok] > 0) and np.max(y[ok]) / np.min(y[ok]) > 50:
            ax.set_yscale("log", nonpositive="clip")  # a band reaching below 0 is cut at the panel's bottom
        elif ok.any():
            pooled = float(np.sqrt(np.mean(np.square(sds)))) if sds else None
            ax.set_ylim(*y_span(values_drawn, pooled))
            ax.ticklabel_format(axis="y", useOffset=False)  # 1.0006 on the ticks, not "+1" in the corner
        ax.set_title(sweep_label(name), fontsize=8.5)
        ax.set_xlabel(sweep_label(x_label), fontsize=8)
        ax.tick_params(labelsize=7, labelbottom=True)
        ax.grid(alpha=0.25)
    # one x-range for every panel (they share x): every swept value, whether or not a panel has a value there
    if numeric:
        lo, hi = min(centres), max(centres)
        if log_x:
            pad = (hi / lo) ** 0.05
            axs[0].set_xlim(lo / pad, hi * pad)
        else:
            pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo) * 0.1, 0.5)
            axs[0].set_xlim(lo - pad, hi + pad)
        if len(centres) <= 8 and not log_x:  # every swept value a tick
            axs[0].set_xticks(centres)
    else:
        axs[0].set_xlim(-0.5, len(levels) - 0.5)
        axs[0].set_xticks(range(len(levels)), levels)
        for ax in axs[:k]:
            ax.tick_params(axis="x", rotation=30)
    for ax in axs[k:]:
        ax.set_visible(False)
    handles: list[Artist] = [
        Line2D([], [], ls="", marker="o", ms=4, mfc="0.4", mec="none", alpha=0.6, label="one run"),
        Line2D([], [], color="0.2", lw=1.4, marker="o", ms=3.5, label="mean over repeats (seeds)"),
    ]
    if repeats:
        handles.append(Patch(color="0.2", alpha=0.18, label="± 1 sd over repeats"))
    if groups is not None:
        handles += [Line2D([], [], color=c, lw=2, label=g) for g, c in zip(group_names, colours)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=7.5, frameon=False)
    if title:
        set_suptitle(fig, title, 11)
    return fig
