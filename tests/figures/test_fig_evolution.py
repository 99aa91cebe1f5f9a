"""Belief snapshots over training and the probe error curve."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from figures import FigureInputError, plot_belief_evolution, plot_probe_over_training, save_figure


def snapshots(n=400, s=3, noise=(0.1, 0.03, 0.005), seed=0):
    rng = np.random.default_rng(seed)
    true = rng.dirichlet(np.ones(s), size=n)
    return [(f"{10 ** (i + 4):.0e} tokens", true, true + rng.normal(0, sd, true.shape)) for i, sd in enumerate(noise)]


def test_simplex_evolution(tmp_path):
    snaps = snapshots()
    fig = plot_belief_evolution(snaps, title="Mess3")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4  # three snapshots + the true beliefs
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == snaps[0][0] and titles[-1] == "True beliefs"  # captions as given
    assert fig._suptitle.get_text() == "Mess3"
    limits = {(ax.get_xlim(), ax.get_ylim()) for ax in fig.axes}
    assert len(limits) == 1  # the same view everywhere
    for ax in fig.axes:
        assert len(ax.lines) == 1 and len(ax.collections) == 1  # triangle, points
        assert ax.lines[0].get_zorder() > ax.collections[0].get_zorder()  # the outline above the points
    assert [t.get_text() for t in fig.axes[-1].texts] == ["state 0", "state 1", "state 2"]
    named = plot_belief_evolution(snaps, state_names=["A", "B", "C"])
    assert [t.get_text() for t in named.axes[-1].texts] == ["A", "B", "C"]
    # no empty band: the figure is about as tall as one (equal-aspect) panel plus its titles
    width, height = fig.get_size_inches()
    panel = width / len(fig.axes)
    assert height < panel * 1.3
    # every panel colours point i by its TRUE belief: same colours as the true panel
    true_colours = fig.axes[-1].collections[0].get_facecolors()
    np.testing.assert_array_equal(fig.axes[0].collections[0].get_facecolors(), true_colours)
    save_figure(fig, tmp_path / "evolution.png", dpi=40)


def test_pca_evolution_with_labels(tmp_path):
    snaps = snapshots(n=120, s=5)
    labels = np.arange(120) % 9
    fig = plot_belief_evolution(snaps, labels=labels)
    assert len(fig.axes) == 4
    assert fig.axes[0].get_xlabel() == "principal axis 1 of the belief set"
    assert all(len(ax.lines) == 0 for ax in fig.axes)
    assert len(np.unique(fig.axes[0].collections[0].get_facecolors()[:, :3], axis=0)) == 9
    assert len({(ax.get_xlim(), ax.get_ylim()) for ax in fig.axes}) == 1
    save_figure(fig, tmp_path / "evolution_pca.png", dpi=40)
    unlabelled = plot_belief_evolution(snaps[:1])
    assert len(unlabelled.axes) == 2


def test_probe_over_training(tmp_path):
    tokens = np.geomspace(1e4, 1e8, 12)
    mse = 0.05 * (tokens / 1e4) ** -0.5
    rel = 1 + 0.3 * (tokens / 1e4) ** -0.5
    rel[-1] = 0.9999  # evaluation noise below the optimum: left out of the log panel
    fig = plot_probe_over_training(
        tokens, mse, rel, paper_tokens=[6.4e4, 6.4e5, 3.2e6], paper_mse=[0.0118, 0.0084, 0.0025], title="Mess3"
    )
    assert len(fig.axes) == 2
    left, right = fig.axes
    assert left.get_title() and right.get_title()
    assert left.get_xscale() == left.get_yscale() == right.get_xscale() == right.get_yscale() == "log"
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["this run", "paper (Shai et al. 2024)"]
    assert len(right.lines[0].get_xdata()) == 11
    assert "1 points" in right.get_legend().get_texts()[0].get_text()
    save_figure(fig, tmp_path / "probe_training.png", dpi=40)
    assert len(plot_probe_over_training(tokens, mse, rel + 1).axes[0].lines) == 1  # no paper points


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: plot_belief_evolution([]), "snapshots"),
        (lambda: plot_belief_evolution([("a", np.ones((4, 3)))]), r"snapshots\[0\]"),
        (lambda: plot_belief_evolution([("a", np.ones((4, 3)) / 3, np.ones((5, 3)))]), r"snapshots\[0\] predicted"),
        (lambda: plot_belief_evolution(snapshots()[:1] + snapshots(s=4)[:1]), r"snapshots\[1\]"),
        (lambda: plot_belief_evolution([("a", np.full((4, 3), np.nan), np.ones((4, 3)))]), "true_beliefs"),
        (lambda: plot_belief_evolution(snapshots(), labels=np.arange(3)), "labels"),
        (lambda: plot_probe_over_training([1, 2], [0.1, 0.2], [1.1]), "relative_loss"),
        (lambda: plot_probe_over_training([1, 2], [0.1, np.nan], [1.1, 1.0]), "probe_mse"),
        (lambda: plot_probe_over_training([-1, 2], [0.1, 0.2], [1.1, 1.0]), "tokens"),
        (lambda: plot_probe_over_training([1, 2], [0.1, 0.2], [1.1, 1.0], paper_tokens=[1]), "paper_mse"),
        (
            lambda: plot_probe_over_training([1, 2], [0.1, 0.2], [1.1, 1.0], paper_tokens=[1, 2], paper_mse=[1]),
            "paper_mse",
        ),
    ],
)
def test_bad_input(call, name):
    with pytest.raises(FigureInputError, match=name):
        call()


def test_the_untrained_point_and_an_exact_fit_are_left_off_the_log_axes_and_counted():
    """save_at_tokens = [0] (the untrained model) and a probe MSE of exactly 0 (two beliefs, an exact fit) used to
    fail the whole run after training ("must be positive"); they are now counted in the legend instead."""
    fig = plot_probe_over_training([0, 1000, 2000], [0.1, 0.0, 0.01], [1.5, 1.2, 1.1])
    left, right = fig.axes[:2]
    assert list(left.lines[0].get_xdata()) == [2000]
    assert "2 points at 0 tokens or 0 MSE not shown" in left.get_legend().get_texts()[0].get_text()
    assert list(right.lines[0].get_xdata()) == [1000, 2000]
