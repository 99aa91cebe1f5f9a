"""What the process alone says about causal interventions on a model's belief: the next-token law at any belief, the
divergence between laws, and the losses of predictors that lack the belief (float64 NumPy, nats).

- The law at a belief η: ``P(x | η) = η T^(x) 1`` (for a generalized HMM ``η T^(x) τ`` with ``η τ = 1``), written
  once in `compmech.entropy.next_token_distribution` (through the process's emission matrix ``E[s, x]``); `law_at`
  only applies it. Steering a model to a target belief η′ succeeds when its next-token distribution becomes
  ``law_at(η′)``.
- `kl_nats`, `cross_entropy_nats`: KL(p ‖ q) and H(p, q) row by row.
- `baseline_losses`: the cross-entropy of the best predictors deprived of the belief, exact from the stationary
  process: the order-0 predictor (the stationary token law, loss ``h(1) = H[X]``) and the order-1 predictor (the law
  given the last token, loss ``h(2) = H[X_t | X_{t-1}]``), both myopic entropies (`compmech.information`), beside
  the entropy rate's finite-context floor that the run already knows (the optimal loss by position).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compmech.entropy import next_token_distribution
from compmech.information import myopic_entropies
from compmech.mixed_states import mixed_states

LN2 = float(np.log(2.0))


def law_at(process, beliefs: np.ndarray) -> np.ndarray:
    """The exact next-token law at each belief: [..., S] -> [..., V] float64 (`compmech.entropy.next_token_distribution`
    on the process's emission matrix; beliefs normalised as the process's own, ``η τ = 1``)."""
    return next_token_distribution(np.asarray(beliefs, np.float64), process.emission_matrix)


def kl_nats(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p ‖ q) in nats along the last axis (0 log 0 = 0; +inf where p > 0 = q): [..., V] x [..., V] -> [...]."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return terms.sum(axis=-1)


def cross_entropy_nats(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """H(p, q) = -sum p log q in nats along the last axis (0 log 0 = 0): [..., V] x [..., V] -> [...]."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(q), 0.0)
    return terms.sum(axis=-1)


@dataclass(frozen=True)
class BaselineLosses:
    """Exact cross-entropies (nats per token) of predictors that do not hold the belief, from the stationary process."""

    order0: float  # h(1) = H[X]: the stationary token law, whatever the context
    order1: float  # h(2) = H[X_t | X_{t-1}]: the law given the last token only


def baseline_losses(process) -> BaselineLosses:
    """The order-0 and order-1 predictors' losses: the myopic entropies h(1), h(2) of the stationary process (words
    of length <= 1 enumerated exactly, `compmech.information.myopic_entropies`).

    Examples
    --------
    >>> from hmm_processes import get_process
    >>> b = baseline_losses(get_process("mess3", x=0.05, alpha=0.85))
    >>> round(b.order0, 6) == round(float(np.log(3)), 6), b.order1 < b.order0  # Mess3's tokens are uniform
    (True, True)
    """
    h = myopic_entropies(mixed_states(process, 1)) * LN2  # [h(1), h(2)] in nats
    return BaselineLosses(order0=float(h[0]), order1=float(h[1]))
