"""Named processes: plain functions returning an `HMM`, each with documented, defaulted parameters."""

from __future__ import annotations

import numpy as np

from hmm_processes.errors import ProcessError
from hmm_processes.generalized import GeneralizedHMM
from hmm_processes.hmm import HMM

#: Largest number of states a named process family may be asked for (bounds memory: T has V S^2 entries).
MAX_NAMED_STATES = 2048


def check_number(name: str, value: object, process: str) -> float:
    """``value`` as a finite float; `ProcessError` naming the parameter for bools, strings and other non-numbers
    (``True`` is not 1.0 and ``"0.05"`` is not 0.05 here: a config or --param that says so is a mistake)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ProcessError(
            f"{process}: parameter {name} must be a number; got {value!r} ({type(value).__name__})"
            + ("; write it without quotes" if isinstance(value, str) else "")
        )
    try:
        v = float(value)
    except OverflowError:
        raise ProcessError(f"{process}: parameter {name} = {value!r} is too large for a float") from None
    if not np.isfinite(v):
        raise ProcessError(f"{process}: parameter {name} must be finite; got {value!r}")
    return v


def check_probability(
    name: str, value: float, process: str, *, open_low: bool = False, open_high: bool = False
) -> float:
    """Return ``value`` as float if it is a probability in [0, 1] (optionally open at either end)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ProcessError(
            f"{process}: parameter {name} must be a number in [0, 1]; got {value!r} "
            f"({type(value).__name__})" + ("; write it without quotes" if isinstance(value, str) else "")
        )
    try:
        v = float(value)
    except OverflowError:
        raise ProcessError(f"{process}: parameter {name} must be in [0, 1]; got {value!r}") from None
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
    return HMM(
        T, name="mess3", params={"x": x, "alpha": alpha}, state_names=("A", "B", "C"), token_names=("0", "1", "2")
    )


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


# --- the zoo ---------------------------------------------------------------------------------------
# Every function below returns a fresh process; its docstring gives the definition and its source.
# Convention: T[x, i, j] = P(emit x, go to j | in i).


def rrxor(p1: float = 0.5, p2: float = 0.5) -> HMM:
    """Random-Random-XOR (Crutchfield & Feldman 2003; Shai et al. 2024): two random bits, then their XOR.

    States S, 0, 1, T, F; tokens 0, 1. S emits 0 (prob p1) -> state 0, or 1 -> state 1; state 0
    emits 0 (p2) -> F or 1 -> T; state 1 emits 0 (p2) -> T or 1 -> F; T emits 1 -> S; F emits
    0 -> S. Stationary [2, 1, 1, 1, 1] / 6. Its MSP has 36 states. At p1 = p2 = 1/2:
    h_mu = 2/3, C_mu = E = log2(3) + 2/3.
    """
    p1 = check_probability("p1", p1, "rrxor")
    p2 = check_probability("p2", p2, "rrxor")
    S, Z, O, Tr, F = range(5)
    T = np.zeros((2, 5, 5))
    T[0, S, Z], T[1, S, O] = p1, 1.0 - p1
    T[0, Z, F], T[1, Z, Tr] = p2, 1.0 - p2
    T[0, O, Tr], T[1, O, F] = p2, 1.0 - p2
    T[1, Tr, S] = 1.0
    T[0, F, S] = 1.0
    return HMM(T, name="rrxor", params={"p1": p1, "p2": p2}, state_names=("S", "0", "1", "T", "F"))


def z1r(p: float = 0.5) -> HMM:
    """Zero-One-Random (Z1R) process (Crutchfield & Feldman 2003): 0, 1, then a random bit, repeated.

    States A, B, C; tokens 0, 1. A emits 0 -> B; B emits 1 -> C; C emits 1 (prob p) or 0, -> A.
    At p = 1/2: h_mu = 1/3, C_mu = E = log2(3).
    """
    p = check_probability("p", p, "z1r")
    T = np.zeros((2, 3, 3))
    T[0, 0, 1] = 1.0
    T[1, 1, 2] = 1.0
    T[1, 2, 0] = p
    T[0, 2, 0] = 1.0 - p
    return HMM(T, name="z1r", params={"p": p}, state_names=("A", "B", "C"))


