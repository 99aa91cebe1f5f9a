"""Fast batched sampling: tokens, hidden states, the true beliefs and next-token probabilities.

Alignment (used everywhere in the project): ``beliefs[:, t]`` is the belief over
``states[:, t]``, the hidden state after emitting ``tokens[:, t]``, given ``tokens[:, : t + 1]``;
it is the probe target for the activation at position ``t``. ``next_token_probs[:, t]`` is
``P(tokens[:, t + 1] | tokens[:, : t + 1])``. The prior (empty context) is ``Samples.prior``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hmm_processes.errors import ProcessError
from hmm_processes.hmm import HMM, LOOSE_SUM_ATOL, check_probability_vector


class Samples(NamedTuple):
    """A batch of sequences from a process, with everything the optimal predictor knows along them."""

    tokens: jax.Array  # [batch, length] int32
    states: jax.Array  # [batch, length] int32, hidden state after emitting tokens[:, t]
    initial_states: jax.Array  # [batch] int32, hidden state before the first token
    beliefs: jax.Array | None  # [batch, length, S] float32, P(states[:, t] | tokens[:, :t+1])
    next_token_probs: jax.Array | None  # [batch, length, V] float32, P(tokens[:, t+1] | tokens[:, :t+1])
    prior: jax.Array  # [S] float32, belief before any token (the stationary distribution)


def sample(hmm: HMM, key: jax.Array, batch: int, length: int, *, with_beliefs: bool = True,
           with_next_token_probs: bool = True, initial: np.ndarray | None = None) -> Samples:
    """Sample ``batch`` sequences of ``length`` tokens from ``hmm`` in one jit-compiled scan.

    Starts from ``initial`` (a distribution over states; default the stationary distribution, so
    sequences are stationary). Beliefs are computed in float32 with renormalisation at every
    step; for exact float64 beliefs of given words use `compmech.belief_trajectories`.
    """
    if not isinstance(hmm, HMM):
        raise ProcessError(
            f"sample: {getattr(hmm, 'name', hmm)!r} is a {type(hmm).__name__}, not an HMM; a generalized HMM "
            "has no hidden states to sample (its states carry quasi-probabilities, not probabilities): use sample_words"
        )
    if int(batch) < 1 or int(length) < 1:
        raise ProcessError(f"sample: batch and length must be >= 1; got batch={batch}, length={length}")
    prior = hmm.stationary_distribution if initial is None else check_probability_vector(
        initial, hmm.num_states, "sample: initial", atol=LOOSE_SUM_ATOL)
    tables = _sampling_tables(hmm.T)
    return _sample(*tables, jnp.asarray(prior, jnp.float32), key, int(batch), int(length),
                   bool(with_beliefs), bool(with_next_token_probs))


def _sampling_tables(T: np.ndarray) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Inverse-CDF table over joint (token, next state) outcomes for each state, plus T and E in float32."""
    V, S, _ = T.shape
    joint = T.transpose(1, 0, 2).reshape(S, V * S)  # [S, V*S]: P(x, j | i), index x * S + j
    cdf = np.cumsum(joint, axis=1)
    # Past each row's last possible outcome the threshold is +inf, so rounding (u >= 0.99999) never
    # selects an outcome of probability zero.
    last = (V * S - 1) - np.argmax((joint > 0)[:, ::-1], axis=1)  # [S]
    cdf[np.arange(V * S)[None, :] >= last[:, None]] = np.inf
    return (jnp.asarray(cdf, jnp.float32), jnp.asarray(T, jnp.float32),
            jnp.asarray(T.sum(axis=2).T, jnp.float32))


@partial(jax.jit, static_argnames=("batch", "length", "with_beliefs", "with_next"))
def _sample(cdf: jax.Array, T: jax.Array, E: jax.Array, prior: jax.Array, key: jax.Array,
            batch: int, length: int, with_beliefs: bool, with_next: bool) -> Samples:
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
