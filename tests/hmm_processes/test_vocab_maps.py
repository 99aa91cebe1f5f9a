"""The "mr_name" process against the simplexity library's definition, and mixtures whose components emit through
their own vocabulary maps: word probabilities, beliefs and the component posterior against brute-force enumeration
over every component's hidden paths."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

import hmm_processes as hp
from hmm_processes import ProcessError


def test_mr_name_is_the_simplexity_definition():
    """``mr_name(p, q)`` in simplexity/generative_processes/transition_matrices.py at commit
    657aff777cd7d7a6edfadd1f846bbf62028caeec (read there, entry by entry): vocab = states = ["Mr.", "Something",
    "Blah", "name"], T[name, Mr., name] = 1; T[Something, name, Something] = T[Blah, name, Blah] = 1/2;
    T[Mr., Something, Mr.] = q, T[Something, Something, Something] = 1 - p - q, T[Blah, Something, Blah] = p;
    T[Mr., Blah, Mr.] = q, T[Something, Blah, Something] = p, T[Blah, Blah, Blah] = 1 - p - q; every other entry 0.
    Its test there (tests/generative_processes/test_transition_matrices.py) asserts the stationary distribution
    (1, 2, 2, 1) / 6 at p = 0.4, q = 0.25, the authors' setting."""
    p, q = 0.4, 0.25
    m = hp.mr_name(p, q)
    assert m.token_names == ("Mr.", "Something", "Blah", "name") == m.state_names
    mr, so, bl, nm = range(4)
    expected = np.zeros((4, 4, 4))
    expected[nm, mr, nm] = 1.0
    expected[so, nm, so] = expected[bl, nm, bl] = 0.5
    expected[mr, so, mr], expected[so, so, so], expected[bl, so, bl] = q, 1 - p - q, p
    expected[mr, bl, mr], expected[so, bl, so], expected[bl, bl, bl] = q, p, 1 - p - q
    np.testing.assert_array_equal(m.T, expected)
    np.testing.assert_allclose(hp.stationary_distribution(m.T.sum(0)), np.array([1, 2, 2, 1]) / 6, atol=1e-12)
    # the docstring's closed form at another q: (2q, 1, 1, 2q) / (2 + 4q)
    q2 = 0.1
    np.testing.assert_allclose(
        hp.stationary_distribution(hp.mr_name(0.3, q2).T.sum(0)), np.array([2 * q2, 1, 1, 2 * q2]) / (2 + 4 * q2)
    )
    assert hp.get_process("mr_name").params == {"p": 0.4, "q": 0.25}


@pytest.mark.parametrize("p, q", [(0.7, 0.4), (-0.1, 0.2), (0.2, 1.5)])
def test_mr_name_refuses_parameters_outside_the_simplex(p, q):
    with pytest.raises(ProcessError, match="mr_name"):
        hp.mr_name(p, q)


def _brute_force(components, weights, maps, word):
    """P(word), the joint P(component k, last state s, word) [S_total], by summing over every hidden path of every
    component (the component's token is the inverse of its map; a shared token outside its map has probability 0)."""
    joint = []
    total = 0.0
    for comp, w, m in zip(components, weights, maps):
        T = comp.T
        pi = hp.stationary_distribution(T.sum(0))
        S = comp.num_states
        inv = {shared: a for a, shared in enumerate(m)}
        end = np.zeros(S)
        if all(x in inv for x in word):
            for path in itertools.product(range(S), repeat=len(word) + 1):
                pr = w * pi[path[0]]
                for t, x in enumerate(word):
                    pr *= T[inv[x], path[t], path[t + 1]]
                end[path[-1]] += pr
        joint.append(end)
        total += end.sum()
    return total, np.concatenate(joint)


CASES = [
    # the authors' dursley_wonka: two mr_name, the name token differs
    ([hp.mr_name(0.4, 0.25), hp.mr_name(0.4, 0.25)], [0.5, 0.5], [[0, 1, 2, 3], [0, 1, 2, 4]]),
    # different parameters, permuted maps, a shared id no component uses (5), unequal weights, three components
    (
        [hp.mr_name(0.2, 0.3), hp.golden_mean(0.4), hp.mess3(0.1, 0.7)],
        [0.2, 0.3, 0.5],
        [[3, 0, 1, 2], [6, 1], [0, 4, 2]],
    ),
]


