"""Information measures of a process, in bits, one function each with its definition.

Exact values come from a finite mixed-state presentation (MSP) or a finite epsilon-machine;
`InfiniteMSPError` is raised when a measure needs one and there is none. For processes with an
infinite MSP, `blackwell_entropy_rate` estimates h_mu along chaos-game trajectories and
`process_info` collects every measure that can be had, saying which are estimates.

Notation: X_1 X_2 ... the tokens of the stationary process; S_L the causal state after L tokens;
H(L) = H[X_1..X_L]; h(L) = H(L) - H(L-1); h_mu = lim h(L).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from compmech.fractal import belief_chaos_game
from compmech.information import entropy_bits
from compmech.msp import MAX_STATES, MSP, InfiniteMSPError, _refine, build_msp
from compmech.streaming import iter_levels, next_token_entropies
from hmm_processes import HMM, GeneralizedHMM, ProcessError, process_vectors

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
    return HMM(M, name=f"epsilon_machine({hmm.name})", params=dict(hmm.params), token_names=hmm.token_names,
               prior=w / w.sum())


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


def blackwell_entropy_rate(process: Process, *, n_steps: int = 400_000, n_chains: int = 64, burn_in: int = 500,
                           seed: int = 0) -> BlackwellEstimate:
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
    return BlackwellEstimate(value=float(means.mean()), stderr=float(means.std(ddof=1) / math.sqrt(n_chains)),
                             n_steps=steps * n_chains, n_chains=n_chains)


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
        raise InfiniteMSPError(f"{eps.name}: observers never synchronise on some words ({emsp.reason}); "
                               "S is not computed exactly")
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
    from compmech.streaming import stream_entropies

    return float(stream_entropies(process, int(length), max_states=max_states).block_entropies[-1])


def myopic_entropy(process: Process, length: int, *, max_states: int = 100_000) -> float:
    """Myopic entropy rate ``h(L) = H(L) - H(L-1) = H[X_L | X_1..X_{L-1}]`` (bits), L >= 1."""
    from compmech.streaming import stream_entropies

    if int(length) < 1:
        raise ProcessError(f"myopic_entropy: length must be >= 1; got {length}")
    return float(stream_entropies(process, int(length) - 1, max_states=max_states).myopic_entropies[-1])


# --- everything at once ----------------------------------------------------------------------------


@dataclass
class ProcessInfo:
    """Every measure of one process. ``None`` means infinite (listed in ``infinite``) or not
    computed (``notes`` say why); ``estimated`` lists the measures that are estimates, not exact."""

    name: str
    params: dict[str, Any]
    kind: str  # "hmm" or "ghmm"
    h_mu: float
    h_mu_stderr: float | None
    C_mu: float | None
    E: float | None
    T: float | None
    S: float | None
    chi: float | None
    markov_order: int | None
    cryptic_order: int | None
    n_mixed_states: int | None
    n_causal_states: int | None
    lyapunov_dimension: float | None
    lyapunov_exponents: list[float] | None = None
    estimated: list[str] = field(default_factory=list)
    infinite: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become None)."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            out[k] = _json_ready(v)
        return out


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


def process_info(process: Process, *, max_states: int = MAX_STATES, n_steps: int = 1_000_000, seed: int = 0,
                 stream_depth: int = 40, stream_max_states: int = 10_000, lyapunov_steps: int = 100_000,
                 sync_depth: int = 1000) -> ProcessInfo:
    """All measures of ``process``: exact where a finite MSP / epsilon-machine allows, else estimates.

    - finite MSP: everything exact; ``lyapunov_dimension`` is None (the belief set is finite).
    - finite epsilon-machine but infinite MSP (a unifilar presentation whose transient beliefs
      never synchronise on some words): h_mu, C_mu and the cryptic order exact; E, T and S from
      level-by-level sums continued until their terms are below 1e-13 (at most ``sync_depth``
      levels), reported as estimates.
    - otherwise: h_mu from `blackwell_entropy_rate` (with standard error); E and T from block
      entropies (`compmech.streaming`, at most ``stream_max_states`` beliefs per level) with h_mu
      taken as the extrapolated limit of h(L) when that converged; Markov order infinite;
      ``lyapunov_dimension`` from `compmech.fractal.lyapunov_spectrum`. C_mu is estimated as the
      entropy of the level-L distribution over distinct beliefs when the beliefs are countable
      (that entropy converges while no coarse merging is needed, e.g. SNS); it is infinite when the
      Lyapunov dimension is positive; otherwise not computed. S and the cryptic order: None.
    """
    from compmech.fractal import lyapunov_spectrum

    kind = "ghmm" if isinstance(process, GeneralizedHMM) else "hmm"
    notes: list[str] = []
    estimated: list[str] = []
    infinite: list[str] = []
    msp = build_msp(process, max_states=max_states)
    try:
        eps = epsilon_machine(msp)
    except InfiniteMSPError:
        eps = None
    h_mu_se: float | None = None
    C_mu = chi = S = None
    R = k = None
    lyap_dim = None
    lyap_exp = None
    n_causal = None
    if eps is not None:
        h_mu = float(eps.stationary_distribution @ entropy_bits(eps.emission_matrix))
        C_mu = float(entropy_bits(eps.stationary_distribution))
        n_causal = eps.num_states
        k = cryptic_order(eps)
        R = markov_order(eps, max_states=max_states)
        if R is None:
            infinite.append("markov_order")
            notes.append("markov_order: infinite (some words never synchronise)")
        if k is None:
            infinite.append("cryptic_order")
    else:
        bw = blackwell_entropy_rate(process, n_steps=n_steps, seed=seed)
        h_mu, h_mu_se = bw.value, bw.stderr
        estimated.append("h_mu")
        infinite.append("markov_order")  # a finite Markov order would make the epsilon-machine finite
        notes.append(f"MSP looks infinite ({msp.reason}); S and the cryptic order are not computed")
        C_mu, depth_c = _countable_complexity(process, sync_depth, stream_max_states)
        if C_mu is not None:
            estimated.append("C_mu")
            notes.append(f"C_mu: entropy of the distribution of distinct beliefs, converged by depth {depth_c} "
                         "(a countable set of mixed states)")

    if msp.finite:
        h = myopic_entropy_sequence(msp)
        E = float(np.sum(h - h_mu))
        T = float(np.sum(np.arange(1, h.size + 1) * (h - h_mu)))
    else:
        h, converged, exact = _stream_h(process, sync_depth if eps is not None else stream_depth,
                                        stream_max_states, h_mu if eps is not None else None)
        target = h_mu
        if eps is None and converged:
            target = _extrapolate(h)
            notes.append(f"E, T use h_mu = {target:.10f}, the limit of h(L) extrapolated from depth {h.size}")
        E, T = _sums_with_tail(h, target)
        estimated += ["E", "T"]
        if not converged:
            notes.append(f"E, T: h(L) not converged by depth {h.size} (sums truncated there)")
        if not exact:
            notes.append("E, T: beliefs merged on a coarse grid at some depths (h(L) slightly overestimated)")
    if eps is None and C_mu is not None and E is not None:
        chi = C_mu - E
        estimated.append("chi")
    if eps is not None:
        try:
            S = synchronization_information(eps, max_states=max_states)
        except InfiniteMSPError:
            S = _stream_sync(eps, sync_depth, stream_max_states)
            estimated.append("S")
        chi = C_mu - E if E is not None else None
        if chi is not None and abs(chi) < 1e-12:
            chi = 0.0
        if "E" in estimated:
            estimated.append("chi")
    if not msp.finite:
        spec = lyapunov_spectrum(process, n_steps=lyapunov_steps, seed=seed)
        lyap_dim = spec.dimension
        lyap_exp = [float(x) for x in spec.exponents]
        estimated.append("lyapunov_dimension")
        if eps is None and C_mu is None:
            if lyap_dim > 0:
                infinite += ["C_mu", "chi"]
                notes.append("C_mu: infinite (the beliefs fill a set of positive dimension)")
            else:
                notes.append("C_mu: not computed (the distinct beliefs outgrow the enumeration cap)")
    return ProcessInfo(name=process.name, params=dict(process.params), kind=kind, h_mu=h_mu, h_mu_stderr=h_mu_se,
                       C_mu=C_mu, E=E, T=T, S=S, chi=chi, markov_order=R, cryptic_order=k,
                       n_mixed_states=msp.num_states if msp.finite else None, n_causal_states=n_causal,
                       lyapunov_dimension=lyap_dim, lyapunov_exponents=lyap_exp, estimated=estimated,
                       infinite=infinite, notes=notes)


def _countable_complexity(process: Process, depth: int, max_states: int) -> tuple[float | None, int]:
    """Entropy of the distribution over distinct mixed states at depth L, if it converges (change below
    1e-10 twice) before the beliefs must be merged coarsely or ``depth`` is reached; else None.

    For a countable set of mixed states whose distribution tends to the stationary one over causal
    states, this tends to C_mu (assuming distinct mixed states have distinct futures)."""
    C: list[float] = []
    for L, b, p, res in iter_levels(process, max_states=max_states):
        if res > 1e-12:
            return None, L
        C.append(float(entropy_bits(p)))
        if len(C) >= 3 and abs(C[-1] - C[-2]) < 1e-10 and abs(C[-2] - C[-3]) < 1e-10:
            return C[-1], L
        if L >= depth:
            return None, L
    return None, 0  # pragma: no cover


def _stream_h(process: Process, depth: int, max_states: int, h_mu: float | None = None
              ) -> tuple[np.ndarray, bool, bool]:
    """h(1), h(2), ... from streaming until h(L) - h_mu < 1e-13 (h_mu known) or two successive changes
    are below 1e-10 (h_mu unknown), or ``depth`` levels. Returns (h, converged, exact)."""
    T, _, tau = process_vectors(process)
    E = (T @ tau).T
    h: list[float] = []
    exact = True
    converged = False
    for L, b, p, res in iter_levels(process, max_states=max_states):
        h.append(float(p @ next_token_entropies(b, E)))
        exact &= res <= 1e-12
        if h_mu is not None and h[-1] - h_mu < 1e-13:
            converged = True
            break
        if h_mu is None and len(h) >= 3 and abs(h[-1] - h[-2]) < 1e-10 and abs(h[-2] - h[-3]) < 1e-10:
            converged = True
            break
        if L >= depth:
            break
    return np.array(h), converged, exact


def _extrapolate(h: np.ndarray) -> float:
    """Limit of a geometrically converging sequence (Aitken's delta-squared on the last three terms)."""
    if h.size < 3:
        return float(h[-1])
    a, b, c = h[-3], h[-2], h[-1]
    den = (c - b) - (b - a)
    if den == 0 or not np.isfinite(den):
        return float(c)
    lim = c - (c - b) ** 2 / den
    return float(lim) if abs(lim - c) <= abs(c - a) + 1e-15 else float(c)


def _sums_with_tail(h: np.ndarray, h_mu: float) -> tuple[float, float]:
    """E = sum (h(L) - h_mu) and T = sum L (h(L) - h_mu), with a geometric tail when the residuals decay."""
    r = h - h_mu
    L = np.arange(1, h.size + 1)
    E, T = float(r.sum()), float((L * r).sum())
    if h.size >= 3 and r[-1] > 0 and r[-2] > r[-1]:
        rho = r[-1] / r[-2]
        D = h.size
        E += r[-1] * rho / (1 - rho)
        T += r[-1] * (D * rho / (1 - rho) + rho / (1 - rho) ** 2)
    return E, T


def _stream_sync(eps: HMM, depth: int, max_states: int) -> float:
    """sum_L E[H(belief over causal states)] from streaming, until the term is below 1e-12 (or ``depth``)."""
    total = 0.0
    for L, b, p, _ in iter_levels(eps, max_states=max_states):
        term = float(p @ entropy_bits(np.clip(b, 0, None)))
        total += term
        if term < 1e-13 or L >= depth:
            break
    return total
