"""plot_sweep: one panel per metric titled in words, every run a dot, mean ± sd over repeats, one x-range, y-ranges
that do not stretch noise."""

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from figures._common import FigureInputError
from figures.sweep import MIN_RELATIVE_SPAN, NOISE_SPANS, plot_sweep, sweep_label, y_span


def test_panels_means_and_whole_tick_values():
    x = [0.05, 0.05, 0.1, 0.1]
    series = {"relative_loss": [1.00055, 1.00057, 1.00062, None], "mse": [1e-4, 2e-4, 5e-3, 1e-1]}
    fig = plot_sweep(x, series, x_label="x", title="t")
    fig.canvas.draw()
    rel, mse = fig.axes[:2]
    assert [a.get_title() for a in fig.axes[:2]] == ["relative loss (CE / optimal CE)", "mse"]
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


def test_mean_and_sd_over_seeds_as_a_band():
    x = [0.05] * 3 + [0.1] * 3
    y = [1.0, 2.0, 3.0, 10.0, 10.0, 13.0]
    ax = plot_sweep(x, {"probe.mse": y}, x_label="process.params.x").axes[0]
    mean = ax.get_lines()[0]
    np.testing.assert_allclose(mean.get_ydata(), [2.0, 11.0])
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]  # fill_between
    lo, hi = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    np.testing.assert_allclose([lo, hi], [2.0 - 1.0, 11.0 + np.std([10, 10, 13], ddof=1)])  # ± sample sd
    assert len(ax.collections[0].get_offsets()) == 6  # and every run as a dot
    assert ax.get_title() == "probe MSE (in-sample)" and ax.get_xlabel() == "x (process)"


def test_one_x_range_for_every_panel_when_a_value_is_missing():
    fig = plot_sweep([0.05, 0.1, 0.15], {"a": [1.0, 2.0, 3.0], "b": [None, 2.0, 3.0]}, x_label="x")
    a, b = fig.axes[:2]
    assert a.get_xlim() == b.get_xlim() and b.get_xlim()[0] < 0.05
    assert any("1 of 3 runs without it" in t.get_text() for t in b.texts)


def test_noise_is_not_stretched_to_the_panel_height():
    # a shuffled-control MSE constant to 1e-4 over a sweep: drawn flat (the axis spans >= 2 % of its size)
    fig = plot_sweep([1, 2, 3], {"probe.mse_shuffled": [0.1101, 0.1100, 0.1102]}, x_label="seed")
    lo, hi = fig.axes[0].get_ylim()
    assert hi - lo >= MIN_RELATIVE_SPAN * 0.1102
    # with repeats, at least NOISE_SPANS pooled sd
    lo, hi = y_span(np.array([5.0, 5.01]), sd=0.5)
    assert hi - lo >= NOISE_SPANS * 0.5
    # a real trend keeps its own range
    lo, hi = y_span(np.array([1.0, 3.0]), sd=0.01)
    assert lo < 1.0 and hi > 3.0 and hi - lo < 2.5


def test_labels_in_words_with_a_fallback():
    assert sweep_label("relative_loss") == "relative loss (CE / optimal CE)"
    assert sweep_label("studies.factored.components.0.95") == "components at 0.95 (factored)"
    assert sweep_label("studies.cbu.main_fitted_lambda") == "main fitted \u03bb (cbu)"
    assert sweep_label("process.params.alpha") == "alpha (process)"
    assert sweep_label("weird") == "weird"


def test_groups_are_separate_lines_not_pooled_as_seeds():
    fig = plot_sweep(
        [0.15, 0.15, 0.5, 0.5], {"m": [1.0, 2.0, 1.5, 2.5]}, x_label="x", groups=["alpha = 0.2", "alpha = 0.6"] * 2
    )
    lines = fig.axes[0].get_lines()
    assert [list(line.get_ydata()) for line in lines] == [[1.0, 1.5], [2.0, 2.5]]
    assert {"alpha = 0.2", "alpha = 0.6"} <= {t.get_text() for t in fig.legends[0].get_texts()}
    with pytest.raises(FigureInputError, match="groups"):
        plot_sweep([1, 2], {"m": [1.0, 2.0]}, x_label="x", groups=["a"])
