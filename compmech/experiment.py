"""Run one experiment end to end: process -> exact theory -> training -> probes -> figures -> summary.

This is the only module (with the CLI over it) that ties the packages together; each step
below hands plain arrays to the next.
"""

from __future__ import annotations

import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compmech.analysis import (MAX_STATES_FOR_PCA, distinct_rows, geometry_analysis, probe_fields, public,
                               training_evolution)
from compmech.config import ConfigError, ExperimentConfig
from compmech.files import write_json_atomic, write_text_atomic
from compmech.information import optimal_loss_by_position
from compmech.mixed_states import mixed_states
from compmech.paper import PAPER_RESULTS
from compmech.probing import probe_model
from compmech.processes import build_process
from hmm_processes import HMM, sample


@dataclass(frozen=True)
class ContextSet:
    """Every allowed string of the model's context length, with its exact theory."""

    tokens: np.ndarray  # [N, T] int32
    probs: np.ndarray  # [N] float64
    beliefs: np.ndarray  # [N, T, S] float64, belief after tokens[:, :t+1]
    next_token_probs: np.ndarray  # [N, T, V] float64
    optimal_loss: np.ndarray  # [T] nats, Bayes-optimal cross-entropy by position


def context_set(hmm: HMM, context_length: int) -> ContextSet:
    """All allowed length-``context_length`` strings with probabilities, beliefs and optimal loss."""
    ms = mixed_states(hmm, context_length)
    beliefs = ms.prefix_beliefs(context_length)
    return ContextSet(
        tokens=ms.level(context_length).words.astype(np.int32),
        probs=ms.level(context_length).probs,
        beliefs=beliefs,
        next_token_probs=beliefs @ hmm.emission_matrix,
        optimal_loss=optimal_loss_by_position(hmm, context_length, ms=ms),
    )


def make_data_fn(hmm: HMM):
    """A pure function (key, n, length) -> tokens [n, length] int32 sampling the stationary process."""

    def data_fn(key, n: int, length: int):
        return sample(hmm, key, n, length, with_beliefs=False, with_next_token_probs=False).tokens

    return data_fn


def prepare_run_dir(run_dir: Path, cfg: ExperimentConfig) -> None:
    """Create ``run_dir`` or check that an existing one belongs to this very config (then it resumes).

    The summary (the mark of a finished run) is removed first, so an interrupted re-run is never
    mistaken for a complete one.
    """
    config_path = run_dir / "config.toml"
    if config_path.exists():
        try:
            old = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError:
            old = None
        new = tomllib.loads(cfg.to_toml())
        if old != new:
            diff = _first_difference(old or {}, new)
            raise ConfigError(
                f"run directory {run_dir} holds a run with a different config ({diff}); "
                "pass --out DIR for a new run directory, or delete the old one"
            )
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"{run_dir} exists and is not a compmech run directory; pass --out DIR")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").unlink(missing_ok=True)
    write_text_atomic(config_path, cfg.to_toml())


def _first_difference(old: dict, new: dict, prefix: str = "") -> str:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            d = _first_difference(a, b, f"{prefix}{key}.")
            if d:
                return d
        elif a != b:
            return f"{prefix}{key}: {a!r} there, {b!r} here"
    return ""


