"""Information measures: textbook values, identities between measures, and estimates for infinite MSPs."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

import hmm_processes as hp
from compmech import block_entropies, mixed_states, myopic_entropies
from compmech.information import entropy_bits
from compmech.measures import (
    blackwell_entropy_rate,
    block_entropy,
    cryptic_order,
    crypticity,
    entropy_limit,
    entropy_rate,
    epsilon_machine,
    excess_entropy,
    markov_order,
    myopic_entropy,
    myopic_entropy_sequence,
    process_info,
    statistical_complexity,
    synchronization_information,
    transient_information,
)
from compmech.msp import InfiniteMSPError, build_msp

LOG3 = math.log2(3)
H23 = -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)  # H(2/3, 1/3) = 0.918296

# REFERENCE.md textbook values at p = 1/2: (h_mu, C_mu, E)
TEXTBOOK = {
    "golden_mean": (2 / 3, H23, LOG3 - 4 / 3),
    "even": (2 / 3, H23, H23),
    "rrxor": (2 / 3, LOG3 + 2 / 3, LOG3 + 2 / 3),
    "z1r": (1 / 3, LOG3, LOG3),
}


@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_textbook_values(name):
    h, C, E = TEXTBOOK[name]
    proc = hp.get_process(name)
    assert entropy_rate(proc) == pytest.approx(h, abs=1e-6)
    assert statistical_complexity(proc) == pytest.approx(C, abs=1e-6)
    assert excess_entropy(proc) == pytest.approx(E, abs=1e-6)
    assert crypticity(proc) == pytest.approx(C - E, abs=1e-6)
    info = process_info(proc)
    assert (info.h_mu.value, info.C_mu.value, info.E.value) == pytest.approx((h, C, E), abs=1e-6)
    assert all(m.method in ("exact", "infinite", "not computed") for m in info.measures().values())
    assert info.h_mu.error <= 1e-12 and info.E.error <= 1e-9


def test_textbook_numbers_as_printed():
    assert TEXTBOOK["golden_mean"][1] == pytest.approx(0.918296, abs=1e-6)
    assert TEXTBOOK["golden_mean"][2] == pytest.approx(0.251629, abs=1e-6)
    assert TEXTBOOK["rrxor"][1] == pytest.approx(2.251629, abs=1e-6)
    assert TEXTBOOK["z1r"][1] == pytest.approx(1.584963, abs=1e-6)


def test_coin_has_no_structure():
    c = hp.coin(0.3)
    assert entropy_rate(c) == pytest.approx(entropy_bits(np.array([0.3, 0.7])))
    for f in (statistical_complexity, excess_entropy, transient_information, synchronization_information):
        assert f(c) == pytest.approx(0.0, abs=1e-12)
    assert markov_order(c) == 0 and cryptic_order(c) == 0


def test_orders():
    assert markov_order(hp.golden_mean()) == 1
    assert markov_order(hp.even()) is None  # infinite: 1^n never synchronises
    assert markov_order(hp.z1r()) == 3
    assert markov_order(hp.rrxor()) is None
    assert cryptic_order(hp.golden_mean()) == 1
    for name in ("even", "rrxor", "z1r"):
        assert cryptic_order(hp.get_process(name)) == 0  # chi = 0 <=> cryptic order 0
    assert cryptic_order(hp.days_of_week()) is None


def test_markov_order_means_block_entropies_are_linear_from_there():
    """For Markov order R: H(L) = E + L h_mu for all L >= R (checked against exact enumeration)."""
    for name, R in (("golden_mean", 1), ("z1r", 3)):
        proc = hp.get_process(name)
        H = block_entropies(mixed_states(proc, 10))
        E, h = excess_entropy(proc), entropy_rate(proc)
        for L in range(R, 11):
            assert H[L] == pytest.approx(E + L * h, abs=1e-10)
        assert H[R - 1] < E + (R - 1) * h - 1e-6  # H(L) approaches E + L h_mu from below


def test_myopic_sequence_matches_exact_enumeration():
    for name, depth in (("rrxor", 10), ("even", 10), ("days_of_week", 4)):
        proc = hp.get_process(name)
        exact = myopic_entropies(mixed_states(proc, depth))
        seq = myopic_entropy_sequence(proc)
        n = min(len(exact), len(seq))
        np.testing.assert_allclose(seq[:n], exact[:n], atol=1e-12)


def test_transient_and_synchronization_information():
    # order-1 Markov (golden mean): T = E and S = C_mu
    gm = hp.golden_mean()
    assert transient_information(gm) == pytest.approx(LOG3 - 4 / 3, abs=1e-9)
    assert synchronization_information(gm) == pytest.approx(H23, abs=1e-9)
    # T = S + sum_{L < k} (H[S_0 | X_0..X_L, S_L] - chi): S = T when k = 0, S = T + chi when k = 1
    for proc in (hp.even(), hp.rrxor(), hp.z1r(), hp.golden_mean(), hp.tom_quantum(1.0, 1.0)):
        name = proc.name
        k, T, S, chi = (
            cryptic_order(proc),
            transient_information(proc),
            synchronization_information(proc),
            crypticity(proc),
        )
        assert k in (0, 1)
        assert S == pytest.approx(T + (chi if k == 1 else 0.0), abs=1e-9), name
    assert transient_information(hp.even()) == pytest.approx(math.log2(9), abs=1e-9)


def test_non_ergodic_mixture_measures():
    w = np.array([0.3, 0.7])
    mix = hp.mixture([hp.golden_mean(), hp.even()], w)
    Hw = entropy_bits(w)
    assert entropy_rate(mix) == pytest.approx(2 / 3, abs=1e-12)
    assert statistical_complexity(mix) == pytest.approx(Hw + H23, abs=1e-9)
    assert excess_entropy(mix) == pytest.approx(Hw + 0.3 * (LOG3 - 4 / 3) + 0.7 * H23, abs=1e-9)


def test_independent_product_adds_measures():
    a, b = hp.golden_mean(), hp.z1r()
    p = hp.product([a, b])
    assert entropy_rate(p) == pytest.approx(entropy_rate(a) + entropy_rate(b), abs=1e-9)
    assert excess_entropy(p) == pytest.approx(excess_entropy(a) + excess_entropy(b), abs=1e-9)
    assert statistical_complexity(p) == pytest.approx(statistical_complexity(a) + statistical_complexity(b), abs=1e-9)


def test_exact_measures_refuse_infinite_msps():
    with pytest.raises(InfiniteMSPError, match="not unifilar"):
        entropy_rate(hp.mess3())
    with pytest.raises(InfiniteMSPError):
        statistical_complexity(hp.sns(), max_states=500)


def test_unifilar_presentation_with_infinite_transient_msp():
    mp = hp.matching_parens()
    assert not build_msp(mp).finite
    eps = epsilon_machine(mp)
    assert eps.num_states == 5
    info = process_info(mp)
    assert info.h_mu.method == "exact" and info.n_mixed_states.method == "infinite"
    assert info.n_causal_states.value == 5
    assert info.C_mu.value == pytest.approx(entropy_bits(mp.stationary_distribution), abs=1e-12)
    assert info.cryptic_order.value == 0
    assert info.E.value == pytest.approx(info.C_mu.value, abs=1e-9)  # cryptic order 0: E = C_mu
    assert info.S.value == pytest.approx(info.T.value, abs=1e-6)
    assert info.E.error < 1e-9 and info.E.method == "h(L) limit"


def test_block_and_myopic_entropy_any_process():
    m3 = hp.mess3()
    ms = mixed_states(m3, 8)
    assert block_entropy(m3, 8) == pytest.approx(block_entropies(ms)[8], abs=1e-10)
    assert myopic_entropy(m3, 9) == pytest.approx(myopic_entropies(ms)[8], abs=1e-10)
    # a GHMM: H(L) from exact word probabilities
    from hmm_processes.generalized import all_words

    tq = hp.tom_quantum(1.0, 0.5)
    P = tq.word_probabilities(all_words(4, 5))
    assert block_entropy(tq, 5) == pytest.approx(entropy_bits(np.clip(P, 0, None)), abs=1e-9)
    with pytest.raises(hp.ProcessError):
        myopic_entropy(m3, 0)


def test_blackwell_estimate_agrees_with_exact_values():
    for proc, exact in ((hp.golden_mean(), 2 / 3), (hp.rrxor(), 2 / 3)):
        est = blackwell_entropy_rate(proc, n_steps=200_000, seed=1)
        assert abs(est.value - exact) < 5 * est.stderr + 1e-9
    # Mess3: h(L) decreases to h_mu; h(13) is within 1e-7 of the limit
    m3 = hp.mess3()
    hL = myopic_entropies(mixed_states(m3, 12))[-1]
    est = blackwell_entropy_rate(m3, n_steps=400_000, seed=2)
    assert 0 < est.stderr < 1e-3
    assert abs(est.value - hL) < 5 * est.stderr


def test_process_info_for_an_infinite_msp():
    """Mess3 (0.05, 0.85): h_mu, E, T from the limit of the exact h(L), each with a convergence bound."""
    info = process_info(hp.mess3(), lyapunov_steps=100_000)
    assert info.n_mixed_states.method == "infinite" and info.C_mu.method == "infinite"
    for key in ("h_mu", "E", "T"):
        m = getattr(info, key)
        assert m.method == "h(L) limit" and m.error_kind == "bound" and 0 < m.error < 1e-8, key
    # brute force: the partial sums of the exact h(L) to depth 13 already pin E to ~1e-6 from below
    h = myopic_entropies(mixed_states(hp.mess3(), 12))  # h(1)..h(13)
    assert h[-1] > info.h_mu.value > h[-1] - 1e-7  # h(L) decreases to h_mu
    partial = float(np.sum(h - info.h_mu.value))
    assert 0 < info.E.value - partial < 2e-7
    # the bound is honest: a shallower enumeration lands within its own bound of the deep value
    shallow = process_info(hp.mess3(), word_budget=3**11 * 1.6, lyapunov_steps=20_000)
    assert shallow.depth < info.depth
    for key in ("h_mu", "E", "T"):
        a, b = getattr(shallow, key), getattr(info, key)
        assert abs(a.value - b.value) <= a.error + b.error, key
    assert 0 < info.lyapunov_dimension.value < 1 and info.lyapunov_dimension.error_kind == "stderr"
    assert len(info.lyapunov_exponents) == 2
    d = info.to_dict()
    for key in (
        "h_mu",
        "C_mu",
        "E",
        "T",
        "S",
        "chi",
        "markov_order",
        "cryptic_order",
        "n_mixed_states",
        "lyapunov_dimension",
    ):
        assert set(d[key]) == {"value", "error", "error_kind", "method"}
    json.loads(json.dumps(d, allow_nan=False))


def test_entropy_limit_of_a_geometric_sequence():
    """h(L) = h + c rho^L: limit, E and T in closed form, and bounds that contain them."""
    h_inf, c, rho = 0.9, 0.3, 0.4
    L = np.arange(1, 21)
    lim = entropy_limit(h_inf + c * rho**L)
    assert lim.method == "geometric" and lim.ratio == pytest.approx(rho)
    assert abs(lim.h_mu - h_inf) <= lim.h_mu_bound and lim.h_mu_bound < 1e-10
    E = c * rho / (1 - rho)
    T = c * rho / (1 - rho) ** 2
    assert abs(lim.E - E) <= lim.E_bound and abs(lim.T - T) <= lim.T_bound
    assert lim.E == pytest.approx(E, abs=1e-12) and lim.T == pytest.approx(T, abs=1e-11)
    # a sequence that has not converged is said so
    assert entropy_limit(1.0 + 1.0 / L).method == "not converged"


def test_process_info_for_a_ghmm():
    info = process_info(hp.tom_quantum(1.0, 1.0))
    assert info.kind == "ghmm" and info.n_mixed_states.value == 5
    assert info.lyapunov_dimension.method == "not computed"
    assert info.h_mu.value == pytest.approx(1.5, abs=1e-12) and info.C_mu.value == pytest.approx(2.0, abs=1e-12)
    info = process_info(hp.post_quantum(), lyapunov_steps=20_000)
    assert info.lyapunov_dimension.value == 0.0  # countable belief set (the reset token)
    assert info.h_mu.method == "h(L) limit" and info.h_mu.error < 1e-10
    assert info.C_mu.method == "countable MSP limit" and info.C_mu.error < 1e-9
    # its distinct beliefs come closer than any merging grid: merged beliefs give only lower bounds,
    # which the exact labels respect
    from compmech.measures import _countable_complexity

    coarse = _countable_complexity(hp.post_quantum(), 1000, 1e-12)
    assert coarse.method == "lower bound" and coarse.value < info.C_mu.value < coarse.value + 0.02


def test_reset_labels_are_the_causal_states_of_post_quantum():
    """post_quantum: token 0 is a rank-one reset and tokens 1, 2 commute, so the state is (counts of 1 and 2
    since the last 0). A label's probability, summed over its orderings by brute force, is the multinomial
    formula; SNS labels give the closed-form C_mu of the test below."""
    from compmech.measures import reset_labels

    pq = hp.post_quantum()
    lab = reset_labels(pq)
    assert lab.reset_tokens == (0,) and lab.other_tokens == (1, 2) and lab.missing < 1e-12
    T, pi, tau = hp.process_vectors(pq)
    probs = dict(zip(lab.labels, lab.probs))
    for counts in [(0, 0), (2, 1), (1, 3)]:
        brute = 0.0
        for order in itertools.product((1, 2), repeat=sum(counts)):
            if (order.count(1), order.count(2)) == counts:
                v = pi @ T[0]
                for x in order:
                    v = v @ T[x]
                brute += v @ tau
        assert probs[(0, counts)] == pytest.approx(brute, rel=1e-12, abs=1e-15)
    assert reset_labels(hp.mess3()) is None  # no reset token
    assert entropy_bits(reset_labels(hp.sns()).probs) == pytest.approx(2.7114687242, abs=1e-9)


def test_countable_mixed_states_give_a_converged_complexity():
    """SNS: causal states = number of 0s since the last 1; C_mu = H(P(n)), P(n) = P(1) P(0^n | A)."""
    sns = hp.sns()
    T, pi = sns.T, sns.stationary_distribution
    p1 = pi @ T[1] @ np.ones(2)
    v, P = np.array([1.0, 0.0]), []
    for _ in range(400):
        P.append(p1 * v.sum())
        v = v @ T[0]
    info = process_info(sns, lyapunov_steps=20_000)
    assert info.C_mu.value == pytest.approx(entropy_bits(np.array(P)), abs=1e-10)
    assert info.C_mu.method == "countable MSP limit" and info.C_mu.error < 1e-8
    assert info.markov_order.method == "infinite"
    assert info.lyapunov_dimension.value == 0.0
    assert info.chi.value == pytest.approx(info.C_mu.value - info.E.value)
    # without the labels, from merged beliefs: converged for real, the same value with a 100x finer grid
    from compmech.measures import _countable_complexity

    for proc in (sns, hp.nond()):
        a = _countable_complexity(proc, 1000, 1e-12)
        b = _countable_complexity(proc, 1000, 1e-14)
        assert a.method == b.method == "countable MSP limit"
        assert a.value == pytest.approx(b.value, abs=1e-10)
        assert a.value == pytest.approx(process_info(proc, lyapunov_steps=10_000).C_mu.value, abs=1e-9)


def test_measures_stay_in_range_and_bad_processes_are_refused():
    with pytest.raises(hp.ProcessError, match="add a prior"):
        hp.HMM(np.stack([np.eye(2) * 0.5, np.eye(2) * 0.5]))  # two closed classes, no prior
    for proc in (hp.coin(0.0), hp.golden_mean(0.999), hp.nond()):
        info = process_info(proc, lyapunov_steps=10_000)
        V = proc.vocab_size
        assert 0 <= info.h_mu.value <= math.log2(V)
        for key in ("C_mu", "E", "T", "S"):
            m = getattr(info, key)
            assert m.value is None or m.value >= 0, key


def test_a_chaos_game_entropy_rate_never_lies_above_the_exact_upper_bound_beside_it():
    """Taken whole (no factoring), a product of two Mess3 has h(L) unconverged at depth 7 and h_mu from the
    chaos game. h(7) is exact and h(L) decreases to h_mu, so h_mu <= h(7); the chaos-game average (seed 0:
    2.71606 +- 2.0e-4) lands 1.5 standard errors above it by sampling noise. process_info reports h(7) then,
    with the same standard error, and says so; the truth (the factors' sum) stays within 4 of those errors."""
    prod = hp.product([hp.mess3(), hp.mess3(0.15, 0.6)])
    info = process_info(prod, decompose=False, lyapunov_steps=100_000)
    assert info.h_mu.method == "Blackwell" and info.depth == 7
    h7 = float(myopic_entropies(mixed_states(prod, 6))[-1])  # exact h(7) by enumeration, here
    assert info.h_mu.value <= h7 + 1e-12
    assert any("above the exact upper bound" in n for n in info.notes)
    truth = 1.1447172664 + 1.5709336191  # the factors' h_mu (limits of their exact h(L), test_theory_cli)
    assert abs(info.h_mu.value - truth) <= 4 * info.h_mu.error
