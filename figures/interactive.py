"""Interactive belief figures (Plotly, the optional extra ``compmech[plot]``): rotate, zoom, hover over a point.

`belief_simplex` draws true and probed beliefs in the frame the static figures use (`figures.belief_frame`):
the 2-simplex for three-state beliefs (RGB = belief, the paper's colouring), the Bloch disk or the principal
axes otherwise, and a regular tetrahedron in 3-D for four-state probability vectors. Hovering a point shows its
context string, the context's probability and its belief (and, on a probed point, the probe's prediction).
It returns a ``plotly.graph_objects.Figure`` (shown inline in a notebook); `save_interactive` writes it as one
self-contained HTML page (plotly.js embedded: it opens offline).

Plotly is imported when a function here is called, never at import: without it everything else in `figures`
works, and these functions raise `PlotlyMissing` saying how to install it (`plotly_available` asks first).
Array-in like the rest of `figures`; imports nothing from the other compmech packages.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from figures._common import FigureInputError, as_array, same_shape
from figures.belief_frame import BeliefFrame, belief_frame, is_probability_set
from figures.io import write_atomic

#: At most this many points per trace in an interactive figure: above it a fixed random subset (seed 0) is drawn
#: and the title says so. 20,000 points with their hover text keep a page at a few MB that a browser pans smoothly.
MAX_POINTS = 20_000
#: The install hint every refusal carries.
INSTALL_HINT = "pip install 'compmech[plot]' (or pip install plotly)"
#: A regular tetrahedron with unit edges: the corners of the 3-simplex of four-state beliefs, [4, 3].
TETRAHEDRON = np.array(
    [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, np.sqrt(3.0) / 2.0, 0.0], [0.5, np.sqrt(3.0) / 6.0, np.sqrt(2.0 / 3.0)]]
)


class PlotlyMissing(ImportError):
    """An interactive figure was asked for but plotly is not installed; the message says how to install it."""


def plotly_available() -> bool:
    """True when plotly can be imported (the ``[plot]`` extra is installed)."""
    try:
        _import_go()
    except PlotlyMissing:
        return False
    return True


def _import_go():
    """plotly.graph_objects, or `PlotlyMissing` naming the extra."""
    try:
        import plotly.graph_objects as go  # optional: imported on first use, so figures works without it
    except ImportError:
        raise PlotlyMissing(f"interactive figures need plotly, which is not installed: {INSTALL_HINT}") from None
    return go


def _rgb_strings(colors: np.ndarray) -> list[str]:
    """[n, 3] colours in [0, 1] -> ['rgb(r,g,b)', ...] (what plotly takes per point)."""
    c = np.rint(np.clip(colors, 0.0, 1.0) * 255).astype(int)
    return [f"rgb({r},{g},{b})" for r, g, b in c]


def _belief_template(prefix: str, n_states: int, column: int, names: Sequence[str]) -> str:
    entries = ", ".join(f"{names[i]} %{{customdata[{column + i}]:.3f}}" for i in range(n_states))
    return f"{prefix} ({entries})"


def belief_simplex(
    true_beliefs,  # [n, S]
    predicted=None,  # [n, S] or None: the probe's predictions of the same rows
    *,
    contexts: Sequence[str] | None = None,  # [n] each row's context string, shown on hover
    probabilities=None,  # [n] each context's probability, shown on hover (None: not known, e.g. sampled rows)
    state_names: Sequence[str] | None = None,  # [S] names of the belief entries (simplex corners)
    frame: BeliefFrame | None = None,  # the 2-D frame (default belief_frame(true_beliefs)); not for the 3-D view
    three_d: bool | None = None,  # the tetrahedron; default: four-state probability vectors without a frame
    title: str | None = None,
    predicted_name: str = "probe",
    max_points: int = MAX_POINTS,
) -> Any:
    """True (and probed) beliefs as an interactive Plotly figure, coloured by the TRUE belief (see the module
    docstring); the legend toggles each set. Returns a ``plotly.graph_objects.Figure``.

    Hover: the context string (``contexts``), its probability (``probabilities``) and its true belief; a probed
    point adds the prediction. More than ``max_points`` rows: a fixed random subset (seed 0), said in the title.
    Raises `PlotlyMissing` without plotly, `FigureInputError` for arrays of the wrong shape.
    """
    go = _import_go()
    from plotly.subplots import make_subplots  # optional, as above

    true = as_array("true_beliefs", true_beliefs, 2)
    n, S = true.shape
    if S < 2:
        raise FigureInputError(f"true_beliefs must have at least 2 columns (states), got {S}")
    pred = None
    if predicted is not None:
        pred = as_array("predicted", predicted, 2)
        same_shape("predicted", pred, "true_beliefs", true)
    if contexts is not None:
        contexts = [str(c) for c in contexts]
        if len(contexts) != n:
            raise FigureInputError(f"contexts has {len(contexts)} entries but true_beliefs has {n} rows")
    probs = None
    if probabilities is not None:
        probs = as_array("probabilities", probabilities, 1)
        if probs.shape != (n,):
            raise FigureInputError(f"probabilities has shape {probs.shape}; it must be ({n},), one per row")
    names = [f"s{i}" for i in range(S)] if state_names is None else [str(s) for s in state_names]
    if len(names) != S:
        raise FigureInputError(f"state_names has {len(names)} entries but the beliefs have {S} states")
    if not isinstance(max_points, int) or max_points < 1:
        raise FigureInputError(f"max_points must be a positive integer, got {max_points!r}")

    keep = np.arange(n)
    if n > max_points:
        keep = np.sort(np.random.default_rng(0).choice(n, size=max_points, replace=False))
    tetra = (frame is None and S == 4 and is_probability_set(true)) if three_d is None else bool(three_d)
    if tetra and S != 4:
        raise FigureInputError(f"three_d draws four-state beliefs in a tetrahedron; these have {S} states")
    if tetra:
        project = lambda b: b @ TETRAHEDRON  # noqa: E731  [n, 4] -> [n, 3]
        xyz = project(true)
        span = np.ptp(xyz, axis=0)
        colors = (xyz - xyz.min(axis=0)) / np.where(span > 1e-12, span, 1.0)
    else:
        frame = frame if frame is not None else belief_frame(true)
        project = frame.apply
        colors = frame.colors(true)

    # customdata per row: [probability, true belief (S), predicted belief (S)]; float32 halves the page
    data = np.full((n, 1 + 2 * S), np.nan, dtype=np.float32)
    if probs is not None:
        data[:, 0] = probs
    data[:, 1 : 1 + S] = true
    if pred is not None:
        data[:, 1 + S :] = pred
    text = contexts if contexts is not None else [f"row {i}" for i in range(n)]
    head = "context <b>%{text}</b>" + ("<br>P(context) = %{customdata[0]:.3g}" if probs is not None else "")
    true_hover = head + "<br>" + _belief_template("belief", S, 1, names)
    pred_hover = true_hover + "<br>" + _belief_template("probed", S, 1 + S, names)

    sets = [("true beliefs", true, true_hover)] + ([(predicted_name, pred, pred_hover)] if pred is not None else [])
    kind = "scene" if tetra else "xy"
    fig = make_subplots(
        rows=1,
        cols=len(sets),
        specs=[[{"type": kind}] * len(sets)],
        subplot_titles=[label for label, _, _ in sets],
        horizontal_spacing=0.04,
    )
    for col, (label, beliefs, hover) in enumerate(sets, start=1):
        pts = project(beliefs[keep]).astype(np.float32)
        marker = dict(color=_rgb_strings(colors[keep]), size=3 if tetra else 4, opacity=0.85 if tetra else 0.8)
        common = dict(
            mode="markers",
            name=label,
            marker=marker,
            customdata=data[keep],
            showlegend=False,
            text=[text[i] for i in keep],
            hovertemplate=hover + f"<extra>{label}</extra>",
        )
        if tetra:
            fig.add_trace(go.Scatter3d(x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], **common), row=1, col=col)
            _tetrahedron(go, fig, names, col)
        else:
            fig.add_trace(go.Scattergl(x=pts[:, 0], y=pts[:, 1], **common), row=1, col=col)
            assert frame is not None  # set above where the view is not a tetrahedron
            _plane(go, fig, frame, names, col, project(true), None if pred is None else project(pred))

    shown = f"{keep.size:,} of {n:,} contexts (a random subset)" if keep.size < n else f"{n:,} contexts"
    note = f"{shown}; colour = the true belief; hover a point for its context"
    heading = f"{title}<br><sup>{note}</sup>" if title else note
    fig.update_layout(
        title=dict(text=heading, x=0.5),
        template="simple_white",
        hoverlabel=dict(font_family="monospace"),
        margin=dict(l=40, r=20, t=90, b=40),
        height=560,
        width=None if pred is None else 1100,
    )
    return fig


def _plane(
    go, fig, frame: BeliefFrame, names: list[str], col: int, true_xy: np.ndarray, pred_xy: np.ndarray | None
) -> None:
    """Panel ``col``: equal axes matched with the first panel's (zoom one, both follow); the triangle and its named
    corners (simplex), or the frame's outline and axis names."""
    match = {} if col == 1 else dict(matches="x")
    if frame.simplex:
        corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0], [0.0, 0.0]])
        fig.add_trace(
            go.Scatter(
                x=corners[:, 0],
                y=corners[:, 1],
                mode="lines",
                line=dict(color="#333", width=1.2),
                hoverinfo="skip",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        for (x, y), name in zip(corners[:3], names):
            fig.add_annotation(
                x=x,
                y=y,
                text=name,
                showarrow=False,
                yshift=-12 if y == 0 else 12,
                xshift=-10 if x == 0 else 10 if x == 1 else 0,
                row=1,
                col=col,
            )
        fig.update_xaxes(visible=False, range=[-0.16, 1.16], row=1, col=col, **match)
        fig.update_yaxes(
            visible=False,
            range=[-0.13, np.sqrt(3.0) / 2.0 + 0.1],
            scaleanchor=f"x{'' if col == 1 else col}",
            scaleratio=1,
            row=1,
            col=col,
            **({} if col == 1 else dict(matches="y")),
        )
        return
    if frame.outline is not None:
        fig.add_trace(
            go.Scatter(
                x=frame.outline[:, 0],
                y=frame.outline[:, 1],
                mode="lines",
                line=dict(color="#555", width=1),
                hoverinfo="skip",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
    fig.update_xaxes(title_text=frame.axis_labels[0], zeroline=False, row=1, col=col, **match)
    fig.update_yaxes(
        title_text=frame.axis_labels[1] if col == 1 else None,
        zeroline=False,
        scaleanchor=f"x{'' if col == 1 else col}",
        scaleratio=1,
        row=1,
        col=col,
        **({} if col == 1 else dict(matches="y")),
    )


def _tetrahedron(go, fig, names: list[str], col: int) -> None:
    """Panel ``col``: the tetrahedron's six edges and its named corners, no axes (the corners say what the space is),
    seen from a corner that shows all four."""
    edges = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    xs, ys, zs = [], [], []
    for i, j in edges:
        for k in (i, j):
            xs.append(TETRAHEDRON[k, 0])
            ys.append(TETRAHEDRON[k, 1])
            zs.append(TETRAHEDRON[k, 2])
        xs.append(None)
        ys.append(None)
        zs.append(None)
    fig.add_trace(
        go.Scatter3d(
            x=xs, y=ys, z=zs, mode="lines", line=dict(color="#333", width=3), hoverinfo="skip", showlegend=False
        ),
        row=1,
        col=col,
    )
    fig.add_trace(
        go.Scatter3d(
            x=TETRAHEDRON[:, 0],
            y=TETRAHEDRON[:, 1],
            z=TETRAHEDRON[:, 2],
            mode="text",
            text=names,
            textposition="top center",
            hoverinfo="skip",
            showlegend=False,
        ),
        row=1,
        col=col,
    )
    hidden = dict(visible=False, showbackground=False)
    fig.update_scenes(
        xaxis=hidden,
        yaxis=hidden,
        zaxis=hidden,
        aspectmode="data",
        camera=dict(eye=dict(x=0.9, y=-1.7, z=0.9)),
        row=1,
        col=col,
    )


def save_interactive(fig: Any, path) -> Path:
    """Write a Plotly figure as one self-contained HTML page (plotly.js embedded, so it opens offline), atomically
    (`figures.io.write_atomic`). Returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".html":
        raise FigureInputError(f"path must end in .html, got {str(path)!r}")
    html = fig.to_html(include_plotlyjs=True, full_html=True, config={"displaylogo": False, "responsive": True})
    return write_atomic(path, lambda handle: handle.write(html.encode("utf-8")))
