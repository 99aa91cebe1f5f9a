"""Mixtures and products of processes, and the HMM's explicit prior."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from word_stats import chi_square_pvalue, word_probabilities

import hmm_processes as hp
from hmm_processes import HMM, GeneralizedHMM, ProcessError
from hmm_processes.generalized import all_words


def test_mixture_is_block_diagonal_with_weighted_prior():
    gm, ev = hp.golden_mean(), hp.even()
    m = hp.mixture([gm, ev], [0.3, 0.7])
    assert isinstance(m, HMM) and m.num_states == 4 and m.vocab_size == 2
    np.testing.assert_allclose(m.T[:, :2, :2], gm.T)
    np.testing.assert_allclose(m.T[:, 2:, 2:], ev.T)
    assert np.all(m.T[:, :2, 2:] == 0) and np.all(m.T[:, 2:, :2] == 0)
    np.testing.assert_allclose(
        m.stationary_distribution, np.concatenate([0.3 * gm.stationary_distribution, 0.7 * ev.stationary_distribution])
    )
    for L in range(1, 6):
        np.testing.assert_allclose(
            word_probabilities(m, L), 0.3 * word_probabilities(gm, L) + 0.7 * word_probabilities(ev, L), atol=1e-14
        )


def test_mixture_default_weights_and_errors():
    m = hp.mixture([hp.coin(0.1), hp.coin(0.9)])
    np.testing.assert_allclose(m.stationary_distribution, [0.5, 0.5])
    with pytest.raises(ProcessError, match="token alphabet"):
        hp.mixture([hp.coin(), hp.mess3()])
    with pytest.raises(ProcessError, match="sum to 1"):
        hp.mixture([hp.coin(), hp.even()], [0.5, 0.6])
    with pytest.raises(ProcessError, match="one entry per component"):
        hp.mixture([hp.coin(), hp.even()], [1.0])
    with pytest.raises(ProcessError):
        hp.mixture([])
    with pytest.raises(ProcessError):
        hp.mixture([hp.coin(), "even"])


def test_mixture_samples_one_component_per_sequence():
    m = hp.mixture([hp.coin(0.0), hp.coin(1.0)], [0.25, 0.75])
    tok = np.asarray(hp.sample(m, jax.random.PRNGKey(0), 4000, 20).tokens)
    assert np.all(tok.min(axis=1) == tok.max(axis=1))  # all 0s or all 1s
    assert tok[:, 0].mean() == pytest.approx(0.75, abs=0.03)
    mix = hp.mixture([hp.golden_mean(), hp.even(0.3), hp.z1r()], [0.2, 0.5, 0.3])
    words = np.asarray(hp.sample(mix, jax.random.PRNGKey(5), 40_000, 4, with_beliefs=False).tokens)
    assert chi_square_pvalue(words, 2, word_probabilities(mix, 4)) > 1e-3


def test_mixture_with_a_ghmm_is_a_ghmm():
    m = hp.mixture([hp.tom_quantum(), hp.tom_quantum(1.0, 0.5)], [0.5, 0.5])
    assert isinstance(m, GeneralizedHMM)
    w = all_words(4, 3)
    np.testing.assert_allclose(
        m.word_probabilities(w),
        0.5 * hp.tom_quantum().word_probabilities(w) + 0.5 * hp.tom_quantum(1.0, 0.5).word_probabilities(w),
        atol=1e-14,
    )


def test_product_tokens_are_row_major_tuples():
    a, b = hp.golden_mean(), hp.mess3()
    p = hp.product([a, b])
    assert p.vocab_size == 6 and p.num_states == 6
    assert p.token_names[1 * 3 + 2] == "(1,2)"
    for L in (1, 2, 3):
        P = word_probabilities(p, L).reshape((6,) * L)
        Pa = word_probabilities(a, L).reshape((2,) * L)
        Pb = word_probabilities(b, L).reshape((3,) * L)
        # index of the joint word: token_t = x1_t * 3 + x2_t
        for wa in np.ndindex(*(2,) * L):
            for wb in np.ndindex(*(3,) * L):
                joint = tuple(x1 * 3 + x2 for x1, x2 in zip(wa, wb))
                assert P[joint] == pytest.approx(Pa[wa] * Pb[wb], abs=1e-14)


def test_product_of_periodic_processes_keeps_the_stationary_prior():
    p = hp.product([hp.z1r(), hp.z1r()])  # period-3 chains: the product chain is not irreducible
    np.testing.assert_allclose(p.stationary_distribution, np.full(9, 1 / 9))
    words = np.asarray(hp.sample(p, jax.random.PRNGKey(2), 40_000, 3, with_beliefs=False).tokens)
    assert chi_square_pvalue(words, 4, word_probabilities(p, 3)) > 1e-3


def test_product_with_a_ghmm_is_a_ghmm_and_three_factors_work():
    p = hp.product([hp.coin(0.3), hp.tom_quantum()])
    assert isinstance(p, GeneralizedHMM) and p.vocab_size == 8
    q = hp.product([hp.coin(0.3), hp.coin(0.6), hp.coin(0.5)])
    np.testing.assert_allclose(word_probabilities(q, 1), np.kron(np.kron([0.7, 0.3], [0.4, 0.6]), [0.5, 0.5]))


def test_hmm_prior_is_validated():
    T = hp.even().T
    with pytest.raises(ProcessError, match="not stationary"):
        HMM(T, prior=[0.5, 0.5])
    with pytest.raises(ProcessError, match="shape"):
        HMM(T, prior=[1.0])
    with pytest.raises(ProcessError, match=">= 0"):
        HMM(T, prior=[1.5, -0.5])
    with pytest.raises(ProcessError, match="sums to"):
        HMM(T, prior=[0.6, 0.3])
    h = HMM(T, prior=[2 / 3, 1 / 3])
    np.testing.assert_allclose(h.stationary_distribution, [2 / 3, 1 / 3])
    assert hp.even().prior is None  # unchanged default


def _bayes_posterior(components, weights, word):
    """P(component k | word) by Bayes' rule from each component's own P_k(word) = pi_k T_k^(word) tau_k."""
    likelihood = []
    for p in components:
        T, pi, tau = hp.process_vectors(p)
        v = pi
        for x in word:
            v = v @ T[x]
        likelihood.append(v @ tau)
    joint = np.asarray(weights) * np.asarray(likelihood)
    return joint / joint.sum()


def word_probabilities_of(process, word):
    """P(word) = pi T^(word) tau."""
    T, pi, tau = hp.process_vectors(process)
    v = pi
    for x in word:
        v = v @ T[x]
    return float(v @ tau)


def _belief(process, word):
    """eta_w = pi T^(w) / (pi T^(w) tau), by brute-force matrix products."""
    T, pi, tau = hp.process_vectors(process)
    v = pi
    for x in word:
        v = v @ T[x]
    return v / (v @ tau)


@pytest.mark.parametrize(
    "components, weights",
    [
        ([hp.mess3(0.05, 0.85), hp.mess3(0.15, 0.6)], [0.5, 0.5]),
        ([hp.golden_mean(), hp.even(0.3), hp.coin(0.7)], [0.2, 0.5, 0.3]),
        ([hp.tom_quantum(), hp.tom_quantum(1.0, 0.5)], [0.4, 0.6]),  # GHMM blocks: weighted by tau
    ],
)
def test_component_posterior_is_bayes_rule(components, weights):
    mix = hp.mixture(components, weights)
    assert mix.params["component_states"] == [p.num_states for p in components]
    words = all_words(mix.vocab_size, 4)[::5]  # [N, 4], a spread of words
    checked = 0
    for word in words:
        for t in range(len(word) + 1):
            prefix = word[:t]
            if word_probabilities_of(mix, prefix) <= 0:
                continue  # a word of probability zero has no posterior
            joint = _bayes_posterior(components, weights, prefix)
            checked += 1
            post = hp.component_posterior(mix, _belief(mix, prefix))
            np.testing.assert_allclose(post, joint, atol=1e-12)
    assert checked >= 15
    # at the empty context the posterior is the weights; a batch of beliefs keeps its leading shape
    batch = np.stack([_belief(mix, []), _belief(mix, [])])[None]  # [1, 2, S]
    np.testing.assert_allclose(
        hp.component_posterior(mix, batch), np.broadcast_to(weights, (1, 2, len(weights))), atol=1e-12
    )


def test_component_posterior_needs_a_mixture_and_matching_beliefs():
    with pytest.raises(ProcessError, match="not a mixture"):
        hp.component_posterior(hp.mess3(), np.ones(3) / 3)
    mix = hp.mixture([hp.coin(0.2), hp.coin(0.8)])
    with pytest.raises(ProcessError, match=r"shape \[\.\.\., 2\]"):
        hp.component_posterior(mix, np.ones(3) / 3)


# ---------------------------------------------------------------------------- factors and coupled products


def _filter(process, tokens: np.ndarray) -> np.ndarray:
    """Beliefs after each token of every row, by the one belief update: tokens [N, L] -> [N, L, S]."""
    T, pi, tau = hp.process_vectors(process)
    eta = np.repeat(pi[None], tokens.shape[0], axis=0)
    out = []
    for t in range(tokens.shape[1]):
        eta, _ = hp.update_beliefs(eta, T[tokens[:, t]], tau)
        out.append(eta)
    return np.stack(out, axis=1)


def test_factor_beliefs_are_the_factors_own_beliefs():
    factors = [hp.mess3(x=0.05, alpha=0.85), hp.tom_quantum(alpha=1.0, beta=2.25), hp.mess3(x=0.15, alpha=0.6)]
    joint = hp.product(factors)
    rng = np.random.default_rng(0)
    tokens = hp.sample_words(joint, 3, 40, 6)  # [N, L] joint tokens, row-major over the factors
    sizes = [f.vocab_size for f in factors]
    parts = np.stack(np.unravel_index(tokens, sizes), axis=0)  # [K, N, L]: each factor's own tokens
    got = hp.factor_beliefs(_filter(joint, tokens), factors)
    for k, f in enumerate(factors):
        assert got[k].shape == (40, 6, f.num_states)
        np.testing.assert_allclose(got[k], _filter(f, parts[k]), atol=1e-10)
    with pytest.raises(ProcessError, match="product of the factors' state counts"):
        hp.factor_beliefs(rng.random((4, 5)), factors)


def test_shift_coupling_at_zero_is_the_independent_product():
    a, b = hp.mess3(x=0.05, alpha=0.85), hp.mess3(x=0.15, alpha=0.6)
    zero = hp.shift_coupled(a, b, 0.0)
    np.testing.assert_array_equal(zero.T, hp.product([a, b]).T)
    np.testing.assert_allclose(word_probabilities(zero, 4), word_probabilities(hp.product([a, b]), 4), atol=1e-15)
    # a GHMM second factor (coupled_product with one process for every state): the same
    q = hp.tom_quantum(alpha=1.0, beta=2.25)
    np.testing.assert_allclose(
        word_probabilities(hp.coupled_product(a, [q, q, q]), 3), word_probabilities(hp.product([a, q]), 3), atol=1e-12
    )


def test_shift_coupling_makes_the_factors_dependent():
    a, b = hp.mess3(x=0.05, alpha=0.85), hp.mess3(x=0.15, alpha=0.6)
    for eps in (0.3, 1.0):
        c = hp.shift_coupled(a, b, eps)
        assert isinstance(c, HMM) and np.allclose(c.T.sum(0).sum(1), 1.0)
        assert c.params["epsilon"] == eps
        tokens = hp.sample_words(c, 1, 300, 8)
        eta = _filter(c, tokens)  # [N, L, 9]
        fa, fb = hp.factor_beliefs(eta, [a, b])
        # the first factor's own process is untouched: its tokens alone have its word probabilities
        joint = word_probabilities(c, 3).reshape(3, 3, 3, 3, 3, 3)  # [a1, b1, a2, b2, a3, b3]
        np.testing.assert_allclose(joint.sum(axis=(1, 3, 5)).reshape(-1), word_probabilities(a, 3), atol=1e-14)
        # the second factor's tokens now tell about the first's state: its belief is not its own filter
        assert np.abs(fa - _filter(a, tokens // 3)).max() > 0.005
        # but the joint belief is no longer the product of the marginals
        gap = np.abs(eta - np.einsum("nti,ntj->ntij", fa, fb).reshape(eta.shape)).max()
        assert gap > 0.01
    with pytest.raises(ProcessError, match="epsilon must be in"):
        hp.shift_coupled(a, b, 1.5)
    with pytest.raises(ProcessError, match="second factor must be an HMM"):
        hp.shift_coupled(a, hp.tom_quantum(alpha=1.0, beta=2.25), 0.1)
    with pytest.raises(ProcessError, match="first factor must be an HMM"):
        hp.coupled_product(hp.tom_quantum(alpha=1.0, beta=2.25), [b, b, b])
    with pytest.raises(ProcessError, match="one process per state"):
        hp.coupled_product(a, [b, b])
