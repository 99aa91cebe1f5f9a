"""Typed records handed between the phases of a run (probe -> geometry -> evolution -> figures -> summary).

Each record keeps the JSON part (what probe.json / analysis.json hold) apart from the arrays the
figures need, so nothing is stripped from a dict by a naming convention. ``to_json`` gives the
file's content.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The probe numbers recorded at each point of the training evolution.
PROBE_FIELDS = ("mse", "r2", "mse_heldout_contexts", "mse_heldout", "mse_shuffled")


class RowPredictions(Mapping):
    """layer -> in-sample predictions [R, S] row by row, kept one per context (`probes.ProbeEvaluation`) and
    spread over the rows when a layer is read: the dict of [R, S] arrays without holding all of them."""

    def __init__(self, evaluations: Mapping[str, Any]):  # layer -> probes.ProbeEvaluation
        self._evaluations = dict(evaluations)

    def __getitem__(self, layer: str) -> np.ndarray:
        return self._evaluations[layer].predictions

    def __iter__(self) -> Iterator[str]:
        return iter(self._evaluations)

    def __len__(self) -> int:
        return len(self._evaluations)


@dataclass(frozen=True, eq=False)
class ProbeOutcome:
    """The probe phase: every layer's evaluation, the rows, the predictions, and the controls.

    ``results`` are `probes.ProbeResult` by layer (input to output, "concat" last); ``data`` the rows
    (`probes.ProbeRows`, or a `probes.ProbeData` in the sampled regime: targets ``Y [R, S]``, weights, groups,
    context ids, positions; the same for every layer; no activations are kept);
    ``predictions[layer]`` the in-sample predictions ``[R, S]``; ``shuffled`` the shuffled-control
    predictions ``[R, S]`` of the figure layer. ``untrained`` holds the probe of every probed layer
    ("concat" aside) in the same model at initialisation (the same seed, before any step, the same rows and
    splits): the control that says how much of the belief geometry training put there. ``info`` holds the settings and
    sizes written beside the results in probe.json (rows, weighting, held-out protocols, regime, ...).
    """

    results: dict[str, Any]  # layer -> probes.ProbeResult
    probe_layer: str
    data: Any  # probes.ProbeRows (exact regime) or probes.ProbeData (sampled): Y, weights, groups, positions, ids
    predictions: Mapping[str, np.ndarray]  # layer -> [R, S] (a dict, or a `RowPredictions`)
    shuffled: np.ndarray  # [R, S]
    untrained: dict[str, Any] | None  # layer -> probes.ProbeResult at initialisation, or None
    info: dict[str, Any]

    @property
    def final(self) -> dict[str, Any]:
        """The probe layer's result as a JSON dict (summary.json's ``probe``)."""
        return self.results[self.probe_layer].to_dict()

    @property
    def untrained_json(self) -> dict[str, Any] | None:
        """The untrained-model control of the probe layer as a JSON dict with its layer (probe.json's
        ``untrained``), or None."""
        if self.untrained is None:
            return None
        return {"layer": self.probe_layer, **self.untrained[self.probe_layer].to_dict()}

    def to_json(self) -> dict[str, Any]:
        """probe.json: results by layer, the probe layer, the untrained control and the settings."""
        return {
            "layers": {name: res.to_dict() for name, res in self.results.items()},
            "probe_layer": self.probe_layer,
            "untrained": self.untrained_json,
            "untrained_by_layer": None
            if self.untrained is None
            else {name: res.to_dict() for name, res in self.untrained.items()},
            **self.info,
        }


@dataclass(frozen=True, eq=False)
class GeometryResult:
    """How the probed beliefs of one layer relate to the true beliefs and to next-token distributions.

    Over the distinct contexts: R² of pairwise distances between probed beliefs against distances
    between true beliefs and between optimal next-token distributions, and the mixed states as clusters.
    """

    layer: str
    n_contexts: int
    n_belief_states: int
    distance_r2_beliefs: float
    distance_r2_next_token: float
    n_pairs: int
    next_token_distances_proportional_to_beliefs: bool
    next_token_distance_scale: float | None
    next_token_geometry_note: str
    distances: dict[str, np.ndarray]  # "probed", "beliefs", "next_token" -> [n_pairs] sampled pair distances
    labels: np.ndarray  # [n] mixed-state cluster of each distinct context
    beliefs: np.ndarray  # [n, S] true beliefs of the distinct contexts
    probed: np.ndarray  # [n, S] their probed images

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "n_contexts": self.n_contexts,
            "n_belief_states": self.n_belief_states,
            "distance_r2_beliefs": self.distance_r2_beliefs,
            "distance_r2_next_token": self.distance_r2_next_token,
            "n_pairs": self.n_pairs,
            "next_token_distances_proportional_to_beliefs": self.next_token_distances_proportional_to_beliefs,
            "next_token_distance_scale": self.next_token_distance_scale,
            "next_token_geometry_note": self.next_token_geometry_note,
        }


@dataclass(frozen=True, eq=False)
class EvolutionPoint:
    """The probe of one layer refitted at one point of training, with the snapshot for the figure."""

    tokens: int  # tokens actually seen
    step: int
    relative_loss: float
    probe: dict[str, Any]  # the `PROBE_FIELDS` of the probe result
    beliefs: np.ndarray  # [n, S] true beliefs of the distinct contexts
    probed: np.ndarray  # [n, S] their probed images at this point
    tokens_requested: int | None = None  # the checkpoint's requested token count (None: the final model)

    def to_json(self) -> dict[str, Any]:
        out = {"tokens": self.tokens}
        if self.tokens_requested is not None:
            out["tokens_requested"] = self.tokens_requested
        return {**out, "step": self.step, "relative_loss": self.relative_loss, **self.probe}


def probe_fields(result: dict[str, Any]) -> dict[str, Any]:
    """The `PROBE_FIELDS` of a probe result dict (as in probe.json)."""
    return {k: result[k] for k in PROBE_FIELDS}
