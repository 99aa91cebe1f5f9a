"""Spectral clustering of directions (probes.subspace_clustering) recovers planted subspaces and their factors."""

import numpy as np

from probes.subspace_clustering import cluster_directions, cluster_span, factor_recovery


def planted_directions(seed=0, n_groups=3, dim=3, per_group=10, d=40):
    """per_group random directions inside each of n_groups random orthogonal dim-dimensional subspaces, each moved
    off its subspace by noise of 0.02 per coordinate (|cos| across groups ~0.1 instead of 0)."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((d, n_groups * dim)))
    bases = [Q[:, g * dim : (g + 1) * dim] for g in range(n_groups)]
    U = np.vstack([rng.standard_normal((per_group, dim)) @ b.T for b in bases])
    U = U + 0.02 * rng.standard_normal(U.shape)
    truth = np.repeat(np.arange(n_groups), per_group)
    perm = rng.permutation(len(U))
    return U[perm], truth[perm], bases


def same_partition(a, b):
    return all((a[i] == a[j]) == (b[i] == b[j]) for i in range(len(a)) for j in range(len(a)))


def test_planted_subspaces_are_recovered_with_their_number_from_the_eigengap():
    U, truth, bases = planted_directions()
    c = cluster_directions(U, max_clusters=6)
    assert c.chosen_by_eigengap and c.n_clusters == 3
    assert same_partition(c.labels, truth)
    for g in range(3):
        span = cluster_span(U[c.members(g)])
        assert span.shape[1] <= 3
        # the span is one of the planted subspaces: cosines of the principal angles near 1 (the noise tilts it by
        # about 0.02 sqrt(d) / sqrt(per_group) / (a direction's norm ~ sqrt(dim)) ~ 0.02 rad: cos > 0.99)
        t = truth[c.members(g)][0]
        s = np.linalg.svd(bases[t].T @ span, compute_uv=False)
        assert len(s) == 3 and np.all(s > 0.99), s


def test_a_given_number_of_clusters_is_used():
    U, _, _ = planted_directions(1)
    assert cluster_directions(U, n_clusters=2).n_clusters == 2


def test_factor_recovery_finds_which_subspace_holds_which_factor():
    rng = np.random.default_rng(0)
    U, truth, bases = planted_directions(2, n_groups=2, dim=2, per_group=8, d=12)
    N = 3000
    beliefs = [rng.dirichlet(np.ones(3), size=N) for _ in range(2)]  # two independent 3-state factors
    # activations: factor k's belief (2 affine dims) embedded in subspace k, plus small noise
    X = sum((b[:, :2] - b[:, :2].mean(axis=0)) @ B.T for b, B in zip(beliefs, bases)) + 1e-3 * rng.standard_normal(
        (N, 12)
    )
    c = cluster_directions(U, max_clusters=4)
    spans = [cluster_span(U[c.members(g)]) for g in range(c.n_clusters)]
    rec = factor_recovery(X, spans, beliefs, np.arange(N), n_repeats=2)
    assert c.n_clusters == 2 and rec.one_to_one and rec.n_recovered == 2
    for g, best in enumerate(rec.best_factor):
        assert best is not None
        r2 = rec.r2[g]
        own, other = r2[best], r2[1 - best]
        assert own is not None and own > 0.99  # its own factor, held out
        assert other is not None and other < 0.05  # the other factor: nothing
