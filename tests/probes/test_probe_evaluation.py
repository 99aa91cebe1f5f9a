"""evaluate_probe and probe_layers: held-out by group, shuffled control, determinism."""

import json

import numpy as np
import pytest

from probes import ProbeResult, evaluate_probe, probe_layers
from probes import evaluation as evaluation_mod


def problem(n_groups=300, per_group=5, d=6, k=3, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    X = rng.standard_normal((n, d)).astype(np.float32)
    Y = X @ rng.standard_normal((d, k)) + noise * rng.standard_normal((n, k))
    groups = np.repeat(np.arange(n_groups), per_group)
    return X, Y, groups


def test_well_specified_problem():
    X, Y, groups = problem()
    ev = evaluate_probe(X, Y, groups)
    result, pred = ev.result, ev.predictions
    assert pred.shape == Y.shape
    assert result.n_rows == len(X) and result.n_features == 6
    assert result.mse == pytest.approx(0.01, rel=0.1)
    assert result.mse_heldout == pytest.approx(result.mse, rel=0.1)
    assert result.mse_heldout_std < 0.2 * result.mse_heldout
    assert result.r2 > 0.99
    assert result.mse_shuffled == pytest.approx(Y.var(axis=0).mean(), rel=0.05)
    # every row is its own context here: the context split holds out rows, stratified by nothing
    assert result.mse_heldout_contexts == pytest.approx(result.mse, rel=0.1)
    assert result.r2_heldout_contexts > 0.99
    assert result.heldout_note is None and result.heldout_contexts_note is None


def test_shuffled_control_near_target_variance_for_random_features():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4000, 10)).astype(np.float32)
    Y = rng.dirichlet(np.ones(3), size=4000)
    result = evaluate_probe(X, Y, np.arange(4000)).result
    variance = Y.var(axis=0).mean()
    assert result.mse_shuffled == pytest.approx(variance, rel=0.02)
    assert result.mse_shuffled < variance  # OLS never does worse than the mean
    assert result.mse_heldout > variance  # and held out it overfits a little


def test_string_splits_are_by_group():
    X, Y, groups = problem(n_groups=50, per_group=4)
    groups = groups[::-1].copy()
    design = evaluation_mod._design(Y, len(X), groups, None, None, None, 0.2, 3, 0.2, 0)
    assert len(design.string_splits) == 3
    fits = []
    for train, fit, test_rows, test in design.string_splits:  # rows are their own contexts here
        assert np.array_equal(train, np.flatnonzero(fit.c > 0)) and np.all(test_rows.c > 0)
        assert len(train) + len(test) == len(X)
        assert not set(groups[train]) & set(groups[test])
        assert len(set(groups[train])) == 10  # 20% of 50 strings
        fits.append(train)
    assert not np.array_equal(fits[0], fits[1])


def test_deterministic_given_seed():
    X, Y, groups = problem(seed=2)
    ea, eb = evaluate_probe(X, Y, groups, seed=3), evaluate_probe(X, Y, groups, seed=3)
    a, b, c = ea.result, eb.result, evaluate_probe(X, Y, groups, seed=4).result
    assert a == b
    np.testing.assert_array_equal(ea.predictions, eb.predictions)
    np.testing.assert_array_equal(ea.shuffled, eb.shuffled)
    assert a.mse_heldout != c.mse_heldout
    assert a.mse_heldout_contexts != c.mse_heldout_contexts
    assert a.mse == c.mse


def test_weights_and_to_dict():
    X, Y, groups = problem(seed=5)
    w = np.random.default_rng(0).uniform(0, 1, len(X))
    result = evaluate_probe(X, Y, groups, sample_weight=w, n_repeats=1).result
    assert result.mse_heldout_std == 0.0 and result.mse_heldout_contexts_std == 0.0
    d = result.to_dict()
    assert set(d) == {
        "mse",
        "r2",
        "mse_heldout",
        "mse_heldout_std",
        "heldout_note",
        "mse_heldout_contexts",
        "mse_heldout_contexts_std",
        "r2_heldout_contexts",
        "heldout_contexts_note",
        "mse_shuffled",
        "n_rows",
        "n_features",
        "n_contexts",
    }
    assert isinstance(d["n_rows"], int) and isinstance(d["mse"], float)
    assert json.loads(json.dumps(d)) == d
    assert ProbeResult(**d) == result


def test_probe_layers_with_concat():
    rng = np.random.default_rng(6)
    n = 1200
    Y = rng.dirichlet(np.ones(3), size=n)
    # each layer sees part of the target: the concatenation sees all of it
    layers = {
        "embed": np.hstack([Y[:, :1], rng.standard_normal((n, 2))]).astype(np.float32),
        "block1": np.hstack([Y[:, 1:2], rng.standard_normal((n, 3))]).astype(np.float64),
    }
    groups = np.arange(n) // 4
    fits = []
    out = probe_layers(layers, Y, groups, n_repeats=2, on_fit=lambda: fits.append(1))
    assert list(out) == ["embed", "block1", "concat"]
    assert len(fits) == 3 * (1 + 2 * 2)
    assert out["concat"].result.n_features == 7
    assert out["concat"].result.mse < 1e-12 < 1e-3 < out["embed"].result.mse
    assert out["concat"].predictions.shape == out["concat"].shuffled.shape == Y.shape
    for name, x in layers.items():  # the same splits and shuffle as evaluate_probe alone
        assert out[name].result == evaluate_probe(x, Y, groups, n_repeats=2).result
    only = probe_layers(layers, Y, groups, include_concat=False, n_repeats=1)
    assert list(only) == ["embed", "block1"]
    alone = probe_layers(layers, Y, groups, only_concat=True, n_repeats=2)
    assert list(alone) == ["concat"] and alone["concat"].result == out["concat"].result


@pytest.mark.parametrize(
    "change, name",
    [
        (lambda X, Y, g: (X, Y, g[:-1]), "groups"),
        (lambda X, Y, g: (X, Y[:-1], g), "Y"),
        (lambda X, Y, g: (np.where(X > 2.5, np.nan, X), Y, g), "X"),
        (lambda X, Y, g: (X, Y, np.zeros_like(g)), "groups"),
    ],
)
def test_bad_input(change, name):
    X, Y, groups = problem(n_groups=20)
    with pytest.raises(ValueError, match=name):
        evaluate_probe(*change(X, Y, groups))
    with pytest.raises(ValueError, match="train_fraction"):
        evaluate_probe(X, Y, groups, train_fraction=1.0)
    with pytest.raises(ValueError, match="concat"):
        probe_layers({"concat": X}, Y, groups)
    with pytest.raises(ValueError, match="activations"):
        probe_layers({"a": X, "b": X[:-1]}, Y, groups)
