"""The finite MSP as a graph (ids on nodes, probabilities on arrows, a legend) and belief scatters."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from figures.msp_graph import layered_layout, plot_beliefs, plot_msp_graph, recurrent_cycle_order

# The golden-mean MSP at p = 1/2: 0 = prior (2/3, 1/3), 1 = A, 2 = B; tokens 0 and 1
GOLDEN = dict(
    beliefs=np.array([[2 / 3, 1 / 3], [1.0, 0.0], [0.0, 1.0]]),
    next_state=np.array([[1, 2], [1, 2], [1, -1]]),
    token_probs=np.array([[2 / 3, 1 / 3], [0.5, 0.5], [1.0, 0.0]]),
    depth=np.array([0, 1, 1]),
    recurrent=np.array([False, True, True]),
)


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_nodes_are_numbered_and_arrows_carry_their_probabilities():
    fig = plot_msp_graph(**GOLDEN, state_names=["A", "B"], title="golden_mean (p = 0.5)")
    assert isinstance(fig, Figure)
    labels = texts(fig)
    assert {"0", "1", "2"} <= set(labels)  # state ids on the nodes
    # one label per edge that is not a self-loop (0->A 0.67, 0->B 0.33, A->B 0.5, B->A 1); "1" is also a node id
    assert sorted(t for t in labels if t in ("0.67", "0.33", "0.5", "1")) == ["0.33", "0.5", "0.67", "1", "1"]
    assert "= A" in labels and "= B" in labels  # recurrent states that are one hidden state for certain
    assert any(t.startswith("\u21ba 0 0.5") for t in labels)  # A's self-loop on token 0
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["token 0", "token 1", "recurrent state", "transient state"]
    assert fig.get_suptitle().startswith("golden_mean (p = 0.5)\n3 states (2 recurrent)")


def test_token_names_in_the_legend_and_self_loops():
    fig = plot_msp_graph(**GOLDEN, token_names=["a", "b"])
    assert [t.get_text() for t in fig.legends[0].get_texts()][:2] == ["token a", "token b"]
    assert any(t.startswith("\u21ba a 0.5") for t in texts(fig))


def test_recurrent_states_sit_on_a_circle_in_walk_order():
    # a 4-cycle 0 -> 1 -> 2 -> 3 -> 0 (token 0, p 0.9) with weak chords (token 1): all recurrent
    nxt = np.array([[1, 2], [2, 0], [3, 1], [0, 2]])
    probs = np.array([[0.9, 0.1]] * 4)
    assert recurrent_cycle_order(np.arange(4), nxt, probs) == [0, 1, 2, 3]
    xy = layered_layout(np.eye(4), nxt, probs, np.zeros(4, int), np.ones(4, bool))
    centre = xy.mean(axis=0)
    radii = np.linalg.norm(xy - centre, axis=1)
    np.testing.assert_allclose(radii, radii[0])
    # neighbours along the walk are neighbours on the circle: the strong edges are the short chords
    d = lambda i, j: np.linalg.norm(xy[i] - xy[j])  # noqa: E731
    assert d(0, 1) < d(0, 2) and d(1, 2) < d(1, 3)


def test_barycentre_ordering_removes_a_crossing():
    # prior 0 -> 1 (left) and 2 (right); 1 -> 4, 2 -> 3: the PCA order would cross these two edges
    beliefs = np.array(
        [[0.5, 0.5, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0.1, 0.9, 0], [0.1, 0, 0, 0.9], [0, 0, 1, 0]], dtype=float
    )
    nxt = np.array([[1, 2], [4, -1], [3, -1], [5, -1], [5, -1], [5, -1]])
    probs = np.array([[0.5, 0.5], [1, 0], [1, 0], [1, 0], [1, 0], [1, 0]], dtype=float)
    xy = layered_layout(beliefs, nxt, probs, np.array([0, 1, 1, 2, 2, 3]), np.array([0, 0, 0, 0, 0, 1], bool))
    assert (xy[1, 0] < xy[2, 0]) == (xy[4, 0] < xy[3, 0])  # children in their parents' order: no crossing


def test_three_states_in_the_simplex_with_named_corners():
    beliefs = np.array([[1 / 3, 1 / 3, 1 / 3], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    nxt = np.array([[1, 2], [2, 3], [3, 1], [1, 2]])
    probs = np.full((4, 2), 0.5)
    fig = plot_msp_graph(beliefs, nxt, probs, [0, 1, 1, 1], [False, True, True, True], state_names="ABC")
    labels = texts(fig)
    assert {"A", "B", "C"} <= set(labels) and "= A" not in labels  # the corner names it already
    assert fig.axes[0].get_aspect() == 1.0


@pytest.mark.parametrize(
    "change, name",
    [
        (dict(token_probs=np.array([[0.5, 0.5], [1.0, 0.0]])), "token_probs"),
        (dict(next_state=np.array([[1, 5], [1, 2], [1, -1]])), "next_state"),
        (dict(depth=np.array([0, 1])), "depth"),
    ],
)
def test_bad_graphs_are_named(change, name):
    with pytest.raises(ValueError, match=name):
        plot_msp_graph(**{**GOLDEN, **change})
    with pytest.raises(ValueError, match="token_names"):
        plot_msp_graph(**GOLDEN, token_names=["a"])


def test_belief_scatter_names_the_simplex_corners():
    b = np.random.default_rng(0).dirichlet(np.ones(3), size=200)
    fig = plot_beliefs(b, state_names=["A", "B", "C"], title="mess3")
    assert [t.get_text() for t in fig.axes[0].texts] == ["A", "B", "C"]
    two = plot_beliefs(np.random.default_rng(0).dirichlet(np.ones(2), size=50), state_names=["A", "B"])
    assert two.axes[0].get_xlabel() == "P(B)"
    pca = plot_beliefs(b, simplex=False)  # e.g. a generalized HMM's quasi-probabilities
    assert pca.axes[0].get_xlabel() == "PCA 1"
