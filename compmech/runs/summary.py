"""summary.json: a finished run's headline numbers, as one typed record (`RunSummary`), the schema in one place.

`compmech run` writes it (`RunSummary.to_json`) before the report; `compmech report`, the CLI's printout, reproduce,
sweeps and the studies' reproduce tables read it back (`read_summary`). Run directories written before a field
existed still load: a missing field takes its default (None, or an empty table).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compmech.runs.errors import RunDirError

SUMMARY_JSON = "summary.json"


@dataclass(frozen=True)
class ProcessName:
    """The process a run trained on: its registered name and parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSize:
    """The model a run trained: its kind ("transformer", "rnn", ...) and its number of scalar parameters."""

    kind: str
    n_params: int


@dataclass(frozen=True)
class RunSummary:
    """Everything summary.json holds, field by field (JSON values: numbers, strings, lists and tables).

    The probe records (``probe``, ``probe_untrained``, the entries of ``probe_mse_by_layer``) are
    `probes.ProbeResult.to_dict` tables; ``geometry`` is `compmech.runs.records.GeometryResult.to_json`;
    ``evolution`` a list of `compmech.runs.records.EvolutionPoint.to_json`; ``studies`` maps each study's name to
    `compmech.studies.StudyOutput.to_json` (its files, captions, tables and headline numbers).
    """

    name: str
    process: ProcessName
    steps: int
    tokens: int
    source: dict[str, Any] = field(default_factory=dict)  # compmech.runs.sources.SourceTraits.to_json
    command: str = ""  # the command that made the run
    cwd: str = ""  # the command's paths are relative to this directory
    model: ModelSize | None = None
    final_loss: float | None = None  # nats, mean over positions
    optimal_loss: float | None = None  # nats, mean over positions
    relative_loss: float | None = None  # final / optimal
    relative_loss_stderr: float | None = None  # sampled regime; None when exact
    # a Monte-Carlo floor: the final loss over the validation sample's own Bayes loss (paired; >= 1)
    relative_loss_paired: float | None = None
    regime: str = "exact"  # "exact" | "sampled"
    regime_sizes: dict[str, Any] = field(
        default_factory=dict
    )  # compmech.runs.regime.RegimeChoice.to_json and the floor's
    # a generalized HMM whose words could be checked (probabilities >= 0) only up to this length, fewer than the run
    # uses (`compmech.runs.sources.Source.check_words`); None: every word the run uses was checked (or an HMM)
    process_checked_depth: int | None = None
    probe_layer: str | None = None
    probe: dict[str, Any] = field(default_factory=dict)  # the probe layer's result
    probe_untrained: dict[str, Any] | None = None  # the untrained-model control of the probe layer
    probe_mse_by_layer: dict[str, float] = field(default_factory=dict)
    analysis_layer: str | None = None
    geometry: dict[str, Any] = field(default_factory=dict)
    evolution: list[dict[str, Any]] = field(default_factory=list)
    paper: dict[str, Any] = field(default_factory=dict)  # the paper's numbers for this process, where it has them
    figures: list[str] = field(default_factory=list)  # relative to the run directory
    studies: dict[str, dict[str, Any]] = field(default_factory=dict)
    memory_estimate_bytes: int | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float | None = None
    train_wall_seconds: float | None = None  # this call's training (0 when it was all done before)
    # the training's own clock over every call that trained this run (resumes included; for seeds that a sweep
    # trained together, their shared step's time)
    train_elapsed_seconds: float | None = None
    compiles: dict[str, Any] = field(default_factory=dict)  # XLA programs compiled or loaded (compmech.runs.compiles)
    # where it ran: compmech and library versions, the CPU, XLA flags, devices (compmech.runs.environment)
    environment: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """summary.json's content, in field order."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["process"] = dataclasses.asdict(self.process)
        out["model"] = None if self.model is None else dataclasses.asdict(self.model)
        return {key: out[key] for key in _JSON_ORDER}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSummary:
        """A summary.json table (written by any version: missing fields take their defaults; unknown ones are
        ignored). Raises ValueError naming the field when a required one is missing or of the wrong type."""
        if not isinstance(data, dict):
            raise ValueError(f"must be a JSON object (a table of fields); got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key, kind in (("name", str), ("steps", int), ("tokens", (int, float)), ("process", dict)):
            if key not in values:
                raise ValueError(f"has no {key!r}")
            if not isinstance(values[key], kind) or isinstance(values[key], bool):
                raise ValueError(f"{key!r} is {values[key]!r}, not a {getattr(kind, '__name__', 'number')}")
        process = values["process"]
        values["process"] = ProcessName(name=str(process.get("name", "?")), params=dict(process.get("params") or {}))
        model = values.get("model")
        values["model"] = (
            None
            if not isinstance(model, dict)
            else ModelSize(kind=str(model.get("kind", "transformer")), n_params=int(model.get("n_params", 0)))
        )
        return cls(**values)


#: summary.json's key order (the order `compmech run` has always written them).
_JSON_ORDER = (
    "name",
    "process",
    "source",
    "command",
    "cwd",
    "model",
    "steps",
    "tokens",
    "final_loss",
    "optimal_loss",
    "relative_loss",
    "relative_loss_stderr",
    "relative_loss_paired",
    "regime",
    "regime_sizes",
    "process_checked_depth",
    "probe_layer",
    "probe",
    "probe_untrained",
    "probe_mse_by_layer",
    "analysis_layer",
    "geometry",
    "evolution",
    "paper",
    "figures",
    "studies",
    "memory_estimate_bytes",
    "phase_seconds",
    "wall_seconds",
    "train_wall_seconds",
    "train_elapsed_seconds",
    "compiles",
    "environment",
)


def read_summary(run_dir: str | Path) -> RunSummary:
    """The `RunSummary` of a run directory. Raises `RunDirError` naming the file when it is missing or damaged."""
    path = Path(run_dir) / SUMMARY_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(
            f"{path} is missing (an unfinished run?); finish the run first: compmech run CONFIG "
            f"--out {Path(run_dir)} (the same command resumes it)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunDirError(f"{path} cannot be read ({exc}); rerun the run to rewrite it") from None
    try:
        return RunSummary.from_json(data)
    except (TypeError, ValueError) as exc:
        raise RunDirError(f"{path} is damaged: it {exc}; rerun the run to rewrite it") from None
