"""Pairwise-distance geometry of probed beliefs, and grouping beliefs into states."""

import numpy as np
import pytest

from probes import ProbeInputError, distance_geometry, distance_r2, distance_scale, pairwise_distances, state_labels


def points(n=50, k=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, k))


def test_pairwise_distances_all_pairs_in_order():
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    d, index = pairwise_distances(pts)
    np.testing.assert_array_equal(index, [0, 1, 2])
    np.testing.assert_allclose(d, [5.0, 1.0, np.sqrt(18.0)])  # pairs (0,1), (0,2), (1,2)


def test_pairwise_distances_subset_is_deterministic_and_sorted():
    pts = points(100)
    d1, i1 = pairwise_distances(pts, max_points=20, seed=3)
    d2, i2 = pairwise_distances(pts + 1.0, max_points=20, seed=3)  # another point set, same rows
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(d1, d2)
    assert i1.size == 20 and d1.size == 190 and np.all(np.diff(i1) > 0)
    _, i3 = pairwise_distances(pts, max_points=20, seed=4)
    assert not np.array_equal(i1, i3)
    sub = pts[i1]
    brute = [np.linalg.norm(sub[a] - sub[b]) for a in range(20) for b in range(a + 1, 20)]
    np.testing.assert_allclose(d1, brute)
    _, all_rows = pairwise_distances(pts, max_points=None)
    np.testing.assert_array_equal(all_rows, np.arange(100))


def test_scaled_copy_has_r2_one_and_slope_scale():
    pts = points()
    out = distance_r2(pts, 2.5 * pts + 7.0)
    assert out["r2"] == pytest.approx(1.0)
    assert out["slope"] == pytest.approx(2.5)
    assert out["intercept"] == pytest.approx(0.0, abs=1e-12)
    assert out["n_points"] == 50 and out["n_pairs"] == 50 * 49 // 2


def test_independent_points_have_r2_near_zero():
    out = distance_r2(points(300, seed=1), points(300, seed=2))
    assert out["r2"] < 0.02


def test_hand_example():
    # probed distances (0,1)=1, (0,2)=3, (1,2)=2; reference distances 2, 3, 1
    # least squares y = 1 + 0.5 x; corr = 1 / sqrt(2 * 2), so R² = 1/4
    out = distance_r2([[0.0], [1.0], [3.0]], [[0.0], [2.0], [3.0]])
    assert out["r2"] == pytest.approx(0.25)
    assert out["slope"] == pytest.approx(0.5)
    assert out["intercept"] == pytest.approx(1.0)


def test_constant_distances_give_nan():
    square = [[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]]  # equilateral: every distance 1
    out = distance_r2(square, points(3))
    assert np.isnan(out["r2"]) and np.isnan(out["slope"])


def test_distance_geometry_shares_pairs():
    rng = np.random.default_rng(0)
    beliefs = rng.dirichlet(np.ones(5), size=300)
    probed = beliefs + rng.normal(0, 0.01, beliefs.shape)
    emit = rng.random((5, 2))
    next_probs = (beliefs @ emit) / (beliefs @ emit).sum(1, keepdims=True)
    out = distance_geometry(probed, beliefs, next_probs, max_points=100, seed=5)
    d = out["distances"]
    _, index = pairwise_distances(probed, max_points=100, seed=5)
    np.testing.assert_array_equal(out["index"], index)
    np.testing.assert_allclose(d["probed"], pairwise_distances(probed, max_points=100, seed=5)[0])
    np.testing.assert_allclose(d["beliefs"], pairwise_distances(beliefs, max_points=100, seed=5)[0])
    np.testing.assert_allclose(d["next_token"], pairwise_distances(next_probs, max_points=100, seed=5)[0])
    assert out["beliefs"] == distance_r2(probed, beliefs, max_points=100, seed=5)
    assert out["beliefs"]["r2"] > 0.95 > out["next_token"]["r2"]
    assert out["beliefs"]["n_pairs"] == out["next_token"]["n_pairs"] == 4950


def test_state_labels_hand_example():
    b = np.array(
        [
            [0.5, 0.5],
            [1.0, 0.0],
            [0.5, 0.5 + 1e-13],  # same state up to float error
            [1.0, -0.0],  # -0.0 equals 0.0
            [0.0, 1.0],
            [1.0, 0.0],
        ]
    )
    labels, centres = state_labels(b)
    np.testing.assert_array_equal(labels, [0, 1, 0, 1, 2, 1])
    assert labels.dtype == np.int64
    np.testing.assert_allclose(centres, [[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]], atol=1e-12)
    coarse, _ = state_labels([[0.50, 0.50], [0.52, 0.48]], decimals=1)
    np.testing.assert_array_equal(coarse, [0, 0])


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: distance_r2(points(10), points(9)), "reference"),
        (lambda: distance_r2(np.full((5, 2), np.nan), points(5)), "probed"),
        (lambda: distance_r2(points(5), np.full((5, 2), np.inf)), "reference"),
        (lambda: distance_r2(points(2), points(2)), "probed"),
        (lambda: distance_r2(points(5)[:, 0], points(5)), "probed"),
        (lambda: distance_r2(points(5), points(5), max_points=1), "max_points"),
        (lambda: distance_geometry(points(6), points(6), points(5)), "next_token_probs"),
        (lambda: distance_geometry(points(6), points(6)[:, :1].T, points(6)), "beliefs"),
        (lambda: pairwise_distances(points(1)), "points"),
        (lambda: pairwise_distances([[np.nan, 1.0], [0.0, 0.0]]), "points"),
        (lambda: state_labels([[0.5, np.nan]]), "beliefs"),
        (lambda: state_labels(np.ones(3)), "beliefs"),
    ],
)
def test_bad_input(call, name):
    with pytest.raises(ProbeInputError, match=name):
        call()


def test_distance_scale_of_a_circulant_map_and_of_a_generic_one():
    rng = np.random.default_rng(3)
    # a symmetric circulant stochastic matrix scales every difference of beliefs by its non-unit eigenvalue
    E = np.array([[0.7, 0.2, 0.1], [0.1, 0.7, 0.2], [0.2, 0.1, 0.7]])
    E = (E + E.T) / 2
    c = distance_scale(E)
    assert c == pytest.approx(0.7 - 0.15)
    a, b = rng.dirichlet(np.ones(3), size=(2, 50))
    np.testing.assert_allclose(np.linalg.norm((a - b) @ E, axis=1), c * np.linalg.norm(a - b, axis=1), rtol=1e-12)
    beliefs = rng.dirichlet(np.ones(3), size=40)
    geo = distance_geometry(beliefs + 0.01 * rng.standard_normal((40, 3)), beliefs, beliefs @ E)
    assert geo["beliefs"]["r2"] == pytest.approx(geo["next_token"]["r2"], abs=1e-12)
    # a generic emission matrix does not, and neither does a map to fewer tokens than states
    assert distance_scale(rng.dirichlet(np.ones(3), size=3)) is None
    assert distance_scale(rng.dirichlet(np.ones(2), size=5)) is None
    with pytest.raises(ProbeInputError, match="matrix"):
        distance_scale(np.ones((1, 3)))