def coin(p: float = 0.5) -> HMM:
    """A biased coin: i.i.d. tokens, 1 with probability ``p`` and 0 otherwise; one state.

    The simplest process: h_mu = H(p), C_mu = E = 0 (a standard baseline, e.g. Crutchfield & Feldman 2003).
    """
    p = check_probability("p", p, "coin")
    T = np.array([[[1.0 - p]], [[p]]])
    return HMM(T, name="coin", params={"p": p}, state_names=("A",))


def sns(p: float = 0.5, q: float = 0.5) -> HMM:
    """Simple nonunifilar source (Marzen & Crutchfield 2017, "Nearly maximally predictive features
    and their dimensions", Phys. Rev. E 95, 051301, Fig. 2).

    States A, B; tokens 0, 1. A emits 0 and stays (prob 1 - p) or emits 0 and goes to B (p);
    B emits 0 and stays (1 - q) or emits 1 and returns to A (q). A emits 0 on both edges, so the
    presentation is nonunifilar; the process is a renewal process (1s separate i.i.d. runs of 0s)
    whose causal states ("number of 0s since the last 1") are countably infinite.
    """
    p = check_probability("p", p, "sns", open_low=True)
    q = check_probability("q", q, "sns", open_low=True)
    T = np.zeros((2, 2, 2))
    T[0, 0, 0], T[0, 0, 1] = 1.0 - p, p
    T[0, 1, 1], T[1, 1, 0] = 1.0 - q, q
    return HMM(T, name="sns", params={"p": p, "q": q}, state_names=("A", "B"))


def nond() -> HMM:
    """The "nond" nonunifilar process of Marzen & Crutchfield 2017 (Phys. Rev. E 95, 051301), as
    written in Shai et al.'s epsilon-transformers code.

    States A, B, C; tokens 0, 1. A emits 0 -> C; B emits 1 -> A or B (1/2 each); C emits 1 -> A,
    B or C (1/3 each). No parameters. Its mixed-state presentation is countably infinite.
    """
    T = np.zeros((2, 3, 3))
    T[0, 0, 2] = 1.0
    T[1, 1, 0] = T[1, 1, 1] = 0.5
    T[1, 2, :] = 1.0 / 3.0
    return HMM(T, name="nond", params={}, state_names=("A", "B", "C"))


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def days_of_week() -> HMM:
    """The "days of the week" process (as defined in the Astera ``simplexity`` library): 7 states, 11 tokens.

    States are the days Mon..Sun. Tokens: the 7 day names, then "tomorrow", "yesterday",
    "weekend", "weekday". From day d, weights (normalised by their total 15): emit the name of the
    next day and go there (5); emit any other day's name and go to that day (1 each, 6 in all);
    emit "tomorrow" and go to the next day (1); "yesterday" and go to the previous day (1);
    "weekend" and go to Sat or Sun (1/2 each); "weekday" and go to one of Mon..Fri (1/5 each).
    No parameters. Nonunifilar (weekend/weekday), with a finite MSP.
    """
    T = np.zeros((11, 7, 7))
    tmrw, yest, wknd, wkdy = 7, 8, 9, 10
    for d in range(7):
        nxt, prv = (d + 1) % 7, (d - 1) % 7
        for e in range(7):
            T[e, d, e] = 5.0 if e == nxt else 1.0
        T[tmrw, d, nxt] = 1.0
        T[yest, d, prv] = 1.0
        T[wknd, d, 5:7] = 1.0 / 2.0
        T[wkdy, d, 0:5] = 1.0 / 5.0
    T /= T.sum(axis=(0, 2), keepdims=True)
    return HMM(
        T,
        name="days_of_week",
        params={},
        state_names=_DAYS,
        token_names=_DAYS + ("tomorrow", "yesterday", "weekend", "weekday"),
    )


