"""How many dimensions a set of activations uses, and how subspaces sit relative to each other.

For the factored-representation question (does a network trained on a product of processes hold the joint
belief, dimension prod(d_k) - 1, or each factor's belief in its own subspace, dimension sum(d_k - 1)?):
the explained-variance spectrum of the activations, the components needed for a share of the variance,
the participation ratio and the effective rank; the subspace of activation space that a belief (or any
target) is embedded in; and the principal angles between two such subspaces. NumPy (and SciPy) only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from probes._checks import ProbeInputError, as_float_array, as_sample_weight, require_finite

#: The variance shares whose component counts `variance_spectrum` reports by default.
THRESHOLDS = (0.8, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class VarianceSpectrum:
    """The principal-component variances of a set of rows, largest first, and the dimension measures.

    ``explained[k]`` is component k's share of the total variance, ``cumulative[k]`` the share of the first
    k + 1. ``components[q]`` is the smallest number of components whose cumulative share reaches q. The
    participation ratio is ``(sum lambda)^2 / sum lambda^2`` and the effective rank ``exp(H(lambda / sum
    lambda))`` (Roy & Vetterli 2007); both are D for isotropic data and 1 for data on a line.
    """

    variances: np.ndarray  # [D'] float64, eigenvalues of the (weighted) covariance, descending, D' = min(N, D)
    explained: np.ndarray  # [D'] float64, variances / their sum
    cumulative: np.ndarray  # [D'] float64
    components: dict[float, int]  # variance share -> components needed
    participation_ratio: float
    effective_rank: float

    def to_dict(self, keep: int = 64) -> dict:
        """Plain JSON values; the spectrum cut to its first ``keep`` components."""
        return {
            "explained": [float(v) for v in self.explained[:keep]],
            "cumulative": [float(v) for v in self.cumulative[:keep]],
            "components": {f"{q:g}": int(k) for q, k in self.components.items()},
            "participation_ratio": float(self.participation_ratio),
            "effective_rank": float(self.effective_rank),
        }


def variance_spectrum(
    X: np.ndarray, sample_weight: np.ndarray | None = None, thresholds: Sequence[float] = THRESHOLDS
) -> VarianceSpectrum:
    """The explained-variance spectrum of rows ``X [N, D]``, uniformly weighted or by ``sample_weight [N]``
    (e.g. the contexts' probabilities), centred on the (weighted) mean. Computed in float64 from the
    singular values of the centred, weight-scaled rows, so float32 activations lose nothing."""
    X = as_float_array("X", X, 2)
    require_finite("X", X)
    N = X.shape[0]
    if N < 2:
        raise ProbeInputError(f"X needs at least 2 rows for a variance; got {N}")
    qs = [float(q) for q in thresholds]
    if any(not 0.0 < q <= 1.0 for q in qs):
        raise ProbeInputError(f"thresholds must be shares in (0, 1]; got {list(thresholds)}")
    w = as_sample_weight(sample_weight, N)
    w = np.full(N, 1.0 / N) if w is None else w / w.sum()
    Xc = X.astype(np.float64) - w @ X
    s = np.linalg.svd(Xc * np.sqrt(w)[:, None], compute_uv=False)  # [min(N, D)]
    lam = s**2  # the covariance's eigenvalues, descending
    total = lam.sum()
    if not total > 0:
        raise ProbeInputError("X has zero variance (every row the same); nothing to measure")
    explained = lam / total
    cumulative = np.cumsum(explained)
    components = {q: int(np.searchsorted(cumulative, q - 1e-12) + 1) for q in qs}
    p = explained[explained > 0]
    return VarianceSpectrum(
        variances=lam,
        explained=explained,
        cumulative=cumulative,
        components=components,
        participation_ratio=float(total**2 / np.sum(lam**2)),
        effective_rank=float(np.exp(-np.sum(p * np.log(p)))),
    )


def _weighted_centred(
    X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``X [N, D]`` and ``Y [N, S]`` checked, centred with the normalised weights ``w [N]`` (uniform if None) and scaled
    by ``sw = sqrt(w) [N, 1]``, so that least squares on them is the weighted fit with an intercept (float64)."""
    X = as_float_array("X", X, 2)
    Y = as_float_array("Y", Y, 2)
    require_finite("X", X)
    require_finite("Y", Y)
    if X.shape[0] != Y.shape[0]:
        raise ProbeInputError(f"X and Y must have the same rows; got {X.shape[0]} and {Y.shape[0]}")
    w = as_sample_weight(sample_weight, X.shape[0])
    w = np.full(X.shape[0], 1.0 / X.shape[0]) if w is None else w / w.sum()
    sw = np.sqrt(w)[:, None]
    return (X.astype(np.float64) - w @ X) * sw, (Y.astype(np.float64) - w @ Y) * sw, w, sw


def _numerical_rank(s: np.ndarray) -> int:
    """The singular values ``s`` (descending) above 1e-8 of the largest; 0 when there are none or all are zero."""
    return int(np.sum(s > s[0] * 1e-8)) if s.size and s[0] > 0 else 0


def belief_subspace(
    X: np.ndarray,
    Y: np.ndarray,
    sample_weight: np.ndarray | None = None,
    rank: int | None = None,
    others: np.ndarray | None = None,
) -> np.ndarray:
    """An orthonormal basis ``[D, r]`` of the directions along which the targets ``Y [N, S]`` are embedded in
    the activations ``X [N, D]``.

    Regress the activations on the targets, ``X ~ Y A + Z C + c`` (weighted least squares, centred; ``Z =
    others [N, S']``, e.g. the other factors' beliefs, whose share of X is then not attributed to Y): the
    columns of ``A^T`` [D, S] are where each unit of target moves the activations, and their span is the
    target's subspace. Beliefs sum to a constant, so their centred values span at most S - 1 dimensions:
    ``rank`` (default: the numerical rank of the centred targets) keeps that many leading singular directions.
    """
    Xc, Yc, w, sw = _weighted_centred(X, Y, sample_weight)
    sy = np.linalg.svd(Yc, compute_uv=False)
    r = _numerical_rank(sy) if rank is None else int(rank)
    if r < 1:
        raise ProbeInputError("Y has no variance to locate in X; pass targets that vary")
    design = Yc
    if others is not None:
        Z = as_float_array("others", others, 2)
        require_finite("others", Z)
        if Z.shape[0] != X.shape[0]:
            raise ProbeInputError(f"others must have the rows of X ({X.shape[0]}); got {Z.shape[0]}")
        design = np.concatenate([Yc, (Z.astype(np.float64) - w @ Z) * sw], axis=1)
    coef, *_ = np.linalg.lstsq(design, Xc, rcond=None)  # [S (+ S'), D]: X ~ Y A (+ Z C)
    U, _, _ = np.linalg.svd(coef[: Y.shape[1]].T, full_matrices=False)  # [D, S]
    return U[:, :r]


def principal_angles(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The principal angles, in degrees and ascending, between the column spaces of ``A [D, p]`` and
    ``B [D, q]`` (min(p, q) of them): 0 for a shared direction, 90 for orthogonal subspaces."""
    A = as_float_array("A", A, 2)
    B = as_float_array("B", B, 2)
    if A.shape[0] != B.shape[0]:
        raise ProbeInputError(f"A and B must live in the same space (rows); got {A.shape[0]} and {B.shape[0]}")
    return np.sort(np.degrees(scipy.linalg.subspace_angles(A.astype(np.float64), B.astype(np.float64))))


def probe_subspace(X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """An orthonormal basis ``[D, r]`` of the span of the linear probe's coefficients from the activations
    ``X [N, D]`` onto the targets ``Y [N, S]``: the read-out directions, the subspace the authors' overlap measure
    compares (simplexity ``analysis/linear_regression.py``, commit c633bca2: ``linear_regression(activations,
    beliefs)``'s coefficients without the intercept).

    The probe is weighted least squares with an intercept (X and Y centred with the weights). Beliefs sum to a
    constant, so the coefficients ``W [D, S]`` satisfy ``W 1 = 0`` and have rank at most S - 1; the authors take a
    QR basis of all S columns, which then holds one direction fixed by round-off alone. Here ``r`` is the numerical
    rank of ``W`` (singular values above 1e-8 of the largest), the same span without that direction.
    """
    Xc, Yc, _, _ = _weighted_centred(X, Y, sample_weight)
    W, *_ = np.linalg.lstsq(Xc, Yc, rcond=None)  # [D, S]: Y ~ X W + c
    U, s, _ = np.linalg.svd(W, full_matrices=False)
    r = _numerical_rank(s)
    if r < 1:
        raise ProbeInputError(
            "the probe's coefficients are all zero (Y has no variance a linear probe reads); pass targets that vary"
        )
    return U[:, :r]


def subspace_overlap(A: np.ndarray, B: np.ndarray) -> float:
    """The authors' subspace overlap score of the column spaces of ``A [D, p]`` and ``B [D, q]`` (simplexity
    ``analysis/linear_regression.py`` ``_compute_subspace_orthogonality``, commit c633bca2): with orthonormal bases
    ``Q_A``, ``Q_B`` and ``sigma`` the singular values of ``Q_A^T Q_B`` (the cosines of the principal angles),
    ``sum(sigma^2) / min(p, q)``: 1 when the smaller subspace lies inside the other, 0 when they are orthogonal;
    for random subspaces its mean is ``max(p, q) / D`` (`random_overlap_mean`)."""
    A = as_float_array("A", A, 2)
    B = as_float_array("B", B, 2)
    if A.shape[0] != B.shape[0]:
        raise ProbeInputError(f"A and B must live in the same space (rows); got {A.shape[0]} and {B.shape[0]}")
    qa = scipy.linalg.orth(A.astype(np.float64))
    qb = scipy.linalg.orth(B.astype(np.float64))
    if qa.shape[1] == 0 or qb.shape[1] == 0:
        raise ProbeInputError(
            "subspace_overlap: a subspace is empty (all-zero columns); pass bases that span something"
        )
    sigma = np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0.0, 1.0)
    return float(np.sum(sigma**2) / min(qa.shape[1], qb.shape[1]))


def random_overlap_mean(D: int, p: int, q: int) -> float:
    """The exact mean of `subspace_overlap` between uniformly random subspaces of dimensions p and q in R^D:
    ``E tr(P_A P_B) = p q / D``, divided by ``min(p, q)``: ``max(p, q) / D``."""
    if not 1 <= p <= D or not 1 <= q <= D:
        raise ProbeInputError(f"need 1 <= p, q <= D; got p = {p}, q = {q}, D = {D}")
    return max(p, q) / D


@dataclass(frozen=True)
class OverlapNull:
    """`subspace_overlap` between random subspaces of the given dimensions: the null a measured overlap sits beside."""

    dim: int  # D, the ambient dimension
    p: int
    q: int
    mean: float  # the exact mean, max(p, q) / D
    sd: float  # the Monte Carlo standard deviation over n_draws pairs
    q95: float  # the Monte Carlo 95th percentile
    n_draws: int

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("dim", "p", "q", "mean", "sd", "q95", "n_draws")}


def random_overlap_null(D: int, p: int, q: int, n_draws: int = 500, seed: int = 0) -> OverlapNull:
    """The null of `subspace_overlap`: ``n_draws`` pairs of uniformly random subspaces (Gaussian bases) of dimensions
    ``p`` and ``q`` in R^D; the exact mean beside the draws' sd and 95th percentile."""
    mean = random_overlap_mean(D, p, q)
    rng = np.random.default_rng(seed)
    draws = np.array(
        [subspace_overlap(rng.standard_normal((D, p)), rng.standard_normal((D, q))) for _ in range(int(n_draws))]
    )
    return OverlapNull(
        dim=int(D),
        p=int(p),
        q=int(q),
        mean=mean,
        sd=float(draws.std(ddof=1)),
        q95=float(np.quantile(draws, 0.95)),
        n_draws=int(n_draws),
    )
