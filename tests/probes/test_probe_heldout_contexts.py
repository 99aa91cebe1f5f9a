"""The context-disjoint held-out error, and rows aggregated by context (the fast path) giving the row-level numbers."""

import numpy as np
import pytest

from probes import LinearProbe, ProbeInputError, distinct_prefix_ids, evaluate_probe, probe_rows
from probes import evaluation as evaluation_mod

V, T = 3, 6  # every string of length 6 over 3 tokens: 729 strings, 4374 rows, 1092 distinct contexts
TOKENS = np.array(np.unravel_index(np.arange(V**T), (V,) * T)).T
IDS = distinct_prefix_ids(TOKENS)  # [N, T]
N_CONTEXTS = int(IDS.max()) + 1


def prefix_data(d: int, signal: bool, seed: int = 0, weighting: str = "uniform"):
    """Probe rows of a causal 'model': one random feature vector per context, repeated on its rows.

    With ``signal`` the targets are a linear image of the features plus a little noise per context
    (a probe can generalise); without, they are random per context (a probe can only memorise).
    """
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((N_CONTEXTS, d)).astype(np.float32)  # [U, d]
    if signal:
        targets = feats[:, :3].astype(np.float64) @ rng.standard_normal((3, 3)) + 0.05 * rng.standard_normal(
            (N_CONTEXTS, 3)
        )
    else:
        targets = rng.dirichlet(np.ones(3), size=N_CONTEXTS)  # [U, 3]
    probs = rng.uniform(0.5, 1.5, len(TOKENS))
    data = probe_rows(feats[IDS], targets[IDS], TOKENS, probs, weighting=weighting)
    return data


def evaluate(data, **kw):
    return evaluate_probe(
        data.X,
        data.Y,
        data.groups,
        contexts=data.context_ids,
        positions=data.positions,
        sample_weight=data.weights,
        **kw,
    )


def test_generalising_probe_passes_the_heldout_contexts_check():
    data = prefix_data(d=8, signal=True)
    res = evaluate(data, n_repeats=3).result
    assert res.n_contexts == N_CONTEXTS and res.n_rows == 4374
    assert res.mse == pytest.approx(0.05**2, rel=0.15)
    assert res.mse_heldout_contexts == pytest.approx(res.mse, rel=0.25)
    assert res.r2_heldout_contexts > 0.99
    assert res.heldout_contexts_note is None and res.heldout_note is None


def test_memorising_probe_fails_the_heldout_contexts_check():
    data = prefix_data(d=300, signal=False)  # 300 random features, 1092 contexts, targets unrelated
    res = evaluate(data, n_repeats=2).result
    variance = data.Y.var(axis=0).mean()
    assert res.mse < 0.5 * variance  # in sample it looks like a probe
    assert res.heldout_contexts_note is None  # enough fit contexts for a number: it is just bad
    assert res.mse_heldout_contexts > variance  # on unseen contexts it is worse than predicting the mean
    assert res.r2_heldout_contexts < 0


def test_papers_string_split_tests_mostly_seen_contexts_and_the_context_split_none():
    data = prefix_data(d=4, signal=True)
    design = evaluation_mod._design(
        data.Y, data.n_rows, data.groups, data.context_ids, data.positions, None, 0.2, 2, 0.2, 0
    )
    for _, fit, test_rows, test_contexts in design.string_splits:
        seen = fit.c[test_contexts] > 0  # the test rows' context also has fit rows
        assert np.sum(test_rows.c[seen]) / np.sum(test_rows.c) > 0.6  # ~73% here: every short prefix is shared
        assert np.sum(test_rows.c) == pytest.approx(np.sum(design.all_rows.c) - np.sum(fit.c))


