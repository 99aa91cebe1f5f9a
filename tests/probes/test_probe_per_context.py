"""Probes fitted from one activation row per distinct context (probe_targets + probe_layers(per_context=True)):
the numbers of the full [R, d] rows, and of a straightforward least-squares fit on every row."""

import numpy as np
import pytest

from probes import (
    CONTEXT_TEST_FRACTION,
    ProbeInputError,
    ProbeRows,
    distinct_prefix_ids,
    probe_layers,
    probe_rows,
    probe_targets,
)
from probes import evaluation as evaluation_mod
from probes import linear as linear_mod

V, T = 3, 5  # every string of length 5 over 3 tokens: 243 strings, 1215 rows, 363 distinct contexts
TOKENS = np.array(np.unravel_index(np.arange(V**T), (V,) * T)).T
IDS = distinct_prefix_ids(TOKENS)  # [N, T]
U = int(IDS.max()) + 1
WIDTHS = {"a": 4, "b": 6, "c": 5}  # three "layers"; concatenated: 15 features
SETTINGS = dict(train_fraction=0.5, n_repeats=2, context_test_fraction=CONTEXT_TEST_FRACTION, seed=4)


def causal_data(seed: int = 0):
    """(per-context features {name: [U, d]} float32, targets [N, T, 3], string probabilities [N]): a causal
    'model' (one vector per prefix) whose targets are a noisy linear image of layer a's features."""
    rng = np.random.default_rng(seed)
    feats = {name: rng.standard_normal((U, d)).astype(np.float32) for name, d in WIDTHS.items()}
    targets = feats["a"][:, :3].astype(np.float64) @ rng.standard_normal((3, 3)) + 0.1 * rng.standard_normal((U, 3))
    return feats, targets[IDS], rng.uniform(0.5, 1.5, len(TOKENS))


def fit(data, activations, **kw):
    return probe_layers(
        activations,
        data.Y,
        data.groups,
        contexts=data.context_ids,
        positions=data.positions,
        sample_weight=data.weights,
        **SETTINGS,
        **kw,
    )


@pytest.mark.parametrize("rows", ["all_strings", "distinct_contexts"])
@pytest.mark.parametrize("weighting", ["uniform", "probability"])
def test_per_context_rows_give_the_full_rows_numbers_bit_for_bit(rows, weighting):
    feats, targets, probs = causal_data()
    full = {
        name: probe_rows(f[IDS], targets, TOKENS, probs, rows=rows, weighting=weighting) for name, f in feats.items()
    }
    lean = probe_targets(targets, TOKENS, probs, rows=rows, weighting=weighting)
    head = full["a"]
    assert isinstance(lean, ProbeRows) and lean.n_rows == head.n_rows == (
        len(TOKENS) * T if rows == "all_strings" else U
    )
    for field in ("Y", "groups", "positions", "context_ids"):
        np.testing.assert_array_equal(getattr(lean, field), getattr(head, field))
    assert (lean.weights is None) == (weighting == "uniform")
    if lean.weights is not None:
        np.testing.assert_array_equal(lean.weights, head.weights)
    a = fit(head, {name: d.X for name, d in full.items()})
    b = fit(lean, feats, per_context=True)
    assert list(a) == list(b) == ["a", "b", "c", "concat"]
    for name in a:
        assert a[name].result == b[name].result, name
        np.testing.assert_array_equal(a[name].predictions, b[name].predictions)
        np.testing.assert_array_equal(a[name].shuffled, b[name].shuffled)


def test_per_context_probe_matches_a_straightforward_fit_on_every_row():
    """In-sample, shuffled and context-held-out numbers of the lean path (layer "b" and the concatenation) against
    least squares with an intercept on the [R, d] rows themselves (np.linalg.lstsq), the splits taken from the
    same seed."""
    feats, targets, _ = causal_data(seed=1)
    data = probe_targets(targets, TOKENS)
    out = fit(data, feats, per_context=True)
    design = evaluation_mod._design(
        data.Y,
        data.n_rows,
        data.groups,
        data.context_ids,
        data.positions,
        None,
        SETTINGS["train_fraction"],
        SETTINGS["n_repeats"],
        SETTINGS["context_test_fraction"],
        SETTINGS["seed"],
    )
    perm = np.random.default_rng(SETTINGS["seed"]).permutation(data.n_rows)  # the control's: the first draw
    rows_of = {
        "b": feats["b"][data.context_ids],
        "concat": np.hstack([feats[n][data.context_ids] for n in WIDTHS]),
    }  # [R, d] built in full

    def lstsq(X, Y):
        A = np.hstack([X.astype(np.float64), np.ones((len(X), 1))])
        return lambda Z: np.hstack([Z.astype(np.float64), np.ones((len(Z), 1))]) @ np.linalg.lstsq(A, Y, rcond=None)[0]

    for name, X in rows_of.items():
        res = out[name].result
        pred = lstsq(X, data.Y)(X)
        np.testing.assert_allclose(out[name].predictions, pred, rtol=0, atol=1e-9)
        assert res.mse == pytest.approx(np.mean(np.square(data.Y - pred)), rel=1e-9)
        assert res.mse_shuffled == pytest.approx(np.mean(np.square(data.Y[perm] - lstsq(X, data.Y[perm])(X))), rel=1e-9)
        heldout = []
        for test_contexts in design.context_splits:
            is_test = np.isin(data.context_ids, test_contexts)  # every row of a held-out context, none else
            heldout.append(np.mean(np.square(data.Y[is_test] - lstsq(X[~is_test], data.Y[~is_test])(X[is_test]))))
        assert res.mse_heldout_contexts == pytest.approx(np.mean(heldout), rel=1e-9)


def test_chunks_far_smaller_than_the_rows_give_the_same_numbers(monkeypatch):
    feats, targets, probs = causal_data(seed=2)
    data = probe_targets(targets, TOKENS, probs, weighting="probability")
    whole = fit(data, feats, per_context=True)
    monkeypatch.setattr(linear_mod, "_chunk_rows", lambda n_features: 7)  # 52 chunks of 363 context rows
    chunked = fit(data, feats, per_context=True)
    for name in whole:
        a, b = whole[name].result.to_dict(), chunked[name].result.to_dict()
        for key, value in a.items():
            if isinstance(value, float):
                assert b[key] == pytest.approx(value, rel=1e-9, abs=1e-15), (name, key)
            else:
                assert b[key] == value, (name, key)
        np.testing.assert_allclose(chunked[name].predictions, whole[name].predictions, rtol=0, atol=1e-10)


def test_per_context_input_is_checked():
    feats, targets, _ = causal_data()
    data = probe_targets(targets, TOKENS)
    with pytest.raises(ProbeInputError, match="per_context=True needs contexts"):
        probe_layers(feats, data.Y, data.groups, per_context=True)
    with pytest.raises(ProbeInputError, match=r"activations\['b'\].*U = 363"):
        fit(data, {**feats, "b": feats["b"][:-1]}, per_context=True)
    with pytest.raises(ProbeInputError, match=r"activations\['c'\]"):
        fit(data, {**feats, "c": np.full((U, 5), np.nan, np.float32)}, per_context=True)
    with pytest.raises(ProbeInputError, match="tokens"):
        probe_targets(targets, TOKENS[:10])
