"""Generalized hidden Markov models (GHMMs): linear presentations whose matrices may be negative.

A GHMM has labelled matrices ``T[x]`` (shape [V, S, S], any sign), a right vector ``tau`` with
``T.sum(0) @ tau = tau`` and a left vector ``pi`` with ``pi @ T.sum(0) = pi`` and ``pi @ tau = 1``.
Word probabilities are ``P(w) = pi T^(w1) ... T^(wn) tau``; they must be >= 0 for every word,
which is checked for all words up to a depth (`GeneralizedHMM.checked_depth`).

The "belief" after a word, ``eta_w = pi T^(w) / (pi T^(w) tau)``, is a quasi-probability vector:
its entries can be negative and need not sum to 1 (``eta_w @ tau == 1`` instead). It still
predicts the future exactly (``P(x | w) = eta_w T[x] tau``; the update is written once, in
`hmm_processes.beliefs`), but there are no hidden states to sample: `hmm_processes.sample` draws
tokens from the exact next-token probabilities instead (its samples have no ``states``), and
asking a GHMM for a `stationary_distribution` raises `ProcessError` (use `stationary_vector`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hmm_processes.errors import ProcessError
from hmm_processes.hmm import HMM, check_names

#: Eigenvalue / normalisation tolerance.
GHMM_ATOL = 1e-9
#: A word probability below ``-NEGATIVITY_ATOL`` makes the matrices invalid.
NEGATIVITY_ATOL = 1e-12
#: Largest number of words enumerated (over all checked lengths) when validating.
CHECK_WORD_BUDGET = 1 << 18
#: `GeneralizedHMM.check_words`: the most distinct state vectors kept at one word length.
CHECK_VECTOR_BUDGET = 1 << 14
#: `GeneralizedHMM.check_words` with ``depth=None`` checks at most this many tokens (the depth `compmech info`
#: enumerates its myopic entropies to).
CHECK_MAX_DEPTH = 400
#: `GeneralizedHMM.check_words`: a conditional probability P(x | w) below minus this is negative.
CONDITIONAL_ATOL = 1e-9


@dataclass(frozen=True, eq=False)
class GeneralizedHMM:
    """A generalized HMM: ``P(w) = pi T^(w) tau`` with real (possibly negative) ``T [V, S, S]``.

    ``normalizer`` (tau, [S]) defaults to the all-ones vector when ``T.sum(0)`` is row-stochastic,
    else to the right eigenvector of ``T.sum(0)`` for eigenvalue 1. ``prior`` (pi, [S]) defaults to
    the left eigenvector for eigenvalue 1, scaled so ``pi @ tau = 1``. Validation (in this order):
    shape and finiteness; eigenvalue 1 present and no eigenvalue of modulus > 1; tau and pi are
    eigenvectors with ``pi @ tau = 1``; every word up to ``check_depth`` tokens (fewer if that
    would exceed `CHECK_WORD_BUDGET` words) has probability >= 0.
    """

    T: np.ndarray  # [V, S, S]
    name: str = "ghmm"
    params: dict[str, Any] = field(default_factory=dict)
    state_names: tuple[str, ...] | None = None
    token_names: tuple[str, ...] | None = None
    normalizer: np.ndarray | None = None  # tau [S]
    prior: np.ndarray | None = None  # pi [S]
    check_depth: int = 8

    def __post_init__(self) -> None:
        what = self.name
        T = _as_tensor(self.T, what)
        V, S, _ = T.shape
        M = T.sum(axis=0)
        eig = np.linalg.eigvals(M)
        rho = float(np.max(np.abs(eig)))
        if rho > 1.0 + 1e-7:
            raise ProcessError(
                f"{what}: T.sum(0) has an eigenvalue of modulus {rho:.6g} > 1, so word probabilities "
                "would grow without bound; scale the matrices so the leading eigenvalue is 1"
            )
        if np.min(np.abs(eig - 1.0)) > 1e-7:
            raise ProcessError(
                f"{what}: T.sum(0) has no eigenvalue 1 (eigenvalues {np.round(eig, 6).tolist()}); "
                "a GHMM needs T.sum(0) @ tau = tau for a normalising vector tau"
            )
        tau = _right_vector(M, self.normalizer, what)
        pi = _left_vector(M, tau, self.prior, what)
        for arr in (T, tau, pi):
            arr.setflags(write=False)
        object.__setattr__(self, "T", T)
        object.__setattr__(self, "normalizer", tau)
        object.__setattr__(self, "prior", pi)
        check_names(self.state_names, self.token_names, V, S, what)
        depth = int(self.check_depth)
        if depth < 1:
            raise ProcessError(f"{what}: check_depth must be >= 1; got {self.check_depth!r}")
        object.__setattr__(self, "_checked_depth", _check_word_probabilities(T, pi, tau, depth, what))

    # --- shape ---------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of tokens V."""
        return int(self.T.shape[0])

    @property
    def num_states(self) -> int:
        """Dimension S of the (quasi-)state vector."""
        return int(self.T.shape[1])

    @property
    def checked_depth(self) -> int:
        """Word length up to which every word probability was checked to be >= 0."""
        return int(self._checked_depth)  # type: ignore[attr-defined]

    def check_words(self, depth: int | None = None, *, budget: int = CHECK_VECTOR_BUDGET) -> float:
        """Check that every word of up to ``depth`` tokens (None: `CHECK_MAX_DEPTH`) has probability >= 0; return the
        length up to which every word was checked: ``depth``, or ``math.inf`` when the check is complete for every
        length, or less than ``depth`` when a word length holds more than ``budget`` distinct state vectors.

        Words with the same state vector ``pi T^(w)`` (up to a positive factor) have the same continuations, so the
        search keeps each distinct vector once (the mixed-state presentation's search): a finite set of them closes
        and the check is complete. A vector of a zero-probability word is kept too (scaled to its largest entry):
        its continuations must all be 0, since they sum to 0 and none may be negative. Raises `ProcessError` naming
        a word whose probability is negative, and the length at which it was found.
        """
        T, pi, tau = self.T, np.array(self.prior), np.array(self.normalizer)
        V = self.vocab_size
        limit = CHECK_MAX_DEPTH if depth is None else int(depth)
        fronts = pi[None, :]  # [N, S] distinct state vectors of the current length, each with vec @ tau = 1 or 0
        null = np.zeros(1, dtype=bool)  # [N] the vector of a zero-probability word
        seen: set[bytes] = set()
        parents: list[tuple[np.ndarray, np.ndarray]] = []  # per length: each vector's parent index and last token
        L = 0
        while L < limit:
            L += 1
            ext = np.einsum("ni,xij->nxj", fronts, T)  # [N, V, S]
            p = ext @ tau  # [N, V]: P(x | w) (or its multiple for a zero-probability w)
            bad = (p < -CONDITIONAL_ATOL) | (null[:, None] & (np.abs(p) > CONDITIONAL_ATOL))
            if bad.any():
                n, x = np.argwhere(bad & (p < 0))[0] if (bad & (p < 0)).any() else np.argwhere(bad)[0]
                word = _word(parents, int(n)) + (int(x),)
                text = (
                    str(word)
                    if L <= 16
                    else f"({', '.join(map(str, word[:8]))}, ..., {', '.join(map(str, word[-4:]))})"
                )
                raise ProcessError(
                    f"{self.name}: the word {text} of {L} tokens gets a negative probability (P(last token | the "
                    f"others) = {p[n, x]:.3g}), so these matrices do not define a stochastic process (a GHMM needs "
                    "pi T^(w) tau >= 0 for every word)"
                )
            vec = ext.reshape(-1, ext.shape[2])  # [N V, S]
            prob = p.reshape(-1)
            scale = np.where(prob > CONDITIONAL_ATOL, prob, np.abs(vec).max(axis=1))
            keep = scale > GHMM_ATOL * 1e-3  # a zero vector has no continuations to check
            vec, is_null = vec[keep] / scale[keep, None], ~(prob[keep] > CONDITIONAL_ATOL)
            origin = np.flatnonzero(keep)
            keys = np.concatenate([np.round(vec, 10) + 0.0, is_null[:, None]], axis=1)  # + 0.0: -0.0 and 0.0 alike
            _, first = np.unique(keys, axis=0, return_index=True)
            first.sort()
            if first.size > 4 * budget:
                return L
            fresh = [keys[i].tobytes() for i in first]
            new = [i for i, key in zip(first, fresh) if key not in seen]
            if not new:
                return math.inf  # every vector of this length was seen before: every length is checked
            if len(new) > budget:
                return L
            seen.update(keys[i].tobytes() for i in new)
            parents.append((origin[new] // V, origin[new] % V))
            fronts, null = vec[new], is_null[new]
        return L

    # --- linear algebra --------------------------------------------------------------------------
    @property
    def state_transition_matrix(self) -> np.ndarray:
        """``M = T.sum(0)``, shape [S, S]; not a stochastic matrix in general."""
        return self.T.sum(axis=0)

    @property
    def stationary_vector(self) -> np.ndarray:
        """pi: the left eigenvector of ``T.sum(0)`` for eigenvalue 1 with ``pi @ tau = 1`` (quasi-probabilities)."""
        return np.array(self.prior)

    @property
    def stationary_distribution(self) -> np.ndarray:
        """Refused: a GHMM has no probability distribution over hidden states.

        Raises `ProcessError`; use `stationary_vector` for the quasi-probability vector pi, and
        `sample_words` to sample tokens.
        """
        raise ProcessError(
            f"{self.name} is a generalized HMM: its state vectors are quasi-probabilities (entries may be "
            "negative), so it has no stationary distribution over hidden states and hidden states cannot be "
            "sampled. Use .stationary_vector for pi; hmm_processes.sample(...) samples its tokens and beliefs, and "
            "compmech's theory (mixed_states, msp, measures, streaming) accepts GHMMs."
        )

    @property
    def emission_matrix(self) -> np.ndarray:
        """``E[i, x] = sum_j T[x, i, j] tau_j``, shape [S, V]; ``P(x | eta) = eta @ E`` when ``eta @ tau = 1``."""
        tau = self.normalizer
        assert tau is not None  # set by __post_init__
        return (self.T @ tau).T

    def next_token_probs(self, beliefs: np.ndarray) -> np.ndarray:
        """Next-token distribution for quasi-beliefs ``[..., S]``: ``eta T[x] tau / (eta tau)``, shape ``[..., V]``.

        (The ``/ (eta tau)`` lets unnormalised vectors ``pi T^(w)`` in; see `hmm_processes.beliefs`.)"""
        b = np.asarray(beliefs, dtype=np.float64)
        tau = self.normalizer
        assert tau is not None  # set by __post_init__
        return (b @ self.emission_matrix) / (b @ tau)[..., None]

    def word_probabilities(self, words: np.ndarray) -> np.ndarray:
        """``P(w) = pi T^(w) tau`` for each row of ``words`` [N, L]; returns [N] float64."""
        words = np.asarray(words)
        if words.ndim != 2:
            raise ProcessError(f"{self.name}: words must have shape [N, L]; got {words.shape}")
        if words.size and (words.min() < 0 or words.max() >= self.vocab_size):
            raise ProcessError(f"{self.name}: tokens must be in 0..{self.vocab_size - 1}")
        assert self.prior is not None  # set by __post_init__
        v = np.broadcast_to(self.prior, (words.shape[0], self.num_states)).copy()
        for t in range(words.shape[1]):
            v = np.einsum("ni,nij->nj", v, self.T[words[:, t]])
        return v @ self.normalizer

    # --- conversions -------------------------------------------------------------------------------
    @classmethod
    def from_hmm(cls, hmm: HMM) -> GeneralizedHMM:
        """The same process as a GHMM (tau = 1, pi = the HMM's stationary distribution)."""
        return cls(
            np.array(hmm.T),
            name=hmm.name,
            params=dict(hmm.params),
            state_names=hmm.state_names,
            token_names=hmm.token_names,
            normalizer=np.ones(hmm.num_states),
            prior=hmm.stationary_distribution,
        )

    def to_hmm(self) -> HMM:
        """This GHMM as an `HMM`, if its matrices are non-negative and tau is constant; else `ProcessError`."""
        tau, pi = self.normalizer, self.prior
        assert tau is not None and pi is not None  # set by __post_init__
        if np.any(self.T < 0) or np.any(pi < -GHMM_ATOL) or not np.allclose(tau, tau[0], atol=GHMM_ATOL):
            raise ProcessError(
                f"{self.name}: this GHMM is not an HMM as given (it has negative entries or a non-constant tau)"
            )
        scale = tau[0]
        return HMM(
            np.array(self.T),
            name=self.name,
            params=dict(self.params),
            state_names=self.state_names,
            token_names=self.token_names,
            prior=np.clip(pi * scale, 0, None),
        )

    def __repr__(self) -> str:
        p = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"GeneralizedHMM({self.name}({p}), tokens={self.vocab_size}, states={self.num_states})"


def _word(parents: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[int, ...]:
    """The word that leads to state vector ``n`` of the last length in `GeneralizedHMM.check_words`' search."""
    word: list[int] = []
    for parent, token in reversed(parents):
        word.append(int(token[n]))
        n = int(parent[n])
    return tuple(reversed(word))


def is_generalized(process: Any) -> bool:
    """True for a `GeneralizedHMM`, False for an `HMM`."""
    return isinstance(process, GeneralizedHMM)


def process_vectors(process: HMM | GeneralizedHMM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(T [V, S, S], pi [S], tau [S])`` for either type, so ``P(w) = pi T^(w) tau`` (tau = 1 for an HMM)."""
    if isinstance(process, GeneralizedHMM):
        return process.T, np.array(process.prior), np.array(process.normalizer)
    if isinstance(process, HMM):
        return process.T, process.stationary_distribution, np.ones(process.num_states)
    raise ProcessError(f"expected an HMM or GeneralizedHMM; got {type(process).__name__}")


def _as_tensor(T: Any, what: str) -> np.ndarray:
    try:
        arr = np.array(T, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ProcessError(f"{what}: T must be a numeric array of shape [V, S, S] ({exc})") from None
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2] or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ProcessError(f"{what}: T must have shape [V, S, S] (tokens, states, states); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        x, i, j = np.argwhere(~np.isfinite(arr))[0]
        raise ProcessError(f"{what}: T[{x}, {i}, {j}] is {arr[x, i, j]}; all entries must be finite")
    return arr


def _right_vector(M: np.ndarray, given: Any, what: str) -> np.ndarray:
    S = M.shape[0]
    if given is not None:
        tau = np.array(given, dtype=np.float64)
        if tau.shape != (S,) or not np.all(np.isfinite(tau)):
            raise ProcessError(f"{what}: normalizer (tau) must be a finite vector of shape [{S}]")
    elif np.allclose(M.sum(axis=1), 1.0, atol=GHMM_ATOL, rtol=0):
        tau = np.ones(S)
    else:
        w, vr = np.linalg.eig(M)
        close = np.flatnonzero(np.abs(w - 1.0) < 1e-7)
        if close.size != 1:
            raise ProcessError(f"{what}: eigenvalue 1 of T.sum(0) is repeated; pass normalizer (tau) and prior (pi)")
        tau = np.real(vr[:, close[0]])
        tau = tau / tau[np.argmax(np.abs(tau))]
    if np.max(np.abs(M @ tau - tau)) > GHMM_ATOL * max(1.0, np.max(np.abs(tau))) * 10:
        raise ProcessError(f"{what}: normalizer (tau) is not a right eigenvector of T.sum(0) for eigenvalue 1")
    return tau


def _left_vector(M: np.ndarray, tau: np.ndarray, given: Any, what: str) -> np.ndarray:
    S = M.shape[0]
    if given is not None:
        pi = np.array(given, dtype=np.float64)
        if pi.shape != (S,) or not np.all(np.isfinite(pi)):
            raise ProcessError(f"{what}: prior (pi) must be a finite vector of shape [{S}]")
    else:
        w, vl = np.linalg.eig(M.T)
        close = np.flatnonzero(np.abs(w - 1.0) < 1e-7)
        if close.size != 1:
            raise ProcessError(f"{what}: eigenvalue 1 of T.sum(0) is repeated; pass prior (pi) explicitly")
        pi = np.real(vl[:, close[0]])
    norm = pi @ tau
    if abs(norm) < 1e-12:
        raise ProcessError(f"{what}: pi @ tau = 0, so no word probabilities can be normalised")
    pi = pi / norm
    if np.max(np.abs(pi @ M - pi)) > 1e-8 * max(1.0, np.max(np.abs(pi))):
        raise ProcessError(f"{what}: prior (pi) is not stationary: pi @ T.sum(0) != pi")
    return pi


def _check_word_probabilities(T: np.ndarray, pi: np.ndarray, tau: np.ndarray, depth: int, what: str) -> int:
    """Check ``P(w) >= 0`` for all words up to ``depth`` (within the word budget); return the depth checked."""
    V = T.shape[0]
    fronts = pi[None, :]  # [N, S], unnormalised pi T^(w) for the words of the current length
    total = 0
    checked = 0
    for L in range(1, depth + 1):
        n_next = fronts.shape[0] * V
        if total + n_next > CHECK_WORD_BUDGET:
            break
        fronts = np.einsum("ni,xij->nxj", fronts, T).reshape(n_next, -1)
        probs = fronts @ tau
        total += n_next
        bad = np.flatnonzero(probs < -NEGATIVITY_ATOL)
        if bad.size:
            k = int(bad[np.argmin(probs[bad])])
            word = np.unravel_index(k, (V,) * L)
            raise ProcessError(
                f"{what}: word {tuple(int(t) for t in word)} gets probability {probs[k]:.3g} < 0, so these "
                "matrices do not define a stochastic process (a GHMM needs pi T^(w) tau >= 0 for every word)"
            )
        checked = L
    return checked


#: `all_words` refuses to list more words than this (8 bytes per token: 2^24 words of length 16 is 2 GiB).
MAX_LISTED_WORDS = 1 << 24


def all_words(vocab_size: int, length: int) -> np.ndarray:
    """Every word of ``length`` tokens in lexicographic order, shape [V^length, length].

    Refuses (`ProcessError`) more than `MAX_LISTED_WORDS` words, and lengths that are not whole numbers.
    """
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise ProcessError(f"all_words: length must be a whole number >= 0; got {length!r}")
    if length * np.log2(max(int(vocab_size), 1)) > np.log2(MAX_LISTED_WORDS):
        raise ProcessError(
            f"all_words: {vocab_size}^{length} words are more than the {MAX_LISTED_WORDS} that can be "
            "listed; use a shorter length"
        )
    return np.array(list(itertools.product(range(vocab_size), repeat=length)), dtype=np.int64).reshape(-1, length)
