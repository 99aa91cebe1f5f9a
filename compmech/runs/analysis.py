"""Analyses beyond the headline probe: belief vs next-token geometry, mixed-state clusters, and
the geometry over training (the probe refitted at checkpoints saved at chosen token counts).

Like the experiment runner, this module ties the packages together; each step hands plain
arrays on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a checkpoint is first run
from compmech.runs.contexts import ContextSet
from compmech.runs.probing import context_activations, probed_layers
from compmech.runs.progress import PhaseTimes, phase
from compmech.runs.records import EvolutionPoint, GeometryResult, ProbeOutcome, probe_fields
from compmech.runs.settings import ProbeSettings
from compmech.runs.sources import Source
from probes import CONTEXT_TEST_FRACTION, distance_geometry, probe_fits, probe_layers, probe_targets, state_labels

#: Above this many distinct beliefs the mixed states are not drawn one colour each.
MAX_STATES_FOR_PCA = 64


def distinct_rows(context_ids: np.ndarray) -> np.ndarray:
    """Indices of the first row of each distinct context (the prefix the row ends with)."""
    _, first = np.unique(context_ids, return_index=True)
    return first


def geometry_analysis(
    source: Source, probe: ProbeOutcome, layer: str, seed: int, *, tokens: np.ndarray | None = None
) -> GeometryResult:
    """How the probed beliefs of ``layer`` relate to the true beliefs and to next-token distributions.

    Over distinct contexts: R^2 of pairwise distances between probed beliefs against distances
    between true beliefs, and against distances between the optimal next-token distributions
    (Shai et al. 2024 for RRXOR: 0.95 and 0.31); and the mixed states as clusters.
    ``next_token_distances_proportional_to_beliefs`` says whether the process's emission matrix
    scales every belief distance by one factor (``next_token_distance_scale``), which makes the two
    R² equal by construction (Mess3); ``next_token_geometry_note`` says so in words. ``tokens`` [N, T]: the
    strings the probe rows came from (``probe.data.groups`` index them), for sources whose next-token law
    needs the context's last token (`Source.next_token_laws`).
    """
    data = probe.data
    first = distinct_rows(data.context_ids)
    beliefs = data.Y[first]  # [n, S]
    probed = probe.predictions[layer][first]  # [n, S]
    last = None if tokens is None else np.asarray(tokens)[data.groups[first], data.positions[first]]  # [n]
    next_token = source.next_token_laws(beliefs, last)  # [n, V]
    geo = distance_geometry(probed, beliefs, next_token, seed=seed)
    labels, centres = state_labels(beliefs)
    scale = source.distance_scale()  # None where next-token laws are no linear map of the whole belief
    if scale is None:
        note = (
            "the emission matrix does not scale belief distances uniformly, so the two R² can differ: "
            "a gap shows the probe carries belief geometry beyond the next-token distribution"
        )
    else:
        note = (
            f"the emission matrix scales every belief distance by {scale:.4g}, so next-token distances are "
            "belief distances up to scale and the two R² are equal by construction: this process cannot "
            "tell belief geometry from next-token geometry"
        )
    return GeometryResult(
        layer=layer,
        n_contexts=int(first.shape[0]),
        n_belief_states=int(centres.shape[0]),
        distance_r2_beliefs=float(geo["beliefs"]["r2"]),
        distance_r2_next_token=float(geo["next_token"]["r2"]),
        n_pairs=int(geo["beliefs"]["n_pairs"]),
        next_token_distances_proportional_to_beliefs=scale is not None,
        next_token_distance_scale=scale,
        next_token_geometry_note=note,
        distances=geo["distances"],
        labels=labels,
        beliefs=beliefs,
        probed=probed,
    )


def checkpoint_tokens(path: Path) -> int:
    """The requested token count in a ``tokens_<N>.msgpack`` checkpoint name."""
    match = re.fullmatch(r"tokens_(\d+)\.msgpack", path.name)
    if match is None:
        raise ValueError(f"{path} is not a tokens_<N>.msgpack checkpoint")
    return int(match.group(1))


def training_evolution(
    run_dir: Path,
    model_cfg: predictive_models.ModelConfig,
    ctx: ContextSet,
    eval_set: Any,
    layer: str,
    probe_settings: ProbeSettings,
    seed: int,
    *,
    progress: bool = False,
    times: PhaseTimes | None = None,
) -> list[EvolutionPoint]:
    """Refit the probe of ``layer`` at every ``tokens_<N>`` checkpoint of the run, oldest first.

    Each point: tokens (actually seen), step, relative_loss (exact, or on the sampled regime's validation sample), the
    probe's `PROBE_FIELDS` (the same protocol as probe.json: context-aggregated rows, both held-out splits, shuffled
    control) and the distinct contexts' true and probed beliefs for the figure.
    """
    records = []
    paths = sorted((run_dir / "checkpoints").glob("tokens_*.msgpack"), key=checkpoint_tokens)
    T = model_cfg.context_length
    per_checkpoint = T + probe_fits(probe_settings.n_repeats, 1, include_concat=False) + 1
    data = (
        probe_targets(ctx.beliefs, ctx.tokens, ctx.probs, rows=probe_settings.rows, weighting=probe_settings.weighting)
        if paths
        else None
    )  # the same rows at every checkpoint
    with phase("training evolution", total=per_checkpoint * len(paths), enabled=progress, times=times) as tick:
        for path in paths:
            ckpt = predictive_models.load_checkpoint(path)
            params, step = ckpt["params"], int(ckpt["step"])
            acts = predictive_models.prefix_activations(
                model_cfg,
                params,
                ctx.tokens,
                on_step=tick,  # name -> [U, d]
                names=probed_layers(probe_settings, model_cfg) if layer == "concat" else [layer],
            )
            fit = context_activations(acts, ctx.tokens, data.context_ids)
            del acts
            evaluation = probe_layers(
                fit,
                data.Y,
                data.groups,
                contexts=data.context_ids,
                positions=data.positions,
                sample_weight=data.weights,
                include_concat=layer == "concat",
                only_concat=layer == "concat",
                per_context=True,
                train_fraction=probe_settings.train_fraction,
                n_repeats=probe_settings.n_repeats,
                context_test_fraction=CONTEXT_TEST_FRACTION,
                seed=seed,
                on_fit=tick,
            )[layer]
            del fit
            ev = predictive_models.evaluate_model(model_cfg, params, eval_set)
            tick()
            first = distinct_rows(data.context_ids)
            records.append(
                EvolutionPoint(
                    tokens=step * int(ckpt["train_config"]["batch_size"]) * T,
                    tokens_requested=checkpoint_tokens(path),
                    step=step,
                    relative_loss=float(ev["relative_loss"]),
                    probe=probe_fields(evaluation.result.to_dict()),
                    beliefs=data.Y[first],
                    probed=evaluation.predictions[first],
                )
            )
    return records
