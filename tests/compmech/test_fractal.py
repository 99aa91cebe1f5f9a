"""Lyapunov spectrum and dimension of belief maps; box-counting and correlation dimensions."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hmm_processes as hp
from compmech.fractal import (
    box_counting_dimension,
    chaos_game,
    correlation_dimension,
    lyapunov_dimension,
    lyapunov_spectrum,
)


def cantor_process() -> hp.HMM:
    """Two states whose belief maps are b -> b/3 and b -> b/3 + 2/3 (b = P(state 1)), each with
    probability 1/2 whatever the belief: the Blackwell measure is the uniform Cantor measure."""
    T = np.array([[[1 / 2, 0.0], [1 / 3, 1 / 6]], [[1 / 6, 1 / 3], [0.0, 1 / 2]]])
    return hp.HMM(T, name="cantor")


def sierpinski_process() -> hp.HMM:
    """Three states, token x maps eta -> (eta + e_x) / 2 with probability 1/3: the Sierpinski triangle."""
    T = np.stack([(np.eye(3) + np.outer(np.ones(3), np.eye(3)[x])) / 6 for x in range(3)])
    return hp.HMM(T, name="sierpinski")


def test_cantor_belief_maps_have_the_known_exponent_and_dimension():
    spec = lyapunov_spectrum(cantor_process(), n_steps=20_000)
    assert spec.exponents == pytest.approx([math.log2(1 / 3)], abs=1e-9)
    assert spec.entropy_rate == pytest.approx(1.0, abs=1e-12)
    assert spec.dimension == pytest.approx(math.log(2) / math.log(3), abs=1e-9)


def test_sierpinski_belief_maps():
    spec = lyapunov_spectrum(sierpinski_process(), n_steps=20_000)
    assert spec.exponents == pytest.approx([-1.0, -1.0], abs=1e-9)
    assert spec.dimension == pytest.approx(math.log2(3), abs=1e-9)


def test_lyapunov_dimension_formula():
    assert lyapunov_dimension([], 1.0) == 0.0
    assert lyapunov_dimension([-1.0, -2.0], 5.0) == 2.0  # full dimension
    assert lyapunov_dimension([-2.0, -3.0], 1.0) == pytest.approx(0.5)
    assert lyapunov_dimension([-1.0, -2.0], 1.5) == pytest.approx(1.25)
    assert lyapunov_dimension([-np.inf], 1.0) == 0.0
    assert lyapunov_dimension([-0.5, -np.inf], 1.0) == 1.0
    with pytest.raises(ValueError):
        lyapunov_dimension([-1.0], -0.1)


def test_mess3_spectrum_and_dimension():
    spec = lyapunov_spectrum(hp.mess3(), n_steps=100_000, seed=3)
    assert spec.exponents.shape == (2,) and np.all(spec.exponents < 0)
    assert spec.exponents[0] >= spec.exponents[1]
    assert np.all(spec.stderr < 0.02)
    assert 0.3 < spec.dimension < 0.8
    wider = lyapunov_spectrum(hp.mess3(0.15, 0.6), n_steps=100_000, seed=3)
    assert 1.0 < wider.dimension < 2.0  # a thicker fractal


def test_countable_belief_sets_have_dimension_zero():
    for proc in (hp.sns(), hp.fanizza(), hp.golden_mean()):
        spec = lyapunov_spectrum(proc, n_steps=10_000)
        assert spec.dimension == 0.0


def test_chaos_game_points_are_beliefs():
    pts = chaos_game(hp.mess3(), 5000)
    assert pts.shape == (5000, 3)
    np.testing.assert_allclose(pts.sum(axis=1), 1.0)
    assert pts.min() >= 0
    q = chaos_game(hp.post_quantum(), 1000)
    np.testing.assert_allclose(q @ hp.post_quantum().normalizer, 1.0)


def test_point_cloud_dimensions_of_known_sets():
    s = chaos_game(sierpinski_process(), 20_000, seed=1)
    xy = np.stack([s[:, 1] + s[:, 2] / 2, np.sqrt(3) / 2 * s[:, 2]], axis=1)
    target = math.log2(3)
    assert correlation_dimension(xy).dimension == pytest.approx(target, abs=0.06)
    assert box_counting_dimension(xy).dimension == pytest.approx(target, abs=0.06)
    c = chaos_game(cantor_process(), 20_000, seed=1)[:, 1]
    assert correlation_dimension(c).dimension == pytest.approx(math.log(2) / math.log(3), abs=0.05)
    assert box_counting_dimension(c).dimension == pytest.approx(math.log(2) / math.log(3), abs=0.05)
    rng = np.random.default_rng(0)
    assert correlation_dimension(rng.random((4000, 2))).dimension == pytest.approx(2.0, abs=0.1)
    assert box_counting_dimension(rng.random((20_000, 2))).dimension == pytest.approx(2.0, abs=0.1)
    t = np.linspace(0, 1, 3000)
    assert correlation_dimension(np.stack([t, t**2], axis=1)).dimension == pytest.approx(1.0, abs=0.05)


def test_dimension_input_errors():
    with pytest.raises(ValueError):
        correlation_dimension(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="coincide"):
        box_counting_dimension(np.zeros((100, 2)))


@pytest.mark.parametrize(
    "params, h_mu, dim", [((0.05, 0.85), 1.1447172664, 0.5196), ((0.15, 0.6), 1.5709336191, 1.3500)]
)
def test_mess3_lyapunov_dimension_has_three_stable_decimals(params, h_mu, dim):
    """With the exact h_mu and the default steps, two seeds agree to the third decimal, within 4 stderr."""
    a = lyapunov_spectrum(hp.mess3(*params), seed=0, entropy_rate=h_mu)
    b = lyapunov_spectrum(hp.mess3(*params), seed=1, entropy_rate=h_mu)
    for s in (a, b):
        assert 0 < s.dimension_stderr < 2e-4
        assert s.dimension == pytest.approx(dim, abs=1e-3)
    assert abs(a.dimension - b.dimension) < 4 * np.hypot(a.dimension_stderr, b.dimension_stderr)
    assert round(a.dimension, 3) == pytest.approx(round(b.dimension, 3), abs=1e-3)


def _product_spectrum(factors, n_steps=200_000, seed=7):
    """The exponents a product's joint belief maps must have: each factor's (along the product of the belief sets)
    and every sum of one from each factor (across it), from each factor's own chaos game, with standard errors."""
    specs = [lyapunov_spectrum(f, n_steps=n_steps, seed=seed) for f in factors]
    (a, sa), (b, sb) = ((s.exponents, s.stderr) for s in specs)
    values = list(a) + list(b) + [x + y for x in a for y in b]
    errors = list(sa) + list(sb) + [math.hypot(ex, ey) for ex in sa for ey in sb]
    order = np.argsort(values)[::-1]
    return np.array(values)[order], np.array(errors)[order]


