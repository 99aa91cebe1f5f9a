"""Fractal geometry of belief sets: Lyapunov spectrum and Lyapunov dimension of the belief maps,
and box-counting / correlation dimensions of any point cloud.

The belief update on token x is the map ``f_x(eta) = eta T[x] / (eta T[x] tau)``, applied with
probability ``eta T[x] tau``: a place-dependent iterated function system (IFS) on the
(S-1)-dimensional affine set ``{eta : eta tau = 1}`` (the simplex for an HMM). Its Lyapunov
exponents are the average log growth rates of tangent vectors along a typical (chaos-game)
trajectory, computed with the standard QR method. Jurgens & Crutchfield, "Divergent predictive
states: The statistical complexity dimension of stationary, ergodic hidden Markov processes",
Chaos 31, 083114 (2021), bound the information dimension of the mixed-state (Blackwell) measure by
the Lyapunov (Kaplan-Yorke) dimension, with the entropy rate in the role of the expanding rate:

    D_LY = k + (h_mu + lambda_1 + ... + lambda_k) / |lambda_(k+1)|,

where lambda_1 >= lambda_2 >= ... and k is the largest index with h_mu + lambda_1 + ... + lambda_k >= 0
(D_LY = S - 1 if that holds for all exponents). Exponents and h_mu are in bits per token here
(the ratio does not depend on the base).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
from scipy.linalg import null_space
from scipy.spatial import cKDTree

from compmech.information import entropy_bits, next_token_distribution
from hmm_processes import HMM, GeneralizedHMM, ProcessError, process_vectors


@dataclass(frozen=True)
class LyapunovSpectrum:
    """Lyapunov exponents of the belief IFS (bits per token, descending), with standard errors over
    independent chains, the entropy rate measured on the same trajectories, and the Lyapunov dimension."""

    exponents: np.ndarray  # [S - 1]
    stderr: np.ndarray  # [S - 1]
    entropy_rate: float
    entropy_rate_stderr: float
    dimension: float
    n_steps: int
    n_chains: int


def lyapunov_dimension(exponents: np.ndarray, entropy_rate: float) -> float:
    """Kaplan-Yorke-type Lyapunov dimension ``k + (h + sum_{i<=k} lambda_i) / |lambda_{k+1}|`` (see module doc).

    ``exponents`` and ``entropy_rate`` must be in the same units (e.g. bits per token). An exponent
    of -inf (a map that collapses a direction) stops the sum there.
    """
    lam = np.sort(np.asarray(exponents, dtype=np.float64))[::-1]
    cum = float(entropy_rate)
    if cum < 0:
        raise ValueError(f"lyapunov_dimension: the entropy rate must be >= 0; got {entropy_rate}")
    for k, l in enumerate(lam):
        if cum + l >= 0:
            cum += l
        else:
            return float(k + cum / abs(l)) if np.isfinite(l) else float(k)
    return float(lam.size)


def lyapunov_spectrum(process: HMM | GeneralizedHMM, *, n_steps: int = 200_000, n_chains: int = 32,
                      burn_in: int = 500, seed: int = 0) -> LyapunovSpectrum:
    """Lyapunov spectrum of the belief maps along ``n_chains`` independent chaos-game trajectories.

    Each chain starts at the stationary prior, runs ``burn_in`` steps, then ``n_steps / n_chains``
    steps during which tangent vectors (an orthonormal frame of the (S-1)-dimensional tangent
    space, re-orthonormalised by QR every step) accumulate log growth. The exponent estimate is the
    mean over chains; its standard error is their standard deviation / sqrt(n_chains).
    """
    T, pi, tau = process_vectors(process)
    V, S, _ = T.shape
    n_chains = int(n_chains)
    steps = max(1, int(n_steps) // n_chains)
    if n_chains < 2 or burn_in < 0:
        raise ProcessError(f"lyapunov_spectrum: need n_chains >= 2 and burn_in >= 0; got {n_chains}, {burn_in}")
    d = S - 1
    B = null_space(tau[None, :]).T  # [d, S], orthonormal rows spanning {v : v tau = 0}
    Q = np.broadcast_to(np.eye(d), (n_chains, d, d)).copy()
    logs = np.zeros((n_chains, d))
    ent = np.zeros(n_chains)
    steps_iter = belief_chaos_game(T, pi, tau, n_chains, burn_in + steps, np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        for t, (eta, p, x, u, z) in enumerate(steps_iter):
            if t < burn_in:
                continue
            ent += entropy_bits(p)
            if d:
                A = T[x]  # [C, S, S]
                f = u / z[:, None]
                # d f = (dv A / z)(I - tau f): J = (A - (A tau) f) / z acting on row vectors
                J = (A - (A @ tau)[:, :, None] * f[:, None, :]) / z[:, None, None]
                K = B @ J @ B.T  # [C, d, d], row-vector action c -> c K
                Y = np.swapaxes(K, 1, 2) @ Q  # column form
                Q, R = np.linalg.qr(Y)
                diag = np.abs(np.diagonal(R, axis1=1, axis2=2))
                logs += np.log2(diag)
                sign = np.sign(np.diagonal(R, axis1=1, axis2=2))
                Q = Q * np.where(sign == 0, 1.0, sign)[:, None, :]
    per_chain = logs / steps  # [C, d]
    h_chain = ent / steps
    lam = per_chain.mean(axis=0)
    order = np.argsort(-lam)
    lam = lam[order]
    with np.errstate(invalid="ignore"):
        se = per_chain.std(axis=0, ddof=1)[order] / np.sqrt(n_chains)
    h = float(h_chain.mean())
    h_se = float(h_chain.std(ddof=1) / np.sqrt(n_chains))
    return LyapunovSpectrum(exponents=lam, stderr=se, entropy_rate=h, entropy_rate_stderr=h_se,
                            dimension=lyapunov_dimension(lam, max(h, 0.0)), n_steps=steps * n_chains,
                            n_chains=n_chains)


def chaos_game(process: HMM | GeneralizedHMM, n_points: int, *, burn_in: int = 200, n_chains: int = 64,
               seed: int = 0) -> np.ndarray:
    """Beliefs along chaos-game trajectories (samples of the Blackwell measure), shape [n_points, S]."""
    T, pi, tau = process_vectors(process)
    n_chains = max(1, min(int(n_chains), int(n_points)))
    steps = -(-int(n_points) // n_chains)
    out = np.empty((steps, n_chains, pi.shape[0]))
    steps_iter = belief_chaos_game(T, pi, tau, n_chains, burn_in + steps, np.random.default_rng(seed))
    for t, (_, _, _, u, z) in enumerate(steps_iter):
        if t >= burn_in:
            out[t - burn_in] = u / z[:, None]
    return out.reshape(-1, pi.shape[0])[: int(n_points)]


def belief_chaos_game(T: np.ndarray, pi: np.ndarray, tau: np.ndarray, n_chains: int, n_steps: int,
                      rng: np.random.Generator) -> Iterator[tuple[np.ndarray, ...]]:
    """The belief dynamics ``eta -> eta T[x] / (eta T[x] tau)``, x drawn with probability ``eta T[x] tau``.

    Runs ``n_chains`` chains from ``pi`` for ``n_steps`` steps and yields, at each step, the beliefs
    eta [C, S], their next-token distributions p [C, V], the drawn tokens x [C], and the
    unnormalised update u = eta T[x] [C, S] with z = u tau [C] (the next beliefs are u / z).
    The one place the chaos game is written; its samples follow the Blackwell measure.
    """
    E = (T @ tau).T  # [S, V]
    eta = np.broadcast_to(pi, (n_chains, pi.shape[0])).copy()
    for _ in range(n_steps):
        p = next_token_distribution(eta, E)
        x = _draw(p, rng)
        u = np.einsum("ci,cij->cj", eta, T[x])
        z = u @ tau
        yield eta, p, x, u, z
        eta = u / z[:, None]


def _draw(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of ``p`` [C, V] (rows sum to 1)."""
    u = rng.random(p.shape[0])
    x = (u[:, None] >= np.cumsum(p, axis=1)).sum(axis=1)
    x = np.minimum(x, p.shape[1] - 1)
    bad = p[np.arange(p.shape[0]), x] <= 0  # rounding at the top of the cdf
    if np.any(bad):
        x[bad] = p.shape[1] - 1 - np.argmax(p[bad][:, ::-1] > 0, axis=1)
    return x


