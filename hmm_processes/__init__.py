"""Hidden Markov processes: the `HMM` type, named processes, a registry and a batched sampler."""

from hmm_processes.errors import ProcessError
from hmm_processes.hmm import HMM, stationary_distribution, validate_transition_tensor
from hmm_processes.named import even, golden_mean, mess3
from hmm_processes.registry import get_process, list_processes, process_parameters, register_process
from hmm_processes.sampling import Samples, sample

for _factory in (mess3, golden_mean, even):
    register_process(_factory.__name__, _factory)
del _factory

__all__ = [
    "HMM", "ProcessError", "Samples", "even", "get_process", "golden_mean", "list_processes",
    "mess3", "process_parameters", "register_process", "sample", "stationary_distribution",
    "validate_transition_tensor",
]
