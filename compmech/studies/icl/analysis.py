"""The in-context learning study (Riechers, Bigelow, Alt & Shai 2025, "Next-token pretraining implies in-context
learning"): on a non-ergodic source (each sequence from one of several components), does the model's loss fall
with position as the Bayes-optimal one does, and does its residual stream carry the posterior over sources?

- theory (`compmech.studies.icl.theory.icl_theory`, the one dispatch over source families): the optimal loss at every
  number of tokens seen, each component's own optimum (told the source), the never-inferring predictors (each
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
  transformer each head's induction score (`probes.induction`);
- for a mixture whose components emit different tokens (``vocab_maps``), the authors' measure of the induction
  transition generalised: the loss on the identifying tokens (those only some components emit; the name of
  ``mr_name``) by how many of them the context held, the model's at initialisation, each checkpoint and the end,
  beside the Bayes optimum's on the same sampled sequences (`identifying_phase`, `probes.transitions`);
- the step change in the held-out loss over training (metrics.jsonl; `probes.transitions.step_change`: a plateau
  followed by a faster fall, or "none"), its timing set beside the half rise of the induction score and the half
  fall of the identifying-token loss over the checkpoints (`step_timing_phase`).

`run` is its phases in order, each handing the next a typed record: `frame_of` (`Frame`: the positions),
`theory_phase` (`TheoryAtSeen`), `eval_rows` and `model_losses_phase` (`ModelLosses`), `against_theory`
(`ModelAgainstTheory`: the excess, its fits, the gap), `probes_phase` (`Probes`), `over_training_phase`
(`OverTraining`), `identifying_phase` (`IdentifyingLosses`, or None), `step_timing_phase` (`StepTiming`), then
`icl_record` (icl.json), `figures_phase`, `report_tables` and `headline`.

Writes ``icl.json`` and ``figures/icl_loss.png``, ``icl_training.png``, ``icl_probe.png``, ``icl_transition.png``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model is first run
from compmech.loss_curves import ICLCurve
from compmech.runs.analysis import checkpoint_tokens
from compmech.runs.contexts import SampledBlock
from compmech.runs.files import write_json_atomic
from compmech.runs.progress import phase
from compmech.runs.run_figures import save_figures
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import Source
from compmech.studies.base import StudyInputs, StudyOutput
from compmech.studies.icl.plots import plot_icl_loss, plot_icl_probe, plot_icl_training, plot_icl_transition
from compmech.studies.icl.theory import (
    MAX_EXACT_WORDS,
    DecayComparison,
    ExcessFits,
    ICLTheory,
    compare_decay,
    component_emissions,
    enumerated_words,
    fit_excess,
    has_icl_theory,
    icl_theory,
    source_posterior,
)
from figures import process_title
from probes import CONTEXT_TEST_FRACTION, evaluate_probe, probe_rows
from probes.induction import induction_scores
from probes.transitions import (
    STEP_RULE,
    HalfRise,
    LossByCount,
    StepChange,
    half_rise,
    identifying_tokens,
    loss_by_count,
    step_change,
)

THEORY_METHODS = ("auto", "exact", "monte_carlo")
#: Key streams of the study's own samples, folded into the config's seed (the run uses others).
EVAL_STREAM, PROBE_STREAM, IDENTIFYING_STREAM = 2**31 - 11, 2**31 - 12, 2**31 - 13
#: Positions whose seen count is at least this are held to the 2% target (the issue's "every position >= 4").
TARGET_MIN_SEEN = 4
#: The posterior-probe target is read at positions with at least this many tokens seen.
POSTERIOR_MIN_SEEN = 8
#: A transition is called abrupt when one interval between checkpoints carries at least this share of the rise.
ABRUPT_SHARE = 0.6
#: The key of the smallest held-out R² over the positions with at least `POSTERIOR_MIN_SEEN` tokens seen.
MIN_R2_KEY = f"min_r2_heldout_contexts_seen_ge_{POSTERIOR_MIN_SEEN}"


@dataclass(frozen=True)
class Settings:
    """[studies.icl] options."""

    layers: tuple[str, ...] = ()  # activations probed (names as in [probe] layers); empty = the residual stream
    theory_method: str = "auto"  # "auto" (exact where the words can be enumerated, Monte Carlo beyond), "exact"
    #                              or "monte_carlo" (every position)
    theory_exact_words: int = MAX_EXACT_WORDS  # "auto": the theory is exact at lengths with at most this many words
    theory_samples: int = 20_000  # Monte-Carlo words of the theory (stratified over the components)
    eval_sequences: int = 2_000  # sampled regime: fresh sequences for the model's loss by position
    eval_exact_words: int = 20_000  # sampled regime: the model's loss is exact (every context with its
    #                                 probability) at the positions whose contexts number at most this
    probe_sequences: int = 2_000  # sampled regime: fresh sequences for the probes (every position a row)
    n_repeats: int = 2  # held-out splits of each probe
    fit_min_seen: int = 1  # the excess fits use positions with at least this many tokens seen
    induction_sequences: int = 256  # sequences whose attention patterns give the induction scores
    identifying_max_count: int = 8  # the loss on identifying tokens is grouped by 0, 1, ..., this (and more) seen
    step_window: int = 3  # held-out loss points (their median) on each side of a boundary for the step-change detector

    def __post_init__(self) -> None:
        if self.theory_method not in THEORY_METHODS:
            raise ValueError(f"theory_method must be one of {', '.join(THEORY_METHODS)}; got {self.theory_method!r}")
        for name in (
            "theory_samples",
            "eval_sequences",
            "probe_sequences",
            "n_repeats",
            "induction_sequences",
            "theory_exact_words",
            "eval_exact_words",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (2 if name != "n_repeats" else 1):
                raise ValueError(f"{name} must be an integer >= {2 if name != 'n_repeats' else 1}; got {v!r}")
        if isinstance(self.fit_min_seen, bool) or not isinstance(self.fit_min_seen, int) or self.fit_min_seen < 1:
            raise ValueError(f"fit_min_seen must be an integer >= 1; got {self.fit_min_seen!r}")
        for name, low in (("identifying_max_count", 1), ("step_window", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {v!r}")
        if not all(isinstance(n, str) and n for n in self.layers):
            raise ValueError(f"layers must be activation names; got {list(self.layers)!r}")


def check(cfg: ExperimentConfig, source: Source, model_cfg: predictive_models.ModelConfig) -> None:
    """The process must be a non-ergodic source with an in-context learning theory (`compmech.studies.icl.theory`)."""
    if not has_icl_theory(source.process):
        raise ValueError(
            'the icl study needs a non-ergodic source: [process] kind = "mixture" with one '
            '[[process.components]] table per component, or kind = "random_markov"'
        )
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
    norm_bound: np.ndarray  # [T] max over the rows of |ln sum_x q(x)|: the model's float32 laws sum to 1 within
    #                         this, so its loss lies at most this below the entropy of the exact law (KL >= -ln Z)
    exact: np.ndarray  # [T] bool: measured on every context with its probability (no sampling error)


@dataclass(frozen=True, eq=False)
class EvalRows:
    """The sequences a model's loss is measured on: every string with its probability, or a fresh sample."""

    tokens: np.ndarray  # [N, T] int32
    next_token_probs: np.ndarray  # [N, T, V (+1 with bos)] float64, exact P(next | tokens[:, :t+1])
    weights: np.ndarray  # [N] summing to 1
    sampled: bool  # True: weights uniform over drawn sequences (standard errors); False: exact


def model_loss(model_cfg: Any, params: Any, rows: EvalRows) -> ModelLoss:
    """The model's loss and its KL gap by position on ``rows`` (standard errors for a sample)."""
    log_q = predictive_models.compute_log_probs(model_cfg, params, rows.tokens, method="full").astype(
        np.float64
    )  # [N, T, V]
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
    log_z = np.logaddexp.reduce(log_q, axis=2)  # [N, T] ln sum_x q(x) of the float32 laws, in float64
    return ModelLoss(
        loss=loss,
        loss_se=loss_se,
        gap=gap,
        gap_se=gap_se,
        norm_bound=np.abs(log_z).max(axis=0),
        exact=np.full(loss.shape, not rows.sampled),
    )