def run_experiment(cfg: ExperimentConfig, out_dir: str | Path | None = None, *, progress: bool = True,
                   command: str | None = None) -> dict[str, Any]:
    """Train, probe and plot as ``cfg`` says; write the run directory; return the summary."""
    from predictive_models import ExactEvalSet, train

    start = time.time()
    run_dir = Path(out_dir) if out_dir is not None else Path("runs") / cfg.name
    hmm = build_process(cfg.process, base_dir=Path(cfg.source).parent if cfg.source else None)
    model_cfg = cfg.transformer_config(hmm.vocab_size)
    prepare_run_dir(run_dir, cfg)

    ctx = context_set(hmm, model_cfg.context_length)
    eval_set = ExactEvalSet(tokens=ctx.tokens, weights=ctx.probs, next_token_probs=ctx.next_token_probs,
                            optimal_loss=ctx.optimal_loss)
    result = train(model_cfg, cfg.train_config(), make_data_fn(hmm), eval_set, run_dir, progress=progress)

    layer = analysis_layer(cfg, model_cfg)
    _log(progress, "probing the residual stream ...")
    probe = probe_model(cfg, model_cfg, result.params_state, ctx, layer, progress=progress)
    write_json_atomic(run_dir / "probe.json", probe["json"])

    _log(progress, f"distance geometry and training evolution on {layer} ...")
    geometry = geometry_analysis(hmm, probe, layer, cfg.seed)
    evolution = training_evolution(run_dir, model_cfg, ctx, eval_set, layer, cfg.probe, cfg.seed,
                                   progress=progress)
    final_probe = probe["json"]["layers"][layer]
    evolution.append({"tokens": result.history[-1]["tokens"], "step": result.history[-1]["step"],
                      "relative_loss": result.history[-1]["relative_loss"],
                      **probe_fields(final_probe),
                      "_snapshot": (geometry["_beliefs"], geometry["_probed"])})
    write_json_atomic(run_dir / "analysis.json", {"layer": layer, "geometry": public(geometry),
                                                   "evolution": [public(e) for e in evolution]})

    _log(progress, "drawing figures ...")
    figure_paths = make_figures(cfg, run_dir, hmm, ctx, result.history, probe, layer)
    figure_paths += analysis_figures(cfg, run_dir, hmm, geometry, evolution, probe["json"]["probe_layer"])

    final = result.history[-1]
    summary = {
        "name": cfg.name,
        "process": {"name": hmm.name, "params": hmm.params},
        "command": command or f"compmech run {cfg.source}",
        "steps": final["step"],
        "tokens": final["tokens"],
        "final_loss": final["loss"],
        "optimal_loss": final["optimal_loss"],
        "relative_loss": final["relative_loss"],
        "probe_layer": probe["json"]["probe_layer"],
        "probe": probe["json"]["layers"][probe["json"]["probe_layer"]],
        "probe_mse_by_layer": {name: res["mse"] for name, res in probe["json"]["layers"].items()},
        "analysis_layer": layer,
        "geometry": public(geometry),
        "evolution": [public(e) for e in evolution],
        "paper": PAPER_RESULTS.get(hmm.name, {}),
        "figures": [str(p.relative_to(run_dir)) for p in figure_paths],
        "wall_seconds": time.time() - start,
        "train_wall_seconds": result.wall_seconds,
    }
    write_json_atomic(run_dir / "summary.json", summary)
    from compmech.report import build_report  # the page reads the finished run directory

    build_report(run_dir)
    return summary


