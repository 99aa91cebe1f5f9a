"""Per-layer probe MSE bars."""

import pytest
from matplotlib.figure import Figure

from figures import plot_layer_mse

RESULTS = {
    "embed": {"mse": 0.07, "mse_heldout": 0.071, "mse_heldout_std": 0.001, "mse_shuffled": 0.11, "r2": 0.3},
    "block1": {"mse": 0.042, "mse_heldout": 0.043, "mse_shuffled": 0.11},
    "concat": {"mse": 0.004, "mse_heldout": 0.005, "mse_shuffled": 0.11},
}


class Record:  # anything with to_dict(), like probes.ProbeResult
    def to_dict(self):
        return {"mse": 0.01, "mse_heldout": 0.02, "mse_shuffled": 0.1}


def test_bars_per_layer():
    fig = plot_layer_mse(RESULTS, title="RRXOR")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_title() == "RRXOR" and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["embed", "block1", "concat"]
    assert len(ax.patches) == 9
    assert fig.legends


def test_paper_markers_and_records():
    fig = plot_layer_mse(RESULTS, paper={"embed": 0.070, "concat": 0.004, "not_here": 1.0})
    (ax,) = fig.axes
    assert len(ax.collections[-1].get_offsets()) == 2
    assert "paper" in [t.get_text() for t in fig.legends[0].get_texts()][0]
    fig = plot_layer_mse({"last": Record()})
    assert len(fig.axes[0].patches) == 3


def test_bad_input():
    with pytest.raises(ValueError, match="results"):
        plot_layer_mse({})
    with pytest.raises(ValueError, match="results"):
        plot_layer_mse({"a": 0.1})
