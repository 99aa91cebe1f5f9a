"""`probes.similarity`: linear CKA, debiased CKA and the orthogonal Procrustes distance, against their definitions.

Tolerances (float64, unit roundoff u = eps / 2). Every measure is built from inner products of N-long columns; an
entry of A^T B carries an error of at most gamma_N |A|^T |B| with gamma_N ~ N u (Higham, Accuracy and Stability,
3.5). Relative to ||X^T X||_F that is at most gamma_N ||X||_F^2 / ||X^T X||_F <= gamma_N sqrt(D) (since
||X^T X||_F >= ||X||_F^2 / sqrt(D)). Rotating by Q adds gamma_D sqrt(D) per entry, and centring a column shifted
by b loses a factor (1 + |b| / spread). The CKA ratio combines a few such terms, so

    tol = 8 (N + D) sqrt(D) eps (1 + shift)

(8: the handful of products in the ratio, with room for eps = 2u). The Procrustes nuclear norm adds a backward-
stable SVD of a D x D matrix (error <= D^2 u per singular value summed), and near 0 its square root turns an error
e into sqrt(2 e). The debiased CKA subtracts terms each of size up to ||X||_F^4 to get N (N - 3) HSIC_u, so its
error is amplified by ``amplification = ||X||_F^4 / (N (N - 3) HSIC_u(K, K))``, computed from the data below.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from probes import ProbeInputError
from probes.similarity import (
    MEASURES,
    compare_representations,
    debiased_cka,
    linear_cka,
    permutation_null,
    procrustes_distance,
    similarity_matrix,
)

EPS = np.finfo(np.float64).eps


def tol(n: int, d: int, shift: float = 0.0) -> float:
    """The bound of the module docstring for N rows of width D."""
    return 8 * (n + d) * math.sqrt(d) * EPS * (1.0 + shift)


def procrustes_tol(n: int, d: int, shift: float = 0.0) -> float:
    """The nuclear norm's error (products plus the SVD's D^2 u), through the square root near 0."""
    e = tol(n, d, shift) + d * d * EPS
    return math.sqrt(2 * e)


def orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))  # Haar-distributed


def data(seed: int, n: int, d: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


# -- brute force from the definitions ---------------------------------------------------------------------------


def hsic_gram(K: np.ndarray, L: np.ndarray) -> float:
    """tr(K H L H), H = I - 11^T / n (Gretton et al. 2005, without the constant factor, which cancels in CKA)."""
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(K @ H @ L @ H))


def cka_gram(X: np.ndarray, Y: np.ndarray) -> float:
    K, L = X @ X.T, Y @ Y.T  # [N, N], the raw linear kernels (H centres them)
    return hsic_gram(K, L) / math.sqrt(hsic_gram(K, K) * hsic_gram(L, L))


def hsic_u_gram(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. (2012) eq. 5 on the N x N Gram matrices."""
    n = K.shape[0]
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    ones_term = (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
    return float((np.trace(Kt @ Lt) + ones_term - 2 / (n - 2) * one @ Kt @ Lt @ one) / (n * (n - 3)))


def hsic_u_statistic(K: np.ndarray, L: np.ndarray) -> float:
    """The U-statistic itself (Song et al. 2012, Theorem 2): the mean over ordered distinct quadruples (i, j, q, r)
    of h = (1/24) sum over the 24 orderings (s, t, u, v) of k_st l_st + k_st l_uv - 2 k_st l_su."""
    n = K.shape[0]
    total = 0.0
    count = 0
    for quad in itertools.permutations(range(n), 4):
        h = 0.0
        for s, t, u, v in itertools.permutations(quad):
            h += K[s, t] * L[s, t] + K[s, t] * L[u, v] - 2 * K[s, t] * L[s, u]
        total += h / 24
        count += 1
    return total / count


def amplification(X: np.ndarray) -> float:
    Xc = X - X.mean(axis=0)
    K = Xc @ Xc.T
    return float(np.sum(Xc * Xc) ** 2 / (X.shape[0] * (X.shape[0] - 3) * hsic_u_gram(K, K)))


# -- invariances ------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(6, 80),
    d=st.integers(1, 7),
    c=st.floats(0.1, 10.0),
    shift=st.floats(-3.0, 3.0),
    seed=st.integers(0, 2**16),
)
def test_a_rotation_a_scale_and_a_shift_change_nothing(n, d, c, shift, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))  # [N, D], spread ~1 per column
    Q = orthogonal(d, rng)
    b = shift * rng.normal(size=d)
    Y = c * X @ Q + b
    s = abs(shift) * math.sqrt(d) / c  # |b| over the spread, in X's units
    assert linear_cka(X, Y) == pytest.approx(1.0, abs=tol(n, d, s))
    assert procrustes_distance(X, Y) <= procrustes_tol(n, d, s)
    assert procrustes_distance(X, Y, angular=True) <= procrustes_tol(n, d, s)  # arccos near 1 ~ sqrt(2 e) too
    assert debiased_cka(X, Y) == pytest.approx(1.0, abs=tol(n, d, s) * amplification(X))
    # and the value is what it was for X alone: CKA(X, Z) = CKA(c X Q + b, Z)
    Z = rng.normal(size=(n, 3))
    assert linear_cka(Y, Z) == pytest.approx(linear_cka(X, Z), abs=tol(n, d, s))


