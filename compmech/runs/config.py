"""Experiment configs: a TOML file -> a validated `compmech.runs.settings.ExperimentConfig`, every default filled in.

Unknown keys and bad values raise `ConfigError` with one line naming the file, the key and the fix. The records
themselves (and `set_dotted`, `quick_steps`) live in `compmech.runs.settings`; they are re-exported here, the
reader's module, for callers that want one import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import predictive_models  # a lazy package (PEP 562): JAX is imported only when a model config is built
from compmech import studies
from compmech.runs import shipped
from compmech.runs.errors import ConfigError
from compmech.runs.settings import (
    FAMILY_KINDS,
    MAX_DPI,
    PROCESS_KINDS,
    RANDOM_MARKOV_KEYS,
    REGIMES,
    WEIGHTS_ATOL,
    DataSettings,
    ExperimentConfig,
    FigureSettings,
    ProbeSettings,
    ProcessSettings,
    TrackingSettings,
    process_settings,
    quick_steps,
    set_dotted,
)
from compmech.runs.toml_io import read_toml

__all__ = [
    "DEFAULT_CONFIG",
    "FAMILY_KINDS",
    "MAX_DPI",
    "PROCESS_KINDS",
    "RANDOM_MARKOV_KEYS",
    "REGIMES",
    "WEIGHTS_ATOL",
    "ConfigError",
    "DataSettings",
    "ExperimentConfig",
    "FigureSettings",
    "ProbeSettings",
    "ProcessSettings",
    "TrackingSettings",
    "config_from_dict",
    "load_config",
    "process_settings",
    "quick_steps",
    "read_toml",
    "set_dotted",
    "table_settings",
]

#: The config `compmech run` runs when given none (`compmech.runs.shipped`: the shipped configs).
DEFAULT_CONFIG = shipped.config_path(shipped.DEFAULT_NAME)


_TOP_KEYS = {"name", "seed", "process", "data", "model", "training", "probe", "figures", "studies", "tracking"}


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate a TOML experiment config; ``overrides`` maps "section.key" (or "seed", "name") to values."""
    path = Path(path)
    raw = read_toml(path, "config")
    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value)
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: Mapping[str, Any], source: str = "<config>") -> ExperimentConfig:
    """Validate a parsed config mapping (see `load_config`)."""
    unknown = sorted(set(raw) - _TOP_KEYS)
    if "sweep" in unknown:
        raise ConfigError(f"{source}: its [sweep] table makes this a sweep file: run it with compmech sweep {source}")
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key {unknown[0]!r}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    name = raw.get("name", Path(source).stem if source != "<config>" else "experiment")
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ "):
        raise ConfigError(f"{source}: name must be a non-empty string without spaces or slashes; got {name!r}")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ConfigError(f"{source}: seed must be an integer in [0, 2**32); got {seed!r}")
    if "process" not in raw:
        raise ConfigError(f'{source}: missing [process] table; add e.g. [process] name = "mess3"')

    try:
        process = process_settings(raw["process"])
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    model = _model_fields(raw.get("model", {}), source)
    training = _fields_of(predictive_models.TrainConfig, raw.get("training", {}), "training", source, exclude={"seed"})
    data = _section(DataSettings, raw.get("data", {}), "data", source)
    probe = _section(ProbeSettings, raw.get("probe", {}), "probe", source)
    figures = _section(FigureSettings, raw.get("figures", {}), "figures", source)
    studies = _studies(raw.get("studies", {}), source)
    tracking = _section(TrackingSettings, raw.get("tracking", {}), "tracking", source)
    cfg = ExperimentConfig(
        name=name,
        seed=seed,
        process=process,
        model=model,
        training=training,
        probe=probe,
        figures=figures,
        source=source,
        data=data,
        studies=studies,
        tracking=tracking,
    )
    # Build the library configs once so that their own checks run now, not mid-experiment.
    try:
        cfg.model_config(vocab_size=2)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: [model] {exc}") from None
    try:
        cfg.train_config()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: [training] {exc}") from None
    return cfg


