"""In-context learning figures: loss by position against the optimum and the components, the excess on a log
scale with its fits, the loss over training, and the source-posterior probes by position."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from figures._common import FigureInputError, as_array, format_count, new_figure, set_suptitle


def _fit_line(ax, fit: Any, n: np.ndarray, color: str, label: str, ls: str) -> None:
    """Draw a fitted excess curve (an object with ``predict`` and ``rate``, ``model``; None: nothing)."""
    if fit is None:
        return
    x = np.linspace(max(fit.seen_min, 1), fit.seen_max, 200)
    unit = "b" if fit.model == "power_law" else "tau"
    ax.plot(
        x,
        fit.predict(x),
        color=color,
        ls=ls,
        lw=1.1,
        label=f"{label}: {fit.model.replace('_', ' ')} {unit} = {fit.rate:.3g}",
    )


def plot_icl_loss(
    theory_seen: np.ndarray,  # [P] tokens seen
    optimal: np.ndarray,  # [P] nats
    optimal_se: np.ndarray,  # [P]
    component: np.ndarray,  # [K, P] each component's own optimum
    labels: Sequence[str],  # [K]
    known_source: np.ndarray,  # [P] prior-weighted components
    model_seen: np.ndarray,  # [T] tokens seen at each model position
    model_loss: np.ndarray,  # [T]
    model_se: np.ndarray,  # [T]
    fixed_source: np.ndarray | None = None,  # [T] the best never-inferring predictor at the model's positions
    fixed_label: str = "never inferring",
    *,
    model_excess: np.ndarray | None = None,  # [T] the model's excess over known_source (default: model_loss - it)
    model_excess_se: np.ndarray | None = None,  # [T] (default: model_se)
    theory_fit: Any = None,  # compmech.studies.icl.theory.ExcessFits of the theory's excess
    model_fit: Any = None,  # ... of the model's
    last_exact_seen: int | None = None,  # a hybrid theory: its last exact position (a dotted line); None: none
    title: str | None = None,
) -> Figure:
    """Two panels: the losses by tokens seen, and the excess over the told-the-source loss (log scale) with fits."""
    n = as_array("theory_seen", theory_seen, 1)
    opt = as_array("optimal", optimal, 1)
    comp = as_array("component", component, 2)
    known = as_array("known_source", known_source, 1)
    ms = as_array("model_seen", model_seen, 1)
    ml = as_array("model_loss", model_loss, 1)
    mse = as_array("model_se", model_se, 1)
    if comp.shape != (len(labels), n.size) or opt.shape != n.shape or known.shape != n.shape:
        raise FigureInputError(f"component must be [K, P] = [{len(labels)}, {n.size}] and optimal, known_source [P]")
    if ml.shape != ms.shape or mse.shape != ms.shape:
        raise FigureInputError("model_loss and model_se must have the shape of model_seen")
    fig = new_figure(11.0, 4.6 if title else 4.2)
    ax, bx = fig.subplots(1, 2)
    colors = ["tab:green", "tab:purple", "tab:olive", "tab:cyan", "tab:brown", "tab:pink"]
    for k, lab in enumerate(labels):
        ax.plot(n, comp[k], color=colors[k % len(colors)], lw=0.9, alpha=0.8, label=f"told: {lab}")
    ax.plot(n, known, color="0.45", lw=1.2, ls=":", label="told the source (weighted)")
    fixed_top = None
    if fixed_source is not None:
        fs = as_array("fixed_source", fixed_source, 1)
        fixed_top = float(np.max(fs[ms >= 1])) if np.any(ms >= 1) else float(np.max(fs))
    ctx = n >= 1 if np.any(n >= 1) else np.ones(n.size, bool)  # the first token (no context) can sit far above
    tops = [float(opt[ctx].max()), float(comp[:, ctx].max()), float(ml[ms >= 1].max() if np.any(ms >= 1) else ml.max())]
    # a never-inferring predictor that meets tokens its component never emits (vocabulary-mapped components) pays
    # the probability floor there: its curve sits far above the rest and is left above the axis
    off_axis = fixed_top is not None and fixed_top > 2.0 * max(tops)
    if fixed_source is not None:
        label = fixed_label + (f" (up to {fixed_top:.3g}, above the axis)" if off_axis else "")
        ax.plot(ms, as_array("fixed_source", fixed_source, 1), color="tab:red", lw=1.2, ls="--", label=label)
    ax.plot(n, opt, color="black", lw=2.0, label="Bayes optimal (source inferred)")
    ax.fill_between(n, opt - 2 * np.asarray(optimal_se), opt + 2 * np.asarray(optimal_se), color="black", alpha=0.15)
    ax.errorbar(ms, ml, yerr=2 * mse, fmt="o", ms=3, color="tab:blue", lw=0.8, label="model")
    if fixed_top is not None and not off_axis:
        tops.append(fixed_top)
    lo = min(float(known.min()), float(ml.min()), float(comp.min()))
    hi = max(tops)
    ax.set_ylim(lo - 0.05 * (hi - lo + 1e-9), hi + 0.25 * (hi - lo + 1e-9))
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("next-token loss (nats)")
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7, loc="upper right", framealpha=0.9)

    ex = opt - known
    keep = (n >= 1) & (ex > 0)
    bx.plot(n[keep], ex[keep], color="black", lw=2.0, marker=".", label="optimal - told")
    mex = ml - np.interp(ms, n, known) if model_excess is None else as_array("model_excess", model_excess, 1)
    mex_se = mse if model_excess_se is None else as_array("model_excess_se", model_excess_se, 1)
    mk = (ms >= 1) & (mex > 0)
    bx.errorbar(ms[mk], mex[mk], yerr=2 * mex_se[mk], fmt="o", ms=3, color="tab:blue", lw=0.8, label="model - told")
    for fits, color, who in ((theory_fit, "black", "theory"), (model_fit, "tab:blue", "model")):
        if fits is not None:
            _fit_line(bx, fits.power_law, n, color, who, "--")
            _fit_line(bx, fits.exponential, n, color, who, ":")
    if last_exact_seen is not None:
        for axis in (ax, bx):
            axis.axvline(
                last_exact_seen + 0.5,
                color="0.5",
                lw=0.8,
                ls=":",
                label="exact theory | Monte Carlo" if axis is bx else None,
            )
    bx.set_yscale("log")
    bx.set_xlabel("tokens seen")
    bx.set_ylabel("excess over the told-the-source loss (nats)")
    bx.grid(alpha=0.25, which="both")
    bx.legend(fontsize=7, loc="upper right", framealpha=0.9)
    if title:
        set_suptitle(fig, f"In-context learning: {title}", 11)
    return fig


def plot_icl_training(
    seen: np.ndarray,  # [T]
    losses: np.ndarray,  # [C, T] the model's loss at each point (initialisation first, the end last)
    tokens: Sequence[int | None],  # [C] tokens trained on (None: the end)
    optimal: np.ndarray,  # [T]
    *,
    gaps: np.ndarray | None = None,  # [C, T] the model's paired gap to the optimum (nats); None: losses - optimal
    title: str | None = None,
) -> Figure:
    """Heat map of the model's relative gap to the optimum (log colour scale) by position and training point,
    and its loss as one curve per point (light to dark)."""
    s = as_array("seen", seen, 1)
    L = as_array("losses", losses, 2)
    opt = as_array("optimal", optimal, 1)
    if L.shape[1] != s.size or opt.shape != s.shape or len(tokens) != L.shape[0]:
        raise FigureInputError(f"losses must be [C, T] with T = {s.size} and one token count per row")
    G = L - opt[None, :] if gaps is None else as_array("gaps", gaps, 2)
    if G.shape != L.shape:
        raise FigureInputError(f"gaps must have the shape of losses {L.shape}; got {G.shape}")
    rel = np.maximum(G / opt[None, :], 1e-4)
    names = ["end" if t is None else ("init" if t == 0 else format_count(t)) for t in tokens]
    fig = new_figure(11.0, 4.4 if title else 4.0)
    ax, bx = fig.subplots(1, 2)
    im = ax.imshow(
        rel,
        aspect="auto",
        origin="lower",
        cmap="magma_r",
        norm=mpl.colors.LogNorm(vmin=1e-4, vmax=max(rel.max(), 1e-3)),
        extent=(s[0] - 0.5, s[-1] + 0.5, -0.5, L.shape[0] - 0.5),
    )
    ax.set_yticks(np.arange(L.shape[0]), names, fontsize=7)
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("tokens trained on")
    fig.colorbar(im, ax=ax, label="(model - optimal) / optimal")
    cmap = mpl.colormaps["viridis"]
    for i, row in enumerate(L):
        last = i == L.shape[0] - 1
        bx.plot(
            s,
            row,
            color="tab:blue" if last else cmap(0.1 + 0.8 * i / max(L.shape[0] - 1, 1)),
            lw=2.0 if last else 1.0,
            label=names[i],
        )
    bx.plot(s, opt, color="black", lw=1.5, ls="--", label="optimal")
    bx.set_xlabel("tokens seen")
    bx.set_ylabel("loss (nats)")
    bx.grid(alpha=0.25)
    bx.legend(fontsize=7, ncol=2, loc="upper right")
    if title:
        set_suptitle(fig, f"In-context learning over training: {title}", 11)
    return fig


def plot_icl_probe(
    seen: np.ndarray,  # [T]
    posterior: Mapping[str, list[dict]],  # layer -> by-position records (seen, r2_heldout_contexts, r2_shuffled)
    belief: Mapping[str, list[dict]] | None = None,  # the same for the belief probe
    *,
    title: str | None = None,
) -> Figure:
    """Context-disjoint held-out R² by position per layer (solid) with the shuffled control (grey), for the
    source posterior and the belief."""
    s = as_array("seen", seen, 1)
    if not posterior:
        raise FigureInputError("posterior must hold at least one layer")
    panels = [("posterior over sources", posterior)] + (
        [("belief over the mixture's states", belief)] if belief else []
    )
    fig = new_figure(5.6 * len(panels), 4.3 if title else 3.9)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    cmap = mpl.colormaps["viridis"]
    for ax, (what, layers) in zip(axes, panels):
        for i, (name, rows) in enumerate(layers.items()):
            if len(rows) != s.size:
                raise FigureInputError(f"{what}: layer {name!r} has {len(rows)} positions, seen has {s.size}")
            r2 = np.array([np.nan if r["r2_heldout_contexts"] is None else r["r2_heldout_contexts"] for r in rows])
            sh = np.array([np.nan if r["r2_shuffled"] is None else r["r2_shuffled"] for r in rows])
            color = cmap(0.1 + 0.8 * i / max(len(layers) - 1, 1))
            ax.plot(s, r2, color=color, marker=".", lw=1.3, label=name)
            ax.plot(s, sh, color="0.6", lw=0.8, alpha=0.8, label="shuffled" if i == 0 else None)
        ax.axhline(0.9, color="tab:red", lw=0.7, ls=":")
        ax.set_ylim(-0.1, 1.02)
        ax.set_xlabel("tokens seen")
        ax.set_ylabel("R² held out (contexts)")
        ax.set_title(what, fontsize=10)
        ax.grid(alpha=0.25)
        ax.legend(fontsize=7, loc="lower right")
    if title:
        set_suptitle(fig, f"Probes by position: {title}", 11)
    return fig


def plot_icl_transition(
    steps: np.ndarray,  # [P] optimizer steps of the evaluations
    loss: np.ndarray,  # [P] held-out loss there
    change: Any,  # `probes.transitions.StepChange`
    checkpoint_steps: np.ndarray,  # [C] initialisation, each checkpoint, the end
    induction: np.ndarray | None,  # [C] the largest induction score at each (None: not a transformer)
    induction_rise: Any = None,  # `probes.transitions.HalfRise` of it
    *,
    identifying: tuple[Any, Sequence[tuple[int, Any]], str] | None = None,  # (optimal LossByCount, [(step, model
    #                                                                         LossByCount)], the tokens' names)
    gain_rise: Any = None,  # `probes.transitions.HalfRise` of the in-context gain on the identifying tokens
    title: str | None = None,
) -> Figure:
    """The held-out loss over training with its step change and the induction score beside it; and (a mixture with
    identifying tokens) the loss on those tokens by how many were seen, at each checkpoint, against the optimum."""
    s = as_array("steps", steps, 1)
    L = as_array("loss", loss, 1)
    if s.shape != L.shape:
        raise FigureInputError(f"steps and loss must have one length; got {s.shape} and {L.shape}")
    n_panels = 2 if identifying is not None else 1
    fig = new_figure(5.8 * n_panels, 4.4 if title else 4.0)
    axes = np.atleast_1d(fig.subplots(1, n_panels))
    ax = axes[0]
    ax.plot(s, L, color="tab:blue", lw=1.2, marker=".", ms=3, label="held-out loss")
    if change.found:
        ax.axvspan(change.step_lo, change.step_hi, color="tab:red", alpha=0.15, lw=0)
        ax.axvline(
            change.step, color="tab:red", lw=1.2, label=f"step change at {change.step:,.0f} ± {change.uncertainty:,.0f}"
        )
    else:
        ax.plot([], [], color="none", label="no step change found")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("held-out loss (nats)")
    ax.grid(alpha=0.25)
    if s.size:
        late = L[s >= s[0] + 0.05 * (s[-1] - s[0])]  # zoom on the late curve: the initial fall dwarfs the step
        lo, hi = float(np.min(L)), float(np.max(late)) if late.size else float(np.max(L))
        pad = 0.08 * max(hi - lo, 1e-6)
        ax.set_ylim(lo - pad, hi + 3 * pad)
    handles, labels = ax.get_legend_handles_labels()
    if induction is not None:
        bx = ax.twinx()
        cs = as_array("checkpoint_steps", checkpoint_steps, 1)
        ind = as_array("induction", induction, 1)
        bx.plot(cs, ind, color="tab:green", marker="s", ms=4, lw=1.0, label="largest induction score")
        if induction_rise is not None and induction_rise.found:
            bx.axvline(
                induction_rise.at, color="tab:green", ls=":", lw=1.2, label=f"its half rise at {induction_rise.at:,.0f}"
            )
        if gain_rise is not None and gain_rise.found:
            bx.axvline(
                gain_rise.at, color="tab:purple", ls="--", lw=1.2, label=f"name gain's half rise at {gain_rise.at:,.0f}"
            )
        bx.set_ylabel("induction score (every occurrence)", color="tab:green")
        bx.set_ylim(0, max(1.0, float(np.nanmax(ind)) * 1.05))
        h2, l2 = bx.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=7, loc="upper right")
    ax.set_title("loss over training and the induction heads", fontsize=10)
    if identifying is not None:
        optimal, points, names = identifying
        cx = axes[1]
        cmap = mpl.colormaps["viridis"]
        for i, (step, r) in enumerate(points):
            last = i == len(points) - 1
            c = r.count.astype(float)
            color = "tab:blue" if last else cmap(0.1 + 0.8 * i / max(len(points) - 1, 1))
            cx.errorbar(
                c,
                r.loss,
                yerr=2 * np.nan_to_num(r.loss_se),
                color=color,
                lw=2.0 if last else 1.0,
                marker="o",
                ms=3,
                capsize=2,
                label=f"step {format_count(step)}",
            )
        cx.plot(optimal.count, optimal.loss, color="black", ls="--", lw=1.5, marker="x", label="Bayes optimum")
        # log scale as the authors plot it, linear below 1e-3 so that the optimum's exact zeros (every name after the
        # first is certain) stay on the axis
        cx.set_yscale("symlog", linthresh=1e-3)
        cx.set_ylim(bottom=0.0)
        top = optimal.count[-1]
        ticks = [str(int(c)) + ("+" if optimal.top_open and c == top else "") for c in optimal.count]
        cx.set_xticks(optimal.count, ticks)
        cx.set_xlabel(f"identifying tokens seen before ({names})")
        cx.set_ylabel("loss on the identifying token (nats)")
        cx.grid(alpha=0.25, which="both")
        cx.legend(fontsize=6, ncol=2, loc="best")
        cx.set_title("loss on the identifying tokens, by how many were seen", fontsize=10)
    if title:
        set_suptitle(fig, f"The induction transition: {title}", 11)
    return fig
