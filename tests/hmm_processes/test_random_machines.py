"""Random ε-machines and random non-unifilar HMMs (`hmm_processes.random_machines`): every sample is a valid,
strongly connected, aperiodic HMM, unifilar when asked, with no two states of the same future (checked by brute
force: every word up to length 2n enumerated from each state), reproducible from its seed; and the documented
distribution checked statistically with Hoeffding bounds derived here (failure probability 1e-6 each)."""

import itertools
import math

import numpy as np
import pytest

from hmm_processes import ProcessError, get_process, random_nonunifilar, random_unifilar
from hmm_processes.random_machines import future_space_classes, moore_classes, period

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

#: Each statistical check fails with probability at most this when the sampler is right.
DELTA = 1e-6


def hoeffding(n: int, width: float = 1.0, delta: float = DELTA) -> float:
    """Half-width of the two-sided Hoeffding interval for a mean of n independent values in an interval of ``width``."""
    return width * math.sqrt(math.log(2 / delta) / (2 * n))


def word_distributions(T: np.ndarray, length: int) -> np.ndarray:
    """[S, sum_L V^L] the probability of every word of length 1..``length`` from each start state (brute force)."""
    V, S, _ = T.shape
    cols = []
    for L in range(1, length + 1):
        for w in itertools.product(range(V), repeat=L):
            v = np.ones(S)
            for x in reversed(w):
                v = T[x] @ v
            cols.append(v)
    return np.stack(cols, axis=1)


def primitive(M: np.ndarray) -> bool:
    """Strongly connected and aperiodic <=> some power of the 0/1 pattern is all positive; Wielandt: (S-1)^2 + 1."""
    S = M.shape[0]
    A = (M > 0).astype(float)
    P = np.linalg.matrix_power(A, (S - 1) ** 2 + 1)
    return bool((P > 0).all())


sizes = st.tuples(st.integers(2, 4), st.integers(2, 3), st.integers(0, 10_000), st.booleans())


@settings(max_examples=40, deadline=None)
@given(sizes)
def test_every_sample_is_a_valid_strongly_connected_aperiodic_machine_with_distinct_futures(case):
    S, V, seed, unifilar = case
    hmm = get_process("random_epsilon_machine", n_states=S, n_tokens=V, seed=seed, unifilar=unifilar)
    T = hmm.T
    assert T.shape == (V, S, S)
    assert (T >= 0).all()
    np.testing.assert_allclose(T.sum(axis=(0, 2)), 1.0, atol=1e-12)
    succ = (T > 0).sum(axis=2)  # [V, S]: successors of each (token, state)
    if unifilar:
        assert succ.max() <= 1
    else:
        assert succ.max() >= 2  # a non-unifilar sample really is not unifilar
    assert primitive(T.sum(axis=0))
    # brute force: no two states give the same distribution over the words up to length 2n
    P = word_distributions(T, 2 * S)
    for i, j in itertools.combinations(range(S), 2):
        assert np.abs(P[i] - P[j]).max() > 1e-9, (i, j)


def test_same_seed_same_machine_and_other_seeds_differ():
    a = get_process("random_epsilon_machine", n_states=4, n_tokens=3, seed=11)
    b = get_process("random_epsilon_machine", n_states=4, n_tokens=3, seed=11)
    c = get_process("random_epsilon_machine", n_states=4, n_tokens=3, seed=12)
    np.testing.assert_array_equal(a.T, b.T)
    assert not np.array_equal(a.T, c.T)
    assert a.params == {"n_states": 4, "n_tokens": 3, "seed": 11, "unifilar": True, "p": 0.5, "alpha": 1.0}
    d = random_nonunifilar(4, 2, np.random.default_rng(5))
    e = random_nonunifilar(4, 2, np.random.default_rng(5))
    np.testing.assert_array_equal(d.T, e.T)