def leaky_rrxor(p1: float = 0.5, p2: float = 0.5, epsilon: float = 0.05) -> HMM:
    """RRXOR with leaks (as in the ``simplexity`` library): ``(1 - epsilon) T_rrxor + epsilon / 10``.

    Every (token, next state) pair out of every state gets extra weight epsilon / 10 (2 tokens x 5
    states = 10 pairs, so rows still sum to 1). For epsilon > 0 every word is allowed and the MSP
    is infinite; epsilon = 0 is `rrxor`.
    """
    epsilon = check_probability("epsilon", epsilon, "leaky_rrxor")
    base = rrxor(p1, p2)
    T = (1.0 - epsilon) * base.T + epsilon / 10.0
    return HMM(
        T,
        name="leaky_rrxor",
        params={"p1": base.params["p1"], "p2": base.params["p2"], "epsilon": epsilon},
        state_names=base.state_names,
    )


def matching_parens(p: float = 0.5, q: float = 0.5, max_depth: int = 4) -> HMM:
    """Balanced parentheses of bounded nesting depth, with a filler token "." between balanced groups.

    States are the current depth 0..max_depth; tokens ".", "(", ")". At depth 0: emit "(" and go to
    depth 1 (prob p) or emit "." and stay (1 - p). At depth 1..max_depth-1: "(" deeper (q) or ")"
    back up (1 - q). At max_depth: ")" (prob 1). So every prefix is a prefix of a balanced string
    whose nesting never exceeds ``max_depth``. Unifilar, so its recurrent MSP is this machine.

    Where it comes from: this project's variant of the bounded Dyck language. It is not the
    ``matching_parens`` of the ``simplexity`` library, which has only the tokens "(" and ")", one
    opening probability per depth, and always opens at depth 0; with p = 1 this process is that one
    with opening probabilities (1, q, ..., q, 0) (and a "." token that never occurs).
    """
    p = check_probability("p", p, "matching_parens", open_low=True)
    q = check_probability("q", q, "matching_parens")
    if (
        isinstance(max_depth, bool)
        or not isinstance(max_depth, (int, np.integer))
        or not (1 <= max_depth < MAX_NAMED_STATES)
    ):
        raise ProcessError(
            f"matching_parens: parameter max_depth must be an integer in 1..{MAX_NAMED_STATES - 1}; got {max_depth!r}"
        )
    n = int(max_depth)
    T = np.zeros((3, n + 1, n + 1))
    T[0, 0, 0], T[1, 0, 1] = 1.0 - p, p
    for d in range(1, n):
        T[1, d, d + 1] = q
        T[2, d, d - 1] = 1.0 - q
    T[2, n, n - 1] = 1.0
    return HMM(
        T,
        name="matching_parens",
        params={"p": p, "q": q, "max_depth": n},
        state_names=tuple(str(d) for d in range(n + 1)),
        token_names=(".", "(", ")"),
    )


