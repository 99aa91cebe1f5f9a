"""The random-Markov-chain ICL curve: Monte Carlo against exact enumeration, and the curve's known values."""

import math

import numpy as np
import pytest
from scipy.special import digamma

from compmech.markov_chains import (
    TOLD_LABEL,
    all_words,
    markov_icl_curve,
    markov_icl_curve_exact,
    markov_source_posterior,
    markov_unigram_loss,
    unigram_predictive,
)
from hmm_processes import ProcessError, RandomMarkovChains, log_marginal_probability, posterior_mean


@pytest.mark.parametrize("k, alpha, P", [(2, 1.0, 10), (2, 0.3, 9), (3, 1.0, 6)])
def test_the_monte_carlo_curve_agrees_with_exact_enumeration(k, alpha, P):
    source = RandomMarkovChains(k, alpha)
    exact = markov_icl_curve_exact(source, P)
    mc = markov_icl_curve(source, P, n_samples=20_000, seed=5)
    assert mc.method == "monte_carlo" and exact.method == "exact" and mc.n_samples == 20_000
    se = np.maximum(mc.optimal_se, 1e-12)
    assert np.all(np.abs(mc.optimal - exact.optimal) <= 4 * se + 1e-12)
    se_told = np.maximum(mc.component_se[0], 1e-12)
    assert np.all(np.abs(mc.component[0] - exact.component[0]) <= 4 * se_told + 1e-12)
    # positions 0 and 1 are exact (log k: the first token and the predictive after one token are uniform)
    np.testing.assert_allclose(mc.optimal[:2], math.log(k)) and np.testing.assert_array_equal(mc.optimal_se[:2], 0)
    assert np.all(mc.optimal_se[2:] > 0) and np.all(mc.optimal_se[2:] < 0.01)


def test_the_exact_curve_has_its_known_values():
    k, alpha = 2, 1.0
    curve = markov_icl_curve_exact(RandomMarkovChains(k, alpha), 8)
    assert curve.labels == (TOLD_LABEL,) and curve.weights.tolist() == [1.0]
    np.testing.assert_array_equal(curve.seen, np.arange(8))
    # position 0: the uniform first token; position 1: the predictive after one token is still uniform
    assert curve.optimal[0] == pytest.approx(math.log(2)) and curve.optimal[1] == pytest.approx(math.log(2))
    # told the matrix at position 1: the expected entropy of a Beta(1, 1) row, psi(3) - psi(2) = 1/2
    assert curve.known_source[1] == pytest.approx(digamma(3) - digamma(2)) and curve.known_source[1] == pytest.approx(
        0.5
    )
    # not knowing the chain costs something, less and less as it is learned
    assert np.all(curve.excess[1:] > 0) and np.all(np.diff(curve.optimal[1:]) < 0)
    # the marginal probabilities of all words of a length sum to 1
    words = all_words(3, 4)
    assert np.exp(log_marginal_probability(RandomMarkovChains(3, 0.4), words)).sum() == pytest.approx(1.0)


def test_the_curve_is_reproducible_and_bad_sizes_are_refused():
    source = RandomMarkovChains(3)
    a = markov_icl_curve(source, 12, n_samples=500, seed=1)
    b = markov_icl_curve(source, 12, n_samples=500, seed=1)
    np.testing.assert_array_equal(a.optimal, b.optimal)
    assert not np.array_equal(a.optimal, markov_icl_curve(source, 12, n_samples=500, seed=2).optimal)
    with pytest.raises(ProcessError, match="n_positions must be an integer >= 1"):
        markov_icl_curve(source, 0, n_samples=10)
    with pytest.raises(ProcessError, match="n_samples must be an integer >= 2"):
        markov_icl_curve(source, 5, n_samples=1)
    with pytest.raises(ProcessError, match="exceed max_words"):
        markov_icl_curve_exact(source, 30)


def test_the_probe_target_is_the_posterior_mean():
    source = RandomMarkovChains(3, 2.0)
    tokens = np.array([[0, 0, 1, 2, 2], [2, 1, 0, 0, 1]])
    target = markov_source_posterior(source, tokens)
    assert target.shape == (2, 5, 9)
    np.testing.assert_array_equal(target, posterior_mean(source, tokens))
    np.testing.assert_allclose(target.reshape(2, 5, 3, 3).sum(axis=3), 1.0)


def test_the_unigram_strategy_loses_more_than_the_optimum_and_counts_tokens():
    source = RandomMarkovChains(3)
    np.testing.assert_allclose(
        unigram_predictive(source, np.array([[0, 0, 2]]))[0],
        [[2 / 4, 1 / 4, 1 / 4], [3 / 5, 1 / 5, 1 / 5], [3 / 6, 1 / 6, 2 / 6]],
    )
    exact = markov_icl_curve_exact(RandomMarkovChains(2), 10).optimal
    uni, se = markov_unigram_loss(RandomMarkovChains(2), 10, n_samples=4000, seed=0)
    assert uni[0] == pytest.approx(math.log(2)) and se[0] == 0
    assert np.all(uni[2:] > exact[2:] + 2 * se[2:])  # the order of the tokens carries information
    curve = markov_icl_curve(source, 24, n_samples=4000, seed=0)
    uni3, se3 = markov_unigram_loss(source, 24, n_samples=4000, seed=0)  # same chains: paired
    assert np.all(uni3[3:] > curve.optimal[3:])
    # after one token the next is uniform, the unigram law (2/4, 1/4, 1/4): cross-entropy by hand, exactly
    assert uni3[1] == pytest.approx(-(math.log(1 / 2) + 2 * math.log(1 / 4)) / 3) and se3[1] < 1e-6


def test_the_exact_unigram_loss_agrees_with_its_monte_carlo_estimate_and_the_exact_positions_count():
    from compmech.markov_chains import exact_positions, markov_unigram_loss_exact

    source = RandomMarkovChains(3, 1.0)
    exact = markov_unigram_loss_exact(source, 6)
    mc, se = markov_unigram_loss(source, 6, n_samples=20_000, seed=2)
    assert exact[0] == pytest.approx(math.log(3)) and np.all(np.abs(mc - exact) <= 4 * se + 1e-12)
    assert np.all(exact[1:] > markov_icl_curve_exact(source, 6).optimal[1:])  # blind to the order: worse than Bayes
    assert exact_positions(source, 64, 100) == 4 and exact_positions(source, 3, 100) == 3  # 3 + 9 + 27 <= 100
    assert exact_positions(source, 64, 200_000) == 11
    with pytest.raises(ProcessError, match="max_words"):
        markov_unigram_loss_exact(source, 6, max_words=10)
