"""The sampled regime: runs whose contexts are too many to enumerate (V^L beyond a cap).

Instead of every allowed string of the context length (the exact regime, `compmech.runs.experiment`):

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

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from compmech.runs.config import ConfigError, ExperimentConfig
from compmech.runs.progress import PhaseTimes, phase
from compmech.runs.records import ProbeOutcome
from compmech.runs.sources import (Source, chain_block, chain_optimal_loss, chain_strings_bound, is_chain_family,
                                   source_traits)
from hmm_processes import HMM, GeneralizedHMM, ProcessError, get_process, process_vectors, sample

#: Probe sequences kept, with their activations, for the belief figures and the geometry (the first ones).
FIGURE_SEQUENCES = 1000
#: Work cap of the exact optimal-loss enumeration (beliefs updated); beyond its depth h(L) is held constant.
OPTIMAL_LOSS_MAX_WORDS = 2_000_000
#: Key streams of the sampled regime, folded into the config's seed (training uses split(key(seed))).
VALIDATION_STREAM, PROBE_STREAM = 2**31 - 1, 2**31 - 2


@dataclass(frozen=True)
class RegimeChoice:
    """Which regime a run uses and why: the bound on its context strings against the cap, and the sizes."""

    name: str  # "exact" | "sampled"
    strings_bound: float  # upper bound on the allowed context strings (word_counts, at most V^L; inf if huge)
    max_exact_strings: int
    requested: str  # the config's [data] regime ("auto", "exact" or "sampled")
    validation_sequences: int | None = None  # sampled only
    probe_sequences: int | None = None  # sampled only
    chunk_rows: int | None = None  # sampled only
    n_folds: int | None = None  # sampled only: folds of each held-out split
    figure_sequences: int | None = None  # sampled only

    @property
    def sampled(self) -> bool:
        return self.name == "sampled"

    def to_json(self) -> dict[str, Any]:
        bound = self.strings_bound
        return {"name": self.name, "requested": self.requested,
                "strings_bound": None if not math.isfinite(bound) else (int(bound) if bound < 2**53 else float(bound)),
                "max_exact_strings": self.max_exact_strings, "validation_sequences": self.validation_sequences,
                "probe_sequences": self.probe_sequences, "chunk_rows": self.chunk_rows, "n_folds": self.n_folds,
                "figure_sequences": self.figure_sequences}


def strings_bound(process: Source, length: int) -> float:
    """Upper bound on the allowed words of ``length`` (`compmech.mixed_states.word_counts`, at most V^L)."""
    from compmech.mixed_states import word_counts

    if is_chain_family(process):
        return chain_strings_bound(process, length)

    try:
        return float(word_counts(process, length)[-1])
    except ProcessError:
        return float(process.vocab_size) ** length if length * math.log10(process.vocab_size) < 300 else math.inf


def choose_regime(cfg: ExperimentConfig, process: Source, context_length: int) -> RegimeChoice:
    """The regime of a run: [data] regime, or under "auto" exact iff the strings' bound <= max_exact_strings.

    A source without an exact theory of every context (random Markov chains: `SourceTraits.exact_regime`)
    runs sampled; asking for "exact" raises `ConfigError`.
    """
    from probes import N_FOLDS

    data = cfg.data
    bound = strings_bound(process, context_length - 1 if data.bos else context_length)
    name = data.regime if data.regime != "auto" else ("exact" if bound <= data.max_exact_strings else "sampled")
    if not source_traits(process).exact_regime:
        if data.regime == "exact":
            raise ConfigError(f"{cfg.source}: [data] regime = \"exact\" enumerates every context with the mixed-state "
                              f"theory of an HMM; {process.name} is no HMM (its Bayes predictor is closed-form): "
                              "use regime = \"sampled\" or \"auto\"")
        name = "sampled"
    if name == "exact":
        return RegimeChoice("exact", bound, data.max_exact_strings, data.regime)
    return RegimeChoice("sampled", bound, data.max_exact_strings, data.regime,
                        validation_sequences=data.validation_sequences, probe_sequences=data.probe_sequences,
                        chunk_rows=data.chunk_rows, n_folds=N_FOLDS,
                        figure_sequences=min(FIGURE_SEQUENCES, data.probe_sequences))


# ---------------------------------------------------------------------------- theory: the optimal loss


def _product_factors(process: HMM | GeneralizedHMM) -> list[HMM | GeneralizedHMM] | None:
    """The factors of an `hmm_processes.product` rebuilt from its params (None if not a product of named ones)."""
    parts = process.params.get("components") if isinstance(process.params, dict) else None
    if not isinstance(parts, list) or len(parts) < 2:
        return None
    try:
        factors = [get_process(p["name"], **{k: v for k, v in p.items() if k != "name"}) for p in parts]
    except (ProcessError, KeyError, TypeError):
        return None
    if math.prod(f.vocab_size for f in factors) != process.vocab_size:
        return None
    return factors


def myopic_entropies_nats(process: HMM | GeneralizedHMM, depth: int) -> tuple[np.ndarray, int]:
    """h(1)..h(depth + 1) in nats [depth + 1] and the depth enumerated exactly.

    From `compmech.streaming.exact_myopic_entropies` (with merging). A product's myopic entropy is the
    sum of its factors' (independent components), so a product of named processes is done factor by
    factor. Beyond the exactly enumerated depth (work capped at `OPTIMAL_LOSS_MAX_WORDS`) h(L) is held
    at its last value, an upper bound on the optimum (h decreases with L towards the entropy rate).
    """
    from compmech.streaming import exact_myopic_entropies

    factors = _product_factors(process)
    if factors is not None:
        parts = [myopic_entropies_nats(f, depth) for f in factors]
        return np.sum([p[0] for p in parts], axis=0), min(p[1] for p in parts)
    e = exact_myopic_entropies(process, depth, max_words=OPTIMAL_LOSS_MAX_WORDS)
    h = np.empty(depth + 1)
    h[: e.depth + 1] = e.myopic_entropies
    h[e.depth + 1:] = e.myopic_entropies[-1]
    return h * np.log(2.0), e.depth


def optimal_loss_by_position(process: HMM | GeneralizedHMM, context_length: int, bos: bool = False
                             ) -> tuple[np.ndarray, int]:
    """The Bayes-optimal cross-entropy [T] (nats) at each model position, and the exact depth behind it.

    As `compmech.information.optimal_loss_by_position`: without a start token position t has seen t + 1
    tokens (floor h(t + 2)); with one, t tokens (h(t + 1)).
    """
    h, exact_depth = myopic_entropies_nats(process, context_length if not bos else context_length - 1)
    return (h[1:] if not bos else h), exact_depth


# ---------------------------------------------------------------------------- sampling


@dataclass(frozen=True, eq=False)
class SampledBlock:
    """Sampled sequences with what the optimal predictor knows along them, aligned with the model's positions."""

    tokens: np.ndarray  # [n, T] int32 (with bos: token V first)
    beliefs: np.ndarray  # [n, T, S] float64, belief after tokens[:, :t+1] (start token: the prior)
    next_token_probs: np.ndarray  # [n, T, V (+1 with bos)] float64


