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
    """Even process (p = 1/2): only the all-ones context stays unsynchronised, which gives a closed form.

    Reading 1^n from pi = (2/3, 1/3): for n = 2m, P(1^n) = 2^-m with belief (2/3, 1/3); for n = 2m + 1,
    P(1^n) = (2/3) 2^-m with belief (1/2, 1/2). Every other context is synchronised and contributes
    1 bit when in A, 0 in B. Hence, with h(L) = H[X_L | X_1..X_{L-1}] and n = L - 1:
      n = 2m:      h(L) = 2/3 + 2^-m (H(1/3) - 2/3)
      n = 2m + 1:  h(L) = 2/3 + 2^-m (2/3) (H(3/4) - 1/2)
    """
    h = myopic_entropies(mixed_states(hp.even(0.5), 13))
    H34 = entropy_bits(np.array([0.75, 0.25]))
    expected = [2 / 3 + 2.0 ** -(n // 2) * ((H23 - 2 / 3) if n % 2 == 0 else (2 / 3) * (H34 - 0.5)) for n in range(14)]
    np.testing.assert_allclose(h, expected, atol=1e-12)
    assert h[0] == pytest.approx(H23, abs=1e-12)
    assert np.all(np.diff(h) < 0) and h[-1] - 2 / 3 < 0.01


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


def test_optimal_loss_reuses_a_deeper_enumeration_exactly():
    h = hp.mess3()
    ms = mixed_states(h, 12)
    np.testing.assert_array_equal(optimal_loss_by_position(h, 10, ms=ms), optimal_loss_by_position(h, 10))
    np.testing.assert_array_equal(
        optimal_loss_by_position(h, 10, start_token=True, ms=ms), optimal_loss_by_position(h, 10, start_token=True)
    )
    shallow = mixed_states(h, 4)  # too shallow: enumerated afresh
    assert optimal_loss_by_position(h, 10, ms=shallow).shape == (10,)


def test_next_token_distribution_clips_and_renormalises():
    from compmech.information import next_token_distribution

    E = hp.mess3().emission_matrix
    b = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(next_token_distribution(b, E), b @ E, atol=1e-15)  # beliefs: unchanged
    q = next_token_distribution(np.array([[1.0, 0.0]]), np.array([[1.2, -0.2], [0.5, 0.5]]))  # negative entry
    np.testing.assert_allclose(q, [[1.0, 0.0]])
