"""The `HMM` type: a hidden Markov process as a labelled transition tensor, validated on creation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hmm_processes.errors import ProcessError

#: Tolerance for "rows sum to 1" and related checks on user-supplied matrices.
STOCHASTIC_ATOL = 1e-9
#: Looser tolerance for start distributions handed to sample / mixed_states (np.isclose's default
#: at 1, so float32 vectors pass).
LOOSE_SUM_ATOL = 1e-5 + 1e-8


@dataclass(frozen=True, eq=False)
class HMM:
    """A hidden Markov process: ``T[x, i, j] = P(emit x, go to j | in i)``.

    ``T`` has shape ``[V, S, S]`` (tokens, states, states), is non-negative and finite, and
    ``T.sum(0)`` is row-stochastic. It is stored as a read-only float64 array.
    ``name`` and ``params`` record where the process came from (for configs and reports).

    ``prior`` (optional, shape [S]) fixes the distribution over states at time 0. It must be a
    stationary probability vector (``prior @ T.sum(0) == prior``); it is needed when the state
    chain has several recurrent classes (e.g. a non-ergodic `mixture`), where the stationary
    distribution is not unique. When given, `stationary_distribution` returns it, so sampling and
    enumeration start from it.
    """

    T: np.ndarray  # [V, S, S]
    name: str = "hmm"
    params: dict[str, Any] = field(default_factory=dict)
    state_names: tuple[str, ...] | None = None
    token_names: tuple[str, ...] | None = None
    prior: np.ndarray | None = None  # [S], optional explicit stationary distribution

    def __post_init__(self) -> None:
        T = validate_transition_tensor(self.T, what=self.name)
        object.__setattr__(self, "T", T)
        V, S, _ = T.shape
        check_names(self.state_names, self.token_names, V, S, self.name)
        if self.prior is not None:
            object.__setattr__(self, "prior", _validate_prior(self.prior, T, self.name))
        else:
            check_unique_stationary(T.sum(axis=0), self.name)

    @property
    def vocab_size(self) -> int:
        """Number of tokens V."""
        return int(self.T.shape[0])

    @property
    def num_states(self) -> int:
        """Number of hidden states S."""
        return int(self.T.shape[1])

    @property
    def state_transition_matrix(self) -> np.ndarray:
        """``M[i, j] = P(go to j | in i)``, summed over tokens. Shape [S, S]."""
        return self.T.sum(axis=0)

    @property
    def emission_matrix(self) -> np.ndarray:
        """``E[i, x] = P(emit x | in i)``. Shape [S, V]."""
        return self.T.sum(axis=2).T

    @property
    def stationary_distribution(self) -> np.ndarray:
        """The stationary distribution pi of the state chain (pi M = pi), shape [S].

        This is ``prior`` when one was given (needed for non-ergodic chains), else computed from M.
        """
        if self.prior is not None:
            return self.prior.copy()
        return stationary_distribution(self.state_transition_matrix)

    def next_token_probs(self, beliefs: np.ndarray) -> np.ndarray:
        """Next-token distribution for beliefs ``[..., S]``: ``P(x) = sum_i b_i E[i, x]``, shape ``[..., V]``."""
        return np.asarray(beliefs, dtype=np.float64) @ self.emission_matrix

    def __repr__(self) -> str:
        p = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"HMM({self.name}({p}), tokens={self.vocab_size}, states={self.num_states})"


def validate_transition_tensor(T: Any, what: str = "process") -> np.ndarray:
    """Check that ``T`` is a valid ``[V, S, S]`` labelled transition tensor; return it as float64.

    Raises `ProcessError` naming the first problem found and how to fix it.
    """
    try:
        arr = np.array(T, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ProcessError(f"{what}: T must be a numeric array of shape [V, S, S] ({exc})") from None
    if arr.ndim != 3:
        raise ProcessError(f"{what}: T must have shape [V, S, S] (tokens, states, states); got shape {arr.shape}")
    V, S, S2 = arr.shape
    if S != S2:
        raise ProcessError(f"{what}: T[x] must be square [S, S]; got shape {arr.shape}")
    if V < 1 or S < 1:
        raise ProcessError(f"{what}: T needs at least one token and one state; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        x, i, j = np.argwhere(~np.isfinite(arr))[0]
        raise ProcessError(f"{what}: T[{x}, {i}, {j}] is {arr[x, i, j]}; all entries must be finite")
    if np.any(arr < 0):
        x, i, j = np.argwhere(arr < 0)[0]
        raise ProcessError(f"{what}: T[{x}, {i}, {j}] = {arr[x, i, j]:g} is negative; probabilities must be >= 0")
    rows = arr.sum(axis=(0, 2))  # [S]
    bad = np.flatnonzero(np.abs(rows - 1.0) > STOCHASTIC_ATOL)
    if bad.size:
        i = int(bad[0])
        raise ProcessError(
            f"{what}: the probabilities out of state {i} (sum over x, j of T[x, {i}, j]) add to "
            f"{rows[i]:.12g}, not 1; each state's outgoing emission-and-transition probabilities must sum to 1"
        )
    arr.setflags(write=False)
    return arr


def check_probability_vector(
    value: Any, size: int, what: str, *, unit: str = "state", atol: float = STOCHASTIC_ATOL
) -> np.ndarray:
    """``value`` as a float64 probability vector of length ``size`` (finite, >= 0, summing to 1 within ``atol``).

    Raises `ProcessError` naming ``what`` (e.g. "mixture: weights"), the offending entry, and what
    each entry stands for (``unit``: one entry per state, per component, ...).
    """
    try:
        p = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProcessError(f"{what} must be a numeric vector of {size} probabilities; got {value!r}") from None
    if p.shape != (size,):
        raise ProcessError(f"{what} must have one entry per {unit} ({size}); got shape {p.shape}")
    bad = ~(np.isfinite(p) & (p >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ProcessError(f"{what}[{i}] = {p[i]!r}; entries must be finite and >= 0")
    if abs(p.sum() - 1.0) > atol:
        raise ProcessError(f"{what} sums to {p.sum():.12g}; the entries must sum to 1")
    return p


def _validate_prior(prior: Any, T: np.ndarray, what: str) -> np.ndarray:
    """Check that ``prior`` is a stationary probability vector for ``T``; return it read-only float64."""
    p = check_probability_vector(prior, T.shape[1], f"{what}: prior")
    drift = np.abs(p @ T.sum(axis=0) - p)
    if drift.max() > 1e-9:
        i = int(np.argmax(drift))
        raise ProcessError(
            f"{what}: prior is not stationary (prior @ T.sum(0) differs from prior by {drift[i]:.3g} at "
            f"state {i}); pass a stationary distribution, or use sample(..., initial=...) for a non-stationary start"
        )
    p.setflags(write=False)
    return p


def closed_classes(M: np.ndarray) -> list[np.ndarray]:
    """The closed communicating classes of the chain with transition matrix ``M`` [S, S] (each a sorted
    array of states): the sets a chain can enter and never leave. One class = one stationary distribution."""
    S = M.shape[0]
    R = (M > 0) | np.eye(S, dtype=bool)  # reachability, closed under squaring
    while True:
        R2 = (R.astype(np.float64) @ R.astype(np.float64)) > 0
        if np.array_equal(R2, R):
            break
        R = R2
    recurrent = np.all(~R | R.T, axis=1)  # every state reachable from i reaches i back
    classes, seen = [], np.zeros(S, bool)
    for i in np.flatnonzero(recurrent):
        if not seen[i]:
            members = np.flatnonzero(R[i] & R[:, i])
            seen[members] = True
            classes.append(members)
    return classes


def check_unique_stationary(M: np.ndarray, what: str) -> None:
    """`ProcessError` unless the chain ``M`` has one closed class (so one stationary distribution)."""
    if M.shape[0] > 4096:
        return  # too large to check cheaply; such chains come from compositions that pass a prior
    classes = closed_classes(M)
    if len(classes) > 1:
        shown = "; ".join(
            "{" + ", ".join(str(int(i)) for i in c[:6]) + (", ..." if c.size > 6 else "") + "}" for c in classes[:4]
        )
        raise ProcessError(
            f"{what}: the state chain has {len(classes)} closed classes of states ({shown}), so its stationary "
            "distribution is not unique (a non-ergodic process); add a prior (a stationary distribution over "
            "the states, e.g. prior = [...] in a spec file) to say how often each part occurs"
        )


def check_names(state_names: Any, token_names: Any, V: int, S: int, what: str) -> None:
    """State and token names, where given, must have one entry per state and per token."""
    if state_names is not None and len(state_names) != S:
        raise ProcessError(f"{what}: state_names has {len(state_names)} entries but T has {S} states")
    if token_names is not None and len(token_names) != V:
        raise ProcessError(f"{what}: token_names has {len(token_names)} entries but T has {V} tokens")


def stationary_distribution(M: np.ndarray) -> np.ndarray:
    """Stationary distribution of a row-stochastic matrix ``M`` [S, S]: the left eigenvector for eigenvalue 1.

    For a chain with several recurrent classes this returns one stationary distribution (the
    null-space solution of least norm, made non-negative and normalised); named processes are ergodic.
    """
    S = M.shape[0]
    # Solve pi (M - I) = 0 with sum(pi) = 1 as one least-squares system.
    A = np.vstack([(M - np.eye(S)).T, np.ones((1, S))])  # [S + 1, S]
    b = np.zeros(S + 1)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(A, b, rcond=None)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()
