"""Simplex projection, colours and the belief panels."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from figures import belief_colors, plot_belief_panels, simplex_coords
from figures.simplex import DENSITY_ABOVE, density_image


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


def test_two_panels_and_the_shuffled_control_drawn_in_the_probed_one():
    b = beliefs()
    shuffled = b.mean(0) + 0.001 * beliefs(seed=1)
    fig = plot_belief_panels(b, b + 0.01, shuffled, suptitle="Mess3")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # no third, tiny panel: the control is drawn where the predictions are
    assert titles(fig) == ["True beliefs", "Probe predictions"]
    assert fig._suptitle.get_text() == "Mess3"
    widths = [ax.get_position().width for ax in fig.axes]
    assert abs(widths[0] - widths[1]) < 1e-6  # a balanced layout: two panels of one size
    for ax in fig.axes:
        assert ax.get_xticks().size == 0 and ax.get_aspect() == 1.0
        assert ax.collections[0].get_rasterized()
        assert len(ax.lines) >= 1  # the triangle
        assert ax.lines[0].get_zorder() > ax.collections[0].get_zorder()  # the outline above the points
    # predicted points are coloured by the TRUE beliefs, in the same order as the true panel
    np.testing.assert_array_equal(
        fig.axes[0].collections[0].get_facecolors()[:, :3], fig.axes[1].collections[0].get_facecolors()[:, :3]
    )
    # the control: its predictions as dark dots and a marker at their mean, named in the legend with its spread
    probed = fig.axes[1]
    assert len(probed.collections) == 2 and len(fig.axes[0].collections) == 1
    (marker,) = [ln for ln in probed.lines if ln.get_marker() == "X"]
    np.testing.assert_allclose(np.ravel(marker.get_xydata()), simplex_coords(shuffled).mean(0))
    (legend,) = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend.startswith("Shuffled-target control: its predictions (dark dots) all lie within")


def test_large_point_sets_are_drawn_as_a_density_image():
    b = beliefs(n=DENSITY_ABOVE + 1)
    fig = plot_belief_panels(b, b)
    for ax in fig.axes:
        assert len(ax.images) == 1 and not ax.collections  # a 2-D histogram, not 20k overlapping dots
    small = plot_belief_panels(beliefs(n=2000), beliefs(n=2000))
    assert not small.axes[0].images and len(small.axes[0].collections) == 1
    forced = plot_belief_panels(beliefs(n=2000), beliefs(n=2000), density=True)
    assert len(forced.axes[0].images) == 1


def test_density_image_counts_colours_and_opacity():
    # 3 points in one bin and 1 in another: the crowded bin is more opaque; its colour the mean of its points
    xy = np.array([[0.05, 0.05], [0.06, 0.06], [0.07, 0.05], [0.95, 0.95]])
    colours = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.2, 0.4, 0.6]])
    img = density_image(xy, colours, (0, 1), (0, 1), bins=4)  # [4, 4, 4]
    assert img.shape == (4, 4, 4)
    crowded, lone = img[0, 0], img[3, 3]
    np.testing.assert_allclose(crowded[:3], [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(lone[:3], [0.2, 0.4, 0.6])
    assert crowded[3] > lone[3] >= 0.2 and img[1, 1, 3] == 0.0  # empty bins transparent
    # categorical colours: the most frequent colour of a bin, not a muddy mean
    cat = density_image(
        xy[:3], np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]]), (0, 1), (0, 1), bins=4, categorical=True
    )
    np.testing.assert_allclose(cat[0, 0, :3], [1, 0, 0])


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
    ((xlim, ylim),) = frames
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
    assert len(fig.axes) == 2
    assert fig.axes[0].get_xlabel() == "principal axis 1 of the belief set"
    assert len(fig.axes[0].lines) == 0  # no triangle (the probed panel has the control's marker only)
    assert [ln.get_marker() for ln in fig.axes[1].lines] == ["X"]
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