def mr_name(p: float = 0.4, q: float = 0.25) -> HMM:
    """The "Mr. Dursley / Mr. Wonka" process of Riechers, Bigelow, Alt & Shai 2025 ("Next-token pretraining implies
    in-context learning"), as the ``simplexity`` library defines it (``mr_name`` in
    simplexity/generative_processes/transition_matrices.py at commit 657aff777cd7d7a6edfadd1f846bbf62028caeec).

    Tokens = states = ("Mr.", "Something", "Blah", "name"), and the token emitted on an edge names the state it goes
    to. From Mr.: emit "name" and go to name (probability 1). From name: emit "Something" or "Blah" (1/2 each) and
    go there. From Something: "Mr." (q) -> Mr., "Something" (1 - p - q) -> Something, "Blah" (p) -> Blah; from Blah
    likewise with Something and Blah swapped: "Mr." (q), "Something" (p), "Blah" (1 - p - q). Needs p, q >= 0 and
    p + q <= 1; the stationary distribution over (Mr., Something, Blah, name) is (2q, 1, 1, 2q) / (2 + 4q), i.e.
    (1, 2, 2, 1) / 6 at the authors' q = 1/4 (their test). Unifilar; alone it is a Markov chain on its tokens.
    Mixed with a copy whose "name" is another token (`hmm_processes.mixture` with ``vocab_maps``, as the authors'
    dursley_wonka config does) the first name identifies the component, and a predictor that copies it predicts
    every later name: an induction head.
    """
    p = check_probability("p", p, "mr_name")
    q = check_probability("q", q, "mr_name")
    if p + q > 1.0 + 1e-12:
        raise ProcessError(f"mr_name: need p + q <= 1 (the exits of Something and Blah); got p + q = {p + q!r}")
    mr, something, blah, name = 0, 1, 2, 3
    T = np.zeros((4, 4, 4))  # [V, S, S]: T[x, i, j], emit x on the way i -> j
    T[name, mr, name] = 1.0
    T[something, name, something] = T[blah, name, blah] = 0.5
    stay = max(0.0, 1.0 - p - q)
    T[mr, something, mr], T[something, something, something], T[blah, something, blah] = q, stay, p
    T[mr, blah, mr], T[something, blah, something], T[blah, blah, blah] = q, p, stay
    names = ("Mr.", "Something", "Blah", "name")
    return HMM(T, name="mr_name", params={"p": p, "q": q}, state_names=names, token_names=names)


# --- generalized HMMs (quasi-probability presentations) -----------------------------------------


def fanizza(alpha: float = 2000.0, lamb: float = 0.49) -> GeneralizedHMM:
    """A GHMM with no finite quantum (hence no finite HMM) presentation: Fanizza, Lumbreras & Winter,
    "Quantum theory in finite dimension cannot explain every general process with finite memory",
    Commun. Math. Phys. 405 (2024); matrices as used by Riechers, Elliott & Shai 2025
    (arXiv:2507.07432) and the ``simplexity`` library (defaults alpha = 2000, lamb = 0.49 there).

    4 dimensions, tokens a = 0, b = 1. ``T[b] = lamb * diag(0, 1, R(alpha))`` with R a rotation by
    angle alpha (radians); ``T[a] = w pi0^T`` (rank one, a "reset"), with w and pi0 chosen so that
    ``T.sum(0) @ 1 = 1``. 0 < lamb < 1 damps the rotation.
    """
    alpha, lamb = check_number("alpha", alpha, "fanizza"), check_number("lamb", lamb, "fanizza")
    if not (np.isfinite(alpha) and 0.0 < lamb < 1.0):
        raise ProcessError(f"fanizza: need a finite angle alpha and 0 < lamb < 1; got alpha={alpha!r}, lamb={lamb!r}")
    c, s = np.cos(alpha), np.sin(alpha)
    den = 1.0 - 2.0 * lamb * c + lamb**2
    a_l = (1.0 - lamb * c + lamb * s) / den
    b_l = (1.0 - lamb * c - lamb * s) / den
    pi0 = np.array([1.0 - (2.0 / (1.0 - lamb) - a_l - b_l) / 4.0, 1.0 / (2.0 * (1.0 - lamb)), -a_l / 4.0, -b_l / 4.0])
    w = np.array([1.0, 1.0 - lamb, 1.0 + lamb * (s - c), 1.0 - lamb * (s + c)])
    Ta = np.outer(w, pi0)
    Tb = lamb * np.array([[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, c, -s], [0, 0, s, c]], dtype=np.float64)
    return GeneralizedHMM(
        np.stack([Ta, Tb]), name="fanizza", params={"alpha": alpha, "lamb": lamb}, token_names=("a", "b")
    )


