"""Dimension measures on planted low-rank data; belief subspaces and principal angles of planted subspaces."""

import numpy as np
import pytest

from probes import ProbeInputError
from probes.dimension import (
    belief_subspace,
    principal_angles,
    probe_subspace,
    random_overlap_mean,
    random_overlap_null,
    subspace_overlap,
    variance_spectrum,
)


def planted(rng, n: int, D: int, variances: list[float]) -> np.ndarray:
    """n rows in D dims with independent variances along a random orthonormal frame (the rest zero)."""
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    Z = rng.normal(size=(n, len(variances))) * np.sqrt(variances)
    Z = (Z - Z.mean(0)) / Z.std(0) * np.sqrt(variances)  # exact sample variances
    return Z @ Q[:, : len(variances)].T + 5.0


def test_components_participation_and_effective_rank_of_planted_spectra():
    rng = np.random.default_rng(0)
    # rank 3 with variances 6, 3, 1 (shares 0.6, 0.3, 0.1) in 20 dims
    spec = variance_spectrum(planted(rng, 4000, 20, [6.0, 3.0, 1.0]))
    np.testing.assert_allclose(spec.explained[:3], [0.6, 0.3, 0.1], atol=0.02)
    assert spec.explained[3:].max() < 1e-12
    assert spec.components == {0.8: 2, 0.9: 2, 0.95: 3, 0.99: 3}
    assert spec.participation_ratio == pytest.approx(100 / 46, rel=0.03)  # (6+3+1)^2 / (36+9+1)
    p = np.array([0.6, 0.3, 0.1])
    assert spec.effective_rank == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=0.03)
    # isotropic in k dims: every measure says k
    iso = variance_spectrum(planted(rng, 20000, 12, [1.0] * 5))
    assert iso.components[0.99] == 5 and iso.participation_ratio == pytest.approx(5, rel=0.05)
    assert iso.effective_rank == pytest.approx(5, rel=0.02)


def test_weights_change_the_spectrum_like_repeated_rows():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 4)) * [3.0, 1.0, 0.5, 0.1]
    counts = rng.integers(1, 5, size=50)
    weighted = variance_spectrum(X, sample_weight=counts)
    repeated = variance_spectrum(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.explained, repeated.explained, atol=1e-12)
    assert weighted.to_dict()["components"].keys() == {"0.8", "0.9", "0.95", "0.99"}
    with pytest.raises(ProbeInputError, match="zero variance"):
        variance_spectrum(np.ones((5, 3)))
    with pytest.raises(ProbeInputError, match="thresholds"):
        variance_spectrum(X, thresholds=(0.5, 1.5))


def test_principal_angles_of_planted_subspaces():
    D = 10
    e = np.eye(D)
    assert principal_angles(e[:, :2], e[:, 2:5]) == pytest.approx([90.0, 90.0])
    assert principal_angles(e[:, :3], e[:, 1:4]) == pytest.approx([0.0, 0.0, 90.0], abs=1e-6)
    theta = np.radians(30.0)
    tilted = np.cos(theta) * e[:, 0] + np.sin(theta) * e[:, 5]
    assert principal_angles(e[:, :2], tilted[:, None]) == pytest.approx([30.0])
    # the span matters, not the basis
    rng = np.random.default_rng(2)
    A = rng.normal(size=(D, 3))
    np.testing.assert_allclose(principal_angles(A, A @ rng.normal(size=(3, 3))), 0.0, atol=1e-5)
    with pytest.raises(ProbeInputError, match="same space"):
        principal_angles(e[:, :2], np.eye(4)[:, :2])


