"""Bounded-memory deep enumeration: the distribution over beliefs level by level, merging equal beliefs.

Block and myopic entropies need only the distribution of beliefs at each depth, not the words:
``h(L + 1) = sum_{|w| = L} P(w) H[X | eta_w]`` and ``H(L) = h(1) + ... + h(L)``. So words with
equal beliefs can be merged (their probabilities added) without changing any h(L). A process with
a finite MSP never keeps more beliefs per level than it has mixed states, however deep.

When the beliefs at a level still outnumber ``max_states`` (Mess3: 3^L distinct beliefs), they are
merged on a coarser grid: beliefs in one grid cell become one, at their probability-weighted mean.
That is exact for the future token statistics (beliefs update linearly before normalisation) but,
because entropy is concave, each merged level's h(L) is an upper bound on the true one; the
result records the grid used (``resolution``) and whether any merge was lossy (``exact``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from compmech.information import entropy_bits, next_token_distribution
from compmech.mixed_states import check_depth
from hmm_processes import HMM, GeneralizedHMM, ProcessError, process_vectors
from hmm_processes.beliefs import extend_beliefs, min_probability

#: Default grid for merging beliefs: equal up to rounding.
EXACT_RESOLUTION = 1e-12
#: Default cap on the beliefs kept per level.
MAX_STATES = 100_000
#: Largest number of float64 entries in one chunk of children (bounds peak memory).
CHUNK_ENTRIES = 1 << 21
#: `exact_myopic_entropies`: beliefs per level up to which equal beliefs are looked for and merged.
MERGE_SEARCH_LIMIT = 1 << 15
#: `exact_myopic_entropies`: rows per block in the depth-first phase (bounds its memory).
DFS_BLOCK = 1 << 16


@dataclass(frozen=True, eq=False)
class StreamResult:
    """Entropies to a depth from level-by-level enumeration with merging.

    ``block_entropies[L] = H(L)`` for L = 0..depth; ``myopic_entropies[k] = h(k + 1)`` for
    k = 0..depth (so h(1)..h(depth + 1), the convention of `compmech.myopic_entropies`);
    ``n_states[L]`` beliefs kept at depth L, merged on the grid ``resolution[L]``. ``exact`` is
    True when no level needed a grid coarser than the exact one. ``beliefs``/``probs`` are the
    last level's; ``levels`` holds every level's (beliefs, probs) when ``keep_levels`` was set.
    """

    process: HMM | GeneralizedHMM
    block_entropies: np.ndarray  # [depth + 1]
    myopic_entropies: np.ndarray  # [depth + 1]
    n_states: np.ndarray  # [depth + 1] int64
    resolution: np.ndarray  # [depth + 1]
    exact: bool
    beliefs: np.ndarray  # [N, S]
    probs: np.ndarray  # [N]
    levels: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list, repr=False)

    @property
    def depth(self) -> int:
        return int(self.block_entropies.shape[0] - 1)


def stream_entropies(
    process: HMM | GeneralizedHMM,
    depth: int,
    *,
    max_states: int = MAX_STATES,
    resolution: float = EXACT_RESOLUTION,
    keep_levels: bool = False,
    prior: np.ndarray | None = None,
) -> StreamResult:
    """H(L) and h(L) for L up to ``depth`` (h to depth + 1) keeping at most ``max_states`` beliefs per level.

    Memory is bounded by ``max_states * vocab_size * num_states`` floats (children are made in
    chunks of `CHUNK_ENTRIES` entries), whatever the depth. Works for HMMs and GHMMs.
    """
    depth = check_depth(depth, "stream_entropies")
    T, _, tau = process_vectors(process)
    E = (T @ tau).T  # [S, V]
    H, h, n_states, grid, levels = [0.0], [], [], [], []
    for L, b, p, res in iter_levels(process, max_states=max_states, resolution=resolution, prior=prior):
        h.append(float(p @ next_token_entropies(b, E)))
        if L:
            H.append(H[-1] + h[-2])
        n_states.append(b.shape[0])
        grid.append(res)
        if keep_levels:
            levels.append((b, p))
        if L == depth:
            break
    return StreamResult(
        process=process,
        block_entropies=np.array(H),
        myopic_entropies=np.array(h),
        n_states=np.array(n_states, np.int64),
        resolution=np.array(grid),
        exact=bool(grid[-1] <= resolution),
        beliefs=b,
        probs=p,
        levels=levels,
    )


@dataclass(frozen=True, eq=False)
class ExactEntropies:
    """Myopic entropies ``h(1)..h(depth + 1)`` (bits) from every allowed word, none merged unless equal.

    ``n_beliefs[L]`` beliefs were carried at depth L (distinct beliefs while they are few enough
    to look for repeats, words after that); ``n_words`` is the total number of beliefs updated.
    """

    process: HMM | GeneralizedHMM
    myopic_entropies: np.ndarray  # [depth + 1]
    n_beliefs: np.ndarray  # [depth + 1] int64
    n_words: int

    @property
    def depth(self) -> int:
        return int(self.myopic_entropies.shape[0] - 1)


def exact_myopic_entropies(
    process: HMM | GeneralizedHMM,
    depth: int,
    *,
    max_words: float = np.inf,
    settled: float = 0.0,
    resolution: float = EXACT_RESOLUTION,
) -> ExactEntropies:
    """``h(L + 1) = sum_{|w| = L} P(w) H[X | eta_w]`` for L = 0..``depth``, exactly, in bounded memory.

    Level by level while the beliefs are few (at most `MERGE_SEARCH_LIMIT`), merging beliefs that
    are equal up to rounding (same cell of side ``resolution``), which keeps finite and countable
    presentations small; once a level is large and merging no longer shrinks it, the rest is
    enumerated depth first in blocks of at most `DFS_BLOCK` rows (fewer when V * S is large) with
    no merging at all, so nothing is approximated and memory stays at about ``depth * CHUNK_ENTRIES``
    floats. Time grows with
    the number of allowed words (Mess3: 3^14 words, h(1)..h(15), in a few seconds on one core).
    ``max_words`` caps the work: the enumeration stops at the deepest level that keeps the number of
    beliefs updated within it (the result's ``depth`` may then be below ``depth``). ``settled`` > 0
    also stops the level-by-level phase once three successive h(L) differ by at most that much.
    """
    depth = check_depth(depth, "exact_myopic_entropies")
    T, pi, tau = process_vectors(process)
    V, S, _ = T.shape
    E = (T @ tau).T  # [S, V]
    min_prob = min_probability(process)
    block = max(64, min(DFS_BLOCK, CHUNK_ENTRIES // (V * S)))  # rows whose children fit one chunk
    h = np.zeros(depth + 1)
    counts = np.zeros(depth + 1, np.int64)
    words = [0]

    def children(b: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parent, _, cb, pn = extend_beliefs(b, T, tau, min_prob)
        return cb, p[parent] * pn

    def visit(b: np.ndarray, p: np.ndarray, L: int) -> None:
        h[L] += float(p @ entropy_bits(next_token_distribution(b, E)))
        counts[L] += b.shape[0]
        words[0] += b.shape[0]

    def descend(b: np.ndarray, p: np.ndarray, L: int) -> None:
        visit(b, p, L)
        if L == depth:
            return
        cb, cp = children(b, p)
        for lo in range(0, cb.shape[0], block):
            descend(cb[lo : lo + block], cp[lo : lo + block], L + 1)

    b, p = pi[None, :].copy(), np.ones(1)
    L = 0
    while True:
        visit(b, p, L)
        if L == depth:
            break
        cb, cp = children(b, p)
        if cb.shape[0] > MERGE_SEARCH_LIMIT:
            mb, mp = _merge(cb, cp, resolution)
            if mb.shape[0] > 0.9 * cb.shape[0]:  # repeats are rare: go depth first, unmerged
                growth = cb.shape[0] / b.shape[0]  # words per word and level, from here on (an estimate)
                level_words, total, stop = float(cb.shape[0]), float(words[0]), depth
                for k in range(L + 1, depth + 1):
                    total += level_words
                    if total > max_words:
                        stop = k - 1
                        break
                    level_words *= growth
                depth = stop
                if depth > L:
                    for lo in range(0, cb.shape[0], block):
                        descend(cb[lo : lo + block], cp[lo : lo + block], L + 1)
                break
            cb, cp = mb, mp
        else:
            cb, cp = _merge(cb, cp, resolution)
        if words[0] + cb.shape[0] > max_words or (
            settled > 0 and L >= 3 and np.all(np.abs(np.diff(h[L - 3 : L + 1])) <= settled)
        ):
            depth = L
            break
        b, p, L = cb, cp, L + 1
    return ExactEntropies(
        process=process,
        myopic_entropies=h[: depth + 1].copy(),
        n_beliefs=counts[: depth + 1].copy(),
        n_words=int(words[0]),
    )


def iter_levels(
    process: HMM | GeneralizedHMM,
    *,
    max_states: int = MAX_STATES,
    resolution: float = EXACT_RESOLUTION,
    prior: np.ndarray | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray, float]]:
    """Yield ``(L, beliefs [N, S], probs [N], grid)`` for L = 0, 1, 2, ... without end (the caller stops).

    ``probs`` sum to 1: the probability of the words of length L whose belief merged into each
    row. Beliefs are merged on the grid ``grid`` (``resolution`` unless coarsened to keep at
    most ``max_states`` rows; the grid never becomes finer again).
    """
    if max_states < 1 or not resolution > 0:
        raise ProcessError(f"iter_levels: need max_states >= 1 and resolution > 0; got {max_states}, {resolution}")
    T, pi, tau = process_vectors(process)
    if prior is not None:
        pi = np.asarray(prior, dtype=np.float64)
        pi = pi / (pi @ tau)
    min_prob = min_probability(process)
    b = pi[None, :].copy()
    p = np.ones(1)
    res = float(resolution)
    L = 0
    while True:
        yield L, b, p, res
        b, p = _children(b, p, T, tau, min_prob, res)
        b, p, res = _merge_to_cap(b, p, res, max_states)
        L += 1


def next_token_entropies(beliefs: np.ndarray, emission: np.ndarray) -> np.ndarray:
    """Entropy (bits) of the next-token distribution ``beliefs @ emission`` for each belief row."""
    return _next_entropy(beliefs, emission)


def _next_entropy(b: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Entropy (bits) of the next-token distribution for each belief row."""
    return entropy_bits(next_token_distribution(b, E))


def _children(
    b: np.ndarray, p: np.ndarray, T: np.ndarray, tau: np.ndarray, min_prob: float, res: float
) -> tuple[np.ndarray, np.ndarray]:
    """All one-token extensions, made in chunks and merged on the grid ``res`` chunk by chunk."""
    V, S, _ = T.shape
    chunk = max(1, CHUNK_ENTRIES // (V * S))
    parts_b, parts_p = [], []
    for lo in range(0, b.shape[0], chunk):
        parent, _, cb, pn = extend_beliefs(b[lo : lo + chunk], T, tau, min_prob)
        cp = p[lo : lo + chunk][parent] * pn
        cb, cp = _merge(cb, cp, res)
        parts_b.append(cb)
        parts_p.append(cp)
    cb, cp = np.concatenate(parts_b), np.concatenate(parts_p)
    if len(parts_b) > 1:
        cb, cp = _merge(cb, cp, res)
    return cb, cp


def _merge(b: np.ndarray, p: np.ndarray, res: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge beliefs in the same grid cell of side ``res`` into their probability-weighted mean."""
    inv, n = _group(_cell_keys(b, res))
    if n == b.shape[0]:
        return b, p
    pg = np.bincount(inv, weights=p, minlength=n)
    bg = np.empty((n, b.shape[1]))
    for s in range(b.shape[1]):
        bg[:, s] = np.bincount(inv, weights=p * b[:, s], minlength=n)
    bg /= pg[:, None]
    return bg, pg


def _cell_keys(b: np.ndarray, res: float) -> np.ndarray:
    return np.floor(b / res + 0.5).astype(np.int64)


_MULT = np.random.default_rng(12345).integers(1, 2**63 - 1, size=4096, dtype=np.int64) | 1


def _group(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Group equal rows of ``keys``: (group index per row, number of groups).

    Rows are hashed to one int64 (a fixed random linear hash, wrapping) and grouped by a 1-D
    sort; a hash collision between different rows is detected and falls back to a row sort.
    """
    S = keys.shape[1]
    if S > _MULT.size:
        _, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.ravel()
        return inv, int(inv.max()) + 1 if inv.size else 0
    with np.errstate(over="ignore"):
        h = (keys * _MULT[:S]).sum(axis=1)
    uniq, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.ravel()
    if not np.array_equal(keys, keys[first[inv]]):  # a collision: exact (slower) grouping
        _, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.ravel()
        return inv, int(inv.max()) + 1
    return inv, int(uniq.size)


def _merge_to_cap(b: np.ndarray, p: np.ndarray, res: float, max_states: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Coarsen the grid (never refining it again) until at most ``max_states`` beliefs remain."""
    if b.shape[0] <= max_states:
        return b, p, res
    dim = max(1, b.shape[1] - 1)
    n = _count_cells(b, res)
    if n > max_states and n > 0.5 * b.shape[0]:
        # far from the cap's scale (typically the first coarsening): bisect on log10(resolution)
        lo, hi = np.log10(res), 1.0
        while hi - lo > 0.05:
            mid = 0.5 * (lo + hi)
            if _count_cells(b, 10.0**mid) > max_states:
                lo = mid
            else:
                hi = mid
        res = 10.0**hi
    else:
        # close to the cap: grow the cell side by the factor the count exceeds it (cells ~ res^-dim)
        while n > max_states:
            res *= max(1.05, (n / max_states) ** (1.0 / dim))
            n = _count_cells(b, res)
    mb, mp = _merge(b, p, res)
    return mb, mp, res


def _count_cells(b: np.ndarray, res: float) -> int:
    return _group(_cell_keys(b, res))[1]
