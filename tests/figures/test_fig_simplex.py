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
    # predicted points are coloured by the TRUE beliefs, in the same order as the true panel
    np.testing.assert_array_equal(
        fig.axes[0].collections[0].get_facecolors()[:, :3], fig.axes[1].collections[0].get_facecolors()[:, :3]
    )


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
    assert fig.axes[0].get_xlabel().startswith("PC 1")
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
