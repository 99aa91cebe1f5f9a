"""Markov-order-k approximations (compmech/markov_order.py) against brute-force enumeration of words."""

import itertools

import numpy as np
import pytest

from compmech.markov_order import markov_approximation, order_k_beliefs
from compmech.measures import entropy_rate, myopic_entropy
from compmech.mixed_states import belief_trajectories
from hmm_processes import ProcessError, get_process

# float64 sums of at most a few hundred products of probabilities: rounding stays below 1e-13 (a few hundred
# ulps of 2^-52 each); the checks below are ~100x looser than that and far tighter than any modelling difference.
ATOL = 1e-11

PROCESSES = [
    ("mess3", {"x": 0.15, "alpha": 0.6}),
    ("rrxor", {}),
    ("golden_mean", {}),
    ("tom_quantum", {"alpha": 1.0, "beta": 2.55}),  # a generalized HMM: quasi-probability beliefs
]


def _words(process, length):
    """Every allowed word of ``length`` with its exact belief after it and its probability."""
    V = process.vocab_size
    words = np.array(list(itertools.product(range(V), repeat=length)), dtype=np.int64)
    beliefs, logp = belief_trajectories(process, words)
    keep = np.isfinite(logp)
    return words[keep], beliefs[keep, -1], np.exp(logp[keep])


@pytest.mark.parametrize("name, params", PROCESSES)
@pytest.mark.parametrize("k", [1, 2])
def test_order_k_beliefs_are_the_posterior_given_the_last_k_tokens_by_brute_force(name, params, k):
    process = get_process(name, **params)
    L = 4
    words, _, _ = _words(process, L)
    got = order_k_beliefs(process, words, k)  # [N, L, S]
    for t in range(L):
        # brute force: every allowed word of length t+1, grouped by its last k tokens; the posterior over states
        # given only the window is the probability-weighted mean of the full beliefs of the words sharing it
        full, beliefs, probs = _words(process, t + 1)
        window = full[:, max(0, t - k + 1) :]
        for n in range(0, len(words), max(1, len(words) // 7)):
            same = np.all(window == words[n, max(0, t - k + 1) : t + 1], axis=1)
            expected = probs[same] @ beliefs[same] / probs[same].sum()
            np.testing.assert_allclose(got[n, t], expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("name, params", PROCESSES)
def test_a_window_as_long_as_the_string_gives_the_true_belief(name, params):
    process = get_process(name, **params)
    words, beliefs, _ = _words(process, 3)
    np.testing.assert_allclose(order_k_beliefs(process, words, 3)[:, -1], beliefs, rtol=0, atol=ATOL)


@pytest.mark.parametrize("name, params", PROCESSES)
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_the_approximation_keeps_the_k_plus_1_blocks_and_its_rate_is_the_myopic_entropy(name, params, k):
    process = get_process(name, **params)
    approx = markov_approximation(process, k)
    for length in range(1, k + 2):  # every block of length <= k+1 has its true probability
        words, _, probs = _words(process, length)
        _, logp = belief_trajectories(approx, words)
        np.testing.assert_allclose(np.exp(logp), probs, rtol=0, atol=ATOL)
    # h(approx_k) = H[X_{k+1} | X_1..X_k] of the process, the myopic entropy h(k+1)
    assert entropy_rate(approx) == pytest.approx(myopic_entropy(process, k + 1), abs=1e-9)


def test_the_rates_fall_towards_the_entropy_rate_and_an_order_1_markov_process_is_its_own_approximation():
    mess3 = get_process("mess3", x=0.15, alpha=0.6)
    rates = [entropy_rate(markov_approximation(mess3, k)) for k in range(4)]
    assert all(a > b for a, b in zip(rates, rates[1:]))  # Mess3 is not Markov of any finite order
    assert rates[-1] > myopic_entropy(mess3, 10)  # h(L) falls to h_mu: a longer window predicts better still
    golden = get_process("golden_mean")
    assert entropy_rate(markov_approximation(golden, 1)) == pytest.approx(entropy_rate(golden), abs=1e-12)
    assert markov_approximation(golden, 2).T.shape[1] == 3  # the golden mean forbids "11": 3 two-token words


def test_bad_orders_and_words_say_what_is_wrong():
    mess3 = get_process("mess3")
    with pytest.raises(ProcessError, match="integer >= 1; got 0"):
        order_k_beliefs(mess3, np.zeros((1, 3), int), 0)
    with pytest.raises(ProcessError, match="integer >= 0; got -1"):
        markov_approximation(mess3, -1)
    with pytest.raises(ProcessError, match=r"shape \[N, T\]"):
        order_k_beliefs(mess3, np.zeros(3, int), 1)
    with pytest.raises(ProcessError, match="not an allowed word"):
        order_k_beliefs(get_process("golden_mean"), np.array([[1, 1, 0]]), 2)
