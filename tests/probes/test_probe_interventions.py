"""probes.interventions: the belief subspace of a probe, steering deltas, ablations and their controls (float64: the
identities hold to rounding, tolerances 1e-9 by tests/conftest.py's rule for float64)."""

import numpy as np
import pytest

from probes import LinearProbe, ProbeInputError
from probes.interventions import (
    ablation_delta,
    complement_deltas,
    encoding_delta,
    encoding_map,
    encoding_subspace,
    probe_subspace,
    random_deltas,
    random_subspace,
    steering_delta,
)


def _planted(n: int = 300, S: int = 3, d: int = 7, seed: int = 0):
    """Activations x = eta A + b + a belief-free part in the other directions: [n, d], beliefs [n, S]."""
    rng = np.random.default_rng(seed)
    Y = rng.dirichlet(np.ones(S), size=n)
    A, b = rng.normal(size=(S, d)), rng.normal(size=d)
    return Y @ A + b, Y, A


def test_the_probe_of_a_simplex_reads_an_s_minus_1_dimensional_subspace():
    X, Y, A = _planted()
    probe = LinearProbe().fit(X, Y)
    B = probe_subspace(probe.coef_)
    assert B.shape == (7, 2) and np.allclose(B.T @ B, np.eye(2), atol=1e-12)
    assert np.allclose(probe.coef_.sum(axis=1), 0, atol=1e-9)  # the intercept absorbs the sum: coef 1 = 0
    # the span of A's centred rows (the belief's encoding) is the same subspace: no other variation is present
    enc = encoding_subspace(encoding_map(X, Y))
    assert enc.shape == (7, 2) and np.allclose(enc @ enc.T, B @ B.T, atol=1e-8)


def test_steering_delta_is_exact_and_minimal():
    X, Y, _ = _planted()
    probe = LinearProbe().fit(X, Y)
    rng = np.random.default_rng(1)
    target = rng.dirichlet(np.ones(3), size=20)
    current = probe.predict(X[:20])
    delta = steering_delta(probe.coef_, current, target)
    assert np.allclose(probe.predict(X[:20] + delta), target, atol=1e-9)
    B = probe_subspace(probe.coef_)
    assert np.allclose(delta - (delta @ B) @ B.T, 0, atol=1e-9)  # inside the belief subspace: the minimal norm
    other = delta + complement_deltas(np.ones(20), B, rng)  # any other solution is longer
    assert np.allclose(probe.predict(X[:20] + other), target, atol=1e-9)
    assert np.all(np.linalg.norm(other, axis=1) > np.linalg.norm(delta, axis=1))


def test_encoding_delta_moves_activations_as_the_belief_moves_them():
    X, Y, A = _planted()
    W = encoding_map(X, Y)
    delta = encoding_delta(W, Y[:5], Y[5:10])
    assert np.allclose(X[:5] + delta, X[5:10], atol=1e-9)


def test_controls_have_the_norms_asked_and_the_complement_is_invisible_to_the_probe():
    X, Y, _ = _planted()
    probe = LinearProbe().fit(X, Y)
    B = probe_subspace(probe.coef_)
    rng = np.random.default_rng(2)
    norms = rng.uniform(0.5, 3, size=50)
    for D in (random_deltas(norms, 7, rng), complement_deltas(norms, B, rng)):
        assert np.allclose(np.linalg.norm(D, axis=1), norms, atol=1e-12)
    comp = complement_deltas(norms, B, rng)
    assert np.allclose(probe.predict(X[:50] + comp), probe.predict(X[:50]), atol=1e-9)
    R = random_subspace(7, 2, rng)
    assert np.allclose(R.T @ R, np.eye(2), atol=1e-12)


def test_ablation_replaces_the_subspace_component_only():
    X, Y, _ = _planted()
    probe = LinearProbe().fit(X, Y)
    B = probe_subspace(probe.coef_)
    mean = X.mean(axis=0)
    ablated = X + ablation_delta(X, B, mean)
    assert np.allclose(probe.predict(ablated), Y.mean(axis=0), atol=1e-9)  # every row reads the mean belief
    assert np.allclose(ablated - (ablated @ B) @ B.T, X - (X @ B) @ B.T, atol=1e-9)  # the rest untouched
    donors = X[::-1]
    resampled = X + ablation_delta(X, B, donors)
    assert np.allclose(probe.predict(resampled), Y[::-1], atol=1e-9)  # reads the donor's belief


def test_bad_shapes_are_refused():
    with pytest.raises(ProbeInputError, match="coef must be"):
        probe_subspace(np.zeros(3))
    with pytest.raises(ProbeInputError, match="current and target"):
        steering_delta(np.ones((4, 3)), np.ones((2, 3)), np.ones((2, 2)))
    with pytest.raises(ProbeInputError, match="basis must be"):
        complement_deltas(np.ones(2), np.eye(3), np.random.default_rng(0))
    with pytest.raises(ProbeInputError, match="x must be"):
        ablation_delta(np.ones((2, 3)), np.ones((4, 1)), np.zeros(3))


def test_quasi_beliefs_with_their_own_normalizer_are_steered_exactly():
    """A generalized HMM's quasi-beliefs satisfy eta tau = 1 for a tau other than ones: the probe's coefficients then
    annihilate tau, and projecting tau out (not the ones) keeps the steering exact."""
    rng = np.random.default_rng(4)
    tau = np.array([1.0, 0.5, 2.0])
    Y = rng.normal(size=(200, 3))
    Y /= (Y @ tau)[:, None]  # every row has Y tau = 1
    A, b = rng.normal(size=(3, 7)), rng.normal(size=7)
    X = Y @ A + b
    probe = LinearProbe().fit(X, Y)
    assert probe_subspace(probe.coef_, normalizer=tau).shape == (7, 2)
    target = rng.normal(size=(10, 3))
    target /= (target @ tau)[:, None]
    delta = steering_delta(probe.coef_, probe.predict(X[:10]), target, normalizer=tau)
    assert np.allclose(probe.predict(X[:10] + delta), target, atol=1e-8)
    with pytest.raises(ProbeInputError, match="normalizer must be"):
        probe_subspace(probe.coef_, normalizer=np.zeros(3))
