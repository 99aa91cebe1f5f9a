"""The random-machines study file (compmech/experiments/random_machines.toml): which processes are drawn, the one
model, the budgets. `load_study` reads and checks it and turns each drawn process into an ordinary
`ExperimentConfig` (its ``[process]`` table names the registered family ``random_epsilon_machine``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compmech.runs.errors import ConfigError
from compmech.runs.settings import ExperimentConfig
from compmech.runs.toml_io import read_toml

#: `Runner.from_dict` or `compmech.runs.config.config_from_dict`: a parsed config table -> `ExperimentConfig`.
BuildConfig = Callable[[Mapping[str, Any], str], ExperimentConfig]

_TOP_KEYS = (
    "name",
    "seed",
    "n_processes",
    "n_states",
    "n_tokens",
    "p",
    "alpha",
    "context_length",
    "model",
    "training",
    "probe",
    "measures",
    "quick",
)
_MEASURE_KEYS = ("n_steps", "lyapunov_steps", "max_depth", "sync_depth")


@dataclass(frozen=True)
class MachineRun:
    """One drawn process and its run: ``label`` names its run directory (``u``/``n`` for unifilar or not, its
    index, ``<S>s<V>t``), ``params`` the ``random_epsilon_machine`` parameters, ``config`` the run's config."""

    label: str
    params: dict[str, Any]
    config: ExperimentConfig

    @property
    def unifilar(self) -> bool:
        return bool(self.params["unifilar"])


@dataclass(frozen=True)
class RandomMachineStudy:
    """The study file, read: its runs in order and the measure budgets (`compmech.measures.process_info`'s)."""

    name: str
    source: str
    quick: bool
    seed: int
    context_length: int
    runs: tuple[MachineRun, ...]
    measures: dict[str, int] = field(default_factory=dict)


def _range(raw: Mapping[str, Any], key: str, src: str, low: int) -> tuple[int, int]:
    value = raw.get(key)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not low <= value[0] <= value[1]
    ):
        raise ConfigError(f"{src}: {key} must be [lo, hi], whole numbers with {low} <= lo <= hi; got {value!r}")
    return int(value[0]), int(value[1])


def _table(raw: Mapping[str, Any], key: str, src: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{src}: [{key}] must be a table; got {value!r}")
    return dict(value)


def draw_processes(seed: int, n: int, n_states: tuple[int, int], n_tokens: tuple[int, int]) -> list[dict[str, Any]]:
    """The ``random_epsilon_machine`` parameters of the study's ``n`` processes, drawn from ``default_rng(seed)``:
    sizes uniform on the ranges, process k unifilar when k is even, each its own seed. The first ``m`` of ``n``
    are the ``m`` drawn for a smaller ``n`` (so the quick study's processes are the full study's first ones)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        S = int(rng.integers(n_states[0], n_states[1] + 1))
        V = int(rng.integers(n_tokens[0], n_tokens[1] + 1))
        out.append({"n_states": S, "n_tokens": V, "seed": int(rng.integers(0, 2**31 - 1)), "unifilar": k % 2 == 0})
    return out


def label_of(k: int, params: Mapping[str, Any]) -> str:
    """``u03-4s2t``: unifilar (u) or not (n), index, states, tokens."""
    return f"{'u' if params['unifilar'] else 'n'}{k:02d}-{params['n_states']}s{params['n_tokens']}t"


def load_study(path: str | Path, build: BuildConfig, *, quick: bool = False) -> RandomMachineStudy:
    """Read and check the study file; every drawn process becomes an `ExperimentConfig` (``build``: a `Runner`'s
    ``from_dict``). Bad input raises one `ConfigError` naming the file, the key and the fix."""
    path = Path(path)
    raw = read_toml(path, "study")
    src = str(path)
    bad = sorted(set(raw) - set(_TOP_KEYS))
    if bad:
        raise ConfigError(f"{src}: unknown key {bad[0]!r}; allowed: {', '.join(_TOP_KEYS)}")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"{src}: seed must be a whole number >= 0; got {seed!r}")
    quick_table = _table(raw, "quick", src)
    bad = sorted(set(quick_table) - {"n_processes", "training", "measures"})
    if bad:
        raise ConfigError(f"{src}: [quick] unknown key {bad[0]!r}; allowed: n_processes, training, measures")
    n = quick_table.get("n_processes", raw.get("n_processes")) if quick else raw.get("n_processes")
    if not isinstance(n, int) or isinstance(n, bool) or n < 3:
        raise ConfigError(f"{src}: n_processes must be a whole number >= 3 (a rank correlation needs 3); got {n!r}")
    n_states = _range(raw, "n_states", src, 2)
    n_tokens = _range(raw, "n_tokens", src, 2)
    L = raw.get("context_length")
    if not isinstance(L, int) or isinstance(L, bool) or L < 2:
        raise ConfigError(f"{src}: context_length must be a whole number >= 2; got {L!r}")
    model = _table(raw, "model", src)
    if "context_length" in model or "kind" in model:
        raise ConfigError(f"{src}: [model] context_length and kind are set by the study; remove them")
    training = _table(raw, "training", src)
    measures = _table(raw, "measures", src)
    if quick:
        training.update(_table(quick_table, "training", f"{src} [quick]"))
        measures.update(_table(quick_table, "measures", f"{src} [quick]"))
    bad = sorted(set(measures) - set(_MEASURE_KEYS))
    if bad:
        raise ConfigError(f"{src}: [measures] unknown key {bad[0]!r}; allowed: {', '.join(_MEASURE_KEYS)}")
    extra = {k: raw[k] for k in ("p", "alpha") if k in raw}
    runs = []
    for k, params in enumerate(draw_processes(seed, n, n_states, n_tokens)):
        params = {**params, **extra}
        label = label_of(k, params)
        config_raw = {
            "name": label,
            "seed": seed,
            "process": {"name": "random_epsilon_machine", "params": params},
            "model": {"kind": "transformer", "context_length": L, **model},
            "training": training,
            "probe": _table(raw, "probe", src),
        }
        runs.append(MachineRun(label=label, params=params, config=build(config_raw, f"{src} [process {label}]")))
    return RandomMachineStudy(
        name=str(raw.get("name", path.stem)),
        source=src,
        quick=quick,
        seed=seed,
        context_length=L,
        runs=tuple(runs),
        measures={k: int(v) for k, v in measures.items()},
    )
