"""The figures of a run: drawn from the runner's arrays and records, saved into run_dir/figures.

Part of the runner (it knows the config, the process and the probe records); the drawing itself
is `figures`' array-in functions. `make_figures` draws the headline figures, `analysis_figures`
those of the distance geometry and the training evolution; `save_figures` writes each once per
configured format. With plotly installed (the ``[plot]`` extra), `make_figures` also writes the
interactive belief simplex (`interactive_simplex`) as ``figures/interactive_belief_simplex.html``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from compmech.runs.analysis import MAX_STATES_FOR_PCA, distinct_rows
from compmech.runs.contexts import ContextSet
from compmech.runs.paper import paper_results
from compmech.runs.records import EvolutionPoint, GeometryResult, ProbeOutcome
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import Source, source_of
from figures import (
    UNIT_CIRCLE,
    BeliefFrame,
    belief_frame,
    format_count,
    layer_label,
    plot_belief_evolution,
    plot_belief_panels,
    plot_distance_scatter,
    plot_layer_mse,
    plot_loss_by_position,
    plot_probe_over_training,
    plot_state_pca,
    plot_training_curve,
    process_title,
    save_figure,
)
from figures.interactive import belief_simplex, plotly_available, save_interactive
from figures.report import same_distance_geometry
from probes import ProbeData, distinct_prefix_ids


def belief_frame_of(source: Source | Any, true_beliefs: np.ndarray) -> BeliefFrame:
    """The frame every belief panel of a run uses, fitted on the true beliefs [n, S] (`figures.belief_frame`):
    the simplex for HMM beliefs over 3 states, named coordinates where the source has them
    (`SourceTraits.belief_coordinates`: the Bloch disk of tom_quantum), else the belief set's principal axes.
    ``source``: a `Source`, or a process (its source is looked up)."""
    named = source_of(source).traits.belief_coordinates
    if named is not None and true_beliefs.shape[1] > max(named.entries):
        return belief_frame(
            true_beliefs,
            coordinates=named.entries,
            coordinate_names=named.names,
            outline=UNIT_CIRCLE if named.outline == "unit_circle" else None,
        )
    return belief_frame(true_beliefs)


def make_figures(
    cfg: ExperimentConfig,
    run_dir: Path,
    source: Source,
    ctx: ContextSet,
    history: list[dict],
    probe: ProbeOutcome,
    layer: str,
) -> list[Path]:
    """The paper's panel (true / probed beliefs, shuffled control), loss by position, training curve, MSE by layer."""
    traits = source.traits
    data = probe.data
    first = distinct_rows(data.context_ids)  # each distinct context once
    name = process_title(source.name, source.params)
    res = probe.results[layer].to_dict()
    probe_layer = probe.probe_layer
    paper = paper_results(source.name, cfg.model.get("kind", "transformer"))
    if "layer_mse" in paper:
        paper_mse = paper["layer_mse"]
    else:  # unlabelled paper numbers are for the paper's probe layer
        paper_mse = {probe_layer: paper["probe_mse"]} if "probe_mse" in paper else None
    paper_heldout = {probe_layer: paper["probe_mse_heldout"]} if "probe_mse_heldout" in paper else None
    part = traits.figure_label
    true = traits.figure_view(data.Y[first])
    figs = {  # stem -> a function drawing the figure
        "belief_fractal": lambda: plot_belief_panels(
            true,
            traits.figure_view(probe.predictions[layer][first]),
            traits.figure_view(probe.shuffled[first]),
            titles=[
                f"True beliefs (exact)\n{len(first):,} distinct contexts",
                f"Linear probe, {layer_label(layer)}\nMSE {res['mse']:.2g}, R\u00b2 {res['r2']:.3f}",
                f"shuffled-target control, MSE {res['mse_shuffled']:.2g}",
            ],
            state_names=traits.figure_names,
            suptitle=f"{name}: belief geometry in the residual stream" + (f"\n({part})" if part else ""),
            frame=belief_frame_of(source, true),
        ),
    }
    if history:  # a model analysed from its activations alone (`compmech.runs.analyze`) has no losses
        optimum = history[-1]["optimal_loss"]
        figs["loss_by_position"] = lambda: plot_loss_by_position(
            np.asarray(history[-1]["loss_by_position"]),
            ctx.optimal_loss,
            title=f"{name}\nloss by context position after {format_count(history[-1]['tokens'])} tokens",
            start_token=ctx.bos,
        )
    if len(history) > 1:  # an analysis of another model's activations has no training history
        figs["training_curve"] = lambda: plot_training_curve(
            np.array([h["tokens"] for h in history]),
            np.array([h["relative_loss"] for h in history]),
            train_relative=np.array(
                [np.nan if h.get("train_loss") is None else h["train_loss"] / optimum for h in history]
            ),
            title=f"{name}: loss over training",
        )
    figs["probe_layers"] = lambda: plot_layer_mse(
        probe.to_json()["layers"],
        paper=paper_mse,
        paper_heldout=paper_heldout,
        title=f"{name}: belief probe MSE by layer",
    )
    paths = save_figures(cfg, run_dir, figs)
    if plotly_available():  # the optional [plot] extra: without it the run's figures are the static ones only
        fig = interactive_simplex(
            source, ctx, data, probe.predictions[layer], layer, exact=not isinstance(data, ProbeData)
        )  # ProbeData: the sampled regime's rows
        paths.append(save_interactive(fig, run_dir / "figures" / f"{INTERACTIVE_PREFIX}belief_simplex.html"))
    return paths