def sample_block(process: Source, key, n: int, context_length: int, bos: bool = False) -> SampledBlock:
    """``n`` stationary sequences of the model's context length from one key, with beliefs and next-token laws
    (random Markov chains: `compmech.runs.sources.chain_block`, the posterior means and the Dirichlet predictive)."""
    if is_chain_family(process):
        return SampledBlock(*chain_block(process, key, n, context_length, bos))
    L = context_length - 1 if bos else context_length
    s = sample(process, key, n, max(L, 1))
    tokens = np.asarray(s.tokens, np.int32)[:, :L]
    beliefs = np.asarray(s.beliefs, np.float64)[:, :L]
    nxt = np.asarray(s.next_token_probs, np.float64)[:, :L]
    if bos:
        prior = np.asarray(s.prior, np.float64)
        first_law = prior @ process.emission_matrix  # [V] the first token's law
        tokens = np.concatenate([np.full((n, 1), process.vocab_size, np.int32), tokens], axis=1)
        beliefs = np.concatenate([np.broadcast_to(prior, (n, 1, prior.size)), beliefs], axis=1)[:, :context_length]
        nxt = np.concatenate([np.broadcast_to(first_law, (n, 1, first_law.size)), nxt], axis=1)[:, :context_length]
        nxt = np.concatenate([nxt, np.zeros(nxt.shape[:2] + (1,))], axis=2)  # the start token is never next
    tau = process_vectors(process)[2]  # [S]: ones for an HMM
    beliefs = beliefs / (beliefs @ tau)[..., None]  # the sampler's float32 renormalised in float64: eta @ tau = 1
    nxt = np.clip(nxt, 0.0, None)
    nxt = nxt / nxt.sum(axis=2, keepdims=True)
    return SampledBlock(tokens, beliefs, nxt)


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


