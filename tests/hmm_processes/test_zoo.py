"""The process zoo: every named process builds, validates its parameters, and samples correctly."""

from __future__ import annotations

import itertools
import math

import jax
import numpy as np
import pytest
from word_stats import chi_square_pvalue, word_probabilities

import hmm_processes as hp
from hmm_processes import HMM, GeneralizedHMM, ProcessError

ZOO_NAMES = sorted(hp.list_processes())


def test_every_named_process_is_registered_and_documented():
    expected = {
        "mess3",
        "golden_mean",
        "even",
        "rrxor",
        "z1r",
        "coin",
        "sns",
        "nond",
        "days_of_week",
        "leaky_rrxor",
        "matching_parens",
        "fanizza",
        "tom_quantum",
        "post_quantum",
    }
    assert expected <= set(ZOO_NAMES)
    for name in ZOO_NAMES:
        proc = hp.get_process(name)
        assert isinstance(proc, (HMM, GeneralizedHMM))
        assert proc.name == name
        factory = getattr(hp, name)
        assert factory.__doc__ and len(factory.__doc__) > 80, f"{name} needs a docstring with its definition"
        # every parameter has a default, recorded in .params
        for k, v in hp.process_parameters(name).items():
            assert proc.params[k] == v


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_word_probabilities_are_a_distribution(name):
    proc = hp.get_process(name)
    for L in (1, 2, 3):
        P = word_probabilities(proc, L)
        assert np.all(P >= -1e-12)
        assert P.sum() == pytest.approx(1.0, abs=1e-10)


def test_generalized_processes_are_not_hmms():
    for name in ("fanizza", "tom_quantum", "post_quantum"):
        proc = hp.get_process(name)
        assert isinstance(proc, GeneralizedHMM)
        assert np.any(proc.T < 0), f"{name} should need negative entries"
    assert any(np.any(hp.get_process(n).stationary_vector < 0) for n in ("fanizza", "post_quantum"))


def test_definitions_against_the_reference():
    rr = hp.rrxor()
    np.testing.assert_allclose(rr.stationary_distribution, np.array([2, 1, 1, 1, 1]) / 6, atol=1e-12)
    assert rr.state_names == ("S", "0", "1", "T", "F")
    z = hp.z1r(0.3)
    assert z.T[0, 0, 1] == 1 and z.T[1, 1, 2] == 1 and z.T[1, 2, 0] == pytest.approx(0.3)
    c = hp.coin(0.2)
    assert word_probabilities(c, 1) == pytest.approx([0.8, 0.2])
    s = hp.sns(0.3, 0.6)
    assert s.T[0, 0, 1] == pytest.approx(0.3) and s.T[1, 1, 0] == pytest.approx(0.6)
    assert np.all((s.T[0, 0] > 0).sum() == 2)  # A emits 0 to both states: nonunifilar
    d = hp.days_of_week()
    assert d.vocab_size == 11 and d.num_states == 7
    assert d.T[1, 0, 1] == pytest.approx(5 / 15)  # Mon -> "Tue" -> Tue
    lk = hp.leaky_rrxor(epsilon=0.0)
    np.testing.assert_allclose(lk.T, rr.T)
    assert np.all(hp.leaky_rrxor(epsilon=0.1).T > 0)


def test_matching_parens_is_a_bounded_dyck_language():
    mp = hp.matching_parens(p=0.5, q=0.5, max_depth=3)
    assert mp.num_states == 4 and mp.token_names == (".", "(", ")")
    words = hp.sample_words(mp, 0, 2000, 30)
    # the true start depth is unknown (stationary); relative depth stays within the bound
    rel = np.cumsum(np.where(words == 1, 1, np.where(words == 2, -1, 0)), axis=1)
    assert np.all(rel.max(axis=1) - np.minimum(rel.min(axis=1), 0) <= 3)
    # "." only at depth 0: between two "." the parentheses balance
    for w in words[:200]:
        dots = np.flatnonzero(w == 0)
        for a, b in zip(dots[:-1], dots[1:]):
            seg = w[a + 1 : b]
            assert (seg == 1).sum() == (seg == 2).sum()


def test_matching_parens_word_probabilities_by_hand():
    """P(w) of every word of length 3 against an enumeration written out by hand.

    max_depth = 2, p = 0.4, q = 0.7. The chain on depths 0, 1, 2 has M = [[0.6, 0.4, 0], [0.3, 0, 0.7],
    [0, 1, 0]]; its stationary distribution solves pi0 = 0.6 pi0 + 0.3 pi1, pi2 = 0.7 pi1, so
    pi ∝ (3, 4, 2.8) / 9.8. A word's probability sums, over start depths, pi(d) times the product of
    the step probabilities along the one path it forces ("." only at 0, "(" 0.4 at 0 and 0.7 at 1,
    ")" 0.3 at 1 and 1 at 2).
    """
    pi = np.array([3.0, 4.0, 2.8]) / 9.8
    step = {(0, "."): (0.6, 0), (0, "("): (0.4, 1), (1, "("): (0.7, 2), (1, ")"): (0.3, 0), (2, ")"): (1.0, 1)}

    def by_hand(word: str) -> float:
        total = 0.0
        for d0 in range(3):
            prob, d = pi[d0], d0
            for ch in word:
                if (d, ch) not in step:
                    prob = 0.0
                    break
                pr, d = step[(d, ch)]
                prob *= pr
            total += prob
        return total

    mp = hp.matching_parens(p=0.4, q=0.7, max_depth=2)
    np.testing.assert_allclose(mp.stationary_distribution, pi, atol=1e-12)
    words = ["".join(w) for w in itertools.product(".()", repeat=3)]  # lexicographic in token order . ( )
    expected = np.array([by_hand(w) for w in words])
    np.testing.assert_allclose(word_probabilities(mp, 3), expected, atol=1e-15)
    assert by_hand("...") == pytest.approx(pi[0] * 0.6**3)  # the hand rules themselves
    assert by_hand("(((") == 0.0 and expected.sum() == pytest.approx(1.0)


