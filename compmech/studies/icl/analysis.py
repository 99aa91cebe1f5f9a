"""The in-context learning study (Riechers, Bigelow, Alt & Shai 2025, "Next-token pretraining implies in-context
learning"): on a non-ergodic source (each sequence from one of several components), does the model's loss fall
with position as the Bayes-optimal one does, and does its residual stream carry the posterior over sources?

- theory (`compmech.studies.icl.theory.icl_theory`, the one dispatch over source families): the optimal loss at every number
  of tokens seen, each component's own optimum (told the source), the never-inferring predictors (each
  component's model applied to every sequence), the excess over the told-the-source loss and its power-law and
  exponential fits;
- the model's loss by position (exact over every string in the exact regime; on ``eval_sequences`` fresh
  sampled sequences, own key stream, with standard errors, in the sampled regime) against all of them, its gap
  to the optimum measured on the same sequences (the mean KL divergence of the model's next-token law from the
  exact one: a paired estimate), at the end and at every ``tokens_<N>`` checkpoint (and at initialisation);
- linear probes of every analysed layer onto (a) the posterior over sources P(k | context) and (b) the full
  belief over the mixture's states: all positions pooled and at each position alone, with the context-disjoint
  held-out R² and the shuffled control (`probes.evaluate_probe`), and the untrained model;
- whether the in-context gain appears gradually or in a jump over training (`transition`), and for a
  transformer each head's induction score (`probes.induction`).

Writes ``icl.json`` and ``figures/icl_loss.png``, ``icl_training.png``, ``icl_probe.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model is first run
from compmech.runs.files import write_json_atomic
from compmech.runs.progress import phase
from compmech.runs.settings import ExperimentConfig
from compmech.runs.contexts import SampledBlock
from compmech.runs.sources import Source
from compmech.studies.base import StudyInputs, StudyOutput

THEORY_METHODS = ("auto", "exact", "monte_carlo")
#: Key streams of the study's own samples, folded into the config's seed (the run uses others).
EVAL_STREAM, PROBE_STREAM = 2**31 - 11, 2**31 - 12
#: Positions whose seen count is at least this are held to the 2% target (the issue's "every position >= 4").
TARGET_MIN_SEEN = 4
#: The posterior-probe target is read at positions with at least this many tokens seen.
POSTERIOR_MIN_SEEN = 8
#: A transition is called abrupt when one interval between checkpoints carries at least this share of the rise.
ABRUPT_SHARE = 0.6


@dataclass(frozen=True)
class Settings:
    """[studies.icl] options."""

    layers: tuple[str, ...] = ()  # activations probed (names as in [probe] layers); empty = the residual stream
    theory_method: str = "auto"  # "auto" (exact while the words are few), "exact" or "monte_carlo"
    theory_samples: int = 20_000  # Monte-Carlo words of the theory (stratified over the components)
    eval_sequences: int = 2_000  # sampled regime: fresh sequences for the model's loss by position
    probe_sequences: int = 2_000  # sampled regime: fresh sequences for the probes (every position a row)
    n_repeats: int = 2  # held-out splits of each probe
    fit_min_seen: int = 1  # the excess fits use positions with at least this many tokens seen
    induction_sequences: int = 256  # sequences whose attention patterns give the induction scores

    def __post_init__(self) -> None:
        if self.theory_method not in THEORY_METHODS:
            raise ValueError(f"theory_method must be one of {', '.join(THEORY_METHODS)}; got {self.theory_method!r}")
        for name in ("theory_samples", "eval_sequences", "probe_sequences", "n_repeats", "induction_sequences"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (2 if name != "n_repeats" else 1):
                raise ValueError(f"{name} must be an integer >= {2 if name != 'n_repeats' else 1}; got {v!r}")
        if isinstance(self.fit_min_seen, bool) or not isinstance(self.fit_min_seen, int) or self.fit_min_seen < 1:
            raise ValueError(f"fit_min_seen must be an integer >= 1; got {self.fit_min_seen!r}")
        if not all(isinstance(n, str) and n for n in self.layers):
            raise ValueError(f"layers must be activation names; got {list(self.layers)!r}")


def check(cfg: ExperimentConfig, source: Source, model_cfg: predictive_models.ModelConfig) -> None:
    """The process must be a non-ergodic source with an in-context learning theory (`compmech.studies.icl.theory`)."""
    from compmech.studies.icl.theory import has_icl_theory

    if not has_icl_theory(source.process):
        raise ValueError("the icl study needs a non-ergodic source: [process] kind = \"mixture\" with one "
                         "[[process.components]] table per component, or kind = \"random_markov\"")
    if model_cfg.context_length < 3:
        raise ValueError(f"the icl study needs [model] context_length >= 3; got {model_cfg.context_length}")


# ---------------------------------------------------------------------------- the model's loss


@dataclass(frozen=True, eq=False)
class ModelLoss:
    """A model's next-token loss by position on a fixed evaluation set, and its gap to the exact laws."""

    loss: np.ndarray  # [T] nats, weighted mean of -sum_x p log q
    loss_se: np.ndarray  # [T] standard error (zeros for the exact set)
    gap: np.ndarray  # [T] nats, weighted mean of KL(p || q) = loss - entropy of the exact law, on the same rows
    gap_se: np.ndarray  # [T]


