"""The `Source` protocol: what the runner asks of a data source, written once.

A run's source wraps the process a config builds (an HMM or generalized HMM, mixtures and products included; the
random-Markov-chain family; or a family a user registers). Every phase of a run asks its source, never the
process's type: what the probe target is (`SourceTraits`), how to sample training data (`training_data`) and
probe/validation blocks (`sample_block`), whether and how every context can be enumerated (`strings_bound`,
`context_set`), the optimal loss by position (`optimal_loss`), the next-token law a belief implies
(`next_token_laws`) and whether next-token distances are belief distances up to scale (`distance_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from compmech.runs.contexts import ContextSet, SampledBlock


@dataclass(frozen=True)
class BeliefCoordinates:
    """Belief entries that are named coordinates (drawn as such, e.g. a qubit's Bloch coordinates)."""

    entries: tuple[int, ...]  # the belief entries drawn, e.g. (1, 2)
    names: tuple[str, ...]  # an axis label per entry
    outline: str | None = None  # "unit_circle": the set lies in the unit disc of these coordinates


@dataclass(frozen=True)
class SourceTraits:
    """What kind of source a run has and what its probe target ("beliefs") is."""

    kind: str  # "HMM" | "GeneralizedHMM" | "random_markov" | a registered family's name
    belief_size: int  # S: entries of the probe target (hidden states; k*k for random Markov chains)
    belief_names: tuple[str, ...] | None  # a name per entry, or None
    belief_label: str  # the probe target in words, for titles and records
    exact_regime: bool  # every context can be enumerated with its exact theory (False: the sampled regime only)
    # The entries the belief figures draw (None: all of them). Random Markov chains: row 0 of the posterior
    # mean, a point of the (k-1)-simplex (the full k*k mean is a product of k simplices, not one simplex).
    figure_columns: tuple[int, ...] | None = None
    figure_label: str = ""  # what the figures draw, when figure_columns picks a part ("" otherwise)
    optimal_loss_method: str = "exact"  # "exact" (myopic entropies) | "monte_carlo" (with a standard error)
    belief_coordinates: BeliefCoordinates | None = None  # named belief coordinates the figures draw, if any

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "belief_size": self.belief_size,
            "belief_label": self.belief_label,
            "exact_regime": self.exact_regime,
            "figure_columns": None if self.figure_columns is None else list(self.figure_columns),
            "figure_label": self.figure_label,
            "optimal_loss_method": self.optimal_loss_method,
        }

    def figure_view(self, beliefs: np.ndarray) -> np.ndarray:
        """[n, S] -> [n, S'] the entries the belief figures draw (`figure_columns`; every entry when None)."""
        return beliefs if self.figure_columns is None else np.asarray(beliefs)[:, list(self.figure_columns)]

    @property
    def figure_names(self) -> tuple[str, ...] | None:
        """Names of the entries `figure_view` keeps (the simplex corners' labels)."""
        if self.figure_columns is None or self.belief_names is None:
            return self.belief_names
        return tuple(self.belief_names[i] for i in self.figure_columns)


@dataclass(frozen=True, eq=False)
class OptimalLoss:
    """The Bayes-optimal cross-entropy at each model position, and how it was obtained."""

    values: np.ndarray  # [T] nats
    stderr: np.ndarray  # [T] its standard error (zeros when exact)
    method: str  # "exact" (myopic entropies) | "monte_carlo" (over the source's prior)
    exact_depth: int | None = None  # exact: tokens enumerated exactly (beyond it h(L) is held at its last value)


@runtime_checkable
class Source(Protocol):
    """What a run needs of its data source. Implement it for a new kind of source and register it with
    `compmech.runs.sources.register_source` (the built-in ones: `HMMSource`, `MarkovChainsSource`).

    Every array follows the project's alignment: entry ``t`` belongs to the model's position ``t``, after it has
    read ``tokens[:, : t + 1]``; with a start token (``bos``) position 0 is the start token (id V) and its belief
    the prior.
    """

    process: Any  # the process object the config built
    traits: SourceTraits

    @property
    def name(self) -> str: ...

    @property
    def params(self) -> dict[str, Any]: ...

    @property
    def vocab_size(self) -> int: ...

    def identity(self) -> tuple:
        """A hashable value equal for two sources that sample the same way (the training draw compiles once)."""
        ...

    def sample_tokens(self, key: Any, n: int, length: int) -> Any:
        """Training tokens [n, length] int32 from a `jax.random` key: a pure, JAX-traceable function."""
        ...

    def strings_bound(self, length: int) -> float:
        """An upper bound on the allowed words of ``length`` (inf when huge): the regime's choice."""
        ...

    # Optional: ``check_words(length) -> float``, the word length up to which the source is known to define
    # probabilities >= 0 (inf: every length), raising ProcessError otherwise; `HMMSource` checks a generalized
    # HMM's words with it. A source without it is taken as valid (the runner asks with getattr).

    def context_set(self, context_length: int, bos: bool) -> ContextSet:
        """Every allowed string of the context length with its exact theory (sources with ``exact_regime``)."""
        ...

    def sample_block(self, key: Any, n: int, context_length: int, bos: bool) -> SampledBlock:
        """``n`` sequences of the model's length from one key, with their exact beliefs and next-token laws."""
        ...

    def optimal_loss(self, context_length: int, bos: bool) -> OptimalLoss:
        """The Bayes-optimal loss at each model position (exact where it can be, else with its error)."""
        ...

    def next_token_laws(self, beliefs: np.ndarray, last_tokens: np.ndarray | None) -> np.ndarray:
        """[n, V] the optimal next-token law each belief [n, S] implies (``last_tokens`` [n]: each context's last
        token, for sources whose law needs it)."""
        ...

    def distance_scale(self) -> float | None:
        """The factor by which next-token laws scale every belief distance, or None when they do not."""
        ...

    def matrices_record(
        self, spec_file: str | None, composition: str | None, spec_files: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """process.json's content (the labelled matrices, `compmech.runs.processes.ProcessRecord`), or None for a
        source without matrices."""
        ...


@dataclass(frozen=True, eq=False)
class SourceData:
    """The training data of a source: a pure, JAX-traceable function (key, n, length) -> tokens [n, length] int32
    (with ``bos``: the start token, id V, then length - 1 sampled tokens).

    Two of them compare equal when they sample the same source the same way (`Source.identity`), so the trainer's
    jitted draw (cached per data function) compiles once per source, not once per run."""

    source: Source
    bos: bool = False

    def _identity(self) -> tuple:
        return (self.source.identity(), self.bos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SourceData) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __call__(self, key, n: int, length: int):
        import jax.numpy as jnp  # lazy: JAX loads only when training draws its data

        body = self.source.sample_tokens(key, n, length - 1 if self.bos else length)
        if not self.bos:
            return body
        return jnp.concatenate([jnp.full((n, 1), self.source.vocab_size, body.dtype), body], axis=1)
