"""The opt-in held-out scores (`probes.evaluation.HeldoutScores`): the shuffled control held out as the probe is, and
the held-out contexts halved into a validation half (to choose a probe by) and a test half (to report)."""

import numpy as np
import pytest

from probes import distinct_prefix_ids, evaluate_probe, probe_layers, probe_rows
from probes.evaluation import HeldoutScores

V, T = 3, 6  # every string of length 6 over 3 tokens: 729 strings, 4374 rows, 1092 distinct contexts
TOKENS = np.array(np.unravel_index(np.arange(V**T), (V,) * T)).T
IDS = distinct_prefix_ids(TOKENS)  # [N, T]
N_CONTEXTS = int(IDS.max()) + 1


def prefix_data(d: int, seed: int = 0):
    """All-strings probe rows of a causal 'model' (one feature vector per context) with targets linear in the
    features plus noise, weighted by made-up string probabilities."""
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((N_CONTEXTS, d)).astype(np.float32)  # [U, d]
    targets = feats[:, :3].astype(np.float64) @ rng.standard_normal((3, 3)) + 0.3 * rng.standard_normal((N_CONTEXTS, 3))
    return probe_rows(feats[IDS], targets[IDS], TOKENS, rng.uniform(0.5, 1.5, len(TOKENS)), weighting="probability")


def evaluate(data, **kw):
    return evaluate_probe(
        data.X,
        data.Y,
        data.groups,
        contexts=data.context_ids,
        positions=data.positions,
        sample_weight=data.weights,
        n_repeats=3,
        seed=7,
        **kw,
    )


def test_asking_for_them_changes_no_other_number():
    data = prefix_data(d=8)
    plain, scored = evaluate(data), evaluate(data, heldout_scores=True)
    assert plain.heldout is None and isinstance(scored.heldout, HeldoutScores)
    assert scored.result == plain.result
    assert np.array_equal(scored.predictions, plain.predictions) and np.array_equal(scored.shuffled, plain.shuffled)
    acts = {"a": data.X, "b": data.X[:, ::-1].copy()}
    kw = dict(contexts=data.context_ids, positions=data.positions, sample_weight=data.weights, n_repeats=2, seed=3)
    before = probe_layers(acts, data.Y, data.groups, **kw)
    after = probe_layers(acts, data.Y, data.groups, heldout_scores=True, **kw)
    assert [e.result for e in before.values()] == [e.result for e in after.values()]
    assert all(e.heldout is not None for e in after.values())


def test_the_heldout_shuffled_control_is_the_probe_of_the_permuted_targets_held_out():
    """The ICL study's construction (compmech.studies.icl.analysis._probe): the targets' rows permuted by the seed's
    first draw, probed with the same splits; its held-out numbers are the opt-in control's."""
    data = prefix_data(d=8)
    got = evaluate(data, heldout_scores=True).heldout
    perm = np.random.default_rng(7).permutation(data.n_rows)
    ref = evaluate_probe(
        data.X,
        data.Y[perm],
        data.groups,
        contexts=data.context_ids,
        positions=data.positions,
        sample_weight=data.weights,
        n_repeats=3,
        seed=7,
    ).result
    # the same float64 sums, one BLAS product wider: they agree to rounding (relative ~ U * eps ~ 1e-13)
    assert got.mse_shuffled_heldout_contexts == pytest.approx(ref.mse_heldout_contexts, rel=1e-9)
    assert got.r2_shuffled_heldout_contexts == pytest.approx(ref.r2_heldout_contexts, rel=1e-9, abs=1e-12)


def test_an_in_sample_shuffled_control_is_lowered_by_what_a_probe_memorises():
    """120 contexts, 60 random features, targets they cannot predict: OLS with p = 61 parameters leaves an in-sample
    residual of about (n - p) / n = 0.49 of the targets' variance, while held out (fitted on 96 contexts) its error
    is about 1 + p / (96 - p - 1) = 2.8 times the variance. The probe's held-out error is then ~5 times the
    in-sample control (it looks far worse than chance) but ~1 times the held-out one (chance, which it is)."""
    rng = np.random.default_rng(0)
    n, d = 120, 60
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, 3))
    ev = evaluate_probe(X, Y, np.arange(n), n_repeats=4, seed=1, heldout_scores=True)
    variance = float(np.mean(np.var(Y, axis=0)))
    assert ev.result.mse_shuffled < 0.7 * variance
    assert ev.heldout.mse_shuffled_heldout_contexts > 1.5 * variance
    assert ev.result.mse_heldout_contexts / ev.result.mse_shuffled > 3
    assert ev.result.mse_heldout_contexts / ev.heldout.mse_shuffled_heldout_contexts == pytest.approx(1, abs=0.5)


def test_the_halves_split_the_heldout_contexts_at_every_position():
    """One row per context, uniform weights: each repeat holds out floor(0.2 n_p) of a position's n_p contexts and
    gives floor(m / 2) of those m to the validation half, so the held-out MSE is the two halves' row-weighted mean
    (the same sizes in every repeat), for the probe and for the shuffled control alike."""
    rng = np.random.default_rng(2)
    sizes = [40, 75, 200, 333]  # contexts per position
    positions = np.repeat(np.arange(len(sizes)), sizes)
    n = positions.size
    X = rng.standard_normal((n, 5))
    Y = X[:, :2] + 0.5 * rng.standard_normal((n, 2))
    ev = evaluate_probe(X, Y, np.arange(n), positions=positions, n_repeats=3, seed=4, heldout_scores=True)
    held = [int(np.floor(0.2 * s)) for s in sizes]
    n_val, n_test = sum(m // 2 for m in held), sum(m - m // 2 for m in held)
    h = ev.heldout
    assert h.note is None
    # float64 means of the same squared errors grouped two ways: equal to rounding
    assert (n_val * h.mse_validation_contexts + n_test * h.mse_test_contexts) / (n_val + n_test) == pytest.approx(
        ev.result.mse_heldout_contexts, rel=1e-12
    )
    assert (n_val * h.mse_shuffled_validation_contexts + n_test * h.mse_shuffled_test_contexts) / (
        n_val + n_test
    ) == pytest.approx(h.mse_shuffled_heldout_contexts, rel=1e-12)
    assert h.mse_test_contexts_std >= 0 and 0 < h.r2_test_contexts < 1


def test_no_validation_half_where_no_position_holds_out_two_contexts():
    rng = np.random.default_rng(3)
    positions = np.repeat(np.arange(40), 6)  # floor(0.2 * 6) = 1 held-out context per position
    X = rng.standard_normal((positions.size, 2))
    Y = X + 0.1 * rng.standard_normal(X.shape)
    h = evaluate_probe(
        X, Y, np.arange(positions.size), positions=positions, n_repeats=2, seed=0, heldout_scores=True
    ).heldout
    assert h.mse_validation_contexts is None and h.mse_shuffled_validation_contexts is None
    assert h.mse_test_contexts is not None and "no validation half" in h.note


def test_every_number_is_withheld_with_the_heldout_error():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((30, 40)), rng.standard_normal((30, 2))  # 24 fit contexts < 41 parameters
    ev = evaluate_probe(X, Y, np.arange(30), n_repeats=1, heldout_scores=True)
    assert ev.result.mse_heldout_contexts is None
    assert all(v is None for k, v in ev.heldout.to_dict().items() if k != "note")
    assert ev.heldout.note == ev.result.heldout_contexts_note