@dataclass(frozen=True, eq=False)
class EvalRows:
    """The sequences a model's loss is measured on: every string with its probability, or a fresh sample."""

    tokens: np.ndarray  # [N, T] int32
    next_token_probs: np.ndarray  # [N, T, V (+1 with bos)] float64, exact P(next | tokens[:, :t+1])
    weights: np.ndarray  # [N] summing to 1
    sampled: bool  # True: weights uniform over drawn sequences (standard errors); False: exact


def model_loss(model_cfg: Any, params: Any, rows: EvalRows) -> ModelLoss:
    """The model's loss and its KL gap by position on ``rows`` (standard errors for a sample)."""
    from predictive_models import compute_log_probs

    log_q = compute_log_probs(model_cfg, params, rows.tokens, method="full").astype(np.float64)  # [N, T, V]
    p = rows.next_token_probs
    ce = -np.einsum("ntx,ntx->nt", p, log_q)  # [N, T]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=2)  # [N, T]
    w = rows.weights
    loss, gap = w @ ce, w @ (ce - h)
    if rows.sampled:
        n = ce.shape[0]
        loss_se, gap_se = ce.std(axis=0, ddof=1) / np.sqrt(n), (ce - h).std(axis=0, ddof=1) / np.sqrt(n)
    else:
        loss_se = gap_se = np.zeros_like(loss)
    return ModelLoss(loss=loss, loss_se=loss_se, gap=gap, gap_se=gap_se)


def _sample_rows(cfg: ExperimentConfig, source: Source, model_cfg: predictive_models.ModelConfig, n: int, stream: int
                 ) -> SampledBlock:
    """``n`` fresh sequences of the model's length (own key stream) with beliefs and exact next-token laws."""
    import jax

    key = jax.random.fold_in(jax.random.key(cfg.seed), stream)
    return source.sample_block(key, n, model_cfg.context_length, cfg.data.bos)


# ---------------------------------------------------------------------------- probes by position


