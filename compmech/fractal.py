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

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.linalg import null_space
from scipy.spatial import cKDTree

from compmech.information import entropy_bits, next_token_distribution
from hmm_processes import HMM, GeneralizedHMM, ProcessError, process_vectors

#: A tangent growth below this fraction of the Jacobian's norm is rounding of an exact 0 (a collapsed direction).
COLLAPSE_RTOL = 1e-12
#: A frame is aligned when it agrees with a frame started elsewhere, along the same tokens, to 2^-ALIGN_BITS (1e-3)
#: in every subspace spanned by its leading directions (up to a resolved gap): the log growth it still loses then is
#: about the angle squared (1e-6 bits in all), far below any standard error here. A belief has forgotten its start
#: after ALIGN_BITS / |lambda_1| steps.
ALIGN_BITS = 10.0
#: Shortest and longest burn-in (steps). The shortest is the belief burn-in used before the frame was burnt in too.
MIN_BURN_IN = 200
MAX_BURN_IN = 5000
#: The pilot: chains, and steps (each carries two frames; the exponents come from its second half).
PILOT_CHAINS = 16
PILOT_STEPS = 1000
#: The burn-in is this multiple of the longest alignment time among the pilot's chains (which sample its tail).
ALIGN_SAFETY = 2
#: Two successive exponents are told apart when their difference, chain by chain, has a mean above this many of
#: its own standard deviations (each chain orders them). Equal exponents never pass: the frame's Gram-Schmidt
#: order puts the larger finite-time growth first, so their per-chain difference is a folded normal, whose
#: mean is 1.3 of its standard deviations.
RESOLVED_SPREADS = 3.0
#: `lyapunov_spectrum` with ``n_chains=None``: chains at least as long as their burn-in, 16 to 512 of them.
MIN_CHAINS = 16
MAX_CHAINS = 512


@dataclass(frozen=True)
class LyapunovSpectrum:
    """Lyapunov exponents of the belief IFS (bits per token, descending) with standard errors over
    independent chains, the entropy rate used, and the Lyapunov dimension with its standard error.

    ``burn_in`` is the number of steps every chain ran (belief and tangent frame) before its averages
    began, and ``aligned_after`` the longest time (steps) a pilot chain's frame took to align (see
    `_aligning_burn_in`); None when the caller gave the burn-in, or the pilot never saw alignment.
    ``clusters`` are runs of successive exponents (indices) that the chains do not tell apart (see
    `RESOLVED_SPREADS`): each member is reported as the cluster's mean, whose error is its standard error
    plus half the spread of the members' own estimates."""

    exponents: np.ndarray  # [S - 1]
    stderr: np.ndarray  # [S - 1]
    entropy_rate: float
    entropy_rate_stderr: float  # 0 when the caller supplied an (exact enough) entropy rate
    dimension: float
    dimension_stderr: float  # jackknife over chains
    n_steps: int
    n_chains: int
    burn_in: int = 0
    aligned_after: int | None = None
    clusters: tuple[tuple[int, ...], ...] = ()


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


