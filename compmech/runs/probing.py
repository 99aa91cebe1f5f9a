"""Probe a trained model's residual stream for the beliefs: activations, rows, every layer's probe.

The runner's probing phase. Like `compmech.runs.experiment`, it ties the packages together and hands
plain arrays on: `predictive_models` computes the activations (each distinct prefix once), `probes`
fits and scores the probes on context-aggregated rows (see `probes.evaluation`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from compmech.runs.progress import PhaseTimes, phase
from compmech.runs.records import ProbeOutcome

if TYPE_CHECKING:  # the ContextSet type only; importing the runner here would be circular
    from compmech.runs.experiment import ContextSet

#: What the two held-out numbers of probe.json measure (written into probe.json beside the settings).
HELDOUT_CONTEXTS_TEXT = (
    "context-disjoint: at each position, floor(test_fraction * n) of its n distinct contexts (prefixes) are held "
    "out (none where n < 1 / test_fraction); the probe is fitted on the rows of the other contexts and scored on "
    "the rows of the held-out ones (rows weighted as in the in-sample fit), so no context is in both splits")
HELDOUT_STRINGS_TEXT = (
    "the paper's protocol: strings split at random, fitted on train_fraction of them and scored on the rest; "
    "with all positions pooled most test rows' contexts (every short prefix) are also fit rows")


def probe_model(cfg, model_cfg, params_state, ctx: "ContextSet", figure_layer: str, *, progress: bool = False,
                times: PhaseTimes | None = None, untrained_params: Any = None) -> ProbeOutcome:
    """Probe every residual-stream layer (and all of them concatenated) for the beliefs.

    ``cfg`` is the `ExperimentConfig` (its ``probe`` settings and ``seed`` are used), ``model_cfg`` the
    model's `TransformerConfig`, ``ctx`` the `ContextSet` of every allowed string. With
    ``untrained_params`` (the model at initialisation), the paper's probe layer is also probed there,
    with the same rows, splits and seed: the untrained-model control. The shuffled predictions are those
    of the control `evaluate_probe` fitted, not a refit.
    """
    from predictive_models import compute_activations, layer_names, probe_layer_name
    from probes import CONTEXT_TEST_FRACTION, probe_fits, probe_layers, probe_rows

    settings = cfg.probe
    T = ctx.tokens.shape[1]
    layer = probe_layer_name(model_cfg)
    with phase("activations", total=T, enabled=progress, unit="position", times=times) as tick:
        acts = compute_activations(model_cfg, params_state, ctx.tokens, on_step=tick)  # name -> [N, T, d_model]
    rows = {name: probe_rows(a, ctx.beliefs, ctx.tokens, ctx.probs, rows=settings.rows,
                             weighting=settings.weighting) for name, a in acts.items()}
    del acts
    first = next(iter(rows.values()))
    n_fits = probe_fits(settings.n_repeats, len(layer_names(model_cfg)), settings.include_concat)
    if untrained_params is not None:
        n_fits += probe_fits(settings.n_repeats, 1, include_concat=False)
    fit_args = dict(contexts=first.context_ids, positions=first.positions, sample_weight=first.weights,
                    train_fraction=settings.train_fraction, n_repeats=settings.n_repeats,
                    context_test_fraction=CONTEXT_TEST_FRACTION, seed=cfg.seed)
    with phase("probe fits", total=n_fits, enabled=progress, unit="fit", times=times) as tick:
        evaluations = probe_layers({name: r.X for name, r in rows.items()}, first.Y, first.groups,
                                   include_concat=settings.include_concat, on_fit=tick, **fit_args)
        data = rows[layer]  # the rows (X of the probe layer, Y, ids) for the figures and the geometry
        del rows
        untrained = None
        if untrained_params is not None:
            x0 = compute_activations(model_cfg, untrained_params, ctx.tokens, names=[layer])[layer]
            r0 = probe_rows(x0, ctx.beliefs, ctx.tokens, ctx.probs, rows=settings.rows, weighting=settings.weighting)
            del x0
            untrained = probe_layers({layer: r0.X}, r0.Y, r0.groups, include_concat=False, on_fit=tick,
                                     **fit_args)[layer].result
    info = {
        "rows": settings.rows,
        "weighting": settings.weighting,
        "n_strings": int(ctx.tokens.shape[0]),
        "bos": bool(ctx.bos),  # with a start token, position 0's rows are one context whose belief is the prior
        "n_rows": int(first.n_rows),
        "n_contexts": int(evaluations[layer].result.n_contexts),
        "train_fraction": settings.train_fraction,
        "n_repeats": settings.n_repeats,
        "heldout": {"protocol": HELDOUT_STRINGS_TEXT, "train_fraction": settings.train_fraction,
                    "n_repeats": settings.n_repeats},
        "heldout_contexts": {"protocol": HELDOUT_CONTEXTS_TEXT, "test_fraction": CONTEXT_TEST_FRACTION,
                             "n_repeats": settings.n_repeats, "stratified_by": "position"},
    }
    return ProbeOutcome(results={name: ev.result for name, ev in evaluations.items()}, probe_layer=layer,
                        data=data,
                        predictions={name: ev.predictions for name, ev in evaluations.items()},
                        shuffled=evaluations[figure_layer].shuffled, untrained=untrained, info=info)
