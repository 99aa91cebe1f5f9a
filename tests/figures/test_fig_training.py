"""Training figures."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from figures import plot_loss_by_position, plot_training_curve

OPT = np.array([1.0986, 0.95, 0.86, 0.82, 0.80, 0.79, 0.785, 0.782, 0.78, 0.779])


def test_loss_by_position():
    fig = plot_loss_by_position(OPT * 1.001, OPT, title="Mess3")
    assert isinstance(fig, Figure)
    top, bottom = fig.axes
    assert top.get_title() == "Mess3"
    assert "nats" in top.get_ylabel() and "position" in bottom.get_xlabel()
    assert top.get_legend() is not None
    np.testing.assert_allclose(bottom.lines[-1].get_ydata(), 1.001)


def test_training_curve_panels():
    tok = np.geomspace(1e3, 1e8, 50)
    rel = 1 + 0.3 * (tok / 1e3) ** -0.5
    fig = plot_training_curve(tok, rel)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_xscale() == "log" and fig.axes[1].get_yscale() == "log"
    assert any(np.allclose(line.get_ydata(), 1.0) for line in fig.axes[0].lines)
    fig = plot_training_curve(tok, rel, loss=rel * 0.8, optimal_loss=0.8, title="run")
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["Relative loss", "Excess over the optimum (log scale)", "Loss"]


def test_training_curve_excess_below_zero_is_tolerated():
    fig = plot_training_curve([1, 10, 100], [1.1, 0.9999, 1.0001])
    assert len(fig.axes[1].lines[0].get_xdata()) == 2


def test_bad_input():
    with pytest.raises(ValueError, match="optimal_by_position"):
        plot_loss_by_position(OPT, OPT[:-1])
    with pytest.raises(ValueError, match="relative_loss"):
        plot_training_curve([1, 2, 3], [1.0, 1.0])
    with pytest.raises(ValueError, match="tokens"):
        plot_training_curve([0, 2], [1.0, 1.0])
    with pytest.raises(ValueError, match="loss"):
        plot_training_curve([1, 2], [1.0, 1.0], loss=[np.nan, 1.0])
