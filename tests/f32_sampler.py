"""The float32 belief recursion of `hmm_processes.sample`, run in float64 with a bound on its rounding.

Rule 1 of tests/conftest.py's docstring, for the sampler's beliefs and next-token laws: every value carries
e >= |float32 value - exact value| to first order in u = 2**-24, for any summation order. The float32 sampler
starts from the float32 prior and uses float32 copies of T (and tau, E): one rounding each, u |x|. Each token's
update b' = v / n, v = b T[x], n = v @ tau (an HMM: tau = ones) rounds locally by at most

    r = e_v / |n| + |v| e_n / n^2 + u |b'|,
    e_v = gamma_{S+1} |b| @ |T[x]|,  e_n = e_v @ |tau| + gamma_{S+1} |v| @ |tau|

(S terms per sum, T's own rounding the (S+1)th), and an error db made earlier moves on as db J with the update's
Jacobian J = T[x] (I - tau b') / n. So the belief after token t is off by at most sum_k r_k |J_{k+1} ... J_t|, the
local errors carried by the exact product of the Jacobians: a contracting recursion forgets them, which a bound
taking |.| at every step would not see (for the generalized HMMs it grows to >1 in ten tokens). The next-token law
b' @ E adds gamma_S |b'| @ |E| and E's own rounding; a generalized HMM's law is then clipped at 0, tokens below
GHMM_SAMPLING_MIN_PROB of the total set to 0 (the exact law may hold up to that much there) and renormalised.
"""

from __future__ import annotations

import numpy as np
from tolerances import F32_U as U
from tolerances import gamma32


def sampler_beliefs(
    T: np.ndarray, tau: np.ndarray, prior: np.ndarray, tokens: np.ndarray, generalized: bool, min_prob: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(beliefs [N, L, S], next-token laws [N, L, V], their bounds, same shapes) of the sampler on ``tokens``.

    T [V, S, S], tau [S] (ones for an HMM), prior [S]: the process in float64. ``generalized``: the GHMM sampler
    (normalised by tau, E computed in float32, the law clipped and renormalised with ``min_prob``)."""
    T, tau, prior = (np.asarray(a, np.float64) for a in (T, tau, prior))
    tokens = np.asarray(tokens)
    N, L = tokens.shape
    V, S, _ = T.shape
    E = (T @ tau).T  # [S, V]
    e_E = gamma32(S + 2) * (np.abs(T) @ np.abs(tau)).T if generalized else U * np.abs(E)
    eye = np.broadcast_to(np.eye(S), (N, S, S))
    b = np.broadcast_to(prior, (N, S))
    local = [np.broadcast_to(U * np.abs(prior), (N, S))]  # r_k: the prior's rounding, then each token's
    carry = [eye]  # J_{k+1} ... J_t for each k, [N, S, S]
    beliefs, laws = np.zeros((N, L, S)), np.zeros((N, L, V))
    e_beliefs, e_laws = np.zeros_like(beliefs), np.zeros_like(laws)
    for t in range(L):
        Tx = T[tokens[:, t]]  # [N, S, S]
        v = np.einsum("ni,nij->nj", b, Tx)
        n = v @ tau
        b_new = v / n[:, None]
        J = Tx @ (eye - tau[None, :, None] * b_new[:, None, :]) / n[:, None, None]
        carry = [M @ J for M in carry] + [eye]
        e_v = gamma32(S + 1) * np.einsum("ni,nij->nj", np.abs(b), np.abs(Tx))
        e_n = e_v @ np.abs(tau) + gamma32(S + 1) * (np.abs(v) @ np.abs(tau))
        local.append(e_v / np.abs(n)[:, None] + np.abs(v) * (e_n / n**2)[:, None] + U * np.abs(b_new))
        b = b_new
        e_b = sum(np.einsum("ni,nij->nj", r, np.abs(M)) for r, M in zip(local, carry))
        p = b @ E
        e_p = (
            sum(np.einsum("ni,nij->nj", r, np.abs(M @ E)) for r, M in zip(local, carry))
            + np.abs(b) @ e_E
            + gamma32(S) * (np.abs(b) @ np.abs(E))
        )
        if generalized:
            p = np.maximum(p, 0.0)
            total = p.sum(1, keepdims=True)
            e_total = e_p.sum(1, keepdims=True) + gamma32(V) * total
            cut = np.where(p <= min_prob * total + e_p + min_prob * e_total, p, 0.0)  # may be zeroed by the sampler
            p = p / total
            e_p = (e_p + cut) / total + p * e_total / total + U * p
        beliefs[:, t], e_beliefs[:, t], laws[:, t], e_laws[:, t] = b, e_b, p, e_p
    return beliefs, laws, e_beliefs, e_laws