def test_one_state_machines_follow_the_documented_token_law():
    """With one state every draw is accepted (a self-loop is strongly connected and aperiodic; one state is
    minimal), so the samples follow the product law itself: each token present with probability p, conditioned on
    at least one. The mean fraction of tokens present is then E|A|/V = p / (1 - (1 - p)^V)."""
    rng = np.random.default_rng(0)
    p, V, n = 0.3, 4, 4000
    present = np.array([(random_unifilar(1, V, rng, p_token=p).T[:, 0, 0] > 0) for _ in range(n)])  # [n, V]
    expected = p / (1 - (1 - p) ** V)
    assert abs(present.mean() - expected) <= hoeffding(n)
    # and no token is favoured: each one's frequency within its own bound
    for x in range(V):
        assert abs(present[:, x].mean() - expected) <= hoeffding(n)


def test_emission_probabilities_are_dirichlet():
    """A one-state, two-token machine with p = 1 emits with probabilities (q, 1 - q), q ~ Beta(alpha, alpha):
    mean 1/2 and E[(q - 1/2)^2] = 1 / (4 (2 alpha + 1)); both checked with Hoeffding (q and (q - 1/2)^2 lie in
    intervals of width 1 and 1/4)."""
    rng = np.random.default_rng(1)
    n = 4000
    for alpha in (0.5, 3.0):
        q = np.array([random_unifilar(1, 2, rng, p_token=1.0, alpha=alpha).T[0, 0, 0] for _ in range(n)])
        assert abs(q.mean() - 0.5) <= hoeffding(n)
        assert abs(((q - 0.5) ** 2).mean() - 1 / (4 * (2 * alpha + 1))) <= hoeffding(n, width=0.25)


def test_successors_are_exchangeable_over_accepted_machines():
    """Acceptance is invariant under relabelling the states, so swapping states 1 and 2 (fixing 0) shows that over
    accepted machines state 0 goes to 1 and to 2 on token 0 equally often (a self-loop 0 -> 0 need not: aperiodicity
    favours it). The difference of the two indicators lies in [-1, 1]: Hoeffding with width 2."""
    rng = np.random.default_rng(2)
    S, V, n = 3, 2, 3000
    diff = np.zeros(n)
    for k in range(n):
        T = random_unifilar(S, V, rng, p_token=1.0).T  # p = 1: every state emits both tokens
        diff[k] = float(T[0, 0, 1] > 0) - float(T[0, 0, 2] > 0)
    assert abs(diff.mean()) <= hoeffding(n, width=2.0)
    assert abs(diff).mean() > 0.2  # and it does go to each of them


def test_moore_refinement_merges_exactly_the_states_with_the_same_future():
    # states 0 and 1 emit (a: 1/2, b: 1/2) and go to 2 on a and themselves on b: the same future; 2 differs
    next_state = np.array([[2, 0], [2, 1], [0, -1]])
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])
    cls = moore_classes(next_state, probs)
    assert cls[0] == cls[1] != cls[2]
    # a T with the same pair: the linear-algebra test agrees with the refinement and with brute force
    T = np.zeros((2, 3, 3))
    T[0, 0, 2] = T[1, 0, 0] = T[0, 1, 2] = T[1, 1, 1] = 0.5
    T[0, 2, 0] = 1.0
    fcls = future_space_classes(T)
    assert fcls[0] == fcls[1] != fcls[2]
    P = word_distributions(T, 6)
    np.testing.assert_allclose(P[0], P[1], atol=1e-15)


def test_period_of_cycles():
    ring = np.roll(np.eye(4, dtype=bool), 1, axis=1)  # 0 -> 1 -> 2 -> 3 -> 0
    assert period(ring) == 4
    ring[0, 0] = True
    assert period(ring) == 1
    two = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=bool)  # bipartite
    assert period(two) == 2


def test_bad_input_says_which_parameter():
    with pytest.raises(ProcessError, match="n_states"):
        get_process("random_epsilon_machine", n_states=0)
    with pytest.raises(ProcessError, match="p must be|p_token"):
        get_process("random_epsilon_machine", p=0.0)
    with pytest.raises(ProcessError, match="alpha"):
        get_process("random_epsilon_machine", alpha=-1.0)
    with pytest.raises(ProcessError, match="unifilar"):
        get_process("random_epsilon_machine", unifilar=1)
    # one token, several states: only a periodic cycle is strongly connected, so nothing is ever accepted
    with pytest.raises(ProcessError, match="no strongly connected"):
        random_unifilar(3, 1, np.random.default_rng(0), max_tries=200)
