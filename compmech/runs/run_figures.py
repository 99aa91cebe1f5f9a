"""The figures of a run: drawn from the runner's arrays and records, saved into run_dir/figures.

Part of the runner (it knows the config, the process and the probe records); the drawing itself
is `figures`' array-in functions. `make_figures` draws the headline figures, `analysis_figures`
those of the distance geometry and the training evolution; `save_figures` writes each once per
configured format.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from compmech.runs.analysis import MAX_STATES_FOR_PCA, distinct_rows
from compmech.runs.paper import paper_results
from compmech.runs.records import EvolutionPoint, GeometryResult, ProbeOutcome
from figures import process_title, sci
from figures.report import same_distance_geometry
from compmech.runs.sources import Source, source_traits
from hmm_processes import GeneralizedHMM

#: Named processes whose belief vector holds coordinates with a name: (entries drawn, their names, outline).
#: tom_quantum's belief is (1, Bloch coordinates) of a qubit confined to a disc of the Bloch ball.
NAMED_BELIEF_COORDINATES = {
    "tom_quantum": ((1, 2), ("Bloch coordinate 1 (belief entry 1)", "Bloch coordinate 2 (belief entry 2)"),
                    "unit_circle"),
}


def figure_view(process: Source, beliefs: np.ndarray) -> np.ndarray:
    """[n, S] -> the entries the belief figures draw (`SourceTraits.figure_columns`: row 0 of a random
    Markov chain's posterior mean, a point of the (k-1)-simplex; every entry otherwise)."""
    cols = source_traits(process).figure_columns
    return beliefs if cols is None else np.asarray(beliefs)[:, list(cols)]


def figure_names(process: Source) -> tuple[str, ...] | None:
    """Names of the entries `figure_view` keeps (the simplex corners' labels)."""
    traits = source_traits(process)
    if traits.figure_columns is None or traits.belief_names is None:
        return traits.belief_names
    return tuple(traits.belief_names[i] for i in traits.figure_columns)


def belief_frame_of(process: Source, true_beliefs: np.ndarray):
    """The frame every belief panel of a run uses, fitted on the true beliefs [n, S] (`figures.belief_frame`):
    the simplex for HMM beliefs over 3 states, named coordinates for the processes in
    `NAMED_BELIEF_COORDINATES` (the Bloch disk of tom_quantum), else the belief set's principal axes."""
    from figures import UNIT_CIRCLE, belief_frame

    named = NAMED_BELIEF_COORDINATES.get(process.name) if isinstance(process, GeneralizedHMM) else None
    if named is not None and true_beliefs.shape[1] > max(named[0]):
        idx, names, outline = named
        return belief_frame(true_beliefs, coordinates=idx, coordinate_names=names,
                            outline=UNIT_CIRCLE if outline == "unit_circle" else None)
    return belief_frame(true_beliefs)

def make_figures(cfg, run_dir: Path, hmm: Source, ctx, history: list[dict], probe: ProbeOutcome,
                 layer: str) -> list[Path]:
    """The paper's panel (true / probed beliefs, shuffled control), loss by position, training curve, MSE by layer."""
    from figures import plot_belief_panels, plot_layer_mse, plot_loss_by_position, plot_training_curve

    data = probe.data
    first = distinct_rows(data.context_ids)  # each distinct context once
    name = process_title(hmm.name, hmm.params)
    res = probe.results[layer].to_dict()
    probe_layer = probe.probe_layer
    paper = paper_results(hmm.name, cfg.model.get("kind", "transformer"))
    if "layer_mse" in paper:
        paper_mse = paper["layer_mse"]
    else:  # unlabelled paper numbers are for the paper's probe layer
        paper_mse = {probe_layer: paper["probe_mse"]} if "probe_mse" in paper else None
    paper_heldout = {probe_layer: paper["probe_mse_heldout"]} if "probe_mse_heldout" in paper else None
    optimum = history[-1]["optimal_loss"]
    part = source_traits(hmm).figure_label
    true = figure_view(hmm, data.Y[first])
    figs = {  # stem -> a function drawing the figure
        "belief_fractal": lambda: plot_belief_panels(
            true, figure_view(hmm, probe.predictions[layer][first]), figure_view(hmm, probe.shuffled[first]),
            titles=["True beliefs (exact)", f"Probe of {layer}: MSE {res['mse']:.2g}, R$^2$ {res['r2']:.4f}",
                    f"Shuffled control\nMSE {res['mse_shuffled']:.2g}"],
            state_names=figure_names(hmm),
            suptitle=f"{name}: belief geometry in the residual stream" + (f"\n({part})" if part else ""),
            frame=belief_frame_of(hmm, true)),
        "loss_by_position": lambda: plot_loss_by_position(
            np.asarray(history[-1]["loss_by_position"]), ctx.optimal_loss,
            title=f"{name}\nloss by context position after {sci(history[-1]['tokens'])} tokens", start_token=ctx.bos),
        "training_curve": lambda: plot_training_curve(
            np.array([h["tokens"] for h in history]), np.array([h["relative_loss"] for h in history]),
            train_relative=np.array([np.nan if h.get("train_loss") is None else h["train_loss"] / optimum
                                     for h in history]),
            title=f"{name}: loss over training"),
        "probe_layers": lambda: plot_layer_mse(
            probe.to_json()["layers"], paper=paper_mse, paper_heldout=paper_heldout,
            title=f"{name}: belief probe MSE by layer"),
    }
    return save_figures(cfg, run_dir, figs)


def analysis_figures(cfg, run_dir: Path, hmm: Source, geometry: GeometryResult, evolution: list[EvolutionPoint],
                     probe_layer: str) -> list[Path]:
    """Distance scatter, mixed-state PCA (when the states are few), belief geometry over training."""
    from figures import plot_belief_evolution, plot_distance_scatter, plot_probe_over_training, plot_state_pca

    layer = geometry.layer
    name = process_title(hmm.name, hmm.params)
    paper = paper_results(hmm.name, cfg.model.get("kind", "transformer"))
    d = geometry.distances
    figs = {
        "distance_geometry": lambda: plot_distance_scatter(
            d["probed"], d["beliefs"], d["next_token"], r2_beliefs=geometry.distance_r2_beliefs,
            r2_next=geometry.distance_r2_next_token,
            paper={"beliefs": paper["distance_r2_beliefs"], "next_token": paper["distance_r2_next_token"]}
            if "distance_r2_beliefs" in paper else None,
            same_geometry=same_distance_geometry(geometry.to_json()),
            title=f"{name}: pairwise distances between probed beliefs ({layer})"),
    }
    if geometry.n_belief_states <= MAX_STATES_FOR_PCA:
        figs["mixed_state_pca"] = lambda: plot_state_pca(
            geometry.beliefs, geometry.probed, geometry.labels,
            title=f"{name}: the {geometry.n_belief_states} mixed states and their probed images ({layer})")
    if len(evolution) > 1:
        snapshots = [(f"{sci(e.tokens)} tokens\nProbe MSE {e.probe['mse']:.2g}", figure_view(hmm, e.beliefs),
                      figure_view(hmm, e.probed)) for e in evolution]
        over = paper.get("probe_mse_over_training", {}) if layer == probe_layer else {}
        figs["belief_evolution"] = lambda: plot_belief_evolution(
            snapshots, labels=None if source_traits(hmm).belief_size == 3 or source_traits(hmm).figure_columns
            else geometry.labels,
            state_names=figure_names(hmm), frame=belief_frame_of(hmm, figure_view(hmm, evolution[-1].beliefs)),
            title=f"{name}: probed belief geometry ({layer}) over training")
        figs["probe_over_training"] = lambda: plot_probe_over_training(
            np.array([e.tokens for e in evolution]), np.array([e.probe["mse"] for e in evolution]),
            np.array([e.relative_loss for e in evolution]),
            paper_tokens=np.array(list(over), dtype=float) if over else None,
            paper_mse=np.array(list(over.values())) if over else None,
            title=f"{name}: probe MSE ({layer}) and loss over training")
    return save_figures(cfg, run_dir, figs)


def save_figures(cfg, run_dir: Path, figs: dict[str, Callable[[], Any]]) -> list[Path]:
    """Draw and save each figure (stem -> drawing function) once per configured format.

    ``save_figure`` releases a figure after writing it, so each format gets a fresh draw.
    """
    from figures import save_figure

    return [save_figure(draw(), run_dir / "figures" / f"{stem}.{fmt}", dpi=cfg.figures.dpi)
            for stem, draw in figs.items() for fmt in cfg.figures.formats]
