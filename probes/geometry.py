"""Geometry of probed beliefs: do pairwise distances follow the beliefs or the next-token distributions?

A probe that recovers belief geometry places two contexts far apart when their beliefs differ,
even if they predict the same next token. The paper's test (RRXOR): over pairs of contexts,
regress the distance between true beliefs (or between optimal next-token distributions) on the
distance between the probe's predictions; R² 0.95 for beliefs but 0.31 for next-token
distributions — the residual stream carries more than the next-token distribution.

Rows are meant to be distinct contexts, each distinct prefix once (see
`probes.rows.distinct_prefix_ids`): with every string's every position pooled, a short prefix
recurs once per string that starts with it, and its many zero-distance self-pairs would inflate R².
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist

from probes._checks import ProbeInputError, as_float_array, check_rows, require_finite


def _points(name: str, value) -> np.ndarray:
    arr = as_float_array(name, value, 2)
    require_finite(name, arr)
    return arr


def _subset(n: int, max_points: int | None, seed: int) -> np.ndarray:
    """Sorted row indices: all n rows, or `max_points` of them drawn without replacement."""
    if max_points is not None:
        if int(max_points) != max_points or max_points < 2:
            raise ProbeInputError(f"max_points must be an integer >= 2 or None (all points), got {max_points}")
        max_points = int(max_points)
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def _distances(points: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Euclidean distances over pairs i < j of points[index], in row-major pair order (scipy's pdist)."""
    return pdist(np.asarray(points[index], dtype=np.float64), metric="euclidean")


