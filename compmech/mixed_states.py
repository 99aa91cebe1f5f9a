"""Exact enumeration of words, their probabilities and the mixed states (beliefs) they induce.

For a word w read from the prior pi, the mixed state is ``eta_w = pi T^(w) / (pi T^(w) tau)`` and
``P(w) = pi T^(w) tau`` (tau = ones for an HMM; see `hmm_processes.beliefs`, where the update is
written). Works for HMMs and generalized HMMs alike: a GHMM's mixed states are quasi-probability
vectors with ``eta @ tau = 1``. Words are grown one level at a time, all at once with array
operations; words of probability zero (for a GHMM: at most `GHMM_MIN_PROB`) are dropped, so no
belief is ever NaN. Everything is float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from compmech.entropy import next_token_distribution
from hmm_processes import HMM, GeneralizedHMM, ProcessError, process_vectors
from hmm_processes.beliefs import check_start_vector, extend_beliefs, min_probability, update_beliefs
from hmm_processes.hmm import LOOSE_SUM_ATOL, check_probability_vector

#: Default memory budget of one enumeration (bytes); `check_enumerable` refuses larger ones.
MAX_ENUMERATION_BYTES = 4 << 30
#: No exact enumeration goes deeper than this many tokens, whatever the process.
MAX_DEPTH = 100_000


def check_depth(depth: object, what: str) -> int:
    """``depth`` as an int >= 0, or `ProcessError` naming ``what`` (floats and bools are refused, not truncated)."""
    if isinstance(depth, (bool, np.bool_)) or not isinstance(depth, (int, np.integer)):
        raise ProcessError(
            f"{what}: depth must be a whole number >= 0 (an int); got {depth!r} ({type(depth).__name__})"
        )
    if depth < 0:
        raise ProcessError(f"{what}: depth must be >= 0; got {depth}")
    return int(depth)


def _check_reachable(depth: object, what: str) -> int:
    depth = check_depth(depth, what)
    if depth > MAX_DEPTH:
        raise ProcessError(
            f"{what}: depth {depth} is out of reach for exact enumeration (at most {MAX_DEPTH}); use a smaller depth"
        )
    return depth


def word_counts(process: HMM | GeneralizedHMM, depth: int) -> np.ndarray:
    """Upper bounds on the number of allowed words of each length 0..``depth``, shape [depth + 1] (float64).

    A word of non-zero probability needs a path of non-zero transitions from some state, so
    ``N_L <= min(V^L, 1 A^L 1)`` with ``A[i, j]`` the number of tokens x with ``T[x, i, j] != 0``
    (any prior). Counted in floats (inf when astronomically large).
    """
    depth = _check_reachable(depth, "word_counts")
    counts = _iter_word_counts(process)
    return np.array([next(counts) for _ in range(depth + 1)])


def _iter_word_counts(process: HMM | GeneralizedHMM):
    """N_0, N_1, ... of `word_counts`, without end; inf from the first overflow on."""
    T = process.T
    A = (T != 0).sum(axis=0).astype(np.float64)  # [S, S]
    v = np.ones(T.shape[1])
    V = float(T.shape[0])
    L = 0
    with np.errstate(over="ignore", invalid="ignore"):
        while True:
            n = min(V**L if L * np.log10(max(V, 2.0)) < 300 else np.inf, float(v.sum()))
            yield n if np.isfinite(n) else np.inf
            v = v @ A
            L += 1


def _iter_enumeration_bytes(process: HMM | GeneralizedHMM):
    """Estimated peak bytes of `mixed_states` to depth 0, 1, 2, ... (see `enumeration_bytes`)."""
    S, V = process.num_states, process.vocab_size
    per_word = 8 * S + 8 + 8 + (1 if V <= 256 else 4)  # belief, probability, parent, token
    stored, prev = 0.0, 0.0
    for n in _iter_word_counts(process):
        stored += n * per_word
        yield min(stored + 2 * prev * V * (8 * S + 8), 2.0**62)  # + temporaries of growing the last level
        # (2**62 stands for "astronomical")
        prev = n


def enumeration_bytes(process: HMM | GeneralizedHMM, depth: int) -> int:
    """Estimated peak memory (bytes) of ``mixed_states(process, depth)``: every level's beliefs, probabilities
    and links, plus the temporaries of growing the last level. An upper bound (from `word_counts`)."""
    depth = _check_reachable(depth, "enumeration_bytes")
    for L, b in enumerate(_iter_enumeration_bytes(process)):
        if L == depth or b >= 2.0**62:
            return int(b)
    raise AssertionError  # pragma: no cover


def check_enumerable(process: HMM | GeneralizedHMM, depth: int, max_bytes: int = MAX_ENUMERATION_BYTES) -> int:
    """Refuse (`ProcessError`, with the estimate) an enumeration of every word up to ``depth`` that would
    need more than ``max_bytes``; else return the estimate. Call it before allocating."""
    depth = check_depth(depth, "check_enumerable")
    for L, b in enumerate(_iter_enumeration_bytes(process)):
        if b > max_bytes:
            if L > depth:
                break
            need = enumeration_bytes(process, min(depth, MAX_DEPTH))
            raise ProcessError(
                f"enumerating every word of {process.name} up to length {depth} needs about {_human(need)}, more "
                f"than the {_human(max_bytes)} allowed; use a length of at most {L - 1}, or sampled (not exact) "
                "targets"
            )
        if L == depth:
            return int(b)
        if L >= MAX_DEPTH:
            _check_reachable(depth, "check_enumerable")
    return enumeration_bytes(process, depth)  # pragma: no cover


def _human(n: float) -> str:
    """A byte count as text, e.g. ``1.5 GB``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PB"