def _log(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def analysis_layer(cfg: ExperimentConfig, model_cfg) -> str:
    """The layer the figures, the distance geometry and the training evolution use."""
    from predictive_models import layer_names, probe_layer_name

    layer = cfg.probe.figure_layer or probe_layer_name(model_cfg)
    allowed = layer_names(model_cfg) + (["concat"] if cfg.probe.include_concat else [])
    if layer not in allowed:
        raise ConfigError(f"{cfg.source}: [probe] figure_layer = {layer!r} is not a probed layer; "
                          f"use one of {', '.join(allowed)} (or \"\" for the paper's)")
    return layer


def make_figures(cfg: ExperimentConfig, run_dir: Path, hmm: HMM, ctx: ContextSet,
                 history: list[dict], probe: dict[str, Any], layer: str) -> list[Path]:
    """The paper's panel (true / probed / shuffled beliefs), loss by position, training curve, MSE by layer."""
    from figures import plot_belief_panels, plot_layer_mse, plot_loss_by_position, plot_training_curve

    data = probe["data"]
    first = distinct_rows(data.context_ids)  # each distinct context once
    pretty = ", ".join(f"{k} = {v:g}" for k, v in hmm.params.items())
    res = probe["json"]["layers"][layer]
    curve = [h for h in history if h["tokens"] > 0]  # the step-0 record has no place on a log axis
    figs = {  # stem -> a function drawing the figure
        "belief_fractal": lambda: plot_belief_panels(
            data.Y[first], probe["predictions"][layer][first], probe["shuffled"][first],
            titles=["true beliefs (exact)", f"probe of {layer}: MSE {res['mse']:.2g}, R$^2$ {res['r2']:.4f}",
                    f"shuffled-target control: MSE {res['mse_shuffled']:.2g}"],
            suptitle=f"{hmm.name} ({pretty}): belief geometry in the residual stream"),
        "loss_by_position": lambda: plot_loss_by_position(
            np.asarray(history[-1]["loss_by_position"]), ctx.optimal_loss,
            title=f"{hmm.name}: loss by context position after {history[-1]['tokens']:.3g} tokens"),
        "training_curve": lambda: plot_training_curve(
            np.array([h["tokens"] for h in curve]), np.array([h["relative_loss"] for h in curve]),
            loss=np.array([h["loss"] for h in curve]), optimal_loss=history[-1]["optimal_loss"],
            title=f"{hmm.name}: exact validation loss over training"),
        "probe_layers": lambda: plot_layer_mse(
            probe["json"]["layers"], paper=PAPER_RESULTS.get(hmm.name, {}).get("layer_mse"),
            title=f"{hmm.name}: belief probe MSE by layer"),
    }
    return save_figures(cfg, run_dir, figs)


def analysis_figures(cfg: ExperimentConfig, run_dir: Path, hmm: HMM, geometry: dict[str, Any],
                     evolution: list[dict[str, Any]], probe_layer: str) -> list[Path]:
    """Distance scatter, mixed-state PCA (when the states are few), belief geometry over training."""
    from figures import plot_belief_evolution, plot_distance_scatter, plot_probe_over_training, plot_state_pca

    layer = geometry["layer"]
    paper = PAPER_RESULTS.get(hmm.name, {})
    d = geometry["_distances"]
    figs = {
        "distance_geometry": lambda: plot_distance_scatter(
            d["probed"], d["beliefs"], d["next_token"], r2_beliefs=geometry["distance_r2_beliefs"],
            r2_next=geometry["distance_r2_next_token"],
            paper={"beliefs": paper["distance_r2_beliefs"], "next_token": paper["distance_r2_next_token"]}
            if "distance_r2_beliefs" in paper else None,
            title=f"{hmm.name}: pairwise distances between probed beliefs ({layer})"),
    }
    if geometry["n_belief_states"] <= MAX_STATES_FOR_PCA:
        figs["mixed_state_pca"] = lambda: plot_state_pca(
            geometry["_beliefs"], geometry["_probed"], geometry["_labels"],
            title=f"{hmm.name}: the {geometry['n_belief_states']} mixed states and their probed images ({layer})")
    if len(evolution) > 1:
        snapshots = [(f"{e['tokens']:.3g} tokens\nprobe MSE {e['mse']:.2g}", *e["_snapshot"]) for e in evolution]
        over = paper.get("probe_mse_over_training", {}) if layer == probe_layer else {}
        figs["belief_evolution"] = lambda: plot_belief_evolution(
            snapshots, labels=None if hmm.num_states == 3 else geometry["_labels"],
            title=f"{hmm.name}: probed belief geometry ({layer}) over training")
        figs["probe_over_training"] = lambda: plot_probe_over_training(
            np.array([e["tokens"] for e in evolution]), np.array([e["mse"] for e in evolution]),
            np.array([e["relative_loss"] for e in evolution]),
            paper_tokens=np.array(list(over), dtype=float) if over else None,
            paper_mse=np.array(list(over.values())) if over else None,
            title=f"{hmm.name}: probe MSE ({layer}) and loss over training")
    return save_figures(cfg, run_dir, figs)


def save_figures(cfg: ExperimentConfig, run_dir: Path, figs: dict[str, Any]) -> list[Path]:
    """Draw and save each figure (stem -> drawing function) once per configured format.

    ``save_figure`` releases a figure after writing it, so each format gets a fresh draw.
    """
    from figures import save_figure

    return [save_figure(draw(), run_dir / "figures" / f"{stem}.{fmt}", dpi=cfg.figures.dpi)
            for stem, draw in figs.items() for fmt in cfg.figures.formats]
