"""Block and myopic entropies against closed forms; the optimal loss floor."""

import numpy as np
import pytest

import hmm_processes as hp
from compmech import block_entropies, entropy_bits, mixed_states, myopic_entropies, optimal_loss_by_position

H23 = -(2 / 3) * np.log2(2 / 3) - (1 / 3) * np.log2(1 / 3)  # H(2/3, 1/3)


def test_golden_mean_myopic_entropy_closed_form():
    """Golden Mean (p = 1/2) is Markov order 1: h(1) = H(2/3, 1/3), h(L >= 2) = 2/3 bit."""
    h = myopic_entropies(mixed_states(hp.golden_mean(0.5), 9))
    assert h[0] == pytest.approx(H23, abs=1e-12)
    np.testing.assert_allclose(h[1:], 2 / 3, atol=1e-12)


def test_even_myopic_entropy_closed_form():
    """Even process (p = 1/2): h(L) - 2/3 = H(2/3,1/3) - 2/3 halves with every two extra symbols.

    Closed form: the only context that has not synchronised after L-1 symbols is the all-ones
    word, with P(1^n) = (2/3) 2^-ceil(n/2); its uncertainty is what keeps h(L) above h_mu.
    For L >= 1: h(L) = 2/3 + P(1^(L-1)) (H(b) - 2/3 b_A ...) -- checked here numerically via the
    exact recursion of that single unsynchronised branch.
    """
    p = 0.5
    h = myopic_entropies(mixed_states(hp.even(p), 12))
    # Unsynchronised branch: after 1^n, belief over (A, B) is a_n; every other context is synchronised
    # to a state (entropy of next token: H(1/2) = 1 in A, 0 in B) and the synchronised part contributes
    # P(in A and synchronised) * 1 bit.
    expected = []
    a = np.array([2 / 3, 1 / 3])
    P1n = 1.0
    for L in range(1, 14):
        n = L - 1
        # joint distribution of (state after n symbols) is stationary; the part not in branch 1^n
        # is synchronised, so h = [pi_A - P(1^n) a_n[A]] * 1 + P(1^n) H(next | a_n)
        q1 = a[0] * p + a[1] * 1.0  # P(next = 1 | a_n)
        expected.append((2 / 3 - P1n * a[0]) * 1.0 + P1n * entropy_bits(np.array([q1, 1 - q1])))
        # update the branch: read one more 1
        v = np.array([a[1] * 1.0, a[0] * p])  # to A from B via 1, to B from A via 1
        P1n *= v.sum()
        a = v / v.sum()
    np.testing.assert_allclose(h, expected, atol=1e-12)
    assert h[0] == pytest.approx(H23, abs=1e-12)
    assert h[-1] == pytest.approx(2 / 3, abs=1e-2) and np.all(np.diff(h) <= 1e-12)


def test_block_entropy_is_cumulative_myopic_entropy():
    ms = mixed_states(hp.mess3(), 7)
    H = block_entropies(ms)
    h = myopic_entropies(ms)
    assert H[0] == 0.0
    np.testing.assert_allclose(np.diff(H), h[:-1], atol=1e-10)


def test_mess3_optimal_loss_floor_matches_paper_setup():
    """REFERENCE: mean of h(2..11) for Mess3 (0.05, 0.85) is 0.8025 nats."""
    floor = optimal_loss_by_position(hp.mess3(0.05, 0.85), 10)
    assert floor.shape == (10,)
    assert floor.mean() == pytest.approx(0.8025, abs=5e-5)
    assert np.all(np.diff(floor) < 0)
    with_start = optimal_loss_by_position(hp.mess3(), 10, start_token=True)
    assert with_start[0] == pytest.approx(np.log(3))
    np.testing.assert_allclose(with_start[1:], floor[:-1])
