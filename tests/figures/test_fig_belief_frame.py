"""The frame of a belief set: simplex for probability vectors, named coordinates, else principal axes."""

import numpy as np
import pytest

from figures import (
    UNIT_CIRCLE,
    FigureInputError,
    belief_frame,
    plot_belief_evolution,
    plot_belief_panels,
    simplex_coords,
)


def bloch_beliefs(n=400, seed=0):
    """Quasi-beliefs (1, x, y) with (x, y) in the unit disc, like tom_quantum's."""
    rng = np.random.default_rng(seed)
    r, phi = np.sqrt(rng.random(n)), rng.random(n) * 2 * np.pi
    return np.stack([np.ones(n), r * np.cos(phi), r * np.sin(phi)], axis=1)


def test_probability_vectors_get_the_simplex():
    b = np.random.default_rng(0).dirichlet(np.ones(3), size=50)
    f = belief_frame(b)
    assert f.simplex
    np.testing.assert_allclose(f.apply(b), simplex_coords(b), atol=1e-15)
    np.testing.assert_allclose(f.colors(b), b)


def test_quasi_beliefs_get_their_principal_axes_fitted_on_the_true_set():
    b = bloch_beliefs()
    f = belief_frame(b)
    assert f.kind == "principal" and f.axis_labels[0] == "principal axis 1 of the belief set"
    # the constant entry carries no variance: the two drawn axes span the Bloch plane
    assert np.allclose(f.axes[0, :2], 0.0, atol=1e-12)
    xy = f.apply(b)
    np.testing.assert_allclose(
        np.linalg.norm(xy, axis=1), np.linalg.norm(b[:, 1:] - b[:, 1:].mean(0), axis=1), atol=1e-12
    )
    # the same map for other arrays (probed, shuffled): applied, not refitted
    shifted = b + np.array([0.0, 0.5, 0.0])
    np.testing.assert_allclose(np.linalg.norm(f.apply(shifted) - xy, axis=1), 0.5, atol=1e-12)


def test_named_coordinates_and_their_outline():
    b = bloch_beliefs()
    f = belief_frame(b, coordinates=(1, 2), coordinate_names=("Bloch x", "Bloch y"), outline=UNIT_CIRCLE)
    assert f.kind == "coordinates" and f.axis_labels == ("Bloch x", "Bloch y")
    np.testing.assert_allclose(f.apply(b), b[:, 1:])
    fig = plot_belief_panels(b, 0.9 * b, frame=f)
    assert fig.axes[0].get_xlabel() == "Bloch x" and fig.axes[0].get_ylabel() == "Bloch y"
    assert len(fig.axes[0].lines) == 1  # the unit circle
    evo = plot_belief_evolution([("a", b, 0.5 * b), ("b", b, 0.9 * b)], frame=f)
    assert all(ax.get_xlabel() == "Bloch x" for ax in evo.axes)
    with pytest.raises(FigureInputError, match="coordinates"):
        belief_frame(b, coordinates=(1, 3), coordinate_names=("a", "b"))
    with pytest.raises(FigureInputError, match="coordinate_names"):
        belief_frame(b, coordinates=(1, 2))


def test_quasi_beliefs_of_three_entries_are_not_drawn_in_a_simplex():
    b = bloch_beliefs()
    fig = plot_belief_panels(b, b)
    assert fig.axes[0].get_xlabel() == "principal axis 1 of the belief set"
    assert not [t for t in fig.axes[0].texts if t.get_text().startswith("state")]
