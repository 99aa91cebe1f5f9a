"""plot_sweep: one panel per metric, dots per point and their mean per swept value, readable tick labels."""

import numpy as np
import pytest

from figures._common import FigureInputError
from figures.sweep import plot_sweep


def test_panels_means_and_whole_tick_values():
    x = [0.05, 0.05, 0.1, 0.1]
    series = {"relative_loss": [1.00055, 1.00057, 1.00062, None], "mse": [1e-4, 2e-4, 5e-3, 1e-1]}
    fig = plot_sweep(x, series, x_label="x", title="t")
    fig.canvas.draw()
    rel, mse = fig.axes[:2]
    assert [a.get_title() for a in fig.axes[:2]] == ["relative_loss", "mse"]
    line = rel.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), [1.00056, 1.00062])  # the missing value is left out of the mean
    assert len(rel.collections[0].get_offsets()) == 3
    # a relative loss near 1 is labelled 1.0006, not "+1" in the corner over 0.0006
    assert rel.yaxis.get_major_formatter().get_offset() == ""
    assert any(t.get_text().startswith("1.000") for t in rel.get_yticklabels())
    assert mse.get_yscale() == "log"  # three decades


def test_categorical_x_and_bad_input():
    fig = plot_sweep(["gru", "lstm", "gru"], {"m": [1.0, 2.0, 3.0]}, x_label="kind")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["gru", "lstm"]
    with pytest.raises(FigureInputError, match="2 values for 3 points"):
        plot_sweep([1, 2, 3], {"m": [1.0, 2.0]}, x_label="x")
