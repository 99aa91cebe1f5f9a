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


@dataclass(frozen=True, eq=False)
class SourceData:
    """The training data of a source: a pure, JAX-traceable function (key, n, length) -> tokens [n, length] int32
    (with ``bos``: the start token, id V, then length - 1 sampled tokens).

    HMMs and GHMMs: the stationary process (`hmm_processes.sample`). Random Markov chains: per sequence a
    transition matrix from the Dirichlet prior (`jax.random.dirichlet`, one row at a time), a uniform first
    token, then the chain (`jax.random.categorical` in a `lax.scan`); the same law as
    `hmm_processes.sample_chains` (the NumPy sampler of the validation and probe blocks), other draws.
    Two of them compare equal when they sample the same source the same way, so the trainer's jitted draw
    (cached per data function) compiles once per source, not once per run."""

    process: Source
    bos: bool = False

    def _identity(self) -> tuple:
        p = self.process
        if is_chain_family(p):
            return ("RandomMarkovChains", self.bos, p.n_states, float(p.concentration))
        arrays = [p.T] + ([p.normalizer] if isinstance(p, GeneralizedHMM) else [])
        return (type(p).__name__, self.bos, tuple((np.asarray(a).shape, np.asarray(a, np.float64).tobytes())
                                                  for a in arrays))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SourceData) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __call__(self, key, n: int, length: int):
        import jax.numpy as jnp

        body_length = length - 1 if self.bos else length
        if is_chain_family(self.process):
            body = _chain_tokens(self.process, key, n, body_length)
        else:
            from hmm_processes import sample

            body = sample(self.process, key, n, body_length, with_beliefs=False, with_next_token_probs=False).tokens
        if not self.bos:
            return body
        return jnp.concatenate([jnp.full((n, 1), self.process.vocab_size, body.dtype), body], axis=1)


def _chain_tokens(process: RandomMarkovChains, key, n: int, length: int):
    """[n, length] int32 tokens of random Markov chains, traceable (see `SourceData`)."""
    import jax
    import jax.numpy as jnp

    k = process.n_states
    k_rows, k_first, k_steps = jax.random.split(key, 3)
    rows = jax.random.dirichlet(k_rows, jnp.full((k,), process.concentration, jnp.float32), shape=(n, k))  # [n, k, k]
    log_rows = jnp.log(rows)  # a row entry that underflowed to 0 is never drawn
    first = jax.random.randint(k_first, (n,), 0, k, dtype=jnp.int32)
    seq = jnp.arange(n)

    def step(token, step_key):
        nxt = jax.random.categorical(step_key, log_rows[seq, token]).astype(jnp.int32)  # [n]
        return nxt, nxt

    if length == 1:
        return first[:, None]
    _, rest = jax.lax.scan(step, first, jax.random.split(k_steps, length - 1))  # [length - 1, n]
    return jnp.concatenate([first[:, None], rest.T], axis=1)


def data_fn(process: Source, *, bos: bool = False) -> SourceData:
    """The training data of ``process`` (`SourceData`): (key, n, length) -> tokens [n, length] int32."""
    return SourceData(process, bos)


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
