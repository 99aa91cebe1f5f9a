"""Shared by the zoo and composition tests: exact word probabilities and a chi-square check of samples."""

import numpy as np
from scipy import stats

import hmm_processes as hp


def word_probabilities(process, length: int) -> np.ndarray:
    """Exact P(w) = pi T^(w) tau for all words of ``length``, in lexicographic order."""
    T, pi, tau = hp.process_vectors(process)
    v = pi[None, :]
    for _ in range(length):
        v = np.einsum("ni,xij->nxj", v, T).reshape(-1, T.shape[1])
    return v @ tau


def chi_square_pvalue(words: np.ndarray, V: int, expected_probs: np.ndarray) -> float:
    """Pearson chi-square of observed word counts against exact probabilities (bins with expected < 5 pooled)."""
    n, L = words.shape
    index = np.zeros(n, np.int64)
    for t in range(L):
        index = index * V + words[:, t]
    observed = np.bincount(index, minlength=V**L).astype(np.float64)
    expected = expected_probs * n
    assert observed[expected_probs <= 1e-15].sum() == 0, "a word of probability zero was sampled"
    small = expected < 5
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    exp *= obs.sum() / exp.sum()  # remove float rounding of the total
    return float(stats.chisquare(obs, exp).pvalue)
