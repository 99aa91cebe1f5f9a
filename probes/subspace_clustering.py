"""Grouping directions (a sparse autoencoder's decoder rows) into subspaces, and asking which factor each holds.

A network that holds a product process's factors in separate subspaces should have dictionary directions that fall
into groups, one per factor: directions of one factor's subspace are correlated with each other and nearly
orthogonal to the others'. `cluster_directions` finds the groups by **spectral clustering** (Ng, Jordan & Weiss
2002) on the affinity ``A_ij = |cos(u_i, u_j)|^power`` (the sign of a direction is arbitrary; a power above 1
sharpens the contrast with between-group cosines, of order 1/sqrt(d) for random directions in d dimensions, but
weakens the links inside a group, whose members are spread over its subspace: on planted groups of ten directions in
3-D subspaces power 2 split a group in one seed of four where power 1, the default, did not): the symmetric
normalised Laplacian ``I - D^-1/2 A D^-1/2``, its smallest eigenvalues (SciPy's ``eigh``), the number of groups
chosen at the largest gap among its first ``max_clusters + 1`` eigenvalues (or given), then k-means
(``scipy.cluster.vq.kmeans2``, seeded, best of ``n_init``) on the row-normalised eigenvectors. A co-activation
affinity is not offered: the directions of one factor tile that factor's simplex and so tend *not* to fire together,
while directions of independent factors fire together at chance.

`cluster_span` gives each group's subspace (the top singular directions of its members); `factor_recovery` scores
each subspace against each factor's true beliefs with the context-disjoint held-out probe (`probes.evaluate_probe`)
and reports the confusion table (cluster x factor R²) and each cluster's best factor.

Failure modes: directions shared by several factors (a joint representation) give one group; a factor held in a
subspace the dictionary does not tile (too few latents, dead latents) gets no group; the eigengap is unreliable
when groups differ much in size or the between-group cosines are not small (few dimensions).
NumPy and SciPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.cluster.vq
import scipy.linalg

from probes._checks import ProbeInputError, as_float_array, require_finite
from probes.evaluation import CONTEXT_TEST_FRACTION, evaluate_probe


@dataclass(frozen=True, eq=False)
class Clustering:
    """Directions grouped into subspaces."""

    labels: np.ndarray  # [n] the group of each direction, 0..n_clusters-1 (largest group first)
    n_clusters: int
    eigenvalues: np.ndarray  # [min(n, max_clusters + 1)] the normalised Laplacian's smallest eigenvalues
    chosen_by_eigengap: bool  # False: n_clusters was given
    power: float  # the affinity's exponent

    def members(self, c: int) -> np.ndarray:
        """The indices of group c's directions."""
        return np.flatnonzero(self.labels == c)


def cluster_directions(
    directions: np.ndarray,  # [n, d]
    *,
    n_clusters: int | None = None,
    max_clusters: int = 8,
    power: float = 1.0,
    n_init: int = 10,
    seed: int = 0,
) -> Clustering:
    """Spectral clustering of directions [n, d] on |cos|^power (see the module docstring)."""
    U = as_float_array("directions", directions, 2).astype(np.float64)
    require_finite("directions", U)
    n = U.shape[0]
    if n < 2:
        raise ProbeInputError(f"directions needs at least 2 rows to cluster; got {n}")
    norms = np.linalg.norm(U, axis=1)
    if np.any(norms == 0):
        raise ProbeInputError("directions has a zero row; drop it (a dead latent) before clustering")
    if n_clusters is not None and not 1 <= n_clusters <= n:
        raise ProbeInputError(f"n_clusters must be between 1 and the {n} directions; got {n_clusters}")
    if max_clusters < 1:
        raise ProbeInputError(f"max_clusters must be a positive integer; got {max_clusters}")
    U = U / norms[:, None]
    A = np.abs(U @ U.T) ** power
    np.fill_diagonal(A, 0.0)
    deg = A.sum(axis=1)
    inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-300)), 0.0)
    L = np.eye(n) - inv_sqrt[:, None] * A * inv_sqrt[None, :]
    m = min(n, max(max_clusters, n_clusters or 1) + 1)
    lam, vec = scipy.linalg.eigh(L, subset_by_index=[0, m - 1])
    if n_clusters is None:
        gaps = np.diff(lam)  # gaps[c - 1] = lam[c] - lam[c - 1]: the gap after c groups
        c = int(np.argmax(gaps[: min(max_clusters, len(gaps))]) + 1) if len(gaps) else 1
    else:
        c = int(n_clusters)
    if c == 1:
        labels = np.zeros(n, dtype=int)
    else:
        E = vec[:, :c]
        E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-300)
        best, labels = np.inf, np.zeros(n, dtype=int)
        for i in range(n_init):
            # seed=: SciPy >= 1.11 (our floor) takes it; rng= arrived in 1.15 (SciPy's stubs name only rng)
            centroids, lab = scipy.cluster.vq.kmeans2(E, c, minit="++", seed=seed + i)  # type: ignore[call-arg]
            distortion = float(np.sum((E - centroids[lab]) ** 2))
            if distortion < best - 1e-12:
                best, labels = distortion, lab
    # relabel: largest group first (ties: by the first member), empty groups dropped
    groups = sorted(np.unique(labels), key=lambda g: (-np.sum(labels == g), np.flatnonzero(labels == g)[0]))
    relabel = {g: i for i, g in enumerate(groups)}
    labels = np.array([relabel[g] for g in labels])
    return Clustering(
        labels=labels,
        n_clusters=len(groups),
        eigenvalues=lam,
        chosen_by_eigengap=n_clusters is None,
        power=float(power),
    )


