"""Every model family behind one set of functions: pick the family from the config's type.

A model config is a `TransformerConfig` (kind "transformer") or a `RecurrentConfig` (kinds "rnn", "gru",
"lstm"). Each family module (`predictive_models.transformer`, `predictive_models.recurrent`) offers the
same functions with the same signatures; the ones here look the family up and call it, so training,
checkpoints, evaluation and the runner never branch on the architecture.

Saved configs are plain dicts with a ``kind`` key (`config_to_dict`); a dict without one is a
transformer's (every checkpoint written before the recurrent families existed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, Union

import jax
import numpy as np
from flax import nnx

from predictive_models import recurrent, transformer
from predictive_models.prefixes import PrefixActivations
from predictive_models.recurrent import RecurrentConfig
from predictive_models.transformer import TransformerConfig

ModelConfig = Union[TransformerConfig, RecurrentConfig]

#: Every model kind a config can name, in the order the docs list them.
KINDS: tuple[str, ...] = ("transformer", *recurrent.KINDS)


def family(config: ModelConfig) -> ModuleType:
    """The module that implements ``config``'s model family."""
    if isinstance(config, TransformerConfig):
        return transformer
    if isinstance(config, RecurrentConfig):
        return recurrent
    raise TypeError(f"model config must be a TransformerConfig or a RecurrentConfig; got {type(config).__name__}.")


def kind_of(config: ModelConfig) -> str:
    """"transformer", "rnn", "gru" or "lstm"."""
    return "transformer" if family(config) is transformer else config.kind


def config_class(kind: str) -> type:
    """The config class of a model kind (one of `KINDS`)."""
    if kind == "transformer":
        return TransformerConfig
    if kind in recurrent.KINDS:
        return RecurrentConfig
    raise ValueError(f"model kind must be one of {', '.join(repr(k) for k in KINDS)}; got {kind!r}.")


def make_config(kind: str, vocab_size: int, **fields: Any) -> ModelConfig:
    """A model config of ``kind`` with ``vocab_size`` and the family's other ``fields`` (defaults for the rest)."""
    return config_from_dict({"kind": kind, "vocab_size": vocab_size, **fields})


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """The config as a plain dict with its ``kind`` first (what checkpoints store)."""
    return {"kind": kind_of(config), **{k: v for k, v in config.to_dict().items() if k != "kind"}}


def config_from_dict(d: dict[str, Any]) -> ModelConfig:
    """The inverse of `config_to_dict`; a dict without ``kind`` is a transformer's."""
    d = dict(d)
    kind = d.pop("kind", "transformer")
    cls = config_class(kind)
    return RecurrentConfig.from_dict({**d, "kind": kind}) if cls is RecurrentConfig else cls.from_dict(d)


# ---------------------------------------------------------------------------- the family's functions


def graphdef(config: ModelConfig) -> nnx.GraphDef:
    """The model's graph definition, nothing allocated."""
    return family(config).graphdef(config)


def abstract_params(config: ModelConfig) -> dict:
    """The parameters' pure-dict structure with ``jax.ShapeDtypeStruct`` leaves."""
    return family(config).abstract_params(config)


def n_params(config: ModelConfig) -> int:
    """Number of scalar parameters."""
    return family(config).n_params(config)


def init_params(config: ModelConfig, seed: int | jax.Array = 0) -> dict:
    """Fresh parameters as a pure nested dict of float32 arrays."""
    return family(config).init_params(config, seed)


def to_state(config: ModelConfig, params: Any) -> nnx.State:
    """Parameters in any accepted form -> the model's ``nnx.State``."""
    return family(config).to_state(config, params)


def to_model(config: ModelConfig, params: Any) -> nnx.Module:
    """Parameters in any accepted form -> the model (an ``nnx.Module``) holding them."""
    return family(config).to_model(config, params)


def logits_fn(config: ModelConfig) -> Callable[[dict, jax.Array], jax.Array]:
    """The pure function (params, tokens [B, T]) -> logits [B, T, V], for a training loss (not jitted)."""
    return family(config).logits_fn(config)


def activation_names(config: ModelConfig) -> list[str]:
    """Every activation the model exposes by name (documented in its family's `activation_names`)."""
    return family(config).activation_names(config)


def layer_names(config: ModelConfig) -> list[str]:
    """The default probed set: the transformer's residual stream, a recurrent model's hidden states."""
    return family(config).layer_names(config)