def pairwise_distances(
    points,  # [n, k]
    *,
    max_points: int | None = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances between all pairs i < j of (a random subset of) the rows of `points`.

    At most `max_points` rows are used (all of them if n <= max_points or max_points is None),
    drawn with ``np.random.default_rng(seed)``; the subset depends only on (n, max_points, seed),
    so another point set with the same rows can reuse `index`. Pairs come in the order
    (0,1), (0,2), ..., (1,2), ... of the subset. Returns distances [m (m-1) / 2] (float64) and
    index [m] (the chosen rows, sorted). 2000 points give about 2M pairs (16 MB).
    """
    pts = _points("points", points)
    if pts.shape[0] < 2:
        raise ProbeInputError(f"points must have at least 2 rows to form a pair, got shape {pts.shape}")
    index = _subset(pts.shape[0], max_points, seed)
    return _distances(pts, index), index


def _fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least squares y ~ a + b x: slope b, intercept a and R² = corr(x, y)² (nan where undefined)."""
    xc, yc = x - x.mean(), y - y.mean()
    sxx, syy, sxy = float(xc @ xc), float(yc @ yc), float(xc @ yc)

    def constant(sum_sq: float, v: np.ndarray) -> bool:  # spread no larger than float error
        return sum_sq <= v.size * (1e-10 * float(np.abs(v).max())) ** 2

    if constant(sxx, x):  # every probed distance equal: no line through them
        return float("nan"), float("nan"), float("nan")
    slope = sxy / sxx
    intercept = float(y.mean() - slope * x.mean())
    r2 = float("nan") if constant(syy, y) else sxy * sxy / (sxx * syy)
    return float(slope), intercept, float(min(r2, 1.0))


def _r2_record(d_probed: np.ndarray, d_reference: np.ndarray, n_points: int) -> dict:
    slope, intercept, r2 = _fit_line(d_probed, d_reference)
    return {"r2": r2, "slope": slope, "intercept": intercept, "n_points": int(n_points), "n_pairs": int(d_probed.size)}


def _check_inputs(probed, **references) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    pts = _points("probed", probed)
    if pts.shape[0] < 3:
        raise ProbeInputError(f"probed must have at least 3 rows (3 pairs to fit a line), got shape {pts.shape}")
    refs = {}
    for name, value in references.items():
        arr = _points(name, value)
        check_rows(name, arr, pts.shape[0], other="probed")
        refs[name] = arr
    return pts, refs


def distance_r2(
    probed,  # [n, k] probe predictions, one row per distinct context
    reference,  # [n, m] the same contexts' true beliefs (or next-token distributions, ...)
    *,
    max_points: int | None = 2000,
    seed: int = 0,
) -> dict:
    """How well distances among probed points predict distances among the reference points.

    Over the pairs i < j of the same (sub)set of rows (see `pairwise_distances`), fit

        reference_distance_ij ~ a + b probed_distance_ij      (least squares)

    and report R² = 1 - SSE / SST = corr(probed_distance, reference_distance)², the slope b and
    intercept a (nan where all probed distances are equal; R² nan where all reference distances
    are), with the number of points used and of pairs. R² is unchanged by rescaling either set,
    so probe predictions need not share the reference's units. Rows are meant to be distinct
    contexts, each distinct prefix once. Paper, RRXOR: 0.95 against true beliefs, 0.31 against
    optimal next-token distributions.
    """
    pts, refs = _check_inputs(probed, reference=reference)
    index = _subset(pts.shape[0], max_points, seed)
    return _r2_record(_distances(pts, index), _distances(refs["reference"], index), index.size)


def distance_geometry(
    probed,  # [n, k]
    beliefs,  # [n, S] true beliefs of the same contexts
    next_token_probs,  # [n, V] optimal next-token distributions of the same contexts
    *,
    max_points: int | None = 2000,
    seed: int = 0,
) -> dict:
    """`distance_r2` of the probed points against the true beliefs and against the next-token distributions.

    Returns {"beliefs": {...}, "next_token": {...}} (each a `distance_r2` record) plus, for
    plotting, "distances": {"probed", "beliefs", "next_token"} — three arrays over the same pairs —
    and "index", the rows used. A probe that found belief geometry, not just next-token
    geometry, scores much higher on "beliefs" (paper, RRXOR: 0.95 vs 0.31).
    """
    pts, refs = _check_inputs(probed, beliefs=beliefs, next_token_probs=next_token_probs)
    index = _subset(pts.shape[0], max_points, seed)
    d_probed = _distances(pts, index)
    d_beliefs = _distances(refs["beliefs"], index)
    d_next = _distances(refs["next_token_probs"], index)
    return {
        "beliefs": _r2_record(d_probed, d_beliefs, index.size),
        "next_token": _r2_record(d_probed, d_next, index.size),
        "distances": {"probed": d_probed, "beliefs": d_beliefs, "next_token": d_next},
        "index": index,
    }


def distance_scale(
    matrix,  # [S, V] a linear map of belief (row) vectors, e.g. the emission matrix P(token | state)
    *,
    rtol: float = 1e-9,
) -> float | None:
    """The factor c with ||(a - b) @ matrix|| = c ||a - b|| for every two beliefs a, b, or None if there is none.

    Belief differences d lie in the simplex's tangent space {d : Σ d = 0}. With Q [S, S-1] an
    orthonormal basis of it and A = Qᵀ matrix, ||(Q z) @ matrix||² = zᵀ A Aᵀ z, so all distances
    scale by one factor iff A Aᵀ = c² I (to relative tolerance `rtol`). Then the distance R² of any
    point set against the mapped points (e.g. the next-token distributions) equals its R² against the
    beliefs exactly: Mess3's circulant emission matrix is such a case (c is its non-unit eigenvalue).
    """
    E = _points("matrix", matrix).astype(np.float64)
    S = E.shape[0]
    if S < 2:
        raise ProbeInputError(f"matrix must have at least 2 rows (states), got shape {E.shape}")
    # orthonormal basis of {d : Σ d = 0}: the last S-1 left singular vectors of the all-ones column
    q, _ = np.linalg.qr(np.hstack([np.ones((S, 1)), np.eye(S)[:, : S - 1]]))
    A = q[:, 1:].T @ E  # [S-1, V]
    gram = A @ A.T  # [S-1, S-1]
    c2 = float(np.trace(gram)) / (S - 1)
    if np.abs(gram - c2 * np.eye(S - 1)).max() > rtol * max(c2, np.finfo(np.float64).tiny):
        return None
    return float(np.sqrt(c2))


def state_labels(
    beliefs,  # [n, S]
    *,
    decimals: int = 9,
) -> tuple[np.ndarray, np.ndarray]:
    """Group rows with the same belief (after rounding to `decimals`) into mixed states.

    Returns labels [n] (int64; state 0 is the first row's, then numbered in order of first
    appearance) and centres [n_states, S] (float64, the mean of each state's unrounded rows).
    Rounding puts beliefs equal up to float error together; two beliefs within 10^-decimals
    that straddle a rounding boundary stay apart, so keep `decimals` well above the gaps
    between true states and well below float error (the default suits float64 beliefs).
    """
    b = _points("beliefs", beliefs)
    if b.shape[0] == 0 or b.shape[1] == 0:
        raise ProbeInputError(f"beliefs must have at least one row and one column, got shape {b.shape}")
    if int(decimals) != decimals:
        raise ProbeInputError(f"decimals must be an integer, got {decimals}")
    key = np.round(b.astype(np.float64), int(decimals)) + 0.0  # + 0.0 turns -0.0 into 0.0
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)  # sorted-unique id -> appearance order
    labels = rank[inverse]
    counts = np.bincount(labels, minlength=first.size).astype(np.float64)
    sums = [np.bincount(labels, weights=b[:, j], minlength=first.size) for j in range(b.shape[1])]
    centres = np.stack(sums, axis=1).reshape(first.size, b.shape[1])  # [n_states, S]
    return labels, centres / counts[:, None]
