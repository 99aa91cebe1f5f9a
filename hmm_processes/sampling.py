"""Fast batched sampling: tokens, hidden states (HMMs only), the true beliefs and next-token probabilities.

Alignment (used everywhere in the project): ``beliefs[:, t]`` is the belief after
``tokens[:, : t + 1]`` (for an HMM, over ``states[:, t]``, the hidden state after emitting
``tokens[:, t]``); it is the probe target for the activation at position ``t``.
``next_token_probs[:, t]`` is ``P(tokens[:, t + 1] | tokens[:, : t + 1])``. The prior (empty
context) is ``Samples.prior``.

An HMM is sampled through its hidden states. A generalized HMM has no hidden states (its state
vectors are quasi-probabilities), so its tokens are drawn from the exact next-token law
``P(x | eta) = eta T[x] tau`` and the belief is updated as in `hmm_processes.beliefs`; its
``states`` and ``initial_states`` are None (``Samples.has_hidden_states`` is False).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hmm_processes.beliefs import check_start_vector
from hmm_processes.errors import ProcessError
from hmm_processes.generalized import GeneralizedHMM
from hmm_processes.hmm import HMM, LOOSE_SUM_ATOL, check_probability_vector

#: In the float32 GHMM sampler a token whose next-token probability is at most this fraction of the
#: total counts as impossible (float32 rounding of cancelling quasi-probabilities is ~1e-7 relative),
#: so a token of exact probability 0 is never drawn; real probabilities this small are not drawn either.
GHMM_SAMPLING_MIN_PROB = 1e-6


class Samples(NamedTuple):
    """A batch of sequences from a process, with everything the optimal predictor knows along them."""

    tokens: jax.Array  # [batch, length] int32
    states: jax.Array | None  # [batch, length] int32, hidden state after emitting tokens[:, t]; None for a GHMM
    initial_states: jax.Array | None  # [batch] int32, hidden state before the first token; None for a GHMM
    beliefs: jax.Array | None  # [batch, length, S] float32, the belief after tokens[:, :t+1] (eta @ tau = 1)
    next_token_probs: jax.Array | None  # [batch, length, V] float32, P(tokens[:, t+1] | tokens[:, :t+1])
    prior: jax.Array  # [S] float32, belief before any token (the stationary distribution / vector)

    @property
    def has_hidden_states(self) -> bool:
        """True for an HMM's samples; False for a GHMM's, which have no hidden states (``states`` is None)."""
        return self.states is not None


def sample(
    process: HMM | GeneralizedHMM,
    key: jax.Array,
    batch: int,
    length: int,
    *,
    with_beliefs: bool = True,
    with_next_token_probs: bool = True,
    initial: np.ndarray | None = None,
) -> Samples:
    """Sample ``batch`` sequences of ``length`` tokens from ``process`` in one jit-compiled scan.

    Starts from ``initial`` (default the stationary distribution, so sequences are stationary; for
    an HMM a distribution over states, for a GHMM a quasi-probability vector with
    ``initial @ tau = 1``). Beliefs are computed in float32 with renormalisation at every step;
    for exact float64 beliefs of given words use `compmech.belief_trajectories`. A GHMM's tokens
    are drawn from the exact next-token law (see the module docstring); its samples carry no
    hidden states.
    """
    if int(batch) < 1 or int(length) < 1:
        raise ProcessError(f"sample: batch and length must be >= 1; got batch={batch}, length={length}")
    if isinstance(process, GeneralizedHMM):
        tau = process.normalizer
        assert tau is not None  # set by GeneralizedHMM.__post_init__
        prior = process.stationary_vector if initial is None else check_start_vector(initial, tau, "sample", "initial")
        return _sample_ghmm(
            jnp.asarray(process.T, jnp.float32),
            jnp.asarray(tau, jnp.float32),
            jnp.asarray(prior, jnp.float32),
            key,
            int(batch),
            int(length),
            bool(with_beliefs),
            bool(with_next_token_probs),
        )
    if not isinstance(process, HMM):
        raise ProcessError(f"sample: expected an HMM or GeneralizedHMM; got {type(process).__name__}")
    hmm = process
    prior = (
        hmm.stationary_distribution
        if initial is None
        else check_probability_vector(initial, hmm.num_states, "sample: initial", atol=LOOSE_SUM_ATOL)
    )
    tables = _sampling_tables(hmm.T)
    return _sample(
        *tables,
        jnp.asarray(prior, jnp.float32),
        key,
        int(batch),
        int(length),
        bool(with_beliefs),
        bool(with_next_token_probs),
    )


def _next_token_law(b: jax.Array, E: jax.Array) -> jax.Array:
    """``P(x | eta) = eta T[x] tau = eta @ E`` for beliefs [B, S], float32 rounding clipped: [B, V], rows sum to 1."""
    p = jnp.maximum(b @ E, 0.0)  # [B, V]
    total = p.sum(axis=1, keepdims=True)
    p = jnp.where(p > GHMM_SAMPLING_MIN_PROB * total, p, 0.0)
    return p / jnp.maximum(p.sum(axis=1, keepdims=True), jnp.finfo(p.dtype).tiny)


@partial(jax.jit, static_argnames=("batch", "length", "with_beliefs", "with_next"))
def _sample_ghmm(
    T: jax.Array,
    tau: jax.Array,
    prior: jax.Array,
    key: jax.Array,
    batch: int,
    length: int,
    with_beliefs: bool,
    with_next: bool,
) -> Samples:
    """Token by token from the exact next-token law; the belief update of `hmm_processes.beliefs` in float32."""
    V, S, _ = T.shape
    E = (T @ tau).T  # [S, V]
    u = jax.random.uniform(key, (length, batch), dtype=jnp.float32)  # [L, B]
    b0 = jnp.broadcast_to(prior, (batch, S))  # [B, S]
    p0 = _next_token_law(b0, E)  # [B, V]

    def step(carry, u_t):
        b, p = carry
        cdf = jnp.cumsum(p, axis=1)  # [B, V]
        last = (V - 1) - jnp.argmax((p > 0)[:, ::-1], axis=1)  # [B], the last possible token
        # the token whose cdf interval holds u (zero-probability tokens have empty intervals);
        # rounding at the top of the cdf falls back to the last possible token
        x = jnp.minimum(jnp.sum(u_t[:, None] >= cdf, axis=1), last).astype(jnp.int32)  # [B]
        u_new = jnp.einsum("bi,bij->bj", b, T[x])  # [B, S], eta T[x]
        b_new = u_new / (u_new @ tau)[:, None]  # renormalised so that eta @ tau = 1
        p_new = _next_token_law(b_new, E)
        out = {"x": x}
        if with_beliefs:
            out["b"] = b_new
        if with_next:
            out["p"] = p_new
        return (b_new, p_new), out

    _, out = jax.lax.scan(step, (b0, p0), u)
    return Samples(
        tokens=out["x"].T,
        states=None,
        initial_states=None,
        beliefs=jnp.swapaxes(out["b"], 0, 1) if with_beliefs else None,
        next_token_probs=jnp.swapaxes(out["p"], 0, 1) if with_next else None,
        prior=prior,
    )


def _sampling_tables(T: np.ndarray) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Inverse-CDF table over joint (token, next state) outcomes for each state, plus T and E in float32."""
    V, S, _ = T.shape
    joint = T.transpose(1, 0, 2).reshape(S, V * S)  # [S, V*S]: P(x, j | i), index x * S + j
    cdf = np.cumsum(joint, axis=1)
    # Past each row's last possible outcome the threshold is +inf, so rounding (u >= 0.99999) never
    # selects an outcome of probability zero.
    last = (V * S - 1) - np.argmax((joint > 0)[:, ::-1], axis=1)  # [S]
    cdf[np.arange(V * S)[None, :] >= last[:, None]] = np.inf
    return (jnp.asarray(cdf, jnp.float32), jnp.asarray(T, jnp.float32), jnp.asarray(T.sum(axis=2).T, jnp.float32))


