"""Finding a belief simplex in activations without the answer key: PCA, then a simplex fitted to the points.

A network that holds the belief of a k+1-state process linearly holds it as an affine image of the probability
simplex: a k-dimensional simplex in activation space. Without the true beliefs one can still look for it:

1. **PCA** of the centred activations ``X [N, d]``; the affine dimension ``k`` is the smallest number of
   components whose cumulative share of the variance reaches ``threshold`` (default 0.95), or given.
2. **A simplex with k + 1 vertices** in those k PCA coordinates, by one of two documented methods:

   - ``"mves"`` (default): a **minimum-volume enclosing simplex**, in the SISAL form (Bioucas-Dias 2009): the
     simplex is the affine map ``y -> a = (1 - 1'(By + b), By + b)`` to barycentric coordinates; its volume is
     proportional to ``1 / |det B|``, so we minimise ``-log|det B| + lam * mean_i sum_j max(-a_ij, 0)^2`` (a
     squared hinge on negative barycentric coordinates) by L-BFGS, raising ``lam`` over a few rounds until the
     points are (almost) inside. Started from the successive projection algorithm's k + 1 extreme points (SPA,
     Gillis & Vavasis 2014), expanded about their centroid until every point is inside. Only the points' convex
     hull constrains it, so it is fitted on the hull's vertices (Qhull, k <= 3), or above that on extreme points
     plus every point left outside, refitted until none is (an active set). Why: when the points
     reach near the vertices (beliefs near certainty about a state), the smallest enclosing simplex is the true
     one; it needs no vertex to be a data point.
   - ``"archetypes"``: **archetypal analysis** (Cutler & Breiman 1994) by projected gradient in the PCHA form
     (Mørup & Hansen 2012): ``Y ≈ S C Y`` with the rows of S (barycentric coordinates) and of C (each vertex a
     convex combination of points) on the simplex. Why: robust to a few outliers (a vertex is an average of
     points), but its vertices lie *inside* the points' hull, so it shrinks the simplex when the points do not
     reach the vertices.

Failure modes, stated plainly:

- **noise**: the enclosing simplex encloses the noise too (each facet moves out by about the largest noise
  projection, ~ sigma sqrt(2 ln N)); archetypes average it away but sit inside.
- **points that do not reach the vertices** (a belief set that never comes near certainty, e.g. Mess3's fractal
  at alpha = 0.85): the minimum-volume simplex is then the smallest simplex around the points' hull, not the
  probability simplex's image; archetypes shrink further. Either is still an affine image of *a* simplex, so
  the affine map to the true beliefs (`compare_with_beliefs`) is unaffected, but the vertices are not states.
- **the chosen k**: a network also holds things other than the belief (the position, the token), so the
  explained-variance threshold may keep more (or fewer) components than the belief's k; the fit then has
  ``k + 1`` vertices, not the number of states. A belief set that is not a simplex at all (a generalized HMM's
  disc or ball of beliefs) is still forced into a simplex.
- **the affine map hides the fit**: barycentric coordinates are an invertible affine function of the k PCA
  coordinates, so the held-out R² of the best affine map from them to the beliefs equals that of a linear
  regression from the k PCA coordinates: it measures "is the belief affine in the top-k PCA subspace", not the
  vertices. `compare_with_beliefs` therefore also scores the barycentric coordinates *directly* against the
  beliefs (best vertex permutation, no fitted map) and the fitted vertices against the true simplex's image.

NumPy and SciPy only; arrays in, typed records out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.spatial

from probes._checks import ProbeInputError, as_float_array, require_finite
from probes.evaluation import CONTEXT_TEST_FRACTION, evaluate_probe

METHODS = ("mves", "archetypes")
#: Default share of the variance the PCA keeps (the affine dimension k).
VARIANCE_THRESHOLD = 0.95
#: A point is "outside" the fitted simplex when a barycentric coordinate is below minus this.
OUTSIDE_TOLERANCE = 1e-3
#: The hinge weights of the MVES rounds (each a warm-started L-BFGS solve).
MVES_PENALTIES = (1e1, 1e2, 1e3, 1e4, 1e5, 1e6)
#: Above this dimension ``method="mves"`` fits archetypes instead (and says so in `SimplexFit.method`): a k = 26
#: MVES took 3 minutes and still left 2% of the points outside.
MVES_MAX_DIMENSION = 12
#: L-BFGS iterations per round (a round that stops here reports ``converged = False``).
MVES_MAX_ITERATIONS = 500


@dataclass(frozen=True, eq=False)
class Pca:
    """The principal components of a set of rows, largest first."""

    mean: np.ndarray  # [d] the rows' mean
    components: np.ndarray  # [d, D'] orthonormal directions, D' = min(N, d)
    variances: np.ndarray  # [D'] the covariance's eigenvalues, descending
    explained: np.ndarray  # [D'] share of the variance of each component
    cumulative: np.ndarray  # [D'] cumulative share

    def project(self, X: np.ndarray, k: int) -> np.ndarray:
        """[N, k] the coordinates of rows X [N, d] on the first k components."""
        return (np.asarray(X, np.float64) - self.mean) @ self.components[:, :k]


@dataclass(frozen=True, eq=False)
class SimplexFit:
    """A simplex fitted to a set of points in their top-k PCA subspace."""

    method: str  # "mves" or "archetypes"
    k: int  # the affine dimension: k + 1 vertices
    threshold: float | None  # the variance share that chose k (None: k was given)
    pca: Pca
    vertices: np.ndarray  # [k + 1, k] the vertices in PCA coordinates
    vertices_ambient: np.ndarray  # [k + 1, d] the vertices in the activations' space
    barycentric: np.ndarray  # [N, k + 1] each point's barycentric coordinates (rows sum to 1)
    kept_variance: float  # share of the variance in the k-dimensional subspace (cumulative[k - 1])
    outside_fraction: float  # share of points with a barycentric coordinate < -OUTSIDE_TOLERANCE
    min_barycentric: float  # the most negative barycentric coordinate (how far out the worst point is)
    reconstruction_r2: float  # 1 - ||Y - A V||^2 / ||Y - mean||^2 in PCA coordinates (clipping to the simplex)
    volume: float  # the simplex's volume in PCA coordinates
    converged: bool  # the optimiser's last round converged

    @property
    def n_vertices(self) -> int:
        return self.k + 1


def pca(X: np.ndarray) -> Pca:
    """Principal components of rows X [N, d] (float64 eigendecomposition of the covariance; uniform weights)."""
    X = as_float_array("X", X, 2)
    require_finite("X", X)
    if X.shape[0] < 2:
        raise ProbeInputError(f"X needs at least 2 rows for a PCA; got {X.shape[0]}")
    mean = X.mean(axis=0, dtype=np.float64)
    Xc = X.astype(np.float64) - mean
    # the covariance's eigenvectors (d x d, float64): the same directions as the SVD of the centred rows, ~10x faster
    # for N >> d; eigenvalues below zero by rounding are set to zero
    lam, vec = np.linalg.eigh(Xc.T @ Xc / X.shape[0])
    order = np.argsort(lam)[::-1][: min(X.shape)]
    lam, vt = np.maximum(lam[order], 0.0), vec[:, order].T
    total = lam.sum()
    if not total > 0:
        raise ProbeInputError("X has zero variance (every row the same); no simplex to find")
    explained = lam / total
    return Pca(mean=mean, components=vt.T, variances=lam, explained=explained, cumulative=np.cumsum(explained))


def choose_dimension(cumulative: np.ndarray, threshold: float) -> int:
    """The smallest k >= 1 whose cumulative explained variance reaches ``threshold`` (a share in (0, 1])."""
    if not 0.0 < threshold <= 1.0:
        raise ProbeInputError(f"threshold must be a variance share in (0, 1]; got {threshold!r}")
    return int(min(np.searchsorted(np.asarray(cumulative), threshold - 1e-12) + 1, len(cumulative)))


# ------------------------------------------------------------------------------------------- simplex geometry


def barycentric(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """[N, k + 1] barycentric coordinates of points [N, k] in the simplex with vertices [k + 1, k]."""
    V = np.asarray(vertices, np.float64)
    M = np.vstack([V.T, np.ones(V.shape[0])])  # [k + 1, k + 1]
    P = np.vstack([np.asarray(points, np.float64).T, np.ones(len(points))])  # [k + 1, N]
    return np.linalg.solve(M, P).T


def simplex_volume(vertices: np.ndarray) -> float:
    """The k-volume of the simplex with vertices [k + 1, k]: |det(V[1:] - V[0])| / k!."""
    V = np.asarray(vertices, np.float64)
    k = V.shape[1]
    return float(abs(np.linalg.det(V[1:] - V[0])) / np.prod(np.arange(1, k + 1)))


def spa(Y: np.ndarray, n: int) -> np.ndarray:
    """Successive projection algorithm (Gillis & Vavasis 2014): indices of ``n`` extreme points of Y [N, k],
    on the homogeneous rows [y, 1] (the point of largest residual norm, then its direction projected out)."""
    R = np.hstack([Y, np.ones((len(Y), 1))])
    picked: list[int] = []
    for _ in range(n):
        i = int(np.argmax(np.einsum("ij,ij->i", R, R)))
        picked.append(i)
        u = R[i] / max(np.linalg.norm(R[i]), 1e-300)
        R = R - np.outer(R @ u, u)
    return np.asarray(picked)


def _enclosing_start(Y: np.ndarray) -> np.ndarray:
    """SPA's k + 1 extreme points, expanded about their centroid until every point of Y is inside."""
    k = Y.shape[1]
    V = Y[spa(Y, k + 1)]
    if abs(np.linalg.det(V[1:] - V[0])) < 1e-12:  # degenerate extreme points: a regular simplex around the data
        V = np.vstack([-np.ones(k), np.eye(k) * (k + 1)]) * np.abs(Y).max()
    c = V.mean(axis=0)
    A = barycentric(Y, V)
    # a point of barycentric a is inside the simplex scaled by s about the centroid iff u + (a - u) / s >= 0 for
    # u = 1 / (k + 1), i.e. s >= (u - a) / u for its most negative a
    u = 1.0 / (k + 1)
    s = max(1.0, (u - float(np.min(A))) / u * 1.001)
    return c + s * (V - c)