def probe_layer_name(config: ModelConfig) -> str:
    """The single layer the paper probes: after the last block (transformer), the last hidden state (RNNs)."""
    return family(config).probe_layer_name(config)


def activation_width(config: ModelConfig, name: str) -> int:
    """The last-axis width of the activation ``name`` (an attention pattern's is the number of keys, T)."""
    return family(config).activation_shape(config, name, 1, config.context_length)[-1]


def compute_activations(config: ModelConfig, params_state: Any, tokens: np.ndarray, *, batch_size: int = 4096,
                        method: str = "auto", names: Sequence[str] | None = None,
                        on_step: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Exactly the activations named (None: `layer_names`): tokens [N, T] -> {name: float32 [N, T, width]}
    (an attention pattern [N, H, T, T]), batched, each distinct prefix once where that saves work."""
    return family(config).compute_activations(config, params_state, tokens, batch_size=batch_size,
                                              method=method, names=names, on_step=on_step)


def prefix_activations(config: ModelConfig, params_state: Any, tokens: np.ndarray, *, batch_size: int = 4096,
                       names: Sequence[str] | None = None, on_step: Callable[[int], None] | None = None
                       ) -> PrefixActivations:
    """The activations named (None: `layer_names`; one vector per position, no attention patterns) of each
    distinct prefix of tokens [N, T] once: `predictive_models.prefixes.PrefixActivations`, {name: float32
    [U, width]} and each (string, position)'s row. The same numbers as `compute_activations` in a fraction of
    its memory when strings share prefixes (3^10 strings: 88,572 rows instead of 590,490)."""
    return family(config).prefix_activations(config, params_state, tokens, batch_size=batch_size, names=names,
                                             on_step=on_step)


def iter_activations(config: ModelConfig, params_state: Any, tokens: np.ndarray, *, chunk_sequences: int = 1024,
                     names: Sequence[str] | None = None, batch_size: int = 4096, method: str = "full"
                     ) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """`compute_activations` in blocks of sequences: yields (start, stop, {name: [stop - start, ...]})."""
    tokens = np.asarray(tokens)
    if int(chunk_sequences) != chunk_sequences or chunk_sequences < 1:
        raise ValueError(f"chunk_sequences must be a positive integer; got {chunk_sequences!r}.")
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be a 2-D integer array [N, T]; got shape {tokens.shape}.")
    size = min(int(chunk_sequences), tokens.shape[0])
    for start in range(0, tokens.shape[0], size):
        stop = min(start + size, tokens.shape[0])
        block = tokens[start:stop]
        if block.shape[0] < size:  # one shape for every block: one compilation
            block = np.concatenate([block, np.zeros((size - block.shape[0], block.shape[1]), block.dtype)])
        acts = compute_activations(config, params_state, block, batch_size=batch_size, method=method, names=names)
        yield start, stop, {name: a[: stop - start] for name, a in acts.items()}


def compute_logits(config: ModelConfig, params_state: Any, tokens: np.ndarray, *, batch_size: int = 4096,
                   method: str = "auto") -> np.ndarray:
    """Logits of every sequence: tokens [N, T] -> float32 [N, T, vocab_size]."""
    return family(config).compute_logits(config, params_state, tokens, batch_size=batch_size, method=method)


def compute_log_probs(config: ModelConfig, params_state: Any, tokens: np.ndarray, *, batch_size: int = 4096,
                      method: str = "auto") -> np.ndarray:
    """Next-token log-probabilities: float32 [N, T, vocab_size]."""
    return family(config).compute_log_probs(config, params_state, tokens, batch_size=batch_size, method=method)


def activations(model: nnx.Module, tokens: np.ndarray, names: Sequence[str] | None = None, *,
                batch_size: int = 4096, method: str = "auto",
                on_step: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """``run_with_cache`` for any model: the activations named (see `activation_names`) of a model
    (a `Transformer` or a `RecurrentModel`, as `to_model` or `load_model` give it) on tokens [N, T].

    Only what is asked is computed and kept: a subset never pays for the others (an attention pattern
    is only materialised when named). None: the default probed set (`layer_names`).
    """
    config = getattr(model, "config", None)
    if not isinstance(config, (TransformerConfig, RecurrentConfig)):
        raise TypeError(f"activations(model, ...) takes a Transformer or a RecurrentModel; got "
                        f"{type(model).__name__}. Build one with predictive_models.models.to_model(config, params).")
    return compute_activations(config, model, tokens, batch_size=batch_size, method=method, names=names,
                               on_step=on_step)
