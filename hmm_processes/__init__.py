"""Hidden Markov processes: the `HMM` type, named processes, a registry and a batched sampler.

Also generalized HMMs (`GeneralizedHMM`, quasi-probability presentations), compositions
(`mixture`, `product`), TOML spec files (`load_spec`), and a continuous family that is not an HMM:
random Markov chains (`RandomMarkovChains`, one Dirichlet-drawn transition matrix per sequence).
"""

from typing import TYPE_CHECKING

from hmm_processes.beliefs import GHMM_MIN_PROB, extend_beliefs, min_probability, update_beliefs
from hmm_processes.compose import component_posterior, coupled_product, factor_beliefs, mixture, product, shift_coupled
from hmm_processes.errors import ProcessError
from hmm_processes.factored import STRUCTURES, factored_process
from hmm_processes.generalized import GeneralizedHMM, is_generalized, process_vectors
from hmm_processes.hmm import HMM, stationary_distribution, validate_transition_tensor
from hmm_processes.named import (
    coin,
    days_of_week,
    even,
    fanizza,
    golden_mean,
    leaky_rrxor,
    matching_parens,
    mess3,
    mr_name,
    nond,
    post_quantum,
    rrxor,
    sns,
    tom_quantum,
    z1r,
)
from hmm_processes.random_machines import random_epsilon_machine, random_nonunifilar, random_unifilar
from hmm_processes.random_markov import (
    RANDOM_MARKOV,
    ChainSamples,
    RandomMarkovChains,
    bayes_predictive,
    log_marginal_probability,
    posterior_mean,
    sample_chains,
    transition_counts,
    true_predictive,
)
from hmm_processes.registry import (
    get_process,
    list_processes,
    process_parameters,
    process_registry_scope,
    register_process,
    unregister_process,
)
from hmm_processes.spec import load_spec, parse_spec

#: Every named process, registered under its function name.
ZOO = (
    mess3,
    golden_mean,
    even,
    rrxor,
    z1r,
    coin,
    sns,
    nond,
    days_of_week,
    leaky_rrxor,
    matching_parens,
    mr_name,
    fanizza,
    tom_quantum,
    post_quantum,
)

for _factory in ZOO:
    register_process(_factory.__name__, _factory)
del _factory
register_process("random_epsilon_machine", random_epsilon_machine)  # a seeded family, not one process of the zoo

# The sampler imports JAX (a second or more); it is loaded on first use, so that the theory and the
# CLI's quick commands (`compmech processes`, `compmech info`) start without it (PEP 562).
_LAZY = {
    "Samples": "hmm_processes.sampling",
    "sample": "hmm_processes.sampling",
    "sample_words": "hmm_processes.sampling",
}
if TYPE_CHECKING:  # the lazy names, for type checkers only (at run time `__getattr__` below loads them)
    from hmm_processes.sampling import Samples, sample, sample_words


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hmm_processes' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "GHMM_MIN_PROB",
    "HMM",
    "RANDOM_MARKOV",
    "ChainSamples",
    "RandomMarkovChains",
    "bayes_predictive",
    "log_marginal_probability",
    "posterior_mean",
    "sample_chains",
    "transition_counts",
    "true_predictive",
    "GeneralizedHMM",
    "ProcessError",
    "STRUCTURES",
    "Samples",
    "ZOO",
    "coin",
    "component_posterior",
    "coupled_product",
    "days_of_week",
    "even",
    "extend_beliefs",
    "factor_beliefs",
    "factored_process",
    "fanizza",
    "min_probability",
    "update_beliefs",
    "get_process",
    "golden_mean",
    "is_generalized",
    "leaky_rrxor",
    "list_processes",
    "load_spec",
    "matching_parens",
    "mess3",
    "mixture",
    "mr_name",
    "nond",
    "parse_spec",
    "post_quantum",
    "process_parameters",
    "process_registry_scope",
    "process_vectors",
    "product",
    "random_epsilon_machine",
    "random_nonunifilar",
    "random_unifilar",
    "register_process",
    "rrxor",
    "sample",
    "sample_words",
    "sns",
    "shift_coupled",
    "stationary_distribution",
    "tom_quantum",
    "unregister_process",
    "validate_transition_tensor",
    "z1r",
]
