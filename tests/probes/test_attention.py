"""probes.attention: mean patterns, attention against distance, and the exponential fit on within-query log-ratios."""

import numpy as np
import pytest

from probes import ProbeInputError
from probes.attention import by_distance, fit_decay, geometric_pattern, mean_pattern


@pytest.mark.parametrize("rate", [0.85, 0.55, 0.3])
def test_fit_recovers_a_planted_rate_from_a_noisy_softmax_pattern(rate):
    (fit,) = fit_decay(geometric_pattern([rate], 10, noise=0.05, seed=1))
    assert fit.fitted_lambda == pytest.approx(rate, abs=0.01)
    assert fit.r2 > 0.95 and fit.clean(0.9, 0.95)
    assert abs(fit.parity_offset) < 0.05


def test_the_rates_standard_error_covers_the_planted_rate_as_often_as_it_says():
    """Independent log-normal noise on each weight: the fixed-effects regression's assumptions hold, so the planted
    rate lies within 2 standard errors (of the log slope) in ~95.4% of draws; 200 draws give a binomial sd of 1.5%,
    so [0.90, 0.99] is a 3.5-sd band."""
    hits = []
    for seed in range(200):
        (fit,) = fit_decay(geometric_pattern([0.6], 8, noise=0.05, seed=seed))
        z = (np.log(fit.fitted_lambda) - np.log(0.6)) / (fit.rate_se / fit.fitted_lambda)
        hits.append(abs(z) < 2)
    assert 0.90 <= np.mean(hits) <= 0.99
    (exact,) = fit_decay(geometric_pattern([0.6], 8))
    assert exact.rate_se < 1e-9 and exact.parity_rate_se < 1e-9
    (few,) = fit_decay(geometric_pattern([0.6], 3))  # one query with two keys: no degree of freedom left
    assert few.rate_se is None and few.fitted_lambda == pytest.approx(0.6)


def test_fit_is_not_fooled_by_the_softmax_normaliser():
    """Raw rows a_t,d = rate^d / Z_t: a pooled regression without per-query intercepts is biased, ours is exact."""
    P = geometric_pattern([0.9], 8)
    (fit,) = fit_decay(P, min_distance=0)
    assert fit.fitted_lambda == pytest.approx(0.9, abs=1e-9) and fit.r2 == pytest.approx(1.0)
    rows = [(t - s, np.log(P[0, t, s])) for t in range(8) for s in range(t + 1)]
    d, y = np.array(rows).T
    assert abs(np.exp(np.polyfit(d, y, 1)[0]) - 0.9) > 0.01  # the naive fit is off


def test_parity_fit_reads_a_head_on_odd_distances():
    (fit,) = fit_decay(geometric_pattern([0.4], 10, parity=("odd",)))
    assert fit.r2 < 0.5  # no single exponential
    assert fit.parity_rate == pytest.approx(0.4, abs=1e-6) and fit.parity_r2 == pytest.approx(1.0)
    assert fit.parity_offset > 5  # odd distances hold the weight
    assert fit.clean(0.9, 0.95)


def test_a_flat_pattern_is_no_decay_head():
    flat = np.tril(np.ones((6, 6)))
    flat = (flat / flat.sum(1, keepdims=True))[None]
    (fit,) = fit_decay(flat)
    assert fit.fitted_lambda == pytest.approx(1.0) and not fit.clean(0.9, 0.95)


def test_mean_pattern_weights_contexts_and_by_distance_reindexes():
    P = np.stack([geometric_pattern([0.5, 0.2], 4), geometric_pattern([0.9, 0.2], 4)])  # [2, 2, 4, 4]
    st = mean_pattern(P, [3.0, 1.0])
    assert st.mean == pytest.approx(0.75 * P[0] + 0.25 * P[1])
    assert st.std[1] == pytest.approx(np.zeros((4, 4)), abs=1e-12)  # head 1 is the same in both
    assert st.std[0, 3, 0] > 0 and st.n_contexts == 2
    D = by_distance(st.mean)
    assert D[0, 3, 0] == st.mean[0, 3, 3] and D[0, 3, 3] == st.mean[0, 3, 0] and np.isnan(D[0, 1, 2])


def test_bad_patterns_are_rejected_with_the_argument_named():
    with pytest.raises(ProbeInputError, match="patterns"):
        mean_pattern(np.ones((2, 3, 4)))
    with pytest.raises(ProbeInputError, match="min_distance"):
        fit_decay(geometric_pattern([0.5], 4), min_distance=-1)


def test_rate_groups_split_where_the_gap_exceeds_the_tolerance():
    from probes.attention import rate_groups

    assert rate_groups([0.35, 0.42, 0.3, 0.7]) == [[0.3, 0.35, 0.42], [0.7]]
    assert rate_groups([]) == [] and len(rate_groups([0.1, 0.5, 0.9])) == 3
