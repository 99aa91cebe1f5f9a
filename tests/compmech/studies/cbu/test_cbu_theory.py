"""compmech.studies.cbu.theory: the spectrum of M, the predicted heads and the constrained (first-order) belief, on
hand-computed cases."""

import numpy as np
import pytest

from compmech.studies.cbu.theory import (
    constrained_beliefs,
    constrained_factor_beliefs,
    factor_tokens,
    predicted_heads,
    spectrum,
    update_vectors,
)
from hmm_processes import mess3, product, rrxor


@pytest.mark.parametrize("x", [0.05, 0.1, 0.15, 0.3, 0.4])
def test_mess3_has_eigenvalue_one_minus_3x_twice_and_it_carries_every_update(x):
    spec = spectrum(mess3(x, 0.85))
    (one, lam) = spec.components
    assert one.eigenvalue.real == pytest.approx(1.0) and one.multiplicity == 1 and one.share == pytest.approx(0.0)
    assert lam.eigenvalue.real == pytest.approx(1 - 3 * x) and lam.multiplicity == 2 and lam.is_real
    assert lam.share == pytest.approx(1.0)
    heads = predicted_heads([spec])
    if x < 1 / 3:  # one decaying head
        assert [(h.rate, h.parity) for h in heads] == [(pytest.approx(1 - 3 * x), "all")]
    else:  # an alternating eigenvalue: two heads (even and odd distances) of rate |lambda|
        assert [(h.rate, h.parity) for h in heads] == [
            (pytest.approx(3 * x - 1), "even"),
            (pytest.approx(3 * x - 1), "odd"),
        ]


def test_mess3_update_vectors_are_the_emission_columns_minus_the_centre():
    u, p, pi = update_vectors(mess3(0.1, 0.7))
    assert p == pytest.approx(np.full(3, 1 / 3)) and pi == pytest.approx(np.full(3, 1 / 3))
    beta = 0.15
    assert u[0] == pytest.approx([0.7 - 1 / 3, beta - 1 / 3, beta - 1 / 3])
    assert u.sum(axis=1) == pytest.approx(np.zeros(3), abs=1e-12)


def test_a_products_eigenvalues_are_the_products_of_its_factors():
    a, b = mess3(0.1, 0.85), rrxor()
    joint = np.sort_complex(spectrum(product([a, b])).eigenvalues)
    outer = np.sort_complex(np.outer(spectrum(a).eigenvalues, spectrum(b).eigenvalues).ravel())
    assert joint == pytest.approx(outer, abs=1e-9)
    two = spectrum(product([mess3(0.1), mess3(0.7 / 3)]))  # lambda 0.7 and 0.3
    vals = sorted(round(c.eigenvalue.real, 9) for c in two.components)
    assert vals == pytest.approx(sorted([1.0, 0.7, 0.3, 0.21]))


@pytest.mark.parametrize("lams, n_heads", [((0.7, 0.7), 1), ((0.7, 0.3), 2), ((0.7, -0.3), 3)])
def test_product_head_counts_follow_the_factors_distinct_and_negative_eigenvalues(lams, n_heads):
    factors = [mess3((1 - lam) / 3, 0.85) for lam in lams]
    heads = predicted_heads([spectrum(f) for f in factors])
    assert len(heads) == n_heads
    assert heads[0].rate == pytest.approx(0.7)
    if lams[0] == lams[1]:
        assert heads[0].factors == (0, 1)  # one head serves both factors


def test_constrained_belief_of_mess3_is_pi_plus_lambda_weighted_updates():
    proc = mess3(0.1, 0.85)
    u, _, pi = update_vectors(proc)
    tokens = np.array([[0, 2, 2, 1], [1, 1, 0, 0]])
    got = constrained_beliefs(proc, tokens)
    for n in range(2):
        for t in range(4):
            want = pi + sum(0.7 ** (t - s) * u[tokens[n, s]] for s in range(t + 1))
            assert got[n, t] == pytest.approx(want)


def test_constrained_belief_is_the_first_order_belief():
    """Weakly informative tokens (alpha = 1/3 + eps): the constrained belief's error is second order in eps."""

    def exact(proc, tokens):
        b = proc.stationary_distribution
        for x in tokens:
            b = b @ proc.T[x]
            b = b / b.sum()
        return b

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 3, size=(20, 6))
    errors = []
    for eps in (0.04, 0.02):
        proc = mess3(0.1, 1 / 3 + eps)
        c = constrained_beliefs(proc, tokens)[:, -1]
        errors.append(max(np.abs(c[n] - exact(proc, tokens[n])).max() for n in range(20)))
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.15)


def test_factor_tokens_and_constrained_factor_beliefs_split_a_products_tokens():
    a, b = mess3(0.1), mess3(0.2)
    tokens = np.array([[0, 4, 8, 5]])  # (0,0), (1,1), (2,2), (1,2)
    first, second = factor_tokens(tokens, [3, 3])
    assert first.tolist() == [[0, 1, 2, 1]] and second.tolist() == [[0, 1, 2, 2]]
    got = constrained_factor_beliefs([a, b], tokens)
    assert got[..., :3] == pytest.approx(constrained_beliefs(a, first))
    assert got[..., 3:] == pytest.approx(constrained_beliefs(b, second))


def test_constrained_beliefs_reject_tokens_outside_the_vocabulary():
    with pytest.raises(ValueError, match="vocabulary"):
        constrained_beliefs(mess3(), np.array([[0, 3]]))


def test_the_readout_rate_tends_to_lambda_for_weak_tokens_and_falls_below_it_for_informative_ones():
    from compmech.studies.cbu.theory import readout_decay

    weak = readout_decay(mess3(0.1, 0.36), 6)
    strong = readout_decay(mess3(0.1, 0.85), 6)
    assert weak.rate == pytest.approx(0.7, abs=0.01)
    assert strong.rate < 0.45  # newer evidence overrides older: the belief forgets faster than lambda^d
    assert readout_decay(mess3(0.4, 0.36), 6).rate == pytest.approx(-0.2, abs=0.01)  # alternating
    assert strong.coefficient[0] > strong.coefficient[1] > strong.coefficient[2] > 0