#: The file names of a run's interactive pages start with this (`figures/interactive_*.html`); the report links them.
INTERACTIVE_PREFIX = "interactive_"


def context_strings(
    tokens: np.ndarray,
    groups: np.ndarray,
    positions: np.ndarray,
    *,
    bos: bool,
    token_names: tuple[str, ...] | list[str] | None = None,
) -> list[str]:
    """Each probe row's context as text: ``tokens[group, : position + 1]`` [R], the start token left out ("∅" for the
    start token alone), tokens written by name (joined without spaces when every name is one character)."""
    V = int(tokens.max()) + 1
    names = [str(t) for t in token_names] if token_names is not None else [str(t) for t in range(V)]
    if len(names) < V:
        names += [str(t) for t in range(len(names), V)]
    sep = "" if all(len(nm) == 1 for nm in names) else " "
    out = []
    for g, t in zip(groups, positions):
        row = tokens[int(g), int(bos) : int(t) + 1]
        out.append(sep.join(names[int(x)] for x in row) or "\u2205")
    return out


def context_probabilities(ctx: ContextSet, context_ids: np.ndarray) -> np.ndarray:
    """[R] the probability of each row's context (the prefix it ends with), from the exact context set: a prefix's
    probability is the sum of the probabilities of the strings that begin with it. ``context_ids`` must be
    `probes.distinct_prefix_ids` of ``ctx.tokens``, as the exact probe rows' are."""
    ids = distinct_prefix_ids(ctx.tokens)  # [N, T]
    mass = np.bincount(ids.ravel(), weights=np.repeat(ctx.probs, ids.shape[1]), minlength=int(ids.max()) + 1)
    return mass[np.asarray(context_ids, dtype=np.int64)]


def interactive_simplex(
    source: Source, ctx: ContextSet, rows: Any, predictions: np.ndarray, layer: str, *, exact: bool, **options: Any
) -> Any:
    """The interactive belief simplex of a run (`figures.interactive.belief_simplex`, a Plotly figure): every
    distinct context's true belief and the probe's prediction from ``layer``, in the static figures' frame
    (`belief_frame_of`), hover showing the context string, its probability (exact regime; sampled rows have none)
    and the beliefs. ``rows``: the probe rows (`probes.ProbeRows`) over ``ctx``'s strings, ``predictions`` [R, S]
    over them; ``exact``: ``ctx`` holds every allowed string with its probability (else a sample, whose contexts get
    no probability); ``options`` go to `belief_simplex` (``max_points``, ``title``...)."""
    traits = source.traits
    first = distinct_rows(rows.context_ids)
    true = traits.figure_view(rows.Y[first])
    process = getattr(source, "process", None)
    groups = np.asarray(rows.groups)[first]
    strings = (
        None
        if groups.max() >= ctx.tokens.shape[0]
        else context_strings(
            ctx.tokens,
            groups,
            np.asarray(rows.positions)[first],
            bos=ctx.bos,
            token_names=getattr(process, "token_names", None),
        )
    )
    probs = context_probabilities(ctx, rows.context_ids[first]) if exact else None
    title = options.pop("title", None) or (
        f"{process_title(source.name, source.params)}: beliefs and their linear "
        f"probe, {layer_label(layer)}" + (f" ({traits.figure_label})" if traits.figure_label else "")
    )
    frame = belief_frame_of(source, true)
    return belief_simplex(
        true,
        traits.figure_view(np.asarray(predictions)[first]),
        contexts=strings,
        probabilities=probs,
        state_names=traits.figure_names,
        frame=None if true.shape[1] == 4 and frame.kind == "principal" else frame,
        title=title,
        predicted_name=f"probe, {layer_label(layer)}",
        **options,
    )