# --- dimensions of point clouds ---------------------------------------------------------------------


@dataclass(frozen=True)
class DimensionEstimate:
    """A fractal-dimension estimate: the slope of log(count) against log(scale) over the fitted range."""

    dimension: float
    scales: np.ndarray  # radii or box sides used in the fit
    counts: np.ndarray  # correlation sums or occupied boxes at those scales
    stderr: float  # standard error of the fitted slope (regression error only)


def correlation_dimension(points: np.ndarray, *, n_radii: int = 16, r_min: float | None = None,
                          r_max: float | None = None, max_points: int = 4000, seed: int = 0) -> DimensionEstimate:
    """Grassberger-Procaccia correlation dimension: slope of log C(r) vs log r.

    ``C(r)`` is the fraction of point pairs closer than r (Euclidean). By default r ranges
    geometrically between the 0.2% and 5% quantiles of pairwise distances (a scaling range that
    avoids both sampling noise at small r and the edges of the set at large r). At most ``max_points``
    points (a random subset) are used.
    """
    X = _points(points, max_points, seed)
    n = X.shape[0]
    tree = cKDTree(X)
    if r_min is None or r_max is None:
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, n, (2, 20000))
        dist = np.linalg.norm(X[i] - X[j], axis=1)
        dist = dist[dist > 0]
        if dist.size == 0:
            raise ValueError("correlation_dimension: all points coincide")
        r_min = float(np.quantile(dist, 0.002)) if r_min is None else r_min
        r_max = float(np.quantile(dist, 0.05)) if r_max is None else r_max
    if not 0 < r_min < r_max:
        raise ValueError(f"correlation_dimension: need 0 < r_min < r_max; got {r_min}, {r_max}")
    radii = np.geomspace(r_min, r_max, n_radii)
    pairs = (tree.count_neighbors(tree, radii) - n) / (n * (n - 1))  # ordered pairs, self pairs removed
    keep = pairs > 0
    return _fit(radii[keep], pairs[keep], sign=1.0)


