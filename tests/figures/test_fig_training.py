"""Training figures: the excess loss by position, and one panel of loss over training."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from figures import plot_loss_by_position, plot_training_curve, sci

OPT = np.array([1.0986, 0.95, 0.86, 0.82, 0.80, 0.79, 0.785, 0.782, 0.78, 0.779])


def test_loss_by_position_shows_the_excess():
    loss = OPT + np.linspace(0.001, 0.01, OPT.size)
    fig = plot_loss_by_position(loss, OPT, title="Mess3")
    assert isinstance(fig, Figure)
    top, bottom = fig.axes
    assert top.get_title() == "Mess3"
    assert "nats" in top.get_ylabel() and "position" in bottom.get_xlabel()
    assert top.get_legend() is not None
    # the bottom panel is model − optimum in millinats, with the optimum at 0
    assert "excess" in bottom.get_ylabel() and "millinats" in bottom.get_ylabel()
    np.testing.assert_allclose(bottom.lines[-1].get_ydata(), 1e3 * (loss - OPT))
    assert any(np.allclose(line.get_ydata(), 0.0) for line in bottom.lines)


def test_training_curve_is_one_panel_from_the_first_evaluation():
    tok = np.concatenate([[0], np.geomspace(1e3, 1e8, 50)])
    rel = 1 + 0.4 * (1 + tok / 1e3) ** -0.5
    train = 1 + (rel - 1) * (1.1 + 0.05 * np.cos(np.arange(tok.size)))  # noisy, above the optimum
    train[0] = np.nan  # no training batch before the first step
    fig = plot_training_curve(tok, rel, train_relative=train, title="run")
    (ax,) = fig.axes
    assert ax.get_title() == "run"
    assert ax.get_yscale() == "log" and ax.get_xscale() == "symlog"
    model = ax.lines[-1]
    assert model.get_xdata()[0] == 0  # the evaluation before training is on the axis
    np.testing.assert_allclose(model.get_ydata(), rel - 1)
    light = ax.lines[0]
    assert light.get_alpha() < 0.5 and len(light.get_xdata()) == tok.size - 1
    assert "1.0" in ax.texts[0].get_text()  # the final relative loss, written out


def test_training_curve_leaves_out_points_at_or_below_the_optimum():
    fig = plot_training_curve([1, 10, 100], [1.1, 0.9999, 1.0001])
    (ax,) = fig.axes
    assert len(ax.lines[0].get_xdata()) == 2
    assert "1 at or below the optimum" in ax.get_legend().get_texts()[0].get_text()


def test_short_scientific_counts():
    assert [sci(v) for v in (64_000, 640_000, 3.2e6, 1000, 12, 0, 57_600)] == [
        "6.4e4",
        "6.4e5",
        "3.2e6",
        "1e3",
        "12",
        "0",
        "5.8e4",
    ]


def test_bad_input():
    with pytest.raises(ValueError, match="optimal_by_position"):
        plot_loss_by_position(OPT, OPT[:-1])
    with pytest.raises(ValueError, match="relative_loss"):
        plot_training_curve([1, 2, 3], [1.0, 1.0])
    with pytest.raises(ValueError, match="tokens"):
        plot_training_curve([-1, 2], [1.0, 1.0])
    with pytest.raises(ValueError, match="tokens"):
        plot_training_curve([0], [1.2])
    with pytest.raises(ValueError, match="train_relative"):
        plot_training_curve([1, 2], [1.0, 1.0], train_relative=[1.0])
