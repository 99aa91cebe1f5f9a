"""Random Markov chains: the closed-form Bayes predictive against integration over the prior, the posterior
mean by hand, the sampler's reproducibility and law, and bad input."""

import math

import numpy as np
import pytest
from scipy import integrate

from hmm_processes import (
    ProcessError,
    RandomMarkovChains,
    bayes_predictive,
    log_marginal_probability,
    posterior_mean,
    sample_chains,
    transition_counts,
    true_predictive,
)


def _integrated(word, alpha):
    """For k = 2, by numerical integration over the two Beta(alpha, alpha) rows (p = A[0, 1], q = A[1, 0]):
    the marginal probability of ``word`` and P(next = 1 | word)."""

    def likelihood(p, q, extra=None):
        A = np.array([[1 - p, p], [q, 1 - q]])
        path = list(word) + ([extra] if extra is not None else [])
        value = 0.5
        for a, b in zip(path[:-1], path[1:]):
            value *= A[a, b]
        prior = (p * (1 - p) * q * (1 - q)) ** (alpha - 1) / math.gamma(alpha) ** 4 * math.gamma(2 * alpha) ** 2
        return value * prior

    opts = {"epsabs": 0.0, "epsrel": 1e-9}
    z = integrate.dblquad(lambda q, p: likelihood(p, q), 0, 1, 0, 1, **opts)[0]
    one = integrate.dblquad(lambda q, p: likelihood(p, q, 1), 0, 1, 0, 1, **opts)[0]
    return z, one / z


@pytest.mark.parametrize("alpha", [1.0, 3.0])
@pytest.mark.parametrize("word", [(0,), (0, 1), (1, 1, 0), (0, 0, 0, 1, 0), (1, 0, 1, 1)])
def test_the_dirichlet_count_predictive_equals_integration_over_the_prior(word, alpha):
    source = RandomMarkovChains(2, alpha)
    z, p_one = _integrated(word, alpha)
    tokens = np.array([word])
    assert bayes_predictive(source, tokens)[0, -1, 1] == pytest.approx(p_one, rel=1e-6)
    assert math.exp(log_marginal_probability(source, tokens)[0]) == pytest.approx(z, rel=1e-6)


def test_the_posterior_mean_by_hand():
    # k = 3, alpha = 0.5, tokens 0 1 0 2: transitions 0->1, 1->0, 0->2
    source = RandomMarkovChains(3, 0.5)
    mean = posterior_mean(source, np.array([[0, 1, 0, 2]])).reshape(4, 3, 3)
    assert mean.shape == (4, 3, 3)
    np.testing.assert_allclose(mean[0], np.full((3, 3), 1 / 3))
    # after 0 1: row 0 has counts (0, 1, 0) -> (0.5, 1.5, 0.5) / 2.5
    np.testing.assert_allclose(mean[1, 0], [0.2, 0.6, 0.2])
    np.testing.assert_allclose(mean[1, 1:], np.full((2, 3), 1 / 3))
    # after 0 1 0 2: row 0 (0, 1, 1) -> (0.5, 1.5, 1.5) / 3.5; row 1 (1, 0, 0) -> (1.5, 0.5, 0.5) / 2.5
    np.testing.assert_allclose(mean[3, 0], [0.5 / 3.5, 1.5 / 3.5, 1.5 / 3.5])
    np.testing.assert_allclose(mean[3, 1], [0.6, 0.2, 0.2])
    np.testing.assert_allclose(mean[3, 2], [1 / 3] * 3)
    # the predictive is the row at the current token
    pred = bayes_predictive(source, np.array([[0, 1, 0, 2]]))[0]
    np.testing.assert_allclose(pred, [mean[0, 0], mean[1, 1], mean[2, 0], mean[3, 2]])
    counts = transition_counts(source, np.array([[0, 1, 0, 2]]))[0, -1]
    np.testing.assert_array_equal(counts, [[0, 1, 1], [1, 0, 0], [0, 0, 0]])
    assert source.belief_names[1] == "0→1" and len(source.belief_names) == 9


def test_sampling_is_reproducible_and_follows_the_drawn_matrices():
    source = RandomMarkovChains(3, 0.7)
    a = sample_chains(source, 11, 4000, 40, with_matrices=True)
    b = sample_chains(source, 11, 4000, 40, with_matrices=True)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.matrices, b.matrices)
    assert not np.array_equal(a.tokens, sample_chains(source, 12, 4000, 40).tokens)
    assert a.tokens.shape == (4000, 40) and a.tokens.dtype == np.int32
    assert a.tokens.min() == 0 and a.tokens.max() == 2
    assert a.matrices.shape == (4000, 3, 3) and np.all(a.matrices >= 0)
    np.testing.assert_allclose(a.matrices.sum(axis=2), 1.0, atol=1e-12)
    # first token uniform: each state ~ 1/3 (binomial sd ~ 0.0075)
    np.testing.assert_allclose(np.bincount(a.tokens[:, 0], minlength=3) / 4000, 1 / 3, atol=0.03)
    # transitions follow each sequence's own matrix: the mean log-likelihood of the observed transitions under
    # the true matrix matches its expectation (minus the mean row entropy along the path)
    p = true_predictive(source, a.matrices, a.tokens)[:, :-1]  # [n, L-1, k]
    observed = np.log(np.take_along_axis(p, a.tokens[:, 1:, None], axis=2)[..., 0]).mean()
    expected = (p * np.log(np.clip(p, 1e-300, None))).sum(axis=2).mean()
    assert observed == pytest.approx(expected, abs=0.01)
    # the prior's row mean is uniform
    np.testing.assert_allclose(a.matrices.mean(axis=0), 1 / 3, atol=0.02)


@pytest.mark.parametrize(
    "args, message",
    [
        ((1,), "n_states must be an integer >= 2"),
        ((2.5,), "n_states must be an integer >= 2"),
        ((True,), "n_states must be an integer >= 2"),
        ((3, 0.0), "concentration must be a finite number > 0"),
        ((3, float("nan")), "concentration must be a finite number > 0"),
        ((3, "1"), "concentration must be a finite number > 0"),
    ],
)
def test_bad_parameters_raise_a_process_error(args, message):
    with pytest.raises(ProcessError, match=message):
        RandomMarkovChains(*args)


def test_bad_tokens_and_sizes_raise_a_process_error():
    source = RandomMarkovChains(3)
    with pytest.raises(ProcessError, match="must lie in 0..2"):
        posterior_mean(source, np.array([[0, 3]]))
    with pytest.raises(ProcessError, match=r"integer array \[N, L\]"):
        bayes_predictive(source, np.array([0.0, 1.0]))
    with pytest.raises(ProcessError, match="n and length must be integers >= 1"):
        sample_chains(source, 0, 0, 5)
    with pytest.raises(ProcessError, match=r"matrices must have shape \[N, k, k\]"):
        true_predictive(source, np.ones((2, 2, 2)) / 2, np.zeros((2, 3), int))
