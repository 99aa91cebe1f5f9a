"""Generalized HMMs: their own validity rules, and refusal of meaningless hidden-state quantities."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import hmm_processes as hp
from hmm_processes import GeneralizedHMM, ProcessError
from hmm_processes.generalized import all_words


def test_named_ghmms_are_valid_with_their_vectors():
    for proc in (hp.fanizza(), hp.tom_quantum(), hp.post_quantum(), hp.tom_quantum(1.0, 0.5)):
        M = proc.state_transition_matrix
        tau, pi = proc.normalizer, proc.stationary_vector
        np.testing.assert_allclose(M @ tau, tau, atol=1e-10)
        np.testing.assert_allclose(pi @ M, pi, atol=1e-10)
        assert pi @ tau == pytest.approx(1.0)
        assert proc.checked_depth >= 6
        for L in range(1, 7):
            P = proc.word_probabilities(all_words(proc.vocab_size, L))
            assert P.min() >= -1e-12 and P.sum() == pytest.approx(1.0, abs=1e-9)


def test_tom_quantum_normaliser_is_not_ones():
    tq = hp.tom_quantum()
    np.testing.assert_allclose(tq.normalizer, [1, 0, 0])
    np.testing.assert_allclose(tq.stationary_vector, [1, 0, 0])


def test_invalid_ghmms_are_rejected_with_the_reason():
    with pytest.raises(ProcessError, match="probability .* < 0"):
        GeneralizedHMM(np.array([[[-0.5]], [[1.5]]]))  # P(token 0) = -0.5
    with pytest.raises(ProcessError, match="modulus"):
        GeneralizedHMM(np.array([[[1.2, 0.0], [0.0, 0.5]], [[0.0, 0.0], [0.0, 0.5]]]))
    with pytest.raises(ProcessError, match="no eigenvalue 1"):
        GeneralizedHMM(np.array([[[0.5]], [[0.3]]]))
    with pytest.raises(ProcessError, match="shape"):
        GeneralizedHMM(np.zeros((2, 2, 3)))
    with pytest.raises(ProcessError, match="finite"):
        GeneralizedHMM(np.array([[[np.nan]], [[1.0]]]))
    # a negative word probability that only shows up in longer words: (0, 1, 0, 1)
    T = np.array(
        [
            [[0.3525054767234662, 0.1978044260926491], [0.1847930238876141, -0.13652049608653133]],
            [[-0.04433427982923632, 0.4940243770131211], [0.5829394606997271, 0.3687880114991901]],
        ]
    )
    shallow = GeneralizedHMM(T, check_depth=3)
    assert shallow.checked_depth == 3
    with pytest.raises(ProcessError, match=r"word \(0, 1, 0, 1\) gets probability"):
        GeneralizedHMM(T)


def test_hidden_states_of_a_ghmm_cannot_be_sampled():
    tq = hp.tom_quantum()
    with pytest.raises(ProcessError, match="quasi-probabilities"):
        _ = tq.stationary_distribution
    # the sampler draws its tokens and beliefs instead, and says there are no hidden states
    s = hp.sample(tq, jax.random.PRNGKey(0), 4, 5)
    assert not s.has_hidden_states and s.states is None and s.initial_states is None
    assert s.tokens.shape == (4, 5) and s.beliefs.shape == (4, 5, tq.num_states)
    assert hp.sample(hp.mess3(), jax.random.PRNGKey(0), 4, 5).has_hidden_states
    with pytest.raises(ProcessError, match="initial @ tau"):
        hp.sample(tq, jax.random.PRNGKey(0), 4, 5, initial=2 * tq.stationary_vector)


def test_ghmm_via_registry_and_round_trip_with_hmm():
    assert isinstance(hp.get_process("fanizza", lamb=0.3), GeneralizedHMM)
    rr = hp.rrxor()
    g = GeneralizedHMM.from_hmm(rr)
    w = all_words(2, 5)
    T, pi, tau = hp.process_vectors(rr)
    v = np.broadcast_to(pi, (w.shape[0], 5)).copy()
    for t in range(5):
        v = np.einsum("ni,nij->nj", v, T[w[:, t]])
    np.testing.assert_allclose(g.word_probabilities(w), v.sum(axis=1), atol=1e-14)
    back = g.to_hmm()
    np.testing.assert_allclose(back.T, rr.T)
    np.testing.assert_allclose(back.stationary_distribution, rr.stationary_distribution, atol=1e-12)
    with pytest.raises(ProcessError):
        hp.post_quantum().to_hmm()


def test_next_token_probs_are_a_distribution_even_for_quasi_beliefs():
    pq = hp.post_quantum()
    b = pq.stationary_vector
    assert np.any(b < 0)
    q = pq.next_token_probs(b)
    assert q.min() >= 0 and q.sum() == pytest.approx(1.0)
    # a belief after a word, via the update rule
    u = b @ pq.T[1]
    eta = u / (u @ pq.normalizer)
    q1 = pq.next_token_probs(eta)
    assert q1.min() >= -1e-12 and q1.sum() == pytest.approx(1.0)


def test_sample_words_is_reproducible_and_accepts_jax_keys():
    f = hp.fanizza()
    a = hp.sample_words(f, 3, 100, 12)
    b = hp.sample_words(f, 3, 100, 12)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int32 and a.shape == (100, 12)
    c = hp.sample_words(f, jax.random.PRNGKey(3), 100, 12)
    d = hp.sample_words(f, jax.random.key(3), 100, 12)
    assert c.shape == d.shape == (100, 12)
    assert not np.array_equal(hp.sample_words(f, 4, 100, 12), a)
    with pytest.raises(ProcessError):
        hp.sample_words(f, "seed", 10, 10)
    with pytest.raises(ProcessError):
        hp.sample_words(f, 0, 0, 10)


def test_sampled_ghmm_words_have_positive_probability():
    tq = hp.tom_quantum(1.0, 1.0)  # some words have probability exactly 0
    words = hp.sample_words(tq, 0, 5000, 6)
    assert np.all(tq.word_probabilities(words) > 1e-12)
    assert np.any(tq.word_probabilities(all_words(4, 2)) < 1e-12)


def test_all_words_refuses_lists_out_of_reach():
    from hmm_processes.generalized import all_words

    assert all_words(3, 2).shape == (9, 2)
    for length in (40, 2.0, True):
        with pytest.raises(ProcessError, match="all_words"):
            all_words(3, length)
