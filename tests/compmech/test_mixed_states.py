"""Exact word enumeration: probabilities, beliefs, dropped zero-probability words."""

import numpy as np
import pytest

import hmm_processes as hp
from compmech import belief_trajectories, mixed_states


@pytest.mark.parametrize("factory", [hp.mess3, hp.golden_mean, hp.even])
def test_word_probabilities_sum_to_one_at_every_depth(factory):
    ms = mixed_states(factory(), 8)
    for L in range(9):
        lvl = ms.level(L)
        assert lvl.words.shape == (len(lvl), L)
        assert lvl.probs.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(lvl.beliefs.sum(axis=1), 1.0, atol=1e-12)
        assert np.all(lvl.probs > 0)


def test_zero_probability_words_are_dropped():
    ms = mixed_states(hp.golden_mean(0.5), 6)
    for L in range(2, 7):
        words = ms.level(L).words
        assert not np.any((words[:, 1:] == 1) & (words[:, :-1] == 1)), "golden mean forbids '11'"
    # Number of golden-mean words of length L is the Fibonacci number F(L+2): 2, 3, 5, 8, 13, 21.
    assert [len(ms.level(L)) for L in range(1, 7)] == [2, 3, 5, 8, 13, 21]
    assert len(mixed_states(hp.mess3(), 5).level(5)) == 3**5


def test_probabilities_and_beliefs_match_direct_products():
    h = hp.mess3(x=0.15, alpha=0.6)
    ms = mixed_states(h, 4)
    lvl = ms.level(4)
    for n in [0, 17, 80]:
        v = ms.prior.copy()
        for x in lvl.words[n]:
            v = v @ h.T[x]
        assert lvl.probs[n] == pytest.approx(v.sum(), rel=1e-12)
        np.testing.assert_allclose(lvl.beliefs[n], v / v.sum(), rtol=1e-12)


def test_prefix_beliefs_follow_the_alignment():
    h = hp.mess3()
    ms = mixed_states(h, 5)
    pb = ms.prefix_beliefs(5)
    bt, logp = belief_trajectories(h, ms.level(5).words)
    np.testing.assert_allclose(pb, bt, atol=1e-13)
    np.testing.assert_allclose(np.exp(logp), ms.level(5).probs, rtol=1e-12)
    # position t of a length-5 word carries the belief of its length-(t+1) prefix
    np.testing.assert_allclose(pb[:, 0], ms.level(1).beliefs[ms.level(5).words[:, 0]], atol=1e-14)


def test_bad_depth():
    with pytest.raises(hp.ProcessError, match="depth"):
        mixed_states(hp.mess3(), -1)


def test_depths_must_be_whole_numbers():
    from compmech.streaming import stream_entropies

    for bad in (3.0, True, "3", None):
        with pytest.raises(hp.ProcessError, match="whole number"):
            mixed_states(hp.mess3(), bad)
        with pytest.raises(hp.ProcessError, match="whole number"):
            stream_entropies(hp.mess3(), bad)
    assert mixed_states(hp.mess3(), np.int64(2)).depth == 2


def test_enumeration_memory_is_estimated_and_refused_before_allocating():
    import time

    from compmech.mixed_states import check_enumerable, enumeration_bytes, word_counts

    # an upper bound: exact for Mess3 (every word allowed); for the golden mean (F(L+2) words) the
    # paths from both states give F(L+3)
    assert word_counts(hp.mess3(), 5).tolist() == [3.0**L for L in range(6)]
    fib = [2, 3, 5, 8, 13, 21, 34]
    assert word_counts(hp.golden_mean(), 6)[1:].tolist() == [2, 4] + fib[3:7]  # min(2^L, F(L+3))
    assert [len(mixed_states(hp.golden_mean(), 6).level(L)) for L in range(1, 7)] == fib[:6]
    assert enumeration_bytes(hp.mess3(), 12) > 3**12 * 3 * 8  # at least the last level's beliefs
    t0 = time.perf_counter()
    for depth in (40, 10**9):
        with pytest.raises(hp.ProcessError, match="use a length of at most 15") as err:
            mixed_states(hp.mess3(), depth)
        assert "\n" not in str(err.value) and "needs about" in str(err.value)
    assert time.perf_counter() - t0 < 2.0
    with pytest.raises(hp.ProcessError, match="at most 6,"):
        check_enumerable(hp.mess3(), 8, max_bytes=100_000)
    assert check_enumerable(hp.mess3(), 6, max_bytes=100_000) <= 100_000 < enumeration_bytes(hp.mess3(), 7)


