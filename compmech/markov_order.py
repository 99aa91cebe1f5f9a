"""Markov-order-k approximations of a process: the optimal predictor that sees only the last k tokens.

Two views of the same predictor, both exact (float64):

- `order_k_beliefs`: its belief over the *process's* hidden states, ``P(S | the last k tokens)``: the belief update
  (`hmm_processes.update_beliefs`) run over the window ``tokens[t-k+1 .. t]`` from the state distribution at the
  window's start (``prior M^(t-k+1)``, ``M = sum_x T[x]``; the stationary distribution for a stationary prior). Where
  the window reaches back to the first token (t < k) it is the true belief. Same simplex as the true beliefs, so a
  probe onto it is the like-for-like control of a probe onto the true beliefs.
- `markov_approximation`: the order-k approximation as an HMM of its own, as the authors' code builds it (the
  epsilon-transformers research code's ``markov_approximation(ghmm, order)``): states are the k-words of positive
  stationary probability (lexicographic order), ``T[x, w, w[1:] x] = P(w x) / P(w)``. It is a stationary process with
  the true process's (k+1)-block distribution, so its entropy rate is ``H(X_{k+1} | X_1..X_k)`` and its next-token
  law after any context equals the true law given the last k tokens of that context (or the whole context when it is
  shorter). Its own beliefs (`belief_trajectories` of it) are the authors' order-k probe targets: one-hot on the last
  k tokens once k tokens are seen.

Theory only: imports `hmm_processes` and the theory modules.
"""

from __future__ import annotations

import itertools

import numpy as np

from compmech.mixed_states import belief_trajectories, check_prior
from hmm_processes import HMM, GeneralizedHMM, ProcessError
from hmm_processes.beliefs import min_probability
from hmm_processes.generalized import process_vectors


def _check_order(k: object, least: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) < least:
        raise ProcessError(f"the Markov order k must be an integer >= {least}; got {k!r}")
    return int(k)


def order_k_beliefs(
    process: HMM | GeneralizedHMM, tokens: np.ndarray, k: int, prior: np.ndarray | None = None
) -> np.ndarray:
    """``P(S_t | tokens[t-k+1 .. t])`` for every string and position: the order-k predictor's belief over the process's
    states (module docstring), [N, T, S], aligned as the true beliefs (``[:, t]`` after ``tokens[:, :t+1]``).

    ``tokens`` [N, T] are allowed words of the process (a start token removed); ``prior`` as in
    `compmech.mixed_states.belief_trajectories` (default: the process's stationary one).

    Examples
    --------
    >>> from hmm_processes import get_process
    >>> from compmech.mixed_states import belief_trajectories
    >>> mess3 = get_process("mess3")
    >>> words = np.array([[0, 1, 2, 2]])
    >>> true, _ = belief_trajectories(mess3, words)
    >>> approx = order_k_beliefs(mess3, words, 2)
    >>> bool(np.allclose(approx[:, :2], true[:, :2]))  # the window reaches the start: the true belief
    True
    >>> bool(np.allclose(approx[:, 3], belief_trajectories(mess3, words[:, 2:])[0][:, -1]))  # stationary prior
    True
    """
    k = _check_order(k, 1)
    words = np.asarray(tokens)
    if words.ndim != 2:
        raise ProcessError(f"order_k_beliefs: tokens must have shape [N, T]; got {words.shape}")
    T, _, _ = process_vectors(process)
    pi = check_prior(process, prior, "order_k_beliefs")
    M = T.sum(axis=0)  # [S, S]
    N, L = words.shape
    out = np.empty((N, L, pi.shape[0]))  # [N, T, S]
    for t in range(L):
        start = max(0, t - k + 1)
        at_start = pi @ np.linalg.matrix_power(M, start)  # [S]: the state distribution before tokens[start]
        beliefs, logp = belief_trajectories(process, words[:, start : t + 1], prior=at_start)
        if not np.all(np.isfinite(logp)):
            n = int(np.flatnonzero(~np.isfinite(logp))[0])
            raise ProcessError(f"order_k_beliefs: string {n} is not an allowed word of the process")
        out[:, t] = beliefs[:, -1]
    return out


def markov_approximation(process: HMM | GeneralizedHMM, k: int) -> HMM:
    """The order-k Markov approximation as an `HMM` whose states are the k-words of positive stationary probability
    (module docstring); k = 0 gives the i.i.d. process of the stationary token law.

    Examples
    --------
    >>> from hmm_processes import get_process
    >>> from compmech.measures import entropy_rate
    >>> approx = markov_approximation(get_process("golden_mean"), 1)  # golden mean is Markov of order 1
    >>> approx.T.shape  # 2 tokens, the 2 one-token words
    (2, 2, 2)
    >>> bool(np.isclose(entropy_rate(approx), entropy_rate(get_process("golden_mean"))))
    True
    """
    k = _check_order(k, 0)
    T, pi, tau = process_vectors(process)
    V = T.shape[0]
    floor = min_probability(process)

    def prob(word: tuple[int, ...]) -> float:
        v = pi
        for x in word:
            v = v @ T[x]
        return float(v @ tau)

    words = [w for w in itertools.product(range(V), repeat=k) if prob(w) > floor]
    index = {w: i for i, w in enumerate(words)}
    A = np.zeros((V, len(words), len(words)))  # [V, W, W]
    for w, i in index.items():
        p_w = prob(w)
        for x in range(V):
            p = prob((*w, x)) / p_w
            if p > floor:
                A[x, i, index[(*w[1:], x)] if k else 0] = p
    A /= A.sum(axis=(0, 2))[None, :, None]  # exact up to rounding: sum_x P(w x) = P(w) at stationarity
    name = getattr(process, "name", "process")
    return HMM(A, name=f"{name}_order{k}", params={"k": k})