@partial(jax.jit, static_argnames=("batch", "length", "with_beliefs", "with_next"))
def _sample(
    cdf: jax.Array,
    T: jax.Array,
    E: jax.Array,
    prior: jax.Array,
    key: jax.Array,
    batch: int,
    length: int,
    with_beliefs: bool,
    with_next: bool,
) -> Samples:
    V, S, _ = T.shape
    k_init, k_steps = jax.random.split(key)
    s0 = jax.random.categorical(k_init, jnp.log(prior), shape=(batch,)).astype(jnp.int32)  # [B]
    u = jax.random.uniform(k_steps, (length, batch), dtype=jnp.float32)  # [L, B]
    b0 = jnp.broadcast_to(prior, (batch, S))  # [B, S]

    def step(carry, u_t):
        s, b = carry
        idx = jnp.sum(u_t[:, None] >= cdf[s], axis=1).astype(jnp.int32)  # [B]
        x, s_next = idx // S, idx % S
        out = {"x": x, "s": s_next}
        if with_beliefs or with_next:
            b_new = jnp.einsum("bi,bij->bj", b, T[x])  # [B, S]
            b_new = b_new / jnp.maximum(b_new.sum(axis=1, keepdims=True), jnp.finfo(b.dtype).tiny)
            if with_beliefs:
                out["b"] = b_new
            if with_next:
                out["p"] = b_new @ E  # [B, V]
        else:
            b_new = b
        return (s_next, b_new), out

    _, out = jax.lax.scan(step, (s0, b0), u)
    return Samples(
        tokens=out["x"].T,
        states=out["s"].T,
        initial_states=s0,
        beliefs=jnp.swapaxes(out["b"], 0, 1) if with_beliefs else None,
        next_token_probs=jnp.swapaxes(out["p"], 0, 1) if with_next else None,
        prior=prior,
    )


def sample_words(process: HMM | GeneralizedHMM, key: Any, batch: int, length: int) -> np.ndarray:
    """Sample ``batch`` words of ``length`` tokens from the exact word distribution; returns int32 [batch, length].

    The tokens of `hmm_processes.sample` (for a GHMM drawn from ``P(x_t | x_<t) = eta T[x] tau``),
    without beliefs. ``key`` is a `jax.random` key or an integer seed.
    """
    batch, length = int(batch), int(length)
    if batch < 1 or length < 1:
        raise ProcessError(f"sample_words: batch and length must be >= 1; got batch={batch}, length={length}")
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        key = jax.random.key(int(key))
    elif not isinstance(key, jax.Array):
        raise ProcessError(f"sample_words: key must be a jax.random key or an int seed; got {key!r}")
    s = sample(process, key, batch, length, with_beliefs=False, with_next_token_probs=False)
    return np.asarray(s.tokens, dtype=np.int32)