def test_a_general_invertible_map_changes_cka_and_procrustes():
    """The counterexample: four points (+-1, 0), (0, +-1), X^T X = 2 I, stretched by A = diag(1, 10). Then
    CKA(X, X A) = ||A||_F^2 / (||I||_F ||A^2||_F) = 101 / (sqrt 2 sqrt 10001), and the Procrustes nuclear norm of the
    unit-norm pair is tr(A) / (sqrt 2 ||A||_F) = 11 / (sqrt 2 sqrt 101)."""
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    A = np.diag([1.0, 10.0])
    assert linear_cka(X, X @ A) == pytest.approx(101 / (math.sqrt(2) * math.sqrt(10001)), abs=tol(4, 2))
    nuc = 11 / (math.sqrt(2) * math.sqrt(101))
    assert procrustes_distance(X, X @ A) == pytest.approx(math.sqrt(2 - 2 * nuc), abs=procrustes_tol(4, 2))
    assert linear_cka(X, X @ A) < 0.72  # far from the 1 of any rotation


# -- against brute force ----------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(n=st.integers(4, 40), dx=st.integers(1, 6), dy=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_feature_space_cka_is_the_gram_matrix_hsic_definition(n, dx, dy, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dx)) + 2.0  # uncentred: the Gram form's H does the centring
    Y = rng.normal(size=(n, dy)) @ rng.normal(size=(dy, dy)) - 1.0
    # the Gram form works on the uncentred kernels: its traces of N x N products err by about N^2 eps ||K||_F
    # ||L||_F, relative to the centred sqrt(HSIC(K, K) HSIC(L, L)) that normalises it (large when the shift is)
    K, L = X @ X.T, Y @ Y.T
    amp = np.linalg.norm(K) * np.linalg.norm(L) / math.sqrt(hsic_gram(K, K) * hsic_gram(L, L))
    bound = tol(n, max(dx, dy)) + 4 * n * n * EPS * amp
    assert linear_cka(X, Y) == pytest.approx(cka_gram(X, Y), abs=bound)


