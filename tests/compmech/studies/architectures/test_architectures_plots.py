"""The architecture grid figure on synthetic arrays: layout, titles, frames, missing runs, bad input."""

import numpy as np
import pytest

from compmech.studies.architectures.plots import ProbedCell, ProcessRow, cell_title, plot_architecture_grid
from figures import UNIT_CIRCLE, FigureInputError, belief_frame, save_figure

KINDS = ["transformer", "lstm", "gru"]


def simplex_beliefs(n, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(3), size=n)  # [n, 3]


def cell(kind, probed, held=0.001, shuffled=0.1):
    return ProbedCell(
        kind=kind, n_params=143_075, layer="block_4", mse_heldout=held, mse_shuffled=shuffled, probed=probed
    )


def test_the_grid_has_a_truth_column_and_one_column_per_kind(tmp_path):
    true = simplex_beliefs(500)
    noisy = true + np.random.default_rng(1).normal(0, 0.02, true.shape)
    bloch = np.random.default_rng(2).normal(size=(400, 2)) * 0.3
    ghmm = np.column_stack([np.ones(400), bloch])  # (1, Bloch coordinates)
    rows = [
        ProcessRow(
            "mess3\ncontext 10",
            true,
            [cell("transformer", noisy), cell("lstm", noisy, held=0.05), None],
            state_names=["A", "B", "C"],
        ),
        ProcessRow(
            "tom_quantum",
            ghmm,
            [cell(k, ghmm) for k in KINDS],
            frame=belief_frame(ghmm, coordinates=(1, 2), coordinate_names=("x", "y"), outline=UNIT_CIRCLE),
        ),
    ]
    fig = plot_architecture_grid(rows, KINDS, suptitle="grid")
    axes = fig.axes
    assert len(axes) == 2 * (1 + len(KINDS))
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == "exact beliefs\n500 contexts"
    assert titles[1].startswith("transformer, 143k params\nblock_4\nheld out 0.001 = 1% of shuffled ✓")
    assert titles[2].endswith("50% of shuffled ✗")
    assert titles[3] == "gru: no run"
    assert "no run" in [t.get_text() for t in axes[3].texts]
    assert axes[0].get_ylabel() == "mess3\ncontext 10"
    # every drawn panel of a row shows the same number of points (one subset), the missing one none
    counts = [sum(len(c.get_offsets()) for c in ax.collections) for ax in axes[:4]]
    assert counts == [500, 500, 500, 0]
    # the Bloch row draws the unit circle in every panel
    assert all(any(len(line.get_xdata()) == len(UNIT_CIRCLE) for line in ax.get_lines()) for ax in axes[4:])
    path = save_figure(fig, tmp_path / "grid.png", dpi=60)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_a_probe_that_matches_the_truth_lands_on_the_truths_points():
    true = simplex_beliefs(300)
    fig = plot_architecture_grid([ProcessRow("p", true, [cell("gru", true.copy())])], ["gru"], max_points=100)
    a, b = (ax.collections[0].get_offsets() for ax in fig.axes)
    assert len(a) == 100 and np.allclose(a, b)


def test_cell_title_says_whether_the_geometry_was_found():
    assert "✓" in cell_title(cell("rnn", None, held=0.0099, shuffled=0.1))
    assert "✗" in cell_title(cell("rnn", None, held=0.011, shuffled=0.1))


def test_bad_input_is_one_clear_error():
    true = simplex_beliefs(50)
    with pytest.raises(FigureInputError, match="has 1 cells but there are 2 kinds"):
        plot_architecture_grid([ProcessRow("p", true, [None])], ["a", "b"])
    with pytest.raises(FigureInputError, match=r"rows\[0\].cells\[0\].probed has shape \(49, 3\)"):
        plot_architecture_grid([ProcessRow("p", true, [cell("a", true[:49])])], ["a"])
    with pytest.raises(FigureInputError, match="rows is empty"):
        plot_architecture_grid([], ["a"])
    with pytest.raises(FigureInputError, match="NaN"):
        plot_architecture_grid([ProcessRow("p", np.full((5, 3), np.nan), [None])], ["a"])