def test_more_features_than_contexts_withholds_the_heldout_numbers():
    data = prefix_data(d=1200, signal=False)  # more parameters than there are distinct contexts
    res = evaluate(data, n_repeats=1).result
    assert 0 <= res.mse < 1e-6  # interpolated (an error is a sum of squares: never below 0)
    for value in (
        res.mse_heldout_contexts,
        res.mse_heldout_contexts_std,
        res.r2_heldout_contexts,
        res.mse_heldout,
        res.mse_heldout_std,
    ):
        assert value is None
    assert res.heldout_contexts_note.startswith("underdetermined: ")
    assert "< 1201 parameters (1200 features + intercept)" in res.heldout_contexts_note
    assert res.heldout_note.startswith("underdetermined: ")
    assert res.to_dict()["mse_heldout_contexts"] is None


@pytest.mark.parametrize("weighting", ["uniform", "probability"])
def test_aggregating_rows_by_context_gives_the_row_level_numbers(weighting):
    data = prefix_data(d=12, signal=True, seed=1, weighting=weighting)
    fast = evaluate(data, n_repeats=2, seed=5)
    slow = evaluate_probe(data.X, data.Y, data.groups, sample_weight=data.weights, n_repeats=2, seed=5)
    assert fast.result.n_contexts == N_CONTEXTS and slow.result.n_contexts == data.n_rows
    for field in ("mse", "r2", "mse_heldout", "mse_heldout_std", "mse_shuffled"):
        assert getattr(fast.result, field) == pytest.approx(getattr(slow.result, field), rel=1e-9, abs=1e-15), field
    np.testing.assert_allclose(fast.predictions, slow.predictions, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fast.shuffled, slow.shuffled, rtol=0, atol=1e-10)


def test_shuffled_predictions_are_the_controls_fit():
    data = prefix_data(d=10, signal=True, seed=2)
    ev = evaluate(data, n_repeats=1, seed=7)
    perm = np.random.default_rng(7).permutation(data.n_rows)  # the control's permutation: the first draw
    refit = LinearProbe().fit(data.X, data.Y[perm]).predict(data.X)
    np.testing.assert_allclose(ev.shuffled, refit, rtol=0, atol=1e-10)
    assert ev.result.mse_shuffled == pytest.approx(np.mean(np.square(data.Y[perm] - refit)), rel=1e-9)


def test_context_splits_are_disjoint_and_stratified_by_position():
    data = prefix_data(d=4, signal=True)
    design = evaluation_mod._design(
        data.Y, data.n_rows, data.groups, data.context_ids, data.positions, None, 0.2, 3, 0.2, 0
    )
    context_position = data.positions[design.first]  # [U]
    seen = []
    for test in design.context_splits:
        is_test_row = np.isin(design.inverse, test)
        assert not set(data.context_ids[is_test_row]) & set(data.context_ids[~is_test_row])
        # a context at position t is on 3^(T-1-t) rows
        assert is_test_row.sum() == sum(int(0.2 * V ** (t + 1)) * V ** (T - 1 - t) for t in range(T))
        for t in range(T):
            n_t = V ** (t + 1)
            assert np.sum(context_position[test] == t) == int(0.2 * n_t)  # none of the 3 one-token contexts
        seen.append(test)
    assert not np.array_equal(seen[0], seen[1])


def test_rows_of_one_context_must_agree():
    data = prefix_data(d=4, signal=True)
    X = data.X.copy()
    row = int(np.flatnonzero(data.positions == 0)[1])  # a length-1 prefix, shared by 243 rows
    X[row, 0] += 1e-3
    with pytest.raises(ProbeInputError, match="same context"):
        evaluate_probe(X, data.Y, data.groups, contexts=data.context_ids, positions=data.positions)
    wrong = data.positions.copy()
    wrong[row] += 1
    with pytest.raises(ProbeInputError, match="positions"):
        evaluate_probe(data.X, data.Y, data.groups, contexts=data.context_ids, positions=wrong)
    with pytest.raises(ProbeInputError, match="context_test_fraction"):
        evaluate(data, context_test_fraction=0.0)
    with pytest.raises(ProbeInputError, match="no position has 5 or more distinct contexts"):
        few = data.positions < 1  # only the 3 one-token contexts
        evaluate_probe(
            data.X[few], data.Y[few], data.groups[few], contexts=data.context_ids[few], positions=data.positions[few]
        )
