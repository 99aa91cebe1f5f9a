"""Information measures of a process, in bits, one function each with its definition.

Exact values come from a finite mixed-state presentation (MSP) or a finite epsilon-machine;
`InfiniteMSPError` is raised when a measure needs one and there is none. For processes with an
infinite MSP, `blackwell_entropy_rate` estimates h_mu along chaos-game trajectories and
`process_info` collects every measure that can be had, saying which are estimates. It first reads
the process's structure from its presentation: a non-ergodic process is split into its ergodic
components (`ergodic_components`, identical ones merged by `same_process`), a product into its
independent factors (`product_factors`), and the measures of the whole are the exact combinations
of the parts'.

Notation: X_1 X_2 ... the tokens of the stationary process; S_L the causal state after L tokens;
H(L) = H[X_1..X_L]; h(L) = H(L) - H(L-1); h_mu = lim h(L).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compmech.fractal import belief_chaos_game, lyapunov_dimension, lyapunov_spectrum
from compmech.information import entropy_bits
from compmech.mixed_states import check_depth
from compmech.msp import MAX_STATES, MSP, InfiniteMSPError, _refine, build_msp
from compmech.streaming import exact_myopic_entropies, iter_levels, stream_entropies
from hmm_processes import HMM, GeneralizedHMM, ProcessError, process_vectors
from hmm_processes.hmm import closed_classes

Process = HMM | GeneralizedHMM
#: Propagation over a finite MSP stops when the probability of not yet being synchronised is below this.
SYNC_ATOL = 1e-17
#: Longest propagation over a finite MSP (tokens).
MAX_PROPAGATION = 200_000


# --- structure ------------------------------------------------------------------------------------


def epsilon_machine(process: Process | MSP, *, max_states: int = MAX_STATES) -> HMM:
    """The epsilon-machine (minimal unifilar presentation of the causal states) as an `HMM` with its prior.

    From a finite MSP: its recurrent states with identical futures merged. When the MSP is infinite
    but the process is given by a unifilar HMM (each state and token lead to at most one state),
    the presentation's recurrent states, minimised the same way, are the causal states (the
    transient mixed states may still be infinitely many). Otherwise raises `InfiniteMSPError`.
    """
    msp = process if isinstance(process, MSP) else build_msp(process, max_states=max_states)
    if msp.finite:
        return msp.epsilon_machine()
    proc = msp.process
    if isinstance(proc, HMM) and _is_unifilar(proc):
        return _minimal_unifilar(proc)
    raise InfiniteMSPError(
        f"MSP of {proc.name} looks infinite ({msp.reason}) and its presentation is not unifilar, so its "
        "causal states are not finite; exact measures need a finite epsilon-machine"
    )


def _is_unifilar(hmm: HMM) -> bool:
    return bool(np.all((hmm.T > 0).sum(axis=2) <= 1))


def _minimal_unifilar(hmm: HMM) -> HMM:
    """A unifilar HMM restricted to its stationary support and minimised (states with equal futures merged)."""
    pi = hmm.stationary_distribution
    keep = np.flatnonzero(pi > 1e-15)
    T = hmm.T[:, keep][:, :, keep]
    probs = T.sum(axis=2).T  # [n, V]
    nxt = np.full(probs.shape, -1, np.int64)
    x_idx, i_idx, j_idx = np.nonzero(T)
    nxt[i_idx, x_idx] = j_idx
    labels = _refine(probs, nxt)
    _, labels = np.unique(labels, return_inverse=True)
    C, V = labels.max() + 1, hmm.vocab_size
    M = np.zeros((V, C, C))
    for c in range(C):
        i = int(np.flatnonzero(labels == c)[0])
        for x in range(V):
            if nxt[i, x] >= 0:
                M[x, c, labels[nxt[i, x]]] += probs[i, x]
    w = np.bincount(labels, weights=pi[keep], minlength=C)
    return HMM(
        M, name=f"epsilon_machine({hmm.name})", params=dict(hmm.params), token_names=hmm.token_names, prior=w / w.sum()
    )


# --- rates and complexities ------------------------------------------------------------------------


def entropy_rate(process: Process | MSP, *, max_states: int = MAX_STATES) -> float:
    """Entropy rate ``h_mu = sum_sigma pi(sigma) H[X | sigma]`` over the causal states (exact; bits per token).

    Needs a finite epsilon-machine; for other processes use `blackwell_entropy_rate`.
    """
    eps = epsilon_machine(process, max_states=max_states)
    return float(eps.stationary_distribution @ entropy_bits(eps.emission_matrix))


def statistical_complexity(process: Process | MSP, *, max_states: int = MAX_STATES) -> float:
    """Statistical complexity ``C_mu = H[S]``: entropy of the stationary distribution over causal states (bits)."""
    eps = epsilon_machine(process, max_states=max_states)
    return float(entropy_bits(eps.stationary_distribution))


@dataclass(frozen=True)
class BlackwellEstimate:
    """An entropy-rate estimate from chaos-game trajectories: value, standard error, and the sample used."""

    value: float
    stderr: float
    n_steps: int
    n_chains: int


def blackwell_entropy_rate(
    process: Process, *, n_steps: int = 400_000, n_chains: int = 64, burn_in: int = 500, seed: int = 0
) -> BlackwellEstimate:
    """Estimate ``h_mu = E[H[X | eta]]`` under the invariant (Blackwell) measure of the belief dynamics.

    Runs ``n_chains`` independent chaos games (eta -> eta T[x] / (eta T[x] tau), x drawn with
    probability eta T[x] tau) from the stationary prior; after ``burn_in`` steps each chain averages
    the next-token entropy over ``n_steps / n_chains`` steps. The estimate is the mean of the chain
    averages; its standard error is their standard deviation / sqrt(n_chains) (batch means over
    independent batches). Works for any process (HMM or GHMM, finite MSP or not).
    """
    T, pi, tau = process_vectors(process)
    n_chains = int(n_chains)
    steps = max(1, int(n_steps) // n_chains)
    if n_chains < 2 or burn_in < 0:
        raise ProcessError(f"blackwell_entropy_rate: need n_chains >= 2 and burn_in >= 0; got {n_chains}, {burn_in}")
    acc = np.zeros(n_chains)
    steps_iter = belief_chaos_game(T, pi, tau, n_chains, burn_in + steps, np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        for t, (_, p, _, _, _) in enumerate(steps_iter):
            if t >= burn_in:
                acc += entropy_bits(p)
    means = acc / steps
    return BlackwellEstimate(
        value=float(means.mean()),
        stderr=float(means.std(ddof=1) / math.sqrt(n_chains)),
        n_steps=steps * n_chains,
        n_chains=n_chains,
    )


# --- entropy convergence ---------------------------------------------------------------------------


def myopic_entropy_sequence(process: Process | MSP, *, max_states: int = MAX_STATES) -> np.ndarray:
    """Exact ``h(1), h(2), ...`` (bits) from a finite MSP, until synchronisation (then h(L) = h_mu).

    Propagates the distribution over MSP states from the start state; stops when the probability
    of still being in a transient state is below `SYNC_ATOL` (after that h(L) equals h_mu to
    within that mass times log2 V). Raises `InfiniteMSPError` for an infinite MSP.
    """
    msp = process if isinstance(process, MSP) else build_msp(process, max_states=max_states)
    msp.require_finite()
    return _propagate(msp, entropy_bits(msp.token_probs))


def _propagate(msp: MSP, values: np.ndarray) -> np.ndarray:
    """``sum_i P(state i at depth L) values[i]`` for L = 0, 1, ... until the transient mass vanishes."""
    P = msp.transition_matrix().T.tocsr()
    trans = msp.transient
    p = np.zeros(msp.num_states)
    p[0] = 1.0
    out = []
    for _ in range(MAX_PROPAGATION):
        out.append(float(p @ values))
        if p[trans].sum() < SYNC_ATOL:
            break
        p = P @ p
    else:
        raise InfiniteMSPError(f"{msp.process.name}: no synchronisation within {MAX_PROPAGATION} tokens")
    return np.array(out)


def excess_entropy(process: Process | MSP, *, max_states: int = MAX_STATES) -> float:
    """Excess entropy ``E = sum_{L >= 1} (h(L) - h_mu) = lim_L (H(L) - L h_mu)`` (bits), exact from a finite MSP."""
    h = myopic_entropy_sequence(process, max_states=max_states)
    return float(np.sum(h - entropy_rate(process, max_states=max_states)))


def transient_information(process: Process | MSP, *, max_states: int = MAX_STATES) -> float:
    """Transient information ``T = sum_{L >= 0} (E + h_mu L - H(L)) = sum_{L >= 1} L (h(L) - h_mu)`` (bits)."""
    h = myopic_entropy_sequence(process, max_states=max_states)
    hmu = entropy_rate(process, max_states=max_states)
    return float(np.sum(np.arange(1, h.size + 1) * (h - hmu)))


def synchronization_information(process: Process | MSP, *, max_states: int = MAX_STATES) -> float:
    """Synchronization information ``S = sum_{L >= 0} H[S_L | X_1..X_L]`` (bits): the total uncertainty
    in the causal state while an observer synchronises to the epsilon-machine from its stationary start.

    Needs the epsilon-machine's own MSP (beliefs over causal states) to be finite.
    """
    eps = epsilon_machine(process, max_states=max_states)
    emsp = build_msp(eps, max_states=max_states)
    if not emsp.finite:
        raise InfiniteMSPError(
            f"{eps.name}: observers never synchronise on some words ({emsp.reason}); S is not computed exactly"
        )
    return float(np.sum(_propagate(emsp, entropy_bits(emsp.beliefs))))


def crypticity(process: Process | MSP, *, max_states: int = MAX_STATES) -> float:
    """Crypticity ``chi = C_mu - E`` (bits): stored state information not revealed by the future."""
    return statistical_complexity(process, max_states=max_states) - excess_entropy(process, max_states=max_states)


def markov_order(process: Process | MSP, *, max_states: int = MAX_STATES) -> int | None:
    """Markov order ``R = min{L : H[S_L | X_1..X_L] = 0}``: every word of length R synchronises to a causal state.

    From the MSP of the epsilon-machine: the longest word path through unsynchronised (non-delta)
    beliefs, plus one. Returns None when R is infinite (a cycle of unsynchronised beliefs, e.g. the
    Even process, or infinitely many of them).
    """
    eps = epsilon_machine(process, max_states=max_states)
    emsp = build_msp(eps, max_states=max_states)
    if not emsp.finite:
        return None
    unsync = entropy_bits(emsp.beliefs) > 1e-9
    if not unsync[0]:
        return 0
    longest = _longest_path(emsp.next_state, unsync, start=0)
    return None if longest is None else longest + 1


def cryptic_order(process: Process | MSP, *, max_states: int = MAX_STATES) -> int | None:
    """Cryptic order ``k = min{L : H[S_L | X_1 X_2 ...] = 0}`` (Mahoney, Ellison, James & Crutchfield 2011).

    Given the whole future, the state L steps in is uncertain only if two distinct causal states
    read a common word and first coincide after more than L tokens (paths that never coincide are
    told apart by the future almost surely, since causal states have distinct futures). So k is the
    longest such merge time over all pairs, found on the pair graph of the epsilon-machine; 0 when no
    two states ever merge; None when merge times are unbounded (a cycle of unmerged pairs that can
    still merge).
    """
    eps = epsilon_machine(process, max_states=max_states)
    T = eps.T
    V, C, _ = T.shape
    nxt = np.full((C, V), -1, np.int64)
    x_idx, i_idx, j_idx = np.nonzero(T)
    nxt[i_idx, x_idx] = j_idx
    pairs = [(a, b) for a in range(C) for b in range(a + 1, C)]
    if not pairs:
        return 0
    index = {pr: k for k, pr in enumerate(pairs)}
    MERGE = len(pairs)
    succ: list[list[int]] = [[] for _ in range(len(pairs) + 1)]
    for (a, b), k in index.items():
        for x in range(V):
            na, nb = nxt[a, x], nxt[b, x]
            if na < 0 or nb < 0:
                continue
            succ[k].append(MERGE if na == nb else index[(min(na, nb), max(na, nb))])
    # nodes that can reach MERGE
    pred: list[list[int]] = [[] for _ in range(len(pairs) + 1)]
    for k, ss in enumerate(succ):
        for s2 in ss:
            pred[s2].append(k)
    reach = np.zeros(len(pairs) + 1, bool)
    reach[MERGE] = True
    stack = [MERGE]
    while stack:
        n = stack.pop()
        for m in pred[n]:
            if not reach[m]:
                reach[m] = True
                stack.append(m)
    if reach.sum() == 1:
        return 0
    # longest path to MERGE among reaching nodes; a cycle there means unbounded merge times
    memo: dict[int, int] = {MERGE: 0}
    state: dict[int, int] = {}

    def longest(n: int) -> int | None:
        if n in memo:
            return memo[n]
        if state.get(n) == 1:
            return None
        state[n] = 1
        best = -1
        for m in succ[n]:
            if reach[m]:
                r = longest(m)
                if r is None:
                    return None
                best = max(best, r + 1)
        state[n] = 2
        memo[n] = best
        return best

    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 10 * len(pairs) + 100))
    try:
        vals = [longest(k) for k in range(len(pairs)) if reach[k]]
    finally:
        sys.setrecursionlimit(old)
    if any(v is None for v in vals):
        return None
    return int(max(vals))


def _longest_path(next_state: np.ndarray, allowed: np.ndarray, start: int) -> int | None:
    """Longest path (in edges) from ``start`` staying in ``allowed`` nodes; None if such a path can cycle."""
    N = next_state.shape[0]
    color = np.zeros(N, np.int8)  # 0 new, 1 on stack, 2 done
    best = np.zeros(N, np.int64)
    stack = [(start, 0)]
    while stack:
        n, k = stack.pop()
        if k == 0:
            if color[n] == 2:
                continue
            color[n] = 1
        succs = [int(m) for m in next_state[n] if m >= 0 and allowed[m]]
        if k < len(succs):
            stack.append((n, k + 1))
            m = succs[k]
            if color[m] == 1:
                return None
            if color[m] == 0:
                stack.append((m, 0))
        else:
            best[n] = max([best[m] + 1 for m in succs], default=0)
            color[n] = 2
    return int(best[start])


# --- finite-L entropies (any process) ---------------------------------------------------------------


def block_entropy(process: Process, length: int, *, max_states: int = 100_000) -> float:
    """Block entropy ``H(L) = H[X_1..X_L] = -sum_{|w| = L} P(w) log2 P(w)`` (bits).

    Computed as ``h(1) + ... + h(L)`` from the belief distribution at each depth (equal beliefs
    merged, so memory stays bounded; exact unless more than ``max_states`` distinct beliefs
    occur at some depth, see `compmech.streaming`). Works for GHMMs too.
    """
    return float(stream_entropies(process, length, max_states=max_states).block_entropies[-1])


def myopic_entropy(process: Process, length: int, *, max_states: int = 100_000) -> float:
    """Myopic entropy rate ``h(L) = H(L) - H(L-1) = H[X_L | X_1..X_{L-1}]`` (bits), L >= 1."""
    if check_depth(length, "myopic_entropy") < 1:
        raise ProcessError(f"myopic_entropy: length must be >= 1; got {length}")
    return float(stream_entropies(process, length - 1, max_states=max_states).myopic_entropies[-1])


# --- convergence of h(L) ------------------------------------------------------------------------------

#: Successive h(L) closer than this are equal (the sequence has reached its limit, to rounding).
SETTLED = 1e-13
#: Rounding allowance per term of a sum of h(L) values (bits).
ROUND_TERM = 1e-14
#: Largest ratio of successive h(L) decrements taken as geometric convergence.
MAX_RATIO = 0.95
#: Geometric convergence: the last five ratios of decrements agree within this fraction of 1 - rho.
GEOMETRIC_SPREAD = 0.01


@dataclass(frozen=True)
class EntropyLimit:
    """h_mu, E and T from exact h(1)..h(D), each with a convergence bound (absolute, bits).

    ``method``: "settled" (h(L) stopped changing, to rounding, by depth D), "geometric" (the
    decrements d_L = h(L-1) - h(L) shrink by a steady ratio rho over the last five steps, so the
    tail is summed in closed form and the bound covers every ratio in the observed range widened
    by its spread on each side) or
    "not converged" (the values are partial sums and the bounds are None).
    """

    h_mu: float
    h_mu_bound: float | None
    E: float
    E_bound: float | None
    T: float
    T_bound: float | None
    depth: int
    method: str
    ratio: float | None = None


def entropy_limit(h: np.ndarray, h_mu: float | None = None) -> EntropyLimit:
    """The limit of the myopic entropies ``h`` = [h(1), ..., h(D)] and the sums E, T over them.

    ``E = sum_{L>=1} (h(L) - h_mu)`` and ``T = sum_{L>=1} L (h(L) - h_mu)``. When h_mu is known
    (``h_mu``, e.g. exact from an epsilon-machine) only the tails are extrapolated. For geometric
    convergence with ratio rho the residual after depth D is ``r_D = d_D rho / (1 - rho)``, so
    ``h_mu = h(D) - r_D``, the E tail is ``r_D rho / (1 - rho)`` and the T tail is
    ``r_D (D rho / (1 - rho) + rho / (1 - rho)^2)``.
    """
    h = np.asarray(h, dtype=np.float64)
    D = int(h.size)
    L = np.arange(1, D + 1)
    d = -np.diff(h)  # [D - 1], d[k] = h(k + 1) - h(k + 2)
    rounding = D * ROUND_TERM

    def sums(limit: float) -> tuple[float, float]:
        r = h - limit
        return float(r.sum()), float((L * r).sum())

    if D >= 4 and np.all(np.abs(d[-3:]) <= SETTLED):
        limit = float(h[-1]) if h_mu is None else float(h_mu)
        E, T = sums(limit)
        # what is left after three steps below SETTLED is at most 20 SETTLED for any ratio up to MAX_RATIO
        left = 20 * SETTLED
        return EntropyLimit(
            limit,
            0.0 if h_mu is not None else left,
            E,
            rounding + D * left,
            T,
            D * rounding + D * D * left,
            D,
            "settled",
        )
    if D >= 8:
        if h_mu is None:
            seq = d  # decrements
        else:
            seq = h - h_mu  # residuals decay like the decrements
        last = seq[-6:]
        if np.all(last > 0):
            ratios = last[1:] / last[:-1]
            lo, hi = float(ratios.min()), float(ratios.max())
            pad = max(hi - lo, 1e-3 * hi)
            # geometric: five successive ratios agree to 1% of 1 - rho (a power law's ratios creep up to 1
            # by about (1 - rho) / L per step, so it fails this until L is in the hundreds)
            if hi < MAX_RATIO and lo > 0 and hi - lo <= GEOMETRIC_SPREAD * (1.0 - hi):
                rho = float(ratios[-1])

                def at(r: float) -> tuple[float, float, float]:
                    g = r / (1.0 - r)
                    if h_mu is None:
                        res = d[-1] * g
                        limit = float(h[-1] - res)
                    else:
                        limit = float(h_mu)
                        res = float(h[-1] - h_mu)
                    E, T = sums(limit)
                    return limit, E + res * g, T + res * (D * g + g / (1.0 - r))

                mid = at(rho)
                ends = [at(max(lo - pad, 0.0)), at(min(hi + pad, 0.99))]
                dev = [max(abs(e[k] - mid[k]) for e in ends) for k in range(3)]
                h_bound = 0.0 if h_mu is not None else dev[0] + SETTLED
                return EntropyLimit(
                    mid[0], h_bound, mid[1], dev[1] + rounding, mid[2], dev[2] + D * rounding, D, "geometric", rho
                )
    limit = float(h[-1]) if h_mu is None else float(h_mu)
    E, T = sums(limit)
    return EntropyLimit(limit, None, E, None, T, None, D, "not converged")


# --- everything at once ----------------------------------------------------------------------------

#: How a value in `ProcessInfo` was obtained.
METHODS = {
    "exact": "computed exactly from a finite presentation (error: rounding)",
    "h(L) limit": "limit of the exact myopic entropies h(L) (error: convergence bound)",
    "Blackwell": "average next-token entropy along chaos-game trajectories (error: standard error)",
    "chaos game": "average along chaos-game trajectories (error: standard error)",
    "countable MSP limit": "entropy of the distinct beliefs at depth L, converged in L and in the merging "
    "tolerance (error: the largest change seen)",
    "lower bound": "a lower bound (no error)",
    "upper bound": "an upper bound (error: the standard error of its chaos-game estimate)",
    "partial sum": "sum to the depth reached, h(L) not converged (no error known)",
    "infinite": "the quantity is infinite",
    "not computed": "not available for this process (see notes)",
}


@dataclass(frozen=True)
class Measure:
    """One reported quantity: value, an error (a bound or a standard error, see ``error_kind``) and the method.

    ``value`` is None when ``method`` is "infinite" or "not computed"; ``error`` is None when no
    error is known (method "lower bound" / "partial sum") or it does not apply.
    """

    value: float | int | None
    error: float | None
    method: str
    error_kind: str | None = None  # "bound", "stderr" or None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"Measure: unknown method {self.method!r}; one of {sorted(METHODS)}")

    def to_dict(self) -> dict[str, Any]:
        """``{"value", "error", "error_kind", "method"}`` with non-finite numbers as None."""
        return {
            "value": _json_ready(self.value),
            "error": _json_ready(self.error),
            "error_kind": self.error_kind,
            "method": self.method,
        }


def _exact(v: float | int | None, rounding: float = 0.0) -> Measure:
    return Measure(v, rounding if isinstance(v, float) else 0, "exact", "bound")


INFINITE = Measure(None, None, "infinite")
NOT_COMPUTED = Measure(None, None, "not computed")


@dataclass
class ProcessInfo:
    """Every measure of one process, each a `Measure` (value, error, method); ``notes`` say why where
    something is an estimate, a bound or missing. ``depth`` is how deep the exact h(L) went (None
    when a finite presentation gave everything exactly, or the values combine those of parts).

    ``structure`` is "single" (one ergodic process), "mixture" (non-ergodic: ``components`` holds each
    ergodic component's weight, states and measures, and the measures above are their exact
    combinations) or "product" (independent factors: ``factors`` holds each one's measures, and the
    measures above are their sums). ``information_dimension`` is given for a product only: the sum of
    its factors' dimensions (its ``lyapunov_dimension`` is then an upper bound)."""

    name: str
    params: dict[str, Any]
    kind: str  # "hmm" or "ghmm"
    h_mu: Measure
    C_mu: Measure
    E: Measure
    T: Measure
    S: Measure
    chi: Measure
    markov_order: Measure
    cryptic_order: Measure
    n_mixed_states: Measure
    n_causal_states: Measure
    lyapunov_dimension: Measure
    information_dimension: Measure
    lyapunov_exponents: tuple[Measure, ...] = ()
    depth: int | None = None
    notes: list[str] = field(default_factory=list)
    structure: str = "single"  # "single", "mixture" or "product"
    components: tuple[ComponentInfo, ...] = ()
    factors: tuple[ProcessInfo, ...] = ()

    def measures(self) -> dict[str, Measure]:
        """The scalar measures by name, in display order."""
        return {k: getattr(self, k) for k in MEASURE_NAMES}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: each measure as ``{"value", "error", "error_kind", "method"}``."""
        out: dict[str, Any] = {"name": self.name, "params": _json_ready(self.params), "kind": self.kind}
        out.update({k: m.to_dict() for k, m in self.measures().items()})
        out["lyapunov_exponents"] = [m.to_dict() for m in self.lyapunov_exponents]
        out["depth"] = self.depth
        out["notes"] = list(self.notes)
        out["structure"] = self.structure
        out["components"] = [c.to_dict() for c in self.components]
        out["factors"] = [f.to_dict() for f in self.factors]
        return out


@dataclass(frozen=True)
class ComponentInfo:
    """One ergodic component of a non-ergodic process in `ProcessInfo.components`: its weight, the states it
    lives on (indices into the process's states; ``merged`` lists further classes of states that generate the
    same process, merged into this one with their weights added) and its own measures."""

    weight: float
    states: tuple[int, ...]
    merged: tuple[tuple[int, ...], ...]
    info: ProcessInfo

    def to_dict(self) -> dict[str, Any]:
        """``{"weight", "states", "merged", "info"}``, JSON-ready."""
        return {
            "weight": self.weight,
            "states": list(self.states),
            "merged": [list(m) for m in self.merged],
            "info": self.info.to_dict(),
        }


MEASURE_NAMES = (
    "h_mu",
    "C_mu",
    "E",
    "T",
    "S",
    "chi",
    "markov_order",
    "cryptic_order",
    "n_mixed_states",
    "n_causal_states",
    "lyapunov_dimension",
    "information_dimension",
)


def _json_ready(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, dict):
        return {str(k): _json_ready(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_ready(x) for x in v]
    return v


#: Exact h(L) enumeration budget of `process_info` (beliefs updated): Mess3 reaches depth 14.
WORD_BUDGET = 8_000_000


# --- non-ergodic processes and products ------------------------------------------------------------

#: `same_process`: two processes agree when every word vector of Tzeng's span gives |P_a(w) - P_b(w)| below this
#: (relative to the vector's size); a word vector extends the span when its part outside it is above this.
EQUIVALENCE_TOL = 1e-9
#: A class of states with less stationary mass than this (rounding of 0) is no component.
WEIGHT_ATOL = 1e-14
#: A presentation is a Kronecker product when the rank-one reconstruction matches within this (relative).
KRONECKER_RTOL = 1e-10


class DecompositionError(ProcessError):
    """A generalized HMM whose ergodic components cannot be read from its presentation."""


@dataclass(frozen=True)
class ErgodicComponent:
    """An ergodic component of a process: its weight, the states it lives on (indices into the process's
    states), further classes of states merged into it (they generate the same process), and the process
    restricted to its states, started from its own stationary distribution."""

    weight: float
    states: tuple[int, ...]
    merged: tuple[tuple[int, ...], ...]
    process: Process


def ergodic_components(process: Process) -> list[ErgodicComponent]:
    """The ergodic components of ``process``, with their weights; components that generate the same process merged.

    HMM: the closed communicating classes of the state chain ``M = T.sum(0)``. A closed class with its
    (unique) stationary distribution is an irreducible stationary chain, so the tokens it emits form an
    ergodic process; the prior is stationary, so it puts no mass on transient states, and each class's
    weight is the prior's mass on it (classes the prior misses are no components). A generalized HMM's
    states carry quasi-probabilities and M may have negative entries, so the classes of M's sign pattern
    mean nothing (`tom_quantum`'s M is diagonal). What is kept there is exact: blocks of states that no
    matrix T[x] connects (a `mixture` of GHMMs is block-diagonal), each with weight ``pi_B tau_B``, and
    each must have eigenvalue 1 of its ``M_B`` only once: then the Cesaro mean of ``M_B^n`` is
    ``tau_B pi_B``, so the frequency of every word along a sequence converges to its probability (an
    ergodic process). A block with eigenvalue 1 repeated may be one ergodic process in a non-minimal
    presentation or a mixture of several, which the presentation alone does not tell: `DecompositionError`.
    Components that generate the same process (`same_process`) are merged into the first, their weights
    added: an observer can never tell them apart, so they are one component.
    """
    T, pi, tau = process_vectors(process)
    V, S, _ = T.shape
    if isinstance(process, GeneralizedHMM):
        from scipy.sparse.csgraph import connected_components

        _, label = connected_components(np.abs(T).sum(axis=0) > 0, directed=False)
        classes = [np.flatnonzero(label == b) for b in range(label.max() + 1)]
    else:
        classes = closed_classes(T.sum(axis=0))
    found: list[tuple[float, np.ndarray]] = []
    for c in classes:
        w = float(pi[c] @ tau[c])
        if w < -WEIGHT_ATOL:
            raise DecompositionError(
                f"{process.name}: states {c.tolist()} carry a negative weight {w:.3g}; not a valid process"
            )
        if w > WEIGHT_ATOL:
            found.append((w, c))
    total = sum(w for w, _ in found)
    parts = []
    for w, c in found:
        Tc = T[:, c][:, :, c]
        if isinstance(process, GeneralizedHMM):
            ones = int(np.sum(np.abs(np.linalg.eigvals(Tc.sum(axis=0)) - 1.0) < 1e-8))
            if ones != 1:
                raise DecompositionError(
                    f"{process.name}: eigenvalue 1 of T.sum(0) on states {c.tolist()} occurs {ones} times, so whether "
                    "they present one ergodic process or a mixture of several cannot be read from this generalized "
                    "HMM; give its ergodic components as a mixture (hmm_processes.mixture) or a minimal presentation"
                )
            if len(found) == 1:
                return [ErgodicComponent(1.0, tuple(int(i) for i in c), (), process)]
            name, params = _part_label(process, "components", len(parts), c)
            proc: Process = GeneralizedHMM(
                Tc, name=name, params=params, token_names=process.token_names, normalizer=tau[c], prior=pi[c] / w
            )
        else:
            if len(found) == 1:
                return [ErgodicComponent(1.0, tuple(int(i) for i in c), (), process)]
            name, params = _part_label(process, "components", len(parts), c)
            proc = HMM(Tc, name=name, params=params, token_names=process.token_names)
        parts.append(ErgodicComponent(w / total, tuple(int(i) for i in c), (), proc))
    merged: list[ErgodicComponent] = []
    for part in parts:
        for k, kept in enumerate(merged):
            if same_process(kept.process, part.process):
                merged[k] = ErgodicComponent(
                    kept.weight + part.weight, kept.states, kept.merged + (part.states,), kept.process
                )
                break
        else:
            merged.append(part)
    return merged


def same_process(a: Process, b: Process, *, tol: float = EQUIVALENCE_TOL) -> bool:
    """Whether two processes (from their stationary starts) give every word the same probability.

    Tzeng's algorithm for weighted automata (SIAM J. Comput. 21, 216, 1992): the vectors
    ``v_w = (pi_a T_a^(w), pi_b T_b^(w))`` span a space of dimension at most ``n_a + n_b``, found breadth
    first (a word extends the span only if its prefix did, so no word longer than ``n_a + n_b - 1`` is
    needed); ``P_a(w) - P_b(w) = v_w . (tau_a, -tau_b)`` is linear in ``v_w``, so it vanishes for every
    word iff it does on that span. Decided to ``tol`` (relative), the only inexact step.
    """
    Ta, pa, ta = process_vectors(a)
    Tb, pb, tb = process_vectors(b)
    if Ta.shape[0] != Tb.shape[0]:
        return False
    na = pa.size
    delta = np.concatenate([ta, -tb])  # v_w . delta = P_a(w) - P_b(w)
    scale = float(np.linalg.norm(np.concatenate([ta, tb])))
    basis = np.zeros((0, na + pb.size))
    queue = [np.concatenate([pa, pb])]
    while queue:
        v = queue.pop(0)
        nv = float(np.linalg.norm(v))
        if nv == 0.0:
            continue
        if abs(float(v @ delta)) > tol * nv * scale:
            return False
        r = v - basis.T @ (basis @ v)
        r = r - basis.T @ (basis @ r)  # twice: orthogonal to rounding
        nr = float(np.linalg.norm(r))
        if nr <= tol * nv:
            continue
        basis = np.vstack([basis, r / nr])
        u = v / nv  # the same word's vector, rescaled (the test above is scale-free)
        queue.extend(np.concatenate([u[:na] @ Ta[x], u[na:] @ Tb[x]]) for x in range(Ta.shape[0]))
    return True


def product_factors(process: Process) -> list[Process] | None:
    """The independent factors of ``process`` when its presentation is a Kronecker product, else None.

    Tokens and states are read row-major, as `hmm_processes.product` builds them: for a split
    ``V = V1 V2``, ``S = S1 S2``, the process is a product when ``T[(x1, x2)] = A[x1] (x) B[x2]``,
    ``pi = pi1 (x) pi2`` and ``tau = tau1 (x) tau2`` (each a rank-one matrix once reshaped, found by
    SVD). Then ``P(w) = pi1 A^(w1) tau1 * pi2 B^(w2) tau2``: the tokens of the two parts are independent
    processes. Each factor is split again; the factors come first-to-last, scaled so that
    ``A.sum(0) tau1 = tau1`` and ``pi1 tau1 = 1``. A factor whose matrices are non-negative with a constant
    tau is an `HMM`, else a `GeneralizedHMM`.
    """
    T, pi, tau = process_vectors(process)
    split = _kronecker_factors(T, pi, tau)
    if len(split) < 2:
        return None
    out = []
    for k, (A, p, t) in enumerate(split):
        name, params = _part_label(process, "components", k, None, count=len(split))
        if t.max() - t.min() <= 1e-12 * abs(t).max() and A.min() >= -1e-13 * abs(A).max() and p.min() >= -1e-13:
            out.append(HMM(np.clip(A, 0.0, None), name=name, params=params, prior=np.clip(p * t[0], 0.0, None)))
        else:
            out.append(GeneralizedHMM(A, name=name, params=params, normalizer=t, prior=p))
    return out


def _kronecker_factors(T: np.ndarray, pi: np.ndarray, tau: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """``[(T_k, pi_k, tau_k), ...]``: the finest row-major Kronecker split of a presentation (itself alone if none)."""
    V, S, _ = T.shape
    for V1 in range(2, V // 2 + 1):
        if V % V1:
            continue
        V2 = V // V1
        for S1 in range(1, S + 1):
            if S % S1:
                continue
            S2 = S // S1
            X = T.reshape(V1, V2, S1, S2, S1, S2).transpose(0, 2, 4, 1, 3, 5).reshape(V1 * S1 * S1, V2 * S2 * S2)
            ab, pp, tt = _rank_one(X), _rank_one(pi.reshape(S1, S2)), _rank_one(tau.reshape(S1, S2))
            if ab is None or pp is None or tt is None:
                continue
            A, B = ab[0].reshape(V1, S1, S1), ab[1].reshape(V2, S2, S2)
            (p1, p2), (t1, t2) = pp, tt
            if t1.sum() < 0:
                t1, t2 = -t1, -t2
            c = float(t1 @ (A.sum(axis=0) @ t1)) / float(t1 @ t1)  # A.sum(0) t1 = c t1
            n1, n2 = float(p1 @ t1), float(p2 @ t2)
            if c == 0.0 or n1 == 0.0 or n2 == 0.0:
                continue
            A, B, p1, p2 = A / c, B * c, p1 / n1, p2 / n2
            rebuilt = np.einsum("aij,bkl->abikjl", A, B).reshape(V, S, S)
            if (
                np.abs(rebuilt - T).max() > KRONECKER_RTOL * np.abs(T).max()
                or np.abs(np.kron(p1, p2) - pi).max() > KRONECKER_RTOL * np.abs(pi).max()
                or np.abs(A.sum(axis=0) @ t1 - t1).max() > KRONECKER_RTOL * np.abs(t1).max()
            ):
                continue
            return _kronecker_factors(A, p1, t1) + _kronecker_factors(B, p2, t2)
    return [(T, pi, tau)]


def _rank_one(X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(u, v)`` with ``X = outer(u, v)`` (to `KRONECKER_RTOL`), or None when X has rank above one."""
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    if s[0] == 0.0 or (s.size > 1 and s[1] > KRONECKER_RTOL * s[0]):
        return None
    return U[:, 0] * s[0], Vt[0]


def _part_label(
    process: Process, key: str, k: int, states: np.ndarray | None, *, count: int | None = None
) -> tuple[str, dict[str, Any]]:
    """Name and params of part ``k`` from the params a composition recorded (``params[key]``: one dict with a
    "name" per part), if they match; else a name that says which part of which process it is. A mixture's
    part is matched by its states (``component_states`` gives each recorded component's block)."""
    recorded = process.params.get(key) if isinstance(process.params, dict) else None
    if isinstance(recorded, list) and all(isinstance(r, dict) and "name" in r for r in recorded):
        j: int | None = None
        if states is not None:
            sizes = process.params.get("component_states")
            if isinstance(sizes, list) and sum(sizes) == process.num_states:
                edges = np.cumsum([0, *sizes])
                j = int(np.searchsorted(edges, int(states[0]), side="right")) - 1
                if not (edges[j] <= states.min() and states.max() < edges[j + 1]):
                    j = None
        elif count == len(recorded):
            j = k
        if j is not None:
            r = recorded[j]
            return str(r["name"]), {a: b for a, b in r.items() if a != "name"}
    where = f"states {int(states.min())}-{int(states.max())}" if states is not None else f"factor {k + 1}"
    return f"{process.name}[{where}]", {}


#: Methods of combined values, from the most to the least accurate: a combination takes its least accurate part's.
_COMBINED_METHODS = ("exact", "h(L) limit", "countable MSP limit", "Blackwell", "chaos game")


def _combine(parts: list[Measure], coefs: list[float] | np.ndarray, const: float = 0.0) -> Measure:
    """``const + sum_k coefs[k] parts[k]`` of non-negative quantities with coefficients > 0: infinite if a part
    is; not computed if one is missing; a "partial sum" / "lower bound" if a part is one; else the least
    accurate part's method, with the bounds added and the standard errors added in quadrature (reported as a
    standard error when there is one, the bounds on top)."""
    if any(m.method == "infinite" for m in parts):
        return INFINITE
    if any(m.value is None for m in parts):
        return NOT_COMPUTED
    value = const + sum(float(c) * float(m.value) for c, m in zip(coefs, parts))
    methods = [m.method for m in parts]
    for weak in ("partial sum", "lower bound"):
        if weak in methods:
            return Measure(value, None, weak)
    if any(m not in _COMBINED_METHODS for m in methods):
        return NOT_COMPUTED
    bound = sum(float(c) * (m.error or 0.0) for c, m in zip(coefs, parts) if m.error_kind != "stderr")
    se = math.sqrt(sum((float(c) * (m.error or 0.0)) ** 2 for c, m in zip(coefs, parts) if m.error_kind == "stderr"))
    stderr = any(m.error_kind == "stderr" for m in parts)
    method = max(methods, key=_COMBINED_METHODS.index)
    if method == "exact":
        return _exact(value, bound)
    return Measure(value, bound + se, method, "stderr" if stderr else "bound")


def _integer(parts: list[Measure], how: str) -> Measure:
    """The max or product (``how``) of exact integer measures; infinite if a part is; else not computed."""
    if any(m.method == "infinite" for m in parts):
        return INFINITE
    if all(m.method == "exact" and isinstance(m.value, int) for m in parts):
        vals = [int(m.value) for m in parts]
        return _exact(max(vals) if how == "max" else math.prod(vals))
    return NOT_COMPUTED


def _mixture_info(process: Process, comps: list[ErgodicComponent], kw: dict[str, Any]) -> ProcessInfo:
    """`ProcessInfo` of a non-ergodic process from its ergodic components (see `process_info`)."""
    subs = [process_info(c.process, **kw) for c in comps]
    w = np.array([c.weight for c in comps])
    Hw = float(entropy_bits(w))
    out: dict[str, Any] = {k: NOT_COMPUTED for k in MEASURE_NAMES}
    shown = ", ".join(f"{c.weight:.6g} on states {_states_text(c.states)}" for c in comps)
    notes = [
        f"non-ergodic: {len(comps)} ergodic component{'s' if len(comps) > 1 else ''} (closed classes of the "
        f"state chain T.sum(0)), weights from the prior: {shown}"
    ]
    for c in comps:
        for m in c.merged:
            notes.append(
                f"states {_states_text(m)} generate the same process as states {_states_text(c.states)} "
                "(equal word probabilities, decided on words up to the two sizes together): one component, "
                "weights added"
            )
    out["h_mu"] = _combine([s.h_mu for s in subs], w)
    out["E"] = _combine([s.E for s in subs], w, Hw)
    out["C_mu"] = _combine([s.C_mu for s in subs], w, Hw)
    out["chi"] = _difference(out["C_mu"], out["E"])
    out["n_causal_states"] = _combine_counts([s.n_causal_states for s in subs])
    notes.append(
        "h_mu = sum_k w_k h_k; E = H(w) + sum_k w_k E_k; C_mu = H(w) + sum_k w_k C_k: distinct ergodic "
        "components are told apart almost surely by the infinite past and by the infinite future, so the "
        "component K is a function of either, E = I[past; future] = H(K) + I[past; future | K], and the "
        "causal states are the pairs (K, causal state of K)"
    )
    max_states = kw.get("max_states", MAX_STATES)
    msp = build_msp(process, max_states=max_states)
    try:
        epsilon_machine(msp)
        finite = True
    except InfiniteMSPError:
        finite = False
    if finite:
        whole = _single_info(process, **kw)
        for key in ("T", "S", "markov_order", "cryptic_order", "n_mixed_states", "n_causal_states"):
            out[key] = getattr(whole, key)
        notes.append("T, S, orders, MSP size: exact, from the mixture's own finite presentation")
    else:
        out["n_mixed_states"] = INFINITE
        R = _mixture_markov_order(comps, subs)
        out["markov_order"] = R
        notes.append(
            f"MSP looks infinite ({msp.reason}); T = sum_k w_k T_k + sum_L H[K | X_1..X_L] and S, whose "
            "second parts (how fast the component is learnt) are not summed, and the cryptic order are "
            "not computed"
        )
        if R.method == "infinite":
            notes.append(
                "markov_order: infinite (a component never synchronises, or two components share "
                "arbitrarily long words, so no finite window tells which one emits)"
            )
    notes.append(
        "lyapunov: per component (the belief set is the union of the components' sets; a chaos game over "
        "the whole only measures how fast the posterior over components concentrates)"
    )
    components = tuple(ComponentInfo(c.weight, c.states, c.merged, s) for c, s in zip(comps, subs))
    return ProcessInfo(
        name=process.name,
        params=dict(process.params),
        kind=_kind(process),
        notes=notes,
        structure="mixture",
        components=components,
        **out,
    )


def _combine_counts(parts: list[Measure]) -> Measure:
    """The number of causal states of a mixture: the sum of its components'."""
    if any(m.method == "infinite" for m in parts):
        return INFINITE
    if all(m.method == "exact" and isinstance(m.value, int) for m in parts):
        return _exact(sum(int(m.value) for m in parts))
    return NOT_COMPUTED


def _mixture_markov_order(comps: list[ErgodicComponent], subs: list[ProcessInfo]) -> Measure:
    """Markov order of a mixture of distinct components: infinite if a component's is, or if two components
    share words of every length (HMMs: a cycle in the product of their support graphs); else the larger of the
    components' orders and one more than the longest shared word (from then on the last R tokens name the
    component and its causal state). Not computed for generalized HMMs (their support is not their words')."""
    orders = [s.markov_order for s in subs]
    if any(m.method == "infinite" for m in orders):
        return INFINITE
    if not all(isinstance(c.process, HMM) for c in comps) or not all(m.method == "exact" for m in orders):
        return NOT_COMPUTED
    longest = 0
    for i in range(len(comps)):
        for j in range(i + 1, len(comps)):
            L = _longest_shared_word(comps[i].process, comps[j].process)
            if L is None:
                return INFINITE
            longest = max(longest, L)
    return _exact(max(max(int(m.value) for m in orders), longest + 1))


def _longest_shared_word(a: HMM, b: HMM) -> int | None:
    """Length of the longest word both stationary HMMs can emit (None: unbounded), on the pair graph of their
    supports; every state of an irreducible class has positive stationary mass, so every pair is a start."""
    A, B = a.T > 0, b.T > 0  # [V, Sa, Sa], [V, Sb, Sb]
    na, nb = A.shape[1], B.shape[1]
    step = np.einsum("xij,xkl->ikjl", A, B).reshape(na * nb, na * nb) > 0  # pair -> pair on a common token
    # longest path in the pair graph; a cycle means words of every length
    from scipy.sparse.csgraph import connected_components

    n_comp, label = connected_components(step, directed=True, connection="strong")
    if np.any(np.bincount(label) > 1) or np.any(np.diag(step)):
        return None
    depth = np.zeros(na * nb, np.int64)  # longest path (edges) starting at each pair; DAG: relax n times
    for _ in range(na * nb):
        nxt = np.where(step.any(axis=1), (step * (depth[None, :] + 1)).max(axis=1), 0)
        if np.array_equal(nxt, depth):
            break
        depth = nxt
    return int(depth.max())


def _product_info(process: Process, factors: list[Process], kw: dict[str, Any]) -> ProcessInfo:
    """`ProcessInfo` of an independent product from its factors (see `process_info`)."""
    subs = [process_info(f, **kw) for f in factors]
    ones = np.ones(len(subs))
    out: dict[str, Any] = {k: NOT_COMPUTED for k in MEASURE_NAMES}
    for key in ("h_mu", "E", "T", "S", "C_mu"):
        out[key] = _combine([getattr(s, key) for s in subs], ones)
    out["chi"] = _difference(out["C_mu"], out["E"])
    out["markov_order"] = _integer([s.markov_order for s in subs], "max")
    out["cryptic_order"] = _integer([s.cryptic_order for s in subs], "max")
    out["n_causal_states"] = _integer([s.n_causal_states for s in subs], "product")
    notes = [
        f"product of {len(subs)} independent factors (the presentation is a Kronecker product, "
        "T[(x1, x2)] = T1[x1] (x) T2[x2]): h_mu, E, T, S, C_mu are the sums of the factors' (below), the "
        "Markov and cryptic orders their maxima, the causal states their pairs"
    ]
    if all(s.n_mixed_states.method == "exact" for s in subs):
        msp = build_msp(process, max_states=kw.get("max_states", MAX_STATES))
        out["n_mixed_states"] = _exact(msp.num_states) if msp.finite else INFINITE
    elif any(s.n_mixed_states.method == "infinite" for s in subs):
        out["n_mixed_states"] = INFINITE
    # dimensions: a factor with finitely many causal states has an atomic belief measure (dimension 0)
    dims = []
    for s in subs:
        if s.lyapunov_dimension.value is not None:
            dims.append(s.lyapunov_dimension)
        elif s.n_causal_states.method == "exact" or s.n_mixed_states.method == "exact":
            dims.append(_exact(0.0))
        else:
            dims.append(NOT_COMPUTED)
    with_exponents = [s for s in subs if s.lyapunov_exponents]
    if with_exponents:
        out["information_dimension"] = _combine(dims, ones)
        lyap = tuple(
            sorted(
                (m for s in with_exponents for m in s.lyapunov_exponents),
                key=lambda m: -math.inf if m.value is None else -float(m.value),
            )
        )
        notes.append(
            "lyapunov: the exponents are the union of the factors' (the joint belief is the product of the "
            "factors' beliefs; the joint maps' exponents across that product set are sums of one exponent "
            "from each of two or more factors); the information dimension is the sum of the factors' "
            "dimensions (the belief measure is the product of the factors'), and the Lyapunov (Kaplan-Yorke) "
            "dimension of the joint spectrum is an upper bound of it"
        )
        if len(with_exponents) == len(subs) and out["h_mu"].value is not None:
            out["lyapunov_dimension"] = _joint_kaplan_yorke(subs, out["h_mu"], lyapunov_dimension)
        else:
            notes.append(
                "lyapunov: a factor has a finite belief set and no exponents computed, so the joint "
                "Kaplan-Yorke dimension is not computed"
            )
    else:
        lyap = ()
        if all(d.method == "exact" for d in dims):
            notes.append("lyapunov: not computed (every factor has a finite set of causal states)")
    return ProcessInfo(
        name=process.name,
        params=dict(process.params),
        kind=_kind(process),
        notes=notes,
        lyapunov_exponents=lyap,
        structure="product",
        factors=tuple(subs),
        **out,
    )


def _joint_kaplan_yorke(subs: list[ProcessInfo], h: Measure, ky) -> Measure:
    """Kaplan-Yorke dimension of a product's joint belief maps, whose spectrum is the factors' exponents and every
    sum of one exponent from each of two or more factors, with ``h`` the product's entropy rate: an "upper bound",
    its error the factors' standard errors (and h's) carried through linearly, all of one sign."""
    import itertools

    base = [np.array([-math.inf if m.value is None else float(m.value) for m in s.lyapunov_exponents]) for s in subs]
    errs = [np.array([0.0 if m.error is None else float(m.error) for m in s.lyapunov_exponents]) for s in subs]

    def joint(lams: list[np.ndarray], rate: float) -> float:
        spectrum = [x for lam in lams for x in lam]
        for r in range(2, len(lams) + 1):
            for group in itertools.combinations(lams, r):
                spectrum.extend(sum(t) for t in itertools.product(*group))
        return ky(np.array(spectrum), max(rate, 0.0))

    value = joint(base, float(h.value))
    err = abs(joint(base, float(h.value) + (h.error or 0.0)) - value)
    for k, lam in enumerate(base):
        for i in range(lam.size):
            if errs[k][i] > 0 and np.isfinite(lam[i]):
                moved = [b.copy() for b in base]
                moved[k][i] += errs[k][i]
                err += abs(joint(moved, float(h.value)) - value)
    return Measure(value, err, "upper bound", "stderr")


def _states_text(states: tuple[int, ...]) -> str:
    s = list(states)
    return f"{s[0]}-{s[-1]}" if s == list(range(s[0], s[-1] + 1)) and len(s) > 1 else ", ".join(map(str, s))


def _kind(process: Process) -> str:
    return "ghmm" if isinstance(process, GeneralizedHMM) else "hmm"


def process_info(
    process: Process,
    *,
    max_states: int = MAX_STATES,
    n_steps: int = 1_000_000,
    seed: int = 0,
    max_depth: int = 400,
    word_budget: float = WORD_BUDGET,
    lyapunov_steps: int = 1_000_000,
    sync_depth: int = 1000,
    merge_resolution: float = 1e-12,
    decompose: bool = True,
) -> ProcessInfo:
    """All measures of ``process``, each with its error and method: exact where a finite MSP /
    epsilon-machine allows, else the most accurate estimate available.

    With ``decompose`` (the default) the process is first read for structure, from its presentation alone:

    - a product of independent processes (`product_factors`: a Kronecker-product presentation): each
      factor's measures (``factors``); h_mu, E, T, S and C_mu are their sums (the past and future of
      independent parts are independent, and the causal states are the tuples of the factors'), the Markov
      and cryptic orders their maxima, the causal states' count their product; the Lyapunov exponents the
      union of the factors' (the spectrum along the product of the factors' belief sets), the
      ``information_dimension`` the sum of the factors' dimensions (the belief measure is the product
      measure), and ``lyapunov_dimension`` the Kaplan-Yorke dimension of the joint maps' whole spectrum
      (the factors' exponents and their sums), an upper bound of it.
    - a non-ergodic process (`ergodic_components`: several closed classes of states carry weight): each
      ergodic component's measures and weight (``components``), identical components merged; h_mu =
      sum_k w_k h_k, E = H(w) + sum_k w_k E_k and C_mu = H(w) + sum_k w_k C_k (distinct ergodic components
      are told apart almost surely by the infinite past and by the infinite future: K is a function of
      either, so I[past; future] = H(K) + I[past; future | K], and the causal states are the pairs (K,
      causal state of K)); chi = sum_k w_k chi_k. T, S and the orders come from the mixture's own
      presentation where it is finite, else are not computed (T and S also need how fast K is learnt),
      except an infinite Markov order, which is shown. No dimension or Lyapunov exponent is pooled: they
      are per component (the belief set is the union of the components' sets).

    Each part, and any other process (or every process with ``decompose=False``), gets:

    - finite MSP: everything exact; the Lyapunov quantities are "not computed" (a finite belief set).
    - otherwise h(1), h(2), ... are enumerated exactly (`exact_myopic_entropies`, at most
      ``max_depth`` levels and ``word_budget`` belief updates; equal beliefs merged). Where they
      converge, h_mu is their limit with a convergence bound, and E and T the sums with their tails
      (`entropy_limit`); where they do not, h_mu is the Blackwell estimate (``n_steps`` chaos-game
      steps, standard error), never above the exact h(D) at the depth reached (an upper bound of h_mu:
      an estimate above it is sampling noise, and is reported as h(D) with its standard error), and E,
      T are partial sums.
    - a finite epsilon-machine with an infinite MSP (a unifilar presentation that never synchronises
      on some words): h_mu, C_mu and the cryptic order exact; E, T, S from sums to ``sync_depth`` levels.
    - C_mu of a countable MSP: where the process gives exact state labels (`reset_labels`: tokens
      that reset the belief, the others commuting), the entropy of their stationary distribution,
      with no merging at all. Otherwise the entropy of the distribution over distinct beliefs at
      depth L, once it has converged in L and agrees when the merging grid ``merge_resolution`` is
      made 100x finer; else a lower bound (distinct beliefs merged at the coarser grid). Infinite
      when the Lyapunov dimension is positive.
    - Lyapunov exponents and dimension: `compmech.fractal.lyapunov_spectrum` with ``lyapunov_steps``
      steps and the h_mu above, each with its standard error over independent chains, every chain burnt
      in until its belief and tangent frame have settled (so the estimates carry no start-up bias).

    ``word_budget`` and ``lyapunov_steps`` are sized for Mess3 (V = S = 3: depth 14 and three stable
    decimals in seconds); for a larger process they are scaled down by 9 / (V S) and 12 / (V (S-1)^2),
    the ratio of the work per step, so ``info`` stays within seconds to a minute.
    """
    kw = dict(
        max_states=max_states,
        n_steps=n_steps,
        seed=seed,
        max_depth=max_depth,
        word_budget=word_budget,
        lyapunov_steps=lyapunov_steps,
        sync_depth=sync_depth,
        merge_resolution=merge_resolution,
    )
    if decompose:
        factors = product_factors(process)
        if factors is not None:
            return _product_info(process, factors, kw)
        comps = ergodic_components(process)
        if len(comps) > 1 or comps[0].merged:
            return _mixture_info(process, comps, kw)
    return _single_info(process, **kw)


def _single_info(
    process: Process,
    *,
    max_states: int,
    n_steps: int,
    seed: int,
    max_depth: int,
    word_budget: float,
    lyapunov_steps: int,
    sync_depth: int,
    merge_resolution: float,
) -> ProcessInfo:
    """`process_info` of one process taken whole (see there)."""
    kind = "ghmm" if isinstance(process, GeneralizedHMM) else "hmm"
    notes: list[str] = []
    V, S = process.vocab_size, process.num_states
    # budgets are in Mess3-sized work (V = S = 3); a bigger process gets proportionally fewer steps
    budget = word_budget * min(1.0, 9.0 / (V * S))
    lyapunov_steps = int(lyapunov_steps * min(1.0, 12.0 / (V * max(S - 1, 1) ** 2)))
    msp = build_msp(process, max_states=max_states)
    try:
        eps = epsilon_machine(msp)
    except InfiniteMSPError:
        eps = None
    out: dict[str, Any] = {k: NOT_COMPUTED for k in MEASURE_NAMES}
    lyap: tuple[Measure, ...] = ()
    depth_used: int | None = None

    if msp.finite:
        h_exact = float(eps.stationary_distribution @ entropy_bits(eps.emission_matrix))
        h = myopic_entropy_sequence(msp)
        E = float(np.sum(h - h_exact))
        T = float(np.sum(np.arange(1, h.size + 1) * (h - h_exact)))
        rnd = h.size * ROUND_TERM
        out.update(
            h_mu=_exact(h_exact, 1e-15),
            E=_exact(E, rnd),
            T=_exact(T, h.size * rnd),
            n_mixed_states=_exact(msp.num_states),
        )
    if eps is not None:
        h_exact = float(eps.stationary_distribution @ entropy_bits(eps.emission_matrix))
        C = float(entropy_bits(eps.stationary_distribution))
        k = cryptic_order(eps)
        R = markov_order(eps, max_states=max_states)
        out.update(
            h_mu=_exact(h_exact, 1e-15),
            C_mu=_exact(C, 1e-15),
            n_causal_states=_exact(eps.num_states),
            cryptic_order=_exact(k) if k is not None else INFINITE,
            markov_order=_exact(R) if R is not None else INFINITE,
        )
        if R is None:
            notes.append("markov_order: infinite (some words never synchronise)")
        if not msp.finite:
            out["n_mixed_states"] = INFINITE
            ex = exact_myopic_entropies(process, sync_depth, max_words=budget, settled=SETTLED)
            lim = entropy_limit(ex.myopic_entropies, h_mu=h_exact)
            depth_used = lim.depth
            out.update(E=_limit_measure(lim.E, lim.E_bound), T=_limit_measure(lim.T, lim.T_bound))
            notes.append(f"E, T: sums of the exact h(L) - h_mu to depth {lim.depth} ({lim.method})")
        try:
            out["S"] = _exact(synchronization_information(eps, max_states=max_states), 1e-12)
        except InfiniteMSPError:
            S = _stream_sync(eps, sync_depth, 100_000)
            out["S"] = Measure(
                S.value,
                S.error,
                "h(L) limit" if S.error is not None else "partial sum",
                "bound" if S.error is not None else None,
            )
    else:
        out["markov_order"] = INFINITE  # a finite Markov order would make the epsilon-machine finite
        out["n_mixed_states"] = INFINITE
        notes.append(f"MSP looks infinite ({msp.reason}); S and the cryptic order are not computed")
        ex = exact_myopic_entropies(process, max_depth, max_words=budget, settled=SETTLED)
        lim = entropy_limit(ex.myopic_entropies)
        depth_used = lim.depth
        if lim.method != "not converged":
            out.update(
                h_mu=Measure(lim.h_mu, lim.h_mu_bound, "h(L) limit", "bound"),
                E=_limit_measure(lim.E, lim.E_bound),
                T=_limit_measure(lim.T, lim.T_bound),
            )
            notes.append(
                f"h_mu, E, T: exact h(L) to depth {lim.depth} ({ex.n_words} beliefs), {lim.method}"
                + (f" convergence, ratio {lim.ratio:.4f}" if lim.ratio is not None else "")
            )
        else:
            bw = blackwell_entropy_rate(process, n_steps=n_steps, seed=seed)
            # h(D) is exact and h(L) decreases to h_mu, so h_mu <= h(D) for certain; the chaos-game average is
            # unbiased but noisy and can land above it. Then h(D) is the better value: the interval
            # h(D) +- k stderr holds every value of bw.value +- k stderr that is possible at all.
            upper = float(ex.myopic_entropies[-1])
            value = min(bw.value, upper)
            part = entropy_limit(ex.myopic_entropies, h_mu=value)
            out.update(
                h_mu=Measure(value, bw.stderr, "Blackwell", "stderr"),
                E=Measure(max(part.E, 0.0), None, "partial sum"),
                T=Measure(max(part.T, 0.0), None, "partial sum"),
            )
            notes.append(
                f"h(L) not converged by depth {lim.depth} (h({lim.depth}) = {upper:.10f} "
                f"is an upper bound on h_mu); h_mu from {bw.n_steps} chaos-game steps; E, T partial sums"
            )
            if bw.value > upper:
                notes.append(
                    f"h_mu: the chaos-game average {bw.value:.6f} +- {bw.stderr:.1e} lies above the exact "
                    f"upper bound h({lim.depth}) ({(bw.value - upper) / bw.stderr:.1f} standard errors, "
                    "sampling noise); reported as that bound, with the same standard error"
                )
        labelled = reset_labels(process)
        C = None
        by_labels = labelled is not None and labelled.missing < 1e-9
        if by_labels:
            n_lab = len(labelled.labels)
            # the unlisted mass m adds at most m (64 - log2 m) bits (fewer than 2^64 unlisted labels), + rounding
            err = labelled.missing * (64.0 - math.log2(max(labelled.missing, 1e-300))) + 1e-12
            C = Measure(float(entropy_bits(labelled.probs)), err, "countable MSP limit", "bound")
            out["C_mu"] = C
            notes.append(
                f"C_mu: entropy of the {n_lab} exact causal-state labels (last reset token "
                f"{list(labelled.reset_tokens)}, then counts of the commuting tokens "
                f"{list(labelled.other_tokens)}); no belief merging, assuming distinct labels are "
                "distinct states"
            )
        else:
            C = _countable_complexity(process, sync_depth, merge_resolution)
        if C is not None and not by_labels:
            out["C_mu"] = C
            notes.append(
                "C_mu: entropy of the distribution of distinct beliefs"
                + (
                    ", converged in depth and unchanged with a 100x finer merging grid"
                    if C.method != "lower bound"
                    else f" at depth {sync_depth}: depends on the merging grid ({merge_resolution:g}), so a lower bound"
                )
            )
        spec = lyapunov_spectrum(process, n_steps=lyapunov_steps, seed=seed, entropy_rate=out["h_mu"].value)
        lyap = tuple(
            Measure(float(x), float(e), "chaos game", "stderr") if np.isfinite(x) else INFINITE
            for x, e in zip(spec.exponents, spec.stderr)
        )  # -inf: a direction collapsed by some token
        out["lyapunov_dimension"] = Measure(spec.dimension, spec.dimension_stderr, "chaos game", "stderr")
        notes.append(
            f"lyapunov: {spec.n_chains} chains of {spec.n_steps // spec.n_chains} steps, each after a "
            f"burn-in of {spec.burn_in} steps"
            + (
                f" (at least twice the {spec.aligned_after} steps the slowest "
                "pilot chain's tangent frame took to align)"
                if spec.aligned_after
                else ""
            )
        )
        for c in spec.clusters:
            notes.append(
                f"lyapunov: exponents {', '.join(str(i + 1) for i in c)} are not told apart by the chains "
                "(equal or nearly so): each is their mean, the error widened by half their spread"
            )
        if C is None:
            if spec.dimension > 0:
                out["C_mu"] = INFINITE
                notes.append("C_mu: infinite (the beliefs fill a set of positive dimension)")
            else:
                notes.append("C_mu: not computed (the distinct beliefs outgrow the enumeration)")
    if msp.finite or eps is not None:
        notes.append(
            "lyapunov: not computed (finite set of causal states)"
            if msp.finite
            else "lyapunov: not computed (a finite epsilon-machine)"
        )
    out["chi"] = _difference(out["C_mu"], out["E"])
    if out["chi"].value is not None and abs(out["chi"].value) < 1e-12:
        out["chi"] = Measure(0.0, out["chi"].error, out["chi"].method, out["chi"].error_kind)
    out = {k: _in_range(k, m, V, notes) for k, m in out.items()}
    return ProcessInfo(
        name=process.name,
        params=dict(process.params),
        kind=kind,
        lyapunov_exponents=lyap,
        depth=depth_used,
        notes=notes,
        **out,
    )


def _limit_measure(value: float, bound: float | None) -> Measure:
    if bound is None:
        return Measure(max(value, 0.0), None, "partial sum")
    return Measure(value, bound, "h(L) limit", "bound")


def _difference(a: Measure, b: Measure) -> Measure:
    """``a - b`` with the errors added; "lower bound" when a is one and b is not infinite, etc."""
    if a.value is None or b.value is None:
        return INFINITE if a.method == "infinite" and b.value is not None else NOT_COMPUTED
    if a.method == "lower bound" or b.error is None:
        return Measure(a.value - b.value, None, "lower bound" if a.method == "lower bound" else "partial sum")
    if a.method == "exact" and b.method == "exact":
        return _exact(a.value - b.value, (a.error or 0.0) + (b.error or 0.0))
    err = (a.error or 0.0) + (b.error or 0.0)
    return Measure(a.value - b.value, err, "h(L) limit" if "limit" in (a.method + b.method) else a.method, "bound")


#: Possible range of each measure, given the number of tokens V.
def _range(name: str, V: int) -> tuple[float, float]:
    if name == "h_mu":
        return 0.0, math.log2(V) if V > 1 else 0.0
    if name == "lyapunov_dimension":
        return 0.0, math.inf
    return 0.0, math.inf


def _in_range(name: str, m: Measure, V: int, notes: list[str]) -> Measure:
    """Clip rounding just outside a measure's possible range; refuse (as "not computed") anything further out."""
    if not isinstance(m.value, float):
        return m
    lo, hi = _range(name, V)
    slack = max(1e-9, 3 * (m.error or 0.0))
    if lo - slack <= m.value <= hi + slack:
        return Measure(min(max(m.value, lo), hi), m.error, m.method, m.error_kind)
    notes.append(f"{name}: the estimate {m.value:.6g} ({m.method}) is outside [{lo:g}, {hi:g}]; not reported")
    return NOT_COMPUTED


@dataclass(frozen=True)
class ResetLabels:
    """Exact causal-state labels of a process whose tokens either reset the belief or commute.

    Tokens with a rank-one matrix (``reset_tokens``) send every belief to one fixed vector; when the
    other tokens' matrices all commute, the belief after a reset depends only on which reset came
    last and how many of each other token followed, in any order. ``probs[k]`` is the stationary
    probability of label ``labels[k]`` = (reset token, counts of the other tokens): the multinomial
    number of orderings times ``pi T[reset] prod_o T[o]^count_o tau``. ``missing`` is the mass of the
    labels not listed (longer runs without a reset).
    """

    reset_tokens: tuple[int, ...]
    other_tokens: tuple[int, ...]
    labels: list[tuple[int, tuple[int, ...]]]
    probs: np.ndarray  # [K]
    missing: float


def reset_labels(process: Process, *, max_labels: int = 1_000_000, tail: float = 1e-15) -> ResetLabels | None:
    """The `ResetLabels` of ``process``, or None when it lacks that structure (no rank-one token, or
    two other tokens whose matrices do not commute). Labels are listed by run length since the last
    reset until the mass left is below ``tail`` (or ``max_labels`` labels)."""
    from math import comb

    T, pi, tau = process_vectors(process)
    V = T.shape[0]
    sv = [np.linalg.svd(T[x], compute_uv=False) for x in range(V)]
    resets = tuple(x for x in range(V) if sv[x][0] > 0 and sv[x][1] <= 1e-12 * sv[x][0])
    others = tuple(x for x in range(V) if x not in resets and sv[x][0] > 0)
    if not resets or not others:
        return None
    for a in others:
        for b in others:
            if a < b and np.abs(T[a] @ T[b] - T[b] @ T[a]).max() > 1e-12 * max(
                1.0, np.abs(T[a]).max() * np.abs(T[b]).max()
            ):
                return None
    labels: list[tuple[int, tuple[int, ...]]] = []
    probs: list[float] = []
    n = len(others)
    total = 0.0
    for r in resets:
        level = {(0,) * n: pi @ T[r]}  # counts -> pi T[r] prod T[o]^c (one ordering)
        k = 0
        while level and len(labels) < max_labels:
            mass_k = 0.0
            for c, v in level.items():
                multi = comb(k, c[0]) if n == 2 else _multinomial(c)
                pr = float(multi * (v @ tau))
                labels.append((r, c))
                probs.append(pr)
                mass_k += pr
            total += mass_k
            if mass_k < tail * 1e-3 and k > 0 or k > 100_000:
                break
            nxt: dict[tuple[int, ...], np.ndarray] = {}
            for c, v in level.items():
                for i, o in enumerate(others):
                    c2 = c[:i] + (c[i] + 1,) + c[i + 1 :]
                    if c2 not in nxt:
                        nxt[c2] = v @ T[o]
            level, k = nxt, k + 1
    p = np.clip(np.array(probs), 0.0, None)
    return ResetLabels(resets, others, labels, p, max(0.0, 1.0 - float(p.sum())))


def _multinomial(c: tuple[int, ...]) -> int:
    from math import factorial

    out = factorial(sum(c))
    for x in c:
        out //= factorial(x)
    return out


def _countable_complexity(process: Process, depth: int, resolution: float) -> Measure | None:
    """C_mu of a countable MSP as the entropy of the distribution over distinct beliefs at depth L.

    Converged when that entropy changes by less than 1e-10 over three levels before ``depth``, with
    beliefs merged only on the grid ``resolution``, and the same holds with a 100x finer grid and
    the two values agree within 1e-8: "countable MSP limit" with the larger change as the error.
    If both converge in depth but disagree, the coarser value (more distinct beliefs merged) is
    returned as a "lower bound". None when the beliefs do not settle into a countable set (a
    coarse cap is needed or ``depth`` is reached without convergence).
    """
    a = _complexity_at(process, depth, resolution)
    if a is None:
        return None
    b = _complexity_at(process, depth, resolution / 100.0)
    if b is None:
        return Measure(a[0], None, "lower bound")
    change = max(a[1], b[1], abs(a[0] - b[0]))
    if abs(a[0] - b[0]) <= 1e-8:
        return Measure(a[0], change, "countable MSP limit", "bound")
    return Measure(min(a[0], b[0]), None, "lower bound")


def _complexity_at(
    process: Process, depth: int, resolution: float, max_states: int = 200_000
) -> tuple[float, float] | None:
    """(entropy of the distinct-belief distribution once converged, its last change), or None."""
    C: list[float] = []
    for L, _b, p, res in iter_levels(process, max_states=max_states, resolution=resolution):
        if res > resolution:
            return None
        C.append(float(entropy_bits(p)))
        if len(C) >= 4 and max(abs(C[-1] - C[-2]), abs(C[-2] - C[-3]), abs(C[-3] - C[-4])) < 1e-10:
            return C[-1], max(abs(C[-1] - C[-2]), 1e-12)
        if L >= depth:
            return None
    return None  # pragma: no cover


@dataclass(frozen=True)
class _Sum:
    value: float
    error: float | None


def _stream_sync(eps: HMM, depth: int, max_states: int) -> _Sum:
    """sum_L E[H(belief over causal states)] from streaming, until the term is below 1e-13 (or ``depth``)."""
    total = 0.0
    for L, b, p, _ in iter_levels(eps, max_states=max_states):
        term = float(p @ entropy_bits(np.clip(b, 0, None)))
        total += term
        if term < 1e-13:
            return _Sum(total, (L + 1) * ROUND_TERM + 1e-12)
        if L >= depth:
            break
    return _Sum(total, None)
