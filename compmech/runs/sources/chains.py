"""The source of random Markov chains (`hmm_processes.RandomMarkovChains`): one Dirichlet-drawn transition matrix
per sequence, closed-form Bayes; no hidden-state theory, so the sampled regime only.

The probe target is the posterior mean of the transition matrix, E[A | context] (k*k entries, row-major); the
figures draw its row 0, a point of the (k-1)-simplex. The optimal loss is the expected loss of the Dirichlet
predictive, by Monte Carlo with its standard error (`compmech.markov_chains.markov_icl_curve`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compmech.markov_chains import markov_icl_curve
from compmech.runs.contexts import ContextSet, SampledBlock
from compmech.runs.sources.base import OptimalLoss, SourceTraits
from hmm_processes import RandomMarkovChains, bayes_predictive, log_marginal_probability, posterior_mean, sample_chains

#: Chains of the Monte-Carlo optimal loss of a random-Markov-chain run (its standard error ~ 1/sqrt of this).
CHAIN_OPTIMAL_SAMPLES = 50_000
#: Seed of that Monte-Carlo estimate: fixed, so every run of one source (any training seed) is measured
#: against the same floor.
CHAIN_OPTIMAL_STREAM = 2**31 - 3


def _seed_of(key) -> np.ndarray:
    """A NumPy seed from a JAX key (its raw key data): the same key gives the same stream."""
    import jax  # lazy: JAX loads only when a block is sampled

    return np.asarray(jax.random.key_data(key)).astype(np.uint32).ravel()


@dataclass(frozen=True, eq=False)
class MarkovChainsSource:
    """`hmm_processes.RandomMarkovChains` as a run's `Source`."""

    process: RandomMarkovChains
    traits: SourceTraits = field(init=False)

    def __post_init__(self) -> None:
        p = self.process
        object.__setattr__(
            self,
            "traits",
            SourceTraits(
                kind=p.name,
                belief_size=p.belief_size,
                belief_names=p.belief_names,
                belief_label="posterior mean of the transition matrix, E[A[i, j] | context], flattened row-major",
                exact_regime=False,
                figure_columns=tuple(range(p.n_states)),
                figure_label="row 0 of the posterior mean, E[A[0, .] | context]",
                optimal_loss_method="monte_carlo",
            ),
        )

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
        return ("RandomMarkovChains", self.process.n_states, float(self.process.concentration))

    def sample_tokens(self, key: Any, n: int, length: int) -> Any:
        """Per sequence a transition matrix from the Dirichlet prior (`jax.random.dirichlet`, one row at a time), a
        uniform first token, then the chain (`jax.random.categorical` in a `lax.scan`); the same law as
        `hmm_processes.sample_chains` (the NumPy sampler of the validation and probe blocks), other draws."""
        import jax  # lazy: JAX loads only when training draws its data
        import jax.numpy as jnp

        k = self.process.n_states
        k_rows, k_first, k_steps = jax.random.split(key, 3)
        rows = jax.random.dirichlet(
            k_rows, jnp.full((k,), self.process.concentration, jnp.float32), shape=(n, k)
        )  # [n, k, k]
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

    def strings_bound(self, length: int) -> float:
        """Every string is allowed (Dirichlet rows are positive): k^length (inf when huge)."""
        k = self.process.vocab_size
        return float(k) ** length if length * math.log10(k) < 300 else math.inf

    def context_set(self, context_length: int, bos: bool) -> ContextSet:
        raise ValueError(
            f"{self.name} has no exact theory of every context (its Bayes predictor is closed-form): "
            "it runs in the sampled regime only"
        )

    def sample_block(self, key: Any, n: int, context_length: int, bos: bool) -> SampledBlock:
        """``n`` sequences at the model's positions: tokens [n, T], posterior means [n, T, k*k] (the beliefs) and
        the Dirichlet predictive [n, T, V (+1 with bos)], entry t after the model has read tokens[:, : t + 1].

        With ``bos`` position 0 is the start token: its belief is the prior mean (every entry 1/k) and its
        next-token law the uniform first token; the start token is never next (probability 0).
        """
        process = self.process
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
        return SampledBlock(tokens.astype(np.int32), beliefs, nxt)

    def sequence_theory(self, tokens: np.ndarray, bos: bool) -> tuple[SampledBlock, np.ndarray]:
        """Given sequences [N, T] (with ``bos``: the start token, id k, first) -> (`SampledBlock` of their posterior
        means and Dirichlet predictives, as `sample_block` gives them, and their log marginal probabilities [N])."""
        process = self.process
        tokens = np.asarray(tokens)
        k, n = process.n_states, tokens.shape[0]
        words = tokens[:, 1:] if bos else tokens
        L = words.shape[1]
        beliefs = posterior_mean(process, words) if L else np.zeros((n, 0, k * k))  # [N, L, k*k]
        nxt = bayes_predictive(process, words) if L else np.zeros((n, 0, k))  # [N, L, k]
        logp = log_marginal_probability(process, words) if L else np.zeros(n)
        if bos:
            beliefs = np.concatenate([np.full((n, 1, k * k), 1.0 / k), beliefs], axis=1)
            nxt = np.concatenate([np.broadcast_to(process.first_token_law, (n, 1, k)), nxt], axis=1)
            nxt = np.concatenate([nxt, np.zeros(nxt.shape[:2] + (1,))], axis=2)
        return SampledBlock(tokens.astype(np.int32), beliefs, nxt), logp

    def optimal_loss(
        self,
        context_length: int,
        bos: bool,
        *,
        n_samples: int = CHAIN_OPTIMAL_SAMPLES,
        seed: int = CHAIN_OPTIMAL_STREAM,
    ) -> OptimalLoss:
        """The Bayes-optimal loss [T] (nats) at each model position and its Monte-Carlo standard error [T]
        (`compmech.markov_chains.markov_icl_curve`, from a fixed seed).

        Without a start token position t has seen t + 1 tokens (curve position t + 1); with one, t tokens.
        """
        curve = markov_icl_curve(self.process, context_length + (0 if bos else 1), n_samples=n_samples, seed=seed)
        cut = slice(0, context_length) if bos else slice(1, context_length + 1)
        return OptimalLoss(values=curve.optimal[cut], stderr=curve.optimal_se[cut], method="monte_carlo")

    def next_token_laws(self, beliefs: np.ndarray, last_tokens: np.ndarray | None) -> np.ndarray:
        """The posterior mean's row at each context's last token (a start token there, id >= k, means the empty
        context: the uniform first token)."""
        k = self.process.n_states
        if last_tokens is None:
            raise ValueError("next_token_laws: random Markov chains need the last token of each context")
        rows = beliefs.reshape(-1, k, k)  # [n, k, k]
        last = np.asarray(last_tokens)
        out = np.broadcast_to(self.process.first_token_law, (rows.shape[0], k)).copy()
        real = last < k
        out[real] = rows[real, last[real]]
        return out

    def distance_scale(self) -> float | None:
        """None: a chain's next-token law is one row of its posterior mean, not a linear map of the whole belief."""
        return None

    def matrices_record(self, spec_file: str | None, composition: str | None, spec_files: tuple[str, ...]) -> None:
        """None: a continuous family has no matrices (its parameters are in config.toml)."""
        return None
