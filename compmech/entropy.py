"""The two formulas every theory module uses: Shannon entropy, and the next-token law a belief implies.

Kept in a module of their own (NumPy only) so that `compmech.mixed_states` and `compmech.information` can both
use them without importing each other.
"""

from __future__ import annotations

import numpy as np


def entropy_bits(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy ``-sum p log2 p`` along ``axis`` (0 log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(axis=axis)


def next_token_distribution(beliefs: np.ndarray, emission: np.ndarray) -> np.ndarray:
    """``P(x | eta) = eta @ E`` for belief rows [..., S] -> [..., V], clipped at 0 and renormalised.

    The clip and renormalisation only matter for quasi-beliefs of generalized HMMs (rounding can
    push a zero probability slightly negative); for HMM beliefs they change nothing.
    """
    # einsum, not @: NumPy's matmul is several times slower for these thin [n, S] x [S, V] products
    q = np.clip(np.einsum("...i,ij->...j", np.asarray(beliefs, dtype=np.float64), emission), 0.0, None)
    return q / q.sum(axis=-1, keepdims=True)