@dataclass(frozen=True, eq=False)
class EvalSet:
    """What the model's loss is measured on: every context of the first ``n_exact`` positions with its probability
    (exact), and, in the sampled regime, fresh sequences for the positions beyond."""

    exact: EvalRows | None  # tokens [N, n_exact]: every allowed string of the first positions (None: none)
    sampled: EvalRows | None  # tokens [n, T]: fresh sequences (None when every position is exact)
    n_exact: int  # model positions 0..n_exact-1 are measured exactly

    @property
    def n_strings(self) -> int:
        return 0 if self.exact is None else int(self.exact.tokens.shape[0])

    @property
    def n_sequences(self) -> int:
        return 0 if self.sampled is None else int(self.sampled.tokens.shape[0])


def evaluate(model_cfg: Any, params: Any, rows: EvalSet) -> ModelLoss:
    """The model's loss by position on ``rows``: exact at the first ``n_exact`` positions, on the sample beyond."""
    exact = None if rows.exact is None else model_loss(model_cfg, params, rows.exact)
    if rows.sampled is None:
        return exact
    sampled = model_loss(model_cfg, params, rows.sampled)
    if exact is None:
        return sampled
    n = rows.n_exact

    def join(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate([a[:n], b[n:]])

    return ModelLoss(
        loss=join(exact.loss, sampled.loss),
        loss_se=join(exact.loss_se, sampled.loss_se),
        gap=join(exact.gap, sampled.gap),
        gap_se=join(exact.gap_se, sampled.gap_se),
        norm_bound=join(exact.norm_bound, sampled.norm_bound),
        exact=join(exact.exact, sampled.exact),
    )


def exact_rows(process: Any, context_length: int, bos: bool, max_words: int, strings_bound: Any) -> EvalRows | None:
    """Every allowed context of the longest prefix of the model's positions whose strings number at most
    ``max_words`` (``strings_bound(length)``: the source's bound), with its probability and exact next-token laws,
    aligned with the model's positions (with ``bos`` the start token first); None when not even one token fits."""
    L, top = 0, context_length - 1 if bos else context_length
    while L < top and strings_bound(L + 1) <= max_words:
        L += 1
    if L == 0:
        return None
    ew = enumerated_words(process, L)
    n = ew.words.shape[0]
    if bos:
        tokens = np.concatenate([np.full((n, 1), process.vocab_size), ew.words], axis=1)
        laws = np.concatenate([ew.laws, np.zeros(ew.laws.shape[:2] + (1,))], axis=2)  # [N, L + 1, V + 1]
    else:
        tokens, laws = ew.words, ew.laws[:, 1:]  # position t predicts after t + 1 tokens
    return EvalRows(tokens.astype(np.int32), laws, ew.probs / ew.probs.sum(), False)


def _sample_rows(
    cfg: ExperimentConfig, source: Source, model_cfg: predictive_models.ModelConfig, n: int, stream: int
) -> SampledBlock:
    """``n`` fresh sequences of the model's length (own key stream) with beliefs and exact next-token laws."""
    import jax  # JAX only when the study samples (the module loads without it)

    key = jax.random.fold_in(jax.random.key(cfg.seed), stream)
    return source.sample_block(key, n, model_cfg.context_length, cfg.data.bos)


# ---------------------------------------------------------------------------- probes by position


def _num(v: Any) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _probe(
    X: np.ndarray, Y: np.ndarray, data: Any, mask: np.ndarray | None, n_repeats: int, seed: int
) -> dict[str, Any]:
    """One probe on the rows of ``mask`` (None: all, stratified by position): the ProbeResult's fields (with the
    context-disjoint held-out R²) and ``r2_shuffled``, the same held-out R² of a probe onto shuffled targets."""
    m = slice(None) if mask is None else mask
    w = data.weights[m]
    n_ctx = int(np.unique(data.context_ids[m]).size)
    if mask is not None and n_ctx * CONTEXT_TEST_FRACTION < 1:  # e.g. the 3 one-token contexts of Mess3
        keys = ("mse", "r2", "mse_heldout_contexts", "r2_heldout_contexts", "mse_shuffled", "r2_shuffled")
        return {
            **{k: None for k in keys},
            "n_contexts": n_ctx,
            "heldout_contexts_note": f"only {n_ctx} distinct contexts at this position: none held out",
        }
    fit = dict(
        contexts=data.context_ids[m],
        positions=data.positions[m] if mask is None else None,
        sample_weight=w,
        n_repeats=n_repeats,
        context_test_fraction=CONTEXT_TEST_FRACTION,
        seed=seed,
    )
    res = evaluate_probe(X[m], Y[m], data.groups[m], **fit).result
    d = {k: (_num(v) if isinstance(v, float) else v) for k, v in res.to_dict().items()}
    # the shuffled control, held out as the probe is: the targets' rows permuted (each row keeps its activation
    # and weight), fitted on the fit contexts and scored on the held-out ones
    Yp = Y[m][np.random.default_rng(seed).permutation(int(w.shape[0]))]
    d["r2_shuffled"] = _num(evaluate_probe(X[m], Yp, data.groups[m], **fit).result.r2_heldout_contexts)
    return d


def probe_by_position(
    X: np.ndarray, Y: np.ndarray, data: Any, seen: np.ndarray, n_repeats: int, seed: int
) -> dict[str, Any]:
    """A probe of X [R, d] onto Y [R, k] with all positions pooled, and one at each position alone."""
    by_pos = []
    for t in range(len(seen)):
        mask = data.positions == t
        r = _probe(X, Y, data, mask, n_repeats, seed)
        by_pos.append(
            {
                "seen": int(seen[t]),
                **{
                    k: r[k]
                    for k in (
                        "r2_heldout_contexts",
                        "mse_heldout_contexts",
                        "r2",
                        "mse",
                        "r2_shuffled",
                        "mse_shuffled",
                        "n_contexts",
                        "heldout_contexts_note",
                    )
                },
            }
        )
    pooled = _probe(X, Y, data, None, n_repeats, seed)
    return {"r2_heldout_contexts": pooled["r2_heldout_contexts"], "pooled": pooled, "by_position": by_pos}


def _min_from(by_pos: list[dict], key: str, min_seen: int) -> float | None:
    vals = [r[key] for r in by_pos if r["seen"] >= min_seen]
    return None if not vals or any(v is None for v in vals) else float(min(vals))


# ---------------------------------------------------------------------------- the model against the optimum


@dataclass(frozen=True)
class OptimumCheck:
    """Whether the model's loss lies below the Bayes optimum by more than its tolerance, position by position.

    No predictor's expected loss can be below the optimum, so a model loss below it is either noise (a sampled
    evaluation, a Monte-Carlo optimum: the tolerance is their standard errors in quadrature) or an error in the
    comparison (its rows, the optimum's definition, the positions' alignment). Where both are exact the tolerance
    is the bound on the model's float32 normalisation (`ModelLoss.norm_bound`). The check proper is at the
    positions where the optimum is exact (``violations``); beyond them it is recorded as well, where a one-standard-
    error rule flags about 16% of the positions by chance when the model is on the optimum.
    """

    seen: tuple[int, ...]
    difference: tuple[float, ...]  # model loss - optimum (nats)
    tolerance: tuple[float, ...]  # sqrt(model se^2 + optimum se^2) + the model's normalisation bound
    optimum_exact: tuple[bool, ...]
    model_exact: tuple[bool, ...]
    below: tuple[bool, ...]  # difference < -tolerance
    rows_offset: tuple[float, ...]  # the evaluation rows' own optimum (model loss - its paired gap) - the optimum:
    #                                 how much easier (< 0) than average the rows' contexts are; a model loss below
    #                                 the optimum by about this much is the rows' sampling, not the model

    @property
    def violations(self) -> list[int]:
        """Tokens seen at the positions where the model lies below the exact optimum by more than its tolerance."""
        return [s for s, b, e in zip(self.seen, self.below, self.optimum_exact) if b and e]

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": "model loss - optimum < -(sqrt(model se^2 + optimum se^2) + the model's normalisation "
            "bound): below the optimum by more than its error",
            "passed": self.passed,
            "violations_seen": self.violations,
            "below_at_monte_carlo_optimum_seen": [
                s for s, b, e in zip(self.seen, self.below, self.optimum_exact) if b and not e
            ],
            "by_position": [
                {
                    "seen": s,
                    "difference": d,
                    "tolerance": t,
                    "optimum_exact": oe,
                    "model_exact": me,
                    "below": b,
                    "rows_offset": r,
                }
                for s, d, t, oe, me, b, r in zip(
                    self.seen,
                    self.difference,
                    self.tolerance,
                    self.optimum_exact,
                    self.model_exact,
                    self.below,
                    self.rows_offset,
                )
            ],
        }


def below_optimum_check(
    seen: np.ndarray, model: ModelLoss, optimal: np.ndarray, optimal_se: np.ndarray, optimal_exact: np.ndarray
) -> OptimumCheck:
    """`OptimumCheck` of ``model``'s loss [T] against the optimum [T] (its standard error and exactness [T])."""
    diff = model.loss - optimal
    tol = np.sqrt(model.loss_se**2 + optimal_se**2) + model.norm_bound
    return OptimumCheck(
        seen=tuple(int(x) for x in seen),
        difference=tuple(float(x) for x in diff),
        tolerance=tuple(float(x) for x in tol),
        optimum_exact=tuple(bool(x) for x in optimal_exact),
        model_exact=tuple(bool(x) for x in model.exact),
        below=tuple(bool(x) for x in diff < -tol),
        rows_offset=tuple(float(x) for x in model.loss - model.gap - optimal),
    )


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
    out: dict[str, Any] = {
        "tokens": [int(t) for t in tokens],
        "icl_fraction": [float(x) for x in f],
        "rule": f"abrupt if one interval carries >= {ABRUPT_SHARE:g} of the summed increases (>= 3 intervals)",
    }
    if f.size < 4 or not float(f.max() - f[0]) > 0.05:
        return {**out, "kind": "undetermined", "max_interval_share": None, "interval": None}
    steps = np.diff(f)
    rise = float(np.clip(steps, 0.0, None).sum())
    i = int(np.argmax(steps))
    share = float(steps[i] / rise)
    return {
        **out,
        "kind": "abrupt" if share >= ABRUPT_SHARE else "gradual",
        "max_interval_share": share,
        "interval": [int(tokens[i]), int(tokens[i + 1])],
    }


def induction_by_layer(model_cfg: Any, params: Any, tokens: np.ndarray, bos_id: int | None) -> dict[str, Any]:
    """Each attention layer's per-head induction scores (both modes) on ``tokens`` (a transformer only)."""
    names = [f"blocks.{l}.attn.hook_pattern" for l in range(int(model_cfg.n_layers))]
    acts = predictive_models.compute_activations(
        model_cfg, params, tokens, names=names, method="full"
    )  # [N, H, T, T] each
    return {
        name: {
            mode: induction_scores(acts[name], tokens, mode=mode, ignore=bos_id).to_json() for mode in ("last", "all")
        }
        for name in names
    }


def _max_induction(ind: dict[str, Any], mode: str = "all") -> float:
    return max(max(v[mode]["score"]) for v in ind.values())


# ---------------------------------------------------------------------------- the phases' records


@dataclass(frozen=True, eq=False)
class Frame:
    """The model's positions and what the study probes: the frame every phase reads."""

    seen: np.ndarray  # [T] tokens seen at each model position (t + 1, or t with a start token)
    bos: bool
    sampled: bool  # the sampled regime: the study draws its own evaluation and probe sequences
    layers: tuple[str, ...]  # the activations probed

    @property
    def T(self) -> int:
        return int(self.seen.shape[0])


@dataclass(frozen=True, eq=False)
class TheoryAtSeen:
    """The theory (`ICLTheory`) read at the model's positions, the fits of its excess and its in-context gain."""

    theory: ICLTheory
    optimal: np.ndarray  # [T] nats
    optimal_se: np.ndarray  # [T]
    component: np.ndarray  # [K, T] each component's own optimum (told the source)
    component_se: np.ndarray  # [K, T]
    known: np.ndarray  # [T] the told-the-source loss (prior-weighted components)
    fixed: np.ndarray  # [J, T] the never-inferring predictors
    fixed_se: np.ndarray  # [J, T]
    known_se: np.ndarray  # [T]
    exact: np.ndarray  # [T] bool: the theory is exact here (Monte Carlo elsewhere)
    fit: ExcessFits  # of the theory's excess over every position of its curve
    gain: float  # the optimum's in-context gain (`icl_gain`), nats

    @property
    def excess(self) -> np.ndarray:
        """[T] the theory's excess (optimal - told the source) at the model's positions."""
        return self.optimal - self.known

    @property
    def excess_se(self) -> np.ndarray:
        """[T] its standard error (the two in quadrature; zeros where exact)."""
        return np.sqrt(self.optimal_se**2 + self.known_se**2)

    @property
    def curve(self) -> ICLCurve:
        return self.theory.curve

    @property
    def best_fixed(self) -> int:
        return self.theory.best_fixed_source

    @property
    def best_fixed_label(self) -> str:
        return self.theory.fixed_source_labels[self.best_fixed]


@dataclass(frozen=True, eq=False)
class CheckpointLoss:
    """The model's loss by position at one saved point of training."""

    tokens: int  # tokens trained on (0: initialisation)
    step: int
    loss: ModelLoss
    params: Any  # the parameters at that point


@dataclass(frozen=True, eq=False)
class ModelLosses:
    """The model's loss by position on the evaluation rows: at the end and at every saved point before it."""

    rows: EvalSet
    final: ModelLoss
    points: tuple[CheckpointLoss, ...]  # initialisation first, then each checkpoint in order


@dataclass(frozen=True, eq=False)
class ModelAgainstTheory:
    """The model's loss set against the theory: its measured excess over the told-the-source loss with its fits and
    their rates against the theory's, whether it lies below the optimum anywhere, and its paired gap to the
    optimum relative to it."""

    excess: np.ndarray  # [T] nats: the model's loss minus the told-the-source loss
    excess_se: np.ndarray  # [T] the two standard errors in quadrature
    fit: ExcessFits  # of the model's measured excess
    decay: DecayComparison  # the model's and the theory's excess fitted at the same positions, rates compared
    check: OptimumCheck
    relative_gap: np.ndarray  # [T] (model - optimal) / optimal, paired on the same rows
    relative_gap_se: np.ndarray  # [T]
    max_relative_gap: float | None  # over positions with at least TARGET_MIN_SEEN tokens seen
    early: np.ndarray  # [T] bool: positions with 1..3 tokens seen


@dataclass(frozen=True, eq=False)
class ProbeSamples:
    """The sequences the probes read and their targets (the source posterior, then the belief)."""

    tokens: np.ndarray  # [N, T] int32
    probs: np.ndarray  # [N] row weights (probabilities in the exact regime, ones for a sample)
    targets: np.ndarray  # [N, T, K + S]: P(source | context), then the belief
    n_sources: int  # K: the first K target columns are the posterior


@dataclass(frozen=True, eq=False)
class Probes:
    """The probes of every layer, pooled and by position (icl.json's records), and the layer that reads the
    posterior best."""

    samples: ProbeSamples
    posterior: dict[str, dict[str, Any]]  # layer -> `probe_by_position`'s record with the untrained control
    belief: dict[str, dict[str, Any]]
    best_layer: str

    @property
    def best(self) -> dict[str, Any]:
        return self.posterior[self.best_layer]


@dataclass(frozen=True)
class TrainingPoint:
    """One point over training: the model's loss and gap by position, its in-context gain over the optimum's, the
    best layer's posterior probe and (a transformer) its largest induction score."""

    tokens: int | None  # tokens trained on (None until the final point is stamped)
    step: int | None
    loss: tuple[float, ...]  # [T]
    gap: tuple[float, ...]  # [T]
    icl_fraction: float | None
    posterior_r2_heldout_contexts: float | None
    induction_max_all: float | None = None  # None: not a transformer (the key is left out)

    def to_json(self) -> dict[str, Any]:
        d = {
            "tokens": self.tokens,
            "step": self.step,
            "model_loss_by_position": list(self.loss),
            "model_gap_by_position": list(self.gap),
            "icl_fraction": self.icl_fraction,
            "posterior_r2_heldout_contexts": self.posterior_r2_heldout_contexts,
        }
        if self.induction_max_all is not None:
            d["induction_max_all"] = self.induction_max_all
        return d


@dataclass(frozen=True, eq=False)
class OverTraining:
    """The in-context gain, the posterior probe and induction over training, and whether the gain came gradually."""

    points: tuple[TrainingPoint, ...]  # initialisation and each checkpoint
    final: TrainingPoint  # the trained model
    induction: dict[str, Any] | None  # the trained model's induction scores by layer (a transformer)
    transition: dict[str, Any] | None  # `transition`'s record (None when the optimum gains nothing)


# ---------------------------------------------------------------------------- the phases


def frame_of(inputs: StudyInputs, settings: Settings) -> Frame:
    """The model's positions (tokens seen at each), the regime and the layers to probe."""
    bos = bool(inputs.cfg.data.bos)
    T = int(inputs.model_cfg.context_length)
    return Frame(
        seen=np.arange(T) + (0 if bos else 1),
        bos=bos,
        sampled=inputs.regime.sampled,
        layers=tuple(settings.layers) or tuple(predictive_models.layer_names(inputs.model_cfg)),
    )


def theory_phase(inputs: StudyInputs, settings: Settings, frame: Frame) -> TheoryAtSeen:
    """The source's in-context theory to the model's last position, read at its positions, and its excess fits."""
    seen = frame.seen
    with phase("icl theory", total=None, enabled=inputs.progress):
        theory = icl_theory(
            inputs.process,
            int(seen[-1]),
            method=settings.theory_method,
            n_samples=settings.theory_samples,
            seed=inputs.cfg.seed,
            max_exact_words=settings.theory_exact_words,
        )
    curve = theory.curve
    fit = fit_excess(
        curve.seen, curve.excess, curve.optimal_se if curve.method != "exact" else None, min_seen=settings.fit_min_seen
    )
    optimal = curve.optimal[seen]
    component_se = curve.component_se[:, seen]
    return TheoryAtSeen(
        theory=theory,
        optimal=optimal,
        optimal_se=curve.optimal_se[seen],
        component=curve.component[:, seen],
        component_se=component_se,
        known=curve.known_source[seen],
        fixed=theory.fixed_source[:, seen],
        fixed_se=theory.fixed_source_se[:, seen],
        known_se=np.sqrt(np.square(curve.weights) @ np.square(component_se)),
        exact=curve.exact[seen],
        fit=fit,
        gain=icl_gain(optimal, seen),
    )


def eval_rows(inputs: StudyInputs, settings: Settings, frame: Frame) -> EvalSet:
    """The rows the model's loss is measured on: every string (exact regime); in the sampled regime every context
    of the first positions, as far as they number at most ``eval_exact_words``, and fresh sequences (own key
    stream) for the positions beyond."""
    if not frame.sampled:
        ctx = inputs.ctx
        return EvalSet(EvalRows(ctx.tokens, ctx.next_token_probs, ctx.probs / ctx.probs.sum(), False), None, frame.T)
    exact = exact_rows(inputs.process, frame.T, frame.bos, settings.eval_exact_words, inputs.source.strings_bound)
    n_exact = 0 if exact is None else int(exact.tokens.shape[1])
    if n_exact == frame.T:
        return EvalSet(exact, None, n_exact)
    block = _sample_rows(inputs.cfg, inputs.source, inputs.model_cfg, settings.eval_sequences, EVAL_STREAM)
    n = block.tokens.shape[0]
    return EvalSet(exact, EvalRows(block.tokens, block.next_token_probs, np.full(n, 1.0 / n), True), n_exact)


def model_losses_phase(inputs: StudyInputs, rows: EvalSet, frame: Frame) -> ModelLosses:
    """The model's loss by position at the end, at initialisation and at every ``tokens_<N>`` checkpoint."""
    model_cfg, T = inputs.model_cfg, frame.T
    paths = sorted((inputs.run_dir / "checkpoints").glob("tokens_*.msgpack"), key=checkpoint_tokens)
    with phase("icl model loss", total=len(paths) + 2, enabled=inputs.progress) as tick:
        final = evaluate(model_cfg, inputs.params_state, rows)
        tick()
        points = [CheckpointLoss(0, 0, evaluate(model_cfg, inputs.untrained_params, rows), inputs.untrained_params)]
        tick()
        for path in paths:
            ckpt = predictive_models.load_checkpoint(path)
            step = int(ckpt["step"])
            if step == points[-1].step:  # two requested token counts saved at one step (a chunk boundary): once
                tick()
                continue
            points.append(
                CheckpointLoss(
                    step * int(ckpt["train_config"]["batch_size"]) * T,
                    step,
                    evaluate(model_cfg, ckpt["params"], rows),
                    ckpt["params"],
                )
            )
            tick()
    return ModelLosses(rows=rows, final=final, points=tuple(points))


def against_theory(th: TheoryAtSeen, losses: ModelLosses, settings: Settings, frame: Frame) -> ModelAgainstTheory:
    """The model's measured excess over the told-the-source loss, its fits and their rates against the theory's
    (fitted at the same positions), the check against the optimum, and the relative gap to the optimum."""
    seen, final = frame.seen, losses.final
    # the model's own curve: its loss minus the told-the-source loss, with the evaluation's and the theory's errors
    excess = final.loss - th.known
    excess_se = np.sqrt(final.loss_se**2 + th.known_se**2)
    has_se = bool(np.any(excess_se > 0))
    fit = fit_excess(seen, excess, excess_se if has_se else None, min_seen=settings.fit_min_seen)
    theory_se = th.excess_se if np.any(th.excess_se > 0) else None
    decay = compare_decay(
        seen, excess, excess_se if has_se else None, th.excess, theory_se, min_seen=settings.fit_min_seen
    )
    rel_gap = final.gap / th.optimal  # [T] the model's excess over the optimum, relative, paired on the same rows
    rel_gap_se = final.gap_se / th.optimal
    target_mask = seen >= TARGET_MIN_SEEN
    max_rel_gap = float(rel_gap[target_mask].max()) if target_mask.any() else None
    return ModelAgainstTheory(
        excess=excess,
        excess_se=excess_se,
        fit=fit,
        decay=decay,
        check=below_optimum_check(seen, final, th.optimal, th.optimal_se, th.exact),
        relative_gap=rel_gap,
        relative_gap_se=rel_gap_se,
        max_relative_gap=max_rel_gap,
        early=(seen >= 1) & (seen <= 3),
    )


def probe_samples(inputs: StudyInputs, settings: Settings, frame: Frame) -> ProbeSamples:
    """The probes' sequences (every string, or a fresh sample of their own stream) and their targets."""
    if frame.sampled:
        block = _sample_rows(inputs.cfg, inputs.source, inputs.model_cfg, settings.probe_sequences, PROBE_STREAM)
        tokens, beliefs, probs = block.tokens, block.beliefs, np.full(block.tokens.shape[0], 1.0)
    else:
        tokens, beliefs, probs = inputs.ctx.tokens, inputs.ctx.beliefs, inputs.ctx.probs
    posterior = source_posterior(inputs.process, beliefs=beliefs)  # [N, T, K]
    targets = np.concatenate([posterior, beliefs], axis=-1)  # [N, T, K + S]
    return ProbeSamples(tokens=tokens, probs=probs, targets=targets, n_sources=int(posterior.shape[-1]))


def probes_phase(inputs: StudyInputs, settings: Settings, frame: Frame) -> Probes:
    """Every layer's probes onto the source posterior and the belief (pooled and by position), the untrained
    model's (pooled), and the layer whose posterior probe is best at the positions with enough tokens seen."""
    samples = probe_samples(inputs, settings, frame)
    K, seed, names = samples.n_sources, inputs.cfg.seed, list(frame.layers)
    posterior: dict[str, dict[str, Any]] = {}
    belief: dict[str, dict[str, Any]] = {}
    untrained: dict[str, dict[str, dict[str, Any]]] = {}
    with phase("icl probes", total=2 * len(names), enabled=inputs.progress) as tick:
        for name in names:
            for params, control in ((inputs.params_state, False), (inputs.untrained_params, True)):
                acts = predictive_models.compute_activations(inputs.model_cfg, params, samples.tokens, names=[name])[
                    name
                ]  # [N, T, d]
                data = probe_rows(
                    acts,
                    samples.targets,
                    samples.tokens,
                    samples.probs,
                    rows="distinct_contexts",
                    weighting="probability",
                )
                del acts
                Yp, Yb = data.Y[:, :K], data.Y[:, K:]
                if control:
                    untrained[name] = {
                        "posterior": _probe(data.X, Yp, data, None, settings.n_repeats, seed),
                        "belief": _probe(data.X, Yb, data, None, settings.n_repeats, seed),
                    }
                else:
                    posterior[name] = probe_by_position(data.X, Yp, data, frame.seen, settings.n_repeats, seed)
                    belief[name] = probe_by_position(data.X, Yb, data, frame.seen, settings.n_repeats, seed)
                tick()
    for target, records in (("posterior", posterior), ("belief", belief)):
        for name in names:
            records[name]["untrained"] = untrained[name][target]
            records[name][MIN_R2_KEY] = _min_from(
                records[name]["by_position"], "r2_heldout_contexts", POSTERIOR_MIN_SEEN
            )

    def layer_score(name: str) -> float:
        v = posterior[name][MIN_R2_KEY]
        if v is None:
            v = posterior[name]["r2_heldout_contexts"]
        return -np.inf if v is None else v

    return Probes(samples=samples, posterior=posterior, belief=belief, best_layer=max(names, key=layer_score))


def over_training_phase(
    inputs: StudyInputs, settings: Settings, frame: Frame, th: TheoryAtSeen, losses: ModelLosses, probes: Probes
) -> OverTraining:
    """At initialisation, each checkpoint and the end: the in-context gain over the optimum's, the best layer's
    posterior probe and the largest induction score; whether the gain came gradually or in a jump."""
    model_cfg, cfg, seen = inputs.model_cfg, inputs.cfg, frame.seen
    samples, best = probes.samples, probes.best_layer
    K = samples.n_sources
    transformer = predictive_models.kind_of(model_cfg) == "transformer"
    n_ind = min(settings.induction_sequences, samples.tokens.shape[0])
    bos_id = inputs.process.vocab_size if frame.bos else None
    stamped = [(p.tokens, p.step, p.loss, p.params) for p in losses.points]
    evolution: list[TrainingPoint] = []
    with phase("icl over training", total=len(losses.points), enabled=inputs.progress) as tick:
        for tokens_seen, step, ml, params in [*stamped, (None, None, losses.final, inputs.params_state)]:
            acts = predictive_models.compute_activations(model_cfg, params, samples.tokens, names=[best])[best]
            data = probe_rows(
                acts, samples.targets, samples.tokens, samples.probs, rows="distinct_contexts", weighting="probability"
            )
            post = _probe(data.X, data.Y[:, :K], data, None, settings.n_repeats, cfg.seed)
            evolution.append(
                TrainingPoint(
                    tokens=tokens_seen,
                    step=step,
                    loss=tuple(float(x) for x in ml.loss),
                    gap=tuple(float(x) for x in ml.gap),
                    icl_fraction=icl_gain(ml.loss, seen) / th.gain if th.gain > 0 else None,
                    posterior_r2_heldout_contexts=post["r2_heldout_contexts"],
                    induction_max_all=_max_induction(
                        induction_by_layer(model_cfg, params, samples.tokens[:n_ind], bos_id)
                    )
                    if transformer
                    else None,
                )
            )
            if tokens_seen is not None:
                tick()
    steps = int(cfg.training["steps"])
    final = replace(evolution.pop(), tokens=steps * int(cfg.training["batch_size"]) * frame.T, step=steps)
    induction = (
        induction_by_layer(model_cfg, inputs.params_state, samples.tokens[:n_ind], bos_id) if transformer else None
    )
    trans = (
        transition(
            [e.tokens for e in evolution] + [final.tokens], [e.icl_fraction for e in evolution] + [final.icl_fraction]
        )
        if th.gain > 0
        else None
    )
    return OverTraining(points=tuple(evolution), final=final, induction=induction, transition=trans)


# ---------------------------------------------------------------------------- identifying tokens and the step change


@dataclass(frozen=True, eq=False)
class IdentifyingPoint:
    """The model's loss on the identifying tokens by count, at one point of training."""

    tokens: int  # tokens trained on (0: initialisation)
    step: int
    model: LossByCount

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "step": self.step, **self.model.to_json()}