GHMMS = {
    "tom_quantum": hp.tom_quantum,
    "post_quantum": hp.post_quantum,
    "fanizza": hp.fanizza,
    "tom_quantum_degenerate": lambda: hp.tom_quantum(1.0, 1.0),
}


@pytest.mark.parametrize("name", GHMMS)
def test_mixed_states_of_a_ghmm(name):
    """Quasi-beliefs with eta @ tau = 1, probabilities summing to 1, both equal to direct matrix products."""
    g = GHMMS[name]()
    T, pi, tau = hp.process_vectors(g)
    ms = mixed_states(g, 6)
    assert ms.process is g and ms.hmm is g
    np.testing.assert_allclose(ms.prior, pi)
    for L in range(7):
        lvl = ms.level(L)
        assert lvl.probs.sum() == pytest.approx(1.0, abs=1e-10)
        assert np.all(lvl.probs > hp.GHMM_MIN_PROB) and np.all(np.isfinite(lvl.beliefs))
        np.testing.assert_allclose(lvl.beliefs @ tau, 1.0, atol=1e-10)
    lvl = ms.level(6)
    for n in range(0, len(lvl), max(1, len(lvl) // 25)):
        v = pi.copy()
        for x in lvl.words[n]:
            v = v @ T[x]
        assert lvl.probs[n] == pytest.approx(v @ tau, rel=1e-9)
        np.testing.assert_allclose(lvl.beliefs[n], v / (v @ tau), atol=1e-9)
    # the words left out are exactly those of probability (numerically) zero
    from hmm_processes.generalized import all_words

    every = all_words(g.vocab_size, 4)
    p_all = g.word_probabilities(every)
    assert len(ms.level(4)) == int(np.sum(p_all > hp.GHMM_MIN_PROB))
    # prefix beliefs agree with belief_trajectories along the same words
    words = ms.level(5).words
    b, logp = belief_trajectories(g, words)
    np.testing.assert_allclose(ms.prefix_beliefs(5), b, atol=1e-10)
    np.testing.assert_allclose(np.exp(logp), ms.level(5).probs, rtol=1e-9)


def test_ghmm_entropies_and_optimal_loss_agree_with_streaming():
    from compmech.information import block_entropies, myopic_entropies, optimal_loss_by_position
    from compmech.streaming import exact_myopic_entropies

    g = hp.tom_quantum()
    ms = mixed_states(g, 6)
    h = myopic_entropies(ms)
    np.testing.assert_allclose(h, exact_myopic_entropies(g, 6).myopic_entropies, atol=1e-10)
    H = block_entropies(ms)
    np.testing.assert_allclose(np.diff(H), h[:-1], atol=1e-10)  # H(L) - H(L-1) = h(L)
    assert np.all(np.diff(h) <= 1e-12) and h[0] == pytest.approx(2.0)  # 4 equiprobable first tokens
    np.testing.assert_allclose(optimal_loss_by_position(g, 5), h[1:6] * np.log(2.0), atol=1e-12)


def test_ghmm_prior_must_be_normalised_by_tau():
    g = hp.tom_quantum()
    with pytest.raises(hp.ProcessError, match="prior @ tau"):
        mixed_states(g, 2, prior=2 * g.stationary_vector)
    other = np.array([1.0, 0.3, -0.2])  # a Bloch vector inside the disc
    ms = mixed_states(g, 2, prior=other)
    np.testing.assert_allclose(ms.level(0).beliefs[0], other)


def test_tom_quantum_next_token_distances_are_belief_distances_scaled():
    """p(x | (1, r1, r2)) = (c + o r2, c - o r2, c + o r1, c - o r1), so ||p - p'|| = sqrt(2) o ||r - r'||
    exactly: any scale-free geometry score (the distance R^2 of `compmech run`) is the same against the
    beliefs and against the next-token laws for this process (0.707 for both in its run)."""
    g = hp.tom_quantum()
    ms = mixed_states(g, 4)
    b = ms.prefix_beliefs(4).reshape(-1, 3)  # [N * 4, 3] quasi-probability vectors (1, r1, r2)
    p = ms.prefix_next_token_probs(4).reshape(-1, 4)  # [N * 4, 4]
    np.testing.assert_allclose(b[:, 0], 1.0, atol=1e-12)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(b), (2, 500))
    d_belief = np.linalg.norm(b[i, 1:] - b[j, 1:], axis=1)
    d_next = np.linalg.norm(p[i] - p[j], axis=1)
    o = 2 * 1.0 * 4.3 / (4 * (1.0 + 4.3**2))
    assert np.ptp(d_belief) > 0.1
    np.testing.assert_allclose(d_next, np.sqrt(2) * o * d_belief, atol=1e-12)
