"""Which regime a run uses: exact (every allowed context string enumerated with its theory) or sampled (sampled
sequences with their exact beliefs), chosen before anything runs (`choose_regime`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from compmech.runs.errors import ConfigError
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import Source
from probes import N_FOLDS

#: Probe sequences kept, with their activations, for the belief figures and the geometry (the first ones).
FIGURE_SEQUENCES = 1000


@dataclass(frozen=True)
class RegimeChoice:
    """Which regime a run uses and why: the bound on its context strings against the cap, and the sizes."""

    name: str  # "exact" | "sampled"
    strings_bound: float  # upper bound on the allowed context strings (word_counts, at most V^L; inf if huge)
    max_exact_strings: int
    requested: str  # the config's [data] regime ("auto", "exact" or "sampled")
    validation_sequences: int | None = None  # sampled only
    probe_sequences: int | None = None  # sampled only
    chunk_rows: int | None = None  # sampled only
    n_folds: int | None = None  # sampled only: folds of each held-out split
    figure_sequences: int | None = None  # sampled only

    @property
    def sampled(self) -> bool:
        return self.name == "sampled"

    def to_json(self) -> dict[str, Any]:
        bound = self.strings_bound
        return {
            "name": self.name,
            "requested": self.requested,
            "strings_bound": None if not math.isfinite(bound) else (int(bound) if bound < 2**53 else float(bound)),
            "max_exact_strings": self.max_exact_strings,
            "validation_sequences": self.validation_sequences,
            "probe_sequences": self.probe_sequences,
            "chunk_rows": self.chunk_rows,
            "n_folds": self.n_folds,
            "figure_sequences": self.figure_sequences,
        }


def choose_regime(cfg: ExperimentConfig, source: Source, context_length: int) -> RegimeChoice:
    """The regime of a run: [data] regime, or under "auto" exact iff the strings' bound
    (`Source.strings_bound`) <= max_exact_strings.

    A source without an exact theory of every context (random Markov chains: `SourceTraits.exact_regime`)
    runs sampled; asking for "exact" raises `ConfigError`.
    """
    data = cfg.data
    bound = source.strings_bound(context_length - 1 if data.bos else context_length)
    name = data.regime if data.regime != "auto" else ("exact" if bound <= data.max_exact_strings else "sampled")
    if not source.traits.exact_regime:
        if data.regime == "exact":
            raise ConfigError(
                f'{cfg.source}: [data] regime = "exact" enumerates every context with the mixed-state '
                f"theory of an HMM; {source.name} is no HMM (its Bayes predictor is closed-form): "
                'use regime = "sampled" or "auto"'
            )
        name = "sampled"
    if name == "exact":
        return RegimeChoice("exact", bound, data.max_exact_strings, data.regime)
    return RegimeChoice(
        "sampled",
        bound,
        data.max_exact_strings,
        data.regime,
        validation_sequences=data.validation_sequences,
        probe_sequences=data.probe_sequences,
        chunk_rows=data.chunk_rows,
        n_folds=N_FOLDS,
        figure_sequences=min(FIGURE_SEQUENCES, data.probe_sequences),
    )
