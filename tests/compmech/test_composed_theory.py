"""Exact theory of composed processes: a mixture's in-context-learning curve, a product's entropies, and the
information measures of both (process_info reads mixtures and products from the presentation itself)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hmm_processes as hp
from compmech.information import entropy_bits, myopic_entropies, optimal_loss_by_position
from compmech.measures import (
    DecompositionError,
    ergodic_components,
    excess_entropy,
    process_info,
    product_factors,
    same_process,
    statistical_complexity,
)
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
    expected = (
        0.3 * mixed_states(hp.mess3(0.05, 0.85), 3).level(3).probs
        + 0.7 * mixed_states(hp.mess3(0.15, 0.6), 3).level(3).probs
    )
    assert words.shape == (27, 3)
    np.testing.assert_allclose(ms.level(3).probs, expected, atol=1e-15)


def test_product_myopic_entropies_are_the_sum_of_its_factors():
    factors = [hp.golden_mean(), hp.even(0.3), hp.coin(0.2)]
    prod = hp.product(factors)
    depth = 5
    total = sum(myopic_entropies(mixed_states(f, depth)) for f in factors)
    np.testing.assert_allclose(myopic_entropies(mixed_states(prod, depth)), total, atol=1e-12)


# --- information measures of mixtures and products (process_info reads the structure from the presentation) ---

H23 = -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)  # REFERENCE.md: C_mu of golden mean and even
E_GOLDEN = math.log2(3) - 4 / 3  # REFERENCE.md: E of golden mean; even's is H23
#: A quicker `process_info` for Mess3-sized components (depth 12 of the exact h(L), fewer chaos-game steps).
QUICK = dict(word_budget=3**12 * 1.6, lyapunov_steps=100_000)


def _mess3_limits(x: float, alpha: float) -> tuple[float, float]:
    """h_mu and E of Mess3 (x, alpha) from its exact h(1..13) alone (compmech.mixed_states, no measures code):
    h(13), and the partial sum of h(L) - h(13). h(L) converges geometrically with ratio <= 0.26, so h(13) is
    within 1e-7 of h_mu and the partial sum within 2e-6 of E (13 terms each off by at most 1e-7, plus the tail)."""
    h = myopic_entropies(mixed_states(hp.mess3(x, alpha), 12))  # [13]: h(1)..h(13), bits
    return float(h[-1]), float(np.sum(h - h[-1]))


def test_mixture_of_golden_mean_and_even_is_its_components_combined():
    """REFERENCE.md's textbook values, combined by the mixture formulas, against process_info of the mixture and
    against the mixture's own finite mixed-state presentation (one computation that never splits it)."""
    w = np.array([0.3, 0.7])
    mix = hp.mixture([hp.golden_mean(), hp.even()], w)
    info = process_info(mix)
    assert info.structure == "mixture" and [c.weight for c in info.components] == pytest.approx(w)
    assert [c.info.name for c in info.components] == ["golden_mean", "even"]
    assert [c.states for c in info.components] == [(0, 1), (2, 3)]
    gm, ev = (c.info for c in info.components)
    assert (gm.h_mu.value, gm.C_mu.value, gm.E.value) == pytest.approx((2 / 3, H23, E_GOLDEN), abs=1e-9)
    assert (ev.h_mu.value, ev.C_mu.value, ev.E.value) == pytest.approx((2 / 3, H23, H23), abs=1e-9)
    Hw = float(entropy_bits(w))
    E = Hw + 0.3 * E_GOLDEN + 0.7 * H23
    C = Hw + H23
    assert info.h_mu.value == pytest.approx(2 / 3, abs=1e-12) and info.h_mu.method == "exact"
    assert info.E.value == pytest.approx(E, abs=1e-9) and info.C_mu.value == pytest.approx(C, abs=1e-9)
    assert info.chi.value == pytest.approx(C - E, abs=1e-9)
    # the mixture's own MSP (finite here) gives the same numbers without splitting it
    assert excess_entropy(mix) == pytest.approx(E, abs=1e-9)
    assert statistical_complexity(mix) == pytest.approx(C, abs=1e-9)
    assert info.n_mixed_states.method == "exact" and info.markov_order.method == "infinite"  # 0^n: either one
    assert info.lyapunov_dimension.method == "not computed" and info.lyapunov_exponents == ()


