"""Per-layer probe MSE bars, the paper's markers, layer names a reader knows and the shuffled control as a line."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from figures import plot_layer_mse

RESULTS = {
    "embed": {"mse": 0.07, "mse_heldout": 0.071, "mse_heldout_std": 0.001, "mse_shuffled": 0.11, "r2": 0.3},
    "block1": {"mse": 0.042, "mse_heldout": 0.043, "mse_shuffled": 0.11},
    "concat": {"mse": 0.004, "mse_heldout": 0.005, "mse_shuffled": 0.105},
}
# with the context-disjoint held-out error (probe.json after issue 7); concat's is withheld
CONTEXTS = {
    "embed": {**RESULTS["embed"], "mse_heldout_contexts": 0.075, "mse_heldout_contexts_std": 0.002},
    "block1": {**RESULTS["block1"], "mse_heldout_contexts": 0.05, "mse_heldout_contexts_std": 0.001},
    "concat": {
        **RESULTS["concat"],
        "mse_heldout_contexts": None,
        "heldout_contexts_note": "underdetermined: 52 fit rows < 129 parameters",
    },
}


class Record:  # anything with to_dict(), like probes.ProbeResult
    def to_dict(self):
        return {"mse": 0.01, "mse_heldout": 0.02, "mse_shuffled": 0.1}


def legend_texts(fig):
    return [t.get_text() for t in fig.legends[0].get_texts()]


def test_bars_per_layer_and_the_shuffled_control_as_a_reference_line():
    fig = plot_layer_mse(RESULTS, title="RRXOR")
    assert isinstance(fig, Figure)
    (bars,) = fig.axes  # no panel spent on the control
    assert bars.get_title() == "RRXOR" and bars.get_yscale() == "log"
    assert [t.get_text() for t in bars.get_xticklabels()] == [
        "embedding",
        "block1",
        "all layers",
    ]  # "embed": a recurrent model's
    assert len(bars.patches) == 6  # in-sample and held-out, per layer: the control is not a bar
    # the control (0.11, 0.11, 0.105: within 5 % of its mean) is one dashed line at its mean, labelled with it
    (line,) = [ln for ln in bars.lines if ln.get_linestyle() == "--"]
    np.testing.assert_allclose(line.get_ydata(), [np.mean([0.11, 0.11, 0.105])] * 2)
    assert "shuffled-target control (every layer)" in legend_texts(fig)
    assert any(t.get_text() == "shuffled control 0.11" for t in bars.texts)
    assert bars.get_ylim()[1] > 0.11  # the line is inside the panel
    assert "held-out strings (paper's protocol)" in legend_texts(fig)
    # every bar carries its value
    assert {t.get_text() for t in bars.texts} >= {"0.07", "0.071", "0.004", "0.005"}


def test_a_shuffled_control_that_differs_by_layer_gets_a_dash_per_layer():
    results = {"a": {"mse": 0.01, "mse_shuffled": 0.1}, "b": {"mse": 0.02, "mse_shuffled": 0.2}}
    bars = plot_layer_mse(results).axes[0]
    dashes = [ln for ln in bars.lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert sorted(float(ln.get_ydata()[0]) for ln in dashes) == [0.1, 0.2]
    assert any(t.get_text() == "shuffled control 0.1\u20130.2" for t in bars.texts)


def test_layers_are_named_as_a_reader_knows_them():
    results = {n: {"mse": 0.01} for n in ("embedding", "block_1", "block_4", "final_ln", "concat")}
    ticks = [t.get_text() for t in plot_layer_mse(results).axes[0].get_xticklabels()]
    assert ticks == ["embedding", "after block 1", "after block 4", "after the final\nLayerNorm", "all layers"]


def test_context_held_out_bars_come_first_and_withheld_ones_are_marked():
    fig = plot_layer_mse(CONTEXTS)
    bars = fig.axes[0]
    assert len(bars.patches) == 9
    labels = legend_texts(fig)
    assert labels.index("held-out contexts (never seen in the fit)") < labels.index(
        "held-out strings (paper's protocol)"
    )
    heights = [p.get_height() for p in bars.patches]
    assert heights[3:6] == [0.075, 0.05, 0.0]  # the contexts bars; concat's withheld (no bar) ...
    assert "–" in [t.get_text() for t in bars.texts]  # ... and marked where it would be


def test_paper_markers_and_records():
    fig = plot_layer_mse(
        RESULTS, paper={"embed": 0.070, "concat": 0.004, "not_here": 1.0}, paper_heldout={"concat": 0.0045}
    )
    bars = fig.axes[0]
    in_sample, held = bars.collections[-2:]
    assert len(in_sample.get_offsets()) == 2 and len(held.get_offsets()) == 1
    np.testing.assert_allclose(in_sample.get_offsets()[:, 1], [0.070, 0.004])
    # the held-out marker sits on the held-out bar of concat, right of its in-sample bar
    assert held.get_offsets()[0, 0] > in_sample.get_offsets()[1, 0]
    assert {"paper (in-sample)", "paper (held-out strings)"} <= set(legend_texts(fig))
    fig = plot_layer_mse({"last": Record()})
    assert len(fig.axes[0].patches) == 2


def test_bad_input():
    with pytest.raises(ValueError, match="results"):
        plot_layer_mse({})
    with pytest.raises(ValueError, match="results"):
        plot_layer_mse({"a": 0.1})
    with pytest.raises(ValueError, match="negative"):
        plot_layer_mse({"a": {"mse": -0.1}})
    with pytest.raises(ValueError, match="paper"):
        plot_layer_mse(RESULTS, paper={"embed": 0.0})
