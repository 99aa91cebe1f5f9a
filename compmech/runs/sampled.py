"""The sampled regime: runs whose contexts are too many to enumerate (V^L beyond a cap).

Instead of every allowed string of the context length (the exact regime, `compmech.runs.sources.Source.context_set`):

- validation on a fixed held-out sample of ``[data] validation_sequences`` sequences, drawn from their
  own key (never from the training stream), scored against their exact next-token laws, with the
  standard error, against the exact optimal loss by position (`optimal_loss_by_position`);
- probe rows from ``[data] probe_sequences`` sampled sequences (every position a row) with their beliefs
  from the sampler, drawn, run through the model and accumulated chunk by chunk
  (`probes.ChunkedProbe`: ``[data] chunk_rows`` rows at a time), so memory does not grow with the rows;
  held out by sequence and by distinct context (hashes of the prefixes), K-fold;
- the figures from the first `FIGURE_SEQUENCES` probe sequences, kept with their activations.

Rows are sampled, so a row's weight in the fits is its probability under the process: the sampled
regime estimates the exact regime's ``weighting = "probability"`` fit, not the paper's uniform one
(every string once). The run records which regime ran (probe.json and summary.json ``"regime"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

import predictive_models
from compmech.runs.contexts import ContextSet, SampledBlock
from compmech.runs.probing import probed_layers
from compmech.runs.progress import PhaseTimes, phase
from compmech.runs.records import ProbeOutcome
from compmech.runs.regime import RegimeChoice
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import Source
from probes import ChunkedProbe, prefix_hashes, probe_rows

#: Key streams of the sampled regime, folded into the config's seed (training uses split(key(seed))).
VALIDATION_STREAM, PROBE_STREAM = 2**31 - 1, 2**31 - 2


@dataclass(frozen=True, eq=False)
class OptimalLossRecord:
    """How the sampled regime's optimal loss by position was obtained, for probe.json's ``regime_sizes``."""

    method: str  # "exact" (myopic entropies, streaming enumeration) | "monte_carlo" (over the source's prior)
    exact_depth: int | None  # tokens enumerated exactly (None for a Monte-Carlo floor)
    stderr: np.ndarray  # [T] the floor's standard error by position (zeros when exact)
    # [T] Monte-Carlo floors only: the validation sample's own Bayes loss by position (the mean entropy of its
    # exact next-token laws), so that model loss / this is a paired estimate of the relative loss (its noise
    # from the sample's contexts cancels); None otherwise
    sample_optimal: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"optimal_loss_exact_depth": self.exact_depth, "optimal_loss_method": self.method}
        if self.method == "monte_carlo":
            out["optimal_loss_stderr_by_position"] = [float(x) for x in self.stderr]
            out["validation_sample_optimal_loss_by_position"] = [float(x) for x in self.sample_optimal]
        return out


def validation_set(
    cfg: ExperimentConfig, source: Source, model_cfg: predictive_models.ModelConfig, regime: RegimeChoice
) -> tuple[predictive_models.SampledEvalSet, OptimalLossRecord]:
    """The fixed held-out validation sample (its own key stream) as a `predictive_models.SampledEvalSet`,
    and the `OptimalLossRecord` of its optimal loss (`Source.optimal_loss`).

    The optimum: the myopic entropies of an HMM; for random Markov chains the Monte-Carlo expected loss of
    the Dirichlet predictive, the sample's next-token laws being that predictive too. A Monte-Carlo floor also
    records the sample's own Bayes loss (the mean entropy of its exact next-token laws), for a paired estimate.
    """
    key = jax.random.fold_in(jax.random.key(cfg.seed), VALIDATION_STREAM)
    block = source.sample_block(key, int(regime.validation_sequences), model_cfg.context_length, cfg.data.bos)
    floor = source.optimal_loss(model_cfg.context_length, cfg.data.bos)
    if floor.method == "monte_carlo":
        p = block.next_token_probs  # [n, T, V]
        own = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=2).mean(axis=0)  # [T] the sample's Bayes loss
        record = OptimalLossRecord("monte_carlo", None, floor.stderr, own)
    else:
        record = OptimalLossRecord(floor.method, floor.exact_depth, np.zeros_like(floor.values))
    return predictive_models.SampledEvalSet(
        tokens=block.tokens, next_token_probs=block.next_token_probs, optimal_loss=floor.values
    ), record


# ---------------------------------------------------------------------------- probing

HELDOUT_SEQUENCES_TEXT = (
    "sampled regime, K-fold by sequence: each sampled sequence falls in one of n_folds folds by a hash of its "
    "index; the probe is fitted on the other folds' rows and scored on the fold's rows (mean and std over folds)"
)
HELDOUT_CONTEXTS_SAMPLED_TEXT = (
    "sampled regime, K-fold by distinct context: each row's prefix is hashed into one of n_folds folds, so no "
    "context has rows on both sides; rows at positions with fewer than n_folds allowed contexts are always fitted, "
    "never scored; fitted on the other folds' rows, scored on the fold's rows (mean and std over folds)"
)


def holdable_positions(source: Source, context_length: int, bos: bool, n_folds: int) -> np.ndarray:
    """[T] bool: positions with at least ``n_folds`` allowed contexts (the others are never held out)."""
    counts = np.array([source.strings_bound(t + (0 if bos else 1)) for t in range(context_length)])
    return counts >= n_folds


def probe_model_sampled(
    cfg: ExperimentConfig,
    model_cfg: predictive_models.ModelConfig,
    params_state: Any,
    source: Source,
    regime: RegimeChoice,
    figure_layer: str,
    optimal_loss: np.ndarray,
    *,
    progress: bool = False,
    times: PhaseTimes | None = None,
    untrained_params: Any = None,
) -> tuple[ProbeOutcome, ContextSet]:
    """Probe every layer (and "concat") on sampled sequences, chunk by chunk; returns (ProbeOutcome, ContextSet).

    The ContextSet holds the kept figure sequences (`SampledBlock.as_context_set`); the outcome's ``data``,
    ``predictions`` and ``shuffled`` are over their rows, its ``results`` over every sampled row.
    """
    T, S = model_cfg.context_length, source.traits.belief_size
    names = probed_layers(cfg.probe, model_cfg)
    width = {name: predictive_models.activation_width(model_cfg, name) for name in names}
    layer = predictive_models.probe_layer_name(model_cfg)
    n_seq = int(regime.probe_sequences)
    per_chunk = max(1, min(n_seq, int(regime.chunk_rows) // T))
    n_chunks = -(-n_seq // per_chunk)
    probe = ChunkedProbe(width, S, n_folds=regime.n_folds, include_concat=cfg.probe.include_concat, seed=cfg.seed)
    control = (
        None
        if untrained_params is None
        else ChunkedProbe(width, S, n_folds=regime.n_folds, include_concat=False, seed=cfg.seed)
    )
    hold = holdable_positions(source, T, cfg.data.bos, regime.n_folds)  # [T]
    n_keep = int(regime.figure_sequences)
    kept_blocks: list[SampledBlock] = []
    kept_acts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    root = jax.random.fold_in(jax.random.key(cfg.seed), PROBE_STREAM)
    with phase("sampled probe", total=n_chunks, enabled=progress, unit="chunk", times=times) as tick:
        for c in range(n_chunks):
            n = min(per_chunk, n_seq - c * per_chunk)
            block = source.sample_block(jax.random.fold_in(root, c), per_chunk, T, cfg.data.bos)
            tokens = block.tokens[:n]
            Y = block.beliefs[:n].reshape(n * T, S)
            seq = np.repeat(np.arange(c * per_chunk, c * per_chunk + n), T)
            ctx = prefix_hashes(tokens).reshape(-1)
            holdout = np.tile(hold, n)
            # the whole (padded) chunk as one block: every chunk has one shape, so the model compiles once
            for _, _, acts in predictive_models.iter_activations(
                model_cfg, params_state, block.tokens, chunk_sequences=per_chunk, names=names
            ):
                acts = {name: a[:n] for name, a in acts.items()}  # [n, T, d]
                probe.add({name: a.reshape(n * T, -1) for name, a in acts.items()}, Y, seq, ctx, holdout=holdout)
                start = c * per_chunk
                if start < n_keep:
                    m = min(n, n_keep - start)
                    kept_blocks.append(SampledBlock(tokens[:m], block.beliefs[:m], block.next_token_probs[:m]))
                    for name, a in acts.items():
                        kept_acts[name].append(a[:m])
                del acts
            if control is not None:
                for _, _, acts in predictive_models.iter_activations(
                    model_cfg, untrained_params, block.tokens, chunk_sequences=per_chunk, names=names
                ):
                    control.add(
                        {name: a[:n].reshape(n * T, -1) for name, a in acts.items()}, Y, seq, ctx, holdout=holdout
                    )
            tick()
    kept = SampledBlock(
        *(np.concatenate([getattr(b, f) for b in kept_blocks]) for f in ("tokens", "beliefs", "next_token_probs"))
    )
    acts = {name: np.concatenate(parts) for name, parts in kept_acts.items()}  # [n_keep, T, d]
    del kept_acts
    rows = probe_rows(acts[layer], kept.beliefs, kept.tokens)  # the kept rows (all positions), ids and positions
    evaluations = probe.evaluations({name: a.reshape(-1, a.shape[-1]) for name, a in acts.items()})
    info = {
        "rows": "sampled_sequences",
        "weighting": "sampled",  # rows drawn from the process: each string weighted by its probability
        "n_strings": n_seq,
        "bos": bool(cfg.data.bos),
        "n_rows": int(probe.n_rows),
        "n_contexts": int(evaluations[layer].result.n_contexts),
        "train_fraction": None,
        "n_repeats": regime.n_folds,
        "heldout": {
            "protocol": HELDOUT_SEQUENCES_TEXT,
            "train_fraction": (regime.n_folds - 1) / regime.n_folds,
            "n_repeats": regime.n_folds,
        },
        "heldout_contexts": {
            "protocol": HELDOUT_CONTEXTS_SAMPLED_TEXT,
            "test_fraction": 1 / regime.n_folds,
            "n_repeats": regime.n_folds,
            "stratified_by": None,
        },
    }
    outcome = ProbeOutcome(
        results={name: ev.result for name, ev in evaluations.items()},
        probe_layer=layer,
        data=rows,
        predictions={name: ev.predictions for name, ev in evaluations.items()},
        shuffled=evaluations[figure_layer].shuffled,
        untrained=None if control is None else control.results(),
        info=info,
    )
    return outcome, kept.as_context_set(optimal_loss, cfg.data.bos)
