"""probe_rows and distinct_prefix_ids on a small hand-made token array."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays as np_arrays

from probes import LinearProbe, distinct_prefix_ids, probe_rows

# 4 strings of length 3 over {0, 1}
TOKENS = np.array(
    [
        [0, 1, 1],
        [0, 1, 0],
        [1, 1, 1],
        [0, 0, 1],
    ]
)
# distinct prefixes: len1 {0, 1}; len2 {01, 11, 00}; len3 {011, 010, 111, 001}: 9 in all
PROBS = np.array([0.4, 0.3, 0.2, 0.1])


def arrays(d=2, k=3):
    n, t = TOKENS.shape
    ids = distinct_prefix_ids(TOKENS)
    rng = np.random.default_rng(0)
    table = rng.standard_normal((ids.max() + 1, d)).astype(np.float32)
    acts = table[ids]  # causal: same prefix, same activation
    targets = rng.dirichlet(np.ones(k), size=ids.max() + 1)[ids]
    return acts, targets


def test_distinct_prefix_ids():
    ids = distinct_prefix_ids(TOKENS)
    assert ids.shape == TOKENS.shape
    assert len(np.unique(ids)) == 9
    # same id iff same prefix
    for n in range(4):
        for t in range(3):
            for m in range(4):
                for s in range(3):
                    same = t == s and np.array_equal(TOKENS[n, : t + 1], TOKENS[m, : s + 1])
                    assert (ids[n, t] == ids[m, s]) == same
    # ordered by length, then lexicographically
    np.testing.assert_array_equal(ids[:, 0], [0, 0, 1, 0])
    np.testing.assert_array_equal(ids[:, 1], [3, 3, 4, 2])


def test_all_strings_rows():
    acts, targets = arrays()
    data = probe_rows(acts, targets, TOKENS)
    assert data.n_rows == 12 and data.X.shape == (12, 2) and data.Y.shape == (12, 3)
    assert data.X.dtype == np.float32
    assert data.weights is None
    np.testing.assert_array_equal(data.groups, np.repeat(np.arange(4), 3))
    np.testing.assert_array_equal(data.positions, np.tile(np.arange(3), 4))
    np.testing.assert_array_equal(data.context_ids, distinct_prefix_ids(TOKENS).reshape(-1))
    np.testing.assert_array_equal(data.X[4], acts[1, 1])
    assert np.shares_memory(data.X, acts)  # a view, not a copy


def test_distinct_context_rows():
    acts, targets = arrays()
    data = probe_rows(acts, targets, TOKENS, rows="distinct_contexts")
    assert data.n_rows == 9
    assert sorted(data.context_ids) == list(range(9))
    # first occurrence in (string, position) order: string 0 gives 3, string 1 gives "010",
    # string 2 gives "1", "11", "111", string 3 gives "00", "001"
    np.testing.assert_array_equal(data.groups, [0, 0, 0, 1, 2, 2, 2, 3, 3])
    np.testing.assert_array_equal(data.positions, [0, 1, 2, 2, 0, 1, 2, 1, 2])
    for x, y, g, t in zip(data.X, data.Y, data.groups, data.positions):
        np.testing.assert_array_equal(x, acts[g, t])
        np.testing.assert_array_equal(y, targets[g, t])


def test_probability_weights():
    acts, targets = arrays()
    data = probe_rows(acts, targets, TOKENS, PROBS, weighting="probability")
    np.testing.assert_allclose(data.weights, np.repeat(PROBS, 3) / 3)
    assert data.weights.sum() == pytest.approx(1)
    distinct = probe_rows(acts, targets, TOKENS, PROBS, rows="distinct_contexts", weighting="probability")
    assert distinct.weights.sum() == pytest.approx(1)
    # prefix "0" is in strings 0, 1, 3: P = 0.8; prefix "01" in strings 0, 1: P = 0.7
    w = dict(zip(distinct.context_ids, distinct.weights))
    assert w[0] == pytest.approx(0.8 / 3) and w[3] == pytest.approx(0.7 / 3)
    # both row sets give the same probability-weighted fit
    a = LinearProbe().fit(data.X, data.Y, data.weights)
    b = LinearProbe().fit(distinct.X, distinct.Y, distinct.weights)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(targets=np.zeros((4, 2, 3))), "targets"),
        (dict(tokens=TOKENS[:3]), "tokens"),
        (dict(tokens=TOKENS.astype(float)), "tokens"),
        (dict(activations=np.zeros((4, 3))), "activations"),
        (dict(activations=np.full((4, 3, 2), np.nan)), "activations"),
        (dict(string_probs=np.ones(3), weighting="probability"), "string_probs"),
        (dict(weighting="probability"), "string_probs"),
        (dict(rows="every"), "rows"),
        (dict(weighting="p"), "weighting"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(kwargs, name):
    acts, targets = arrays()
    args = dict(activations=acts, targets=targets, tokens=TOKENS, string_probs=None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        probe_rows(args.pop("activations"), args.pop("targets"), args.pop("tokens"), args.pop("string_probs"), **args)


@settings(max_examples=40, deadline=None)
@given(np_arrays(np.int64, st.tuples(st.integers(1, 8), st.integers(1, 5)), elements=st.integers(0, 2)))
def test_prefix_ids_match_brute_force(tokens):
    ids = distinct_prefix_ids(tokens)
    keys = {}
    for n in range(tokens.shape[0]):
        for t in range(tokens.shape[1]):
            keys.setdefault(tuple(tokens[n, : t + 1]), set()).add(ids[n, t])
    assert all(len(v) == 1 for v in keys.values())
    assert len({next(iter(v)) for v in keys.values()}) == len(keys) == ids.max() + 1