@dataclass(frozen=True, eq=False)
class IdentifyingLosses:
    """The loss on the identifying tokens (those only some components emit) by how many of them came before, on one
    set of sampled sequences: the Bayes optimum's and the model's at every point of training (the authors' measure of
    the induction transition: the loss on the name by how many times the name was seen)."""

    token_ids: tuple[int, ...]  # the identifying tokens
    token_names: tuple[str, ...]
    optimal: LossByCount  # -ln P(token | context) of the exact law, on the same predictions
    points: tuple[IdentifyingPoint, ...]  # initialisation, each checkpoint, the end (its tokens and step stamped)
    n_sequences: int

    def after_first(self, r: LossByCount) -> tuple[float, float]:
        """The mean loss (and its standard error, bins combined as independent) of the predictions with at least one
        identifying token seen: the in-context part of the measure."""
        ok = (r.count >= 1) & (r.n > 0)
        if not ok.any():
            return float("nan"), float("nan")
        w = r.n[ok] / r.n[ok].sum()
        return float(w @ r.loss[ok]), float(np.sqrt(np.square(w) @ np.square(np.nan_to_num(r.loss_se[ok]))))

    def gain(self, r: LossByCount) -> tuple[float, float]:
        """The in-context gain on the identifying tokens: the loss with none seen minus the loss with at least one
        seen (`after_first`), and its standard error (the two in quadrature). It grows only when the model uses the
        earlier identifying token (copies the name), not when it learns which tokens can come next at all."""
        after, after_se = self.after_first(r)
        return float(r.loss[0] - after), float(np.hypot(r.loss_se[0], after_se))

    def to_json(self) -> dict[str, Any]:
        return {
            "definition": "mean loss (nats) of the predictions whose target is an identifying token (one only some "
            "components emit), grouped by how many identifying tokens came before it in the sequence (the last "
            "count pools every larger one); standard errors clustered by sequence; the optimum is -ln P(token | "
            "context) of the exact law on the same predictions",
            "token_ids": list(self.token_ids),
            "token_names": list(self.token_names),
            "n_sequences": self.n_sequences,
            "optimal": self.optimal.to_json(),
            "over_training": [p.to_json() for p in self.points],
        }


