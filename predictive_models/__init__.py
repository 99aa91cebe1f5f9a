"""Small JAX transformers trained on token sequences: the model, a fast training loop, checkpoints.

Works on arrays and plain callables only; imports none of the project's other packages.
"""

from predictive_models.checkpoint import load_checkpoint, load_model, save_checkpoint
from predictive_models.training import (DataFn, ExactEvalSet, TrainConfig, TrainResult, exact_eval,
                                        learning_rate_schedule, make_optimizer, train)
from predictive_models.transformer import (Transformer, TransformerConfig, compute_activations, compute_log_probs,
                                           compute_logits, layer_names, probe_layer_name)

__all__ = [
    "DataFn", "ExactEvalSet", "TrainConfig", "TrainResult", "Transformer", "TransformerConfig",
    "compute_activations", "compute_log_probs", "compute_logits", "exact_eval", "layer_names",
    "learning_rate_schedule", "load_checkpoint", "load_model", "make_optimizer", "probe_layer_name",
    "save_checkpoint", "train",
]
