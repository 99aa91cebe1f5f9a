"""Factored processes with dependency structures (`hmm_processes.factored_process`): the joint HMM/GHMM against
brute-force enumeration of the factors' hidden paths and against the authors' per-factor recursion.

The authors' definitions are read from Astera-org/simplexity at commit 902411a3d7a03593e8f430a83ccc573b454838bb:
``simplexity/generative_processes/factored_generative_process.py`` (``transition_states``: each factor's belief moves
on with ``transition_with_obs`` of ``simplexity/utils/factoring_utils.py``, ``b T^(k)[t_i] / (b T^(k)[t_i] tau)``;
``probability``: the product of each step's joint distribution), and ``structures/sequential_conditional.py``
(chain: factor i > 0 uses ``control_maps[i][t_{i-1}]``), ``structures/fully_conditional.py`` (symmetric: variant
from the other factors' tokens, the product of experts normalized over beliefs) and
``structures/conditional_transitions.py`` (transition-coupled: fixed emission variants, transition variants from
the other tokens). `_simplexity_word_probability` below transcribes them into NumPy.
"""

import itertools
from functools import reduce

import numpy as np
import pytest

from hmm_processes import ProcessError, factored_process, get_process, process_vectors
from hmm_processes.factored import other_index

M1 = get_process("mess3")
M2 = get_process("mess3", x=0.15, alpha=0.6)
S1 = get_process("sns", p=0.5, q=0.5)
S2 = get_process("sns", p=0.2, q=0.7)
G1 = get_process("golden_mean", p=0.5)
G2 = get_process("golden_mean", p=0.3)
TQ = get_process("tom_quantum", alpha=1.0, beta=3.0)


def _small():  # three 2-token, 2-state factors with two variants each: 8 tokens, 8 joint states
    return [[S1, S2], [G1, G2], [S2, S1]]


SYM_MAPS = [[0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 1, 1]]  # each factor: 4 joint tokens of the other two
CASES = {
    "independent": dict(factors=[[S1], [G1], [S2]], structure="independent"),
    "chain": dict(factors=_small(), structure="chain", control_maps=[[], [1, 0], [0, 1]]),
    "symmetric": dict(factors=_small(), structure="symmetric", control_maps=SYM_MAPS),
    "transition_coupled": dict(
        factors=_small(), structure="transition_coupled", control_maps=SYM_MAPS, emission_variants=[0, 1, 0]
    ),
}


_MEMO: dict = {}


def _kernel(case: dict, s: tuple, t: tuple, s2: tuple) -> float:
    key = (case["structure"], id(case), s, t, s2)
    if key not in _MEMO:
        _MEMO[key] = _kernel_value(case, s, t, s2)
    return _MEMO[key]


def _kernel_value(case: dict, s: tuple, t: tuple, s2: tuple) -> float:
    """The joint kernel T[t][s, s2] from the per-factor definitions, one scalar at a time (no Kronecker products)."""
    facs, structure = case["factors"], case["structure"]
    V = [f[0].vocab_size for f in facs]
    maps = case.get("control_maps")
    mats = [[process_vectors(p)[0] for p in f] for f in facs]

    def k_of(i: int, tt: tuple) -> int:
        if structure == "independent" or (structure == "chain" and i == 0):
            return 0
        if structure == "chain":
            return maps[i][tt[i - 1]]
        return maps[i][other_index(tt, i, V)]

    def term(i: int, tt: tuple, a: int, b: int) -> float:
        T = mats[i][k_of(i, tt)][tt[i]]
        if structure != "transition_coupled":
            return T[a, b]
        e = mats[i][case["emission_variants"][i]][tt[i]][a].sum()
        return 0.0 if e == 0 else e * T[a, b] / T[a].sum()

    value = float(np.prod([term(i, t, s[i], s2[i]) for i in range(len(facs))]))
    if structure == "symmetric":
        Z = sum(
            np.prod([sum(term(i, tt, s[i], b) for b in range(facs[i][0].num_states)) for i in range(len(facs))])
            for tt in itertools.product(*(range(v) for v in V))
        )
        value /= Z
    return value


