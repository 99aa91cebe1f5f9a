"""`compmech reproduce --only architectures`: the study file compmech/experiments/architectures.toml, every (process,
architecture) pair run and probed, then its table and grid figure (`compmech.studies.architectures.comparison`)."""

from __future__ import annotations

from pathlib import Path

from compmech.studies.architectures.comparison import run_study
from compmech.studies.architectures.study_file import load_study
from compmech.studies.base import Runner

#: The shipped study file's name (compmech/experiments/<name>.toml).
STUDY_CONFIG = "architectures"


def reproduce(out: Path, runner: Runner) -> str:
    """Run the shipped study file into ``out`` (its ``quick`` budgets under ``--quick``); return the Markdown
    (``<out>/architectures.md``: the probe table and the similarity section)."""
    study = load_study(runner.config_path(STUDY_CONFIG), runner.from_dict, quick=runner.quick)
    run_study(study, out, runner)
    return (Path(out) / "architectures.md").read_text()
