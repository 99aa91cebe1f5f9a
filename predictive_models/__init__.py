"""Small JAX transformers trained on token sequences: the model, a fast training loop, checkpoints.

Works on arrays and plain callables only; imports none of the project's other packages. The
submodules import JAX (a second or more), so the names below are loaded on first use (PEP 562):
``import predictive_models`` alone is instant.
"""

import importlib

_LAZY = {
    "load_checkpoint": "checkpoint", "load_model": "checkpoint", "save_checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "DataFn": "training", "ExactEvalSet": "training", "TrainConfig": "training", "TrainResult": "training",
    "SampledEvalSet": "training", "evaluate_model": "training", "exact_eval": "training",
    "initial_params": "training", "sampled_eval": "training", "learning_rate_schedule": "training",
    "make_optimizer": "training",
    "train": "training",
    "Transformer": "transformer", "TransformerConfig": "transformer", "compute_activations": "transformer",
    "iter_activations": "transformer",
    "compute_log_probs": "transformer", "compute_logits": "transformer", "layer_names": "transformer",
    "probe_layer_name": "transformer",
    # recurrent families (issue 9, in progress): their activations/activation_names live in
    # predictive_models.recurrent until one activation API dispatches on the config type
    "RecurrentConfig": "recurrent", "RecurrentModel": "recurrent",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"predictive_models.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'predictive_models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
