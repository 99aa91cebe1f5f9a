"""Induction scores of attention heads: how much a head attends from a token to the position right after an
earlier occurrence of the same token (Olsson et al. 2022's induction pattern), from attention patterns alone.

For query position i with token x_i, the induction targets are the keys j + 1 (j + 1 < i) with x_j = x_i, j < i:

- ``"last"``: only the most recent such occurrence (the classic copy-the-next-token induction head);
- ``"all"``: every such occurrence (a statistical induction head counting the tokens that followed x_i before,
  the Bayes-optimal mechanism for in-context Markov chains).

A head's score is its attention mass on the targets, averaged over the queries that have any; the baseline is
what uniform causal attention (1 / (i + 1) on each key) would score on the same queries, so a score far above
its baseline is an induction pattern. Plain NumPy; no model code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from probes._checks import ProbeInputError

MODES = ("last", "all")


@dataclass(frozen=True, eq=False)
class InductionScores:
    """Per-head induction scores of one attention layer."""

    score: np.ndarray  # [H] mean attention mass on the induction targets
    baseline: np.ndarray  # [H] the same for uniform causal attention (equal for every head)
    n_queries: int  # queries with at least one induction target
    mode: str

    def to_json(self) -> dict:
        return {
            "score": [float(s) for s in self.score],
            "baseline": float(self.baseline[0]) if self.baseline.size else None,
            "n_queries": int(self.n_queries),
            "mode": self.mode,
        }


def induction_targets(tokens: np.ndarray, mode: str = "last", ignore: int | None = None) -> np.ndarray:
    """[N, T, T] bool: ``out[n, i, k]`` iff key k is an induction target of query i (see the module docstring).

    ``ignore``: a token id that never counts as an occurrence (e.g. a start token).
    """
    if mode not in MODES:
        raise ProbeInputError(f"mode must be one of {MODES}; got {mode!r}")
    tok = np.asarray(tokens)
    if tok.ndim != 2 or tok.dtype.kind not in "iu":
        raise ProbeInputError(f"tokens must be an integer array [N, T]; got shape {tok.shape}, dtype {tok.dtype}")
    N, T = tok.shape
    same = tok[:, :, None] == tok[:, None, :]  # [N, i, j]
    if ignore is not None:
        same &= (tok != ignore)[:, :, None]
    i = np.arange(T)[:, None]
    j = np.arange(T)[None, :]
    earlier = same & (j + 1 < i)[None]  # occurrences j whose successor j + 1 is strictly before i
    targets = np.zeros((N, T, T), bool)
    if mode == "all":
        targets[:, :, 1:] = earlier[:, :, :-1]
    else:
        has = earlier.any(axis=2)  # [N, T]
        last = T - 1 - np.argmax(earlier[:, :, ::-1], axis=2)  # most recent j
        n_idx, i_idx = np.nonzero(has)
        targets[n_idx, i_idx, last[n_idx, i_idx] + 1] = True
    return targets


def induction_scores(
    patterns: np.ndarray, tokens: np.ndarray, *, mode: str = "last", ignore: int | None = None
) -> InductionScores:
    """Per-head induction scores from attention patterns [N, H, T, T] (query, key; rows sum to 1) and tokens [N, T]."""
    A = np.asarray(patterns, np.float64)
    if A.ndim != 4 or A.shape[2] != A.shape[3]:
        raise ProbeInputError(f"patterns must have shape [N, H, T, T]; got {A.shape}")
    targets = induction_targets(tokens, mode, ignore)
    if targets.shape[:2] != (A.shape[0], A.shape[2]):
        raise ProbeInputError(
            f"tokens {np.shape(tokens)} do not match patterns {A.shape}: need [N, T] = [{A.shape[0]}, {A.shape[2]}]"
        )
    has = targets.any(axis=2)  # [N, T]
    assert isinstance(has, np.ndarray)  # an array, not a scalar: targets is [N, T, T]
    n_q = int(has.sum())
    H = A.shape[1]
    if n_q == 0:
        return InductionScores(np.full(H, np.nan), np.full(H, np.nan), 0, mode)
    mass = np.einsum("nhik,nik->nhi", A, targets.astype(np.float64))  # [N, H, T]
    score = (mass * has[:, None]).sum(axis=(0, 2)) / n_q
    uniform = targets.sum(axis=2) / (np.arange(A.shape[2]) + 1.0)[None, :]  # [N, T]
    base = float((uniform * has).sum() / n_q)
    return InductionScores(score=score, baseline=np.full(H, base), n_queries=n_q, mode=mode)
