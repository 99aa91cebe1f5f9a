"""Small JAX sequence models (transformers, RNN/GRU/LSTM) trained on tokens: the models, one activation API,
a fast training loop, checkpoints.

Works on arrays and plain callables only; imports none of the project's other packages. The
submodules import JAX (a second or more), so the names below are loaded on first use (PEP 562):
``import predictive_models`` alone is instant.
"""

import importlib

_LAZY = {
    "load_checkpoint": "checkpoint",
    "load_model": "checkpoint",
    "save_checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "DataFn": "training",
    "ExactEvalSet": "training",
    "TrainConfig": "training",
    "TrainResult": "training",
    "SampledEvalSet": "training",
    "evaluate_model": "training",
    "exact_eval": "training",
    "initial_params": "training",
    "sampled_eval": "training",
    "learning_rate_schedule": "training",
    "make_optimizer": "training",
    "TrainingDiverged": "training",
    "train": "training",
    "train_seeds": "training",
    "Transformer": "transformer",
    "TransformerConfig": "transformer",
    "ov_vectors": "transformer",
    # residual-stream interventions (transformers): the logits with one read-out edited
    "logits_with_delta": "interventions",
    "logits_with_edit": "interventions",
    "residual_layers": "interventions",
    "RecurrentConfig": "recurrent",
    "RecurrentModel": "recurrent",
    # one set of functions for every model family (they dispatch on the config's type)
    "KINDS": "models",
    "ModelConfig": "models",
    "activations": "models",
    "activation_names": "models",
    "compute_activations": "models",
    "compute_log_probs": "models",
    "compute_logits": "models",
    "config_from_dict": "models",
    "config_to_dict": "models",
    "iter_activations": "models",
    "activation_width": "models",
    "kind_of": "models",
    "layer_names": "models",
    "make_config": "models",
    "n_params": "models",
    "probe_layer_name": "models",
    "to_model": "models",
    "init_params": "models",
    "logits_fn": "models",
    "prefix_activations": "models",
    "PrefixActivations": "prefixes",
    # the model-family protocol and its registry (a new family: predictive_models.model_family's docstring)
    "ModelFamily": "model_family",
    "ModelSizes": "model_family",
    "register_family": "models",
    "unregister_family": "models",
    "config_class": "models",
    "family": "models",
    "kinds": "models",
    # a sparse autoencoder on a matrix of activations
    "SaeConfig": "sae",
    "SaeResult": "sae",
    "train_sae": "sae",
}
_LIVE = {"KINDS"}  # read from the registry at each access, never cached here: a family registered later counts

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"predictive_models.{_LAZY[name]}"), name)
        if name not in _LIVE:
            globals()[name] = value
        return value
    raise AttributeError(f"module 'predictive_models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
