"""Exact computational mechanics: mixed states, word probabilities, information measures, fractal geometry.

The experiment runner (`compmech.experiment`) and the CLI (`compmech.cli`) also live here; they
are the only modules that tie the packages together.
"""

from compmech.fractal import (DimensionEstimate, LyapunovSpectrum, box_counting_dimension, chaos_game,
                              correlation_dimension, lyapunov_dimension, lyapunov_spectrum)
from compmech.information import (block_entropies, entropy_bits, myopic_entropies,
                                  optimal_loss_by_position)
from compmech.measures import (BlackwellEstimate, ProcessInfo, blackwell_entropy_rate, block_entropy,
                               cryptic_order, crypticity, entropy_rate, epsilon_machine, excess_entropy,
                               markov_order, myopic_entropy, myopic_entropy_sequence, process_info,
                               statistical_complexity, synchronization_information, transient_information)
from compmech.mixed_states import MixedStates, WordLevel, belief_trajectories, mixed_states
from compmech.msp import MSP, InfiniteMSPError, build_msp, finite_msp
from compmech.streaming import StreamResult, iter_levels, stream_entropies

__all__ = [
    "MSP", "BlackwellEstimate", "DimensionEstimate", "InfiniteMSPError", "LyapunovSpectrum",
    "MixedStates", "ProcessInfo", "StreamResult", "WordLevel", "belief_trajectories",
    "blackwell_entropy_rate", "block_entropies", "block_entropy", "box_counting_dimension", "build_msp",
    "chaos_game", "correlation_dimension", "cryptic_order", "crypticity", "entropy_bits", "entropy_rate",
    "epsilon_machine", "excess_entropy", "finite_msp", "iter_levels", "lyapunov_dimension",
    "lyapunov_spectrum", "markov_order", "mixed_states", "myopic_entropies", "myopic_entropy",
    "myopic_entropy_sequence", "optimal_loss_by_position", "process_info", "statistical_complexity",
    "stream_entropies", "synchronization_information", "transient_information",
]
