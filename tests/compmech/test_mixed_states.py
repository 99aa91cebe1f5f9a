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
