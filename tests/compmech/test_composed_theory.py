"""Exact theory of composed processes: a mixture's in-context-learning curve, a product's entropies."""

from __future__ import annotations

import math

import numpy as np

import hmm_processes as hp
from compmech.information import myopic_entropies, optimal_loss_by_position
from compmech.mixed_states import mixed_states


def _two_coin_optimal_loss(p: float, q: float, positions: int) -> np.ndarray:
    """By hand: after n tokens with k ones, P(coin p | k) is Bayes' rule on p^k (1-p)^(n-k) vs q^k (1-q)^(n-k)
    (weights 1/2 each), the next token is 1 with probability P(p|k) p + P(q|k) q, and the optimal loss at
    model position t (n = t + 1 tokens seen) is E_k[H(next)] in nats over the mixture's law of k."""
    out = []
    for t in range(positions):
        n = t + 1
        loss = 0.0
        for k in range(n + 1):
            a = 0.5 * p**k * (1 - p) ** (n - k)  # P(coin p, a given string with k ones)
            b = 0.5 * q**k * (1 - q) ** (n - k)
            r = (a * p + b * q) / (a + b)  # P(next = 1 | string)
            h = -(r * math.log(r) + (1 - r) * math.log(1 - r))
            loss += math.comb(n, k) * (a + b) * h
        out.append(loss)
    return np.array(out)


def test_mixture_of_two_coins_optimal_loss_is_the_hand_computed_learning_curve():
    mix = hp.mixture([hp.coin(0.2), hp.coin(0.8)], [0.5, 0.5])
    L = 8
    got = optimal_loss_by_position(mix, L)  # [L] nats
    np.testing.assert_allclose(got, _two_coin_optimal_loss(0.2, 0.8, L), rtol=1e-12)
    assert np.all(np.diff(got) < 0)  # the posterior over the coins sharpens with every token
    h_coin = -(0.2 * math.log(0.2) + 0.8 * math.log(0.8))
    assert got[-1] > h_coin and got[0] < math.log(2)  # between one known coin and a fair coin
    # The mixture's own curve, not a component's: each coin alone is flat at its entropy rate.
    np.testing.assert_allclose(optimal_loss_by_position(hp.coin(0.2), L), h_coin, rtol=1e-12)


def test_mixture_theory_starts_from_the_prior_over_components():
    mix = hp.mixture([hp.mess3(0.05, 0.85), hp.mess3(0.15, 0.6)], [0.3, 0.7])
    ms = mixed_states(mix, 3)
    np.testing.assert_allclose(ms.prior, mix.prior)
    np.testing.assert_allclose(hp.component_posterior(mix, ms.prior), [0.3, 0.7])
    # Word probabilities are the weighted components' (every Mess3 word has positive probability,
    # so all three enumerations list the 27 words in the same lexicographic order).
    words = ms.level(3).words
    expected = (0.3 * mixed_states(hp.mess3(0.05, 0.85), 3).level(3).probs
                + 0.7 * mixed_states(hp.mess3(0.15, 0.6), 3).level(3).probs)
    assert words.shape == (27, 3)
    np.testing.assert_allclose(ms.level(3).probs, expected, atol=1e-15)


def test_product_myopic_entropies_are_the_sum_of_its_factors():
    factors = [hp.golden_mean(), hp.even(0.3), hp.coin(0.2)]
    prod = hp.product(factors)
    depth = 5
    total = sum(myopic_entropies(mixed_states(f, depth)) for f in factors)
    np.testing.assert_allclose(myopic_entropies(mixed_states(prod, depth)), total, atol=1e-12)
