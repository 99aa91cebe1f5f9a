"""The belief update, written once for HMMs and generalized HMMs (GHMMs).

For labelled matrices ``T[x]`` (shape [V, S, S]; any sign for a GHMM), a right vector ``tau``
(``T.sum(0) @ tau = tau``; all ones for an HMM) and a belief ``eta`` with ``eta @ tau = 1``:

    P(x | eta) = eta T[x] tau,        eta' = eta T[x] / (eta T[x] tau).

From the prior ``pi`` this gives ``P(w) = pi T^(w) tau`` and ``eta_w = pi T^(w) / (pi T^(w) tau)``.
For an HMM, eta is the ordinary distribution over hidden states; for a GHMM it is a
quasi-probability vector (entries of any sign, ``eta @ tau = 1``). Every exact computation in the
project (enumeration of mixed states, belief trajectories, the MSP, streaming entropies, the
NumPy word sampler) grows beliefs with these functions; the JAX sampler (`hmm_processes.sampling`)
applies the same two lines in float32 inside its scan.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hmm_processes.errors import ProcessError
from hmm_processes.generalized import GeneralizedHMM
from hmm_processes.hmm import LOOSE_SUM_ATOL

#: Next-token probabilities of a GHMM at or below this count as zero: cancelling quasi-probabilities
#: leave rounding residue of order 1e-16 where the exact probability is 0, and such words are dropped
#: (never carried with a near-0/0 belief). For HMMs only exact zeros are dropped.
GHMM_MIN_PROB = 1e-12


def check_start_vector(value: Any, tau: np.ndarray, what: str, name: str) -> np.ndarray:
    """A GHMM's start vector (``name``: "prior", "initial"), float64 [S]: finite, of tau's shape, with
    ``value @ tau = 1`` within `LOOSE_SUM_ATOL` (then rescaled to exactly 1); else `ProcessError` naming ``what``."""
    v = np.asarray(value, dtype=np.float64)
    if v.shape != tau.shape or not np.all(np.isfinite(v)):
        raise ProcessError(f"{what}: {name} must be a finite vector of shape [{tau.shape[0]}]; got shape {v.shape}")
    norm = float(v @ tau)
    if abs(norm - 1.0) > LOOSE_SUM_ATOL:
        raise ProcessError(
            f"{what}: a GHMM's {name} vector needs {name} @ tau = 1 (tau = the process's "
            f"normalizer); got {norm:.6g}: divide it by {name} @ tau"
        )
    return v / norm


def min_probability(process: Any) -> float:
    """The probability at or below which a next token counts as impossible: `GHMM_MIN_PROB` for a GHMM, 0 for an HMM."""
    return GHMM_MIN_PROB if isinstance(process, GeneralizedHMM) else 0.0


def emission_from(T: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """``E[i, x] = (T[x] tau)_i``, shape [S, V], so that ``P(x | eta) = eta @ E``."""
    return (np.asarray(T) @ np.asarray(tau)).T


def update_beliefs(beliefs: np.ndarray, T_x: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One observed token per row: ``eta' = eta T[x] / (eta T[x] tau)`` and ``P(x | eta) = eta T[x] tau``.

    ``beliefs`` [N, S] (each with ``eta @ tau = 1``), ``T_x`` [N, S, S] (the matrix of each row's
    token, ``T[tokens]``) or [S, S] (one token for all rows). Returns (next beliefs [N, S], token
    probabilities [N]); rows whose token has probability <= 0 get NaN beliefs (the caller drops them).
    """
    T_x = np.asarray(T_x)
    u = np.einsum("ni,nij->nj", beliefs, T_x) if T_x.ndim == 3 else beliefs @ T_x  # [N, S]
    p = u @ tau  # [N]
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where((p > 0)[:, None], u / p[:, None], np.nan)
    return eta, p


def extend_beliefs(
    beliefs: np.ndarray, T: np.ndarray, tau: np.ndarray, min_prob: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every one-token extension of every belief that has probability > ``min_prob``.

    ``beliefs`` [N, S] -> (parent [K] int64, token [K] int64, child beliefs [K, S], ``P(token | parent)`` [K]),
    in parent-major, token-minor order (lexicographic when the parents are). ``min_prob``: use
    `min_probability` of the process (`GHMM_MIN_PROB` for GHMMs).
    """
    N, S = beliefs.shape
    V = T.shape[0]
    # b @ [T[0] | ... | T[V-1]] in one product; einsum is faster than @ for these thin shapes
    Tcat = T.transpose(1, 0, 2).reshape(S, V * S)
    U = np.einsum("ni,ij->nj", beliefs, Tcat).reshape(N, V, S)  # [N, V, S], eta T[x]
    P = np.einsum("nxj,j->nx", U, tau)  # [N, V], P(x | eta)
    keep = P > min_prob
    if keep.all():  # every extension allowed (e.g. Mess3): reshapes instead of gathers
        parent = np.repeat(np.arange(N, dtype=np.int64), V)
        token = np.tile(np.arange(V, dtype=np.int64), N)
        return parent, token, (U / P[:, :, None]).reshape(N * V, S), P.reshape(N * V)
    parent, token = np.nonzero(keep)
    p = P[parent, token]
    return parent.astype(np.int64), token.astype(np.int64), U[parent, token] / p[:, None], p
