"""Studies beyond the headline probe, one folder each, found through one registry.

Each folder ``compmech/studies/<name>/`` registers a `Study` (`compmech.studies.base`): its settings (the config
table ``[studies.<name>]``), its check, its analysis of a run, its reproduce entry. The runner, the config reader,
``compmech reproduce --only NAME``, sweeps and the CLI's help ask this registry; none keeps a list of studies.
The built-in study folders are found here by discovery (every subpackage is imported once, on the first question
to the registry), a plugin study by calling `register_study` itself.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

from compmech.studies.base import REGISTRY, Runner, Study, StudyInputs, StudyOutput, SweepPointRun, register_study

__all__ = [
    "Runner",
    "Study",
    "StudyInputs",
    "StudyOutput",
    "SweepPointRun",
    "all_studies",
    "check_studies",
    "get_study",
    "register_study",
    "run_studies",
    "study_settings",
]

_discovered = False


def _discover() -> None:
    """Import every study folder once (each registers itself): the registry's way of finding them, not a cycle
    workaround (a study folder may import the runner's records; the registry imports no study by name)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            importlib.import_module(f"{__name__}.{info.name}")


def all_studies() -> dict[str, Study]:
    """Every registered study, by name, in name order."""
    _discover()
    return dict(sorted(REGISTRY.items()))


def get_study(name: str) -> Study:
    """The study ``name``; ValueError naming the known ones otherwise.

    Examples
    --------
    >>> from compmech.studies import get_study
    >>> get_study("icl").settings.__name__
    'Settings'
    """
    studies = all_studies()
    if name not in studies:
        raise ValueError(f"unknown study {name!r}; the studies are {', '.join(studies)}")
    return studies[name]


def study_settings(name: str, table: Any) -> Any:
    """The ``Settings`` of study ``name`` from its config table (TypeError/ValueError on a bad key or value)."""
    study = get_study(name)
    if study.settings is None:
        raise ValueError(
            f"study {name!r} compares runs (compmech reproduce --only {name}); it has no "
            "[studies.<name>] table: remove it"
        )
    cls = study.settings
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(known)) or '(none)'}")
    return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in table.items()})


def check_studies(cfg: Any, source: Any, model_cfg: Any) -> None:
    """Every study's own preflight check (ValueError naming the study)."""
    for name in cfg.studies:
        try:
            get_study(name).check(cfg, source, model_cfg)
        except ValueError as exc:
            raise ValueError(f"[studies.{name}] {exc}") from None


def run_studies(inputs: StudyInputs) -> list[StudyOutput]:
    """Run the config's studies in the order named."""
    return [get_study(name).run(inputs, settings) for name, settings in inputs.cfg.studies.items()]
