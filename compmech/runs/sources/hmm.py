"""The source of every HMM and generalized HMM (mixtures, products and coupled products included): the mixed-state
theory, every context enumerable when few.

The probe target is the belief over the hidden states (a GHMM's quasi-probability state vector); the exact
regime enumerates every allowed string (`compmech.mixed_states`), the sampled regime draws sequences with the
JAX sampler (`hmm_processes.sample`), and the optimal loss is the myopic entropies (`compmech.information`,
`compmech.streaming`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import hmm_processes  # the sampler is a lazy attribute (PEP 562): JAX loads on first use
from compmech.information import next_token_distribution, optimal_loss_by_position
from compmech.mixed_states import belief_trajectories, mixed_states, word_counts
from compmech.runs.contexts import ContextSet, SampledBlock
from compmech.runs.processes import process_record
from compmech.runs.sources.base import BeliefCoordinates, OptimalLoss, SourceTraits
from compmech.streaming import exact_myopic_entropies
from hmm_processes import HMM, GeneralizedHMM, ProcessError, get_process, process_vectors
from probes import distance_scale

#: Work cap of the sampled regime's exact optimal-loss enumeration (beliefs updated); beyond its depth h(L) is
#: held constant.
OPTIMAL_LOSS_MAX_WORDS = 2_000_000

#: Named generalized HMMs whose belief vector holds coordinates with a name. tom_quantum's belief is
#: (1, Bloch coordinates) of a qubit confined to a disc of the Bloch ball.
NAMED_BELIEF_COORDINATES = {
    "tom_quantum": BeliefCoordinates(
        (1, 2), ("Bloch coordinate 1 (belief entry 1)", "Bloch coordinate 2 (belief entry 2)"), "unit_circle"
    ),
}


def _traits(process: HMM | GeneralizedHMM) -> SourceTraits:
    generalized = isinstance(process, GeneralizedHMM)
    named = NAMED_BELIEF_COORDINATES.get(process.name) if generalized else None
    if named is not None and process.num_states <= max(named.entries):
        named = None
    return SourceTraits(
        kind="GeneralizedHMM" if generalized else "HMM",
        belief_size=int(process.num_states),
        belief_names=process.state_names,
        belief_label=("quasi-probability state vector" if generalized else "belief over the hidden states"),
        exact_regime=True,
        belief_coordinates=named,
    )


@dataclass(frozen=True, eq=False)
class HMMSource:
    """An `hmm_processes.HMM` or `hmm_processes.GeneralizedHMM` as a run's `Source`."""

    process: HMM | GeneralizedHMM
    traits: SourceTraits = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "traits", _traits(self.process))

    @property
    def name(self) -> str:
        return self.process.name

    @property
    def params(self) -> dict[str, Any]:
        return self.process.params

    @property
    def vocab_size(self) -> int:
        return int(self.process.vocab_size)

    def identity(self) -> tuple:
        p = self.process
        arrays = [p.T] + ([p.normalizer] if isinstance(p, GeneralizedHMM) else [])
        return (type(p).__name__, tuple((np.asarray(a).shape, np.asarray(a, np.float64).tobytes()) for a in arrays))

    def sample_tokens(self, key: Any, n: int, length: int) -> Any:
        return hmm_processes.sample(
            self.process, key, n, length, with_beliefs=False, with_next_token_probs=False
        ).tokens

    def check_words(self, length: int) -> float:
        """The word length up to which every word's probability is known to be >= 0: every length (inf) for an HMM;
        for a generalized HMM, ``length`` (or every length) once checked (`GeneralizedHMM.check_words`), fewer when
        its state vectors grow past the check's budget. Raises `ProcessError` naming a word of negative probability.
        A product of named processes is checked factor by factor (its word probabilities are products of theirs)."""
        if not isinstance(self.process, GeneralizedHMM):
            return math.inf
        factors = _product_factors(self.process)
        if factors is not None:
            return min(HMMSource(f).check_words(length) for f in factors)
        return self.process.check_words(length)

    def strings_bound(self, length: int) -> float:
        """The number of allowed words of ``length`` (`compmech.mixed_states.word_counts`), else V^L."""
        try:
            return float(word_counts(self.process, length)[-1])
        except ProcessError:
            V = self.process.vocab_size
            return float(V) ** length if length * math.log10(V) < 300 else math.inf

    def context_set(self, context_length: int, bos: bool) -> ContextSet:
        """All allowed length-``context_length`` strings with probabilities, beliefs and optimal loss."""
        process = self.process
        depth = context_length - 1 if bos else context_length
        ms = mixed_states(process, depth)
        beliefs = ms.prefix_beliefs(depth)  # [N, depth, S]
        words = ms.level(depth).words.astype(np.int32)  # [N, depth]
        if bos:
            N = words.shape[0]
            words = np.concatenate([np.full((N, 1), process.vocab_size, np.int32), words], axis=1)
            beliefs = np.concatenate([np.broadcast_to(ms.prior, (N, 1, ms.prior.shape[0])), beliefs], axis=1)
        next_token = next_token_distribution(beliefs, process.emission_matrix)  # [N, T, V] (a GHMM's rounding clipped)
        if bos:
            next_token = np.concatenate([next_token, np.zeros(next_token.shape[:2] + (1,))], axis=2)
        return ContextSet(
            tokens=words,
            probs=ms.level(depth).probs,
            beliefs=beliefs,
            next_token_probs=next_token,
            optimal_loss=optimal_loss_by_position(process, context_length, start_token=bos, ms=ms),
            bos=bos,
        )

    def sample_block(self, key: Any, n: int, context_length: int, bos: bool) -> SampledBlock:
        """``n`` stationary sequences from one key (`hmm_processes.sample`), beliefs renormalised in float64."""
        process = self.process
        L = context_length - 1 if bos else context_length
        s = hmm_processes.sample(process, key, n, max(L, 1))
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

    def sequence_theory(self, tokens: np.ndarray, bos: bool) -> tuple[SampledBlock, np.ndarray]:
        """The exact theory along given sequences: tokens [N, T] (with ``bos``: the start token, id V, first) ->
        (`SampledBlock` of their beliefs and next-token laws, log-probabilities [N] of their process tokens, -inf
        for a word the process cannot emit). `compmech.mixed_states.belief_trajectories`, float64."""
        process = self.process
        tokens = np.asarray(tokens)
        words = tokens[:, 1:] if bos else tokens  # [N, L]
        beliefs, logp = belief_trajectories(process, words)  # [N, L, S], [N]
        if bos:
            prior = process_vectors(process)[1]  # [S]
            beliefs = np.concatenate([np.broadcast_to(prior, (len(tokens), 1, prior.size)), beliefs], axis=1)
        with np.errstate(invalid="ignore"):
            nxt = np.clip(beliefs @ process.emission_matrix, 0.0, None)  # [N, T, V] (a GHMM's rounding clipped)
            nxt = nxt / nxt.sum(axis=2, keepdims=True)
        if bos:
            nxt = np.concatenate([nxt, np.zeros(nxt.shape[:2] + (1,))], axis=2)  # the start token is never next
        return SampledBlock(tokens.astype(np.int32), beliefs, nxt), logp

    def optimal_loss(self, context_length: int, bos: bool) -> OptimalLoss:
        """The myopic entropies, enumerated with merging as deep as `OPTIMAL_LOSS_MAX_WORDS` allows.

        Without a start token position t has seen t + 1 tokens (floor h(t + 2)); with one, t tokens (h(t + 1)),
        as `compmech.information.optimal_loss_by_position` (which enumerates every word instead).
        """
        h, exact_depth = capped_myopic_entropies_nats(self.process, context_length if not bos else context_length - 1)
        values = h[1:] if not bos else h
        return OptimalLoss(values=values, stderr=np.zeros_like(values), method="exact", exact_depth=exact_depth)

    def next_token_laws(self, beliefs: np.ndarray, last_tokens: np.ndarray | None) -> np.ndarray:
        return beliefs @ self.process.emission_matrix

    def distance_scale(self) -> float | None:
        return distance_scale(self.process.emission_matrix)

    def matrices_record(
        self, spec_file: str | None, composition: str | None, spec_files: tuple[str, ...]
    ) -> dict[str, Any]:
        """process.json: the labelled matrices (`compmech.runs.processes.ProcessRecord`)."""
        return process_record(self.process, spec_file, composition=composition, spec_files=spec_files).to_json()


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


def capped_myopic_entropies_nats(process: HMM | GeneralizedHMM, depth: int) -> tuple[np.ndarray, int]:
    """h(1)..h(depth + 1) in nats [depth + 1] and the depth enumerated exactly.

    From `compmech.streaming.exact_myopic_entropies` (with merging). A product's myopic entropy is the
    sum of its factors' (independent components), so a product of named processes is done factor by
    factor. Beyond the exactly enumerated depth (work capped at `OPTIMAL_LOSS_MAX_WORDS`) h(L) is held
    at its last value, an upper bound on the optimum (h decreases with L towards the entropy rate).
    """
    factors = _product_factors(process)
    if factors is not None:
        parts = [capped_myopic_entropies_nats(f, depth) for f in factors]
        return np.sum([p[0] for p in parts], axis=0), min(p[1] for p in parts)
    e = exact_myopic_entropies(process, depth, max_words=OPTIMAL_LOSS_MAX_WORDS)
    h = np.empty(depth + 1)
    h[: e.depth + 1] = e.myopic_entropies
    h[e.depth + 1 :] = e.myopic_entropies[-1]
    return h * np.log(2.0), e.depth
