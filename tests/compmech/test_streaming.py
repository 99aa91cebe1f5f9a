"""Bounded-memory deep enumeration: exact when beliefs repeat, bounded and conservative when they do not."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import hmm_processes as hp
from compmech import block_entropies, mixed_states, myopic_entropies
from compmech.msp import build_msp
from compmech.streaming import iter_levels, stream_entropies


@pytest.mark.parametrize(
    "name, depth", [("mess3", 9), ("rrxor", 12), ("even", 12), ("days_of_week", 4), ("leaky_rrxor", 10)]
)
def test_exact_when_under_the_cap(name, depth):
    proc = hp.get_process(name)
    ms = mixed_states(proc, depth)
    res = stream_entropies(proc, depth)
    assert res.exact
    np.testing.assert_allclose(res.block_entropies, block_entropies(ms), atol=1e-12)
    np.testing.assert_allclose(res.myopic_entropies, myopic_entropies(ms), atol=1e-12)
    assert res.probs.sum() == pytest.approx(1.0)


def test_finite_msp_never_grows_past_its_states():
    for proc in (hp.rrxor(), hp.z1r(), hp.golden_mean(), hp.tom_quantum(1.0, 1.0)):
        n = build_msp(proc).num_states
        res = stream_entropies(proc, 40)
        assert res.exact and res.n_states.max() <= n


def test_mess3_depth_20_in_bounded_memory():
    tracemalloc.start()
    try:
        res = stream_entropies(hp.mess3(), 20, max_states=20_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.depth == 20 and res.n_states.max() <= 20_000
    assert not res.exact and res.resolution[-1] > res.resolution[0]
    assert peak < 40e6  # bytes; 3^20 words would need ~100 GB
    h = res.myopic_entropies
    exact = myopic_entropies(mixed_states(hp.mess3(), 11))
    np.testing.assert_allclose(h[:10], exact[:10], atol=1e-12)  # before any coarse merge
    # merging is conservative: h is an upper bound, and close to the converged value
    assert np.all(h[10:12] >= exact[10:12] - 1e-12)
    assert abs(h[-1] - exact[-1]) < 1e-5
    np.testing.assert_allclose(np.diff(res.block_entropies), h[:-1], atol=1e-12)


def test_ghmm_streaming_and_levels():
    res = stream_entropies(hp.fanizza(), 15, keep_levels=True)
    assert len(res.levels) == 16
    for b, p in res.levels:
        assert p.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(b @ hp.fanizza().normalizer, 1.0)
    assert np.all(np.diff(res.myopic_entropies) <= 1e-12)  # h(L) never increases


def test_iter_levels_and_errors():
    it = iter_levels(hp.golden_mean())
    L, b, p, res = next(it)
    assert L == 0 and b.shape == (1, 2)
    L, b, p, res = next(it)
    assert L == 1 and b.shape[0] == 2
    with pytest.raises(hp.ProcessError):
        stream_entropies(hp.even(), -1)
    with pytest.raises(hp.ProcessError):
        stream_entropies(hp.even(), 3, max_states=0)


@pytest.mark.parametrize(
    "name, depth", [("mess3", 11), ("rrxor", 14), ("sns", 14), ("post_quantum", 9), ("leaky_rrxor", 12)]
)
def test_exact_myopic_entropies_match_brute_force(name, depth, monkeypatch):
    """The merged-then-depth-first enumeration gives every h(L) of brute-force enumeration, to rounding."""
    import compmech.streaming as streaming
    from compmech.streaming import exact_myopic_entropies
    from hmm_processes.generalized import all_words

    proc = hp.get_process(name)
    monkeypatch.setattr(streaming, "MERGE_SEARCH_LIMIT", 64)  # reach the depth-first phase early
    monkeypatch.setattr(streaming, "DFS_BLOCK", 100)  # and split it into many blocks
    res = exact_myopic_entropies(proc, depth)
    if isinstance(proc, hp.GeneralizedHMM):
        H = [0.0]
        for L in range(1, depth + 2):
            P = np.clip(proc.word_probabilities(all_words(proc.vocab_size, L)), 0, None)
            H.append(float(-(P[P > 0] * np.log2(P[P > 0])).sum()))
        ref = np.diff(H)
    else:
        ref = myopic_entropies(mixed_states(proc, depth))
    np.testing.assert_allclose(res.myopic_entropies, ref, atol=1e-12)
    assert res.depth == depth


def test_exact_myopic_entropies_respect_the_word_budget():
    from compmech.streaming import exact_myopic_entropies

    res = exact_myopic_entropies(hp.mess3(), 30, max_words=3**9)
    assert res.depth < 30 and res.n_words <= 3**9
    np.testing.assert_allclose(res.myopic_entropies, myopic_entropies(mixed_states(hp.mess3(), res.depth)), atol=1e-12)