@pytest.mark.parametrize("n", [5, 6, 7])
def test_debiased_cka_is_the_u_statistic_of_song_et_al(n):
    """Over every ordered quadruple of distinct rows (n = 7: 840 of them, 24 orderings each)."""
    rng = np.random.default_rng(n)
    X, Y = rng.normal(size=(n, 3)) + 1.0, rng.normal(size=(n, 2))
    K, L = X @ X.T, Y @ Y.T
    brute = hsic_u_statistic(K, L) / math.sqrt(hsic_u_statistic(K, K) * hsic_u_statistic(L, L))
    assert hsic_u_gram(K, L) == pytest.approx(hsic_u_statistic(K, L), rel=1e-10)  # eq. 5 is the U-statistic
    # the brute force sums 24 (n)_4 terms, each rounding once: its own error is that count times eps
    amp = max(amplification(X), amplification(Y))
    assert debiased_cka(X, Y) == pytest.approx(brute, abs=(tol(n, 3) + 24 * math.perm(n, 4) * EPS) * amp)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(5, 60), dx=st.integers(1, 6), dy=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_debiased_cka_is_the_gram_matrix_estimator(n, dx, dy, seed):
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(n, dx)), rng.normal(size=(n, dy)) + 0.5 * rng.normal(size=(n, 1))
    K, L = X @ X.T, Y @ Y.T
    brute = hsic_u_gram(K, L) / math.sqrt(hsic_u_gram(K, K) * hsic_u_gram(L, L))
    amp = max(amplification(X), amplification(Y))
    assert debiased_cka(X, Y) == pytest.approx(brute, abs=4 * tol(n, max(dx, dy)) * amp)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(3, 50), dx=st.integers(1, 6), dy=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_procrustes_distance_is_the_minimum_over_orthogonal_maps(n, dx, dy, seed):
    """scipy.linalg.orthogonal_procrustes finds Q minimising ||Y Q - X||_F; the narrower matrix padded with zeros."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dx))
    Y = X[:, :1] @ rng.normal(size=(1, dy)) + 0.3 * rng.normal(size=(n, dy))  # related, not identical

    def unit(A, width):
        A = A - A.mean(axis=0)
        A = A / np.linalg.norm(A)
        return np.pad(A, ((0, 0), (0, width - A.shape[1])))

    w = max(dx, dy)
    Xu, Yu = unit(X, w), unit(Y, w)
    Q, _ = scipy.linalg.orthogonal_procrustes(Yu, Xu)
    brute = float(np.linalg.norm(Xu - Yu @ Q))
    d = procrustes_distance(X, Y)
    # d is sqrt(2 - 2 nuc): away from 0 the square root does not amplify, so the products' bound holds for d
    assert d == pytest.approx(brute, abs=procrustes_tol(n, w) if brute < 1e-4 else 4 * tol(n, w) / brute + 1e-12)
    assert procrustes_distance(X, Y, angular=True) == pytest.approx(math.acos(1 - d * d / 2), abs=1e-12)


def test_integer_weights_count_as_repeated_rows():
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(30, 4)), rng.normal(size=(30, 3)) + rng.normal(size=(30, 1))
    counts = rng.integers(1, 5, size=30)
    Xr, Yr = np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0)
    n = int(counts.sum())
    assert linear_cka(X, Y, counts) == pytest.approx(linear_cka(Xr, Yr), abs=tol(n, 4))
    assert procrustes_distance(X, Y, counts) == pytest.approx(procrustes_distance(Xr, Yr), abs=4 * tol(n, 4))
    s = compare_representations(X, Y, counts)
    assert s.cka_debiased is None and s.cka == pytest.approx(linear_cka(Xr, Yr), abs=tol(n, 4))


# -- symmetry and range -----------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(n=st.integers(4, 60), dx=st.integers(1, 8), dy=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_every_measure_is_symmetric_and_in_range(n, dx, dy, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dx))
    Y = np.tanh(X @ rng.normal(size=(dx, dy))) + 0.5 * rng.normal(size=(n, dy))
    xy, yx = compare_representations(X, Y), compare_representations(Y, X)
    bound = tol(n, max(dx, dy))
    assert xy.cka == pytest.approx(yx.cka, abs=bound) and 0.0 <= xy.cka <= 1.0
    assert xy.cka_debiased == pytest.approx(yx.cka_debiased, abs=bound * max(amplification(X), amplification(Y)))
    assert xy.procrustes == pytest.approx(yx.procrustes, abs=procrustes_tol(n, max(dx, dy)))
    assert 0.0 <= xy.procrustes <= math.sqrt(2) and 0.0 <= xy.procrustes_angle <= math.pi / 2
    assert xy.padded == (dx != dy) and (xy.width_x, xy.width_y, xy.n_rows) == (dx, dy, n)


def test_the_similarity_matrix_is_the_pairwise_measures():
    rng = np.random.default_rng(7)
    reps = [rng.normal(size=(60, d)) for d in (2, 3, 5)]
    reps[1][:, :2] += reps[0]
    for measure in MEASURES:
        m = similarity_matrix(reps, ["a", "b", "c"], measure=measure)
        assert m.names == ("a", "b", "c") and m.values.shape == (3, 3)
        assert np.array_equal(m.values, m.values.T)
        assert np.all(np.diag(m.values) == (1.0 if measure.startswith("cka") else 0.0))
        pair = getattr(compare_representations(reps[0], reps[1]), measure)
        assert m.values[0, 1] == pair


# -- the permutation null ---------------------------------------------------------------------------------------


def test_the_permutation_null_of_cka_has_its_exact_mean_and_debiased_is_centred_on_zero():
    """For centred columns, a uniformly random permutation gives E[(sum_i x_i y_pi(i))^2] = |x|^2 |y|^2 / (N - 1),
    so E_pi CKA = tr(X^T X) tr(Y^T Y) / ((N - 1) ||X^T X||_F ||Y^T Y||_F) exactly (for these X, Y); and the unbiased
    HSIC's expectation over random pairings is exactly 0. The draws' mean must lie within 4 standard errors."""
    rng = np.random.default_rng(11)
    n, P = 300, 400
    X = rng.normal(size=(n, 3)) * [1.0, 2.0, 0.5]
    Y = rng.normal(size=(n, 5))
    null = permutation_null(X, Y, n_permutations=P, seed=3)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    exact = np.sum(Xc * Xc) * np.sum(Yc * Yc) / ((n - 1) * np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    c = null["cka"]
    assert abs(c.mean - exact) < 4 * c.values.std() / math.sqrt(P)
    assert c.mean < 0.05 and c.q95 >= c.mean and c.n_permutations == P
    dbn = null["cka_debiased"]
    assert abs(dbn.mean) < 4 * dbn.values.std() / math.sqrt(P)
    assert np.all(null["procrustes"].values <= math.sqrt(2)) and null["procrustes"].mean > 1.2  # near sqrt 2
    # the unrelated pair's own values sit inside its null
    s = compare_representations(X, Y)
    assert s.cka <= np.max(c.values) and s.procrustes >= np.min(null["procrustes"].values)


def test_a_related_pair_stands_far_outside_its_null_and_the_null_is_seeded():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(200, 4))
    Y = np.tanh(X @ rng.normal(size=(4, 6))) + 0.2 * rng.normal(size=(200, 6))
    s = compare_representations(X, Y, n_permutations=30, seed=9)
    assert s.cka > 10 * s.nulls["cka"].q95
    assert s.procrustes < s.nulls["procrustes"].q05 <= s.nulls["procrustes"].mean
    again = permutation_null(X, Y, n_permutations=30, seed=9)
    for m in MEASURES:
        assert np.array_equal(again[m].values, s.nulls[m].values)
    other = permutation_null(X, Y, n_permutations=30, seed=10)
    assert not np.array_equal(other["cka"].values, again["cka"].values)
    weighted = permutation_null(X, Y, np.ones(200), n_permutations=30, seed=9)  # uniform weights: the same draws
    assert "cka_debiased" not in weighted
    assert np.allclose(weighted["cka"].values, again["cka"].values, atol=tol(200, 6))
    assert s.to_json()["nulls"]["cka"]["n_permutations"] == 30


# -- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("X", "Y", "match"),
    [
        (np.ones((10, 2)), np.ones((9, 2)), "X has 10 rows but Y has 9"),
        (np.ones(10), np.ones((10, 2)), "X must be a 2-D"),
        (np.full((10, 2), np.nan), np.ones((10, 2)), "X contains NaN"),
        (np.ones((1, 2)), np.ones((1, 2)), "at least 2 rows"),
        (np.ones((10, 2)), np.arange(20.0).reshape(10, 2), "X has no variance"),
        (np.ones((10, 0)), np.ones((10, 2)), "at least one column"),
    ],
)
def test_bad_input_is_one_clear_error(X, Y, match):
    with pytest.raises(ProbeInputError, match=match):
        linear_cka(X, Y)


def test_too_few_rows_for_the_unbiased_hsic_and_other_bad_arguments():
    X = np.random.default_rng(0).normal(size=(3, 2))
    with pytest.raises(ProbeInputError, match="cka_debiased needs at least 4 rows"):
        debiased_cka(X, X)
    with pytest.raises(ProbeInputError, match="n_permutations"):
        permutation_null(np.eye(5), np.eye(5), n_permutations=0)
    with pytest.raises(ProbeInputError, match="sample_weight must have shape"):
        linear_cka(np.eye(5), np.eye(5), np.ones(4))
    with pytest.raises(ProbeInputError, match="measure must be one of"):
        similarity_matrix([np.eye(5)], measure="svcca")
    with pytest.raises(ProbeInputError, match="takes no sample weights"):
        similarity_matrix([np.eye(5), np.eye(5)], measure="cka_debiased", sample_weight=np.ones(5))