@pytest.mark.parametrize(
    "factors",
    [(hp.mess3(), hp.mess3(0.15, 0.6)), (hp.mess3(0.15, 0.6), hp.tom_quantum(1.0, 3.0))],
    ids=["mess3 x mess3", "mess3 x tom_quantum"],
)
def test_product_exponents_are_the_factors_within_their_errors(factors):
    """At the step budget process_info gives a 9-state product (1e6 * 12 / (V (S-1)^2)), each chain now burns in its
    tangent frame: before, 512 unaligned chains of 40 steps gave -1.166 +- 0.0024 against the factors' -1.128."""
    prod = hp.product(list(factors))
    V, S = prod.vocab_size, prod.num_states
    budget = int(1_000_000 * 12 / (V * (S - 1) ** 2))
    spec = lyapunov_spectrum(prod, n_steps=budget, seed=0)
    want, want_se = _product_spectrum(factors)
    err = np.hypot(spec.stderr, want_se)
    assert np.all(np.abs(spec.exponents - want) <= 4 * err), (spec.exponents, want, err)
    assert np.all(spec.stderr < 0.01)
    assert spec.clusters == ()  # distinct exponents, each told apart
    assert spec.burn_in >= 200 and spec.n_steps // spec.n_chains >= spec.burn_in


def test_equal_exponents_are_one_cluster_reported_as_their_mean():
    """Two identical factors: each of their exponents occurs twice. A Gram-Schmidt frame splits an equal pair by
    finite-time fluctuations (about 0.01 here, whatever the number of chains); the pair is reported as its
    mean, with its error widened by half the split, and covers the true value."""
    m = hp.mess3(0.15, 0.6)
    spec = lyapunov_spectrum(hp.product([m, m]), n_steps=20_000, seed=0)
    want, want_se = _product_spectrum((m, m))
    assert np.all(np.abs(spec.exponents - want) <= 4 * np.hypot(spec.stderr, want_se))
    assert (0, 1) in spec.clusters and (2, 3) in spec.clusters
    assert spec.exponents[0] == spec.exponents[1] and spec.exponents[2] == spec.exponents[3]