def test_mixture_of_two_mess3_settings_has_exact_combinations_and_no_pooled_dimension():
    """Two Mess3 settings, weights (0.3, 0.7): E = H(w) + sum w_k E_k with the components' values from their own
    exact h(L) (today's pooled partial sum stopped near 1.0, and a pooled Lyapunov 'dimension' was printed)."""
    w = np.array([0.3, 0.7])
    settings = [(0.05, 0.85), (0.15, 0.6)]
    mix = hp.mixture([hp.mess3(*s) for s in settings], w)
    info = process_info(mix, **QUICK)
    (h1, E1), (h2, E2) = (_mess3_limits(*s) for s in settings)
    assert info.structure == "mixture" and len(info.components) == 2
    assert info.h_mu.value == pytest.approx(0.3 * h1 + 0.7 * h2, abs=1e-6)
    assert info.E.value == pytest.approx(float(entropy_bits(w)) + 0.3 * E1 + 0.7 * E2, abs=5e-6)
    assert info.E.method == "h(L) limit" and info.E.error < 1e-6
    assert info.C_mu.method == "infinite" and info.markov_order.method == "infinite"
    assert info.lyapunov_dimension.value is None and info.lyapunov_exponents == ()  # nothing pooled
    dims = [c.info.lyapunov_dimension.value for c in info.components]
    assert dims == pytest.approx([0.5196, 1.3500], abs=2e-3)  # README / test_fractal values per setting
    d = info.to_dict()
    assert d["structure"] == "mixture" and d["components"][1]["weight"] == pytest.approx(0.7)
    assert d["components"][0]["info"]["lyapunov_dimension"]["value"] == pytest.approx(0.5196, abs=2e-3)


def test_identical_components_are_one_component():
    """Two copies of Mess3 (0.15, 0.6), one with its hidden states permuted (same process, other presentation):
    one component of weight 1, so E has no H(w) term; a slightly different setting is a component of its own."""
    m = hp.mess3(0.15, 0.6)
    perm = np.array([2, 0, 1])
    shuffled = hp.HMM(m.T[:, perm][:, :, perm], name="mess3_permuted")
    assert same_process(m, shuffled) and not same_process(m, hp.mess3(0.15, 0.6001))
    assert not same_process(hp.golden_mean(), hp.even())
    mix = hp.mixture([m, shuffled], [0.4, 0.6])
    comps = ergodic_components(mix)
    assert len(comps) == 1 and comps[0].weight == pytest.approx(1.0) and comps[0].merged == ((3, 4, 5),)
    info = process_info(mix, **QUICK)
    h, E = _mess3_limits(0.15, 0.6)
    assert info.structure == "mixture" and len(info.components) == 1
    assert info.E.value == pytest.approx(E, abs=5e-6) and info.h_mu.value == pytest.approx(h, abs=1e-6)
    assert any("generate the same process" in n for n in info.notes)
    distinct = ergodic_components(hp.mixture([m, hp.mess3(0.15, 0.6001)], [0.4, 0.6]))
    assert [c.weight for c in distinct] == pytest.approx([0.4, 0.6])


def test_components_are_read_from_the_presentation_not_from_how_it_was_built():
    # an HMM written by hand with two closed classes (a coin of bias 0.2 and one of 0.9) and a prior: no params
    T = np.zeros((2, 3, 3))
    T[:, 0, 0] = [0.8, 0.2]
    T[:, 1, 2] = [0.1, 0.9]
    T[:, 2, 1] = [0.1, 0.9]
    hand = hp.HMM(T, name="two_coins", prior=[0.25, 0.375, 0.375])
    comps = ergodic_components(hand)
    assert [c.states for c in comps] == [(0,), (1, 2)] and [c.weight for c in comps] == pytest.approx([0.25, 0.75])
    assert comps[1].process.name == "two_coins[states 1-2]"
    assert same_process(comps[1].process, hp.coin(0.9))
    # a generalized HMM: tom_quantum's T.sum(0) is diagonal (three 'classes' by sign pattern), but its states
    # are one connected block; a mixture of two is two blocks
    assert len(ergodic_components(hp.tom_quantum(1.0, 3.0))) == 1
    gm = hp.mixture([hp.tom_quantum(1.0, 3.0), hp.tom_quantum(1.0, 4.3)], [0.25, 0.75])
    comps = ergodic_components(gm)
    assert [c.weight for c in comps] == pytest.approx([0.25, 0.75])
    assert [c.process.params for c in comps] == [{"alpha": 1.0, "beta": 3.0}, {"alpha": 1.0, "beta": 4.3}]
    # the same mixture in a dense basis: one block with eigenvalue 1 twice; its presentation does not say
    # whether it is one ergodic process, so process_info refuses rather than pool
    Tg, pi, tau = hp.process_vectors(gm)
    Sm = np.eye(6) + 0.3 * np.random.default_rng(0).standard_normal((6, 6))
    Si = np.linalg.inv(Sm)
    dense = hp.GeneralizedHMM(np.einsum("ij,xjk,kl->xil", Si, Tg, Sm), name="dense", normalizer=Si @ tau, prior=pi @ Sm)
    assert same_process(dense, gm)
    with pytest.raises(DecompositionError, match="eigenvalue 1"):
        process_info(dense)
    # identical GHMM components with a finite MSP: one component, tom_quantum (1, 1)'s exact values
    info = process_info(hp.mixture([hp.tom_quantum(1.0, 1.0)] * 2, [0.5, 0.5]))
    assert len(info.components) == 1
    assert info.h_mu.value == pytest.approx(1.5, abs=1e-12) and info.C_mu.value == pytest.approx(2.0, abs=1e-12)


