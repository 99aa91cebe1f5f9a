"""Helpers for rule 1 and 2 of tests/conftest.py's docstring: tolerances between float32 computations derived
from rounding bounds or measured spreads, never read off one machine. Test files import it as ``tolerances``
(tests/ is on sys.path through its conftest.py)."""

from __future__ import annotations

import numpy as np

F32_U = 2.0**-24
"""Unit roundoff of float32 (half of np.finfo(np.float32).eps): one rounding moves a value by at most u |x|."""

F32_ELEMENTWISE_ULPS = 8
"""Ulps (of the result) allowed per elementwise transcendental (exp, log, tanh, logistic, rsqrt). XLA's CPU
polynomial approximations are accurate to 1-3 ulps; 8 leaves room for another backend's."""

SPREAD_FACTOR = 10.0
"""Rule 2: how many times the measured spread of a legitimate reordering a difference under test may be. Two
reorderings of one training differ by amounts of one order (their ratios were 0.2-4 over five XLA CPU settings
and four seeds, tests/predictive_models/conftest.py); 10 leaves room, and stays far below another seed's
difference (that margin is asserted where it is used)."""


def gamma32(n: int | np.ndarray) -> float | np.ndarray:
    """Higham's gamma_n for float32: a sum of n terms is within gamma_n * sum |terms| of the exact sum."""
    nu = np.asarray(n, np.float64) * F32_U
    if np.any(nu >= 0.5):
        raise ValueError(f"gamma32: n = {n} terms is too many for a float32 bound (n u must stay below 1/2).")
    return nu / (1.0 - nu)


def f32_sum_bound(n_terms: int, scale: float | np.ndarray) -> float | np.ndarray:
    """The most two float32 evaluations of one sum of ``n_terms`` terms (in any two orders) can differ.

    2 gamma_n * scale, with ``scale`` the sum of the terms' absolute values (a scalar or an array, one per
    sum). Rule 1 of this module's docstring."""
    return 2.0 * gamma32(n_terms) * np.asarray(scale, np.float64)


def assert_within(actual, desired, bound, what: str = "") -> None:
    """|actual - desired| <= bound elementwise (bound broadcast); the message names the worst element.

    The bound comes from rule 1 or 2 of this module's docstring, never from a number seen on one machine."""
    a, d = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    b = np.broadcast_to(np.asarray(bound, np.float64), np.broadcast_shapes(a.shape, d.shape))
    diff = np.abs(a - d)
    if a.size and not np.all(diff <= b):
        ratio = np.where(b > 0, diff / np.where(b > 0, b, 1.0), np.where(diff > 0, np.inf, 0.0))
        i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        raise AssertionError(
            f"{what or 'values'}: |actual - desired| exceeds its bound at {tuple(map(int, i))}: "
            f"{diff[i]:.3g} > {b[i]:.3g} (actual {a[i]!r}, desired {d[i]!r}; "
            f"{int(np.sum(diff > b))} of {diff.size} elements over)"
        )


def f32_softmax_sum_bound(n: int) -> float:
    """How far from 1 a float32 softmax row over n entries can sum (its terms added exactly).

    A perturbation of the scores moves the row along the simplex, so only the softmax's own rounding counts: the
    exp of s_j - max (F32_ELEMENTWISE_ULPS ulps, and u |s_j - max| from the subtraction), the sum of n terms and the
    division: entry j is off by p_j (e_j + sum_k p_k e_k + gamma_n + u), e_j = ELEM + u |s_j - max|. Summed over
    j that is 2 sum_j p_j e_j + gamma_n + u, and sum_j p_j |s_j - max| = sum_j p_j log(Z / p_j) <= 2 log n
    (Z <= n), so the bound needs no scores: 2 (ELEM + 2 u log n) + gamma_n + u."""
    elem = F32_ELEMENTWISE_ULPS * F32_U
    return 2 * (elem + 2 * F32_U * float(np.log(n))) + float(gamma32(n)) + F32_U
