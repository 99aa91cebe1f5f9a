"""Probe a trained model's residual stream for the beliefs: activations, rows, every layer's probe.

The runner's probing phase. Like `compmech.runs.experiment`, it ties the packages together and hands
plain arrays on: `predictive_models` computes the activations of each distinct prefix once
(`predictive_models.prefix_activations`), `probes` fits and scores the probes on context-aggregated rows
(see `probes.evaluation`) from those [U, d] arrays. The [N, T, d] arrays of every (string, position) are never
built: for all 3^10 Mess3 strings that is 88,572 activation rows per layer instead of 590,490, the same fits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model is first run
from compmech.runs.contexts import ContextSet
from compmech.runs.progress import PhaseTimes, phase
from compmech.runs.records import ProbeOutcome, RowPredictions
from compmech.runs.settings import ExperimentConfig, ProbeSettings
from probes import (
    CONTEXT_TEST_FRACTION,
    ProbeData,
    ProbeEvaluation,
    ProbeRows,
    distinct_prefix_ids,
    probe_fits,
    probe_layers,
    probe_rows,
    probe_targets,
)

#: What the two held-out numbers of probe.json measure (written into probe.json beside the settings).
HELDOUT_CONTEXTS_TEXT = (
    "context-disjoint: at each position, floor(test_fraction * n) of its n distinct contexts (prefixes) are held "
    "out (none where n < 1 / test_fraction); the probe is fitted on the rows of the other contexts and scored on "
    "the rows of the held-out ones (rows weighted as in the in-sample fit), so no context is in both splits"
)
HELDOUT_STRINGS_TEXT = (
    "the paper's protocol: strings split at random, fitted on train_fraction of them and scored on the rest; "
    "with all positions pooled most test rows' contexts (every short prefix) are also fit rows"
)


def probed_layers(settings: ProbeSettings, model_cfg: predictive_models.ModelConfig) -> list[str]:
    """The activation names a run probes: [probe] layers (default `predictive_models.layer_names`), with the
    paper's probe layer added when missing. Raises ValueError naming the model's activations if one is
    unknown or is not one vector per position (an attention pattern)."""
    names = list(settings.layers) or predictive_models.layer_names(model_cfg)
    allowed = predictive_models.activation_names(model_cfg)
    known = set(allowed) | set(
        predictive_models.layer_names(model_cfg)
    )  # the transformer's short aliases are its default names
    bad = [n for n in names if n not in known or n.endswith("hook_pattern")]
    if bad:
        raise ValueError(
            f"[probe] layers: {bad[0]!r} is not a probe-able activation of this model (attention "
            f"patterns are not vectors); use names from "
            f"{', '.join(n for n in allowed if not n.endswith('hook_pattern'))}"
        )
    layer = predictive_models.probe_layer_name(model_cfg)
    return names if layer in names else [*names, layer]


def context_activations(
    acts: predictive_models.PrefixActivations, tokens: np.ndarray, context_ids: np.ndarray
) -> dict[str, np.ndarray]:
    """The activations of `predictive_models.PrefixActivations` ``acts`` of ``tokens`` [N, T] in the order
    `probes.probe_layers` takes with ``per_context=True``: {name: [U, d]}, row u = the u-th smallest of the
    probe rows' ``context_ids`` (`probes.distinct_prefix_ids`). Both packages number prefixes by length, then
    lexicographically, so this is ``acts.rows`` itself (no copy); the map is checked, not assumed."""
    probe_ids = distinct_prefix_ids(tokens)  # [N, T]
    if probe_ids.shape != acts.ids.shape or int(probe_ids.max()) + 1 != acts.n_prefixes:
        raise RuntimeError("prefix activations and probe rows count different prefixes; a bug, please report it")
    to_row = np.empty(acts.n_prefixes, np.int64)  # probe context id -> the model's prefix row
    to_row[probe_ids] = acts.ids
    if not np.array_equal(to_row[probe_ids], acts.ids) or np.unique(to_row).size != acts.n_prefixes:
        raise RuntimeError("prefix activations and probe rows disagree on which strings share a prefix; a bug")
    wanted = to_row[np.unique(context_ids)]  # [U]
    if np.array_equal(wanted, np.arange(acts.n_prefixes)):
        return dict(acts.rows)
    return {name: a[wanted] for name, a in acts.rows.items()}


def distinct_context_rows(
    model_cfg: predictive_models.ModelConfig,
    params: Any,
    ctx: ContextSet,
    names: list[str],
    targets: np.ndarray,
    weighting: str,
) -> tuple[dict[str, np.ndarray], ProbeData]:
    """One row per distinct context of ``ctx``: the activations ``names`` of the model ``params`` (each [R, d]) and
    ``targets`` [N, T, k] (any per-position target: a study's own probe targets), with the rows' weights, string
    groups, positions and context ids (`probes.probe_rows` with ``rows="distinct_contexts"``, ``weighting``
    "uniform" or "probability"). A study's probes onto targets of its own use it."""
    acts = predictive_models.compute_activations(model_cfg, params, ctx.tokens, names=names)  # name -> [N, T, d]
    rows = {
        name: probe_rows(a, targets, ctx.tokens, ctx.probs, rows="distinct_contexts", weighting=weighting)
        for name, a in acts.items()
    }
    return {name: r.X for name, r in rows.items()}, next(iter(rows.values()))


def probe_model(
    cfg: ExperimentConfig,
    model_cfg: predictive_models.ModelConfig,
    params_state: Any,
    ctx: ContextSet,
    figure_layer: str,
    *,
    progress: bool = False,
    times: PhaseTimes | None = None,
    untrained_params: Any = None,
) -> ProbeOutcome:
    """Probe every layer of `probed_layers` (and all of them concatenated) for the beliefs.

    ``cfg`` is the `ExperimentConfig` (its ``probe`` settings and ``seed`` are used), ``model_cfg`` the
    model's config (any family), ``ctx`` the `ContextSet` of every allowed string. With
    ``untrained_params`` (the model at initialisation), every probed layer is also probed there, with the
    same rows, splits and seed: the untrained-model control. The shuffled predictions are those
    of the control `evaluate_probe` fitted, not a refit.
    """
    settings = cfg.probe
    T = ctx.tokens.shape[1]
    layer = predictive_models.probe_layer_name(model_cfg)
    names = probed_layers(settings, model_cfg)
    # the rows (targets, weights, ids) every layer shares; their activations come one row per context
    data = probe_targets(ctx.beliefs, ctx.tokens, ctx.probs, rows=settings.rows, weighting=settings.weighting)
    untrained = None
    for params, control in ((params_state, False), (untrained_params, True)):
        if params is None:
            continue
        which = " (untrained model)" if control else ""
        with phase("activations" + which, total=T, enabled=progress, unit="position", times=times) as tick:
            acts = predictive_models.prefix_activations(
                model_cfg, params, ctx.tokens, on_step=tick, names=names
            )  # [U, width]
        by_context = context_activations(acts, ctx.tokens, data.context_ids)  # name -> [U, width]
        del acts
        found = fit_probes(
            settings,
            cfg.seed,
            data,
            by_context,
            include_concat=settings.include_concat and not control,
            progress=progress,
            times=times,
            label="probe fits" + which,
        )
        del by_context
        if control:
            untrained = {name: ev.result for name, ev in found.items()}
        else:
            evaluations = found
    return probe_outcome(settings, ctx, data, evaluations, layer, figure_layer, untrained)


def fit_probes(
    settings: ProbeSettings,
    seed: int,
    data: ProbeRows,
    by_context: dict[str, np.ndarray],
    *,
    include_concat: bool,
    progress: bool = False,
    times: PhaseTimes | None = None,
    label: str = "probe fits",
) -> dict[str, ProbeEvaluation]:
    """Every layer's probe (and "concat" when ``include_concat``) from one activation row per distinct context
    (``by_context``: name -> [U, width], rows in increasing ``data.context_ids`` order), as the run fits it:
    the [probe] settings' splits and repeats, the context-disjoint split, the shuffled control, ``seed``."""
    with phase(
        label,
        total=probe_fits(settings.n_repeats, len(by_context), include_concat),
        enabled=progress,
        unit="fit",
        times=times,
    ) as tick:
        return probe_layers(
            by_context,
            data.Y,
            data.groups,
            include_concat=include_concat,
            per_context=True,
            contexts=data.context_ids,
            positions=data.positions,
            sample_weight=data.weights,
            train_fraction=settings.train_fraction,
            n_repeats=settings.n_repeats,
            context_test_fraction=CONTEXT_TEST_FRACTION,
            seed=seed,
            on_fit=tick,
        )


def probe_outcome(
    settings: ProbeSettings,
    ctx: ContextSet,
    data: ProbeRows,
    evaluations: dict[str, ProbeEvaluation],
    layer: str,
    figure_layer: str,
    untrained: dict[str, Any] | None,
) -> ProbeOutcome:
    """The `ProbeOutcome` of fitted probes (`fit_probes`) over the strings of ``ctx``: probe.json's results and
    settings (``layer``: the probe layer, ``figure_layer``: whose shuffled control the figures draw)."""
    info = {
        "rows": settings.rows,
        "weighting": settings.weighting,
        "n_strings": int(ctx.tokens.shape[0]),
        "bos": bool(ctx.bos),  # with a start token, position 0's rows are one context whose belief is the prior
        "n_rows": int(data.n_rows),
        "n_contexts": int(evaluations[layer].result.n_contexts),
        "train_fraction": settings.train_fraction,
        "n_repeats": settings.n_repeats,
        "heldout": {
            "protocol": HELDOUT_STRINGS_TEXT,
            "train_fraction": settings.train_fraction,
            "n_repeats": settings.n_repeats,
        },
        "heldout_contexts": {
            "protocol": HELDOUT_CONTEXTS_TEXT,
            "test_fraction": CONTEXT_TEST_FRACTION,
            "n_repeats": settings.n_repeats,
            "stratified_by": "position",
        },
    }
    return ProbeOutcome(
        results={name: ev.result for name, ev in evaluations.items()},
        probe_layer=layer,
        data=data,
        predictions=RowPredictions(evaluations),
        shuffled=evaluations[figure_layer].shuffled,
        untrained=untrained,
        info=info,
    )
