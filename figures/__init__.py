"""Figures for belief-state geometry: simplex fractals, training curves, per-layer probe errors.

Every plotting function returns a `matplotlib.figure.Figure` built without pyplot (no display
needed); `save_figure` writes it atomically. Plain arrays and dicts in; imports nothing from
the other compmech packages.
"""

from figures._common import (
    FigureInputError,
    category_palette,
    format_count,
    layer_label,
    process_title,
    sci,
    token_axis,
)
from figures.belief_frame import UNIT_CIRCLE, BeliefFrame, belief_frame
from figures.io import save_figure
from figures.layers import plot_layer_mse
from figures.simplex import belief_colors, plot_belief_panels, simplex_coords
from figures.training import plot_loss_by_position, plot_training_curve

__all__ = [
    "BeliefFrame",
    "FigureInputError",
    "UNIT_CIRCLE",
    "belief_colors",
    "belief_frame",
    "category_palette",
    "format_count",
    "layer_label",
    "plot_belief_panels",
    "plot_layer_mse",
    "plot_loss_by_position",
    "plot_training_curve",
    "process_title",
    "save_figure",
    "sci",
    "simplex_coords",
    "token_axis",
]

from figures.evolution import plot_belief_evolution, plot_probe_over_training  # noqa: E402
from figures.geometry import plot_distance_scatter, plot_state_pca  # noqa: E402

__all__ += ["plot_belief_evolution", "plot_distance_scatter", "plot_probe_over_training", "plot_state_pca"]