@dataclass(frozen=True, eq=False)
class WordLevel:
    """All allowed words of one length with their probabilities and beliefs.

    Words are stored as (parent, last token) links; ``words`` builds the full [N, length] array
    on first use and caches it.
    """

    length: int
    last_token: np.ndarray  # [N] token id of w[-1] (uint8 when V <= 256, else int32)
    probs: np.ndarray  # [N] float64, P(w); sums to 1 (for a GHMM: up to the dropped words of P <= GHMM_MIN_PROB)
    beliefs: np.ndarray  # [N, S] float64, eta_w (the belief after reading all of w); eta_w @ tau = 1
    parent: np.ndarray  # [N] int64, index of w[:-1] in the previous level (-1 at length 0)
    previous: WordLevel | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.probs.shape[0])

    @cached_property
    def words(self) -> np.ndarray:
        """The words themselves, [N, length], in lexicographic order."""
        if self.previous is None:
            return np.zeros((len(self), 0), self.last_token.dtype)
        out = np.empty((len(self), self.length), self.last_token.dtype)
        out[:, :-1] = self.previous.words[self.parent]
        out[:, -1] = self.last_token
        return out


@dataclass(frozen=True)
class MixedStates:
    """Words of every length 0..depth from the prior, with probabilities and beliefs, level by level.

    ``process`` is an `HMM` or a `GeneralizedHMM` (``hmm`` is an alias kept for older code).
    """

    process: HMM | GeneralizedHMM
    prior: np.ndarray  # [S] float64, with prior @ tau = 1
    levels: tuple[WordLevel, ...]  # levels[L] holds the words of length L

    @property
    def hmm(self) -> HMM | GeneralizedHMM:
        """Alias of `process` (the name before GHMMs were accepted)."""
        return self.process

    @property
    def depth(self) -> int:
        return len(self.levels) - 1

    def level(self, length: int) -> WordLevel:
        """The words of the given length (0 is the empty word, whose belief is the prior)."""
        if not 0 <= length <= self.depth:
            raise ValueError(f"length must be in 0..{self.depth} (the enumeration depth); got {length}")
        return self.levels[length]

    def prefix_beliefs(self, length: int) -> np.ndarray:
        """Beliefs along every word of ``length``: ``out[n, t]`` is the belief after ``words[n, :t+1]``.

        Shape [N, length, S]; this is the probe target with the project's alignment.
        """
        lvl = self.level(length)
        out = np.empty((len(lvl), length, self.prior.shape[0]))
        idx = np.arange(len(lvl))
        for t in range(length, 0, -1):
            out[:, t - 1] = self.levels[t].beliefs[idx]
            idx = self.levels[t].parent[idx]
        return out

    def prefix_next_token_probs(self, length: int) -> np.ndarray:
        """``out[n, t] = P(next token | words[n, :t+1])``, shape [N, length, V] (a GHMM's rounding below 0 clipped)."""
        return next_token_distribution(self.prefix_beliefs(length), self.process.emission_matrix)