def identifying_phase(
    inputs: StudyInputs, settings: Settings, frame: Frame, losses: ModelLosses, training: OverTraining
) -> IdentifyingLosses | None:
    """The loss on the identifying tokens by count (`probes.transitions.loss_by_count`) for the Bayes optimum and the
    model at every point of training, on ``eval_sequences`` fresh sequences of their own key stream; None when the
    source has no identifying token (every component emits every token, or not a mixture)."""
    emits = component_emissions(inputs.process)
    if emits is None:
        return None
    ident = identifying_tokens(emits)  # [V]
    if not ident.any():
        return None
    block = _sample_rows(inputs.cfg, inputs.source, inputs.model_cfg, settings.eval_sequences, IDENTIFYING_STREAM)
    tokens = np.asarray(block.tokens)  # [N, T] (the start token first with bos)
    N, T = tokens.shape
    rows, cols = np.arange(N)[:, None], np.arange(T - 1)[None, :]
    nxt = tokens[:, 1:]  # [N, T - 1] the token position t predicts
    mask = np.zeros((N, T), dtype=bool)
    mask[:, 1:] = True  # the first token has no prediction (it is the start token, or unpredicted without one)

    def realised(log_q: np.ndarray) -> np.ndarray:  # [N, T, V'] -> [N, T]: the loss of each token from its prefix
        out = np.zeros((N, T))
        out[:, 1:] = -log_q[rows, cols, nxt]
        return out

    with np.errstate(divide="ignore"):
        opt_loss = realised(np.log(np.asarray(block.next_token_probs, np.float64)))
    M = settings.identifying_max_count
    optimal = loss_by_count(tokens, opt_loss, ident, M, mask=mask)
    stamped = [(p.tokens, p.step, p.params) for p in losses.points]
    if stamped[-1][1] != int(training.final.step or 0):  # a checkpoint saved at the last step is the final model
        stamped.append((int(training.final.tokens or 0), int(training.final.step or 0), inputs.params_state))
    points = []
    with phase("icl identifying tokens", total=len(stamped), enabled=inputs.progress) as tick:
        for n_tokens, step, params in stamped:
            log_q = predictive_models.compute_log_probs(inputs.model_cfg, params, tokens, method="full")
            points.append(
                IdentifyingPoint(
                    n_tokens, step, loss_by_count(tokens, realised(np.asarray(log_q, np.float64)), ident, M, mask=mask)
                )
            )
            tick()
    names = inputs.process.token_names or tuple(str(x) for x in range(inputs.process.vocab_size))
    ids = tuple(int(x) for x in np.flatnonzero(ident))
    return IdentifyingLosses(
        token_ids=ids, token_names=tuple(names[x] for x in ids), optimal=optimal, points=tuple(points), n_sequences=N
    )


