"""Exact computational mechanics: mixed states, word probabilities, information measures, fractal geometry.

The experiment runner and the CLI live in the subpackage `compmech.runs`, the only code that ties
the packages together; the theory modules here import `hmm_processes` only. `load_run` opens a finished run directory
in a notebook (config, process, trained model, history, activations, probes).

Every name below is imported on first use (PEP 562), so ``import compmech.runs.cli`` stays fast and
never imports JAX unless a command needs it.
"""

import importlib
import importlib.metadata

# Imported now, not lazily: the function `mixed_states` shares its name with its module, and only an
# eager import keeps the package attribute bound to the function (NumPy only, no JAX: cheap).
from compmech.mixed_states import MixedStates as MixedStates
from compmech.mixed_states import WordLevel as WordLevel
from compmech.mixed_states import belief_trajectories as belief_trajectories
from compmech.mixed_states import mixed_states as mixed_states

try:
    __version__ = importlib.metadata.version("compmech")  # the installed distribution's (pyproject.toml's) version
except importlib.metadata.PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "unknown (not installed)"

_LAZY = {
    "compmech.fractal": (
        "DimensionEstimate",
        "LyapunovSpectrum",
        "box_counting_dimension",
        "chaos_game",
        "correlation_dimension",
        "lyapunov_dimension",
        "lyapunov_spectrum",
    ),
    "compmech.information": ("block_entropies", "entropy_bits", "myopic_entropies", "optimal_loss_by_position"),
    "compmech.measures": (
        "BlackwellEstimate",
        "DecompositionError",
        "ProcessInfo",
        "blackwell_entropy_rate",
        "block_entropy",
        "ergodic_components",
        "product_factors",
        "same_process",
        "cryptic_order",
        "crypticity",
        "entropy_rate",
        "epsilon_machine",
        "excess_entropy",
        "markov_order",
        "myopic_entropy",
        "myopic_entropy_sequence",
        "process_info",
        "statistical_complexity",
        "synchronization_information",
        "transient_information",
    ),
    "compmech.msp": ("MSP", "InfiniteMSPError", "build_msp", "finite_msp"),
    "compmech.streaming": ("StreamResult", "iter_levels", "stream_entropies"),
    "compmech.runs.run_dir": ("ProbeFit", "Run", "RunDirError", "load_run"),
    "compmech.runs.api": ("run", "sweep", "reproduce"),
    "compmech.runs.analyze": ("Alignment", "Analysis", "AnalysisInputError", "analyze"),
    "compmech.interop.models": ("analyze_model",),
    "compmech.runs.plot": ("plot",),  # the module itself (compmech.plot.simplex(run)); it names itself `plot`
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

__all__ = sorted([*_MODULE_OF, "MixedStates", "WordLevel", "__version__", "belief_trajectories", "mixed_states"])


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'compmech' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))
