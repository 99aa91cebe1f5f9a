"""The sweep's grid: which processes, which architectures, which budgets, as ordinary `ExperimentConfig`s.

The authors' sweep (Riechers, Elliott & Shai 2025, arXiv 2507.07432; github.com/adamimos/epsilon-transformers,
``scripts/experiment_config_tom_quantum.yaml`` at commit 93959eaed1c7d9316342703d816f40f390f1155c and
``scripts/experiment_config_tom_quantum_rnn.yaml`` at 434104d753915cea435eff07f03e376c29e6e20f; beta = 2.55 in the
first at 0e5ee6d92a6724771745720dff5edaf2f1c7bb3f) trains on context 8 without a start token: post_quantum
(alpha = e, beta = 0.5), tom_quantum with alpha = 1 and beta in {sqrt(51) = 7.1414..., 3.5, 2.25, 2.55, 4.3}, fanizza
(alpha = 2000, lamb = 0.49), each with transformers (d_head 16 x 4 heads, 1/2/4 layers) and LSTM, GRU and RNN (hidden
64, 1/2/4 layers), batch 128, learning rate 1e-4, for 20,000 epochs of 200 batches. We follow its processes, context
and start-token choice. Not its models or budget, which a 2-core CPU cannot train: the
models are the architectures study's (``compmech/experiments/architectures.toml``: a 4-layer transformer and 2-layer
LSTM, GRU and RNN matched at about 143,000 parameters), its shared ``[training]`` table, and the budgets below.

Each point starts from a shipped config (``tom_quantum``, ``post_quantum``, ``fanizza``: its ``[process]`` with the
point's parameters, its ``[probe]`` and its context length), takes the kind's ``[models.<kind>]`` and the shared
``[training]`` of the architectures study file, this module's budget, ``[studies.markov_order]`` (orders 1, 2, 3 with
the norm-shuffled control) and is checked by the config reader the `Runner` hands over (``from_dict``), so every
check of an ordinary config applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import predictive_models  # a lazy package (PEP 562): only the model configs' layer names are read here
from compmech.runs.errors import ConfigError
from compmech.runs.settings import ExperimentConfig
from compmech.runs.toml_io import read_toml

#: tom_quantum's betas (alpha = 1), as the authors swept them: sqrt(51) is their 7.14142842854285.
BETAS = (2.25, 2.55, 3.5, 4.3, math.sqrt(51.0))
#: The architectures, in the table's and the figure's order.
KINDS = ("transformer", "lstm", "gru", "rnn")
#: The orders of the Markov-order-k controls.
ORDERS = (1, 2, 3)
#: The study file whose models and shared training the sweep takes.
ARCHITECTURES = "architectures"


@dataclass(frozen=True)
class SweepProcess:
    """One process of the sweep: its label (names run directories), the shipped config it starts from and the
    process parameters it sets there (the rest are the config's)."""

    label: str
    config: str
    params: Mapping[str, float] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)  # the full budget: [training] overrides
    quick: Mapping[str, Any] = field(default_factory=dict)  # the --quick budget: [training] overrides on top

    @property
    def beta(self) -> float | None:
        return float(self.params["beta"]) if self.config == "tom_quantum" and "beta" in self.params else None


#: The budgets. Full: the architectures study's tom_quantum budget (1,500 steps of 128) for every quantum process and
#: its fanizza budget (3,000 steps of 64 at 1.5e-3) for fanizza. Quick: 150 steps (fanizza 300) and one checkpoint.
_QUANTUM = {"steps": 1500, "batch_size": 128}
_FANIZZA = {"steps": 3000, "learning_rate": 1.5e-3}
_QUICK = {"warmup_steps": 20, "eval_every": 150, "checkpoint_every": 150, "steps": 150}


def _beta_label(beta: float) -> str:
    return f"tom_quantum-beta{beta:.4g}"