def _studies(table: Any, source: str) -> dict[str, Any]:
    """[studies.<name>] tables -> {name: that study's Settings}, in the order written."""
    if not isinstance(table, Mapping) or not all(isinstance(v, Mapping) for v in table.values()):
        raise ConfigError(f"{source}: [studies] must hold one table per study, e.g. [studies.factored]")
    out = {}
    for name, sub in table.items():
        try:
            out[name] = studies.study_settings(name, sub)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: [studies.{name}] {exc}") from None
    return out


def _model_fields(table: Any, source: str) -> dict[str, Any]:
    """[model]: its ``kind`` (default "transformer") and the fields of that family's config, defaults filled in."""
    from predictive_models.models import config_class, kinds  # the family registry, read now: plugins count

    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [model] must be a table of key = value pairs")
    kind = table.get("kind", "transformer")
    if kind not in kinds():
        raise ConfigError(f"{source}: [model] kind must be one of {', '.join(repr(k) for k in kinds())}; got {kind!r}")
    rest = {k: v for k, v in table.items() if k != "kind"}
    return {"kind": kind, **_fields_of(config_class(kind), rest, "model", source, exclude={"vocab_size", "kind"})}


def _check_types(cls: type, table: Any, section: str, source: str, exclude: set[str]) -> dict[str, Any]:
    """Unknown keys and values whose type differs from the field default's are errors."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [{section}] must be a table of key = value pairs")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in exclude}
    for key, value in table.items():
        if key not in fields:
            raise ConfigError(f"{source}: unknown key [{section}] {key!r}; allowed: {', '.join(fields)}")
        f = fields[key]
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )  # type: ignore[misc]
        if not _type_ok(default, value, str(f.type)):
            want = "a number" if isinstance(default, float) else type(default).__name__
            if "int | str" in str(f.type):
                want = "a string or an integer"
            if isinstance(default, tuple):
                want = "a list"
            if default is None:
                want = "a string" if "str" in str(f.type) else "a number"
            raise ConfigError(f"{source}: [{section}] {key} must be {want}; got {value!r}")
    out = {}
    for key, value in table.items():
        default = fields[key].default
        out[key] = (
            tuple(value)
            if isinstance(default, tuple)
            else (float(value) if isinstance(default, float) and not isinstance(value, bool) else value)
        )
    return out


def _type_ok(default: Any, value: Any, annotation: str) -> bool:
    """Whether ``value`` from TOML has the type of the field (its default, or its annotation if None)."""
    if "int | str" in annotation:  # e.g. [training] devices = "all" | N
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    if default is None:  # optional field: a string (e.g. [process] spec) or a number (e.g. grad_clip)
        if "str" in annotation:
            return isinstance(value, str)
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (tuple, list)):
        return isinstance(value, list)
    if isinstance(default, str):
        return isinstance(value, str)
    return isinstance(value, type(default))


def _fields_of(cls: type, table: Any, section: str, source: str, exclude: set[str]) -> dict[str, Any]:
    """The keys of ``table`` checked against ``cls``'s fields; defaults filled in from ``cls``."""
    given = _check_types(cls, table, section, source, exclude)
    resolved = {}
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        if f.name in given:
            resolved[f.name] = given[f.name]
        elif f.default is not dataclasses.MISSING:
            resolved[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            resolved[f.name] = f.default_factory()  # type: ignore[misc]
        else:
            raise ConfigError(f"{source}: [{section}] {f.name} is required")
    return resolved


def table_settings(cls: type, table: Any, section: str, source: str) -> Any:
    """A TOML table checked against the dataclass ``cls`` (unknown keys, types, then ``cls``'s own checks), as every
    section of a config is: one `ConfigError` naming the file, the table and the key."""
    return _section(cls, table, section, source)


def _section(cls: type, table: Any, section: str, source: str) -> Any:
    values = _check_types(cls, table, section, source, exclude=set())
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: [{section}] {exc}") from None
