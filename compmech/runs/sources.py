"""What the runner asks of a data source, in one place.

A run's source is an HMM or a generalized HMM (the mixed-state theory: beliefs over hidden states, every
context enumerable when few) or a continuous family that is no HMM: random Markov chains
(`hmm_processes.RandomMarkovChains`, one Dirichlet-drawn transition matrix per sequence, closed-form Bayes).
The runner's phases ask this module, never the source's type: what the probe target is and how big
(`source_traits`), how to sample training data (`data_fn`) and probe/validation blocks (`chain_block`),
the optimal loss by position (`chain_optimal_loss`), and the next-token law a belief implies
(`next_token_laws`, for the distance geometry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmm_processes import HMM, GeneralizedHMM, RandomMarkovChains, bayes_predictive, posterior_mean, sample_chains

#: Any source a run can train on.
Source = HMM | GeneralizedHMM | RandomMarkovChains
#: Chains of the Monte-Carlo optimal loss of a random-Markov-chain run (its standard error ~ 1/sqrt of this).
CHAIN_OPTIMAL_SAMPLES = 50_000
#: Seed of that Monte-Carlo estimate: fixed, so every run of one source (any training seed) is measured
#: against the same floor.
CHAIN_OPTIMAL_STREAM = 2**31 - 3


@dataclass(frozen=True)
class SourceTraits:
    """What kind of source a run has and what its probe target ("beliefs") is."""

    kind: str  # "HMM" | "GeneralizedHMM" | "random_markov"
    belief_size: int  # S: entries of the probe target (hidden states; k*k for random Markov chains)
    belief_names: tuple[str, ...] | None  # a name per entry, or None
    belief_label: str  # the probe target in words, for titles and records
    exact_regime: bool  # every context can be enumerated with its exact theory (False: the sampled regime only)
    # The entries the belief figures draw (None: all of them). Random Markov chains: row 0 of the posterior
    # mean, a point of the (k-1)-simplex (the full k*k mean is a product of k simplices, not one simplex).
    figure_columns: tuple[int, ...] | None = None
    figure_label: str = ""  # what the figures draw, when figure_columns picks a part ("" otherwise)
    optimal_loss_method: str = "exact"  # "exact" (myopic entropies) | "monte_carlo" (with a standard error)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "belief_size": self.belief_size, "belief_label": self.belief_label,
                "exact_regime": self.exact_regime, "figure_columns": None if self.figure_columns is None
                else list(self.figure_columns), "figure_label": self.figure_label,
                "optimal_loss_method": self.optimal_loss_method}


def is_chain_family(process: Any) -> bool:
    """True for the random-Markov-chain family (no hidden-state theory; sampled regime, closed-form Bayes)."""
    return isinstance(process, RandomMarkovChains)


def source_traits(process: Source) -> SourceTraits:
    """The `SourceTraits` of a built source."""
    if is_chain_family(process):
        k = process.n_states
        return SourceTraits(
            kind=process.name, belief_size=process.belief_size, belief_names=process.belief_names,
            belief_label="posterior mean of the transition matrix, E[A[i, j] | context], flattened row-major",
            exact_regime=False, figure_columns=tuple(range(k)),
            figure_label="row 0 of the posterior mean, E[A[0, .] | context]", optimal_loss_method="monte_carlo")
    generalized = isinstance(process, GeneralizedHMM)
    return SourceTraits(kind="GeneralizedHMM" if generalized else "HMM", belief_size=int(process.num_states),
                        belief_names=process.state_names,
                        belief_label=("quasi-probability state vector" if generalized
                                      else "belief over the hidden states"), exact_regime=True)


def chain_strings_bound(process: RandomMarkovChains, length: int) -> float:
    """Every string is allowed (Dirichlet rows are positive): k^length (inf when huge)."""
    k = process.vocab_size
    return float(k) ** length if length * math.log10(k) < 300 else math.inf


def _seed_of(key) -> np.ndarray:
    """A NumPy seed from a JAX key (its raw key data): the same key gives the same stream."""
    import jax

    return np.asarray(jax.random.key_data(key)).astype(np.uint32).ravel()


def data_fn(process: Source, *, bos: bool = False):
    """A function (key, n, length) -> tokens [n, length] int32 sampling the source (with ``bos``: the start
    token, id V, then length - 1 sampled tokens). HMMs: the stationary process (`hmm_processes.sample`)."""
    import jax.numpy as jnp

    if is_chain_family(process):
        def chain_fn(key, n: int, length: int):
            body = sample_chains(process, _seed_of(key), n, length - 1 if bos else length).tokens
            if bos:
                body = np.concatenate([np.full((n, 1), process.vocab_size, np.int32), body], axis=1)
            return jnp.asarray(body, jnp.int32)

        return chain_fn
    from hmm_processes import sample

    def hmm_fn(key, n: int, length: int):
        if not bos:
            return sample(process, key, n, length, with_beliefs=False, with_next_token_probs=False).tokens
        body = sample(process, key, n, length - 1, with_beliefs=False, with_next_token_probs=False).tokens
        return jnp.concatenate([jnp.full((n, 1), process.vocab_size, body.dtype), body], axis=1)

    return hmm_fn


def chain_block(process: RandomMarkovChains, key, n: int, context_length: int, bos: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` sequences at the model's positions: tokens [n, T], posterior means [n, T, k*k] (the beliefs) and
    the Dirichlet predictive [n, T, V (+1 with bos)], entry t after the model has read tokens[:, : t + 1].

    With ``bos`` position 0 is the start token: its belief is the prior mean (every entry 1/k) and its
    next-token law the uniform first token; the start token is never next (probability 0).
    """
    L = context_length - 1 if bos else context_length
    k = process.n_states
    tokens = sample_chains(process, _seed_of(key), n, max(L, 1)).tokens[:, :L]  # [n, L]
    beliefs = posterior_mean(process, tokens) if L else np.zeros((n, 0, k * k))  # [n, L, k*k]
    nxt = bayes_predictive(process, tokens) if L else np.zeros((n, 0, k))  # [n, L, k]
    if bos:
        tokens = np.concatenate([np.full((n, 1), k, np.int32), tokens], axis=1)
        beliefs = np.concatenate([np.full((n, 1, k * k), 1.0 / k), beliefs], axis=1)
        nxt = np.concatenate([np.broadcast_to(process.first_token_law, (n, 1, k)), nxt], axis=1)
        nxt = np.concatenate([nxt, np.zeros(nxt.shape[:2] + (1,))], axis=2)
    return tokens.astype(np.int32), beliefs, nxt


