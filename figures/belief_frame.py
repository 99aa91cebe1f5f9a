"""The frame a belief set is drawn in: the simplex for probability vectors, else its own principal axes.

A belief panel shows points of a belief set (true beliefs, probe predictions, a shuffled control)
in one 2-D frame. The frame is chosen and fitted on the TRUE beliefs only, then applied
identically to every panel, so a probe that misses shows up as points off the true set:

- ``"simplex"``: three-state probability vectors (entries >= 0, rows summing to 1; HMM beliefs) go
  to the 2-simplex, x = b1 + b2/2, y = (√3/2) b2, coloured RGB = (b0, b1, b2).
- ``"coordinates"``: chosen entries of the belief vector, named by the caller, e.g. the two Bloch
  coordinates of the "tom quantum" process, whose belief is (1, Bloch coordinates); drawn with an
  outline given by the caller (the unit circle: the edge of the Bloch disk).
- ``"principal"``: any other belief set (quasi-probability vectors of a generalized HMM, HMMs with
  more states): the first two principal axes of the true beliefs about their mean.

Points are coloured by the true belief's position in the frame (its first three scores, each
rescaled to [0, 1]; RGB = belief on the simplex), so a good probe reproduces the colour pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from figures._common import FigureInputError, as_array

SQRT3_2 = np.sqrt(3.0) / 2.0
#: Rows count as probability vectors when every entry is >= -PROBABILITY_ATOL and each row sums to 1 within it.
PROBABILITY_ATOL = 1e-6
#: The unit circle (the edge of the Bloch disk), [129, 2], for ``outline``.
UNIT_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 129)), np.sin(np.linspace(0, 2 * np.pi, 129))], axis=1)


@dataclass(frozen=True, eq=False)
class BeliefFrame:
    """A fitted 2-D frame for belief vectors [n, S]: ``apply`` maps them to points [n, 2] (see the module docstring)."""

    kind: str  # "simplex" | "coordinates" | "principal"
    mean: np.ndarray  # [S], subtracted before projecting (zeros for "simplex" and "coordinates")
    axes: np.ndarray  # [S, m], m <= 3: columns 0 and 1 are drawn, all m colour the points
    axis_labels: tuple[str, str]  # what the x and y axes are ("" for the simplex, whose corners are named)
    outline: np.ndarray | None = None  # [k, 2] a curve drawn with the points (the Bloch disk's edge), or None

    @property
    def simplex(self) -> bool:
        """True when the frame is the 2-simplex (draw the triangle, name its corners)."""
        return self.kind == "simplex"

    def scores(self, beliefs) -> np.ndarray:
        """[n, S] -> [n, m] coordinates along every axis of the frame."""
        b = as_array("beliefs", beliefs, 2)
        if b.shape[1] != self.mean.shape[0]:
            raise FigureInputError(
                f"beliefs have {b.shape[1]} columns but the frame was fitted on {self.mean.shape[0]}"
            )
        return (b - self.mean) @ self.axes

    def apply(self, beliefs) -> np.ndarray:
        """[n, S] -> [n, 2] points in the frame (the same map for true, probed and shuffled beliefs)."""
        s = self.scores(beliefs)
        out = np.zeros((s.shape[0], 2))
        out[:, : min(2, s.shape[1])] = s[:, :2]
        return out

    def colors(self, true_beliefs) -> np.ndarray:
        """[n, S] true beliefs -> [n, 3] RGB: the belief itself on the simplex, else the frame scores rescaled to
        [0, 1]."""
        if self.simplex:
            return np.clip(as_array("true_beliefs", true_beliefs, 2), 0.0, 1.0)
        s = self.scores(true_beliefs)
        colors = np.full((s.shape[0], 3), 0.5)
        for j in range(min(3, s.shape[1])):
            lo, hi = s[:, j].min(), s[:, j].max()
            if hi - lo > 1e-12:
                colors[:, j] = (s[:, j] - lo) / (hi - lo)
        return colors


def is_probability_set(beliefs) -> bool:
    """True when every row of ``beliefs`` [n, S] is a probability vector (within `PROBABILITY_ATOL`)."""
    b = as_array("beliefs", beliefs, 2)
    return bool(np.all(b >= -PROBABILITY_ATOL) and np.all(np.abs(b.sum(axis=1) - 1.0) <= PROBABILITY_ATOL))


def belief_frame(
    true_beliefs,
    *,
    coordinates: Sequence[int] | None = None,
    coordinate_names: Sequence[str] | None = None,
    outline=None,
) -> BeliefFrame:
    """Choose and fit the frame of a belief set on its TRUE beliefs [n, S] (see the module docstring).

    ``coordinates``: two (or three) indices of the belief vector to draw as they are, named by
    ``coordinate_names`` (required with them; e.g. ``(1, 2)`` and ``("Bloch coordinate 1", ...)``),
    with ``outline`` [k, 2] drawn beside the points (e.g. `UNIT_CIRCLE`). Without them: the simplex
    for three-state probability vectors, else the first principal axes (at most 3) of the set.
    """
    true = as_array("true_beliefs", true_beliefs, 2)
    n, S = true.shape
    if S < 2:
        raise FigureInputError(f"true_beliefs must have at least 2 columns (states), got {S}")
    if coordinates is not None:
        idx = [int(i) for i in coordinates]
        if not 2 <= len(idx) <= 3 or min(idx) < 0 or max(idx) >= S:
            raise FigureInputError(f"coordinates must be 2 or 3 indices in 0..{S - 1}; got {list(coordinates)}")
        if coordinate_names is None or len(coordinate_names) < 2:
            raise FigureInputError("coordinate_names must name at least the two drawn coordinates")
        axes = np.eye(S)[:, idx]
        line = None if outline is None else as_array("outline", outline, 2)
        return BeliefFrame("coordinates", np.zeros(S), axes, (str(coordinate_names[0]), str(coordinate_names[1])), line)
    if S == 3 and is_probability_set(true):
        # x = b1 + b2 / 2, y = (√3/2) b2, written as a linear map
        axes = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, SQRT3_2]])
        return BeliefFrame("simplex", np.zeros(3), axes, ("", ""))
    mean = true.mean(axis=0)
    _, _, vt = np.linalg.svd(true - mean, full_matrices=False)
    axes = vt[:3].T  # [S, m]
    signs = np.sign(axes[np.argmax(np.abs(axes), axis=0), np.arange(axes.shape[1])])
    axes = axes * np.where(signs == 0, 1.0, signs)
    return BeliefFrame(
        "principal", mean, axes, ("principal axis 1 of the belief set", "principal axis 2 of the belief set")
    )
