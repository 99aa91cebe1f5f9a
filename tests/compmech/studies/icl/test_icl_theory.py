"""compmech.studies.icl.theory: the mixture's in-context learning curve against brute-force Bayes, Monte Carlo against
exact, the source posterior, and the fits of the excess curve."""

import itertools

import numpy as np
import pytest

import hmm_processes as hp
from compmech.markov_chains import markov_icl_curve, markov_icl_curve_exact, markov_unigram_loss_exact
from compmech.mixed_states import word_counts
from compmech.studies.icl.theory import (
    compare_decay,
    enumerated_words,
    fit_excess,
    icl_theory,
    mixture_parts,
    source_posterior,
)
from hmm_processes import ProcessError, RandomMarkovChains


def _components():
    # different state counts and forbidden words (the golden mean never emits 1 1), binary tokens
    return [hp.golden_mean(0.4), hp.coin(0.7), hp.even(0.5)]


def _word_prob(proc, word):
    """P(word) from the process's own stationary distribution: pi T[w1] ... T[wn] 1."""
    v = proc.stationary_distribution
    for x in word:
        v = v @ proc.T[x]
    return float(v.sum())


def _entropy(p):
    p = np.asarray(p)
    return float(-np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)))


def test_the_mixture_optimum_is_brute_force_bayes_over_every_string():
    comps, w = _components(), np.array([0.5, 0.3, 0.2])
    mix = hp.mixture(comps, w)
    L = 5
    theory = icl_theory(mix, L, method="exact")
    curve = theory.curve
    assert curve.method == "exact" and curve.n_samples == 0
    np.testing.assert_allclose(curve.weights, w)
    for n in range(L + 1):
        optimal = 0.0
        told = np.zeros(3)
        fixed = np.zeros(3)
        for word in itertools.product(range(2), repeat=n):
            pk = np.array([_word_prob(c, word) for c in comps])  # P_k(w)
            pw = float(w @ pk)
            if pw == 0:
                continue
            post = w * pk / pw  # P(k | w), by hand
            nxt_k = np.array(
                [
                    [_word_prob(c, word + (x,)) / pk[k] if pk[k] > 0 else np.nan for x in range(2)]
                    for k, c in enumerate(comps)
                ]
            )  # [K, 2] each component's predictive
            nxt = np.nansum(post[:, None] * nxt_k, axis=0)  # the Bayesian predictive
            optimal += pw * _entropy(nxt)
            for k in range(3):
                if pk[k] > 0:
                    told[k] += pk[k] * _entropy(nxt_k[k])
            for j in range(3):  # never inferring: always component j's predictive (or 0 if it has none)
                q = np.nan_to_num(nxt_k[j], nan=0.0)
                fixed[j] += pw * float(np.sum(np.where(nxt > 0, -nxt * np.log(np.maximum(q, 1e-12)), 0.0)))
        assert curve.optimal[n] == pytest.approx(optimal, rel=1e-12, abs=1e-14)
        np.testing.assert_allclose(curve.component[:, n], told, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(theory.fixed_source[:, n], fixed, rtol=1e-12)
    assert np.all(curve.excess >= -1e-12) and curve.excess[-1] < curve.excess[1]  # the source is being learned
    assert theory.best_fixed_source == int(np.argmin(theory.fixed_source.mean(axis=1)))


def test_the_source_posterior_is_bayes_rule_on_every_string():
    comps, w = _components(), np.array([0.5, 0.3, 0.2])
    mix = hp.mixture(comps, w)
    words = np.array(
        [wd for wd in itertools.product(range(2), repeat=4) if float(w @ [_word_prob(c, wd) for c in comps]) > 0]
    )
    post = source_posterior(mix, words)  # [N, 4, K]
    for i, word in enumerate(words):
        for t in range(4):
            pk = np.array([_word_prob(c, tuple(word[: t + 1])) for c in comps])
            np.testing.assert_allclose(post[i, t], w * pk / (w @ pk), atol=1e-12)
    parts = mixture_parts(mix)
    assert parts.edges.tolist() == [0, 2, 3, 5] and parts.n_components == 3


def test_monte_carlo_agrees_with_exact_enumeration_within_its_standard_errors():
    mix = hp.mixture([hp.mess3(0.05, 0.85), hp.mess3(0.15, 0.6), hp.mess3(0.3, 0.5)], [0.4, 0.4, 0.2])
    exact = icl_theory(mix, 6, method="exact")
    mc = icl_theory(mix, 6, method="monte_carlo", n_samples=6000, seed=1)
    assert mc.curve.method == "monte_carlo" and mc.curve.n_samples >= 6000
    assert np.all(mc.curve.optimal_se[1:] > 0)
    for a, b, se in (
        (exact.curve.optimal, mc.curve.optimal, mc.curve.optimal_se),
        (exact.curve.component, mc.curve.component, mc.curve.component_se),
        (exact.fixed_source, mc.fixed_source, mc.fixed_source_se),
    ):
        z = np.abs(a - b) / np.maximum(se, 1e-12)
        assert np.all(z[..., 1:] < 4.5), z  # seen = 0 is the same prior law for every word: se 0 and exact
    # the same seed, the same numbers
    again = icl_theory(mix, 6, method="monte_carlo", n_samples=6000, seed=1)
    np.testing.assert_array_equal(again.curve.optimal, mc.curve.optimal)


def test_exact_is_refused_where_the_words_are_too_many_and_non_mixtures_are_named():
    mix = hp.mixture([hp.mess3(), hp.mess3(0.15, 0.6)])
    with pytest.raises(ProcessError, match="monte_carlo"):
        icl_theory(mix, 20, method="exact")
    with pytest.raises(ProcessError, match="mixture"):
        icl_theory(hp.mess3(), 4)


@pytest.mark.parametrize("model,a,rate", [("power_law", 0.8, 1.3), ("exponential", 0.5, 6.0)])
def test_the_fits_recover_planted_parameters_and_pick_the_planted_form(model, a, rate):
    rng = np.random.default_rng(0)
    n = np.arange(0, 41)
    clean = a * ((np.maximum(n, 1) ** -rate) if model == "power_law" else np.exp(-n / rate))
    noisy = clean * np.exp(rng.normal(0, 0.02, n.size))  # 2% multiplicative noise
    fits = fit_excess(n, noisy)
    fit = getattr(fits, model)
    assert fits.better == model
    assert fit.rate == pytest.approx(rate, abs=4 * fit.rate_se) and fit.rate_se < 0.05 * rate
    assert fit.a == pytest.approx(a, abs=4 * fit.a_se)
    assert fit.r2_log > 0.99 and fit.n_points == 40 and fit.seen_min == 1
    np.testing.assert_allclose(fit.predict(n[1:]), clean[1:], rtol=0.05)


def test_a_fit_needs_points_above_the_noise():
    fits = fit_excess(np.arange(6), np.full(6, 1e-3), np.full(6, 1e-3))
    assert fits.better is None and fits.power_law is None and "fewer than 3" in fits.note


def test_the_optimum_is_the_mixtures_myopic_entropy_as_the_runner_computes_it():
    from compmech.information import optimal_loss_by_position

    mix = hp.mixture([hp.mess3(0.05, 0.85), hp.mess3(0.15, 0.6)], [0.5, 0.5])
    curve = icl_theory(mix, 6).curve  # "auto": exact at 3^6 words
    assert curve.method == "exact"
    np.testing.assert_allclose(curve.optimal, optimal_loss_by_position(mix, 7, start_token=True), rtol=1e-12)


# ---------------------------------------------------------------------------- exact where enumerable (issue 23)


def test_auto_is_exact_where_the_words_can_be_enumerated_and_monte_carlo_beyond_bit_for_bit():
    """ "auto" with more words than it may enumerate: the first positions are the exact curve itself (bit for bit),
    the rest the Monte-Carlo curve itself, and the boundary is recorded."""
    mix = hp.mixture(_components(), [0.5, 0.3, 0.2])  # binary tokens, forbidden words: counts below 2^L
    counts = word_counts(mix, 8)
    last = int(np.flatnonzero(counts <= 40)[-1])
    assert 1 <= last < 8
    hybrid = icl_theory(mix, 8, method="auto", max_exact_words=40, n_samples=3000, seed=2)
    exact = icl_theory(mix, last, method="exact")
    mc = icl_theory(mix, 8, method="monte_carlo", n_samples=3000, seed=2)
    c, n = hybrid.curve, last + 1
    assert c.method == "hybrid" and c.last_exact_seen == last and c.exact_through == last
    assert c.exact.tolist() == [True] * n + [False] * (9 - n) and c.n_samples == mc.curve.n_samples
    for h, e, m in (
        (c.optimal, exact.curve.optimal, mc.curve.optimal),
        (c.component, exact.curve.component, mc.curve.component),
        (hybrid.fixed_source, exact.fixed_source, mc.fixed_source),
    ):
        np.testing.assert_array_equal(h[..., :n], e)
        np.testing.assert_array_equal(h[..., n:], m[..., n:])
    np.testing.assert_array_equal(c.optimal_se[:n], 0.0)
    assert np.all(c.optimal_se[n:] > 0) and np.all(hybrid.fixed_source_se[:, :n] == 0)
    # a budget that covers every word: the exact curve; "monte_carlo" stays Monte Carlo everywhere
    assert icl_theory(mix, last, method="auto", max_exact_words=40).curve.method == "exact"
    assert mc.curve.method == "monte_carlo" and mc.curve.exact_through is None


def test_the_chains_are_exact_at_the_enumerable_positions_and_monte_carlo_beyond_bit_for_bit():
    source = RandomMarkovChains(3, 1.0)
    hybrid = icl_theory(source, 7, max_exact_words=100, n_samples=2000, seed=3)  # 3 + 9 + 27 <= 100 < + 81
    c = hybrid.curve
    assert c.method == "hybrid" and c.last_exact_seen == 3
    exact = markov_icl_curve_exact(source, 4)
    mc = markov_icl_curve(source, 8, n_samples=2000, seed=3)
    np.testing.assert_array_equal(c.optimal[:4], exact.optimal)
    np.testing.assert_array_equal(c.component[:, :4], exact.component)
    np.testing.assert_array_equal(c.optimal[4:], mc.optimal[4:])
    np.testing.assert_array_equal(hybrid.fixed_source[0, :4], markov_unigram_loss_exact(source, 4))
    assert np.all(hybrid.fixed_source_se[0, :4] == 0) and np.all(hybrid.fixed_source_se[0, 4:] > 0)


@pytest.mark.parametrize("which", ["mixture", "chains"])
def test_enumerated_words_carry_the_exact_laws_aligned_with_the_curve(which):
    """The rows a model's loss is measured on exactly: sum_w P(w) H(law after n tokens) is the optimum at n."""
    process = (
        hp.mixture([hp.mess3(0.05, 0.85), hp.mess3(0.15, 0.6)], [0.5, 0.5])
        if which == "mixture"
        else RandomMarkovChains(3, 1.0)
    )
    ew = enumerated_words(process, 4)
    assert ew.words.shape[1] == 4 and ew.laws.shape[:2] == (ew.words.shape[0], 5)
    assert ew.probs.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(ew.laws.sum(axis=2), 1.0, atol=1e-12)
    curve = icl_theory(process, 4, method="exact").curve
    h = -np.sum(np.where(ew.laws > 0, ew.laws * np.log(np.where(ew.laws > 0, ew.laws, 1.0)), 0.0), axis=2)
    np.testing.assert_allclose(ew.probs @ h, curve.optimal, rtol=1e-12)


# ---------------------------------------------------------------------------- the model's decay against the theory's


def test_a_planted_model_decay_is_recovered_within_its_error_and_told_apart_from_the_theorys():
    rng = np.random.default_rng(4)
    n = np.arange(1, 33)
    theory = 0.05 * np.exp(-n / 15.0)
    se = np.full(n.size, 2e-4)
    slower = 0.05 * np.exp(-n / 9.0) + rng.normal(0, 2e-4, n.size)  # a model whose excess decays faster: tau 9
    comp = compare_decay(n, slower, se, theory)
    ex = comp.exponential
    assert ex.model_rate == pytest.approx(9.0, abs=2 * ex.model_rate_se)
    assert ex.theory_rate == pytest.approx(15.0, rel=1e-9)
    assert ex.agree is False and abs(ex.difference) > 2 * ex.difference_se
    assert comp.seen == tuple(int(x) for x in n[slower > 2 * se])  # the same positions for both fits
    # the model on the theory's curve, with the same noise: the rates agree
    same = theory * np.exp(rng.normal(0, 0.01, n.size))
    assert compare_decay(n, same, se, theory).exponential.agree is True


def test_a_comparison_whose_error_reaches_the_rate_is_undetermined_unless_it_differs_beyond_it():
    n = np.arange(1, 9)
    wiggle = np.array([1, -1, 1, -1, 1, -1, 1, -1])
    steep = 0.05 * np.exp(-n / 1.5)  # the theory's rate: 1.5 tokens
    noisy = 0.05 * np.exp(-n / 40.0) * np.exp(0.3 * wiggle)  # a slow, noisy model curve
    d = compare_decay(n, noisy, None, steep).exponential
    assert abs(d.difference) <= 2 * d.difference_se and 2 * d.difference_se >= d.theory_rate and d.agree is None
    # a difference beyond its errors is a difference, however large the errors are against the rate
    slow = 0.05 * np.exp(-n / 60.0) * np.exp(0.03 * wiggle)
    d = compare_decay(n, slow, None, steep).exponential
    assert abs(d.difference) > 2 * d.difference_se and 2 * d.difference_se >= d.theory_rate and d.agree is False