def lyapunov_spectrum(
    process: HMM | GeneralizedHMM,
    *,
    n_steps: int = 1_000_000,
    n_chains: int | None = None,
    burn_in: int | None = None,
    seed: int = 0,
    entropy_rate: float | None = None,
) -> LyapunovSpectrum:
    """Lyapunov spectrum of the belief maps along independent chaos-game trajectories.

    Each chain starts at the stationary prior and runs ``burn_in`` steps carrying an orthonormal frame
    of the (S-1)-dimensional tangent space (QR at every step, along the drawn tokens), so that both the
    belief and the frame have settled before anything is averaged: a frame that starts unaligned loses
    log growth in its leading directions until it aligns, a bias of order 1 / (steps per chain) that no
    number of chains removes. By default the burn-in is measured (`_aligning_burn_in`): twice the longest
    time a pilot chain's frame took to agree with a frame started elsewhere, and at least the time a belief
    takes to forget its start (within `MIN_BURN_IN` .. `MAX_BURN_IN`). Then ``n_steps / n_chains`` steps
    follow, where the log growth of the frame (QR) is averaged over every possible next token, weighted by
    its probability, before one token is drawn to move on (a Rao-Blackwellised estimator: same mean as the
    sampled log growth, several times smaller variance). The exponent estimate is the mean over chains;
    its standard error is their standard deviation / sqrt(n_chains), honest because the chains are
    independent and each starts aligned.
    ``n_chains=None`` makes each chain at least as long as its burn-in (between `MIN_CHAINS` and
    `MAX_CHAINS` chains). Where exponents are equal, the Gram-Schmidt frame splits them by finite-time
    fluctuations (the first above, the second below their common value, by about their per-chain spread,
    whatever the number of chains), while their sum stays unbiased: successive exponents that the chains
    do not order (`RESOLVED_SPREADS`) form a cluster, each reported as the cluster's mean with its error
    widened by half the members' spread (which covers a true gap too: the split is at least the gap).
    The dimension uses ``entropy_rate`` when given (an accurate h_mu, e.g. the limit of the exact h(L)),
    else the mean next-token entropy along the same chains; its standard error is a jackknife over chains.
    """
    T, pi, tau = process_vectors(process)
    if (n_chains is not None and int(n_chains) < 2) or (burn_in is not None and burn_in < 0):
        raise ProcessError(f"lyapunov_spectrum: need n_chains >= 2 and burn_in >= 0; got {n_chains}, {burn_in}")
    rng = np.random.default_rng(seed)
    aligned = None
    if burn_in is None:
        burn_in, aligned = _aligning_burn_in(T, pi, tau, rng)
    if n_chains is None:
        n_chains = int(np.clip(int(n_steps) // max(burn_in, 1), MIN_CHAINS, MAX_CHAINS))
    n_chains = int(n_chains)
    steps = max(1, int(n_steps) // n_chains)
    logs, ent = _tangent_chains(T, pi, tau, n_chains, burn_in, steps, rng)
    per_chain = logs / steps  # [C, d]
    h_chain = ent / steps
    lam = per_chain.mean(axis=0)
    order = np.argsort(-lam)
    lam, per_chain = lam[order], per_chain[:, order]
    clusters = _clusters(per_chain)
    with np.errstate(invalid="ignore"):
        se = per_chain.std(axis=0, ddof=1) / np.sqrt(n_chains)
        for c in clusters:
            idx = list(c)
            mean_c = per_chain[:, idx].mean(axis=1)  # [C]: the cluster's mean, chain by chain
            spread = (lam[idx].max() - lam[idx].min()) / 2
            per_chain[:, idx] = mean_c[:, None]
            lam[idx] = mean_c.mean()
            se[idx] = mean_c.std(ddof=1) / np.sqrt(n_chains) + spread
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
    dim_se = (
        float(np.sqrt((n_chains - 1) / n_chains * np.sum((jack - jack.mean()) ** 2)))
        if np.all(np.isfinite(jack))
        else float("nan")
    )
    return LyapunovSpectrum(
        exponents=lam,
        stderr=se,
        entropy_rate=h,
        entropy_rate_stderr=h_se,
        dimension=dim,
        dimension_stderr=dim_se,
        n_steps=steps * n_chains,
        n_chains=n_chains,
        burn_in=int(burn_in),
        aligned_after=aligned,
        clusters=clusters,
    )


def _clusters(per_chain: np.ndarray) -> tuple[tuple[int, ...], ...]:
    """Runs of successive exponents (columns of ``per_chain`` [C, d], in descending order of their means) whose
    per-chain differences have a mean below `RESOLVED_SPREADS` of their standard deviations."""
    d = per_chain.shape[1]
    out: list[tuple[int, ...]] = []
    run = [0]
    for k in range(d - 1):
        with np.errstate(invalid="ignore"):  # -inf - -inf: a pair of collapsed directions, never tied
            diff = per_chain[:, k] - per_chain[:, k + 1]
            tied = bool(np.all(np.isfinite(diff)) and diff.mean() <= RESOLVED_SPREADS * diff.std(ddof=1))
        if tied:
            run.append(k + 1)
        else:
            if len(run) > 1:
                out.append(tuple(run))
            run = [k + 1]
    if d and len(run) > 1:
        out.append(tuple(run))
    return tuple(out)


def _aligning_burn_in(
    T: np.ndarray, pi: np.ndarray, tau: np.ndarray, rng: np.random.Generator
) -> tuple[int, int | None]:
    """(burn-in steps, the pilot's longest alignment time or None), by a coupling test on a pilot.

    `PILOT_CHAINS` chaos games run `PILOT_STEPS` steps, each carrying two tangent frames along the same tokens:
    the identity (what the real chains start from) and a random one. A chain's frame has aligned once, for every
    k at a gap the pilot resolves (`RESOLVED_SPREADS`, from the exponents of its second half), the span of its
    first k directions agrees with the other frame's to 2^-ALIGN_BITS from then on. (The rate is not simply the
    gap lambda_k - lambda_(k+1): in a product, for one, a direction across the factors waits for each factor's
    own frame, and the times vary from chain to chain.) Pairs of exponents the pilot does not resolve are left
    unaligned: each of them is biased by less than their gap, and they are reported as a cluster. The burn-in
    is `ALIGN_SAFETY` times the slowest pilot chain's alignment time, and at least ``ALIGN_BITS / |lambda_1|``
    (a belief forgets its start at the rate |lambda_1|), within `MIN_BURN_IN` .. `MAX_BURN_IN`; `MAX_BURN_IN`
    when some pilot chain never aligned."""
    d = T.shape[1] - 1
    if d == 0:
        return MIN_BURN_IN, None
    C, n = PILOT_CHAINS, PILOT_STEPS
    B = null_space(tau[None, :]).T  # [d, S]
    BTB = np.einsum("ds,xst,et->xde", B, T, B)  # [V, d, d]
    BAt = np.einsum("ds,xs->xd", B, T @ tau)  # [V, d]
    scale_BTB, scale_BAt = np.linalg.norm(BTB, axis=(1, 2)), np.linalg.norm(BAt, axis=1)
    Qa = np.broadcast_to(np.eye(d), (C, d, d)).copy()
    Qb = _gram_schmidt(rng.standard_normal((C, d, d)))[0]
    rows = np.arange(C)
    logs = np.zeros((C, d))
    apart = np.zeros((n, C, max(d - 1, 1)))  # [t, C, k]: distance of the frames' first k + 1 directions' spans
    with np.errstate(divide="ignore", invalid="ignore"):
        for t, (_eta, _p, x, U, Z) in enumerate(belief_chaos_game(T, pi, tau, C, n, rng)):
            z = Z[rows, x]
            fB = (U[rows, x] @ B.T) / z[:, None]  # [C, d]
            K = (BTB[x] - BAt[x][:, :, None] * fB[:, None, :]) / z[:, None, None]  # [C, d, d]
            Qa, r = _gram_schmidt(np.einsum("ced,cef->cdf", K, Qa))
            Qb = _gram_schmidt(np.einsum("ced,cef->cdf", K, Qb))[0]
            if t >= n // 2:
                scale = ((scale_BTB[x] + scale_BAt[x] * np.linalg.norm(fB, axis=1)) / z)[:, None]
                logs += np.log2(np.where(r <= COLLAPSE_RTOL * scale, 0.0, r))
            # |Ub - Ua Ua^T Ub|_F^2 = (k + 1) - |Ua^T Ub|_F^2 for the first k + 1 columns (Ua, Ub orthonormal)
            inner = np.einsum("cdi,cdj->cij", Qa, Qb) ** 2  # [C, d, d]
            lead = np.diagonal(inner.cumsum(axis=1).cumsum(axis=2), axis1=1, axis2=2)[:, : d - 1]  # [C, d - 1]
            apart[t, :, : d - 1] = np.sqrt(np.clip(np.arange(1, d) - lead, 0.0, None))
        lam = logs / (n - n // 2)  # [C, d], slot order
        lam1 = float(lam[:, 0].mean())
        resolved = []
        for k in range(d - 1):
            diff = lam[:, k] - lam[:, k + 1]
            if np.all(np.isfinite(diff)) and diff.mean() > RESOLVED_SPREADS * diff.std(ddof=1):
                resolved.append(k)
    belief = ALIGN_BITS / -lam1 if np.isfinite(lam1) and lam1 < 0 else 0.0
    if not resolved:
        return int(np.clip(np.ceil(belief), MIN_BURN_IN, MAX_BURN_IN)), None
    bad = np.max(apart[:, :, resolved], axis=2) > 2.0**-ALIGN_BITS  # [t, C]
    if bad[-1].any():
        return MAX_BURN_IN, None
    last_bad = np.where(bad.any(axis=0), n - 1 - np.argmax(bad[::-1], axis=0), -1)  # [C]
    aligned = int(last_bad.max()) + 1
    return int(np.clip(np.ceil(max(ALIGN_SAFETY * aligned, belief)), MIN_BURN_IN, MAX_BURN_IN)), aligned


def _tangent_chains(
    T: np.ndarray, pi: np.ndarray, tau: np.ndarray, n_chains: int, burn_in: int, steps: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Chaos games carrying an orthonormal tangent frame: (sum of log2 growth per frame direction [C, d], sum of
    next-token entropies [C]) over the ``steps`` steps after ``burn_in``.

    During the burn-in the frame follows the drawn tokens only (one QR per chain and step); a direction that a
    token collapsed is replaced by a fresh one at its end, so the averages start from a full, settled frame.
    After it, the log growth is averaged over every next token, weighted by its probability."""
    V, S, _ = T.shape
    d = S - 1
    B = null_space(tau[None, :]).T  # [d, S], orthonormal rows spanning {v : v tau = 0}
    Q = np.broadcast_to(np.eye(d), (n_chains, d, d)).copy()
    logs = np.zeros((n_chains, d))
    ent = np.zeros(n_chains)
    BTB = np.einsum("ds,xst,et->xde", B, T, B)  # [V, d, d]: B T[x] B^T
    BAt = np.einsum("ds,xs->xd", B, T @ tau)  # [V, d]: B (T[x] tau)
    norm_BTB, norm_BAt = np.linalg.norm(BTB, axis=(1, 2)), np.linalg.norm(BAt, axis=1)  # [V], [V]
    rows = np.arange(n_chains)
    steps_iter = belief_chaos_game(T, pi, tau, n_chains, burn_in + steps, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        for t, (_eta, p, x, U, Z) in enumerate(steps_iter):
            if t >= burn_in:
                ent += entropy_bits(p)
            if not d:
                continue
            if t == burn_in:
                Q = _complete_frame(Q, rng)
            if t < burn_in:  # the drawn token only: K [C, d, d] for each chain's own x
                z = Z[rows, x]  # [C], > 0 for a drawn token
                fB = (U[rows, x] @ B.T) / z[:, None]  # [C, d]
                K = (BTB[x] - BAt[x][:, :, None] * fB[:, None, :]) / z[:, None, None]
                Q = _gram_schmidt(np.einsum("ced,cef->cdf", K, Q))[0]
                continue
            z = np.where(Z > 0, Z, 1.0)  # [C, V]; impossible tokens get weight 0 below
            fB = np.einsum("cxs,ds->cxd", U, B) / z[:, :, None]  # [C, V, d]: next belief, projected
            # d f = (dv A / z)(I - tau f) for A = T[x]: in the basis B, K = (B A B^T - (B A tau)(f B^T)) / z
            K = (BTB[None] - BAt[None, :, :, None] * fB[:, :, None, :]) / z[:, :, None, None]  # [C, V, d, d]
            Y = np.einsum("cxed,cef->cxdf", K, Q)  # column form K^T Q, [C, V, d, d]
            Qn, r = _gram_schmidt(Y)  # r: [C, V, d], the positive diagonal of R
            # growth lost to cancellation (a map that collapses directions, e.g. a rank-one reset) is 0
            scale = ((norm_BTB[None] + norm_BAt[None] * np.linalg.norm(fB, axis=2)) / z)[:, :, None]  # [C, V, 1]
            r = np.where(r <= COLLAPSE_RTOL * scale, 0.0, r)
            g = np.where(p[:, :, None] > 0, p[:, :, None] * np.log2(r), 0.0)  # -inf: a collapsed direction
            logs += g.sum(axis=1)
            Q = Qn[rows, x]
    return logs, ent


def _complete_frame(Q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Frames [C, d, d] with every direction of length < 1/2 (collapsed exactly to 0 by a token) replaced by a
    random one orthogonal to the directions kept (which stay as they were, in their slots)."""
    bad = np.linalg.norm(Q, axis=1) < 0.5  # [C, d] columns
    if not bad.any():
        return Q
    Q = Q.copy()
    for c in np.flatnonzero(bad.any(axis=1)):
        order = np.concatenate([np.flatnonzero(~bad[c]), np.flatnonzero(bad[c])])  # kept directions first
        F = Q[c][:, order]
        F[:, bad[c][order]] = rng.standard_normal((Q.shape[1], int(bad[c].sum())))
        Q[c][:, order] = _gram_schmidt(F)[0]
    return Q


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


def chaos_game(
    process: HMM | GeneralizedHMM, n_points: int, *, burn_in: int = 200, n_chains: int = 64, seed: int = 0
) -> np.ndarray:
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


def belief_chaos_game(
    T: np.ndarray, pi: np.ndarray, tau: np.ndarray, n_chains: int, n_steps: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, ...]]:
    """The belief dynamics ``eta -> eta T[x] / (eta T[x] tau)``, x drawn with probability ``eta T[x] tau``.

    Runs ``n_chains`` chains from ``pi`` for ``n_steps`` steps and yields, at each step, the beliefs
    eta [C, S], their next-token distributions p [C, V], the drawn tokens x [C], and the
    unnormalised updates for every token, ``U[c, x] = eta_c T[x]`` [C, V, S] with ``Z = U tau`` [C, V]
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


def correlation_dimension(
    points: np.ndarray,
    *,
    n_radii: int = 16,
    r_min: float | None = None,
    r_max: float | None = None,
    max_points: int = 4000,
    seed: int = 0,
) -> DimensionEstimate:
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


def box_counting_dimension(
    points: np.ndarray, *, n_scales: int = 12, min_boxes: int = 4, max_fraction: float = 0.2
) -> DimensionEstimate:
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
