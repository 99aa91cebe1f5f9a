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


#: A tangent growth below this fraction of the Jacobian's norm is rounding of an exact 0 (a collapsed direction).
COLLAPSE_RTOL = 1e-12


@dataclass(frozen=True)
class LyapunovSpectrum:
    """Lyapunov exponents of the belief IFS (bits per token, descending) with standard errors over
    independent chains, the entropy rate used, and the Lyapunov dimension with its standard error."""

    exponents: np.ndarray  # [S - 1]
    stderr: np.ndarray  # [S - 1]
    entropy_rate: float
    entropy_rate_stderr: float  # 0 when the caller supplied an (exact enough) entropy rate
    dimension: float
    dimension_stderr: float  # jackknife over chains
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


def lyapunov_spectrum(process: HMM | GeneralizedHMM, *, n_steps: int = 1_000_000, n_chains: int = 512,
                      burn_in: int = 200, seed: int = 0, entropy_rate: float | None = None) -> LyapunovSpectrum:
    """Lyapunov spectrum of the belief maps along ``n_chains`` independent chaos-game trajectories.

    Each chain starts at the stationary prior, runs ``burn_in`` steps, then ``n_steps / n_chains``
    steps carrying an orthonormal frame of the (S-1)-dimensional tangent space. At each step the
    log growth of the frame (QR) is averaged over every possible next token, weighted by its
    probability, before one token is drawn to move on (a Rao-Blackwellised estimator: same mean
    as the sampled log growth, several times smaller variance). The exponent estimate is the mean
    over chains; its standard error is their standard deviation / sqrt(n_chains). The dimension
    uses ``entropy_rate`` when given (an accurate h_mu, e.g. the limit of the exact h(L)), else
    the mean next-token entropy along the same chains; its standard error is a jackknife over chains.
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
    BTB = np.einsum("ds,xst,et->xde", B, T, B)  # [V, d, d]: B T[x] B^T
    BAt = np.einsum("ds,xs->xd", B, T @ tau)  # [V, d]: B (T[x] tau)
    rows = np.arange(n_chains)
    steps_iter = belief_chaos_game(T, pi, tau, n_chains, burn_in + steps, np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        for t, (eta, p, x, U, Z) in enumerate(steps_iter):
            if t < burn_in:
                continue
            ent += entropy_bits(p)
            if d:
                z = np.where(Z > 0, Z, 1.0)  # [C, V]; impossible tokens get weight 0 below
                fB = np.einsum("cxs,ds->cxd", U, B) / z[:, :, None]  # [C, V, d]: next belief, projected
                # d f = (dv A / z)(I - tau f) for A = T[x]: in the basis B, K = (B A B^T - (B A tau)(f B^T)) / z
                K = (BTB[None] - BAt[None, :, :, None] * fB[:, :, None, :]) / z[:, :, None, None]  # [C, V, d, d]
                Y = np.einsum("cxed,cef->cxdf", K, Q)  # column form K^T Q, [C, V, d, d]
                Qn, r = _gram_schmidt(Y)  # r: [C, V, d], the positive diagonal of R
                # growth lost to cancellation (a map that collapses directions, e.g. a rank-one reset) is 0
                scale = ((np.linalg.norm(BTB, axis=(1, 2))[None] + np.linalg.norm(BAt, axis=1)[None]
                          * np.linalg.norm(fB, axis=2)) / z)[:, :, None]  # [C, V, 1]: size of K's two terms
                r = np.where(r <= COLLAPSE_RTOL * scale, 0.0, r)
                g = np.where(p[:, :, None] > 0, p[:, :, None] * np.log2(r), 0.0)  # -inf: a collapsed direction
                logs += g.sum(axis=1)
                Q = Qn[rows, x]
    per_chain = logs / steps  # [C, d]
    h_chain = ent / steps
    lam = per_chain.mean(axis=0)
    order = np.argsort(-lam)
    lam, per_chain = lam[order], per_chain[:, order]
    with np.errstate(invalid="ignore"):
        se = per_chain.std(axis=0, ddof=1) / np.sqrt(n_chains)
    if entropy_rate is None:
        h, h_se = float(h_chain.mean()), float(h_chain.std(ddof=1) / np.sqrt(n_chains))
    else:
        h, h_se = float(entropy_rate), 0.0
    dim = lyapunov_dimension(lam, max(h, 0.0))
    # jackknife over chains: each chain left out in turn
    tot_h = h_chain.sum()
    jack = np.empty(n_chains)
    for c in range(n_chains):
        lam_c = np.delete(per_chain, c, axis=0).mean(axis=0)  # (-inf stays -inf; no inf - inf)
        h_c = h if entropy_rate is not None else (tot_h - h_chain[c]) / (n_chains - 1)
        jack[c] = lyapunov_dimension(lam_c, max(h_c, 0.0))
    dim_se = float(np.sqrt((n_chains - 1) / n_chains * np.sum((jack - jack.mean()) ** 2))) if np.all(
        np.isfinite(jack)) else float("nan")
    return LyapunovSpectrum(exponents=lam, stderr=se, entropy_rate=h, entropy_rate_stderr=h_se,
                            dimension=dim, dimension_stderr=dim_se, n_steps=steps * n_chains, n_chains=n_chains)


def _gram_schmidt(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """QR of a batch of small square matrices [..., d, d] by modified Gram-Schmidt (vectorised over the
    batch, far faster than one LAPACK call per matrix): (Q, the diagonal of R, made >= 0)."""
    d = Y.shape[-1]
    Q = np.empty_like(Y)
    r = np.empty(Y.shape[:-1])
    for k in range(d):
        v = Y[..., :, k].copy()
        for j in range(k):
            v -= np.sum(Q[..., :, j] * v, axis=-1, keepdims=True) * Q[..., :, j]
        n = np.sqrt(np.sum(v * v, axis=-1))
        r[..., k] = n
        Q[..., :, k] = v / np.where(n > 0, n, 1.0)[..., None]
    return Q, r


def chaos_game(process: HMM | GeneralizedHMM, n_points: int, *, burn_in: int = 200, n_chains: int = 64,
               seed: int = 0) -> np.ndarray:
    """Beliefs along chaos-game trajectories (samples of the Blackwell measure), shape [n_points, S]."""
    T, pi, tau = process_vectors(process)
    n_chains = max(1, min(int(n_chains), int(n_points)))
    steps = -(-int(n_points) // n_chains)
    out = np.empty((steps, n_chains, pi.shape[0]))
    steps_iter = belief_chaos_game(T, pi, tau, n_chains, burn_in + steps, np.random.default_rng(seed))
    rows = np.arange(n_chains)
    for t, (_, _, x, U, Z) in enumerate(steps_iter):
        if t >= burn_in:
            out[t - burn_in] = U[rows, x] / Z[rows, x][:, None]
    return out.reshape(-1, pi.shape[0])[: int(n_points)]


def belief_chaos_game(T: np.ndarray, pi: np.ndarray, tau: np.ndarray, n_chains: int, n_steps: int,
                      rng: np.random.Generator) -> Iterator[tuple[np.ndarray, ...]]:
    """The belief dynamics ``eta -> eta T[x] / (eta T[x] tau)``, x drawn with probability ``eta T[x] tau``.

    Runs ``n_chains`` chains from ``pi`` for ``n_steps`` steps and yields, at each step, the beliefs
    eta [C, S], their next-token distributions p [C, V], the drawn tokens x [C], and the
    unnormalised updates for every token, U[c, x] = eta_c T[x] [C, V, S] with Z = U tau [C, V]
    (the next beliefs are U[c, x_c] / Z[c, x_c]). The one place the chaos game is written; its
    samples follow the Blackwell measure.
    """
    E = (T @ tau).T  # [S, V]
    eta = np.broadcast_to(pi, (n_chains, pi.shape[0])).copy()
    rows = np.arange(n_chains)
    for _ in range(n_steps):
        p = next_token_distribution(eta, E)
        x = _draw(p, rng)
        U = np.einsum("ci,xij->cxj", eta, T)  # [C, V, S]
        Z = np.einsum("cxj,j->cx", U, tau)  # [C, V]
        yield eta, p, x, U, Z
        eta = U[rows, x] / Z[rows, x][:, None]


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