def _brute_force(case: dict, pi: np.ndarray, word: list[tuple]) -> float:
    """P(word) = sum over every path of joint hidden states of pi(s_0) prod_n kernel(s_n, t_n, s_{n+1})."""
    states = list(itertools.product(*(range(f[0].num_states) for f in case["factors"])))
    total = 0.0
    for path in itertools.product(range(len(states)), repeat=len(word) + 1):
        p = pi[path[0]]
        for n, t in enumerate(word):
            p *= _kernel(case, states[path[n]], t, states[path[n + 1]])
            if p == 0.0:
                break
        total += p
    return total


def _simplexity_word_probability(case: dict, beliefs: list[np.ndarray], word: list[tuple]) -> float:
    """The authors' recursion (see the module docstring): per-factor beliefs, each step's joint distribution from the
    structure, each factor moved on with its selected variant and renormalized by its tau."""
    facs, structure = case["factors"], case["structure"]
    V = [f[0].vocab_size for f in facs]
    maps = case.get("control_maps")
    Ts = [np.stack([process_vectors(p)[0] for p in f]) for f in facs]  # [K, V, S, S]
    taus = [process_vectors(f[0])[2] for f in facs]
    b = [x.copy() for x in beliefs]
    prob = 1.0
    for t in word:
        dists = [np.einsum("s,kvst,t->kv", b[i], Ts[i], taus[i]) / (b[i] @ taus[i]) for i in range(len(facs))]
        if structure == "independent":
            p = np.prod([dists[i][0][t[i]] for i in range(len(facs))])
            ks = [0] * len(facs)
        elif structure == "chain":
            ks = [0] + [maps[i][t[i - 1]] for i in range(1, len(facs))]
            p = np.prod([dists[i][ks[i]][t[i]] for i in range(len(facs))])
        elif structure == "symmetric":

            def expert(tt, dists=dists):
                return np.prod([dists[i][maps[i][other_index(tt, i, V)]][tt[i]] for i in range(len(facs))])

            Z = sum(expert(tt) for tt in itertools.product(*(range(v) for v in V)))
            p = expert(t) / Z
            ks = [maps[i][other_index(t, i, V)] for i in range(len(facs))]
        else:
            p = np.prod([dists[i][case["emission_variants"][i]][t[i]] for i in range(len(facs))])
            ks = [maps[i][other_index(t, i, V)] for i in range(len(facs))]
        prob *= p
        if prob == 0.0:  # a forbidden word: the beliefs after it are undefined
            return 0.0
        for i in range(len(facs)):
            nb = b[i] @ Ts[i][ks[i], t[i]]
            b[i] = nb / (nb @ taus[i])
    return float(prob)


def _joint(process, eta: np.ndarray, word: list[tuple], V: list[int]) -> float:
    T, _, tau = process_vectors(process)
    v = eta
    for t in word:
        v = v @ T[int(np.ravel_multi_index(t, V))]
    return float(v @ tau)


def _words(V: list[int], length: int) -> list[list[tuple]]:
    return [list(w) for w in itertools.product(itertools.product(*(range(v) for v in V)), repeat=length)]


@pytest.mark.parametrize("structure", list(CASES))
def test_joint_word_probabilities_equal_brute_force_enumeration(structure):
    case = CASES[structure]
    proc = factored_process(**case)
    V = [f[0].vocab_size for f in case["factors"]]
    _, pi, _ = process_vectors(proc)
    for length in (1, 2):
        words = _words(V, length)
        joint = np.array([_joint(proc, pi, w, V) for w in words])
        brute = np.array([_brute_force(case, pi, w) for w in words])
        np.testing.assert_allclose(joint, brute, rtol=0, atol=1e-13)
        assert abs(joint.sum() - 1.0) < 1e-12
    # the prior is stationary: the first token's law is the same at every step
    T, _, tau = process_vectors(proc)
    np.testing.assert_allclose(pi @ T.sum(0), pi, atol=1e-12)