#: The MVES is fitted on the points' convex hull (Qhull) up to this dimension (a hull in 6-D of 20,000 noisy points has
#: too many facets: minutes), above it on an active set (`_mves_active_set`).
HULL_MAX_DIMENSION = 3


def hull_points(Y: np.ndarray) -> np.ndarray:
    """The rows of Y [N, k] on its convex hull (a simplex encloses the points iff it encloses these), by Qhull for
    k <= HULL_MAX_DIMENSION; every row above that or when Qhull fails (degenerate points)."""
    k = Y.shape[1]
    if k == 1:
        return Y[[int(np.argmin(Y[:, 0])), int(np.argmax(Y[:, 0]))]]
    if k > HULL_MAX_DIMENSION or len(Y) <= k + 1:
        return Y
    try:
        return Y[scipy.spatial.ConvexHull(Y).vertices]
    except scipy.spatial.QhullError:
        return Y


def _mves_active_set(Y: np.ndarray, rng: np.random.Generator, rounds: int = 6) -> tuple[np.ndarray, bool]:
    """The MVES of Y [N, k] fitted on a few of its points: the convex hull's vertices (k <= HULL_MAX_DIMENSION),
    else the extreme points along 32 k random directions, to which every point left outside the fitted simplex
    (a barycentric coordinate below -OUTSIDE_TOLERANCE) is added, and the fit repeated (at most ``rounds`` times).
    The enclosing constraint only binds on the hull, so this is the MVES of all points, in a fraction of the time."""
    k = Y.shape[1]
    if k <= HULL_MAX_DIMENSION:
        active = hull_points(Y)
        return _mves(active, _enclosing_start(active))
    proj = Y @ rng.standard_normal((k, 32 * k))
    idx = np.unique(np.concatenate([proj.argmax(axis=0), proj.argmin(axis=0), spa(Y, k + 1)]))
    V, converged = _mves(Y[idx], _enclosing_start(Y[idx]))
    for _ in range(rounds):
        outside = np.flatnonzero(barycentric(Y, V).min(axis=1) < -OUTSIDE_TOLERANCE)
        if outside.size == 0:
            break
        idx = np.union1d(idx, outside)
        V, converged = _mves(Y[idx], V, MVES_PENALTIES[-2:])  # warm: only the stiff rounds again
    return V, converged