def validation_set(cfg: ExperimentConfig, process: Source, model_cfg, regime: RegimeChoice):
    """The fixed held-out validation sample (its own key stream) as a `predictive_models.SampledEvalSet`,
    and the `OptimalLossRecord` of its optimal loss.

    The optimum: the myopic entropies of an HMM; for random Markov chains the Monte-Carlo expected loss of
    the Dirichlet predictive (`compmech.runs.sources.chain_optimal_loss`), the sample's next-token laws
    being that predictive too.
    """
    import jax

    from predictive_models import SampledEvalSet

    key = jax.random.fold_in(jax.random.key(cfg.seed), VALIDATION_STREAM)
    block = sample_block(process, key, int(regime.validation_sequences), model_cfg.context_length, cfg.data.bos)
    if is_chain_family(process):
        optimal, optimal_se, _ = chain_optimal_loss(process, model_cfg.context_length, cfg.data.bos)
        p = block.next_token_probs  # [n, T, V]
        own = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=2).mean(axis=0)  # [T] the sample's Bayes loss
        record = OptimalLossRecord("monte_carlo", None, optimal_se, own)
    else:
        optimal, exact_depth = optimal_loss_by_position(process, model_cfg.context_length, cfg.data.bos)
        record = OptimalLossRecord("exact", exact_depth, np.zeros_like(optimal))
    return SampledEvalSet(tokens=block.tokens, next_token_probs=block.next_token_probs,
                          optimal_loss=optimal), record


def figure_context_set(block: SampledBlock, optimal_loss: np.ndarray, bos: bool):
    """The kept probe sequences as the `ContextSet` the figures and the training evolution read (uniform weights)."""
    from compmech.runs.experiment import ContextSet

    n = block.tokens.shape[0]
    return ContextSet(tokens=block.tokens, probs=np.full(n, 1.0 / n), beliefs=block.beliefs,
                      next_token_probs=block.next_token_probs, optimal_loss=optimal_loss, bos=bos)


# ---------------------------------------------------------------------------- probing

HELDOUT_SEQUENCES_TEXT = (
    "sampled regime, K-fold by sequence: each sampled sequence falls in one of n_folds folds by a hash of its "
    "index; the probe is fitted on the other folds' rows and scored on the fold's rows (mean and std over folds)")
HELDOUT_CONTEXTS_SAMPLED_TEXT = (
    "sampled regime, K-fold by distinct context: each row's prefix is hashed into one of n_folds folds, so no "
    "context has rows on both sides; rows at positions with fewer than n_folds allowed contexts are always fitted, "
    "never scored; fitted on the other folds' rows, scored on the fold's rows (mean and std over folds)")


def holdable_positions(process: Source, context_length: int, bos: bool, n_folds: int) -> np.ndarray:
    """[T] bool: positions with at least ``n_folds`` allowed contexts (the others are never held out)."""
    counts = np.array([strings_bound(process, t + (0 if bos else 1)) for t in range(context_length)])
    return counts >= n_folds


