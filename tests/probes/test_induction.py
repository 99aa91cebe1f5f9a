"""probes.induction: induction scores on planted attention patterns."""

import numpy as np
import pytest

from probes import ProbeInputError
from probes.induction import induction_scores, induction_targets


def _planted(tokens, mode):
    """Head 0 attends only to the induction targets (spread evenly), head 1 only to the previous position,
    head 2 uniformly; queries without a target attend to themselves."""
    N, T = tokens.shape
    targets = induction_targets(tokens, mode)
    A = np.zeros((N, 3, T, T))
    for n in range(N):
        for i in range(T):
            t = np.flatnonzero(targets[n, i])
            if t.size:
                A[n, 0, i, t] = 1.0 / t.size
            else:
                A[n, 0, i, i] = 1.0
            A[n, 1, i, max(i - 1, 0)] = 1.0
            A[n, 2, i, : i + 1] = 1.0 / (i + 1)
    return A


def test_the_targets_of_a_hand_made_sequence():
    tokens = np.array([[0, 1, 2, 0, 1, 0]])
    last = induction_targets(tokens, "last")[0]
    # query 3 (token 0): earlier 0 at j = 0 -> key 1; query 4 (token 1): j = 1 -> key 2;
    # query 5 (token 0): most recent earlier 0 with j + 1 < 5 is j = 3 -> key 4
    assert {(i, k) for i, k in zip(*np.nonzero(last))} == {(3, 1), (4, 2), (5, 4)}
    every = induction_targets(tokens, "all")[0]
    assert {(i, k) for i, k in zip(*np.nonzero(every))} == {(3, 1), (4, 2), (5, 1), (5, 4)}


@pytest.mark.parametrize("mode", ["last", "all"])
def test_a_planted_induction_head_scores_one_and_the_others_do_not(mode):
    tokens = np.random.default_rng(0).integers(0, 3, size=(40, 16))
    s = induction_scores(_planted(tokens, mode), tokens, mode=mode)
    assert s.score[0] == pytest.approx(1.0)
    assert s.score[2] == pytest.approx(s.baseline[2])  # uniform attention scores its baseline
    assert s.score[1] < 0.6 * s.score[0] and s.baseline[0] < 0.5
    assert s.n_queries > 0 and s.to_json()["mode"] == mode


def test_a_start_token_never_counts_and_bad_shapes_are_named():
    assert induction_targets(np.array([[3, 3, 3, 3]]), "all", ignore=3).sum() == 0
    with pytest.raises(ProbeInputError, match=r"\[N, H, T, T\]"):
        induction_scores(np.zeros((2, 3, 4)), np.zeros((2, 4), int))
    with pytest.raises(ProbeInputError, match="mode"):
        induction_targets(np.zeros((1, 3), int), "first")
