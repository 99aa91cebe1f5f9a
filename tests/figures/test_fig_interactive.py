"""Interactive belief figures (Plotly, the optional [plot] extra): frames, hover text, the page, and life without it."""

import sys

import numpy as np
import pytest

from figures import UNIT_CIRCLE, belief_frame
from figures.interactive import (
    INSTALL_HINT,
    TETRAHEDRON,
    PlotlyMissing,
    belief_simplex,
    plotly_available,
    save_interactive,
)


def beliefs(n=300, s=3, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(s), size=n)


@pytest.fixture
def no_plotly(monkeypatch):
    """Plotly uninstalled, as far as imports can tell (a None entry makes `import plotly...` raise ImportError)."""
    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly", None)


def test_without_plotly_it_says_how_to_install_it(no_plotly):
    assert not plotly_available()
    with pytest.raises(PlotlyMissing, match=r"compmech\[plot\]") as err:
        belief_simplex(beliefs())
    assert INSTALL_HINT in str(err.value) and isinstance(err.value, ImportError)


needs_plotly = pytest.mark.skipif(not plotly_available(), reason="plotly (the [plot] extra) is not installed")


@needs_plotly
def test_hover_shows_the_context_its_probability_and_belief():
    b = beliefs(4)
    contexts = ["A", "AB", "ABC", "C"]
    fig = belief_simplex(
        b,
        b + 0.01,
        contexts=contexts,
        probabilities=[0.5, 0.25, 0.125, 0.125],
        state_names=["s0", "s1", "s2"],
        title="mess3",
    )
    import plotly.graph_objects as go

    assert isinstance(fig, go.Figure)
    true, probed = [t for t in fig.data if t.mode == "markers"]
    assert list(true.text) == contexts and list(probed.text) == contexts
    np.testing.assert_allclose(np.asarray(true.customdata)[:, 0], [0.5, 0.25, 0.125, 0.125])
    np.testing.assert_allclose(np.asarray(true.customdata)[:, 1:4], b, atol=1e-6)  # float32 on the page
    np.testing.assert_allclose(np.asarray(probed.customdata)[:, 4:7], b + 0.01, atol=1e-6)
    assert "context <b>%{text}</b>" in true.hovertemplate and "P(context)" in true.hovertemplate
    assert "s0 %{customdata[1]:.3f}" in true.hovertemplate
    assert "probed (s0 %{customdata[4]:.3f}" in probed.hovertemplate and "probed" not in true.hovertemplate
    # the points sit where the static figures put them: the 2-simplex, coloured RGB = belief
    np.testing.assert_allclose(np.c_[true.x, true.y], belief_frame(b).apply(b), atol=1e-6)
    assert true.marker.color[0] == "rgb({},{},{})".format(*np.rint(b[0] * 255).astype(int))


@needs_plotly
def test_frames_follow_the_static_figures():
    b4 = beliefs(s=4)
    tetra = belief_simplex(b4, b4)
    points = [t for t in tetra.data if t.type == "scatter3d" and t.mode == "markers"]
    assert len(points) == 2  # 3-D for four-state probability vectors: the tetrahedron
    np.testing.assert_allclose(np.c_[points[0].x, points[0].y, points[0].z], b4 @ TETRAHEDRON, atol=1e-6)
    # qubit GHMM: the Bloch disk with its outline, axes named as in the static figure
    q = np.c_[np.ones(50), 0.6 * np.cos(np.arange(50)), 0.6 * np.sin(np.arange(50))]
    frame = belief_frame(q, coordinates=(1, 2), coordinate_names=("Bloch x", "Bloch y"), outline=UNIT_CIRCLE)
    disk = belief_simplex(q, q, frame=frame)
    assert disk.layout.xaxis.title.text == "Bloch x" and disk.layout.yaxis.title.text == "Bloch y"
    assert any(t.mode == "lines" and len(t.x) == len(UNIT_CIRCLE) for t in disk.data)
    with pytest.raises(ValueError, match="three_d"):
        belief_simplex(beliefs(), three_d=True)


@needs_plotly
def test_many_points_are_a_fixed_subset_said_in_the_title():
    b = beliefs(n=500)
    fig = belief_simplex(b, max_points=100, contexts=[str(i) for i in range(500)])
    (true,) = [t for t in fig.data if t.mode == "markers"]
    assert len(true.x) == 100 and "100 of 500 contexts" in fig.layout.title.text
    again = [
        t for t in belief_simplex(b, max_points=100, contexts=[str(i) for i in range(500)]).data if t.mode == "markers"
    ][0]
    assert list(again.text) == list(true.text)  # the same subset every time


@needs_plotly
def test_the_page_is_self_contained(tmp_path):
    page = save_interactive(belief_simplex(beliefs(20), contexts=[f"ctx{i}" for i in range(20)]), tmp_path / "i.html")
    text = page.read_text()
    assert "ctx7" in text and '<script src="http' not in text  # plotly.js embedded: opens offline
    with pytest.raises(ValueError, match=".html"):
        save_interactive(belief_simplex(beliefs(5)), tmp_path / "i.png")


@needs_plotly
def test_bad_input():
    with pytest.raises(ValueError, match="contexts"):
        belief_simplex(beliefs(5), contexts=["a"])
    with pytest.raises(ValueError, match="probabilities"):
        belief_simplex(beliefs(5), probabilities=[0.1, 0.2])
    with pytest.raises(ValueError, match="predicted"):
        belief_simplex(beliefs(5), beliefs(4))
