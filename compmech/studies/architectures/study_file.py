"""The architecture study's file (``compmech/experiments/architectures.toml``; its format is documented at its top):
read, checked, and turned into one ordinary `ExperimentConfig` per (process, kind) pair.

Every pair's config is built by the config reader handed in (``build``: `compmech.runs.config.config_from_dict`, or
a `Runner`'s ``from_dict``), so every check of an ordinary config applies to it. Bad input is one `ConfigError`
naming the file, the key and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import predictive_models  # a lazy package (PEP 562): only its list of model kinds is read here
from compmech.runs.errors import ConfigError
from compmech.runs.heldout_scores import LayerScores
from compmech.runs.settings import ExperimentConfig
from compmech.runs.summary import RunSummary
from compmech.runs.toml_io import read_toml

#: Builds an `ExperimentConfig` from a parsed config table and its source label (`Runner.from_dict`).
BuildConfig = Callable[[Mapping[str, Any], str], ExperimentConfig]

_TOP_KEYS = ("name", "seed", "kinds", "models", "training", "probe", "processes")
_PROCESS_KEYS = ("process", "context_length", "training", "training_by_kind", "quick", "probe")


@dataclass(frozen=True)
class StudyRun:
    """One (process, kind) pair of a study: its label and its ordinary experiment config."""

    process: str  # the key of its [processes.<name>] table
    kind: str  # "transformer" | "rnn" | "gru" | "lstm"
    config: ExperimentConfig  # named "<process>-<kind>"

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class ArchitectureStudy:
    """A loaded study file: the runs in the order they run (process by process, ``kinds`` order within)."""

    name: str
    source: str  # the study file
    quick: bool  # built with each process's ``quick`` training overrides
    processes: tuple[str, ...]
    kinds: tuple[str, ...]
    runs: tuple[StudyRun, ...]


@dataclass(frozen=True)
class _Shared:
    """What the study file's top level gives every run: its name, seed, kinds, model tables, training and probe."""

    name: str
    seed: Any  # checked by the config reader with each run
    kinds: list[str]
    models: Mapping[str, Any]  # kind -> that kind's [model] fields
    training: dict[str, Any]
    probe: dict[str, Any]