def box_counting_dimension(points: np.ndarray, *, n_scales: int = 12, min_boxes: int = 4,
                           max_fraction: float = 0.2) -> DimensionEstimate:
    """Box-counting dimension: slope of log N(eps) vs log(1/eps), N = number of occupied boxes of side eps.

    Box sides are ``size / 2^k`` (size = the cloud's largest extent). Only scales where the
    count is at least ``min_boxes`` and at most ``max_fraction`` of the number of points enter the
    fit: finer boxes are limited by the sample, not the set.
    """
    X = _points(points, None, 0)
    lo = X.min(axis=0)
    size = float((X.max(axis=0) - lo).max())
    if size == 0:
        raise ValueError("box_counting_dimension: all points coincide")
    eps = size / 2.0 ** np.arange(1, n_scales + 1)
    counts = np.array([np.unique(np.floor((X - lo) / e).astype(np.int64), axis=0).shape[0] for e in eps])
    keep = (counts >= min_boxes) & (counts <= max_fraction * X.shape[0])
    if keep.sum() < 3:
        raise ValueError("box_counting_dimension: fewer than 3 usable scales; pass more points or change n_scales")
    return _fit(eps[keep], counts[keep].astype(np.float64), sign=-1.0)


def _points(points: np.ndarray, max_points: int | None, seed: int) -> np.ndarray:
    X = np.asarray(points, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] < 10 or not np.all(np.isfinite(X)):
        raise ValueError(f"need a finite point cloud of shape [N >= 10, d]; got shape {X.shape}")
    if max_points is not None and X.shape[0] > max_points:
        X = X[np.random.default_rng(seed).choice(X.shape[0], max_points, replace=False)]
    return X


def _fit(scales: np.ndarray, counts: np.ndarray, sign: float) -> DimensionEstimate:
    x, y = np.log(scales), np.log(counts)
    A = np.vstack([x, np.ones_like(x)]).T
    coef, res, *_ = np.linalg.lstsq(A, y, rcond=None)
    slope = coef[0]
    dof = max(1, x.size - 2)
    resid = y - A @ coef
    se = float(np.sqrt(resid @ resid / dof / np.sum((x - x.mean()) ** 2)))
    return DimensionEstimate(dimension=float(sign * slope), scales=scales, counts=counts, stderr=se)