@dataclass(frozen=True, eq=False)
class StepTiming:
    """The step change in the held-out loss over training, set beside the half rise of the induction score and the
    half rise of the in-context gain on the identifying tokens over the checkpoints (all in optimizer steps)."""

    steps: np.ndarray  # [P] the evaluations' steps (metrics.jsonl)
    loss: np.ndarray  # [P] the held-out loss there
    change: StepChange
    checkpoint_steps: tuple[int, ...]  # initialisation, each checkpoint, the end
    induction: tuple[float, ...] | None  # the largest induction score of a head at each (a transformer)
    induction_rise: HalfRise | None
    identifying_gain: tuple[float, ...] | None  # the model's in-context gain on the identifying tokens at each
    identifying_gain_se: tuple[float, ...] | None
    optimal_gain: float | None  # the Bayes optimum's
    identifying_rise: HalfRise | None  # the gain's half rise

    @property
    def coincide(self) -> bool | None:
        """Whether the step's half-maximum interval overlaps the checkpoint interval holding the induction score's
        half rise (None when either is missing)."""
        c, r = self.change, self.induction_rise
        if not c.found or r is None or not r.found:
            return None
        assert c.step_lo is not None and c.step_hi is not None and r.lo is not None and r.hi is not None
        return bool(c.step_lo <= r.hi and r.lo <= c.step_hi)

    def to_json(self) -> dict[str, Any]:
        rise = None if self.induction_rise is None else self.induction_rise.to_json()
        gain_rise = None if self.identifying_rise is None else self.identifying_rise.to_json()
        return {
            "metric": "the held-out loss at every evaluation (metrics.jsonl 'loss'), in optimizer steps",
            "steps": [int(x) for x in self.steps],
            "loss": _floats(self.loss),
            "step_change": self.change.to_json(),
            "checkpoint_steps": list(self.checkpoint_steps),
            "induction_max_all": None if self.induction is None else list(self.induction),
            "induction_half_rise": rise,
            "identifying_gain": None if self.identifying_gain is None else list(self.identifying_gain),
            "identifying_gain_se": None if self.identifying_gain_se is None else list(self.identifying_gain_se),
            "identifying_gain_definition": "the loss on an identifying token with none seen before minus the loss "
            "with at least one seen (nats): what reading the earlier identifying token is worth",
            "optimal_identifying_gain": self.optimal_gain,
            "identifying_gain_half_rise": gain_rise,
            "coincide": self.coincide,
            "coincide_rule": "the step change's half-maximum interval overlaps the two checkpoints between which the "
            "induction score first gets half way from its initial value to its largest",
        }