def chain_optimal_loss(process: RandomMarkovChains, context_length: int, bos: bool = False, *,
                       n_samples: int = CHAIN_OPTIMAL_SAMPLES, seed: int = CHAIN_OPTIMAL_STREAM):
    """The Bayes-optimal loss [T] (nats) at each model position, its Monte-Carlo standard error [T], and the
    `compmech.icl_records.ICLCurve` behind them (`compmech.icl_markov.markov_icl_curve`).

    Without a start token position t has seen t + 1 tokens (curve position t + 1); with one, t tokens.
    """
    from compmech.icl_markov import markov_icl_curve

    curve = markov_icl_curve(process, context_length + (0 if bos else 1), n_samples=n_samples, seed=seed)
    cut = slice(0, context_length) if bos else slice(1, context_length + 1)
    return curve.optimal[cut], curve.optimal_se[cut], curve


def next_token_laws(process: Source, beliefs: np.ndarray, last_tokens: np.ndarray | None) -> np.ndarray:
    """[n, V] the optimal next-token law each belief [n, S] implies (``last_tokens`` [n]: the token each
    context ends with, needed by the chains, whose law is the posterior mean's row at the last token; a start
    token there, id >= k, means the empty context: the uniform first token)."""
    if not is_chain_family(process):
        return beliefs @ process.emission_matrix
    k = process.n_states
    if last_tokens is None:
        raise ValueError("next_token_laws: random Markov chains need the last token of each context")
    rows = beliefs.reshape(-1, k, k)  # [n, k, k]
    last = np.asarray(last_tokens)
    out = np.broadcast_to(process.first_token_law, (rows.shape[0], k)).copy()
    real = last < k
    out[real] = rows[real, last[real]]
    return out