def test_tom_quantum_default_has_an_infinite_bloch_msp():
    from compmech.msp import build_msp

    assert hp.tom_quantum().params == {"alpha": 1.0, "beta": 4.3}
    assert not build_msp(hp.tom_quantum(), max_states=2000).finite
    assert build_msp(hp.tom_quantum(1.0, 1.0)).num_states == 5  # the degenerate case


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("mess3", {"x": True}, "parameter x must be a number"),
        ("mess3", {"x": "0.05"}, "without quotes"),
        ("tom_quantum", {"beta": None}, "parameter beta must be a number"),
        ("post_quantum", {"log_alpha": 1e6}, "log_alpha"),
        ("fanizza", {"alpha": float("inf")}, "alpha must be finite"),
        ("matching_parens", {"max_depth": 10**9}, "max_depth"),
    ],
)
def test_get_process_refuses_non_numbers_and_overflow(name, params, match):
    with pytest.raises(ProcessError, match=match) as err:
        hp.get_process(name, **params)
    assert "\n" not in str(err.value)


def test_named_factories_refuse_bools_and_strings_directly():
    for call in (
        lambda: hp.mess3(x=True),
        lambda: hp.golden_mean("0.5"),
        lambda: hp.tom_quantum(alpha="1"),
        lambda: hp.fanizza(lamb=False),
    ):
        with pytest.raises(ProcessError, match="must be a number"):
            call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: hp.rrxor(p1=1.5),
        lambda: hp.z1r(p=-0.1),
        lambda: hp.coin(p="x"),
        lambda: hp.sns(p=0.0),
        lambda: hp.leaky_rrxor(epsilon=2.0),
        lambda: hp.matching_parens(max_depth=0),
        lambda: hp.matching_parens(max_depth=2.5),
        lambda: hp.matching_parens(p=0.0),
        lambda: hp.fanizza(lamb=1.0),
        lambda: hp.tom_quantum(alpha=0.0, beta=0.0),
        lambda: hp.post_quantum(beta=1.5),
        lambda: hp.post_quantum(log_alpha=-1.0),
        lambda: hp.post_quantum(log_alpha=float(np.log(1.5)), beta=0.5),  # alpha + beta == 2
        lambda: hp.post_quantum(log_alpha=float(-2 * np.log(0.5)), beta=0.5),  # ln a / ln b = -2 rational
        lambda: hp.get_process("rrxor", p3=0.1),
        lambda: hp.get_process("no_such_process"),
    ],
)
def test_bad_parameters_raise_process_error(call):
    with pytest.raises(ProcessError):
        call()


def _length_for(V: int) -> int:
    """Longest word length (3 or 4) whose number of words stays manageable."""
    return 4 if V**4 <= 300 else 3 if V**3 <= 2000 else 2


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_sampled_word_frequencies_match_exact_probabilities(name):
    """Chi-square test, for every zoo process: sampled length-3/4 word counts vs exact P(w).

    HMMs are sampled through their hidden states (`hmm_processes.sample`); GHMMs have none, so
    their words are drawn from exact next-token probabilities (`sample_words`).
    """
    proc = hp.get_process(name)
    V = proc.vocab_size
    L = _length_for(V)
    n = 40_000
    key = jax.random.PRNGKey(1234)
    if isinstance(proc, GeneralizedHMM):
        words = hp.sample_words(proc, key, n, L)
    else:
        words = np.asarray(hp.sample(proc, key, n, L, with_beliefs=False, with_next_token_probs=False).tokens)
    p = chi_square_pvalue(words, V, word_probabilities(proc, L))
    assert p > 1e-3, f"{name}: sampled words do not match exact probabilities (chi-square p = {p:.2g})"


@pytest.mark.parametrize("name", ["rrxor", "mess3", "sns"])
def test_sample_words_also_matches_for_hmms(name):
    proc = hp.get_process(name)
    words = hp.sample_words(proc, 7, 30_000, 4)
    assert chi_square_pvalue(words, proc.vocab_size, word_probabilities(proc, 4)) > 1e-3


def test_chi_square_detects_a_wrong_process():
    """The test above has power: words of golden_mean(0.5) are rejected as golden_mean(0.45)'s."""
    words = np.asarray(hp.sample(hp.golden_mean(0.5), jax.random.PRNGKey(0), 40_000, 4).tokens)
    assert chi_square_pvalue(words, 2, word_probabilities(hp.golden_mean(0.45), 4)) < 1e-6


def test_all_words_helper_order():
    from hmm_processes.generalized import all_words

    w = all_words(3, 2)
    assert w.shape == (9, 2) and tuple(w[5]) == (1, 2)
    assert list(itertools.product(range(3), repeat=2))[5] == (1, 2)
    assert math.isclose(word_probabilities(hp.coin(), 2).sum(), 1.0)