PROCESSES: tuple[SweepProcess, ...] = (
    *(SweepProcess(_beta_label(b), "tom_quantum", {"alpha": 1.0, "beta": b}, _QUANTUM, _QUICK) for b in BETAS),
    SweepProcess("post_quantum", "post_quantum", {}, _QUANTUM, _QUICK),
    SweepProcess(
        "fanizza", "fanizza", {}, _FANIZZA, {**_QUICK, "steps": 300, "eval_every": 300, "checkpoint_every": 300}
    ),
)


@dataclass(frozen=True)
class SweepPoint:
    """One (process, architecture) point: its ordinary config, named ``<process label>-<kind>``."""

    process: SweepProcess
    kind: str
    cfg: ExperimentConfig

    @property
    def name(self) -> str:
        return self.cfg.name


@dataclass(frozen=True)
class Models:
    """The architectures study file's ``[models.<kind>]`` tables and its shared ``[training]``."""

    models: Mapping[str, Mapping[str, Any]]
    training: Mapping[str, Any]


def read_models(path: Path) -> Models:
    """``[models.<kind>]`` and ``[training]`` of an architectures study file (a config file read, not a study's
    module imported)."""
    raw = read_toml(path, "study")
    models, training = raw.get("models"), raw.get("training", {})
    if not isinstance(models, Mapping) or not isinstance(training, Mapping):
        raise ConfigError(f"{path}: needs [models.<kind>] tables and a [training] table (an architectures study file)")
    return Models(models={k: dict(v) for k, v in models.items()}, training=dict(training))


def _probe_layer(kind: str, fields: Mapping[str, Any]) -> str:
    """The paper's probe layer of a model of ``kind`` (its name does not depend on the vocabulary)."""
    return predictive_models.probe_layer_name(predictive_models.make_config(kind, 2, **fields))


def point_config(
    process: SweepProcess,
    kind: str,
    base: Mapping[str, Any],
    models: Models,
    build: Callable[[Mapping[str, Any], str], ExperimentConfig],
    *,
    quick: bool,
    source: str,
) -> ExperimentConfig:
    """The config of one point: ``base`` (the parsed shipped config) with the process's parameters, the kind's model
    at the base's context length, the shared training with the budget, the probe at the paper's probe layer only
    (one refit per run for the held-out scores) and ``[studies.markov_order]``, checked by ``build``."""
    if kind not in models.models:
        raise ConfigError(f"{source}: no [models.{kind}] in the architectures study file; add one or drop {kind!r}")
    model = {**models.models[kind], "context_length": int(base["model"]["context_length"])}
    proc = dict(base["process"])
    proc["params"] = {**proc.get("params", {}), **process.params}
    training = {**models.training, **process.training, **(process.quick if quick else {})}
    probe = {
        **base.get("probe", {}),
        "n_repeats": 1,
        "layers": [_probe_layer(kind, model)],
        "include_concat": False,
    }
    raw = {
        "name": f"{process.label}-{kind}",
        "seed": base.get("seed", 0),
        "process": proc,
        "model": {"kind": kind, **model},
        "training": training,
        "probe": probe,
        "studies": {"markov_order": {"orders": list(ORDERS), "words": False, "n_repeats": 1, "norms": True}},
    }
    return build(raw, f"{source} [{process.label}, {kind}]")


def sweep_points(
    processes: Sequence[SweepProcess],
    kinds: Sequence[str],
    base_of: Callable[[str], tuple[Mapping[str, Any], str]],
    models: Models,
    build: Callable[[Mapping[str, Any], str], ExperimentConfig],
    *,
    quick: bool,
) -> list[SweepPoint]:
    """Every (process, kind) point, process by process (``kinds`` order within); ``base_of(config name)`` gives a
    shipped config parsed and its path."""
    points = []
    for process in processes:
        base, source = base_of(process.config)
        for kind in kinds:
            cfg = point_config(process, kind, base, models, build, quick=quick, source=source)
            points.append(SweepPoint(process=process, kind=kind, cfg=cfg))
    return points