def _mves(Y: np.ndarray, start: np.ndarray, penalties: tuple[float, ...] = MVES_PENALTIES) -> tuple[np.ndarray, bool]:
    """The minimum-volume enclosing simplex of Y [N, k] (see the module docstring), from vertices ``start``, one
    warm-started L-BFGS solve (at most MVES_MAX_ITERATIONS) per hinge weight in ``penalties``."""
    N, k = Y.shape
    # parameters: B [k, k], b [k] with (a_1..a_k) = B y + b, a_0 = 1 - sum; from the start's barycentric map
    M = np.linalg.inv(np.vstack([start.T, np.ones(k + 1)]))  # [k + 1, k + 1]: rows map [y, 1] -> a
    theta = np.concatenate([M[1:, :k].ravel(), M[1:, k]])
    converged = True

    def objective(th: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
        B, b = th[: k * k].reshape(k, k), th[k * k :]
        Af = Y @ B.T + b  # [N, k]
        a0 = 1.0 - Af.sum(axis=1)  # [N]
        vf, v0 = np.maximum(-Af, 0.0), np.maximum(-a0, 0.0)
        sign, logdet = np.linalg.slogdet(B)
        if sign == 0:
            return 1e300, np.zeros_like(th)
        f = -logdet + lam * (np.sum(vf**2) + np.sum(v0**2)) / N
        G = (-2.0 * lam / N) * (vf - v0[:, None])  # [N, k]: d penalty / d (B y + b)
        gB = G.T @ Y - np.linalg.inv(B).T
        return float(f), np.concatenate([gB.ravel(), G.sum(axis=0)])

    for lam in penalties:
        res = scipy.optimize.minimize(
            objective,
            theta,
            args=(lam,),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": MVES_MAX_ITERATIONS, "gtol": 1e-9},
        )
        theta, converged = res.x, bool(res.success)
    B, b = theta[: k * k].reshape(k, k), theta[k * k :]
    Binv = np.linalg.inv(B)
    V = np.vstack([-Binv @ b, (Binv @ (np.eye(k) - b[:, None])).T])  # vertex 0: B v + b = 0; vertex j: = e_j
    return V, converged


def _project_rows_to_simplex(A: np.ndarray) -> np.ndarray:
    """Each row of A [n, m] projected onto the probability simplex (Euclidean; Duchi et al. 2008)."""
    n, m = A.shape
    U = -np.sort(-A, axis=1)
    css = np.cumsum(U, axis=1) - 1.0
    idx = np.arange(1, m + 1)
    cond = U - css / idx > 0
    rho = m - 1 - np.argmax(cond[:, ::-1], axis=1)
    tau = css[np.arange(n), rho] / (rho + 1)
    return np.maximum(A - tau[:, None], 0.0)


def _archetypes(Y: np.ndarray, n: int, rng: np.random.Generator, iterations: int = 500) -> tuple[np.ndarray, bool]:
    """Archetypal analysis of Y [N, k] with n archetypes: alternating projected gradient steps on S [N, n] and
    C [n, N'] over the candidate points N' (SPA's picks and the extreme points of random directions: a vertex
    that is a convex combination of points needs only points on the hull)."""
    dirs = rng.standard_normal((max(64, 16 * Y.shape[1]), Y.shape[1]))
    proj = Y @ dirs.T
    cand = np.unique(np.concatenate([spa(Y, n), proj.argmax(axis=0), proj.argmin(axis=0)]))
    Z = Y[cand]  # [N', k]
    C = np.zeros((n, len(cand)))
    C[np.arange(n), np.searchsorted(cand, spa(Y, n))] = 1.0
    S = _project_rows_to_simplex(barycentric(Y, C @ Z))
    prev = np.inf
    converged = False
    for _ in range(iterations):
        V = C @ Z  # [n, k]
        # S step: minimise ||Y - S V||^2 over rows of S on the simplex; step 1/L with L = ||V V'||
        L = max(np.linalg.norm(V @ V.T, 2), 1e-12)
        S = _project_rows_to_simplex(S - ((S @ V - Y) @ V.T) / L)
        # C step: minimise ||Y - S C Z||^2 over rows of C on the simplex
        StS = S.T @ S
        L = max(np.linalg.norm(StS, 2) * np.linalg.norm(Z @ Z.T, 2), 1e-12)
        grad = StS @ C @ Z @ Z.T - S.T @ Y @ Z.T
        C = _project_rows_to_simplex(C - grad / L)
        err = float(np.sum((Y - S @ (C @ Z)) ** 2))
        if prev - err <= 1e-10 * max(prev, 1e-300):
            converged = True
            break
        prev = err
    return C @ Z, converged


def fit_simplex(
    X: np.ndarray,  # [N, d]
    *,
    threshold: float = VARIANCE_THRESHOLD,
    dimension: int | None = None,
    method: str = "mves",
    max_points: int = 20000,
    seed: int = 0,
) -> SimplexFit:
    """Fit a simplex to the rows of X without the true beliefs (see the module docstring).

    ``dimension`` fixes k (the answer key's dimension, for a control); otherwise k comes from ``threshold``.
    ``"mves"`` above MVES_MAX_DIMENSION fits archetypes (the returned ``method`` says which was fitted).
    The PCA uses every row; the simplex is fitted on at most ``max_points`` rows drawn at random (seeded), and the
    barycentric coordinates are given for every row.
    """
    if method not in METHODS:
        raise ProbeInputError(f'method must be "mves" or "archetypes"; got {method!r}')
    p = pca(X)
    if dimension is None:
        k = choose_dimension(p.cumulative, threshold)
    else:
        if isinstance(dimension, bool) or not isinstance(dimension, (int, np.integer)) or dimension < 1:
            raise ProbeInputError(f"dimension must be a positive integer or None; got {dimension!r}")
        k = int(dimension)
        if k > len(p.cumulative):
            raise ProbeInputError(f"dimension {k} exceeds the {len(p.cumulative)} principal components of X")
    Y = p.project(X, k)  # [N, k]
    scale = float(np.sqrt(p.variances[:k].sum()))  # fitted in units of the kept spread, for conditioning
    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(len(Y), max_points, replace=False)) if len(Y) > max_points else np.arange(len(Y))
    Yf = Y[fit_rows] / scale
    if method == "mves" and k > MVES_MAX_DIMENSION:
        method = "archetypes"  # recorded in the fit: the MVES is too slow and too loose up there
    if method == "mves":
        V, converged = _mves_active_set(Yf, rng)
    else:
        V, converged = _archetypes(Yf, k + 1, rng)
    V = V * scale
    A = barycentric(Y, V)
    recon = _project_rows_to_simplex(A) @ V
    sst = float(np.sum((Y - Y.mean(axis=0)) ** 2))
    return SimplexFit(
        method=method,
        k=k,
        threshold=None if dimension is not None else float(threshold),
        pca=p,
        vertices=V,
        vertices_ambient=p.mean + V @ p.components[:, :k].T,
        barycentric=A,
        kept_variance=float(p.cumulative[k - 1]),
        outside_fraction=float(np.mean(A.min(axis=1) < -OUTSIDE_TOLERANCE)),
        min_barycentric=float(A.min()),
        reconstruction_r2=1.0 - float(np.sum((Y - recon) ** 2)) / sst if sst > 0 else float("nan"),
        volume=simplex_volume(V),
        converged=converged,
    )


