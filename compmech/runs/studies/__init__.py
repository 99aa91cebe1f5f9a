"""Studies: analyses a run does after its probe, each a module plus a config table, none a branch in the runner.

A config names the studies it wants as tables ``[studies.<name>]`` (an empty table takes the defaults). Each
study module (registered in `STUDIES`) provides

- ``Settings``: a frozen dataclass of its options (every field documented and defaulted), checked when the
  config is read;
- ``check(cfg, process, model_cfg) -> None``: raises ``ValueError`` before anything runs when the run cannot
  do this study (e.g. the factored study needs a product process);
- ``run(inputs: StudyInputs, settings) -> StudyOutput``: the analysis itself, which writes ``<name>.json``
  beside probe.json and its figures under ``figures/``.

The runner calls `run_studies` after the probe phase; summary.json records each study's headline numbers,
and the report shows its tables and figures with their captions.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

#: Every study a config can name, with the module that implements it.
STUDIES: dict[str, str] = {"factored": "compmech.runs.studies.factored", "icl": "compmech.runs.studies.icl",
                          "cbu": "compmech.runs.studies.cbu"}


def study_module(name: str) -> ModuleType:
    """The module of study ``name``; ValueError naming the known ones otherwise."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; the studies are {', '.join(sorted(STUDIES))}")
    return importlib.import_module(STUDIES[name])


@dataclass(frozen=True, eq=False)
class StudyInputs:
    """What a study gets from the run: the config, the process, the trained model, the contexts and the probe."""

    cfg: Any  # compmech.runs.config.ExperimentConfig
    process: Any  # HMM | GeneralizedHMM
    model_cfg: Any  # predictive_models.ModelConfig
    params_state: Any  # the trained parameters
    untrained_params: Any  # the parameters at initialisation (the untrained control)
    ctx: Any  # compmech.runs.experiment.ContextSet: every string (exact regime) or the kept sample (sampled)
    probe: Any  # compmech.runs.records.ProbeOutcome
    run_dir: Path
    regime: str  # "exact" | "sampled"
    progress: bool = False


@dataclass(frozen=True)
class StudyOutput:
    """What a study wrote, for summary.json and the report."""

    name: str
    json_file: str  # relative to the run directory, e.g. "factored.json"
    figures: tuple[Path, ...] = ()
    captions: dict[str, str] = field(default_factory=dict)  # figure file stem -> caption
    # report tables: (title, column headers, rows, note)
    tables: tuple[tuple[str, list[str], list[list[Any]], str], ...] = ()
    headline: dict[str, Any] = field(default_factory=dict)  # plain JSON numbers for summary.json

    def to_json(self, run_dir: Path) -> dict[str, Any]:
        return {"json": self.json_file, "figures": [str(p.relative_to(run_dir)) for p in self.figures],
                "captions": dict(self.captions), "tables": [list(t) for t in self.tables], **self.headline}


def study_settings(name: str, table: Any) -> Any:
    """The ``Settings`` of study ``name`` from its config table (TypeError/ValueError on a bad key or value)."""
    cls = study_module(name).Settings
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(known)) or '(none)'}")
    return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in table.items()})


def check_studies(cfg: Any, process: Any, model_cfg: Any) -> None:
    """Every study's own preflight check (ValueError naming the study)."""
    for name in cfg.studies:
        try:
            study_module(name).check(cfg, process, model_cfg)
        except ValueError as exc:
            raise ValueError(f"[studies.{name}] {exc}") from None


def run_studies(inputs: StudyInputs) -> list[StudyOutput]:
    """Run the config's studies in the order named."""
    return [study_module(name).run(inputs, settings) for name, settings in inputs.cfg.studies.items()]
