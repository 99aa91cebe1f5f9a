"""Random ε-machines and random non-unifilar HMMs: a benchmark family of processes with given numbers of states
and tokens, drawn from a documented distribution by rejection.

Unifilar (`random_unifilar`), each state ``i`` independently:

1. its outgoing token set ``A_i``: every token is in it independently with probability ``p_token``, redrawn
   until ``A_i`` is not empty (so ``A_i`` is the product law conditioned on being non-empty);
2. its successor on each token ``x in A_i``: ``delta(i, x)`` uniform on the ``n_states`` states (self-loops
   allowed), independently;
3. its emission probabilities over ``A_i``: ``Dirichlet(alpha * 1_{|A_i|})`` (a state with one token emits it
   with probability 1).

``T[x, i, delta(i, x)] = P(x | i)``. The whole machine is redrawn until it is (a) **strongly connected** (one
closed class: a unique stationary distribution), (b) **aperiodic** (the gcd of its cycle lengths is 1) and (c)
**minimal**: no two states have the same future (Moore partition refinement on the unifilar machine, states
first split by their emission probabilities, then by their successors' blocks, until stable; for a unifilar
presentation two states are merged by it exactly when they give the same distribution over every future word).
A strongly connected, minimal, unifilar presentation of a stationary process is its ε-machine, so each sample
IS an ε-machine with ``n_states`` causal states. Emission probabilities drawn from a Dirichlet are distinct
almost surely, so (c) rejects in practice only machines whose single-token states coincide.

Non-unifilar (`random_nonunifilar`), each state ``i`` independently: every (token, next state) pair is an edge
independently with probability ``p_edge`` (redrawn until the state has one), and the probabilities of its edges
are ``Dirichlet(alpha * 1)``: ``T[x, i, j] = P(x, j | i)``. Redrawn until the state chain is strongly connected and
aperiodic, the presentation is **not** unifilar (some state has two successors on one token: otherwise it would be
a unifilar sample) and no two states have the same future (their word distributions differ: the span of
``T^(w) 1`` over all words, built by Krylov iteration, separates every pair of states). **Caveat:** this does not
make the presentation minimal: a smaller HMM (or generalized HMM) may generate the same process, and the process's
ε-machine is in general infinite (a fractal or countable set of mixed states); the ``n_states`` of a non-unifilar
sample is the size of its generator, not its statistical complexity.

**How this differs from the literature's enumeration.** Johnson, James, Mahoney & Crutchfield (2010, "Enumerating
finitary processes", arXiv:1011.0036) enumerate *topological* ε-machines — unifilar, strongly connected,
minimal as edge-labelled graphs, up to isomorphism (relabelling states and tokens) — and a uniform draw over that
list weighs each isomorphism class once. The rejection sampler here is not that: (i) a topology's probability is
its probability under the product law above (conditioned on acceptance), so topologies differ in weight by their
numbers of edges (``p_token``) and of distinct labellings — a topology with many automorphisms has fewer labelled
copies and is drawn less often; (ii) minimality here is probabilistic (with Dirichlet weights nearly every
strongly connected topology is minimal), whereas a topological ε-machine must be minimal with its edges alone, so
topologies that enumeration discards as non-minimal graphs (e.g. two states with the same labelled out-edges) are
kept here when their probabilities differ; (iii) periodic machines, which the enumeration includes, are rejected.
The enumeration was not implemented (its canonical-form search over accessible deterministic automata is more
than this benchmark needs); this docstring says what the samples are instead.

Everything is float64 NumPy. A sample is reproducible from its ``numpy.random.Generator`` state; the registered
family `random_epsilon_machine` draws from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hmm_processes.errors import ProcessError
from hmm_processes.hmm import HMM

#: Largest number of states or tokens of a random machine (rejection gets slow and T large beyond it).
MAX_RANDOM_STATES = 64
#: Default number of whole-machine draws before `random_unifilar` / `random_nonunifilar` give up.
MAX_TRIES = 100_000
#: Emission probabilities equal to this many decimals are the same label in the partition refinement.
LABEL_DECIMALS = 12


def _check_size(name: str, value: object, what: str, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ProcessError(f"{what}: {name} must be a whole number >= {low}; got {value!r} ({type(value).__name__})")
    if not low <= int(value) <= MAX_RANDOM_STATES:
        raise ProcessError(f"{what}: {name} must be in {low}..{MAX_RANDOM_STATES}; got {value}")
    return int(value)


def _check_open_unit(name: str, value: object, what: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ProcessError(f"{what}: {name} must be a number in (0, 1]; got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and 0 < v <= 1):
        raise ProcessError(f"{what}: {name} must be in (0, 1]; got {value!r}")
    return v


def _check_alpha(value: object, what: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ProcessError(f"{what}: alpha must be a number > 0 (the Dirichlet concentration); got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ProcessError(f"{what}: alpha must be a finite number > 0 (the Dirichlet concentration); got {value!r}")
    return v


# --------------------------------------------------------------------------- graph checks


def is_strongly_connected(adjacency: np.ndarray) -> bool:
    """Whether the directed graph ``adjacency`` [S, S] (bool, ``adjacency[i, j]``: an edge i -> j) is strongly
    connected: every state reaches state 0 and state 0 reaches every state."""
    A = np.asarray(adjacency, dtype=bool)
    return bool(_reach(A, 0).all() and _reach(A.T, 0).all())


def _reach(A: np.ndarray, start: int) -> np.ndarray:
    seen = np.zeros(A.shape[0], dtype=bool)
    seen[start] = True
    frontier = seen.copy()
    while frontier.any():
        nxt = A[frontier].any(axis=0) & ~seen
        seen |= nxt
        frontier = nxt
    return seen


def period(adjacency: np.ndarray) -> int:
    """The period of a strongly connected graph ``adjacency`` [S, S]: the gcd of its cycle lengths (1: aperiodic).

    With BFS levels ``d`` from state 0, the period is the gcd of ``d[i] + 1 - d[j]`` over the edges i -> j."""
    A = np.asarray(adjacency, dtype=bool)
    S = A.shape[0]
    level = np.full(S, -1)
    level[0] = 0
    frontier = [0]
    while frontier:
        nxt = []
        for i in frontier:
            for j in np.flatnonzero(A[i]):
                if level[j] < 0:
                    level[j] = level[i] + 1
                    nxt.append(int(j))
        frontier = nxt
    if (level < 0).any():
        raise ProcessError("period: the graph is not strongly connected (some state is unreachable from state 0)")
    g = 0
    for i, j in zip(*np.nonzero(A)):
        g = math.gcd(g, abs(int(level[i]) + 1 - int(level[j])))
    return g


def moore_classes(next_state: np.ndarray, probs: np.ndarray, decimals: int = LABEL_DECIMALS) -> np.ndarray:
    """Moore partition refinement of a unifilar machine: the class of each state, ``[S]`` ints.

    ``next_state[i, x]`` is the successor of state i on token x (-1 where x is not emitted), ``probs[i, x]`` its
    probability. States start in blocks of equal emission probabilities (to ``decimals`` decimals) and are split
    by the blocks of their successors until nothing splits: two states end in the same class exactly when they
    give the same probability to every future word (their futures are the same)."""
    S, _ = next_state.shape
    p = np.round(np.asarray(probs, dtype=np.float64), decimals)
    _, cls = np.unique(p, axis=0, return_inverse=True)
    cls = cls.reshape(-1)
    while True:
        succ = np.where(next_state >= 0, cls[np.maximum(next_state, 0)], -1)  # [S, V]
        key = np.concatenate([cls[:, None], succ], axis=1)  # [S, 1 + V]
        _, new = np.unique(key, axis=0, return_inverse=True)
        new = new.reshape(-1)
        if new.max() == cls.max():
            return new
        cls = new


def future_space_classes(T: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """The class of each state of the HMM ``T`` [V, S, S] under "same future": states i and j are in one class
    exactly when ``P(w | start in i) = P(w | start in j)`` for every word w. ``[S]`` ints.

    The vectors ``T^(w) 1`` (``T^(w) = T[w_1] ... T[w_L]``, entry i the probability of w from state i) span a
    space reached by Krylov iteration from ``1`` within S steps; an orthonormal basis ``B`` [S, r] of it gives each
    state the row ``B[i]``, and equal rows (to ``tol``) mean equal futures."""
    V, S, _ = T.shape
    basis = np.ones((S, 1)) / math.sqrt(S)
    frontier = basis
    while frontier.shape[1]:
        cand = np.concatenate([T[x] @ frontier for x in range(V)], axis=1)  # [S, V r]
        cand -= basis @ (basis.T @ cand)
        cand -= basis @ (basis.T @ cand)  # twice: Gram-Schmidt's lost orthogonality restored
        u, s, _ = np.linalg.svd(cand, full_matrices=False)
        frontier = u[:, s > tol * max(1.0, float(s.max(initial=0.0)))]
        basis = np.concatenate([basis, frontier], axis=1)
    # group states whose rows of the basis [S, r] agree within tol
    cls = np.full(S, -1)
    n = 0
    for i in range(S):
        if cls[i] >= 0:
            continue
        same = np.abs(basis - basis[i]).max(axis=1) <= 10 * tol
        cls[same & (cls < 0)] = n
        n += 1
    return cls


# --------------------------------------------------------------------------- samplers


def _nonempty_rows(rng: np.random.Generator, shape: tuple[int, int], p: float) -> np.ndarray:
    """A boolean mask [S, n], each entry present with probability ``p``, each row conditioned on at least one entry
    (an empty row is redrawn: the product law conditioned on non-empty)."""
    present = rng.random(shape) < p
    empty = ~present.any(axis=1)
    while empty.any():
        present[empty] = rng.random((int(empty.sum()), shape[1])) < p
        empty = ~present.any(axis=1)
    return present


def _dirichlet_rows(rng: np.random.Generator, present: np.ndarray, alpha: float) -> np.ndarray:
    """Weights [S, n]: each row's present entries Dirichlet(alpha) (one entry: 1), the others 0."""
    weights = np.zeros(present.shape)
    for i in range(present.shape[0]):
        idx = np.flatnonzero(present[i])
        weights[i, idx] = rng.dirichlet(np.full(idx.size, alpha)) if idx.size > 1 else 1.0
    return weights