def test_belief_subspace_finds_where_each_factor_was_embedded():
    rng = np.random.default_rng(3)
    N, D = 3000, 16
    Y1 = rng.dirichlet(np.ones(3), size=N)  # two factors' beliefs (3 states each, 2 free dims each)
    Y2 = rng.dirichlet(np.ones(3), size=N)
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    A1 = Q[:, :3] @ rng.normal(size=(3, 3))  # factor 1 lives in span(Q[:, :3]), factor 2 in span(Q[:, 3:6])
    A2 = Q[:, 3:6] @ rng.normal(size=(3, 3))
    X = Y1 @ A1.T + Y2 @ A2.T + 0.01 * rng.normal(size=(N, D))
    B1, B2 = belief_subspace(X, Y1, others=Y2), belief_subspace(X, Y2, others=Y1)
    assert B1.shape == (D, 2) and B2.shape == (D, 2)  # beliefs sum to 1: two free directions each
    np.testing.assert_allclose(B1.T @ B1, np.eye(2), atol=1e-10)
    assert principal_angles(B1, B2).min() > 89.0  # orthogonal factors
    assert principal_angles(B1, Q[:, :3]).max() < 0.5  # inside factor 1's planted span
    # alone, the other factor's share of X is noise in the fit: the angles are a few degrees off
    assert 70.0 < principal_angles(belief_subspace(X, Y1), belief_subspace(X, Y2)).min() < 89.0
    # a shared direction shows as a zero angle: factor 2's first free coordinate moves X along factor 1's Q[:, 0]
    shared = np.stack([Q[:, 0], Q[:, 4]], axis=1)  # [D, 2]
    Xs = Y1[:, :2] @ Q[:, :2].T + Y2[:, :2] @ shared.T + 0.01 * rng.normal(size=(N, D))
    angles = principal_angles(belief_subspace(Xs, Y1, others=Y2), belief_subspace(Xs, Y2, others=Y1))
    assert angles[0] < 1.0 and angles[1] > 89.0


def test_subspace_overlap_on_planted_subspaces():
    """The authors' overlap (simplexity analysis/linear_regression.py, c633bca2): sum of squared cosines of the
    principal angles over min(p, q)."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((20, 6)))
    A, B = Q[:, :2], Q[:, 2:5]
    assert subspace_overlap(A, A @ rng.standard_normal((2, 2))) == pytest.approx(1.0, abs=1e-12)  # identical spans
    assert principal_angles(A, A * 3.0).max() == pytest.approx(0.0, abs=1e-5)
    assert subspace_overlap(A, B) == pytest.approx(0.0, abs=1e-12)  # orthogonal
    assert subspace_overlap(A, np.concatenate([A, B], axis=1)) == pytest.approx(1.0, abs=1e-12)  # A inside
    half = np.concatenate([A[:, :1], B[:, :1]], axis=1)  # shares one of its two directions with A
    assert subspace_overlap(A, half) == pytest.approx(0.5, abs=1e-12)


def test_random_subspaces_overlap_at_the_nulls_mean():
    D, p, q = 16, 2, 3
    null = random_overlap_null(D, p, q, n_draws=2000, seed=1)
    assert null.mean == random_overlap_mean(D, p, q) == pytest.approx(3 / 16)
    # the Monte Carlo mean of the draws agrees with the exact mean within 4 standard errors
    rng = np.random.default_rng(2)
    draws = [subspace_overlap(rng.standard_normal((D, p)), rng.standard_normal((D, q))) for _ in range(2000)]
    assert abs(np.mean(draws) - null.mean) < 4 * null.sd / np.sqrt(2000)
    assert 0 < null.sd < null.mean < null.q95 < 1
    with pytest.raises(ProbeInputError, match="need 1 <= p, q <= D"):
        random_overlap_mean(4, 5, 1)


def test_probe_subspace_recovers_the_planted_read_out_directions():
    """Two factors' beliefs written into orthogonal directions of a 12-dim activation space (plus small noise): each
    probe's read-out span has rank S - 1 and the two overlap near 0; the same factor twice overlaps at 1."""
    rng = np.random.default_rng(3)
    N = 400
    Y1 = rng.dirichlet(np.ones(3), size=N)  # [N, 3]
    Y2 = rng.dirichlet(np.ones(2), size=N)  # [N, 2]
    Q, _ = np.linalg.qr(rng.standard_normal((12, 5)))
    X = Y1 @ Q[:, :3].T + Y2 @ Q[:, 3:5].T + 1e-2 * rng.standard_normal((N, 12))
    B1, B2 = probe_subspace(X, Y1), probe_subspace(X, Y2)
    assert (B1.shape, B2.shape) == ((12, 2), (12, 1))
    assert subspace_overlap(B1, B2) < 0.1 * random_overlap_mean(12, 2, 1)  # the null mean is 2 / 12
    assert subspace_overlap(B1, probe_subspace(X, Y1[:, ::-1])) == pytest.approx(1.0, abs=1e-9)
