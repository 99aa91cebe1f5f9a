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
    result, pred = evaluate_probe(X, Y, groups)
    assert pred.shape == Y.shape
    assert result.n_rows == len(X) and result.n_features == 6
    assert result.mse == pytest.approx(0.01, rel=0.1)
    assert result.mse_heldout == pytest.approx(result.mse, rel=0.1)
    assert result.mse_heldout_std < 0.2 * result.mse_heldout
    assert result.r2 > 0.99
    assert result.mse_shuffled == pytest.approx(Y.var(axis=0).mean(), rel=0.05)


def test_shuffled_control_near_target_variance_for_random_features():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4000, 10)).astype(np.float32)
    Y = rng.dirichlet(np.ones(3), size=4000)
    result, _ = evaluate_probe(X, Y, np.arange(4000))
    variance = Y.var(axis=0).mean()
    assert result.mse_shuffled == pytest.approx(variance, rel=0.02)
    assert result.mse_shuffled < variance  # OLS never does worse than the mean
    assert result.mse_heldout > variance  # and held out it overfits a little


def test_splits_are_by_group(monkeypatch):
    X, Y, groups = problem(n_groups=50, per_group=4)
    groups = groups[::-1].copy()
    seen = []
    real = evaluation_mod._fit_predict

    def spy(X, Y, w, rcond, train_rows=None, test_rows=None):
        if train_rows is not None:
            seen.append((train_rows, test_rows))
        return real(X, Y, w, rcond, train_rows, test_rows)

    monkeypatch.setattr(evaluation_mod, "_fit_predict", spy)
    evaluate_probe(X, Y, groups, train_fraction=0.2, n_repeats=3)
    assert len(seen) == 3
    for train, test in seen:
        assert len(train) + len(test) == len(X)
        assert not set(groups[train]) & set(groups[test])
        assert len(set(groups[train])) == 10  # 20% of 50 strings
    assert not np.array_equal(seen[0][0], seen[1][0])


def test_deterministic_given_seed():
    X, Y, groups = problem(seed=2)
    a, pa = evaluate_probe(X, Y, groups, seed=3)
    b, pb = evaluate_probe(X, Y, groups, seed=3)
    c, _ = evaluate_probe(X, Y, groups, seed=4)
    assert a == b
    np.testing.assert_array_equal(pa, pb)
    assert a.mse_heldout != c.mse_heldout
    assert a.mse == c.mse


def test_weights_and_to_dict():
    X, Y, groups = problem(seed=5)
    w = np.random.default_rng(0).uniform(0, 1, len(X))
    result, _ = evaluate_probe(X, Y, groups, sample_weight=w, n_repeats=1)
    assert result.mse_heldout_std == 0.0
    d = result.to_dict()
    assert set(d) == {"mse", "r2", "mse_heldout", "mse_heldout_std", "mse_shuffled", "n_rows", "n_features"}
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
    results, preds = probe_layers(layers, Y, groups, n_repeats=2)
    assert list(results) == ["embed", "block1", "concat"]
    assert results["concat"].n_features == 7
    assert results["concat"].mse < 1e-12 < 1e-3 < results["embed"].mse
    assert preds["concat"].shape == Y.shape
    only, _ = probe_layers(layers, Y, groups, include_concat=False, n_repeats=1)
    assert list(only) == ["embed", "block1"]


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
