"""Pairwise-distance scatter and the PCA of mixed states."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from figures import FigureInputError, plot_distance_scatter, plot_state_pca, save_figure
from figures.geometry import state_palette


def distances(n=300, seed=0):
    rng = np.random.default_rng(seed)
    d = rng.random(n)
    return d, 2 * d + rng.normal(0, 0.05, n) ** 2, rng.random(n)


def states(k=6, per=8, s=5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.dirichlet(np.ones(s), size=k)
    labels = np.repeat(np.arange(k), per)
    true = centres[labels]
    return true, true + rng.normal(0, 0.02, true.shape), labels


def plot_titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_distance_scatter_points(tmp_path):
    d, db, dn = distances()
    fig = plot_distance_scatter(
        d, db, dn, r2_beliefs=0.951, r2_next=0.312, paper={"beliefs": 0.95, "next_token": 0.31}, title="RRXOR"
    )
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    titles = plot_titles(fig)
    assert "R² = 0.951" in titles[0] and "paper 0.95" in titles[0] and "true beliefs" in titles[0]
    assert "R² = 0.312" in titles[1] and "paper 0.31" in titles[1] and "next-token" in titles[1]
    assert fig._suptitle.get_text() == "RRXOR"
    for ax in fig.axes:
        assert ax.get_xlabel() == "distance between probed beliefs" and ax.get_ylabel()
        assert ax.get_legend() is not None
    # the fitted line of the first panel is the least-squares line
    fit = [line for line in fig.axes[0].lines if line.get_label().startswith("least squares")][0]
    slope, intercept = np.polyfit(d, db, 1)
    np.testing.assert_allclose(fit.get_ydata(), intercept + slope * fit.get_xdata())
    out = save_figure(fig, tmp_path / "scatter.png", dpi=40)
    assert out.read_bytes().startswith(b"\x89PNG")


def test_equal_r2_are_explained_under_the_figure():
    d, db, _ = distances()
    fig = plot_distance_scatter(d, db, 0.5 * db, r2_beliefs=0.923, r2_next=0.923, same_geometry=True)
    assert "not a copy" in fig._supxlabel.get_text() and "circulant" in fig._supxlabel.get_text()
    plain = plot_distance_scatter(d, db, 0.5 * db, r2_beliefs=0.923, r2_next=0.923)
    assert plain._supxlabel is None


def test_distance_scatter_many_pairs_uses_hexbin(tmp_path):
    d, db, dn = distances(20000)
    fig = plot_distance_scatter(d, db, dn, r2_beliefs=float("nan"), r2_next=0.2)
    assert len(fig.axes) == 4  # two panels, two colour bars
    assert "n/a" in fig.axes[0].get_title() and "paper" not in fig.axes[0].get_title()
    assert "20,000 pairs" in fig._suptitle.get_text()
    save_figure(fig, tmp_path / "hexbin.png", dpi=40)


def test_state_pca(tmp_path):
    true, pred, labels = states()
    fig = plot_state_pca(true, pred, labels, title="fake RRXOR")
    assert len(fig.axes) == 2
    assert plot_titles(fig) == ["True mixed states (6)", "Probe predictions, same projection"]
    left, right = fig.axes
    assert left.get_xlabel().startswith("PC 1 (") and "% of variance" in left.get_ylabel()
    assert left.get_xlim() == right.get_xlim() and left.get_ylim() == right.get_ylim()
    assert len(fig.legends) == 1
    # right panel: one small point per row, one centre per state; colours follow the state
    pts, centres = right.collections[0], right.collections[1]
    assert len(pts.get_offsets()) == len(labels) and len(centres.get_offsets()) == 6
    np.testing.assert_allclose(centres.get_facecolors()[:, :3], state_palette(6))
    # the explained variances of PC 1 and PC 2 add up to at most 100%
    v1 = float(left.get_xlabel().split("(")[1].split("%")[0])
    v2 = float(left.get_ylabel().split("(")[1].split("%")[0])
    assert v1 >= v2 and v1 + v2 <= 100.0 + 1e-9
    save_figure(fig, tmp_path / "pca.png", dpi=40)


def test_state_palette_distinct_for_36_states():
    colours = state_palette(36)
    assert colours.shape == (36, 3)
    assert len(np.unique(colours, axis=0)) == 36
    assert len(np.unique(state_palette(80), axis=0)) == 60  # cycles past 60


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: plot_distance_scatter(*distances()[:2], distances()[2][:-1], r2_beliefs=1, r2_next=1), "d_next"),
        (
            lambda: plot_distance_scatter(np.full(5, np.nan), np.ones(5), np.ones(5), r2_beliefs=1, r2_next=1),
            "d_probed",
        ),
        (lambda: plot_distance_scatter(-np.ones(5), np.ones(5), np.ones(5), r2_beliefs=1, r2_next=1), "d_probed"),
        (lambda: plot_distance_scatter(*distances(), r2_beliefs="high", r2_next=1), "r2_beliefs"),
        (lambda: plot_distance_scatter(*distances(), r2_beliefs=1, r2_next=1, paper={"belief": 0.9}), "paper"),
        (lambda: plot_state_pca(states()[0], states()[1][:-1], states()[2]), "predicted"),
        (lambda: plot_state_pca(np.full((4, 3), np.nan), np.ones((4, 3)), np.arange(4)), "true_beliefs"),
        (lambda: plot_state_pca(*states()[:2], np.arange(3)), "labels"),
    ],
)
def test_bad_input(call, name):
    with pytest.raises(FigureInputError, match=name):
        call()
