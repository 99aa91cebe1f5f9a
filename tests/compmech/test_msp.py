"""The finite mixed-state presentation: construction, merging, recurrence, and 'looks infinite'."""

from __future__ import annotations

import numpy as np
import pytest

import hmm_processes as hp
from compmech.information import entropy_bits
from compmech.msp import MSP, InfiniteMSPError, build_msp, finite_msp


@pytest.mark.parametrize(
    "name, n_states, n_recurrent",
    [
        ("rrxor", 36, 5),
        ("golden_mean", 3, 2),
        ("even", 4, 2),
        ("z1r", 7, 3),
        ("coin", 1, 1),
        ("tom_quantum", 5, 4),
        ("days_of_week", 28, 21),
    ],
)
def test_finite_msp_sizes(name, n_states, n_recurrent):
    params = {"alpha": 1.0, "beta": 1.0} if name == "tom_quantum" else {}  # the degenerate, finite case
    msp = build_msp(hp.get_process(name, **params))
    assert msp.finite and msp.reason == ""
    assert msp.num_states == n_states
    assert int(msp.recurrent.sum()) == n_recurrent


def test_msp_is_a_consistent_unifilar_graph():
    for proc in (hp.rrxor(), hp.days_of_week(), hp.tom_quantum(1.0, 1.0)):
        msp = build_msp(proc)
        T, pi, tau = hp.process_vectors(proc)
        np.testing.assert_allclose(msp.beliefs[0], pi)
        np.testing.assert_allclose(msp.token_probs.sum(axis=1), 1.0)
        assert np.all((msp.next_state >= 0) == (msp.token_probs > 0))
        for i, x, j, p in msp.transitions():
            u = msp.beliefs[i] @ T[x]
            assert u @ tau == pytest.approx(p)
            np.testing.assert_allclose(u / (u @ tau), msp.beliefs[j], atol=1e-9)
        # all states distinct beyond the merge tolerance
        B = msp.beliefs
        d = np.abs(B[:, None, :] - B[None, :, :]).max(axis=2) + np.eye(len(B))
        assert d.min() > msp.tol


def test_recurrent_and_transient_parts():
    msp = build_msp(hp.rrxor())
    assert not msp.recurrent[0]  # the stationary prior is not a causal state of RRXOR
    rec = msp.recurrent
    # nothing leaves the recurrent set
    for i, _x, j, _p in msp.transitions():
        if rec[i]:
            assert rec[j]
    pi = msp.stationary_distribution()
    assert pi.sum() == pytest.approx(1.0) and np.all(pi[~rec] == 0)
    np.testing.assert_allclose(np.sort(pi[rec]), np.sort(np.array([2, 1, 1, 1, 1]) / 6), atol=1e-12)
    # the recurrent beliefs are the presentation's states (RRXOR is unifilar)
    np.testing.assert_allclose(np.sort(msp.beliefs[rec].max(axis=1)), np.ones(5))


def test_epsilon_machine_of_a_nonminimal_presentation_is_minimal():
    # a fair coin presented with 2 states that remember the last token: after 0 the belief is
    # delta_A, after 1 delta_B -- two recurrent mixed states with the same future (one causal state)
    T = np.zeros((2, 2, 2))
    T[0, :, 0] = 0.5
    T[1, :, 1] = 0.5
    msp = build_msp(hp.HMM(T))
    assert msp.num_states == 3 and int(msp.recurrent.sum()) == 2
    eps = msp.epsilon_machine()
    assert eps.num_states == 1
    np.testing.assert_allclose(eps.T.ravel(), [0.5, 0.5])


def test_epsilon_machine_of_golden_mean():
    eps = build_msp(hp.golden_mean()).epsilon_machine()
    assert eps.num_states == 2
    assert entropy_bits(eps.stationary_distribution) == pytest.approx(0.918296, abs=1e-6)


def test_ghmm_finite_msp_gives_a_classical_epsilon_machine():
    eps = build_msp(hp.tom_quantum(1.0, 1.0)).epsilon_machine()
    assert isinstance(eps, hp.HMM) and eps.num_states == 4


def test_non_ergodic_mixture_has_one_closed_component_per_part():
    mix = hp.mixture([hp.golden_mean(), hp.even()], [0.3, 0.7])
    msp = build_msp(mix)
    assert msp.finite
    labels, weights = msp.causal_classes()
    assert weights.size == 4
    comps = set(msp.components[msp.recurrent])
    assert len(comps) == 2
    # absorption weights: 0.3 into the golden-mean part, 0.7 into the even part
    B = msp.beliefs
    pi = msp.stationary_distribution()
    gm_part = msp.recurrent & (B[:, :2].sum(axis=1) > 0.5)
    assert pi[gm_part].sum() == pytest.approx(0.3)


@pytest.mark.parametrize("name", ["mess3", "leaky_rrxor", "sns", "nond", "matching_parens", "fanizza", "post_quantum"])
def test_infinite_msps_are_reported(name):
    msp = build_msp(hp.get_process(name), max_states=2000)
    assert not msp.finite
    assert "states" in msp.reason or "accumulate" in msp.reason
    assert "looks infinite" in repr(msp)
    with pytest.raises(InfiniteMSPError, match="looks infinite"):
        _ = msp.recurrent
    with pytest.raises(InfiniteMSPError):
        finite_msp(msp)


def test_state_cap_and_accumulation_are_distinct_reasons():
    assert "more than 100 states" in build_msp(hp.mess3(), max_states=100).reason
    acc = build_msp(hp.nond())
    assert "accumulate" in acc.reason and acc.max_merge_distance > 1e-12


def test_finite_msp_helper_and_argument_errors():
    assert isinstance(finite_msp(hp.even()), MSP)
    with pytest.raises(InfiniteMSPError):
        finite_msp(hp.mess3(), max_states=50)
    with pytest.raises(hp.ProcessError):
        build_msp(hp.even(), max_states=0)


def test_transition_tensor_is_the_msp_as_an_hmm():
    msp = build_msp(hp.rrxor())
    T = msp.transition_tensor()
    assert T.shape == (2, 36, 36)
    np.testing.assert_allclose(T.sum(axis=(0, 2)), 1.0)
    assert np.all((T > 0).sum(axis=2) <= 1)  # unifilar
