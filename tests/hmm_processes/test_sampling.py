"""The batched sampler: shapes, alignment with exact beliefs, frequencies."""

import jax
import numpy as np
import pytest
from f32_sampler import sampler_beliefs
from tolerances import F32_U, assert_within, gamma32

import hmm_processes as hp
from compmech import belief_trajectories
from hmm_processes.sampling import GHMM_SAMPLING_MIN_PROB

# Tolerances: the float32 sampler's beliefs and laws against exact float64 ones within f32_sampler's rounding
# bounds (tests/conftest.py, rule 1).


def hmm_bounds(h, tokens):
    """(beliefs, laws, their bounds) of the float32 HMM sampler on ``tokens``."""
    return sampler_beliefs(h.T, np.ones(h.T.shape[1]), h.stationary_distribution, tokens, generalized=False)


def test_shapes_and_dtypes():
    h = hp.mess3()
    s = hp.sample(h, jax.random.key(0), 7, 5)
    assert s.tokens.shape == (7, 5) and s.tokens.dtype == np.int32
    assert s.states.shape == (7, 5) and s.initial_states.shape == (7,)
    assert s.beliefs.shape == (7, 5, 3) and s.next_token_probs.shape == (7, 5, 3)
    _, _, e_b, _ = hmm_bounds(h, np.asarray(s.tokens))
    # each belief within its bound, and their float32 sum of 3 within gamma_3 of the sum
    assert_within(np.asarray(s.beliefs).sum(-1), 1.0, e_b.sum(-1) + gamma32(3), "belief sums")


def test_beliefs_match_exact_float64_beliefs():
    h = hp.mess3()
    s = hp.sample(h, jax.random.key(1), 256, 12)
    exact, logp = belief_trajectories(h, np.asarray(s.tokens))
    assert np.all(np.isfinite(logp))
    _, _, e_b, e_p = hmm_bounds(h, np.asarray(s.tokens))
    assert_within(np.asarray(s.beliefs), exact, e_b, "beliefs")
    assert_within(np.asarray(s.next_token_probs), exact @ h.emission_matrix, e_p, "next-token laws")


def test_hidden_state_path_is_consistent_with_T():
    """Every sampled (state, token, next state) triple has positive probability under T."""
    h = hp.even()
    s = hp.sample(h, jax.random.key(2), 500, 20)
    prev = np.concatenate([np.asarray(s.initial_states)[:, None], np.asarray(s.states)[:, :-1]], axis=1)
    probs = h.T[np.asarray(s.tokens), prev, np.asarray(s.states)]
    assert np.all(probs > 0)


def test_alignment_two_step_hand_computed():
    """Golden mean at p = 1/2 from pi = (2/3, 1/3): after '0' the belief is (1, 0); after '01' it is (0, 1)."""
    h = hp.golden_mean(0.5)
    b, logp = belief_trajectories(h, np.array([[0, 1]]))
    # P(0) = 2/3 * 1/2 + 1/3 = 2/3; belief after 0: (2/3*1/2 + 1/3, 0) / (2/3) = (1, 0)
    np.testing.assert_allclose(b[0, 0], [1.0, 0.0])
    np.testing.assert_allclose(b[0, 1], [0.0, 1.0])
    np.testing.assert_allclose(np.exp(logp[0]), 2 / 3 * 1 / 2)
    # The sampler uses the same alignment: find a sampled sequence starting 0, 1.
    s = hp.sample(h, jax.random.key(3), 2000, 2)
    tok = np.asarray(s.tokens)
    hit = np.flatnonzero((tok[:, 0] == 0) & (tok[:, 1] == 1))[0]
    _, _, e_b, e_p = hmm_bounds(h, tok[hit : hit + 1])
    assert_within(np.asarray(s.beliefs)[hit], [[1, 0], [0, 1]], e_b[0], "beliefs after 0, 1")
    assert_within(np.asarray(s.next_token_probs)[hit, 1], [1, 0], e_p[0, 1], "law after 0, 1")


def test_first_token_frequencies_match_stationary_emission():
    h = hp.mess3(x=0.15, alpha=0.6)
    s = hp.sample(h, jax.random.key(4), 60000, 1, with_beliefs=False, with_next_token_probs=False)
    freq = np.bincount(np.asarray(s.tokens)[:, 0], minlength=3) / 60000
    np.testing.assert_allclose(freq, h.stationary_distribution @ h.emission_matrix, atol=0.01)
    assert s.beliefs is None and s.next_token_probs is None


def test_same_key_same_samples_and_bad_arguments():
    h = hp.mess3()
    a = hp.sample(h, jax.random.key(5), 10, 10)
    b = hp.sample(h, jax.random.key(5), 10, 10)
    np.testing.assert_array_equal(np.asarray(a.tokens), np.asarray(b.tokens))
    with pytest.raises(hp.ProcessError, match="batch and length"):
        hp.sample(h, jax.random.key(0), 0, 10)


GHMMS = {
    "tom_quantum": hp.tom_quantum,
    "post_quantum": hp.post_quantum,
    "fanizza": hp.fanizza,
    "tom_quantum_degenerate": lambda: hp.tom_quantum(1.0, 1.0),
}


@pytest.mark.parametrize("name", GHMMS)
def test_ghmm_word_frequencies_match_exact_probabilities(name):
    """Chi-square of sampled words of length 4 (3 for the 4-token processes) against pi T^(w) tau."""
    from word_stats import chi_square_pvalue, word_probabilities

    g = GHMMS[name]()
    L = 3 if g.vocab_size > 3 else 4
    s = hp.sample(g, jax.random.key(11), 40000, L, with_beliefs=False, with_next_token_probs=False)
    assert not s.has_hidden_states
    assert chi_square_pvalue(np.asarray(s.tokens), g.vocab_size, word_probabilities(g, L)) > 1e-3


@pytest.mark.parametrize("name", GHMMS)
def test_ghmm_sampler_beliefs_match_exact_beliefs(name):
    g = GHMMS[name]()
    s = hp.sample(g, jax.random.key(12), 512, 10)
    exact, logp = belief_trajectories(g, np.asarray(s.tokens))
    assert np.all(np.isfinite(logp)), "the sampler drew a word of probability zero"
    _, _, e_b, e_p = sampler_beliefs(
        g.T, g.normalizer, g.stationary_vector, np.asarray(s.tokens), generalized=True, min_prob=GHMM_SAMPLING_MIN_PROB
    )
    b = np.asarray(s.beliefs)
    assert_within(b, exact, e_b, "quasi-beliefs")
    tau = g.normalizer
    # eta @ tau = 1 up to the beliefs' bounds (the product is float64 here; gamma_S of float32 covers its rounding)
    assert_within(b @ tau, 1.0, e_b @ np.abs(tau) + gamma32(g.T.shape[1]) * (np.abs(b) @ np.abs(tau)), "eta @ tau")
    nxt = np.asarray(s.next_token_probs)
    assert nxt.min() >= 0
    assert_within(nxt.sum(-1), 1.0, e_p.sum(-1) + gamma32(g.vocab_size), "law sums")
    assert_within(nxt, exact @ g.emission_matrix, e_p, "next-token laws")
    assert_within(np.asarray(s.prior), g.stationary_vector, F32_U * np.abs(g.stationary_vector), "prior")
