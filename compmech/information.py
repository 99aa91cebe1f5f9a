"""Information measures computed from exact word enumeration (bits unless a name says nats).

`entropy_bits` and `next_token_distribution` live in `compmech.entropy` (every theory module uses them) and are
re-exported here.
"""

from __future__ import annotations

import numpy as np

from compmech.entropy import entropy_bits, next_token_distribution
from compmech.mixed_states import MixedStates, mixed_states
from hmm_processes import HMM, GeneralizedHMM

__all__ = ["block_entropies", "entropy_bits", "myopic_entropies", "next_token_distribution", "optimal_loss_by_position"]


def block_entropies(ms: MixedStates) -> np.ndarray:
    """Block entropies ``H(L) = H[X_1..X_L]`` for L = 0..depth, in bits. Shape [depth + 1]."""
    return np.array([entropy_bits(lvl.probs) for lvl in ms.levels])


def myopic_entropies(ms: MixedStates) -> np.ndarray:
    """Myopic entropy rates ``h(L) = H[X_L | X_1..X_{L-1}] = sum_{|w|=L-1} P(w) H[X | eta_w]``.

    Returns h(1)..h(depth + 1) in bits (element k is h(k + 1)), shape [depth + 1]:
    enumerating words to ``depth`` gives the next-token entropy after each of them. For HMMs and GHMMs.
    """
    E = ms.process.emission_matrix  # [S, V]
    return np.array([lvl.probs @ entropy_bits(next_token_distribution(lvl.beliefs, E)) for lvl in ms.levels])


def optimal_loss_by_position(
    hmm: HMM | GeneralizedHMM, context_length: int, *, start_token: bool = False, ms: MixedStates | None = None
) -> np.ndarray:
    """The optimal (Bayes) cross-entropy, in nats, at each of a model's ``context_length`` positions.

    Without a start token the model reads x_1..x_n and at position t (0-based) has seen t + 1
    tokens, so its floor is h(t + 2). With a start token position t has seen t tokens: h(t + 1).
    ``hmm``: an HMM or a GHMM. ``ms``: an enumeration of ``hmm`` from its stationary distribution that the caller
    already has (deep enough), to reuse instead of enumerating again.

    Examples
    --------
    >>> from hmm_processes import get_process
    >>> from compmech import optimal_loss_by_position
    >>> floor = optimal_loss_by_position(get_process("mess3", x=0.05, alpha=0.85), 10)  # [10] nats
    >>> round(float(floor.mean()), 4)  # the paper's Mess3 model: the floor of its relative loss
    0.8025
    """
    depth = context_length if not start_token else context_length - 1
    if ms is None or ms.depth < depth:
        ms = mixed_states(hmm, depth)
    h = myopic_entropies(ms)[: depth + 1] * np.log(2.0)  # h(1)..h(depth+1) in nats
    return h[1:] if not start_token else h
