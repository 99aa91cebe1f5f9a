"""The finite mixed-state presentation (MSP): beliefs reachable from the stationary prior, as a graph.

Starting from the stationary prior pi, every token x of positive probability maps a belief eta to
``eta T[x] / (eta T[x] tau)`` (tau = 1 for an HMM; a GHMM's normaliser otherwise). Breadth-first
search collects the distinct beliefs (states) and the labelled transitions between them, merging
beliefs equal within ``tol`` (max-abs difference). The MSP is unifilar: each (state, token) pair
has at most one successor.

The recurrent states are those in closed strongly connected components (no edge leaves them);
the rest are transient. Merging recurrent states with identical futures (`MSP.causal_classes`)
gives the epsilon-machine; for a unifilar presentation the recurrent MSP already is it.

Not every MSP is finite. Construction stops and marks the result ``finite=False`` ("MSP looks
infinite") when (a) the number of states passes ``max_states``, or (b) two distinct beliefs come
within ``tol`` of each other while differing by more than rounding (more than ``exact_tol``):
beliefs that accumulate like this (e.g. the simple nonunifilar source) signal a countably or
uncountably infinite MSP rather than a finite one computed with rounding error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from hmm_processes import HMM, GeneralizedHMM, ProcessError, process_vectors
from hmm_processes.beliefs import extend_beliefs, min_probability

#: Default cap on the number of MSP states before declaring "looks infinite".
MAX_STATES = 5000
#: Beliefs closer than this (max-abs) are the same state.
MERGE_TOL = 1e-9
#: Merges closer than this are rounding; merges between this and MERGE_TOL signal accumulation.
EXACT_TOL = 1e-12


class InfiniteMSPError(ValueError):
    """Raised when an exact (finite-MSP) quantity is asked of a process whose MSP looks infinite."""


@dataclass(frozen=True, eq=False)
class MSP:
    """A mixed-state presentation: states are beliefs, transitions are labelled by token and probability.

    State 0 is the start state (the stationary prior). ``next_state[i, x]`` is the successor of
    state i on token x (-1 when ``token_probs[i, x] == 0``). When ``finite`` is False the graph is
    the part found before construction stopped (see ``reason``); recurrence is then not meaningful.
    """

    process: HMM | GeneralizedHMM
    beliefs: np.ndarray  # [N, S] float64
    next_state: np.ndarray  # [N, V] int64, -1 for impossible tokens
    token_probs: np.ndarray  # [N, V] float64, P(x | state)
    depth: np.ndarray  # [N] int64, length of the shortest word reaching each state
    finite: bool
    reason: str = ""
    tol: float = MERGE_TOL
    max_merge_distance: float = 0.0
    _cache: dict = field(default_factory=dict, repr=False)

    # --- graph ------------------------------------------------------------------------------------
    @property
    def num_states(self) -> int:
        return int(self.beliefs.shape[0])

    @property
    def vocab_size(self) -> int:
        return int(self.token_probs.shape[1])

    def transitions(self) -> list[tuple[int, int, int, float]]:
        """Every edge as ``(source, token, target, probability)``, sorted by source then token."""
        src, tok = np.nonzero(self.next_state >= 0)
        return [(int(i), int(x), int(self.next_state[i, x]), float(self.token_probs[i, x])) for i, x in zip(src, tok)]

    def transition_matrix(self) -> sparse.csr_matrix:
        """``P[i, j] = sum_x P(x | i) [next(i, x) = j]`` as a sparse [N, N] matrix."""
        src, tok = np.nonzero(self.next_state >= 0)
        N = self.num_states
        return sparse.csr_matrix((self.token_probs[src, tok], (src, self.next_state[src, tok])), shape=(N, N))

    def transition_tensor(self) -> np.ndarray:
        """Dense ``T[x, i, j]`` over MSP states, shape [V, N, N]."""
        T = np.zeros((self.vocab_size, self.num_states, self.num_states))
        src, tok = np.nonzero(self.next_state >= 0)
        T[tok, src, self.next_state[src, tok]] = self.token_probs[src, tok]
        return T

    @property
    def components(self) -> np.ndarray:
        """Strongly-connected-component label of each state, shape [N]."""
        if "scc" not in self._cache:
            _, labels = connected_components(self.transition_matrix(), directed=True, connection="strong")
            self._cache["scc"] = labels.astype(np.int64)
        return self._cache["scc"]

    @property
    def recurrent(self) -> np.ndarray:
        """Boolean mask [N]: the state lies in a closed strongly connected component (nothing leaves it)."""
        self._require_finite("recurrent states")
        if "recurrent" not in self._cache:
            comp = self.components
            src, tok = np.nonzero(self.next_state >= 0)
            dst = self.next_state[src, tok]
            leaving = np.unique(comp[src][comp[src] != comp[dst]])
            self._cache["recurrent"] = ~np.isin(comp, leaving)
        return self._cache["recurrent"]

    @property
    def transient(self) -> np.ndarray:
        """Boolean mask [N]: not recurrent."""
        return ~self.recurrent

    def stationary_distribution(self) -> np.ndarray:
        """Long-run occupation of the MSP states from the start state, shape [N] (0 on transient states).

        For an ergodic process this is the stationary distribution over the recurrent states;
        with several closed components (a non-ergodic process) each is weighted by the probability
        of being absorbed into it.
        """
        if "stationary" in self._cache:
            return self._cache["stationary"]
        rec = self.recurrent
        comp = self.components
        P = self.transition_matrix()
        N = self.num_states
        if rec[0]:
            absorb_by_comp = {int(comp[0]): 1.0}
        else:
            tr = np.flatnonzero(~rec)
            rc = np.flatnonzero(rec)
            Q = P[tr][:, tr]
            R = P[tr][:, rc]
            start = np.zeros(tr.size)
            start[np.searchsorted(tr, 0)] = 1.0
            # visits = start (I - Q)^-1 ; absorbed mass into recurrent state r = visits R[:, r]
            A = sparse.identity(tr.size, format="csc") - Q.T.tocsc()
            if tr.size <= 2000:
                visits = np.linalg.solve(A.toarray(), start)
            else:
                visits = np.asarray(sparse_linalg.spsolve(A, start)).ravel()
            enter = np.asarray(R.T @ visits).ravel()
            absorb_by_comp = {}
            for r, m in zip(rc, enter):
                absorb_by_comp[int(comp[r])] = absorb_by_comp.get(int(comp[r]), 0.0) + float(m)
        out = np.zeros(N)
        for c, mass in absorb_by_comp.items():
            members = np.flatnonzero(comp == c)
            out[members] = mass * _stationary_of_block(P[members][:, members].toarray())
        out /= out.sum()
        self._cache["stationary"] = out
        return out

    # --- causal states ------------------------------------------------------------------------------
    def future_classes(self) -> np.ndarray:
        """Label [N] grouping states with identical futures (same next-token probabilities and
        successor classes, by partition refinement); recurrent classes are the causal states."""
        if "future" not in self._cache:
            self._cache["future"] = _refine(self.token_probs, self.next_state)
        return self._cache["future"]

    def causal_classes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(labels [N] with -1 on transient states, weights [C])``: the epsilon-machine's states and
        their stationary probabilities, numbered 0..C-1."""
        self._require_finite("causal states")
        fut = self.future_classes()
        rec = self.recurrent
        classes = np.unique(fut[rec])
        labels = np.full(self.num_states, -1, np.int64)
        labels[rec] = np.searchsorted(classes, fut[rec])
        pi = self.stationary_distribution()
        weights = np.bincount(labels[rec], weights=pi[rec], minlength=classes.size)
        return labels, weights

    def epsilon_machine(self) -> HMM:
        """The epsilon-machine: the recurrent MSP with states of identical future merged, as a unifilar `HMM`.

        Its prior is the stationary distribution over causal states (explicit, since a non-ergodic
        process has one closed component per ergodic part). A GHMM's finite MSP gives an ordinary HMM.
        """
        labels, weights = self.causal_classes()
        C, V = weights.size, self.vocab_size
        T = np.zeros((V, C, C))
        for c in range(C):
            i = int(np.flatnonzero(labels == c)[0])
            for x in range(V):
                j = self.next_state[i, x]
                if j >= 0:
                    T[x, c, labels[j]] += self.token_probs[i, x]
        T /= T.sum(axis=(0, 2), keepdims=True)
        return HMM(
            T,
            name=f"epsilon_machine({self.process.name})",
            params=dict(self.process.params),
            token_names=self.process.token_names,
            prior=weights / weights.sum(),
        )

    def require_finite(self) -> MSP:
        """Return self, or raise `InfiniteMSPError` if the MSP looks infinite."""
        self._require_finite("this quantity")
        return self

    def _require_finite(self, what: str) -> None:
        if not self.finite:
            raise InfiniteMSPError(
                f"MSP of {self.process.name} looks infinite ({self.reason}); {what} needs a finite MSP"
            )

    def __repr__(self) -> str:
        kind = "finite" if self.finite else f"looks infinite: {self.reason}"
        return f"MSP({self.process.name}, states={self.num_states}, {kind})"


