"""The cbu study's tests that could say no: the null model's R², the Hungarian assignment of heads to predicted
rates, and the verdicts, each on planted data where the answer is known."""

import itertools

import numpy as np
import pytest

from compmech.studies.cbu.analysis import (
    NOT_SUPPORTED,
    SUPPORTED,
    UNMATCHED_COST,
    compare_to_null,
    decay_verdict,
    greedy_assignment,
    hungarian_assignment,
    null_stream,
    r2_verdict,
    rate_costs,
)
from compmech.studies.cbu.theory import HeadPrediction, constrained_beliefs, process_prediction
from hmm_processes import mess3
from probes import probe_rows
from probes.attention import DecayFit


def fit(rate, r2=0.99):
    return DecayFit(rate, r2, rate, 0.0, r2, 10, 4)


def test_the_hungarian_assignment_differs_from_the_greedy_one_on_a_planted_cost_matrix():
    # predictions 0.6 then 0.4; heads fitted at 0.55 and 0.9. Greedy gives 0.6 the nearest head (0.55) and leaves
    # 0.4 with 0.9 (total 0.05 + 0.5); the assignment of least total cost swaps them (0.3 + 0.15).
    preds = [HeadPrediction(0.6, 0.6, "all", 0.5, (0,)), HeadPrediction(0.4, 0.4, "all", 0.5, (1,))]
    cost = rate_costs(preds, [fit(0.55), fit(0.9)], 0.9, 0.95)
    assert cost == pytest.approx(np.array([[0.05, 0.3], [0.15, 0.5]]))
    greedy, best = greedy_assignment(cost), hungarian_assignment(cost)
    assert greedy.heads == (0, 1) and greedy.cost == pytest.approx(0.55)
    assert best.heads == (1, 0) and best.cost == pytest.approx(0.45)
    assert best.cost < greedy.cost and [best.gap(0), best.gap(1)] == pytest.approx([0.3, 0.15])


def test_the_assignment_leaves_unclean_heads_and_surplus_predictions_without_a_head():
    preds = [HeadPrediction(0.7, 0.7, "all", 0.5, (0,)), HeadPrediction(0.3, 0.3, "all", 0.5, (1,))]
    fits = [fit(0.32), fit(0.69, r2=0.5), fit(0.6), fit(0.99)]  # head 1 is not clean, head 3 does not decay
    a = hungarian_assignment(rate_costs(preds, fits, 0.9, 0.95))
    assert a.heads == (2, 0) and a.cost == pytest.approx(0.1 + 0.02)
    one = hungarian_assignment(rate_costs(preds, fits[:1], 0.9, 0.95))  # two predictions, one head
    assert one.heads == (None, 0) and one.cost == pytest.approx(UNMATCHED_COST + 0.02)
    # an alternating prediction is compared with the parity fit's rate
    odd = HeadPrediction(0.5, -0.5, "odd", 1.0, (0,))
    assert rate_costs([odd], [DecayFit(0.9, 0.2, 0.52, 3.0, 0.99, 10, 4)], 0.9, 0.95)[0, 0] == pytest.approx(0.02)


def test_the_r2_verdict_flips_on_planted_data():
    model = [0.90, 0.91, 0.89]
    clear = r2_verdict(model, [0.85, 0.86, 0.84])  # margin 0.05 > spread sqrt(2) * 0.01
    assert clear.verdict == SUPPORTED and clear.numbers["margin"] == pytest.approx(0.05)
    assert clear.numbers["spread"] == pytest.approx(np.sqrt(2) * 0.01)
    close = r2_verdict(model, [0.89, 0.90, 0.88])  # margin 0.01 < spread
    assert close.verdict == NOT_SUPPORTED
    assert r2_verdict(model, [0.95, 0.96, 0.94]).verdict == NOT_SUPPORTED  # the null beats the model
    assert r2_verdict([0.9], [0.1]).verdict == NOT_SUPPORTED  # one split: no spread, no support
    assert r2_verdict([0.9, np.nan], [0.1, 0.2]).verdict == NOT_SUPPORTED  # a withheld split