def probe_model_sampled(cfg: ExperimentConfig, model_cfg, params_state, process: Source, regime: RegimeChoice,
                        figure_layer: str, optimal_loss: np.ndarray, *, progress: bool = False,
                        times: PhaseTimes | None = None, untrained_params: Any = None):
    """Probe every layer (and "concat") on sampled sequences, chunk by chunk; returns (ProbeOutcome, ContextSet).

    The ContextSet holds the kept figure sequences (see `figure_context_set`); the outcome's ``data``,
    ``predictions`` and ``shuffled`` are over their rows, its ``results`` over every sampled row.
    """
    import jax

    from compmech.runs.probing import probed_layers
    from predictive_models import iter_activations, probe_layer_name
    from predictive_models.models import activation_width
    from probes import ChunkedProbe, prefix_hashes, probe_rows

    T, S = model_cfg.context_length, source_traits(process).belief_size
    names = probed_layers(cfg.probe, model_cfg)
    width = {name: activation_width(model_cfg, name) for name in names}
    layer = probe_layer_name(model_cfg)
    n_seq = int(regime.probe_sequences)
    per_chunk = max(1, min(n_seq, int(regime.chunk_rows) // T))
    n_chunks = -(-n_seq // per_chunk)
    probe = ChunkedProbe(width, S, n_folds=regime.n_folds,
                         include_concat=cfg.probe.include_concat, seed=cfg.seed)
    control = None if untrained_params is None else ChunkedProbe(width, S, n_folds=regime.n_folds,
                                                                  include_concat=False, seed=cfg.seed)
    hold = holdable_positions(process, T, cfg.data.bos, regime.n_folds)  # [T]
    n_keep = int(regime.figure_sequences)
    kept_blocks: list[SampledBlock] = []
    kept_acts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    root = jax.random.fold_in(jax.random.key(cfg.seed), PROBE_STREAM)
    with phase("sampled probe", total=n_chunks, enabled=progress, unit="chunk", times=times) as tick:
        for c in range(n_chunks):
            n = min(per_chunk, n_seq - c * per_chunk)
            block = sample_block(process, jax.random.fold_in(root, c), per_chunk, T, cfg.data.bos)
            tokens = block.tokens[:n]
            Y = block.beliefs[:n].reshape(n * T, S)
            seq = np.repeat(np.arange(c * per_chunk, c * per_chunk + n), T)
            ctx = prefix_hashes(tokens).reshape(-1)
            holdout = np.tile(hold, n)
            # the whole (padded) chunk as one block: every chunk has one shape, so the model compiles once
            for _, _, acts in iter_activations(model_cfg, params_state, block.tokens, chunk_sequences=per_chunk,
                                               names=names):
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
                for _, _, acts in iter_activations(model_cfg, untrained_params, block.tokens,
                                                   chunk_sequences=per_chunk, names=names):
                    control.add({name: a[:n].reshape(n * T, -1) for name, a in acts.items()}, Y, seq, ctx,
                                holdout=holdout)
            tick()
    kept = SampledBlock(*(np.concatenate([getattr(b, f) for b in kept_blocks])
                          for f in ("tokens", "beliefs", "next_token_probs")))
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
        "heldout": {"protocol": HELDOUT_SEQUENCES_TEXT, "train_fraction": (regime.n_folds - 1) / regime.n_folds,
                    "n_repeats": regime.n_folds},
        "heldout_contexts": {"protocol": HELDOUT_CONTEXTS_SAMPLED_TEXT, "test_fraction": 1 / regime.n_folds,
                             "n_repeats": regime.n_folds, "stratified_by": None},
    }
    outcome = ProbeOutcome(results={name: ev.result for name, ev in evaluations.items()}, probe_layer=layer,
                           data=rows, predictions={name: ev.predictions for name, ev in evaluations.items()},
                           shuffled=evaluations[figure_layer].shuffled,
                           untrained=None if control is None else control.results(), info=info)
    return outcome, figure_context_set(kept, optimal_loss, cfg.data.bos)


# ---------------------------------------------------------------------------- memory


def sampled_memory_parts(model: dict, num_states: int, vocab_size: int, regime: RegimeChoice,
                         include_concat: bool, bos: bool) -> tuple[int, int]:
    """(context_set, probe) bytes of the sampled regime for `compmech.runs.preflight.estimate_memory`.

    context set: the validation sample (tokens, float64 next-token laws and beliefs) and the kept figure
    sequences; probe: one chunk's activations of every layer (float32, + a float64 copy of a cell, + the
    concatenation), the accumulator's K(K+1) cells of D x D sums, the kept sequences' activations, and
    the distinct context ids (8 + K + 1 bytes each, at most the rows).
    """
    from compmech.runs.preflight import model_sizes

    L, V, S = int(model["context_length"]), int(vocab_size) + (1 if bos else 0), int(num_states)
    K = int(regime.n_folds)
    sizes = model_sizes(model, V)
    D, layers = sizes.width, sizes.n_probed  # every probed layer's summed width, their number
    per_seq = L * (4 + 8 * (V + S))
    context_bytes = (int(regime.validation_sequences) + int(regime.figure_sequences)) * per_seq
    chunk = min(int(regime.chunk_rows), int(regime.probe_sequences) * L)
    chunk_bytes = 4 * chunk * D * (3 if include_concat else 2) + 8 * chunk * (3 * S + 4)
    accumulator = 2 * 8 * K * (K + 1) * (D * D + 2 * D * S + D)  # the trained model's and the untrained control's
    kept = 4 * int(regime.figure_sequences) * L * D * 2 + 8 * int(regime.figure_sequences) * L * S * (layers + 2)
    ids = (8 + K + 1) * int(regime.probe_sequences) * L
    return context_bytes, chunk_bytes + accumulator + kept + ids