def match_vertices(found: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, float]:
    """The assignment of found vertices [m, k] to true ones [n, k] (Hungarian, on distances) and the largest
    matched distance. With m != n only min(m, n) pairs are matched. Returns (order, max distance): found[i] is
    matched with true[order[i]] (-1 where unmatched)."""
    D = np.linalg.norm(np.asarray(found)[:, None, :] - np.asarray(true)[None, :, :], axis=-1)
    rows, cols = scipy.optimize.linear_sum_assignment(D)
    order = np.full(len(found), -1)
    order[rows] = cols
    return order, float(D[rows, cols].max()) if len(rows) else float("nan")


# ------------------------------------------------------------------------------------------- against the beliefs


@dataclass(frozen=True)
class BeliefComparison:
    """The fitted simplex against the true beliefs (the answer key, used only here)."""

    n_vertices: int  # k + 1
    n_states: int  # the beliefs' length
    belief_dimension: int  # the beliefs' affine dimension (their rank - 1)
    r2_heldout_contexts: float | None  # best affine map barycentric -> beliefs, fitted and scored on disjoint contexts
    r2_heldout_contexts_std: float | None  # (as MSE's std over repeats, in R² units: std / variance of the beliefs)
    mse_heldout_contexts: float | None
    r2_shuffled_heldout_contexts: float | None  # the same map fitted to permuted beliefs, scored held out
    r2_in_sample: float
    direct_r2: float | None  # barycentric vs beliefs with no fitted map, best vertex permutation (None: m != S)
    vertex_error: float | None  # largest matched distance fitted vertex -> the true simplex's image, / its diameter
    note: str | None  # why a number is withheld


