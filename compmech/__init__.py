"""Exact computational mechanics: mixed states, word probabilities, information measures; and the experiment runner."""

from compmech.information import (block_entropies, entropy_bits, myopic_entropies,
                                  optimal_loss_by_position)
from compmech.mixed_states import MixedStates, WordLevel, belief_trajectories, mixed_states

__all__ = [
    "MixedStates", "WordLevel", "belief_trajectories", "block_entropies", "entropy_bits",
    "mixed_states", "myopic_entropies", "optimal_loss_by_position",
]