def read_held_out_loss(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The held-out loss over training from the run's metrics.jsonl: steps [P] and loss [P] (a step recorded twice,
    by a resumed run, once: the last record)."""
    by_step: dict[int, float] = {}
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                if rec.get("loss") is not None:
                    by_step[int(rec["step"])] = float(rec["loss"])
    steps = np.array(sorted(by_step), dtype=np.float64)
    return steps, np.array([by_step[int(x)] for x in steps])


def step_timing_phase(
    inputs: StudyInputs, settings: Settings, training: OverTraining, ident: IdentifyingLosses | None
) -> StepTiming:
    """The step change in the held-out loss (`probes.transitions.step_change`) and the half rise of the induction
    score and of the in-context gain on the identifying tokens over the checkpoints."""
    steps, loss = read_held_out_loss(inputs.run_dir)
    change = step_change(steps, loss, window=settings.step_window)
    pts = list(training.points)
    if pts[-1].step != training.final.step:  # a checkpoint saved at the last step is the final model: once
        pts.append(training.final)
    ck = tuple(int(p.step or 0) for p in pts)
    x = np.array(ck, dtype=np.float64)
    ind = None if pts[0].induction_max_all is None else tuple(float(p.induction_max_all or 0.0) for p in pts)
    rise = None if ind is None or len(ind) < 2 else half_rise(x, np.array(ind), min_rise=0.05)
    gain, gain_se, opt_gain, gain_rise = None, None, None, None
    if ident is not None:
        pairs = [ident.gain(p.model) for p in ident.points]
        gain, gain_se = tuple(g for g, _ in pairs), tuple(e for _, e in pairs)
        opt_gain = ident.gain(ident.optimal)[0]
        a = np.array(gain)
        if len(a) >= 2 and np.all(np.isfinite(a)) and [p.step for p in ident.points] == list(ck):
            gain_rise = half_rise(x, a, min_rise=0.05)
    return StepTiming(
        steps=steps,
        loss=loss,
        change=change,
        checkpoint_steps=ck,
        induction=ind,
        induction_rise=rise,
        identifying_gain=gain,
        identifying_gain_se=gain_se,
        optimal_gain=opt_gain,
        identifying_rise=gain_rise,
    )


# ---------------------------------------------------------------------------- the record, figures, the output


def _floats(a: Any) -> list[float]:
    return [float(x) for x in a]


def icl_record(
    inputs: StudyInputs,
    frame: Frame,
    th: TheoryAtSeen,
    losses: ModelLosses,
    vs: ModelAgainstTheory,
    probes: Probes,
    training: OverTraining,
    ident: IdentifyingLosses | None = None,
    timing: StepTiming | None = None,
) -> dict[str, Any]:
    """icl.json's content."""
    curve, final, rows, early = th.curve, losses.final, losses.rows, vs.early
    best_fixed = th.best_fixed
    return {
        "source": inputs.process.name,
        "regime": inputs.regime.name,
        "bos": frame.bos,
        "seen": [int(s) for s in frame.seen],
        "optimal_loss_by_position": _floats(th.optimal),
        "optimal_loss_by_position_se": _floats(th.optimal_se),
        "optimal_loss_by_position_exact": [bool(x) for x in th.exact],
        "component_optimal_loss_by_position": [_floats(row) for row in th.component],
        "component_optimal_loss_by_position_se": [_floats(row) for row in th.component_se],
        "known_source_loss_by_position": _floats(th.known),
        "fixed_source_loss_by_position": [_floats(row) for row in th.fixed],
        "fixed_source_loss_by_position_se": [_floats(row) for row in th.fixed_se],
        "fixed_source_labels": list(th.theory.fixed_source_labels),
        "fixed_source_definition": th.theory.definition,
        "best_fixed_source": th.best_fixed_label,
        "model_loss_by_position": _floats(final.loss),
        "model_loss_by_position_se": _floats(final.loss_se),
        "model_gap_by_position": _floats(final.gap),
        "model_gap_by_position_se": _floats(final.gap_se),
        "model_loss_by_position_exact": [bool(x) for x in final.exact],
        "model_normalisation_bound_by_position": _floats(final.norm_bound),
        "model_excess_by_position": _floats(vs.excess),
        "model_excess_by_position_se": _floats(vs.excess_se),
        "model_relative_gap_by_position": _floats(vs.relative_gap),
        "model_relative_gap_by_position_se": _floats(vs.relative_gap_se),
        "model_eval": {
            "exact_positions": int(rows.n_exact),
            "exact_strings": rows.n_strings,
            "sequences": rows.n_sequences,
            "sampled": rows.sampled is not None,
            "rows": "every context of the first exact_positions positions with its probability (no "
            "sampling error), fresh sampled sequences beyond",
            "gap": "mean KL(exact next-token law || model's) on the same rows: model loss minus the "
            "optimum measured on those rows (a paired estimate)",
            "excess": "the model's measured loss minus the told-the-source loss (the theory's), their "
            "standard errors in quadrature",
        },
        "theory": {
            "method": curve.method,
            "n_samples": int(curve.n_samples),
            "last_exact_seen": curve.exact_through,
            "exact": [bool(x) for x in curve.exact],
            "seen": [int(s) for s in curve.seen],
            "optimal": curve.optimal.tolist(),
            "optimal_se": curve.optimal_se.tolist(),
            "component": curve.component.tolist(),
            "component_se": curve.component_se.tolist(),
            "known_source": curve.known_source.tolist(),
            "excess": curve.excess.tolist(),
            "weights": curve.weights.tolist(),
            "labels": list(curve.labels),
        },
        "fits": {
            "theory": th.fit.to_json(),
            "model": vs.fit.to_json(),
            "comparison": vs.decay.to_json(),
            "excess": "loss minus the told-the-source loss (prior-weighted components' optima); the model's: "
            "its measured loss by position",
        },
        "below_optimum": vs.check.to_json(),
        "targets": {
            f"max_relative_gap_seen_ge_{TARGET_MIN_SEEN}": _num(vs.max_relative_gap),
            "within_2_percent": None if vs.max_relative_gap is None else bool(vs.max_relative_gap <= 0.02),
            "early_seen": [int(s) for s in frame.seen[early]],
            "model_loss_early": _floats(final.loss[early]),
            "best_fixed_source_loss_early": _floats(th.fixed[best_fixed][early]),
            "model_below_best_fixed_source_early": bool(
                np.all(final.loss[early] + 2 * final.loss_se[early] < th.fixed[best_fixed][early])
            ),
            f"posterior_{MIN_R2_KEY}": probes.best[MIN_R2_KEY],
            "no_model_loss_below_exact_optimum": vs.check.passed,
            "decay_rate_agrees": {
                form: None if d is None else d.agree
                for form, d in (("power_law", vs.decay.power_law), ("exponential", vs.decay.exponential))
            },
        },
        "best_layer": probes.best_layer,
        "posterior_probe": probes.posterior,
        "belief_probe": probes.belief,
        "over_training": [p.to_json() for p in training.points],
        "final": training.final.to_json(),
        "transition": training.transition,
        "induction": training.induction,
        "identifying_tokens": None if ident is None else ident.to_json(),
        "step_timing": None if timing is None else timing.to_json(),
    }