@pytest.mark.parametrize("components, weights, maps", CASES)
def test_a_vocab_mapped_mixture_is_brute_force_bayes_over_hidden_paths(components, weights, maps):
    mix = hp.mixture(components, weights, vocab_maps=maps)
    V = 1 + max(max(m) for m in maps)
    assert mix.vocab_size == V and mix.params["vocab_maps"] == maps
    T, pi, tau = hp.process_vectors(mix)
    L = 3  # every word of 3 tokens (V^3 words, S^4 paths per component)
    words = list(itertools.product(range(V), repeat=L))
    probs = np.zeros(len(words))
    checked = 0
    for n, word in enumerate(words):
        total, joint = _brute_force(components, weights, maps, word)
        probs[n] = total
        # the library's word probability: pi T^(w) tau
        v = pi.copy()
        for x in word:
            v = v @ T[x]
        assert v @ tau == pytest.approx(total, abs=1e-14)
        if total <= 0:
            continue
        # beliefs by the library's update (one token at a time) against the brute-force posterior over states
        eta = pi[None].copy()
        for x in word:
            eta, _ = hp.update_beliefs(eta, T[np.array([x])], tau)
        np.testing.assert_allclose(eta[0], joint / total, atol=1e-12)
        sizes = np.cumsum([0, *[c.num_states for c in components]])
        post = np.array([joint[a:z].sum() for a, z in zip(sizes[:-1], sizes[1:])]) / total
        np.testing.assert_allclose(hp.component_posterior(mix, eta[0]), post, atol=1e-12)
        checked += 1
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert checked >= 20


def test_the_first_name_identifies_the_component():
    mix = hp.mixture([hp.mr_name(), hp.mr_name()], [0.5, 0.5], vocab_maps=[[0, 1, 2, 3], [0, 1, 2, 4]])
    assert mix.token_names == ("Mr.", "Something", "Blah", "name[0]", "name[1]")
    T, pi, tau = hp.process_vectors(mix)
    eta = pi[None]
    for x in (1, 0):  # "Something", "Mr.": nothing about the component yet
        eta, _ = hp.update_beliefs(eta, T[np.array([x])], tau)
    np.testing.assert_allclose(hp.component_posterior(mix, eta[0]), [0.5, 0.5], atol=1e-12)
    eta, _ = hp.update_beliefs(eta, T[np.array([4])], tau)  # the second component's name
    np.testing.assert_allclose(hp.component_posterior(mix, eta[0]), [0.0, 1.0], atol=1e-12)


def test_a_vocab_mapped_mixture_samples_its_word_distribution():
    from word_stats import chi_square_pvalue, word_probabilities  # the zoo tests' helpers

    mix = hp.mixture([hp.mr_name(), hp.mr_name(0.1, 0.5)], [0.3, 0.7], vocab_maps=[[0, 1, 2, 3], [0, 1, 2, 4]])
    samples = hp.sample(mix, jax.random.key(3), 40_000, 3)
    assert chi_square_pvalue(np.asarray(samples.tokens), mix.vocab_size, word_probabilities(mix, 3)) > 1e-4


@pytest.mark.parametrize(
    "maps, match",
    [
        ([[0, 1, 2, 3]], "1 maps but there are 2 components"),
        ([[0, 1, 2, 3], [0, 1, 2]], r"vocab_maps\[1\] has 3 entries but component 1"),
        ([[0, 1, 2, 3], [0, 1, 1, 4]], r"vocab_maps\[1\] sends two .* to shared token 1"),
        ([[0, 1, 2, -3], [0, 1, 2, 4]], r"vocab_maps\[0\] holds -3"),
        ([[0, 1, 2, 3.0], [0, 1, 2, 4]], r"vocab_maps\[0\] holds 3.0"),
        (["0123", [0, 1, 2, 4]], r"vocab_maps\[0\] must be a list"),
    ],
)
def test_bad_vocab_maps_are_one_clear_error(maps, match):
    with pytest.raises(ProcessError, match=match):
        hp.mixture([hp.mr_name(), hp.mr_name()], vocab_maps=maps)
