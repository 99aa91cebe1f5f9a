"""Simplex projection, colours and the belief panels."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from figures import belief_colors, plot_belief_panels, simplex_coords


def beliefs(n=500, s=3, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(s), size=n)


def test_vertices_map_to_triangle_corners():
    xy = simplex_coords(np.eye(3))
    np.testing.assert_allclose(xy, [[0, 0], [1, 0], [0.5, np.sqrt(3) / 2]], atol=1e-15)
    np.testing.assert_allclose(simplex_coords([[1 / 3, 1 / 3, 1 / 3]]), [[0.5, np.sqrt(3) / 6]])


def test_belief_colors_clip():
    c = belief_colors([[1.2, -0.1, 0.3], [0.2, 0.3, 0.5]])
    np.testing.assert_allclose(c, [[1.0, 0.0, 0.3], [0.2, 0.3, 0.5]])


def titles(fig):
    return [ax.get_title() for ax in fig.axes]


def test_three_panels():
    b = beliefs()
    fig = plot_belief_panels(b, b + 0.01, b.mean(0) + 0 * b, suptitle="Mess3")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    assert titles(fig) == ["True beliefs", "Probe predictions", "Shuffled-target control"]
    assert fig._suptitle.get_text() == "Mess3"
    for ax in fig.axes:
        assert ax.get_xticks().size == 0 and ax.get_aspect() == 1.0
        assert len(ax.collections) == 1 and ax.collections[0].get_rasterized()
        assert len(ax.lines) == 1  # the triangle
        assert ax.lines[0].get_zorder() > ax.collections[0].get_zorder()  # the outline above the points
    # predicted points are coloured by the TRUE beliefs, in the same order as the true panel
    np.testing.assert_array_equal(
        fig.axes[0].collections[0].get_facecolors()[:, :3], fig.axes[1].collections[0].get_facecolors()[:, :3]
    )
    # the shuffled control (one blob) gets a panel less than half as wide as the others
    widths = [ax.get_position().width for ax in fig.axes]
    assert widths[2] < 0.5 * widths[1]


def test_corners_are_named_by_the_process_states():
    b = beliefs()
    fig = plot_belief_panels(b, b, state_names=("A", "B", "C"))
    for ax in fig.axes:
        assert [t.get_text() for t in ax.texts] == ["A", "B", "C"]
    unnamed = plot_belief_panels(b, b)
    assert [t.get_text() for t in unnamed.axes[0].texts] == ["state 0", "state 1", "state 2"]
    with pytest.raises(ValueError, match="state_names"):
        plot_belief_panels(b, b, state_names=("A", "B"))


def test_a_fixed_frame_keeps_stray_predictions_in_view_and_counts_the_rest():
    b = beliefs()
    near = b + np.array([0.08, -0.04, -0.04])  # leaves the simplex a little: visible
    far = near.copy()
    far[:7] += np.array([5.0, -2.5, -2.5])  # 7 points far outside: beyond the frame
    fig_near = plot_belief_panels(b, near)
    fig_far = plot_belief_panels(b, far)
    frames = {(ax.get_xlim(), ax.get_ylim()) for fig in (fig_near, fig_far) for ax in fig.axes}
    assert len(frames) == 1  # one fixed frame, whatever the predictions do
    (xlim, ylim), = frames
    xy = simplex_coords(near)
    assert xlim[0] < xy[:, 0].min() and xy[:, 0].max() < xlim[1] and ylim[0] < xy[:, 1].min()
    assert not [t for t in fig_near.axes[1].texts if "beyond" in t.get_text()]
    (note,) = [t.get_text() for t in fig_far.axes[1].texts if "beyond" in t.get_text()]
    assert note.startswith("7 of 500 points")


def test_two_panels_custom_titles():
    b = beliefs()
    fig = plot_belief_panels(b, b, titles=["a", "b"], point_size=3)
    assert titles(fig) == ["a", "b"]
    assert fig.axes[0].collections[0].get_sizes()[0] == 3


@pytest.mark.parametrize("s", [2, 5])
def test_other_state_counts_use_pca(s):
    b = beliefs(s=s)
    fig = plot_belief_panels(b, b, b)
    assert len(fig.axes) == 3
    assert fig.axes[0].get_xlabel() == "principal axis 1 of the belief set"
    assert all(len(ax.lines) == 0 for ax in fig.axes)  # no triangle
    labelled = plot_belief_panels(b, b, labels=np.arange(len(b)) % 7)
    colours = labelled.axes[0].collections[0].get_facecolors()
    assert len(np.unique(colours, axis=0)) == 7


@pytest.mark.parametrize(
    "args, kwargs, name",
    [
        ((beliefs(), beliefs()[:-1]), {}, "predicted"),
        ((beliefs(), beliefs(), beliefs(s=4)), {}, "shuffled"),
        ((np.full((3, 3), np.nan), np.ones((3, 3))), {}, "true_beliefs"),
        ((beliefs(), beliefs()), {"titles": ["one"]}, "titles"),
        ((beliefs(), beliefs()), {"labels": np.ones(3)}, "labels"),
    ],
)
def test_bad_input(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        plot_belief_panels(*args, **kwargs)
    with pytest.raises(ValueError, match="beliefs"):
        simplex_coords(np.ones((4, 2)))
