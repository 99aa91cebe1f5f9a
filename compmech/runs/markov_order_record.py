"""markov_order.json's typed record: written by the markov_order study (one run's order-k controls), read back by
the quantum_sweep study (many runs side by side). A study never imports another study's modules, so the schema both
need lives here, as `compmech.runs.heldout_scores` does for the architectures and random_machines studies.
`read_markov_order` reads a run directory's file; run directories written before a field existed still load (the
field takes its default)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

#: The label of the probe onto the true (normalised) beliefs, the first probe of every layer.
TRUE_BELIEFS = "true beliefs"
#: The unnormalised beliefs' label and the norm-shuffled control's (`probes.norm_shuffle`).
UNNORMALIZED = "unnormalized beliefs"
NORM_SHUFFLED = "norm-shuffled beliefs"


@dataclass(frozen=True)
class TargetProbe:
    """A probe of one layer onto one target (true beliefs or a control), trained and untrained."""

    target: str  # "true beliefs", "order-k states", "order-k words", "unnormalized beliefs", "norm-shuffled beliefs"
    k: int | None  # the order (None: not an order-k target)
    dim: int  # the target's size
    r2: float  # in sample
    r2_heldout_contexts: float | None  # mean over the context-disjoint splits
    mse_heldout_contexts: float | None
    r2_shuffled_heldout_contexts: float | None  # the held-out shuffled control
    untrained_r2_heldout_contexts: float | None  # the same probe in the untrained model


@dataclass(frozen=True)
class LayerRecord:
    layer: str
    probes: list[TargetProbe]
    # per order k: the true-belief probe's held-out R² minus the order-k ceiling (> 0: more than the last k tokens give)
    margins: dict[str, float | None]
    untrained_margins: dict[str, float | None]  # the same for the untrained model

    def probe(self, target: str) -> TargetProbe | None:
        """The probe onto ``target`` (a label as in `TargetProbe.target`), None when this layer has none."""
        return next((p for p in self.probes if p.target == target), None)


@dataclass(frozen=True)
class LossRow:
    predictor: str  # "optimal", "model", "order-k"
    k: int | None
    loss: float  # nats per token over the positions that predict a token inside the context
    excess: float  # loss / optimal loss - 1


@dataclass(frozen=True)
class MarkovOrderRecord:
    """markov_order.json."""

    process: str
    orders: list[int]
    weighting: str
    n_contexts: int
    positions: str  # which positions the losses average over
    losses: list[LossRow]
    ceilings: dict[str, float]  # order k -> R² of the true beliefs from the best function of the last k tokens
    layers: list[LayerRecord]
    # order k -> the last layer's true-belief probe beats the order-k ceiling (held out vs in sample)
    verdicts: dict[str, bool | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MarkovOrderRecord:
        probe_keys = {f.name for f in fields(TargetProbe)}
        layers = [
            LayerRecord(
                layer=d["layer"],
                probes=[TargetProbe(**{k: v for k, v in p.items() if k in probe_keys}) for p in d["probes"]],
                margins=dict(d["margins"]),
                untrained_margins=dict(d["untrained_margins"]),
            )
            for d in data["layers"]
        ]
        return cls(
            process=data["process"],
            orders=list(data["orders"]),
            weighting=data["weighting"],
            n_contexts=int(data["n_contexts"]),
            positions=data["positions"],
            losses=[LossRow(**r) for r in data["losses"]],
            ceilings=dict(data["ceilings"]),
            layers=layers,
            verdicts=dict(data.get("verdicts", {})),
        )

    def loss(self, predictor: str) -> float | None:
        """The nats per token of ``predictor`` ("optimal", "model", "order-k"), None when not recorded."""
        return next((r.loss for r in self.losses if r.predictor == predictor), None)


def read_markov_order(run_dir: str | Path) -> MarkovOrderRecord:
    """The markov_order.json of a finished run with ``[studies.markov_order]``."""
    path = Path(run_dir) / "markov_order.json"
    return MarkovOrderRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
