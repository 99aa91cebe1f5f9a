"""The rows a run evaluates and probes, with the exact theory along them: records shared by every phase.

`ContextSet`: every allowed string of the model's context length (the exact regime), or the kept sample of
sequences (the sampled regime's figures and training evolution). `SampledBlock`: sampled sequences with their
exact beliefs and next-token laws. Sources make them (`compmech.runs.sources`); the probe, the analyses, the
figures and the studies read them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ContextSet:
    """Strings of the model's context length with their exact theory.

    Exact regime: every allowed string (``probs`` their probabilities). With a start token (``bos``) every string
    begins with it (token id V) and is followed by an allowed word of length T - 1; ``beliefs[:, 0]`` is then the
    prior and ``next_token_probs[:, 0]`` the law of the first token. ``next_token_probs`` covers the model's
    vocabulary (the start token, never emitted, gets probability 0).
    """

    tokens: np.ndarray  # [N, T] int32
    probs: np.ndarray  # [N] float64
    beliefs: np.ndarray  # [N, T, S] float64, belief after tokens[:, :t+1] (the start token: the prior)
    next_token_probs: np.ndarray  # [N, T, V (+1 with bos)] float64
    optimal_loss: np.ndarray  # [T] nats, Bayes-optimal cross-entropy by position
    bos: bool = False


@dataclass(frozen=True, eq=False)
class SampledBlock:
    """Sampled sequences with what the optimal predictor knows along them, aligned with the model's positions."""

    tokens: np.ndarray  # [n, T] int32 (with bos: token V first)
    beliefs: np.ndarray  # [n, T, S] float64, belief after tokens[:, :t+1] (start token: the prior)
    next_token_probs: np.ndarray  # [n, T, V (+1 with bos)] float64

    def as_context_set(self, optimal_loss: np.ndarray, bos: bool) -> ContextSet:
        """These sequences as the `ContextSet` the figures and the training evolution read (uniform weights)."""
        n = self.tokens.shape[0]
        return ContextSet(
            tokens=self.tokens,
            probs=np.full(n, 1.0 / n),
            beliefs=self.beliefs,
            next_token_probs=self.next_token_probs,
            optimal_loss=optimal_loss,
            bos=bos,
        )