def _draw_unifilar(n_states: int, n_tokens: int, rng: np.random.Generator, p_token: float, alpha: float):
    S, V = n_states, n_tokens
    present = _nonempty_rows(rng, (S, V), p_token)  # [S, V]
    succ = rng.integers(0, S, size=(S, V))  # [S, V]
    next_state = np.where(present, succ, -1)
    return next_state, _dirichlet_rows(rng, present, alpha)


def unifilar_tensor(next_state: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """``T`` [V, S, S] of the unifilar machine ``next_state`` [S, V] (-1: token not emitted), ``probs`` [S, V]."""
    S, V = next_state.shape
    T = np.zeros((V, S, S))
    i, x = np.nonzero(next_state >= 0)
    T[x, i, next_state[i, x]] = probs[i, x]
    return T


def random_unifilar(
    n_states: int,
    n_tokens: int,
    rng: np.random.Generator,
    *,
    p_token: float = 0.5,
    alpha: float = 1.0,
    max_tries: int = MAX_TRIES,
    name: str = "random_unifilar",
    params: dict[str, Any] | None = None,
) -> HMM:
    """A random ε-machine with ``n_states`` causal states over ``n_tokens`` tokens (the module docstring gives the
    distribution exactly): strongly connected, aperiodic, minimal and unifilar.

    ``p_token``: the probability that a state emits each token (before conditioning on at least one);
    ``alpha``: the Dirichlet concentration of each state's emission probabilities (1: uniform on the simplex).
    Raises `ProcessError` when ``max_tries`` draws found none (e.g. one token and several states: a one-token
    strongly connected machine is a single cycle, periodic unless it has one state)."""
    what = name
    S = _check_size("n_states", n_states, what, 1)
    V = _check_size("n_tokens", n_tokens, what, 1)
    p_token = _check_open_unit("p_token", p_token, what)
    alpha = _check_alpha(alpha, what)
    for _ in range(max_tries):
        next_state, probs = _draw_unifilar(S, V, rng, p_token, alpha)
        A = np.zeros((S, S), dtype=bool)
        i, x = np.nonzero(next_state >= 0)
        A[i, next_state[i, x]] = True
        if not is_strongly_connected(A) or period(A) != 1:
            continue
        if np.unique(moore_classes(next_state, probs)).size != S:
            continue
        return HMM(unifilar_tensor(next_state, probs), name=name, params=dict(params or {}))
    raise ProcessError(
        f"{what}: no strongly connected, aperiodic, minimal machine with {S} states and {V} tokens in {max_tries} "
        "draws; raise p_token, or use more tokens (one token allows only a one-state machine)"
    )


def random_nonunifilar(
    n_states: int,
    n_tokens: int,
    rng: np.random.Generator,
    *,
    p_edge: float = 0.5,
    alpha: float = 1.0,
    max_tries: int = MAX_TRIES,
    name: str = "random_nonunifilar",
    params: dict[str, Any] | None = None,
) -> HMM:
    """A random non-unifilar HMM with ``n_states`` states over ``n_tokens`` tokens (the module docstring gives the
    distribution and the minimality caveat): strongly connected, aperiodic, not unifilar, no two states with the
    same future.

    ``p_edge``: the probability that each (token, next state) pair is an edge of a state (before conditioning on
    at least one); ``alpha``: the Dirichlet concentration of each state's edge probabilities."""
    what = name
    S = _check_size("n_states", n_states, what, 2)
    V = _check_size("n_tokens", n_tokens, what, 1)
    p_edge = _check_open_unit("p_edge", p_edge, what)
    alpha = _check_alpha(alpha, what)
    for _ in range(max_tries):
        present = _nonempty_rows(rng, (S, V * S), p_edge)  # [S, V S]: (token, next) pairs, token-major
        W = _dirichlet_rows(rng, present, alpha)
        T = W.reshape(S, V, S).transpose(1, 0, 2).copy()  # [V, S, S]
        A = T.sum(axis=0) > 0
        if not is_strongly_connected(A) or period(A) != 1:
            continue
        if ((T > 0).sum(axis=2) <= 1).all():  # unifilar: at most one successor per (token, state)
            continue
        if np.unique(future_space_classes(T)).size != S:
            continue
        return HMM(T, name=name, params=dict(params or {}))
    raise ProcessError(
        f"{what}: no strongly connected, aperiodic, non-unifilar HMM with {S} states and {V} tokens and distinct "
        f"futures in {max_tries} draws; raise p_edge or the number of tokens"
    )


def random_epsilon_machine(
    n_states: int = 3,
    n_tokens: int = 2,
    seed: int = 0,
    unifilar: bool = True,
    p: float = 0.5,
    alpha: float = 1.0,
) -> HMM:
    """A random process for benchmarks, reproducible from ``seed``: with ``unifilar`` an ε-machine from
    `random_unifilar` (``p`` = p_token), else a non-unifilar HMM from `random_nonunifilar` (``p`` = p_edge), drawn
    from ``numpy.random.default_rng(seed)``; ``alpha`` the Dirichlet concentration. See the module docstring for
    the distribution.

    Registered as ``random_epsilon_machine``, so a config names it::

        [process]
        name = "random_epsilon_machine"
        params = { n_states = 4, n_tokens = 3, seed = 7, unifilar = false }
    """
    what = "random_epsilon_machine"
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ProcessError(f"{what}: seed must be a whole number >= 0; got {seed!r}")
    if not isinstance(unifilar, (bool, np.bool_)):
        raise ProcessError(f"{what}: unifilar must be true or false; got {unifilar!r}")
    params = {"n_states": n_states, "n_tokens": n_tokens, "seed": int(seed), "unifilar": bool(unifilar), "p": p}
    params["alpha"] = alpha
    rng = np.random.default_rng(int(seed))
    if unifilar:
        return random_unifilar(n_states, n_tokens, rng, p_token=p, alpha=alpha, name=what, params=params)
    return random_nonunifilar(n_states, n_tokens, rng, p_edge=p, alpha=alpha, name=what, params=params)