def build_msp(
    process: HMM | GeneralizedHMM,
    *,
    max_states: int = MAX_STATES,
    tol: float = MERGE_TOL,
    exact_tol: float = EXACT_TOL,
    prior: np.ndarray | None = None,
) -> MSP:
    """Breadth-first construction of the MSP from the stationary prior (or ``prior``).

    Beliefs within ``tol`` (max-abs) are one state. Stops with ``finite=False`` when the state count
    passes ``max_states`` or when two distinct beliefs fall within ``tol`` but further apart than
    ``exact_tol`` (accumulating beliefs). For GHMMs, next-token probabilities below 1e-12 count as 0
    (rounding of cancelling quasi-probabilities); for HMMs only exact zeros do.
    """
    if max_states < 1 or not (0 < exact_tol <= tol):
        raise ProcessError(
            f"build_msp: need max_states >= 1 and 0 < exact_tol <= tol; got {max_states}, {exact_tol}, {tol}"
        )
    T, pi, tau = process_vectors(process)
    if prior is not None:
        pi = np.asarray(prior, dtype=np.float64)
        pi = pi / (pi @ tau)
    V, S, _ = T.shape
    min_prob = min_probability(process)

    store = np.empty((64, S))  # beliefs found so far, rows 0..n-1 (grown by doubling)
    store[0] = pi
    n = 1
    depths = [0]
    nxt_rows: list[np.ndarray] = []
    prob_rows: list[np.ndarray] = []
    frontier = np.array([0])
    finite, reason, max_merge = True, "", 0.0
    level = 0
    while frontier.size:
        level += 1
        n_before = n
        B = store[frontier]  # [F, S]
        f_idx, x_idx, cand, pk = extend_beliefs(B, T, tau, min_prob)  # cand [K, S]
        P = np.zeros((frontier.size, V))  # [F, V]
        P[f_idx, x_idx] = pk
        nxt = np.full((frontier.size, V), -1, np.int64)
        dist, hit = _nearest(cand, store[:n], tol)
        matched = np.isfinite(dist)
        if matched.any():
            max_merge = max(max_merge, float(dist[matched].max()))
        assign = np.where(matched, hit, -1)
        new = np.flatnonzero(~matched)
        if new.size:
            # group the new candidates among themselves (beliefs within tol are one state)
            sub = cKDTree(cand[new])
            pairs = sub.query_pairs(tol, p=np.inf, output_type="ndarray")
            if pairs.size:
                d = np.max(np.abs(cand[new][pairs[:, 0]] - cand[new][pairs[:, 1]]), axis=1)
                max_merge = max(max_merge, float(d.max()))
                g = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(new.size, new.size))
                _, grp = connected_components(g, directed=False)
            else:
                grp = np.arange(new.size)
            first = {}
            for k, gi in zip(new, grp):
                if gi not in first:
                    if n == store.shape[0]:
                        store = np.concatenate([store, np.empty_like(store)])
                    first[gi] = n
                    store[n] = cand[k]
                    n += 1
                    depths.append(level)
                assign[k] = first[gi]
        nxt[f_idx, x_idx] = assign
        nxt_rows.append(nxt)
        prob_rows.append(P / P.sum(axis=1, keepdims=True))
        if max_merge > exact_tol:
            finite, reason = (
                False,
                (
                    f"distinct beliefs accumulate: two differ by {max_merge:.2g}, more than rounding "
                    f"({exact_tol:g}) but within the merge tolerance ({tol:g})"
                ),
            )
            break
        if n > max_states:
            finite, reason = False, f"more than {max_states} states after {level} levels"
            break
        frontier = np.arange(n_before, n)

    N_expanded = sum(r.shape[0] for r in nxt_rows)
    N = n
    beliefs = store[:n].copy()
    next_state = np.full((N, V), -1, np.int64)
    token_probs = np.zeros((N, V))
    next_state[:N_expanded] = np.concatenate(nxt_rows)
    token_probs[:N_expanded] = np.concatenate(prob_rows)
    if not finite and N_expanded < N:
        # states found but not expanded: fill their outgoing probabilities for plotting/inspection
        Bu = beliefs[N_expanded:]
        Pu = np.einsum("fi,xij,j->fx", Bu, T, tau)
        token_probs[N_expanded:] = np.where(Pu > min_prob, Pu, 0.0) / np.maximum(Pu.sum(axis=1, keepdims=True), 1e-300)
    return MSP(
        process=process,
        beliefs=beliefs,
        next_state=next_state,
        token_probs=token_probs,
        depth=np.array(depths, np.int64),
        finite=finite,
        reason=reason,
        tol=tol,
        max_merge_distance=max_merge,
    )