def figures_phase(
    inputs: StudyInputs,
    frame: Frame,
    th: TheoryAtSeen,
    losses: ModelLosses,
    vs: ModelAgainstTheory,
    probes: Probes,
    training: OverTraining,
    ident: IdentifyingLosses | None = None,
    timing: StepTiming | None = None,
) -> list[Path]:
    """figures/icl_loss, icl_training, icl_probe and icl_transition (each configured format)."""
    process, curve, final, seen = inputs.process, th.curve, losses.final, frame.seen
    title = process_title(process.name, process.params)
    train_tokens = [p.tokens for p in training.points]
    draws = {
        "icl_loss": lambda: plot_icl_loss(
            curve.seen,
            curve.optimal,
            curve.optimal_se,
            curve.component,
            curve.labels,
            curve.known_source,
            seen,
            final.loss,
            final.loss_se,
            th.fixed[th.best_fixed],
            th.best_fixed_label,
            model_excess=vs.excess,
            model_excess_se=vs.excess_se,
            theory_fit=th.fit,
            model_fit=vs.fit,
            last_exact_seen=curve.last_exact_seen,
            title=title,
        ),
        "icl_training": lambda: plot_icl_training(
            seen,
            np.array([list(p.loss) for p in training.points] + [final.loss.tolist()]),
            [*train_tokens, None],
            th.optimal,
            gaps=np.array([list(p.gap) for p in training.points] + [final.gap.tolist()]),
            title=title,
        ),
        "icl_probe": lambda: plot_icl_probe(
            seen,
            {n: probes.posterior[n]["by_position"] for n in frame.layers},
            {n: probes.belief[n]["by_position"] for n in frame.layers},
            title=title,
        ),
    }
    if timing is not None:
        draws["icl_transition"] = lambda: plot_icl_transition(
            timing.steps,
            timing.loss,
            timing.change,
            np.array(timing.checkpoint_steps),
            None if timing.induction is None else np.array(timing.induction),
            timing.induction_rise,
            identifying=None
            if ident is None
            else (
                ident.optimal,
                [(p.step, p.model) for p in ident.points],
                ", ".join(ident.token_names),
            ),
            gain_rise=timing.identifying_rise,
            title=title,
        )
    return save_figures(inputs.cfg, inputs.run_dir, draws)


CAPTIONS = {
    "icl_loss": "Left: loss by tokens seen: the Bayes-optimal predictor (black), each component's own optimum "
    "(told the source, thin), their prior-weighted mean, the best never-inferring predictor (dashed) "
    "and the model (dots, ± 2 s.e.; exact where its contexts were enumerated). Right: the excess over the "
    "told-the-source loss on a log scale (the model's: its measured loss minus the told-the-source "
    "loss), with the power-law and exponential fits. A dotted vertical line: the last position whose "
    "theory is exact (Monte Carlo beyond).",
    "icl_training": "The model's gap to the optimum over the optimum (its paired KL divergence from the exact "
    "next-token law) by position (columns) at initialisation, each checkpoint and the end (rows); "
    "right: its loss by position at each of them.",
    "icl_probe": "Context-disjoint held-out R² of linear probes at each position, per layer: onto the posterior "
    "over sources (left) and onto the belief over the mixture's states (right); grey: shuffled control.",
    "icl_transition": "Left: the held-out loss over training (every evaluation), the step change where one was found "
    "(red line: where the fall is fastest after a plateau; band: its half-maximum interval; none otherwise), and "
    "(right axis, squares) the largest induction score of a head at each checkpoint with its half rise (dotted) and "
    "the half rise of the in-context gain on the identifying tokens (dashed, purple). "
    "Right, for a mixture with identifying tokens: the loss on those tokens by how many of them the context held "
    "(log scale; ± 2 s.e. clustered by sequence), the model at each checkpoint (light to dark) and the Bayes optimum "
    "on the same sequences (black dashed).",
}


def report_tables(
    frame: Frame,
    th: TheoryAtSeen,
    losses: ModelLosses,
    vs: ModelAgainstTheory,
    probes: Probes,
    training: OverTraining,
    ident: IdentifyingLosses | None = None,
    timing: StepTiming | None = None,
) -> list[tuple[str, list[str], list[list[Any]], str]]:
    """The report's tables: loss by position, the excess fits, the posterior probes, the induction scores."""
    seen, final, curve, rows = frame.seen, losses.final, th.curve, losses.rows
    opt, opt_se, known, best_fixed = th.optimal, th.optimal_se, th.known, th.best_fixed
    rel_gap, rel_gap_se = vs.relative_gap, vs.relative_gap_se
    show = [
        t for t in range(frame.T) if seen[t] in (0, 1, 2, 4, 8, 16, 32, 64) or t == frame.T - 1 or vs.check.below[t]
    ]
    loss_rows = [
        [
            str(int(seen[t])),
            _f(opt[t], opt_se[t]) + ("" if th.exact[t] else " (MC)"),
            _f(known[t]),
            _f(th.fixed[best_fixed][t], th.fixed_se[best_fixed][t]),
            _f(final.loss[t], final.loss_se[t]) + (" (exact)" if final.exact[t] else ""),
            f"{100 * rel_gap[t]:.3f} ± {100 * rel_gap_se[t]:.3f}",
            f"{vs.check.difference[t]:+.5f} ({'below' if vs.check.below[t] else 'ok'})",
        ]
        for t in show
    ]
    fit_rows = []
    for who, fits in (("theory", th.fit), ("model", vs.fit)):
        pl, ex = fits.power_law, fits.exponential
        fit_rows.append(
            [
                who,
                "–" if pl is None else f"{pl.rate:.3g} ± {pl.rate_se:.2g}",
                "–" if pl is None else f"{pl.rmse_log:.3g}",
                "–" if ex is None else f"{ex.rate:.3g} ± {ex.rate_se:.2g}",
                "–" if ex is None else f"{ex.rmse_log:.3g}",
                fits.better or "–",
            ]
        )
    decay_rows = [
        [
            form.replace("_", " "),
            f"{d.theory_rate:.3g} ± {d.theory_rate_se:.2g}",
            f"{d.model_rate:.3g} ± {d.model_rate_se:.2g}",
            f"{d.difference:+.3g} ± {d.difference_se:.2g}",
            {True: "yes", False: "no", None: "undetermined"}[d.agree],
        ]
        for form, d in (("power_law", vs.decay.power_law), ("exponential", vs.decay.exponential))
        if d is not None
    ]
    probe_table = [
        [
            n,
            _g(probes.posterior[n]["r2_heldout_contexts"]),
            _g(probes.posterior[n][MIN_R2_KEY]),
            _g(probes.posterior[n]["pooled"]["r2_shuffled"]),
            _g(probes.posterior[n]["untrained"]["r2_heldout_contexts"]),
            _g(probes.belief[n]["r2_heldout_contexts"]),
        ]
        for n in frame.layers
    ]
    tables = [
        (
            "In-context learning: loss by position (nats)",
            [
                "tokens seen",
                "optimal",
                "told the source",
                f"never inferring (best: {th.best_fixed_label})",
                "model",
                "model over optimal, %",
                "model - optimal (below it by more than its error?)",
            ],
            loss_rows,
            f"Theory: {curve.method}"
            + (f", exact through {curve.exact_through} tokens seen" if curve.method == "hybrid" else "")
            + (f" ({curve.n_samples:,} sampled words)" if curve.n_samples else "")
            + f"; the model exact at the first {rows.n_exact} positions ({rows.n_strings:,} strings)"
            + (f", on {rows.n_sequences:,} sampled sequences beyond" if rows.n_sequences else "")
            + "; model over optimal: mean KL divergence of its next-token law from the exact one on the same rows, "
            "over the optimum; below: model - optimal < -(the errors in quadrature + the model's float32 normalisation "
            f"bound); violations at the exact optimum: {', '.join(map(str, vs.check.violations)) or 'none'}. "
            "Never inferring: " + th.theory.definition + ".",
        ),
        (
            "In-context learning: fits of the excess loss",
            ["curve", "power law b", "rmse ln", "exponential tau (tokens)", "rmse ln", "better"],
            fit_rows,
            "Excess = loss minus the told-the-source loss (the model's: its measured loss); e = a n^-b or "
            "a exp(-n / tau); theory: " + th.fit.note + "; model: " + vs.fit.note + ".",
        ),
        (
            "In-context learning: decay of the excess, model against theory",
            ["form", "theory", "model", "model - theory", "agree"],
            decay_rows,
            f"Both curves fitted at the same positions ({_span(vs.decay.seen)} tokens seen); " + vs.decay.rule + ".",
        ),
        (
            "In-context learning: source-posterior probes",
            [
                "layer",
                "R² held out (contexts), pooled",
                f"min R² held out, seen >= {POSTERIOR_MIN_SEEN}",
                "R² shuffled",
                "R² held out, untrained",
                "belief R² held out, pooled",
            ],
            probe_table,
            "Linear probes onto P(source | context) (and onto the belief over the mixture's states), context-disjoint "
            "held-out splits; by position in icl.json and the figure.",
        ),
    ]
    if training.induction is not None:
        tables.append(
            (
                "In-context learning: induction scores",
                ["layer", "per head (last occurrence)", "per head (every occurrence)", "uniform baseline"],
                [
                    [
                        n,
                        ", ".join(f"{s:.3f}" for s in v["last"]["score"]),
                        ", ".join(f"{s:.3f}" for s in v["all"]["score"]),
                        f"{v['all']['baseline']:.3f}",
                    ]
                    for n, v in training.induction.items()
                ],
                "Attention mass from a token to the position after an earlier occurrence of the same token.",
            )
        )
    if ident is not None:
        tables.append(identifying_table(ident))
    if timing is not None:
        tables.append(step_timing_table(timing))
    return tables