def mixed_states(
    process: HMM | GeneralizedHMM,
    depth: int,
    prior: np.ndarray | None = None,
    *,
    max_bytes: int = MAX_ENUMERATION_BYTES,
) -> MixedStates:
    """Enumerate every allowed word of length 0..``depth`` with its probability and belief.

    ``process``: an HMM or a GHMM. ``prior`` defaults to the stationary distribution (for a GHMM, its
    stationary vector pi); a given prior must be a probability vector for an HMM, and a finite vector
    with ``prior @ tau = 1`` for a GHMM. Cost grows as the number of allowed words (V^depth for Mess3:
    3^14 words in a few seconds, ~0.6 GB); an enumeration estimated to need more than ``max_bytes`` is
    refused before anything is allocated (`check_enumerable`).

    Examples
    --------
    >>> from hmm_processes import get_process
    >>> from compmech import mixed_states
    >>> level = mixed_states(get_process("mess3", x=0.05, alpha=0.85), 2).level(2)
    >>> level.words.shape, round(float(level.probs.sum()), 12)  # the 3^2 words of length 2; probabilities add to 1
    ((9, 2), 1.0)
    >>> level.beliefs[0].round(4)  # the belief after "00": almost surely in state 0
    array([0.9747, 0.0127, 0.0127])
    """
    if not isinstance(process, (HMM, GeneralizedHMM)):
        raise ProcessError(f"mixed_states: expected an HMM or GeneralizedHMM; got {type(process).__name__}")
    depth = check_depth(depth, "mixed_states")
    check_enumerable(process, depth, max_bytes)
    T, _, tau = process_vectors(process)
    pi = check_prior(process, prior, "mixed_states")
    min_prob = min_probability(process)
    tok_dtype = np.uint8 if process.vocab_size <= 256 else np.int32
    level0 = WordLevel(0, np.zeros(1, tok_dtype), np.ones(1), pi[None, :].copy(), np.full(1, -1, np.int64))
    levels = [level0]
    for _ in range(depth):
        prev = levels[-1]
        parent, token, beliefs, p_next = extend_beliefs(prev.beliefs, T, tau, min_prob)
        levels.append(
            WordLevel(prev.length + 1, token.astype(tok_dtype), prev.probs[parent] * p_next, beliefs, parent, prev)
        )
    return MixedStates(process=process, prior=pi, levels=tuple(levels))


def check_prior(process: HMM | GeneralizedHMM, prior: np.ndarray | None, what: str) -> np.ndarray:
    """The prior to start from, float64 [S]: ``process``'s stationary one when ``prior`` is None.

    An HMM's prior must be a probability vector; a GHMM's a finite vector with ``prior @ tau = 1``
    (within `LOOSE_SUM_ATOL`; it is then rescaled to exactly 1). Else `ProcessError` naming ``what``.
    """
    _, pi, tau = process_vectors(process)
    if prior is None:
        return np.array(pi, dtype=np.float64)
    if isinstance(process, HMM):
        return check_probability_vector(prior, process.num_states, f"{what}: prior", atol=LOOSE_SUM_ATOL)
    return check_start_vector(prior, tau, what, "prior")


def belief_trajectories(
    process: HMM | GeneralizedHMM, words: np.ndarray, prior: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact beliefs along given words, and each word's log-probability (natural log).

    ``words`` [N, L] -> (beliefs [N, L, S] with ``beliefs[n, t]`` after ``words[n, :t+1]``,
    log_probs [N]). Works for HMMs and GHMMs (``prior`` as in `mixed_states`). Disallowed words (a
    token of probability 0, for a GHMM at most `GHMM_MIN_PROB`) get log-probability -inf and NaN
    beliefs from that point on, so callers can drop them; per-step renormalisation keeps long words
    from underflowing.
    """
    words = np.asarray(words)
    if words.ndim != 2:
        raise ProcessError(f"belief_trajectories: words must have shape [N, L]; got {words.shape}")
    if words.size and (words.min() < 0 or words.max() >= process.vocab_size):
        raise ProcessError(f"belief_trajectories: tokens must be in 0..{process.vocab_size - 1}")
    T, _, tau = process_vectors(process)
    pi = check_prior(process, prior, "belief_trajectories")
    min_prob = min_probability(process)
    N, L = words.shape
    b = np.broadcast_to(pi, (N, pi.shape[0])).copy()
    out = np.empty((N, L, pi.shape[0]))
    logp = np.zeros(N)
    for t in range(L):
        b, p = update_beliefs(b, T[words[:, t]], tau)
        dead = ~(p > min_prob)
        b[dead] = np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            logp += np.where(dead, -np.inf, np.log(np.where(dead, 1.0, p)))
        out[:, t] = b
    return out, logp