def _nearest(cand: np.ndarray, known: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Max-abs distance to, and index of, the nearest known belief for each candidate (inf when > tol)."""
    if cand.shape[0] * known.shape[0] <= 2_000_000:
        d = np.abs(cand[:, None, :] - known[None, :, :]).max(axis=2)  # [K, N]
        hit = d.argmin(axis=1)
        dist = d[np.arange(cand.shape[0]), hit]
        return np.where(dist <= tol, dist, np.inf), hit
    return cKDTree(known).query(cand, k=1, p=np.inf, distance_upper_bound=tol)


def finite_msp(process: HMM | GeneralizedHMM | MSP, **kwargs) -> MSP:
    """`build_msp` (or the given MSP), raising `InfiniteMSPError` if it looks infinite."""
    msp = process if isinstance(process, MSP) else build_msp(process, **kwargs)
    return msp.require_finite()


def _stationary_of_block(P: np.ndarray) -> np.ndarray:
    """Stationary distribution of an irreducible row-stochastic block."""
    n = P.shape[0]
    A = np.vstack([(P - np.eye(n)).T, np.ones((1, n))])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    x, *_ = np.linalg.lstsq(A, b, rcond=None)
    x = np.clip(x, 0.0, None)
    return x / x.sum()


def _refine(token_probs: np.ndarray, next_state: np.ndarray, decimals: int = 9) -> np.ndarray:
    """Coarsest partition with equal next-token probabilities and equal successor classes (Moore refinement)."""
    _, labels = np.unique(np.round(token_probs, decimals), axis=0, return_inverse=True)
    labels = labels.ravel().astype(np.int64)
    while True:
        succ = np.where(next_state >= 0, labels[np.maximum(next_state, 0)], -1)  # [N, V]
        sig = np.concatenate([labels[:, None], succ], axis=1)
        _, new = np.unique(sig, axis=0, return_inverse=True)
        new = new.ravel().astype(np.int64)
        if new.max() == labels.max():
            return new
        labels = new