def tom_quantum(alpha: float = 1.0, beta: float = 4.3) -> GeneralizedHMM:
    """A qubit measured repeatedly with a 4-outcome instrument, written as a 3-dimensional GHMM
    (Riechers, Elliott & Shai 2025, "Neural networks leverage nominally quantum and post-quantum
    representations", arXiv:2507.07432; matrices as in the ``simplexity`` library).

    With g = 1 / (4 (alpha^2 + beta^2)), c = 1/4, m = (alpha^2 - beta^2) g, o = 2 alpha beta g:
    T[0], T[1] = [[c, 0, +-o], [0, m, 0], [+-o, 0, c]] and T[2], T[3] = [[c, +-o, 0], [+-o, c, 0],
    [0, 0, m]]. The vector is (1, Bloch coordinates), so tau = pi = (1, 0, 0). Only beta / alpha
    matters. The default (1, 4.3) is the first setting trained on by the paper's authors; its MSP is
    infinite and its beliefs fill a disc of the Bloch ball. alpha = beta (o = 1/4, m = 0) is
    degenerate: a finite 5-state MSP and no quantum geometry.
    """
    alpha, beta = check_number("alpha", alpha, "tom_quantum"), check_number("beta", beta, "tom_quantum")
    if alpha == 0 and beta == 0:
        raise ProcessError("tom_quantum: alpha and beta must not both be 0")
    # only the ratio matters: scale so the larger is 1 (alpha**2 cannot overflow)
    scale = max(abs(alpha), abs(beta))
    a, b = alpha / scale, beta / scale
    g = 1.0 / (4.0 * (a**2 + b**2))
    c, m, o = 0.25, (a**2 - b**2) * g, 2.0 * a * b * g
    T = np.array(
        [
            [[c, 0, o], [0, m, 0], [o, 0, c]],
            [[c, 0, -o], [0, m, 0], [-o, 0, c]],
            [[c, o, 0], [o, c, 0], [0, 0, m]],
            [[c, -o, 0], [-o, c, 0], [0, 0, m]],
        ]
    )
    return GeneralizedHMM(T, name="tom_quantum", params={"alpha": alpha, "beta": beta})


def post_quantum(log_alpha: float = 1.0, beta: float = 0.5) -> GeneralizedHMM:
    """A "post-quantum" 3-dimensional GHMM (Riechers, Elliott & Shai 2025, arXiv:2507.07432;
    matrices as in the ``simplexity`` library): its belief geometry is not a quantum state space.

    With alpha = exp(log_alpha) and D(v) = [[v, 0, 0], [0, 1, 0], [0, ln v, 1]]:
    T[0] = (1, 1, 0)^T (1, -1, -1), T[1] = D(alpha), T[2] = D(beta), all divided by the spectral
    radius of their sum. Requires alpha > 1 > beta > 0, alpha + beta != 2, and ln(alpha)/ln(beta)
    irrational (checked against fractions with denominator <= 12).
    """
    from fractions import Fraction

    log_alpha, beta = check_number("log_alpha", log_alpha, "post_quantum"), check_number("beta", beta, "post_quantum")
    if not 0.0 < log_alpha < 700.0:
        raise ProcessError(
            f"post_quantum: need 0 < log_alpha < 700 (alpha = exp(log_alpha) > 1 and finite); got {log_alpha!r}"
        )
    alpha = float(np.exp(log_alpha))
    if not (np.isfinite(alpha) and alpha > 1.0 > beta > 0.0):
        raise ProcessError(
            f"post_quantum: need alpha = exp(log_alpha) > 1 > beta > 0; got alpha={alpha!r}, beta={beta!r}"
        )
    if abs(alpha + beta - 2.0) < 1e-12:
        raise ProcessError("post_quantum: need alpha + beta != 2")
    ratio = np.log(alpha) / np.log(beta)
    if abs(ratio - float(Fraction(ratio).limit_denominator(12))) < 1e-9:
        raise ProcessError(f"post_quantum: ln(alpha)/ln(beta) = {ratio:.6g} must be irrational")

    def D(v: float) -> np.ndarray:
        return np.array([[v, 0, 0], [0, 1, 0], [0, np.log(v), 1]], dtype=np.float64)

    T = np.stack([np.outer([1.0, 1.0, 0.0], [1.0, -1.0, -1.0]), D(alpha), D(beta)])
    T /= np.max(np.abs(np.linalg.eigvals(T.sum(axis=0))))
    return GeneralizedHMM(T, name="post_quantum", params={"log_alpha": log_alpha, "beta": beta})
