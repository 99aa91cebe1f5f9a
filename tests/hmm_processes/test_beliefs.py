"""The one belief update (hmm_processes.beliefs) against brute-force products of matrices, HMMs and GHMMs."""

import itertools

import numpy as np
import pytest

import hmm_processes as hp
from hmm_processes.beliefs import GHMM_MIN_PROB, extend_beliefs, min_probability, update_beliefs


def hmm_as_ghmm() -> hp.GeneralizedHMM:
    """Mess3 in another basis: T'[x] = A^-1 T[x] A, tau' = A^-1 1, pi' = pi A (same process, tau not ones)."""
    h = hp.mess3(x=0.15, alpha=0.6)
    A = np.array([[1.0, 0.5, -0.3], [0.2, 1.0, 0.4], [-0.1, 0.3, 1.0]])
    Ainv = np.linalg.inv(A)
    T = np.einsum("ij,xjk,kl->xil", Ainv, h.T, A)
    return hp.GeneralizedHMM(T, name="mess3_rotated", normalizer=Ainv @ np.ones(3), prior=h.stationary_distribution @ A)


PROCESSES = {
    "tom_quantum": hp.tom_quantum,
    "post_quantum": hp.post_quantum,
    "fanizza": hp.fanizza,
    "mess3_as_ghmm": hmm_as_ghmm,
    "mess3": hp.mess3,
}


def brute_force(process, word):
    """(P(w), eta_w) by multiplying pi T[w1] ... T[wn] one matrix at a time, then normalising by tau."""
    T, pi, tau = hp.process_vectors(process)
    v = pi.copy()
    for x in word:
        v = v @ T[x]
    return float(v @ tau), v / (v @ tau)


@pytest.mark.parametrize("name", PROCESSES)
def test_beliefs_and_next_token_law_match_products_of_matrices(name):
    process = PROCESSES[name]()
    T, pi, tau = hp.process_vectors(process)
    V = process.vocab_size
    if name == "mess3_as_ghmm":
        assert not np.allclose(tau, 1.0) and np.any(process.T < 0)
    checked = 0
    for word in itertools.product(range(V), repeat=4):
        with np.errstate(divide="ignore", invalid="ignore"):
            p_w, eta_w = brute_force(process, word)
        if p_w <= GHMM_MIN_PROB:  # a forbidden word (post_quantum has some): no belief to compare
            continue
        checked += 1
        b = pi[None, :]
        for x in word:
            b, _ = update_beliefs(b, T[x], tau)
        np.testing.assert_allclose(b[0], eta_w, atol=1e-10)
        assert b[0] @ tau == pytest.approx(1.0, abs=1e-12)
        # P(x | w) = eta_w T[x] tau = P(wx) / P(w)
        _, p_next = update_beliefs(np.repeat(b, V, axis=0), T, tau)
        with np.errstate(divide="ignore", invalid="ignore"):
            brute = np.array([brute_force(process, word + (x,))[0] for x in range(V)]) / p_w
        np.testing.assert_allclose(p_next, brute, atol=1e-10)
        np.testing.assert_allclose(p_next, b[0] @ process.emission_matrix, atol=1e-12)
    assert checked >= V**4 // 2


def test_hmm_written_as_ghmm_is_the_same_process_with_mapped_beliefs():
    h, g = hp.mess3(x=0.15, alpha=0.6), hmm_as_ghmm()
    A = np.array([[1.0, 0.5, -0.3], [0.2, 1.0, 0.4], [-0.1, 0.3, 1.0]])
    for word in [(0,), (1, 2), (2, 2, 0, 1)]:
        ph, eh = brute_force(h, word)
        pg, eg = brute_force(g, word)
        assert pg == pytest.approx(ph, rel=1e-12)
        np.testing.assert_allclose(eg, eh @ A, atol=1e-12)


def test_extend_beliefs_lists_every_allowed_child_in_lexicographic_order():
    tq = hp.tom_quantum(1.0, 1.0)  # degenerate: some next tokens have probability exactly 0
    T, pi, tau = hp.process_vectors(tq)
    parents = np.stack([pi, extend_beliefs(pi[None, :], T, tau)[2][0]])  # [2, S]
    parent, token, child, p = extend_beliefs(parents, T, tau, min_probability(tq))
    assert min_probability(tq) == GHMM_MIN_PROB and min_probability(hp.mess3()) == 0.0
    assert np.all(p > GHMM_MIN_PROB)
    assert len(parent) < 2 * tq.vocab_size  # the second parent forbids some tokens
    order = parent * tq.vocab_size + token
    assert np.all(np.diff(order) > 0)
    for k in range(len(parent)):
        expect_b, _ = update_beliefs(parents[parent[k]][None, :], T[token[k]], tau)
        np.testing.assert_allclose(child[k], expect_b[0], atol=1e-14)
        assert p[k] == pytest.approx(parents[parent[k]] @ T[token[k]] @ tau, abs=1e-15)