def _num(v: Any) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _probe(X: np.ndarray, Y: np.ndarray, data: Any, mask: np.ndarray | None, n_repeats: int, seed: int
           ) -> dict[str, Any]:
    """One probe on the rows of ``mask`` (None: all, stratified by position): the ProbeResult's fields (with the
    context-disjoint held-out R²) and ``r2_shuffled``, the same held-out R² of a probe onto shuffled targets."""
    from probes import CONTEXT_TEST_FRACTION, evaluate_probe

    m = slice(None) if mask is None else mask
    w = data.weights[m]
    n_ctx = int(np.unique(data.context_ids[m]).size)
    if mask is not None and n_ctx * CONTEXT_TEST_FRACTION < 1:  # e.g. the 3 one-token contexts of Mess3
        keys = ("mse", "r2", "mse_heldout_contexts", "r2_heldout_contexts", "mse_shuffled", "r2_shuffled")
        return {**{k: None for k in keys}, "n_contexts": n_ctx,
                "heldout_contexts_note": f"only {n_ctx} distinct contexts at this position: none held out"}
    fit = dict(contexts=data.context_ids[m], positions=data.positions[m] if mask is None else None, sample_weight=w,
               n_repeats=n_repeats, context_test_fraction=CONTEXT_TEST_FRACTION, seed=seed)
    res = evaluate_probe(X[m], Y[m], data.groups[m], **fit).result
    d = {k: (_num(v) if isinstance(v, float) else v) for k, v in res.to_dict().items()}
    # the shuffled control, held out as the probe is: the targets' rows permuted (each row keeps its activation
    # and weight), fitted on the fit contexts and scored on the held-out ones
    Yp = Y[m][np.random.default_rng(seed).permutation(int(w.shape[0]))]
    d["r2_shuffled"] = _num(evaluate_probe(X[m], Yp, data.groups[m], **fit).result.r2_heldout_contexts)
    return d


def probe_by_position(X: np.ndarray, Y: np.ndarray, data: Any, seen: np.ndarray, n_repeats: int, seed: int
                      ) -> dict[str, Any]:
    """A probe of X [R, d] onto Y [R, k] with all positions pooled, and one at each position alone."""
    by_pos = []
    for t in range(len(seen)):
        mask = data.positions == t
        r = _probe(X, Y, data, mask, n_repeats, seed)
        by_pos.append({"seen": int(seen[t]), **{k: r[k] for k in (
            "r2_heldout_contexts", "mse_heldout_contexts", "r2", "mse", "r2_shuffled", "mse_shuffled", "n_contexts",
            "heldout_contexts_note")}})
    pooled = _probe(X, Y, data, None, n_repeats, seed)
    return {"r2_heldout_contexts": pooled["r2_heldout_contexts"], "pooled": pooled, "by_position": by_pos}


def _min_from(by_pos: list[dict], key: str, min_seen: int) -> float | None:
    vals = [r[key] for r in by_pos if r["seen"] >= min_seen]
    return None if not vals or any(v is None for v in vals) else float(min(vals))


# ---------------------------------------------------------------------------- over training