def test_the_decay_verdict_flips_on_planted_fits():
    preds = [HeadPrediction(0.7, 0.7, "all", 1.0, (0,))]
    near = hungarian_assignment(rate_costs(preds, [fit(0.65)], 0.9, 0.95))
    assert decay_verdict(near, [0.7], [0.65], 0.1, "h").verdict == SUPPORTED
    far = hungarian_assignment(rate_costs(preds, [fit(0.35)], 0.9, 0.95))
    v = decay_verdict(far, [0.7], [0.35], 0.1, "h")
    assert v.verdict == NOT_SUPPORTED and v.numbers["gaps"] == pytest.approx([0.35])
    flat = hungarian_assignment(rate_costs(preds, [fit(0.98)], 0.9, 0.95))  # no clean head
    assert flat.heads == (None,) and decay_verdict(flat, [0.7], [None], 0.1, "h").verdict == NOT_SUPPORTED
    assert decay_verdict(hungarian_assignment(np.zeros((0, 2))), [], [], 0.1, "h").verdict == NOT_SUPPORTED


def test_the_predicted_rates_come_from_the_process_alone():
    p = process_prediction(mess3(0.5, 0.6))  # lambda = 1 - 3x = -0.5: the parity-head case
    assert [(h.rate, h.parity) for h in p.heads] == [(pytest.approx(0.5), "even"), (pytest.approx(0.5), "odd")]
    assert p.rates == pytest.approx((0.5, 0.5)) and len(p.readout_of) == 2
    assert process_prediction(mess3(0.15, 0.2)).rates == pytest.approx((0.55,))


def _mess3_contexts(x=0.1, alpha=0.85, length=5):
    """Every word of ``length`` tokens of Mess3 with its probability and its belief at every position."""
    proc = mess3(x, alpha)
    tokens = np.array(list(itertools.product(range(3), repeat=length)))  # [N, T]
    beliefs = np.empty(tokens.shape + (3,))
    probs = np.empty(len(tokens))
    for n, word in enumerate(tokens):
        b, p = proc.stationary_distribution, 1.0
        for t, tok in enumerate(word):
            b = b @ proc.T[tok]
            p *= b.sum()
            b = b / b.sum()
            beliefs[n, t] = b
        probs[n] = p
    return proc, tokens, probs / probs.sum(), beliefs


def test_the_null_r2_is_computed_and_exceeds_a_stream_that_lacks_the_history():
    proc, tokens, probs, beliefs = _mess3_contexts()
    constrained = constrained_beliefs(proc, tokens)  # [N, T, 3]
    targets = np.concatenate([constrained, beliefs], axis=-1)
    rows = probe_rows(
        null_stream(beliefs, tokens, 3), targets, tokens, probs, rows="distinct_contexts", weighting="probability"
    )
    assert rows.X.shape[1] == 3 + 3 + 5

    def stream(acts):
        return probe_rows(acts, targets, tokens, probs, rows="distinct_contexts", weighting="probability").X

    # a "model" whose stream holds the current token and the position only: the null beats it
    token_only = stream(null_stream(np.zeros_like(beliefs), tokens, 3))
    weak = compare_to_null(token_only, rows.X, rows, 3, n_splits=3, seed=0)
    assert len(weak.null_r2) == 3 and all(0 < r < 1 for r in weak.null_r2)
    assert np.mean(weak.null_r2) > np.mean(weak.model_r2) and weak.verdict.verdict == NOT_SUPPORTED
    # a stream that holds the constrained belief itself beats the null on every split
    exact = compare_to_null(stream(constrained), rows.X, rows, 3, n_splits=3, seed=0)
    assert exact.null_r2 == weak.null_r2  # the same splits
    assert min(exact.model_r2) > 1 - 1e-9 and exact.verdict.verdict == SUPPORTED
    # the null's own R² onto the belief it holds is 1; onto the constrained belief it is not
    assert max(weak.null_r2) < 0.999