def _random_product_belief(facs, rng) -> list[np.ndarray]:
    return [rng.dirichlet(np.ones(f[0].num_states)) for f in facs]


@pytest.mark.parametrize("structure", ["independent", "chain"])
def test_chain_and_independent_equal_the_authors_recursion_from_any_product_belief(structure):
    case = CASES[structure]
    proc = factored_process(**case)
    V = [f[0].vocab_size for f in case["factors"]]
    rng = np.random.default_rng(0)
    for _ in range(3):
        b = _random_product_belief(case["factors"], rng)
        eta = reduce(np.kron, b)
        for w in _words(V, 3):
            assert _joint(proc, eta, w, V) == pytest.approx(_simplexity_word_probability(case, b, w), abs=1e-14)


def test_a_chain_with_a_generalized_factor_equals_the_authors_recursion():
    """tom_quantum (a GHMM: quasi-probabilities, normalizer tau) as the chain's root, two 2-variant HMM children:
    16 tokens, 12 states; the joint is a GeneralizedHMM and its word probabilities are the authors' recursion's."""
    case = dict(factors=[[TQ], [S1, S2], [G1, G2]], structure="chain", control_maps=[[], [0, 1, 1, 0], [1, 0]])
    proc = factored_process(**case)
    assert type(proc).__name__ == "GeneralizedHMM" and (proc.vocab_size, proc.num_states) == (16, 12)
    V = [4, 2, 2]
    b = [np.array(process_vectors(TQ)[1]), np.array([0.3, 0.7]), np.array([0.6, 0.4])]
    eta = reduce(np.kron, b)
    words = _words(V, 2)
    joint = np.array([_joint(proc, eta, w, V) for w in words])
    theirs = np.array([_simplexity_word_probability(case, b, w) for w in words])
    np.testing.assert_allclose(joint, theirs, rtol=0, atol=1e-14)
    assert abs(joint.sum() - 1.0) < 1e-12


def test_symmetric_equals_the_authors_product_of_experts_on_one_step_from_a_state_and_not_after():
    case = CASES["symmetric"]
    proc = factored_process(**case)
    V = [2, 2, 2]
    for s in itertools.product(range(2), repeat=3):  # point-mass beliefs: a joint hidden state
        b = [np.eye(2)[x] for x in s]
        eta = reduce(np.kron, b)
        for w in _words(V, 1):
            assert _joint(proc, eta, w, V) == pytest.approx(_simplexity_word_probability(case, b, w), abs=1e-14)
    # from a spread belief the authors normalize the experts over beliefs, compmech per hidden state: they differ
    b = [np.array([0.5, 0.5])] * 3
    gap = max(
        abs(_joint(proc, reduce(np.kron, b), w, V) - _simplexity_word_probability(case, b, w)) for w in _words(V, 2)
    )
    assert gap > 1e-4


def test_transition_coupled_equals_the_authors_recursion_when_variants_share_emissions():
    """Variants T^(k)[x] = diag(e[x]) Q^(k)_x (the same P(x | s) for every variant, different hidden moves): the
    hidden-state joint and the authors' belief recursion agree exactly; with Mess3 variants that emit differently
    they do not."""
    rng = np.random.default_rng(1)

    def variants(S: int, V: int, n: int):
        e = rng.dirichlet(np.ones(V), size=S).T  # [V, S] P(x | s)
        out = []
        for _ in range(n):
            Q = rng.dirichlet(np.ones(S), size=(V, S))  # [V, S, S] rows: P(s' | s, x)
            out.append(get_process_from(e[:, :, None] * Q))
        return out

    from hmm_processes import HMM

    def get_process_from(T):
        return HMM(T, name="planted")

    facs = [variants(2, 2, 2), variants(3, 2, 2), variants(2, 2, 2)]
    case = dict(factors=facs, structure="transition_coupled", control_maps=SYM_MAPS, emission_variants=[1, 0, 1])
    proc = factored_process(**case)
    V = [2, 2, 2]
    b = _random_product_belief(facs, rng)
    for w in _words(V, 3):
        assert _joint(proc, reduce(np.kron, b), w, V) == pytest.approx(
            _simplexity_word_probability(case, b, w), abs=1e-14
        )
    mess = dict(
        factors=[[M1, M2], [M2, M1], [M1, M2]],
        structure="transition_coupled",
        control_maps=[[0, 1] * 4 + [1], [1, 0] * 4 + [0], [0] * 9],
        emission_variants=[0, 0, 0],
    )
    proc = factored_process(**mess)
    b = [np.ones(3) / 3] * 3
    gap = max(
        abs(_joint(proc, reduce(np.kron, b), w, [3, 3, 3]) - _simplexity_word_probability(mess, b, w))
        for w in _words([3, 3, 3], 2)
    )
    assert gap > 1e-6