def true_simplex_image(Y: np.ndarray, beliefs: np.ndarray) -> np.ndarray:
    """[S, k] the image of the probability simplex's corners in the coordinates Y [N, k]: the least-squares
    affine map from beliefs [N, S] (whose rows sum to 1, so a linear map is affine) to Y, applied to e_1..e_S."""
    M, *_ = np.linalg.lstsq(np.asarray(beliefs, np.float64), np.asarray(Y, np.float64), rcond=None)
    return M  # [S, k]: row s is the image of e_s


def compare_with_beliefs(
    fit: SimplexFit,
    X: np.ndarray,  # [N, d] the rows the fit was made on (for the simplex image)
    beliefs: np.ndarray,  # [N, S]
    groups: np.ndarray,  # [N] string ids (as `probes.evaluate_probe`)
    *,
    contexts: np.ndarray | None = None,  # [N] context ids
    positions: np.ndarray | None = None,  # [N] positions (the split's strata)
    sample_weight: np.ndarray | None = None,
    n_repeats: int = 3,
    context_test_fraction: float = CONTEXT_TEST_FRACTION,
    seed: int = 0,
) -> BeliefComparison:
    """Score ``fit`` against the true beliefs: the best affine map from its barycentric coordinates to the beliefs,
    held out by context with `probes.evaluate_probe` (the same context-disjoint splits and held-out shuffled control
    as every probe), the direct match (no map) and the vertex error against the true simplex's image."""
    B = as_float_array("beliefs", beliefs, 2)
    if B.shape[0] != fit.barycentric.shape[0]:
        raise ProbeInputError(f"beliefs has {B.shape[0]} rows but the fit has {fit.barycentric.shape[0]}")
    S = B.shape[1]
    centred = B - B.mean(axis=0)
    belief_dim = int(np.linalg.matrix_rank(centred, tol=1e-9 * max(np.abs(centred).max(), 1e-300))) if len(B) else 0
    # the barycentric coordinates sum to 1: drop the last (the intercept carries it) for a well-posed OLS
    ev = evaluate_probe(
        fit.barycentric[:, :-1],
        B,
        groups,
        contexts=contexts,
        positions=positions,
        sample_weight=sample_weight,
        n_repeats=n_repeats,
        context_test_fraction=context_test_fraction,
        seed=seed,
        heldout_scores=True,
    )
    res, held = ev.result, ev.heldout
    var = float(np.mean(np.var(B, axis=0)))
    direct, vertex_error, notes = None, None, []
    if fit.n_vertices == S:
        best = -np.inf
        sst = float(np.sum(centred**2))
        for perm in itertools.permutations(range(S)) if S <= 7 else [tuple(range(S))]:
            best = max(best, 1.0 - float(np.sum((fit.barycentric[:, list(perm)] - B) ** 2)) / sst)
        direct = float(best) if S <= 7 else None
        if S > 7:
            notes.append("direct R² withheld: more than 7 states to permute")
    else:
        notes.append(f"direct R² withheld: {fit.n_vertices} vertices found, {S} states")
    image = true_simplex_image(fit.pca.project(X, fit.k), B)  # [S, k]
    diameter = max((np.linalg.norm(a - b) for a, b in itertools.combinations(image, 2)), default=0.0)
    if diameter > 0:
        vertex_error = float(match_vertices(fit.vertices, image)[1] / diameter)
    return BeliefComparison(
        n_vertices=fit.n_vertices,
        n_states=S,
        belief_dimension=belief_dim,
        r2_heldout_contexts=res.r2_heldout_contexts,
        r2_heldout_contexts_std=(
            None if res.mse_heldout_contexts_std is None or var <= 0 else res.mse_heldout_contexts_std / var
        ),
        mse_heldout_contexts=res.mse_heldout_contexts,
        r2_shuffled_heldout_contexts=None if held is None else held.r2_shuffled_heldout_contexts,
        r2_in_sample=float(res.r2),
        direct_r2=direct,
        vertex_error=vertex_error,
        note="; ".join(n for n in [res.heldout_contexts_note, *notes] if n) or None,
    )