def _table(value: Any, where: str, example: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table, e.g. {example}; got {value!r}")
    return value


def _unknown(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    bad = sorted(set(table) - set(allowed))
    if bad:
        raise ConfigError(f"{where}: unknown key {bad[0]!r}; allowed: {', '.join(allowed)}")


def _shared(raw: Mapping[str, Any], path: Path, src: str) -> _Shared:
    """The top level of the study file, checked: name, seed, kinds, one [models.<kind>] per kind, [training],
    [probe]."""
    KINDS = predictive_models.KINDS
    _unknown(raw, _TOP_KEYS, src)
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ "):
        raise ConfigError(f"{src}: name must be a non-empty string without spaces or slashes; got {name!r}")
    seed = raw.get("seed", 0)
    kinds = raw.get("kinds")
    if (
        not isinstance(kinds, list)
        or not kinds
        or not all(isinstance(k, str) for k in kinds)
        or len(set(kinds)) != len(kinds)
    ):
        raise ConfigError(
            f"{src}: kinds must be a non-empty list of distinct model kinds, e.g. "
            f'kinds = ["transformer", "lstm", "gru", "rnn"]; got {kinds!r}'
        )
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ConfigError(f"{src}: kinds: {bad[0]!r} is not a model kind; choose from {', '.join(KINDS)}")
    models = _table(raw.get("models"), f"{src}: models", "[models.gru] n_layers = 2, d_hidden = 108")
    for kind in kinds:
        if kind not in models:
            raise ConfigError(
                f"{src}: no [models.{kind}] table; add one with that kind's [model] fields "
                f"(sizes; context_length comes from each process)"
            )
        model = _table(models[kind], f"{src}: [models.{kind}]", "n_layers = 2")
        for key in ("kind", "context_length"):
            if key in model:
                raise ConfigError(
                    f"{src}: [models.{kind}] {key} is set by the study (the table's name / each "
                    f"process's context_length); remove it"
                )
    extra = sorted(set(models) - set(kinds))
    if extra:
        raise ConfigError(f"{src}: [models.{extra[0]}] names a kind not in kinds; add it to kinds or remove the table")
    training = dict(_table(raw.get("training", {}), f"{src}: [training]", "learning_rate = 3e-3"))
    probe = dict(_table(raw.get("probe", {}), f"{src}: [probe]", "n_repeats = 2"))
    return _Shared(name=name, seed=seed, kinds=kinds, models=models, training=training, probe=probe)


def _process_runs(
    pname: str, ptable: Any, shared: _Shared, src: str, build: BuildConfig, quick: bool
) -> list[StudyRun]:
    """One [processes.<pname>] table, checked, as one run per kind (its config built by ``build``)."""
    where = f"{src} [processes.{pname}]"
    if any(c in pname for c in "/\\ "):
        raise ConfigError(f"{where}: the process label must have no spaces or slashes (it names run directories)")
    ptable = _table(ptable, where, 'process = { name = "mess3" }, context_length = 10')
    _unknown(ptable, _PROCESS_KEYS, where)
    for key in ("process", "context_length"):
        if key not in ptable:
            raise ConfigError(
                f"{where}: missing {key}; add e.g. "
                + ('process = { name = "mess3", params = { x = 0.05 } }' if key == "process" else "context_length = 10")
            )
    if "quick" not in ptable:
        raise ConfigError(
            f"{where}: missing quick (the --quick training overrides); add e.g. quick = {{ steps = 500 }}"
        )
    kinds = shared.kinds
    by_kind = _table(
        ptable.get("training_by_kind", {}),
        f"{where} training_by_kind",
        "training_by_kind = { rnn = { learning_rate = 1e-2 } }",
    )
    unknown_kinds = sorted(set(by_kind) - set(kinds))
    if unknown_kinds:
        raise ConfigError(
            f"{where} training_by_kind: {unknown_kinds[0]!r} is not one of the study's kinds "
            f"({', '.join(kinds)}); remove it or add it to kinds"
        )
    runs = []
    for kind in kinds:
        train = {
            **shared.training,
            **_table(ptable.get("training", {}), f"{where} training", "{ steps = 3000 }"),
            **_table(by_kind.get(kind, {}), f"{where} training_by_kind.{kind}", "{ learning_rate = 1e-2 }"),
        }
        if quick:
            train.update(_table(ptable["quick"], f"{where} quick", "{ steps = 500 }"))
        config_raw = {
            "name": f"{pname}-{kind}",
            "seed": shared.seed,
            "process": ptable["process"],
            "model": {"kind": kind, "context_length": ptable["context_length"], **shared.models[kind]},
            "training": train,
            "probe": {**shared.probe, **_table(ptable.get("probe", {}), f"{where} probe", "{ n_repeats = 2 }")},
        }
        # the source names the study file first: a spec path in [process] is found beside it
        cfg = build(config_raw, f"{src} [processes.{pname}, kind {kind}]")
        runs.append(StudyRun(process=pname, kind=kind, config=cfg))
    return runs


def load_study(path: str | Path, build: BuildConfig, *, quick: bool = False) -> ArchitectureStudy:
    """Read and validate a study file; every (process, kind) pair becomes an `ExperimentConfig` (``build``: the
    config reader, `compmech.runs.config.config_from_dict`, or a `Runner`'s ``from_dict``).

    Bad input raises one `ConfigError` naming the file, the key and the fix. With ``quick``, each
    process's ``quick`` table overrides its training (the ``--quick`` budget).
    """
    path = Path(path)
    raw = read_toml(path, "study")
    src = str(path)
    shared = _shared(raw, path, src)
    processes = _table(
        raw.get("processes"), f"{src}: processes", '[processes.mess3] process = { name = "mess3" }, context_length = 10'
    )
    if not processes:
        raise ConfigError(f"{src}: no [processes.<name>] table; add at least one")
    runs = [
        run for pname, ptable in processes.items() for run in _process_runs(pname, ptable, shared, src, build, quick)
    ]
    return ArchitectureStudy(
        name=shared.name,
        source=src,
        quick=quick,
        processes=tuple(processes),
        kinds=tuple(shared.kinds),
        runs=tuple(runs),
    )


@dataclass(frozen=True, eq=False)
class FinishedRun:
    """One pair of the study, run: its run directory, summary and probe.json, its config as the directory records
    it (every default resolved), and its probes scored as the table compares them."""

    run: StudyRun
    run_dir: Path
    summary: RunSummary
    probe: dict[str, Any]  # the run's probe.json
    config: ExperimentConfig  # read back from run_dir/config.toml
    scores: Mapping[str, LayerScores]  # every probed layer and "concat" (`compmech.runs.heldout_scores`)
