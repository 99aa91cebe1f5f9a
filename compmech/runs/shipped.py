"""The experiment configs and example process specs that ship with compmech (package data, found through
`importlib.resources`, so they work from an installed wheel in any directory as from the checkout).

``compmech run mess3`` runs the shipped config ``mess3``; ``compmech configs`` lists them all; a study's reproduce
entry asks for its configs by name (`compmech.studies.Runner.config_path`).
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from compmech.runs.errors import ConfigError

#: The config `compmech run` runs when given none: the paper's Mess3 experiment.
DEFAULT_NAME = "mess3"


def config_dir() -> Path:
    """The folder of the shipped experiment configs (compmech/experiments/ in the checkout and in a wheel)."""
    return Path(str(importlib.resources.files("compmech") / "experiments"))


def process_dir() -> Path:
    """The folder of the shipped example process specs (compmech/experiments/processes/)."""
    return config_dir() / "processes"


@dataclass(frozen=True)
class Shipped:
    """One shipped TOML file: its name (the file's stem), path, kind and first comment line."""

    name: str
    path: Path
    kind: str  # "experiment" | "sweep" | "study" | "process spec"
    about: str  # the file's first comment line, without "#"


def _describe(path: Path, kind: str) -> Shipped:
    first = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            first = line.lstrip("# ").strip()
            break
    text = path.read_text(encoding="utf-8")
    if kind == "experiment" and "\n[sweep]" in text:
        kind = "sweep"
    elif kind == "experiment" and ("\n[processes." in text or "\nn_processes = " in text):  # a study file
        kind = "study"
    return Shipped(path.stem, path, kind, first)


def shipped() -> list[Shipped]:
    """Every shipped config (experiments, sweeps, study files) and example process spec, by name."""
    configs = [_describe(p, "experiment") for p in sorted(config_dir().glob("*.toml"))]
    specs = [_describe(p, "process spec") for p in sorted(process_dir().glob("*.toml"))]
    return configs + specs


def config_path(name: str) -> Path:
    """The shipped experiment config ``name`` (its file's stem, e.g. "mess3"). Raises `ConfigError` listing them."""
    path = config_dir() / f"{name}.toml"
    if not path.is_file():
        names = ", ".join(s.name for s in shipped() if s.kind != "process spec")
        raise ConfigError(
            f"no shipped config named {name!r}; the shipped ones are {names} (compmech configs lists "
            "them), or pass the path of your own TOML file"
        )
    return path


def resolve(arg: str | Path | None) -> Path:
    """What a command's CONFIG argument names: an existing file, else a shipped config's name (``mess3``), else
    `ConfigError`; None: the default config."""
    if arg is None:
        return config_path(DEFAULT_NAME)
    path = Path(arg)
    if path.exists() or path.suffix == ".toml" or len(path.parts) > 1:
        return path  # a path: the reader says what is wrong with it, if anything
    return config_path(str(arg))


def add_configs_command(subparsers) -> None:
    """Add ``configs``: list the shipped experiment configs, sweeps, study files and example process specs."""
    p = subparsers.add_parser(
        "configs",
        help="list the experiment configs and process specs that ship with compmech",
        description="The shipped TOML files: run one by name (compmech run mess3), or copy its path and edit your own.",
    )
    p.set_defaults(func=_cmd_configs)


def _cmd_configs(args) -> int:
    rows = shipped()
    width = max(len(s.name) for s in rows)
    for kind in ("experiment", "sweep", "study", "process spec"):
        group = [s for s in rows if s.kind == kind]
        if not group:
            continue
        print(
            {
                "experiment": "experiments (compmech run NAME)",
                "sweep": "sweeps (compmech sweep PATH)",
                "study": "study files (compmech reproduce --only NAME)",
                "process spec": "example process specs ([process] spec = PATH)",
            }[kind]
            + ":"
        )
        for s in group:
            print(f"  {s.name:<{width}}  {s.about}")
            print(f"  {'':<{width}}  {s.path}")
    return 0