def identifying_table(ident: IdentifyingLosses) -> tuple[str, list[str], list[list[Any]], str]:
    """The loss on the identifying tokens by count: the optimum, then the model at each point of training."""
    opt = ident.optimal
    counts = [f"{c}{'+' if opt.top_open and c == opt.count[-1] else ''}" for c in opt.count]

    def cells(r: LossByCount) -> list[str]:
        return ["–" if not np.isfinite(v) else _f(v, e if np.isfinite(e) else None) for v, e in zip(r.loss, r.loss_se)]

    rows = [["Bayes optimum", *cells(opt)]] + [[f"model, step {p.step:,}", *cells(p.model)] for p in ident.points]
    rows.append(["predictions", *[f"{n:,}" for n in opt.n]])
    return (
        "In-context learning: loss on the identifying tokens by how many were seen before (nats)",
        ["", *[f"{c} seen" for c in counts]],
        rows,
        f"Identifying tokens: {', '.join(ident.token_names)} (emitted by only some components); "
        f"{ident.n_sequences:,} fresh sequences; ± a standard error clustered by sequence.",
    )


def step_timing_table(timing: StepTiming) -> tuple[str, list[str], list[list[Any]], str]:
    """The step change and the half rise of the induction score and of the in-context gain on identifying tokens."""
    c = timing.change

    def span(lo: float | None, hi: float | None) -> str:
        return "–" if lo is None or hi is None else f"{lo:,.0f}-{hi:,.0f}"

    rows = [
        [
            "step change in the held-out loss",
            "yes" if c.found else "no",
            "–" if c.step is None else f"{c.step:,.0f} ± {c.uncertainty:,.0f}",
            span(c.step_lo, c.step_hi),
            "–" if c.drop is None else f"drop {c.drop:.4f} nats",
        ]
    ]
    for what, r, note in (
        ("induction score, half rise", timing.induction_rise, "largest head, every occurrence"),
        ("in-context gain on the identifying tokens, half rise", timing.identifying_rise, "model"),
    ):
        if r is not None:
            rows.append(
                [what, "yes" if r.found else "no", "–" if r.at is None else f"{r.at:,.0f}", span(r.lo, r.hi), note]
            )
    return (
        "In-context learning: the step change in the loss and the induction heads' timing (optimizer steps)",
        ["what", "found", "at", "interval", "note"],
        rows,
        f"{c.reason}. Rule: {STEP_RULE}. Coincide (the step's interval overlaps the induction half rise's "
        f"checkpoints): {({True: 'yes', False: 'no', None: 'undetermined'})[timing.coincide]}.",
    )


def headline(
    th: TheoryAtSeen,
    vs: ModelAgainstTheory,
    probes: Probes,
    training: OverTraining,
    record: dict[str, Any],
    timing: StepTiming | None = None,
) -> dict[str, Any]:
    """The numbers summary.json records."""
    post_best = probes.best
    return {
        "theory_method": th.curve.method,
        "theory_better_fit": th.fit.better,
        "theory_power_law_b": None if th.fit.power_law is None else th.fit.power_law.rate,
        "theory_exponential_tau": None if th.fit.exponential is None else th.fit.exponential.rate,
        "model_better_fit": vs.fit.better,
        "model_power_law_b": None if vs.fit.power_law is None else vs.fit.power_law.rate,
        "model_exponential_tau": None if vs.fit.exponential is None else vs.fit.exponential.rate,
        "theory_last_exact_seen": th.curve.exact_through,
        "no_model_loss_below_exact_optimum": vs.check.passed,
        "decay_rate_agrees": record["targets"]["decay_rate_agrees"],
        f"max_relative_gap_seen_ge_{TARGET_MIN_SEEN}": _num(vs.max_relative_gap),
        "model_below_best_fixed_source_early": record["targets"]["model_below_best_fixed_source_early"],
        "best_layer": probes.best_layer,
        "posterior_r2_heldout_contexts": post_best["r2_heldout_contexts"],
        f"posterior_{MIN_R2_KEY}": post_best[MIN_R2_KEY],
        "posterior_r2_shuffled": post_best["pooled"]["r2_shuffled"],
        "transition": None if training.transition is None else training.transition["kind"],
        "step_change_found": None if timing is None else timing.change.found,
        "step_change_step": None if timing is None else timing.change.step,
        "step_change_uncertainty": None if timing is None else timing.change.uncertainty,
        "induction_half_rise_step": None
        if timing is None or timing.induction_rise is None
        else timing.induction_rise.at,
        "step_change_coincides_with_induction": None if timing is None else timing.coincide,
    }


def run(inputs: StudyInputs, settings: Settings) -> StudyOutput:
    """The study (see the module docstring): its phases in order; writes icl.json and its figures."""
    frame = frame_of(inputs, settings)
    th = theory_phase(inputs, settings, frame)
    losses = model_losses_phase(inputs, eval_rows(inputs, settings, frame), frame)
    vs = against_theory(th, losses, settings, frame)
    probes = probes_phase(inputs, settings, frame)
    training = over_training_phase(inputs, settings, frame, th, losses, probes)
    ident = identifying_phase(inputs, settings, frame, losses, training)
    timing = step_timing_phase(inputs, settings, training, ident)
    record = icl_record(inputs, frame, th, losses, vs, probes, training, ident, timing)
    write_json_atomic(inputs.run_dir / "icl.json", record)
    figs = figures_phase(inputs, frame, th, losses, vs, probes, training, ident, timing)
    return StudyOutput(
        name="icl",
        json_file="icl.json",
        figures=tuple(figs),
        captions=dict(CAPTIONS),
        tables=tuple(report_tables(frame, th, losses, vs, probes, training, ident, timing)),
        headline=headline(th, vs, probes, training, record, timing),
    )


def _f(v: float, se: float | None = None) -> str:
    return f"{v:.4f}" + (f" ± {se:.4f}" if se else "")


def _span(seen: tuple[int, ...]) -> str:
    return "none" if not seen else f"{len(seen)} positions, {seen[0]}-{seen[-1]}"


def _g(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}"
