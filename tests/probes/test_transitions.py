"""probes.transitions on planted data: identifying-token losses by count, a step change, a score's half rise."""

from __future__ import annotations

import numpy as np
import pytest

from probes import ProbeInputError
from probes.transitions import (
    counts_before,
    half_rise,
    identifying_tokens,
    loss_by_count,
    step_change,
)


def test_identifying_tokens_are_those_some_but_not_all_components_emit():
    emits = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 1, 0]], dtype=bool)  # the dursley_wonka mixture (+ a start)
    np.testing.assert_array_equal(identifying_tokens(emits), [False, False, False, True, True, False])


def test_counts_are_of_identifying_tokens_strictly_before():
    ident = np.array([False, False, False, True, True])
    tokens = np.array([[5, 0, 3, 1, 0, 3, 4], [5, 4, 4, 0, 0, 1, 2]])  # 5: a start token, beyond V
    np.testing.assert_array_equal(counts_before(tokens, ident), [[0, 0, 0, 1, 1, 1, 2], [0, 0, 1, 2, 2, 2, 2]])


def test_loss_by_count_recovers_planted_losses_with_a_clustered_error():
    rng = np.random.default_rng(0)
    N, L = 400, 60
    ident = np.array([False, False, True])
    tokens = rng.choice(3, size=(N, L), p=[0.45, 0.45, 0.1])
    counts = counts_before(tokens, ident)
    planted = np.array([0.69, 0.2, 0.05, 0.01])  # the loss of an identifying token after 0, 1, 2, >= 3 of them
    seq_effect = rng.normal(0, 0.05, size=(N, 1))  # a per-sequence offset: the predictions of a row are correlated
    losses = planted[np.minimum(counts, 3)] + seq_effect + rng.normal(0, 0.02, size=(N, L))
    losses[tokens != 2] = 99.0  # the other tokens' losses never enter
    r = loss_by_count(tokens, losses, ident, 3)
    assert r.top_open and list(r.count) == [0, 1, 2, 3]
    assert np.all(r.n > 100)
    # within 4 of its (clustered) standard errors of the planted value, in every bin
    assert np.all(np.abs(r.loss - planted) < 4 * r.loss_se), (r.loss, r.loss_se)
    # the clustered error is larger than the naive one (a per-row offset shared by the row's predictions)
    sel = (tokens == 2) & (np.minimum(counts, 3) == 3)
    naive = losses[sel].std(ddof=1) / np.sqrt(sel.sum())
    assert r.loss_se[3] > 1.5 * naive
    # a mask removes positions, and an empty bin is NaN with n = 0
    masked = loss_by_count(tokens, losses, ident, 5, mask=counts < 2)
    assert masked.n[2] == 0 and np.isnan(masked.loss[2]) and masked.n[0] == r.n[0]
    with pytest.raises(ProbeInputError, match="losses must have the shape"):
        loss_by_count(tokens, losses[:, 1:], ident, 3)


def _curve(steps, rng, noise=1e-3, step_at=None, width=15.0, height=0.12):
    loss = 1.0 + 0.7 * np.exp(-steps / 40.0)  # the fast initial fall, slowing to a plateau
    if step_at is not None:
        loss = loss - height / (1.0 + np.exp(-(steps - step_at) / width))
    return loss + rng.normal(0, noise, steps.size)


@pytest.mark.parametrize("step_at", [300.0, 550.0])
def test_a_planted_step_is_found_within_its_uncertainty(step_at):
    rng = np.random.default_rng(1)
    steps = np.arange(0, 1001, 10.0)
    sc = step_change(steps, _curve(steps, rng, step_at=step_at))
    assert sc.found, sc.reason
    assert sc.step_lo <= step_at <= sc.step_hi
    assert abs(sc.step - step_at) <= max(sc.uncertainty, 10.0)
    assert sc.uncertainty < 60  # a sigmoid of width 15: its half-maximum interval is about 2 x 1.76 x 15 wide
    assert sc.drop == pytest.approx(0.12, abs=0.04)
    assert sc.plateau_step < sc.step
    assert sc.noise == pytest.approx(1e-3, rel=0.3)


def test_a_smooth_decay_and_a_slow_start_have_no_step_change():
    rng = np.random.default_rng(2)
    steps = np.arange(0, 1001, 10.0)
    smooth = step_change(steps, _curve(steps, rng))
    assert not smooth.found and "no plateau" in smooth.reason
    # a slow start then one fall (no earlier fall before the plateau): not a step change by this rule
    slow_start = 1.8 - 0.8 / (1.0 + np.exp(-(steps - 100.0) / 15.0)) + rng.normal(0, 1e-3, steps.size)
    assert not step_change(steps, slow_start).found
    # one noisy point (50 noise sigmas) on the plateau: the fall back from it is not a step change
    spiky = _curve(steps, rng)
    spiky[50] += 0.05
    assert not step_change(steps, spiky).found
    # pure noise
    assert not step_change(steps, 1.0 + rng.normal(0, 1e-2, steps.size)).found
    assert not step_change(steps[:8], np.ones(8)).found  # too few points


def test_a_step_hidden_in_noise_is_not_claimed():
    rng = np.random.default_rng(3)
    steps = np.arange(0, 1001, 10.0)
    assert not step_change(steps, _curve(steps, rng, noise=0.05, step_at=500.0, height=0.01)).found


def test_half_rise_is_interpolated_between_its_bracketing_points():
    x = np.array([0, 100, 200, 300, 400.0])
    hr = half_rise(x, np.array([0.1, 0.12, 0.3, 0.9, 0.85]))
    assert hr.found and (hr.lo, hr.hi) == (200.0, 300.0)
    assert hr.at == pytest.approx(200 + (0.5 - 0.3) / 0.6 * 100)
    assert not half_rise(x, np.array([0.5, 0.4, 0.45, 0.5, 0.3])).found
