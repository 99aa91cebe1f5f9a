"""The figures' titles (the runner's figure step), the interactive belief simplex of a run (with plotly, the [plot]
extra) and a run without plotly (everything as before, no interactive page, no link)."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import compmech
from compmech.runs.cli import main
from compmech.runs.contexts import ContextSet
from compmech.runs.report import build_report
from compmech.runs.run_figures import context_probabilities, context_strings
from figures import process_title
from figures.interactive import PlotlyMissing, plotly_available

TINY = str(Path(__file__).parents[2] / "data" / "tiny_mess3.toml")
STATIC = [
    "belief_fractal",
    "loss_by_position",
    "training_curve",
    "probe_layers",
    "distance_geometry",
    "belief_evolution",
    "probe_over_training",
]
needs_plotly = pytest.mark.skipif(not plotly_available(), reason="plotly (the [plot] extra) is not installed")


def test_titles_of_processes_with_and_without_parameters():
    assert process_title("mess3", {"x": 0.05, "alpha": 0.85}) == "mess3 (x = 0.05, alpha = 0.85)"
    assert process_title("golden_mean", {}) == "golden_mean"
    assert process_title("spec", None) == "spec"


def test_context_strings_and_their_probabilities():
    tokens = np.array([[0, 0], [0, 1], [1, 0]])
    ctx = ContextSet(
        tokens=tokens,
        probs=np.array([0.5, 0.3, 0.2]),
        beliefs=np.zeros((3, 2, 2)),
        next_token_probs=np.zeros((3, 2, 2)),
        optimal_loss=np.zeros(2),
    )
    # rows: the prefix "0" (string 0, position 0), "01" (string 1, position 1), "1" (string 2, position 0)
    groups, positions = np.array([0, 1, 2]), np.array([0, 1, 0])
    assert context_strings(tokens, groups, positions, bos=False, token_names=["A", "B"]) == ["A", "AB", "B"]
    assert context_strings(tokens, groups, positions, bos=False, token_names=["up", "down"]) == [
        "up",
        "up down",
        "down",
    ]
    assert context_strings(tokens, groups, positions, bos=True) == ["\u2205", "1", "\u2205"]  # the start token left out
    from probes import distinct_prefix_ids

    ids = distinct_prefix_ids(tokens)[groups, positions]
    np.testing.assert_allclose(context_probabilities(ctx, ids), [0.8, 0.3, 0.2])  # P("0") = 0.5 + 0.3


@pytest.fixture(scope="module")
def run_without_plotly(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "no_plotly"
    with pytest.MonkeyPatch.context() as mp:
        for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
            mp.delitem(sys.modules, name)
        mp.setitem(sys.modules, "plotly", None)  # `import plotly` raises ImportError, as when it is not installed
        assert not plotly_available()
        assert main(["run", TINY, "--out", str(out), "--no-progress"]) == 0
    return out


def test_without_plotly_a_run_has_its_static_figures_and_no_interactive_page(run_without_plotly, monkeypatch):
    figures = run_without_plotly / "figures"
    assert {p.stem for p in figures.glob("*.png")} == set(STATIC)
    assert not list(figures.glob("interactive_*"))
    page = (run_without_plotly / "report.html").read_text()
    assert "interactive_" not in page and "<script" not in page  # self-contained and static, as before
    run = compmech.load_run(run_without_plotly)
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(PlotlyMissing, match=r"compmech\[plot\]"):
        compmech.plot.simplex(run)


@pytest.fixture(scope="module")
def run_with_plotly(tmp_path_factory):
    if not plotly_available():
        pytest.skip("plotly (the [plot] extra) is not installed")
    out = tmp_path_factory.mktemp("runs") / "plotly"
    assert main(["run", TINY, "--out", str(out), "--no-progress"]) == 0
    return out


@needs_plotly
def test_with_plotly_a_run_writes_the_interactive_simplex_and_the_report_links_it(run_with_plotly, tmp_path):
    page = run_with_plotly / "figures" / "interactive_belief_simplex.html"
    assert page.is_file() and {p.stem for p in (run_with_plotly / "figures").glob("*.png")} == set(STATIC)
    text = page.read_text()
    assert "mess3 (x = 0.05, alpha = 0.85): beliefs and their linear probe, after block 2" in text
    report = (run_with_plotly / "report.html").read_text()
    assert 'href="figures/interactive_belief_simplex.html"' in report
    # a report written elsewhere links the page relative to where it is
    out = tmp_path / "sub" / "r.html"
    elsewhere = build_report(run_with_plotly, out).read_text()
    link = Path(os.path.relpath(page.resolve(), out.parent.resolve())).as_posix()
    assert link.startswith("../") and f'href="{link}"' in elsewhere


@needs_plotly
def test_compmech_plot_simplex_hover_shows_each_context_with_its_probability(run_with_plotly):
    run = compmech.load_run(run_with_plotly)
    fig = compmech.plot.simplex(run, layer="final_ln")
    true, probed = [t for t in fig.data if t.mode == "markers"]
    assert "after the final LayerNorm" in fig.layout.title.text
    text, data = list(true.text), np.asarray(true.customdata)
    # Mess3 is symmetric: each single token has probability 1/3 (float32 on the page)
    for token in "012":
        np.testing.assert_allclose(data[text.index(token), 0], 1 / 3, atol=1e-6)
    # the probabilities of all contexts of one length sum to 1 (1,092 contexts: 3 + 9 + ... + 729, all drawn)
    by_length = {}
    for s, p in zip(text, data[:, 0]):
        by_length[len(s)] = by_length.get(len(s), 0.0) + float(p)
    assert sorted(by_length) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(list(by_length.values()), 1.0, atol=1e-5)
    # the belief on hover is the context's exact belief; the probed point's is the probe's
    assert np.allclose(data[:, 1:4].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(probed.customdata)[:, :4], data[:, :4])
    assert "probed" in probed.hovertemplate
