"""Plots of a finished run in one call, for a notebook: ``compmech.plot.simplex(run, layer=...)``.

    import compmech
    run = compmech.load_run("runs/mess3")              # or compmech.run("mess3", overrides={...})
    compmech.plot.simplex(run)                          # the interactive belief simplex, the paper's probe layer
    compmech.plot.simplex(run, layer="final_ln")        # any probed layer (run.layer_names)

Each function takes a `compmech.runs.run_dir.Run` and returns a figure that a notebook shows inline. The interactive
ones need plotly (the ``[plot]`` extra: ``pip install 'compmech[plot]'``) and raise
`figures.interactive.PlotlyMissing` saying so without it.

``compmech.plot`` is this module: compmech's lazy map (``compmech/__init__.py``) exports it by that name. It lives
in the runner's layer because it reads a run (config, model, contexts); the top level of compmech holds the theory
only (ARCHITECTURE.md).
"""

from __future__ import annotations

import sys
from typing import Any

import predictive_models  # a lazy package (PEP 562): JAX is imported when the model is first used
from compmech.runs.run_dir import Run
from compmech.runs.run_figures import interactive_simplex
from compmech.runs.sources import source_of
from figures.interactive import MAX_POINTS


def simplex(run: Run, layer: str | None = None, *, max_points: int = MAX_POINTS, title: str | None = None) -> Any:
    """The interactive belief simplex of ``run`` (a Plotly figure): every distinct context's true belief beside the
    linear probe's prediction from ``layer`` (default: the paper's probe layer; any of ``run.layer_names``), in the
    frame of the run's static figures — the 2-simplex for three hidden states, a tetrahedron in 3-D for four, the
    Bloch disk of a qubit GHMM, the principal axes otherwise. Hover a point for its context string, the context's
    probability and the beliefs. The probe is fitted as the run fitted it (`Run.fit_probe`).

    Parameters
    ----------
    run : a finished run, from `compmech.load_run` or `compmech.run` (exact regime: every context enumerable).
    layer : the probed layer, e.g. "block_4" or "final_ln"; None for the paper's.
    max_points : at most this many contexts are drawn (a fixed random subset above it, said in the title).
    title : the figure's title (default: the process and the layer).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    layer = layer or predictive_models.probe_layer_name(run.model_config)
    fit = run.fit_probe(layer)
    return interactive_simplex(
        source_of(run.process),
        run.contexts,
        fit.data,
        fit.predictions,
        layer,
        exact=True,
        max_points=max_points,
        title=title,
    )


#: This module under the name compmech's lazy map exports (``compmech.plot`` -> ``compmech.runs.plot``).
plot = sys.modules[__name__]
