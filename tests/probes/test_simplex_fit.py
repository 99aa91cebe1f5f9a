"""The simplex fit (probes.simplex_fit) on a planted simplex: k chosen right, vertices within the noise's bound."""

import numpy as np
import pytest

from probes import ProbeInputError
from probes.simplex_fit import (
    HULL_MAX_DIMENSION,
    barycentric,
    choose_dimension,
    compare_with_beliefs,
    fit_simplex,
    match_vertices,
)

K, D, N, SIGMA, EPS = 3, 20, 2000, 1e-3, 1e-3


def planted(seed: int = 0):
    """N points with random barycentric coordinates (Dirichlet 0.7), the first K + 1 within EPS of a vertex, mapped
    by a random affine map into D dimensions, plus Gaussian noise of standard deviation SIGMA per coordinate."""
    rng = np.random.default_rng(seed)
    A = rng.dirichlet(np.full(K + 1, 0.7), size=N)  # [N, K + 1]
    A[: K + 1] = (1 - EPS) * np.eye(K + 1) + EPS / (K + 1)
    V = rng.standard_normal((K + 1, D)) + rng.standard_normal(D)  # [K + 1, D] the true vertices, off the origin
    X = A @ V + rng.normal(0.0, SIGMA, (N, D))
    return X, A, V


def vertex_bound(V: np.ndarray) -> float:
    """How far the enclosing (or archetypal) simplex's vertices may sit from the true ones, from the noise and EPS.

    Each facet i (a_i = 0, gradient w_i of the barycentric map) moves by at most delta, the largest projection of
    the N points' noise on a facet's unit normal (delta = SIGMA sqrt(2 ln(2 N (K + 1))), the usual bound on the
    largest of N (K + 1) Gaussians), plus EPS times the diameter (the nearest point to a vertex); a vertex,
    where K facets meet, then moves by at most ||W_j^-1||_2 sqrt(K) max||w_i|| delta (W_j: the K facets' gradients).
    A factor 2 covers the MVES's finite hinge penalty and the PCA's tilt by the noise."""
    Vc = V - V.mean(axis=0)
    _, _, vt = np.linalg.svd(Vc, full_matrices=False)
    Vk = Vc @ vt[:K].T  # [K + 1, K] in the simplex's own coordinates
    M = np.linalg.inv(np.vstack([Vk.T, np.ones(K + 1)]))  # rows: [w_i, c_i]
    W = M[:, :K]
    diameter = max(np.linalg.norm(a - b) for a in Vk for b in Vk)
    delta = SIGMA * np.sqrt(2 * np.log(2 * N * (K + 1))) + EPS * diameter
    amp = max(np.linalg.norm(np.linalg.inv(np.delete(W, j, axis=0)), 2) for j in range(K + 1))
    return 2 * amp * np.sqrt(K) * np.linalg.norm(W, axis=1).max() * delta


@pytest.mark.parametrize("method", ["mves", "archetypes"])
def test_a_planted_simplex_is_found(method):
    X, A, V = planted()
    fit = fit_simplex(X, threshold=0.99, method=method)
    assert fit.k == K and fit.n_vertices == K + 1
    true = fit.pca.project(V, K)
    order, err = match_vertices(fit.vertices, true)
    assert sorted(order) == list(range(K + 1))
    bound = vertex_bound(V)
    assert err < bound, (err, bound)
    assert np.allclose(fit.barycentric.sum(axis=1), 1.0)
    # the barycentric coordinates, reordered to the true vertices, are the planted ones up to the same error
    assert np.max(np.abs(fit.barycentric[:, np.argsort(order)] - A)) < 0.05
    assert fit.outside_fraction < 0.05 and fit.reconstruction_r2 > 0.999


def test_k_follows_the_threshold_and_can_be_given():
    assert choose_dimension(np.array([0.5, 0.9, 0.99, 1.0]), 0.95) == 3
    assert choose_dimension(np.array([0.5, 0.9, 0.99, 1.0]), 0.9) == 2
    X, _, _ = planted()
    assert fit_simplex(X, dimension=2).k == 2
    with pytest.raises(ProbeInputError, match="method"):
        fit_simplex(X, method="nmf")
    with pytest.raises(ProbeInputError, match="threshold"):
        fit_simplex(X, threshold=1.5)


def test_barycentric_of_the_vertices_is_the_identity():
    V = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert np.allclose(barycentric(V, V), np.eye(3))


def test_the_comparison_scores_the_planted_beliefs_and_its_shuffled_control():
    X, A, _ = planted(1)
    fit = fit_simplex(X, threshold=0.99)
    groups = np.arange(N)
    cmp = compare_with_beliefs(fit, X, A, groups, n_repeats=2, seed=0)
    assert cmp.n_vertices == cmp.n_states == K + 1 and cmp.belief_dimension == K
    assert cmp.r2_heldout_contexts is not None and cmp.r2_heldout_contexts > 0.999
    assert cmp.direct_r2 is not None and cmp.direct_r2 > 0.99  # no fitted map: the vertices are the states
    assert cmp.vertex_error is not None and cmp.vertex_error < 0.05
    assert cmp.r2_shuffled_heldout_contexts is not None and cmp.r2_shuffled_heldout_contexts < 0.05


def test_above_the_hull_dimension_the_active_set_mves_encloses_every_point_and_finds_the_vertices():
    """k = 8 > HULL_MAX_DIMENSION: the MVES is fitted on extreme points plus the points left outside, and must still
    enclose every point and put each vertex within the same kind of noise bound (here loosely: 1% of the diameter,
    ~100 sigma, against ~0.5% seen)."""
    rng = np.random.default_rng(3)
    k = 8
    assert k > HULL_MAX_DIMENSION
    A = rng.dirichlet(np.full(k + 1, 0.7), size=N)
    A[: k + 1] = np.eye(k + 1)
    V = rng.standard_normal((k + 1, D))
    X = A @ V + rng.normal(0.0, SIGMA, (N, D))
    fit = fit_simplex(X, dimension=k)
    assert fit.outside_fraction == 0.0
    true = fit.pca.project(V, k)
    diameter = max(np.linalg.norm(a - b) for a in true for b in true)
    assert match_vertices(fit.vertices, true)[1] < 0.01 * diameter
