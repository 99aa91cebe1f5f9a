"""Named processes: plain functions returning an `HMM`, each with documented, defaulted parameters."""

from __future__ import annotations

import numpy as np

from hmm_processes.errors import ProcessError
from hmm_processes.hmm import HMM


def check_probability(name: str, value: float, process: str, *, open_low: bool = False,
                      open_high: bool = False) -> float:
    """Return ``value`` as float if it is a probability in [0, 1] (optionally open at either end)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ProcessError(f"{process}: parameter {name} must be a number in [0, 1]; got {value!r}") from None
    lo_ok = v > 0 if open_low else v >= 0
    hi_ok = v < 1 if open_high else v <= 1
    if not (np.isfinite(v) and lo_ok and hi_ok):
        lo = "(0" if open_low else "[0"
        hi = "1)" if open_high else "1]"
        raise ProcessError(f"{process}: parameter {name} must be in {lo}, {hi}; got {value!r}")
    return v


def mess3(x: float = 0.05, alpha: float = 0.85) -> HMM:
    """Mess3 (Marzen & Crutchfield; Shai et al. 2024): 3 states, 3 tokens, an infinite (fractal) MSP.

    With beta = (1 - alpha) / 2 and y = 1 - 2x:
    ``T[k, i, j] = (alpha if j == k else beta) * (y if i == j else x)``.
    ``x`` is the probability of jumping to each other state, ``alpha`` how strongly a state's own
    token is emitted on arrival. The paper uses x = 0.05, alpha = 0.85.
    """
    x = check_probability("x", x, "mess3")
    alpha = check_probability("alpha", alpha, "mess3")
    if x > 0.5:
        raise ProcessError(f"mess3: parameter x must be in [0, 0.5] (two jumps of probability x each); got {x!r}")
    beta = (1.0 - alpha) / 2.0
    y = 1.0 - 2.0 * x
    emit = np.full((3, 3), beta)  # [token k, arrival state j]
    np.fill_diagonal(emit, alpha)
    move = np.full((3, 3), x)  # [state i, state j]
    np.fill_diagonal(move, y)
    T = emit[:, None, :] * move[None, :, :]  # [V, S, S]
    return HMM(T, name="mess3", params={"x": x, "alpha": alpha},
               state_names=("A", "B", "C"), token_names=("0", "1", "2"))


def golden_mean(p: float = 0.5) -> HMM:
    """Golden Mean process: binary sequences with no two 1s in a row.

    States A, B. A emits 0 (prob 1 - p) and stays, or emits 1 (prob p) and goes to B; B emits 0 -> A.
    Unifilar; its epsilon-machine has these two states. Textbook values at p = 1/2:
    h_mu = 2/3, C_mu = H(2/3, 1/3), E = log2(3) - 4/3 (Crutchfield & Feldman 2003).
    """
    p = check_probability("p", p, "golden_mean", open_low=True, open_high=True)
    T = np.zeros((2, 2, 2))
    T[0, 0, 0] = 1.0 - p
    T[1, 0, 1] = p
    T[0, 1, 0] = 1.0
    return HMM(T, name="golden_mean", params={"p": p}, state_names=("A", "B"))


def even(p: float = 0.5) -> HMM:
    """Even process: 1s come in blocks of even length (Weiss 1973; Crutchfield & Feldman 2003).

    States A, B. A emits 0 (prob 1 - p) and stays, or emits 1 (prob p) and goes to B; B emits 1 -> A.
    Infinite Markov order but a finite (2-state) epsilon-machine. At p = 1/2: h_mu = 2/3, C_mu = E = H(2/3, 1/3).
    """
    p = check_probability("p", p, "even", open_low=True, open_high=True)
    T = np.zeros((2, 2, 2))
    T[0, 0, 0] = 1.0 - p
    T[1, 0, 1] = p
    T[1, 1, 0] = 1.0
    return HMM(T, name="even", params={"p": p}, state_names=("A", "B"))