def icl_gain(loss: np.ndarray, seen: np.ndarray) -> float:
    """The in-context gain of a loss curve [T]: its mean at 1..3 tokens seen minus its mean over the last quarter
    of the positions (nats; what reading the context is worth between early and late positions)."""
    early = (seen >= 1) & (seen <= 3)
    late = np.arange(len(seen)) >= len(seen) - max(1, len(seen) // 4)
    return float(loss[early].mean() - loss[late].mean())


def transition(tokens: list[int], fraction: list[float]) -> dict[str, Any]:
    """Gradual or abrupt: the largest share of the rise of the in-context gain carried by one checkpoint interval.

    ``fraction``: the model's in-context gain over the optimum's at each point (initialisation first, the end
    last). The rise is the sum of the increases between consecutive points (dips do not shrink it); abrupt when
    one interval carries at least `ABRUPT_SHARE` of it and there are at least three intervals; undetermined with
    fewer intervals or no rise (the curve never gets 0.05 above its start). A heuristic at checkpoint
    resolution: a jump between two checkpoints looks the same as a fast smooth rise there.
    """
    f = np.asarray(fraction, np.float64)
    out: dict[str, Any] = {"tokens": [int(t) for t in tokens], "icl_fraction": [float(x) for x in f],
                           "rule": f"abrupt if one interval carries >= {ABRUPT_SHARE:g} of the summed increases "
                                   "(>= 3 intervals)"}
    if f.size < 4 or not float(f.max() - f[0]) > 0.05:
        return {**out, "kind": "undetermined", "max_interval_share": None, "interval": None}
    steps = np.diff(f)
    rise = float(np.clip(steps, 0.0, None).sum())
    i = int(np.argmax(steps))
    share = float(steps[i] / rise)
    return {**out, "kind": "abrupt" if share >= ABRUPT_SHARE else "gradual", "max_interval_share": share,
            "interval": [int(tokens[i]), int(tokens[i + 1])]}


def induction_by_layer(model_cfg: Any, params: Any, tokens: np.ndarray, bos_id: int | None) -> dict[str, Any]:
    """Each attention layer's per-head induction scores (both modes) on ``tokens`` (a transformer only)."""
    from predictive_models import compute_activations
    from probes.induction import induction_scores

    names = [f"blocks.{l}.attn.hook_pattern" for l in range(int(model_cfg.n_layers))]
    acts = compute_activations(model_cfg, params, tokens, names=names, method="full")  # [N, H, T, T] each
    return {name: {mode: induction_scores(acts[name], tokens, mode=mode, ignore=bos_id).to_json()
                   for mode in ("last", "all")} for name in names}


def _max_induction(ind: dict[str, Any], mode: str = "all") -> float:
    return max(max(v[mode]["score"]) for v in ind.values())


# ---------------------------------------------------------------------------- the study


def run(inputs: StudyInputs, settings: Settings) -> StudyOutput:
    """The study (see the module docstring); writes icl.json and its figures."""
    from compmech.studies.icl.theory import fit_excess, icl_theory, source_posterior
    from compmech.runs.analysis import checkpoint_tokens
    from compmech.runs.run_figures import save_figures
    from figures import process_title
    from compmech.studies.icl.plots import plot_icl_loss, plot_icl_probe, plot_icl_training
    from predictive_models import compute_activations, kind_of, layer_names, load_checkpoint
    from probes import probe_rows

    cfg, ctx, run_dir, process, model_cfg = inputs.cfg, inputs.ctx, inputs.run_dir, inputs.process, inputs.model_cfg
    bos = bool(cfg.data.bos)
    T = int(model_cfg.context_length)
    seen = np.arange(T) + (0 if bos else 1)  # tokens seen at each model position
    sampled = inputs.regime.sampled
    names = list(settings.layers) or layer_names(model_cfg)

    with phase("icl theory", total=None, enabled=inputs.progress):
        theory = icl_theory(process, int(seen[-1]), method=settings.theory_method, n_samples=settings.theory_samples,
                            seed=cfg.seed)
    curve = theory.curve
    opt, opt_se = curve.optimal[seen], curve.optimal_se[seen]
    comp, comp_se = curve.component[:, seen], curve.component_se[:, seen]
    known = curve.known_source[seen]
    fixed, fixed_se = theory.fixed_source[:, seen], theory.fixed_source_se[:, seen]
    best_fixed = theory.best_fixed_source
    theory_fit = fit_excess(curve.seen, curve.excess, curve.optimal_se if curve.method != "exact" else None,
                            min_seen=settings.fit_min_seen)

    # ---- the model's loss by position, at the end, at initialisation and at every checkpoint
    if sampled:
        block = _sample_rows(cfg, inputs.source, model_cfg, settings.eval_sequences, EVAL_STREAM)
        rows = EvalRows(block.tokens, block.next_token_probs, np.full(block.tokens.shape[0], 1.0 / block.tokens.shape[0]),
                        True)
    else:
        rows = EvalRows(ctx.tokens, ctx.next_token_probs, ctx.probs / ctx.probs.sum(), False)
    paths = sorted((run_dir / "checkpoints").glob("tokens_*.msgpack"), key=checkpoint_tokens)
    theory_gain = icl_gain(opt, seen)
    with phase("icl model loss", total=len(paths) + 2, enabled=inputs.progress) as tick:
        final = model_loss(model_cfg, inputs.params_state, rows)
        tick()
        points = [(0, 0, model_loss(model_cfg, inputs.untrained_params, rows), inputs.untrained_params)]
        tick()
        for path in paths:
            ckpt = load_checkpoint(path)
            step = int(ckpt["step"])
            if step == points[-1][1]:  # two requested token counts saved at one step (a chunk boundary): once
                tick()
                continue
            points.append((step * int(ckpt["train_config"]["batch_size"]) * T, step,
                           model_loss(model_cfg, ckpt["params"], rows), ckpt["params"]))
            tick()
    # the model's excess over the told-the-source loss, as the theory's excess plus the model's paired KL gap
    # (E[model loss] = optimum + E[KL]): far less noisy than its loss on the sample minus the told loss
    known_se = np.sqrt(np.square(curve.weights) @ np.square(comp_se))
    model_excess = curve.excess[seen] + final.gap
    model_excess_se = np.sqrt(opt_se ** 2 + known_se ** 2 + final.gap_se ** 2)
    model_fit = fit_excess(seen, model_excess, model_excess_se if (sampled or curve.method != "exact") else None,
                           min_seen=settings.fit_min_seen)
    rel_gap = final.gap / opt  # [T] the model's excess over the optimum, relative, paired on the same rows
    rel_gap_se = final.gap_se / opt
    target_mask = seen >= TARGET_MIN_SEEN
    max_rel_gap = float(rel_gap[target_mask].max()) if target_mask.any() else None
    early = (seen >= 1) & (seen <= 3)

    # ---- probes of every layer onto the source posterior and the belief, pooled and by position
    if sampled:
        pblock = _sample_rows(cfg, inputs.source, model_cfg, settings.probe_sequences, PROBE_STREAM)
        p_tokens, p_beliefs, p_probs = pblock.tokens, pblock.beliefs, np.full(pblock.tokens.shape[0], 1.0)
    else:
        p_tokens, p_beliefs, p_probs = ctx.tokens, ctx.beliefs, ctx.probs
    posterior = source_posterior(process, beliefs=p_beliefs)  # [N, T, K]
    K, S = posterior.shape[-1], p_beliefs.shape[-1]
    targets = np.concatenate([posterior, p_beliefs], axis=-1)  # [N, T, K + S]
    probe_out: dict[str, dict[str, Any]] = {"posterior": {}, "belief": {}}
    untrained_out: dict[str, dict[str, Any]] = {}
    with phase("icl probes", total=2 * len(names), enabled=inputs.progress) as tick:
        for name in names:
            for params, control in ((inputs.params_state, False), (inputs.untrained_params, True)):
                acts = compute_activations(model_cfg, params, p_tokens, names=[name])[name]  # [N, T, d]
                data = probe_rows(acts, targets, p_tokens, p_probs, rows="distinct_contexts", weighting="probability")
                del acts
                Yp, Yb = data.Y[:, :K], data.Y[:, K:]
                if control:
                    untrained_out[name] = {"posterior": _probe(data.X, Yp, data, None, settings.n_repeats, cfg.seed),
                                           "belief": _probe(data.X, Yb, data, None, settings.n_repeats, cfg.seed)}
                else:
                    probe_out["posterior"][name] = probe_by_position(data.X, Yp, data, seen, settings.n_repeats, cfg.seed)
                    probe_out["belief"][name] = probe_by_position(data.X, Yb, data, seen, settings.n_repeats, cfg.seed)
                tick()
    for target in probe_out:
        for name in names:
            probe_out[target][name]["untrained"] = untrained_out[name][target]
            probe_out[target][name][f"min_r2_heldout_contexts_seen_ge_{POSTERIOR_MIN_SEEN}"] = _min_from(
                probe_out[target][name]["by_position"], "r2_heldout_contexts", POSTERIOR_MIN_SEEN)

    def layer_score(name: str) -> float:
        v = probe_out["posterior"][name][f"min_r2_heldout_contexts_seen_ge_{POSTERIOR_MIN_SEEN}"]
        if v is None:
            v = probe_out["posterior"][name]["r2_heldout_contexts"]
        return -np.inf if v is None else v

    best_layer = max(names, key=layer_score)

    # ---- over training: the in-context gain, the best layer's posterior probe, induction
    transformer = kind_of(model_cfg) == "transformer"
    n_ind = min(settings.induction_sequences, p_tokens.shape[0])
    bos_id = process.vocab_size if bos else None
    evolution = []
    with phase("icl over training", total=len(points), enabled=inputs.progress) as tick:
        for tokens_seen, step, ml, params in [*points, (None, None, final, inputs.params_state)]:
            acts = compute_activations(model_cfg, params, p_tokens, names=[best_layer])[best_layer]
            data = probe_rows(acts, targets, p_tokens, p_probs, rows="distinct_contexts", weighting="probability")
            post = _probe(data.X, data.Y[:, :K], data, None, settings.n_repeats, cfg.seed)
            point = {"tokens": tokens_seen, "step": step, "model_loss_by_position": [float(x) for x in ml.loss],
                     "model_gap_by_position": [float(x) for x in ml.gap],
                     "icl_fraction": icl_gain(ml.loss, seen) / theory_gain if theory_gain > 0 else None,
                     "posterior_r2_heldout_contexts": post["r2_heldout_contexts"]}
            if transformer:
                point["induction_max_all"] = _max_induction(
                    induction_by_layer(model_cfg, params, p_tokens[:n_ind], bos_id))
            evolution.append(point)
            if tokens_seen is not None:
                tick()
    last = evolution.pop()  # the final model: reported at top level
    last["tokens"] = int(cfg.training["steps"]) * int(cfg.training["batch_size"]) * T
    last["step"] = int(cfg.training["steps"])
    induction = induction_by_layer(model_cfg, inputs.params_state, p_tokens[:n_ind], bos_id) if transformer else None
    trans = transition([e["tokens"] for e in evolution] + [last["tokens"]],
                       [e["icl_fraction"] for e in evolution] + [last["icl_fraction"]]) if theory_gain > 0 else None

    post_best = probe_out["posterior"][best_layer]
    record = {
        "source": process.name, "regime": inputs.regime.name, "bos": bos, "seen": [int(s) for s in seen],
        "optimal_loss_by_position": [float(x) for x in opt],
        "optimal_loss_by_position_se": [float(x) for x in opt_se],
        "component_optimal_loss_by_position": [[float(x) for x in row] for row in comp],
        "component_optimal_loss_by_position_se": [[float(x) for x in row] for row in comp_se],
        "known_source_loss_by_position": [float(x) for x in known],
        "fixed_source_loss_by_position": [[float(x) for x in row] for row in fixed],
        "fixed_source_loss_by_position_se": [[float(x) for x in row] for row in fixed_se],
        "fixed_source_labels": list(theory.fixed_source_labels), "fixed_source_definition": theory.definition,
        "best_fixed_source": theory.fixed_source_labels[best_fixed],
        "model_loss_by_position": [float(x) for x in final.loss],
        "model_loss_by_position_se": [float(x) for x in final.loss_se],
        "model_gap_by_position": [float(x) for x in final.gap],
        "model_gap_by_position_se": [float(x) for x in final.gap_se],
        "model_excess_by_position": [float(x) for x in model_excess],
        "model_excess_by_position_se": [float(x) for x in model_excess_se],
        "model_relative_gap_by_position": [float(x) for x in rel_gap],
        "model_relative_gap_by_position_se": [float(x) for x in rel_gap_se],
        "model_eval": {"sequences": int(rows.tokens.shape[0]), "sampled": rows.sampled,
                       "gap": "mean KL(exact next-token law || model's) on the same rows: model loss minus the "
                              "optimum measured on those rows (a paired estimate)",
                       "excess": "the model's loss minus the told-the-source loss, estimated as the theory's excess "
                                 "(optimal - told) plus the model's gap"},
        "theory": {"method": curve.method, "n_samples": int(curve.n_samples), "seen": [int(s) for s in curve.seen],
                   "optimal": curve.optimal.tolist(), "optimal_se": curve.optimal_se.tolist(),
                   "component": curve.component.tolist(), "component_se": curve.component_se.tolist(),
                   "known_source": curve.known_source.tolist(), "excess": curve.excess.tolist(),
                   "weights": curve.weights.tolist(), "labels": list(curve.labels)},
        "fits": {"theory": theory_fit.to_json(), "model": model_fit.to_json(),
                 "excess": "loss minus the told-the-source loss (prior-weighted components' optima)"},
        "targets": {
            f"max_relative_gap_seen_ge_{TARGET_MIN_SEEN}": _num(max_rel_gap),
            "within_2_percent": None if max_rel_gap is None else bool(max_rel_gap <= 0.02),
            "early_seen": [int(s) for s in seen[early]],
            "model_loss_early": [float(x) for x in final.loss[early]],
            "best_fixed_source_loss_early": [float(x) for x in fixed[best_fixed][early]],
            "model_below_best_fixed_source_early": bool(np.all(final.loss[early] + 2 * final.loss_se[early]
                                                               < fixed[best_fixed][early])),
            f"posterior_min_r2_heldout_contexts_seen_ge_{POSTERIOR_MIN_SEEN}":
                post_best[f"min_r2_heldout_contexts_seen_ge_{POSTERIOR_MIN_SEEN}"],
        },
        "best_layer": best_layer,
        "posterior_probe": probe_out["posterior"], "belief_probe": probe_out["belief"],
        "over_training": evolution, "final": last, "transition": trans, "induction": induction,
    }
    write_json_atomic(run_dir / "icl.json", record)

    # ---- figures
    title = process_title(process.name, process.params)
    train_tokens = [e["tokens"] for e in evolution]
    draws = {
        "icl_loss": lambda: plot_icl_loss(
            curve.seen, curve.optimal, curve.optimal_se, curve.component, curve.labels, curve.known_source,
            seen, final.loss, final.loss_se, fixed[best_fixed], theory.fixed_source_labels[best_fixed],
            model_excess=model_excess, model_excess_se=model_excess_se, theory_fit=theory_fit, model_fit=model_fit,
            title=title),
        "icl_training": lambda: plot_icl_training(
            seen, np.array([e["model_loss_by_position"] for e in evolution] + [final.loss.tolist()]),
            [*train_tokens, None], opt,
            gaps=np.array([e["model_gap_by_position"] for e in evolution] + [final.gap.tolist()]), title=title),
        "icl_probe": lambda: plot_icl_probe(
            seen, {n: probe_out["posterior"][n]["by_position"] for n in names},
            {n: probe_out["belief"][n]["by_position"] for n in names}, title=title),
    }
    figs = save_figures(cfg, run_dir, draws)

    # ---- report tables and headline
    show = [t for t in range(T) if seen[t] in (0, 1, 2, 4, 8, 16, 32, 64) or t == T - 1]
    loss_rows = [[str(int(seen[t])), _f(opt[t], opt_se[t]), _f(known[t]), _f(fixed[best_fixed][t], fixed_se[best_fixed][t]),
                  _f(final.loss[t], final.loss_se[t]), f"{100 * rel_gap[t]:.3f} ± {100 * rel_gap_se[t]:.3f}"]
                 for t in show]
    fit_rows = []
    for who, fits in (("theory", theory_fit), ("model", model_fit)):
        pl, ex = fits.power_law, fits.exponential
        fit_rows.append([who, "–" if pl is None else f"{pl.rate:.3g} ± {pl.rate_se:.2g}",
                         "–" if pl is None else f"{pl.rmse_log:.3g}",
                         "–" if ex is None else f"{ex.rate:.3g} ± {ex.rate_se:.2g}",
                         "–" if ex is None else f"{ex.rmse_log:.3g}", fits.better or "–"])
    probe_rows_ = [[n, _g(probe_out["posterior"][n]["r2_heldout_contexts"]),
                    _g(probe_out["posterior"][n][f"min_r2_heldout_contexts_seen_ge_{POSTERIOR_MIN_SEEN}"]),
                    _g(probe_out["posterior"][n]["pooled"]["r2_shuffled"]),
                    _g(probe_out["posterior"][n]["untrained"]["r2_heldout_contexts"]),
                    _g(probe_out["belief"][n]["r2_heldout_contexts"])] for n in names]
    tables = [
        ("In-context learning: loss by position (nats)",
         ["tokens seen", "optimal", "told the source", f"never inferring (best: {theory.fixed_source_labels[best_fixed]})",
          "model", "model over optimal, %"], loss_rows,
         f"Theory: {curve.method}" + (f" ({curve.n_samples:,} sampled words)" if curve.n_samples else "")
         + f"; the model on {rows.tokens.shape[0]:,} {'sampled sequences' if rows.sampled else 'strings (exact)'}; "
         "model over optimal: mean KL divergence of its next-token law from the exact one on the same rows, over "
         "the optimum. Never inferring: " + theory.definition + "."),
        ("In-context learning: fits of the excess loss", ["curve", "power law b", "rmse ln", "exponential tau (tokens)",
                                                          "rmse ln", "better"], fit_rows,
         "Excess = loss minus the told-the-source loss (the model's: the theory's excess plus its paired KL gap); "
         "e = a n^-b or a exp(-n / tau); " + theory_fit.note + "."),
        ("In-context learning: source-posterior probes", ["layer", "R² held out (contexts), pooled",
                                                          f"min R² held out, seen >= {POSTERIOR_MIN_SEEN}",
                                                          "R² shuffled", "R² held out, untrained",
                                                          "belief R² held out, pooled"], probe_rows_,
         "Linear probes onto P(source | context) (and onto the belief over the mixture's states), context-disjoint "
         "held-out splits; by position in icl.json and the figure."),
    ]
    if induction is not None:
        tables.append(("In-context learning: induction scores", ["layer", "per head (last occurrence)",
                                                                  "per head (every occurrence)", "uniform baseline"],
                       [[n, ", ".join(f"{s:.3f}" for s in v["last"]["score"]),
                         ", ".join(f"{s:.3f}" for s in v["all"]["score"]), f"{v['all']['baseline']:.3f}"]
                        for n, v in induction.items()],
                       "Attention mass from a token to the position after an earlier occurrence of the same token."))
    captions = {
        "icl_loss": "Left: loss by tokens seen: the Bayes-optimal predictor (black), each component's own optimum "
                    "(told the source, thin), their prior-weighted mean, the best never-inferring predictor (dashed) "
                    "and the model (dots, ± 2 s.e.). Right: the excess over the told-the-source loss on a log scale "
                    "(the model's: the theory's excess plus its paired KL gap to the optimum), with the power-law and "
                    "exponential fits.",
        "icl_training": "The model's gap to the optimum over the optimum (its paired KL divergence from the exact "
                        "next-token law) by position (columns) at initialisation, each checkpoint and the end (rows); "
                        "right: its loss by position at each of them.",
        "icl_probe": "Context-disjoint held-out R² of linear probes at each position, per layer: onto the posterior "
                     "over sources (left) and onto the belief over the mixture's states (right); grey: shuffled control.",
    }
    headline = {
        "theory_method": curve.method, "theory_better_fit": theory_fit.better,
        "theory_power_law_b": None if theory_fit.power_law is None else theory_fit.power_law.rate,
        "theory_exponential_tau": None if theory_fit.exponential is None else theory_fit.exponential.rate,
        "model_better_fit": model_fit.better,
        "model_power_law_b": None if model_fit.power_law is None else model_fit.power_law.rate,
        "model_exponential_tau": None if model_fit.exponential is None else model_fit.exponential.rate,
        f"max_relative_gap_seen_ge_{TARGET_MIN_SEEN}": _num(max_rel_gap),
        "model_below_best_fixed_source_early": record["targets"]["model_below_best_fixed_source_early"],
        "best_layer": best_layer,
        "posterior_r2_heldout_contexts": post_best["r2_heldout_contexts"],
        f"posterior_min_r2_heldout_contexts_seen_ge_{POSTERIOR_MIN_SEEN}":
            post_best[f"min_r2_heldout_contexts_seen_ge_{POSTERIOR_MIN_SEEN}"],
        "posterior_r2_shuffled": post_best["pooled"]["r2_shuffled"],
        "transition": None if trans is None else trans["kind"],
    }
    return StudyOutput(name="icl", json_file="icl.json", figures=tuple(figs), captions=captions, tables=tuple(tables),
                       headline=headline)


def _f(v: float, se: float | None = None) -> str:
    return f"{v:.4f}" + (f" ± {se:.4f}" if se else "")


def _g(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}"