def test_product_factors_are_recovered_from_the_kronecker_presentation():
    factors = [hp.golden_mean(), hp.even(0.3), hp.coin(0.2)]
    found = product_factors(hp.product(factors))
    assert found is not None and len(found) == 3
    assert all(same_process(a, b) for a, b in zip(found, factors))
    assert [f.name for f in found] == ["golden_mean", "even", "coin"]
    ghmm = product_factors(hp.product([hp.mess3(0.15, 0.6), hp.tom_quantum(1.0, 3.0)]))
    assert isinstance(ghmm[0], hp.HMM) and isinstance(ghmm[1], hp.GeneralizedHMM)
    assert same_process(ghmm[1], hp.tom_quantum(1.0, 3.0))
    for proc in (hp.mess3(), hp.tom_quantum(), hp.shift_coupled(hp.mess3(), hp.mess3(0.15, 0.6), 0.2)):
        assert product_factors(proc) is None


def test_product_of_two_mess3_sums_its_factors():
    """h_mu, E, T are the factors' sums; the exponents their union; the information dimension the sum of the
    factors' dimensions, and the joint Kaplan-Yorke dimension an upper bound above it (issue 23: 2.15 vs 1.87)."""
    prod = hp.product([hp.mess3(), hp.mess3(0.15, 0.6)])
    info = process_info(prod, **QUICK)
    (h1, E1), (h2, E2) = _mess3_limits(0.05, 0.85), _mess3_limits(0.15, 0.6)
    assert info.structure == "product" and len(info.factors) == 2
    assert info.h_mu.value == pytest.approx(h1 + h2, abs=1e-6) and info.h_mu.method == "h(L) limit"
    assert info.E.value == pytest.approx(E1 + E2, abs=5e-6)
    a, b = info.factors
    assert info.T.value == pytest.approx(a.T.value + b.T.value, abs=1e-12)
    union = sorted([m.value for m in a.lyapunov_exponents + b.lyapunov_exponents], reverse=True)
    assert [m.value for m in info.lyapunov_exponents] == pytest.approx(union, abs=1e-15)
    dim = info.information_dimension
    assert dim.value == pytest.approx(a.lyapunov_dimension.value + b.lyapunov_dimension.value, abs=1e-12)
    assert dim.value == pytest.approx(0.5196 + 1.3500, abs=3e-3)
    ky = info.lyapunov_dimension
    assert ky.method == "upper bound" and ky.value == pytest.approx(2.146, abs=5e-3)
    assert ky.value - ky.error > dim.value + dim.error


def test_markov_order_of_a_mixture_from_its_shared_words():
    """Golden mean (R = 1) and the cycle 0011 (R = 2): their longest common word is 1001, so after 5 tokens the
    window names the component and its state: R = 5, as the mixture's own finite MSP says; two coins share every
    word (R infinite)."""
    from compmech.measures import _longest_shared_word

    T = np.zeros((2, 4, 4))
    T[0, 0, 1] = T[0, 1, 2] = T[1, 2, 3] = T[1, 3, 0] = 1.0
    cycle = hp.HMM(T, name="0011")
    assert _longest_shared_word(hp.golden_mean(), cycle) == 4
    assert process_info(hp.mixture([hp.golden_mean(), cycle], [0.5, 0.5])).markov_order.value == 5
    assert _longest_shared_word(hp.coin(0.2), hp.coin(0.8)) is None
