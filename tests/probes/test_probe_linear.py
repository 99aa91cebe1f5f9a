"""LinearProbe and the metrics: exact recovery, noise level, rank deficiency, weights, lstsq agreement."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes import LinearProbe, ProbeInputError, mse, r2
from probes import linear as linear_mod


def planted(n=2000, d=12, k=3, noise=0.0, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d) + rng.normal(0, 2, d)).astype(dtype)
    B = rng.standard_normal((d, k))
    c = rng.standard_normal(k)
    Y = X.astype(np.float64) @ B + c + noise * rng.standard_normal((n, k))
    return X, Y, B, c


def test_recovers_planted_map_exactly_without_noise():
    X, Y, B, c = planted()
    probe = LinearProbe().fit(X, Y)
    np.testing.assert_allclose(probe.coef_, B, atol=1e-10)
    np.testing.assert_allclose(probe.intercept_, c, atol=1e-10)
    np.testing.assert_allclose(probe.predict(X), Y, atol=1e-9)
    assert probe.coef_.shape == (12, 3) and probe.intercept_.shape == (3,)
    assert probe.score(X, Y) == pytest.approx(1.0)


def test_noise_level_recovered():
    sigma = 0.3
    X, Y, B, _ = planted(n=20000, noise=sigma, seed=1)
    probe = LinearProbe().fit(X, Y)
    assert mse(Y, probe.predict(X)) == pytest.approx(sigma**2, rel=0.03)
    np.testing.assert_allclose(probe.coef_, B, atol=0.02)


def test_float32_input_is_fitted_in_float64():
    X, Y, B, c = planted(n=5000, dtype=np.float32, seed=2)
    probe = LinearProbe().fit(X, Y)
    np.testing.assert_allclose(probe.coef_, B, atol=1e-9)
    np.testing.assert_allclose(probe.predict(X), Y, atol=1e-8)
    assert probe.predict(X).dtype == np.float64


def test_without_intercept():
    X, Y, B, _ = planted(seed=3)
    Y = X @ B
    probe = LinearProbe(fit_intercept=False).fit(X, Y)
    np.testing.assert_allclose(probe.coef_, B, atol=1e-10)
    np.testing.assert_array_equal(probe.intercept_, np.zeros(3))


def test_duplicated_column_gives_minimum_norm_solution():
    X, Y, B, c = planted(n=500, d=5, seed=4)
    X2 = np.hstack([X, X[:, :1]])  # column 0 twice: singular Gram
    probe = LinearProbe().fit(X2, Y)
    np.testing.assert_allclose(probe.predict(X2), Y, atol=1e-9)
    # minimum norm splits the weight of column 0 evenly between its two copies
    np.testing.assert_allclose(probe.coef_[0], B[0] / 2, atol=1e-9)
    np.testing.assert_allclose(probe.coef_[5], B[0] / 2, atol=1e-9)
    assert probe.rank_ == 5
    Xc = X2 - X2.mean(0)
    ref = np.linalg.lstsq(Xc, Y - Y.mean(0), rcond=None)[0]
    np.testing.assert_allclose(probe.coef_, ref, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layernorm_like_rows_on_affine_hyperplane(dtype):
    rng = np.random.default_rng(5)
    n, d = 4000, 16
    h = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
    z = (h - h.mean(1, keepdims=True)) / h.std(1, keepdims=True)  # each row sums to 0
    gain, bias = rng.uniform(0.5, 2, d), rng.normal(0, 1, d)
    X = (z * gain + bias).astype(dtype)  # rows on an affine hyperplane: rank d - 1 after centring
    Y = z @ rng.standard_normal((d, 3)) + 0.5
    probe = LinearProbe().fit(X, Y)
    assert probe.rank_ == d - 1
    tol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(probe.predict(X), Y, atol=tol)
    # coefficients stay finite and modest (no noise amplification along the null direction)
    assert np.abs(probe.coef_).max() < 1e3
    # new points from the same hyperplane are predicted too
    h2 = rng.standard_normal((100, d)) @ rng.standard_normal((d, d))
    z2 = (h2 - h2.mean(1, keepdims=True)) / h2.std(1, keepdims=True)
    Y2 = z2 @ np.linalg.lstsq(z, Y - 0.5, rcond=None)[0] + 0.5
    np.testing.assert_allclose(probe.predict((z2 * gain + bias).astype(dtype)), Y2, atol=10 * tol)


def test_sample_weights_equal_row_duplication():
    X, Y, _, _ = planted(n=300, noise=0.5, seed=6)
    counts = np.random.default_rng(7).integers(0, 4, size=300)
    weighted = LinearProbe().fit(X, Y, sample_weight=counts)
    repeated = LinearProbe().fit(np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-10)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, atol=1e-10)
    pred = weighted.predict(X)
    assert mse(Y, pred, counts) == pytest.approx(mse(np.repeat(Y, counts, 0), np.repeat(pred, counts, 0)))
    assert r2(Y, pred, counts) == pytest.approx(r2(np.repeat(Y, counts, 0), np.repeat(pred, counts, 0)))
    # the weights' scale does not matter
    scaled = LinearProbe().fit(X, Y, sample_weight=counts * 1e-6)
    np.testing.assert_allclose(scaled.coef_, weighted.coef_, atol=1e-9)


def test_chunked_gram_equals_lstsq(monkeypatch):
    monkeypatch.setattr(linear_mod, "_CHUNK_BYTES", 8 * 40 * 7)  # force many small chunks
    X, Y, _, _ = planted(n=3001, d=7, noise=1.0, seed=8)
    probe = LinearProbe().fit(X, Y)
    A = np.hstack([X, np.ones((len(X), 1))])
    ref = np.linalg.lstsq(A, Y, rcond=None)[0]
    np.testing.assert_allclose(probe.coef_, ref[:-1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(probe.intercept_, ref[-1], rtol=1e-10, atol=1e-12)


def test_one_dimensional_target():
    X, Y, _, _ = planted(seed=9)
    probe = LinearProbe().fit(X, Y[:, 0])
    assert probe.coef_.shape == (12, 1)
    assert probe.predict(X).shape == (2000,)


def test_r2_is_pooled_variance_weighted():
    Y = np.array([[0.0, 0.0], [1.0, 10.0], [2.0, 20.0]])
    Yhat = Y + np.array([[0.5, 0.0], [0.0, 0.0], [-0.5, 0.0]])
    sst = 2.0 + 200.0
    assert r2(Y, Yhat) == pytest.approx(1 - 0.5 / sst)
    assert mse(Y, Yhat) == pytest.approx(0.5 / 6)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda X, Y: LinearProbe().fit(X, Y[:-1]), "Y"),
        (lambda X, Y: LinearProbe().fit(X[:, 0], Y), "X"),
        (lambda X, Y: LinearProbe().fit(np.where(np.eye(*X.shape, dtype=bool), np.nan, X), Y), "X"),
        (lambda X, Y: LinearProbe().fit(X, np.where(np.eye(*Y.shape, dtype=bool), np.inf, Y)), "Y"),
        (lambda X, Y: LinearProbe().fit(X, Y, sample_weight=-np.ones(len(X))), "sample_weight"),
        (lambda X, Y: LinearProbe().fit(X, Y, sample_weight=np.ones(3)), "sample_weight"),
        (lambda X, Y: LinearProbe().predict(X), "fit"),
        (lambda X, Y: LinearProbe().fit(X, Y).predict(X[:, :3]), "X"),
        (lambda X, Y: mse(Y, Y[:, :2]), "Yhat"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(call, name):
    X, Y, _, _ = planted(n=50, seed=10)
    with pytest.raises(ValueError, match=name):
        call(X, Y)
    assert issubclass(ProbeInputError, ValueError)


def test_nan_in_x_without_intercept_is_caught():
    X, Y, _, _ = planted(n=50, seed=11)
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="X"):
        LinearProbe(fit_intercept=False).fit(X, Y)


def test_float32_fit_makes_no_float64_copy_of_X():
    import tracemalloc

    rng = np.random.default_rng(12)
    X = rng.standard_normal((100_000, 40), dtype=np.float32)  # 16 MB; a float64 copy is 32 MB
    Y = rng.standard_normal((100_000, 3))
    tracemalloc.start()
    try:
        LinearProbe().fit(X, Y).predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 60), d=st.integers(1, 8), k=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_matches_lstsq_on_random_shapes(n, d, k, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if d > 1 and seed % 3 == 0:
        X[:, -1] = X[:, 0] * 2.0  # rank-deficient half the time
    Y = rng.standard_normal((n, k))
    probe = LinearProbe().fit(X, Y)
    A = np.hstack([X, np.ones((n, 1))])
    ref = A @ np.linalg.lstsq(A, Y, rcond=None)[0]
    np.testing.assert_allclose(probe.predict(X), ref, atol=1e-7 * (1 + np.abs(ref).max()))