def cluster_span(directions: np.ndarray, threshold: float = 0.95, max_rank: int | None = None) -> np.ndarray:
    """[d, r] an orthonormal basis of the subspace a group of directions [m, d] spans: the fewest top right singular
    vectors holding ``threshold`` of their summed squared norm (uncentred: directions from the SAE's offset), at
    most ``max_rank``."""
    U = as_float_array("directions", directions, 2).astype(np.float64)
    _, s, vt = np.linalg.svd(U, full_matrices=False)
    share = np.cumsum(s**2) / np.sum(s**2)
    r = int(np.searchsorted(share, threshold - 1e-12) + 1)
    if max_rank is not None:
        r = min(r, int(max_rank))
    return vt[: max(r, 1)].T


@dataclass(frozen=True)
class FactorRecovery:
    """Each cluster's subspace against each factor's true beliefs."""

    r2: list[list[float | None]]  # [clusters][factors] held-out R² of factor k's beliefs from X on cluster c's span
    best_factor: list[int | None]  # per cluster: the factor of highest held-out R² (None: none scored)
    span_dims: list[int]  # per cluster: its span's dimension
    factors_recovered: list[bool]  # per factor: the best factor of some cluster
    one_to_one: bool  # every factor is some cluster's best, and no two clusters share a best factor

    @property
    def n_recovered(self) -> int:
        return int(sum(self.factors_recovered))


def factor_recovery(
    X: np.ndarray,  # [N, d] the activations
    spans: list[np.ndarray],  # per cluster [d, r_c]
    factor_beliefs: list[np.ndarray],  # per factor [N, S_k]
    groups: np.ndarray,  # [N] string ids
    *,
    contexts: np.ndarray | None = None,
    positions: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    n_repeats: int = 3,
    context_test_fraction: float = CONTEXT_TEST_FRACTION,
    seed: int = 0,
) -> FactorRecovery:
    """The held-out R² of each factor's beliefs from the activations projected on each cluster's span (an affine probe,
    context-disjoint splits as `probes.evaluate_probe`), each cluster's best factor and which factors are recovered."""
    Xf = as_float_array("X", X, 2).astype(np.float64)
    Xc = Xf - Xf.mean(axis=0)
    table: list[list[float | None]] = []
    for basis in spans:
        Z = Xc @ basis  # [N, r]
        row = []
        for Y in factor_beliefs:
            ev = evaluate_probe(
                Z,
                Y,
                groups,
                contexts=contexts,
                positions=positions,
                sample_weight=sample_weight,
                n_repeats=n_repeats,
                context_test_fraction=context_test_fraction,
                seed=seed,
            )
            row.append(ev.result.r2_heldout_contexts)
        table.append(row)
    best = [
        None if all(v is None for v in row) else int(np.argmax([-np.inf if v is None else v for v in row]))
        for row in table
    ]
    recovered = [k in best for k in range(len(factor_beliefs))]
    chosen = [b for b in best if b is not None]
    return FactorRecovery(
        r2=table,
        best_factor=best,
        span_dims=[int(b.shape[1]) for b in spans],
        factors_recovered=recovered,
        one_to_one=all(recovered) and len(set(chosen)) == len(chosen),
    )
