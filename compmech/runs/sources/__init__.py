"""A run's data source: the `Source` protocol, its built-in implementations and the registry that finds a
process's source.

`source_of(process)` wraps whatever a config built (`compmech.runs.processes.build_process`): an HMM or a
generalized HMM (`HMMSource`: mixtures, products and coupled products are HMMs too) or random Markov chains
(`MarkovChainsSource`). A new kind of source is a class implementing `Source` (see `compmech.runs.sources.base`),
registered for its process type with `register_source`; the runner then asks it, and never the process's type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compmech.runs.contexts import ContextSet
from compmech.runs.sources.base import BeliefCoordinates, OptimalLoss, Source, SourceData, SourceTraits
from compmech.runs.sources.chains import MarkovChainsSource
from compmech.runs.sources.hmm import HMMSource
from hmm_processes import HMM, GeneralizedHMM, RandomMarkovChains

__all__ = [
    "BeliefCoordinates",
    "HMMSource",
    "MarkovChainsSource",
    "OptimalLoss",
    "Source",
    "SourceData",
    "SourceTraits",
    "context_set",
    "data_fn",
    "register_source",
    "source_of",
    "source_traits",
]

#: Process type -> the factory of its source (the process's class and its bases are looked up, nearest first).
_SOURCES: dict[type, Callable[[Any], Source]] = {}


def register_source(process_type: type, factory: Callable[[Any], Source]) -> None:
    """Make processes of ``process_type`` (and its subclasses) runnable: ``factory(process)`` gives their `Source`."""
    _SOURCES[process_type] = factory


def source_of(process: Any) -> Source:
    """The `Source` of a built process (a source is returned as it is). Raises TypeError naming the type when no
    source is registered for it."""
    if isinstance(process, Source):
        return process
    for cls in type(process).__mro__:
        factory = _SOURCES.get(cls)
        if factory is not None:
            return factory(process)
    raise TypeError(
        f"no source is registered for {type(process).__name__}; register one with "
        "compmech.runs.sources.register_source(type, factory)"
    )


def source_traits(process: Any) -> SourceTraits:
    """The `SourceTraits` of a built process (or source)."""
    return source_of(process).traits


def context_set(process: Any, context_length: int, *, bos: bool = False) -> ContextSet:
    """Every allowed string of ``context_length`` with its exact theory (`Source.context_set` of ``process``).

    Examples
    --------
    >>> from compmech.runs.sources import context_set
    >>> from hmm_processes import mess3
    >>> ctx = context_set(mess3(), 3)
    >>> ctx.tokens.shape, ctx.beliefs.shape  # 3^3 strings, 3 positions, 3 states
    ((27, 3), (27, 3, 3))
    """
    return source_of(process).context_set(context_length, bos)


def data_fn(process: Any, *, bos: bool = False) -> SourceData:
    """The training data of ``process`` (`SourceData`): (key, n, length) -> tokens [n, length] int32."""
    return SourceData(source_of(process), bos)


register_source(HMM, HMMSource)
register_source(GeneralizedHMM, HMMSource)
register_source(RandomMarkovChains, MarkovChainsSource)