def test_coupling_makes_the_joint_belief_not_a_product_except_in_a_chain():
    """The chain couples through tokens: from a product belief the joint belief stays the product of its marginals.
    The symmetric structure couples through the per-state normalization: it does not."""
    for structure, product in (("chain", True), ("symmetric", False)):
        case = CASES[structure]
        proc = factored_process(**case)
        T, _, _ = process_vectors(proc)
        gap = 0.0
        for word in itertools.product(range(8), repeat=2):  # every allowed two-token word
            eta = reduce(np.kron, [np.array([0.3, 0.7]), np.array([0.6, 0.4]), np.array([0.5, 0.5])])
            for t in word:
                eta = eta @ T[t]
                if eta.sum() <= 0:
                    break
                eta = eta / eta.sum()
            else:
                joint = eta.reshape(2, 2, 2)
                marginals = [joint.sum(axis=(1, 2)), joint.sum(axis=(0, 2)), joint.sum(axis=(0, 1))]
                gap = max(gap, np.abs(joint - np.einsum("a,b,c->abc", *marginals)).max())
        assert (gap < 1e-14) if product else (gap > 1e-4), (structure, gap)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(structure="tree"), r"structure must be one of independent, chain, symmetric, transition_coupled"),
        (dict(structure="chain"), r'structure "chain" needs control_maps, one list per factor \(3\); got none'),
        (dict(structure="chain", control_maps=[[], [0, 1, 0], [0, 1]]), r"control_maps\[1\] has 3 entries"),
        (dict(structure="chain", control_maps=[[], [0, 2], [0, 1]]), r"control_maps\[1\] holds 2; .* \[0, 2\)"),
        (dict(structure="symmetric", control_maps=[[0, 1], [0, 1], [0, 1]]), r"control_maps\[0\] has 2 entries"),
        (
            dict(structure="transition_coupled", control_maps=SYM_MAPS),
            r"needs emission_variants, one variant index per factor \(3\)",
        ),
        (
            dict(structure="transition_coupled", control_maps=SYM_MAPS, emission_variants=[0, 5, 0]),
            r"emission_variants\[1\] = 5",
        ),
        (dict(structure="independent"), r'"independent" uses one variant per factor; factor 0 has 2'),
    ],
)
def test_bad_structure_parameters_are_one_clear_line(kwargs, message):
    with pytest.raises(ProcessError, match=message) as info:
        factored_process(_small(), **kwargs)
    assert "\n" not in str(info.value)


def test_a_generalized_factor_needs_the_chain_and_variants_must_match():
    with pytest.raises(ProcessError, match=r'structure "symmetric" needs HMM factors'):
        factored_process([[TQ], [S1, S2], [G1, G2]], "symmetric", control_maps=[[0] * 4, [0] * 8, [0] * 8])
    with pytest.raises(ProcessError, match=r"factor 1 variant 1 \(mess3\) differs from variant 0"):
        factored_process([[S1], [S1, M1]], "chain", control_maps=[[], [0, 1]])
