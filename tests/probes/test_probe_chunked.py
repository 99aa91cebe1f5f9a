"""ChunkedProbe: the chunk-accumulated probe agrees with the exact one, holds out by sequence and by context, and its
memory stays bounded."""

import gc
import tracemalloc

import numpy as np
import pytest

from probes import LinearProbe, ProbeInputError, distinct_prefix_ids, evaluate_probe, mse, r2
from probes.chunked import ChunkedProbe, hash_folds, prefix_hashes


def regression(n=10_000, d=8, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    Y = np.tanh(X[:, :k] @ rng.standard_normal((k, k))) + 0.1 * rng.standard_normal((n, k))
    return X, Y, np.repeat(np.arange(n // 10), 10)  # 10 rows per sequence


def add_in_chunks(probe, layers, Y, seq, ctx, size, **kw):
    for a in range(0, Y.shape[0], size):
        probe.add(
            {name: X[a : a + size] for name, X in layers.items()},
            Y[a : a + size],
            seq[a : a + size],
            ctx[a : a + size],
            **{key: v[a : a + size] for key, v in kw.items()},
        )


def test_in_sample_fit_equals_the_exact_probe_with_chunks_far_below_the_rows():
    X, Y, seq = regression()
    probe = ChunkedProbe({"a": 5, "b": 3}, 3)
    add_in_chunks(probe, {"a": X[:, :5], "b": X[:, 5:]}, Y, seq, np.arange(len(X)), 100)  # 100 chunks
    res = probe.results()
    assert list(res) == ["a", "b", "concat"]
    for name, cols in (("a", slice(0, 5)), ("b", slice(5, 8)), ("concat", slice(0, 8))):
        pred = LinearProbe().fit(X[:, cols], Y).predict(X[:, cols])
        assert res[name].mse == pytest.approx(mse(Y, pred), rel=1e-10, abs=1e-12)
        assert res[name].r2 == pytest.approx(r2(Y, pred), rel=1e-10)
        assert res[name].n_rows == 10_000 and res[name].n_features == cols.stop - cols.start
    exact = evaluate_probe(X, Y, seq).result
    ours = res["concat"]
    # held out: K-fold here, repeated random splits there; both estimate the same out-of-sample error
    assert ours.mse_heldout == pytest.approx(exact.mse_heldout, rel=0.03)
    assert ours.mse_heldout > ours.mse and ours.mse_heldout_contexts > ours.mse
    assert ours.mse_shuffled == pytest.approx(exact.mse_shuffled, rel=0.02)
    assert ours.mse_shuffled == pytest.approx(Y.var(axis=0).mean(), rel=0.02)


def test_kept_rows_get_the_exact_probe_predictions():
    X, Y, seq = regression(n=3000)
    probe = ChunkedProbe({"x": 8}, 3, include_concat=False)
    add_in_chunks(probe, {"x": X}, Y, seq, np.arange(len(X)), 250)
    kept = probe.evaluations({"x": X[:50]})["x"]
    assert np.allclose(kept.predictions, LinearProbe().fit(X, Y).predict(X[:50]), atol=1e-10)
    assert kept.shuffled.shape == (50, 3) and kept.result == probe.results()["x"]


def contexts_problem(n_seq=1500, T=6, seed=3):
    """Rows from random ternary sequences: features and a nonlinear target are functions of the prefix."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, 3, (n_seq, T))
    ids = distinct_prefix_ids(tokens)  # [N, T]
    n_ctx = int(ids.max()) + 1
    emb = rng.standard_normal((n_ctx, 6)).astype(np.float32)
    target = np.tanh(emb @ rng.standard_normal((6, 3)) / 2) + 0.3 * np.sin(emb[:, :3] * emb[:, 3:])
    flat = ids.reshape(-1)
    positions = np.tile(np.arange(T), n_seq)
    return emb[flat], target[flat], np.repeat(np.arange(n_seq), T), flat, positions, tokens


def test_context_disjoint_heldout_agrees_with_the_exact_evaluation_where_contexts_repeat():
    X, Y, seq, ctx, positions, tokens = contexts_problem()
    hold = positions >= 1  # position 0 has 3 < 5 contexts: never held out (the exact regime's rule)
    probe = ChunkedProbe({"x": 6}, 3, include_concat=False, seed=1)
    add_in_chunks(probe, {"x": X}, Y, seq, prefix_hashes(tokens).reshape(-1), 600, holdout=hold)
    ours = probe.results()["x"]
    exact = evaluate_probe(X, Y, seq, contexts=ctx, positions=positions, n_repeats=5).result
    assert ours.n_contexts == exact.n_contexts == int(ctx.max()) + 1
    assert ours.mse == pytest.approx(exact.mse, rel=1e-10)
    # context-disjoint error is clearly above in-sample (unseen contexts), and the two estimates agree
    assert ours.mse_heldout_contexts > 1.02 * ours.mse
    tol = 3 * (exact.mse_heldout_contexts_std + ours.mse_heldout_contexts_std) + 0.05 * exact.mse_heldout_contexts
    assert abs(ours.mse_heldout_contexts - exact.mse_heldout_contexts) < tol
    assert abs(ours.r2_heldout_contexts - exact.r2_heldout_contexts) < 0.05


def test_memorising_features_fail_the_context_split_but_not_the_sequence_split():
    """One-hot context features (59 + intercept = 60 parameters for 60 contexts) memorise the contexts."""
    rng = np.random.default_rng(0)
    n_ctx, per = 60, 40
    ctx = np.repeat(np.arange(n_ctx), per)
    rng.shuffle(ctx)
    X = np.eye(n_ctx, dtype=np.float32)[ctx][:, 1:]
    Y = rng.dirichlet(np.ones(3), n_ctx)[ctx]
    probe = ChunkedProbe({"onehot": n_ctx - 1}, 3, include_concat=False)
    add_in_chunks(probe, {"onehot": X}, Y, np.arange(len(ctx)), ctx, 128)
    res = probe.results()["onehot"]
    assert res.mse < 1e-12 and res.mse_heldout < 1e-10
    assert res.heldout_contexts_note is not None and res.mse_heldout_contexts is None  # ~48 fit contexts < 60 params


def test_a_sequence_and_a_context_each_land_in_one_fold():
    ids = np.array([5, 17, 5, 2**40, 17], np.int64)
    folds = hash_folds(ids, 5, seed=2)
    assert folds[0] == folds[2] and folds[1] == folds[4] and folds.min() >= 0 and folds.max() < 5
    spread = np.bincount(hash_folds(np.arange(100_000), 5), minlength=5)
    assert spread.min() > 19_000  # about 20,000 each
    tokens = np.array([[0, 1, 2], [0, 1, 0], [1, 1, 2]])
    h = prefix_hashes(tokens)
    assert h[0, 1] == h[1, 1] and h[0, 0] == h[1, 0] and h[0, 2] != h[1, 2] and h[0, 0] != h[2, 0]
    assert h[0, 1] != h[2, 1]


def test_same_rows_same_seed_same_numbers_and_another_seed_other_folds():
    X, Y, seq = regression(n=2000)

    def run(seed):
        probe = ChunkedProbe({"x": 8}, 3, seed=seed, include_concat=False)
        add_in_chunks(probe, {"x": X}, Y, seq, np.arange(len(X)), 300)
        return probe.results()["x"]

    assert run(0) == run(0)
    assert run(1).mse_heldout != run(0).mse_heldout and run(1).mse == pytest.approx(run(0).mse, rel=1e-12)


def test_memory_does_not_grow_with_the_rows():
    d, k, chunk = 32, 3, 500
    rng = np.random.default_rng(0)
    W = rng.standard_normal((d, k))
    probe = ChunkedProbe({"x": d}, k, include_concat=False)

    def feed(n_chunks):
        for c in range(n_chunks):
            X = rng.standard_normal((chunk, d)).astype(np.float32)
            ids = rng.integers(0, 1000, chunk)  # 1000 distinct contexts, repeating
            probe.add({"x": X}, X @ W, np.arange(c * chunk, (c + 1) * chunk), ids)

    feed(2)
    gc.collect()  # garbage left by earlier tests is not this probe's memory
    tracemalloc.start()
    feed(40)  # 20,000 rows: past the first merge of the pending distinct ids (ChunkedProbe merges every 2^14)
    small = probe.state_nbytes()
    tracemalloc.reset_peak()
    feed(60)  # 30,000 rows, with a merge of the pending ids (their temporaries are the peak)
    _, peak_before = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    feed(160)  # 80,000 rows: 10.2 MB of float32 activations passed in
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert probe.n_rows == 131_000
    assert probe.state_nbytes() == small  # O(K² d²) sums + the 1000 distinct ids: no per-row growth
    assert small < 2 * 30 * (d * d + d * 2 * k + d) * 8 + 1000 * 20
    assert peak < 1.5 * peak_before  # 2.7x the rows, the same working memory (a few chunks' worth)
    assert peak < 0.25 * 80_000 * d * 4  # never the rows
    assert probe.results()["x"].mse < 1e-8


def test_bad_input_names_the_argument():
    probe = ChunkedProbe({"x": 4}, 2)
    X, Y = np.zeros((5, 4), np.float32), np.zeros((5, 2))
    with pytest.raises(ProbeInputError, match="layers"):
        probe.add({"y": X}, Y, np.arange(5), np.arange(5))
    with pytest.raises(ProbeInputError, match="Y has shape"):
        probe.add({"x": X}, np.zeros((5, 3)), np.arange(5), np.arange(5))
    with pytest.raises(ProbeInputError, match="context_ids"):
        probe.add({"x": X}, Y, np.arange(5), np.zeros(5))
    with pytest.raises(ProbeInputError, match="features"):
        probe.add({"x": np.zeros((5, 3), np.float32)}, Y, np.arange(5), np.arange(5))
    with pytest.raises(ProbeInputError, match="no rows"):
        probe.results()
    with pytest.raises(ProbeInputError, match="n_folds"):
        ChunkedProbe({"x": 4}, 2, n_folds=1)
