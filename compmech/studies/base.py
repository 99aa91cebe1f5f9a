"""The `Study` protocol, what a study gets from a run and gives back, and the registry studies add themselves to.

A study is one folder, ``compmech/studies/<name>/``, whose ``__init__.py`` registers one `Study`:

- ``settings``: a frozen dataclass of its options, the config table ``[studies.<name>]`` (every field documented
  and defaulted; checked when the config is read), or None for a study that only compares runs;
- ``check(cfg, source, model_cfg)``: raises ValueError before anything runs when the run cannot do this study;
- ``run(inputs, settings) -> StudyOutput``: the analysis of one finished model, which writes ``<name>.json``
  beside probe.json and its figures under ``figures/``; its `StudyOutput` carries the report's sections (tables,
  figures with captions) and the headline numbers summary.json records;
- ``reproduce(out, runner) -> str``: ``compmech reproduce --only <name>``: the study's runs (through the `Runner`
  it is handed, never by importing the pipeline), its tables (``<out>/<name>.md``, ``.json``) and figures;
  returns the Markdown.

Its other modules hold what that study alone needs: ``theory.py`` (imports `hmm_processes` and the theory modules
of `compmech` only), ``analysis.py``, ``plots.py``, ``reproduce.py`` and a README.md on its configs and results.
What several studies share stays in `probes` or `figures` (on arrays).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import predictive_models  # a lazy package: only its types are named here
from compmech.runs.contexts import ContextSet
from compmech.runs.records import ProbeOutcome
from compmech.runs.regime import RegimeChoice
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import Source
from compmech.runs.summary import RunSummary


@dataclass(frozen=True, eq=False)
class StudyInputs:
    """What a study gets from the run: the config, the source, the trained model, the contexts and the probe."""

    cfg: ExperimentConfig
    source: Source
    model_cfg: predictive_models.ModelConfig
    params_state: Any  # the trained parameters (an nnx.State or a pure dict of arrays)
    untrained_params: Any  # the parameters at initialisation (the untrained control), same form
    ctx: ContextSet  # every string (exact regime) or the kept sample (sampled)
    probe: ProbeOutcome
    run_dir: Path
    regime: RegimeChoice
    progress: bool = False

    @property
    def process(self) -> Any:
        """The process the config built (`Source.process`): an HMM, a generalized HMM, random Markov chains..."""
        return self.source.process


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
        return {
            "json": self.json_file,
            "figures": [str(p.relative_to(run_dir)) for p in self.figures],
            "captions": dict(self.captions),
            "tables": [list(t) for t in self.tables],
            **self.headline,
        }


@dataclass(frozen=True)
class SweepPointRun:
    """One finished point of a sweep a study ran: its run name, its grid values, its config and its run directory."""

    name: str
    values: dict[str, Any]  # dotted config key -> value
    cfg: ExperimentConfig
    run_dir: Path


class Runner(Protocol):
    """What a study's ``reproduce`` may ask of the experiment runner (`compmech.runs.reproduce` hands one over).

    Every run is reused when a finished run of the same config is in its directory, resumed when interrupted.
    """

    quick: bool  # the quick budget (`compmech reproduce --quick`)
    progress: bool

    def config_path(self, name: str) -> Path:
        """The shipped experiment config ``name`` (e.g. "icl_mess3"): compmech/experiments/<name>.toml."""
        ...

    def load(self, path: Path, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
        """Read and check a config file, with dotted-key ``overrides``."""
        ...

    def from_dict(self, raw: Mapping[str, Any], source: str) -> ExperimentConfig:
        """Check a parsed config table (``source`` names it in errors)."""
        ...

    def check(self, cfg: ExperimentConfig, run_dir: Path) -> None:
        """Everything a run needs, checked before any run starts (raises `compmech.runs.errors.ConfigError`)."""
        ...

    def finished(self, cfg: ExperimentConfig, run_dir: Path) -> RunSummary | None:
        """The summary of a finished run of ``cfg`` in ``run_dir``, else None."""
        ...

    def run(self, cfg: ExperimentConfig, run_dir: Path) -> RunSummary:
        """The run of ``cfg`` in ``run_dir``: the finished one, else run now."""
        ...

    def sweep(self, path: Path, out_dir: Path) -> list[SweepPointRun]:
        """Run the sweep file ``path`` into ``out_dir`` (its table, figure and page too); its points, in order."""
        ...

    def say(self, text: str) -> None:
        """A progress line on stderr (nothing when progress is off)."""
        ...


@dataclass(frozen=True)
class Study:
    """One study behind the registry (see the module docstring)."""

    name: str
    summary: str  # one line: what it runs and what it writes (the CLI's help and the docs)
    settings: type | None = None  # the [studies.<name>] options; None: not an analysis inside a run
    check: Callable[[ExperimentConfig, Source, Any], None] | None = None
    run: Callable[[StudyInputs, Any], StudyOutput] | None = None
    reproduce: Callable[[Path, Runner], str] | None = None


#: Every study registered so far, by name (`compmech.studies` discovers the built-in ones first).
REGISTRY: dict[str, Study] = {}


def register_study(study: Study) -> Study:
    """Add ``study`` to the registry (a study folder's ``__init__`` calls this; so can a plugin). Returns it.

    Examples
    --------
    A study folder's ``__init__.py`` ends with::

        STUDY = register_study(Study(name="mine", summary="...", settings=Settings, check=check, run=run,
                                     reproduce=reproduce))
    """
    if not study.name.isidentifier():
        raise ValueError(f"a study's name must be an identifier (it names [studies.<name>]); got {study.name!r}")
    if study.run is not None and (study.settings is None or study.check is None):
        raise ValueError(f"study {study.name!r}: a study that runs inside a run needs settings and check too")
    REGISTRY[study.name] = study
    return study