def analysis_figures(
    cfg: ExperimentConfig,
    run_dir: Path,
    source: Source,
    geometry: GeometryResult,
    evolution: list[EvolutionPoint],
    probe_layer: str,
) -> list[Path]:
    """Distance scatter, mixed-state PCA (when the states are few), belief geometry over training."""
    traits = source.traits
    layer = geometry.layer
    name = process_title(source.name, source.params)
    paper = paper_results(source.name, cfg.model.get("kind", "transformer"))
    d = geometry.distances
    figs = {
        "distance_geometry": lambda: plot_distance_scatter(
            d["probed"],
            d["beliefs"],
            d["next_token"],
            r2_beliefs=geometry.distance_r2_beliefs,
            r2_next=geometry.distance_r2_next_token,
            paper={"beliefs": paper["distance_r2_beliefs"], "next_token": paper["distance_r2_next_token"]}
            if "distance_r2_beliefs" in paper
            else None,
            same_geometry=same_distance_geometry(geometry.to_json()),
            title=f"{name}: pairwise distances between probed beliefs ({layer_label(layer)})",
        ),
    }
    if geometry.n_belief_states <= MAX_STATES_FOR_PCA:
        figs["mixed_state_pca"] = lambda: plot_state_pca(
            geometry.beliefs,
            geometry.probed,
            geometry.labels,
            title=f"{name}: the {geometry.n_belief_states} mixed states and their probed images ({layer_label(layer)})",
        )
    if len(evolution) > 1:
        snapshots = [
            (
                f"{format_count(e.tokens)} tokens\nprobe MSE {e.probe['mse']:.2g}",
                traits.figure_view(e.beliefs),
                traits.figure_view(e.probed),
            )
            for e in evolution
        ]
        over = paper.get("probe_mse_over_training", {}) if layer == probe_layer else {}
        figs["belief_evolution"] = lambda: plot_belief_evolution(
            snapshots,
            labels=None if traits.belief_size == 3 or traits.figure_columns else geometry.labels,
            state_names=traits.figure_names,
            frame=belief_frame_of(source, traits.figure_view(evolution[-1].beliefs)),
            title=f"{name}: probed belief geometry ({layer_label(layer)}) over training",
        )
        figs["probe_over_training"] = lambda: plot_probe_over_training(
            np.array([e.tokens for e in evolution]),
            np.array([e.probe["mse"] for e in evolution]),
            np.array([e.relative_loss for e in evolution]),
            paper_tokens=np.array(list(over), dtype=float) if over else None,
            paper_mse=np.array(list(over.values())) if over else None,
            title=f"{name}: probe MSE ({layer_label(layer)}) and loss over training",
        )
    return save_figures(cfg, run_dir, figs)


def save_figures(cfg: ExperimentConfig, run_dir: Path, figs: dict[str, Callable[[], Any]]) -> list[Path]:
    """Draw and save each figure (stem -> drawing function) once per configured format.

    ``save_figure`` releases a figure after writing it, so each format gets a fresh draw.
    """
    return [
        save_figure(draw(), run_dir / "figures" / f"{stem}.{fmt}", dpi=cfg.figures.dpi)
        for stem, draw in figs.items()
        for fmt in cfg.figures.formats
    ]
