"""Every model family behind one set of functions: the registry of `ModelFamily` objects, and the functions
that look up a config's family in it and ask it.

A model config is a `TransformerConfig` (kind "transformer"), a `RecurrentConfig` (kinds "rnn", "gru",
"lstm") or the config of any family registered later (`register_family`: a plugin, a test). Each family is
a `predictive_models.model_family.ModelFamily`; the functions here find it by the config's type (or, for a saved
config, by its ``kind``) and call it, so training, checkpoints, evaluation and the runner never branch on
the architecture. `KINDS`, `config_class`, `kind_of` and `family` read the registry when called, so a family
registered after this module was imported is known to config validation too.

Saved configs are plain dicts with a ``kind`` key (`config_to_dict`); a dict without one is a
transformer's (every checkpoint written before the recurrent families existed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from flax import nnx

from predictive_models import recurrent, transformer
from predictive_models.model_family import ModelFamily
from predictive_models.prefixes import PrefixActivations
from predictive_models.recurrent import RecurrentConfig
from predictive_models.transformer import TransformerConfig

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing.TypeIs is Python 3.13+

#: The built-in families' configs (a registered family's config is accepted wherever these are).
ModelConfig = TransformerConfig | RecurrentConfig

# ---------------------------------------------------------------------------- the registry

_BY_KIND: dict[str, ModelFamily] = {}  # kind -> family, in registration order (the order `KINDS` lists)
_BY_CONFIG: dict[type, ModelFamily] = {}  # config class -> family


def register_family(family: ModelFamily) -> ModelFamily:
    """Make ``family`` (a `ModelFamily` instance) known by its kinds and its config class; returns it.

    Registering the same object again does nothing; a kind or a config class another registered family
    already serves is refused (ValueError: `unregister_family` that one first).
    """
    if not isinstance(family, ModelFamily):
        raise TypeError(
            f"register_family takes a ModelFamily instance; got {type(family).__name__}. Subclass "
            f"predictive_models.model_family.ModelFamily and pass an instance."
        )
    kinds = getattr(family, "kinds", None)
    if not isinstance(kinds, tuple) or not kinds or not all(isinstance(k, str) and k for k in kinds):
        raise ValueError(f"{type(family).__name__}.kinds must be a non-empty tuple of kind names; got {kinds!r}.")
    cls = getattr(family, "config_class", None)
    if not isinstance(cls, type) or not all(
        hasattr(cls, "__dataclass_fields__") and f in cls.__dataclass_fields__ for f in ("vocab_size", "context_length")
    ):
        raise ValueError(
            f"{type(family).__name__}.config_class must be a dataclass with vocab_size and "
            f"context_length fields; got {cls!r}."
        )
    if not isinstance(getattr(family, "module_class", None), type):
        raise ValueError(f"{type(family).__name__}.module_class must be an nnx.Module class.")
    clash = [k for k in kinds if _BY_KIND.get(k, family) is not family]
    if clash or _BY_CONFIG.get(cls, family) is not family:
        what, owner = (
            (f"model kind {clash[0]!r}", _BY_KIND[clash[0]])
            if clash
            else (f"config class {cls.__name__}", _BY_CONFIG[cls])
        )
        raise ValueError(f"{what} is already served by {owner!r}; unregister_family it first or pick another name.")
    for k in kinds:
        _BY_KIND[k] = family
    _BY_CONFIG[cls] = family
    return family


def unregister_family(family: ModelFamily) -> None:
    """Forget ``family`` (e.g. at the end of a test that registered it); a family not registered is ignored."""
    for k in [k for k, f in _BY_KIND.items() if f is family]:
        del _BY_KIND[k]
    for c in [c for c, f in _BY_CONFIG.items() if f is family]:
        del _BY_CONFIG[c]


def kinds() -> tuple[str, ...]:
    """Every model kind a config can name now, in registration order (the built-in ones first)."""
    return tuple(_BY_KIND)


def __getattr__(name: str) -> Any:
    if name == "KINDS":  # `kinds()` as a module constant, read at each access (PEP 562)
        return kinds()
    raise AttributeError(f"module 'predictive_models.models' has no attribute {name!r}")


def family_for_kind(kind: str) -> ModelFamily:
    """The registered family that serves ``kind``."""
    if kind not in _BY_KIND:
        raise ValueError(f"model kind must be one of {', '.join(repr(k) for k in _BY_KIND)}; got {kind!r}.")
    return _BY_KIND[kind]


def family(config: Any) -> ModelFamily:
    """The registered `ModelFamily` of ``config`` (found by its type)."""
    for cls in type(config).__mro__:
        if cls in _BY_CONFIG:
            return _BY_CONFIG[cls]
    raise TypeError(
        f"model config must be the config of a registered model family ("
        f"{', '.join(c.__name__ for c in _BY_CONFIG)}); got {type(config).__name__}."
    )


def is_model_config(config: Any) -> TypeIs[ModelConfig]:
    """Whether ``config`` is the config of a registered family."""
    return any(c in _BY_CONFIG for c in type(config).__mro__)


register_family(transformer.FAMILY)
register_family(recurrent.FAMILY)


def kind_of(config: ModelConfig) -> str:
    """The config's ``[model] kind``: "transformer", "rnn", "gru", "lstm" or a registered family's."""
    return family(config).kind_of(config)


def config_class(kind: str) -> type:
    """The config class of a model kind (one of `KINDS`)."""
    return family_for_kind(kind).config_class


def make_config(kind: str, vocab_size: int, **fields: Any) -> ModelConfig:
    """A model config of ``kind`` with ``vocab_size`` and the family's other ``fields`` (defaults for the rest)."""
    return config_from_dict({"kind": kind, "vocab_size": vocab_size, **fields})


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """The config as a plain dict with its ``kind`` first (what checkpoints store)."""
    return family(config).config_to_dict(config)


def config_from_dict(d: dict[str, Any]) -> ModelConfig:
    """The inverse of `config_to_dict`; a dict without ``kind`` is a transformer's."""
    d = dict(d)
    kind = d.pop("kind", "transformer")
    return family_for_kind(kind).config_from_dict(kind, d)


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
    return family(config).activation_width(config, name)


def compute_activations(
    config: ModelConfig,
    params_state: Any,
    tokens: np.ndarray,
    *,
    batch_size: int = 4096,
    method: str = "auto",
    names: Sequence[str] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Exactly the activations named (None: `layer_names`): tokens [N, T] -> {name: float32 [N, T, width]}
    (an attention pattern [N, H, T, T]), batched, each distinct prefix once where that saves work."""
    return family(config).compute_activations(
        config, params_state, tokens, batch_size=batch_size, method=method, names=names, on_step=on_step
    )


def prefix_activations(
    config: ModelConfig,
    params_state: Any,
    tokens: np.ndarray,
    *,
    batch_size: int = 4096,
    names: Sequence[str] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> PrefixActivations:
    """The activations named (None: `layer_names`; one vector per position, no attention patterns) of each
    distinct prefix of tokens [N, T] once: `predictive_models.prefixes.PrefixActivations`, {name: float32
    [U, width]} and each (string, position)'s row. The same numbers as `compute_activations` in a fraction of
    its memory when strings share prefixes (3^10 strings: 88,572 rows instead of 590,490)."""
    return family(config).prefix_activations(
        config, params_state, tokens, batch_size=batch_size, names=names, on_step=on_step
    )


def iter_activations(
    config: ModelConfig,
    params_state: Any,
    tokens: np.ndarray,
    *,
    chunk_sequences: int = 1024,
    names: Sequence[str] | None = None,
    batch_size: int = 4096,
    method: str = "full",
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


def compute_logits(
    config: ModelConfig, params_state: Any, tokens: np.ndarray, *, batch_size: int = 4096, method: str = "auto"
) -> np.ndarray:
    """Logits of every sequence: tokens [N, T] -> float32 [N, T, vocab_size]."""
    return family(config).compute_logits(config, params_state, tokens, batch_size=batch_size, method=method)


def compute_log_probs(
    config: ModelConfig, params_state: Any, tokens: np.ndarray, *, batch_size: int = 4096, method: str = "auto"
) -> np.ndarray:
    """Next-token log-probabilities: float32 [N, T, vocab_size]."""
    return family(config).compute_log_probs(config, params_state, tokens, batch_size=batch_size, method=method)


def activations(
    model: nnx.Module,
    tokens: np.ndarray,
    names: Sequence[str] | None = None,
    *,
    batch_size: int = 4096,
    method: str = "auto",
    on_step: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """``run_with_cache`` for any model: the activations named (see `activation_names`) of a model
    (a `Transformer`, a `RecurrentModel` or any registered family's, as `to_model` or `load_model` give it)
    on tokens [N, T].

    Only what is asked is computed and kept: a subset never pays for the others (an attention pattern
    is only materialised when named). None: the default probed set (`layer_names`).
    """
    config = getattr(model, "config", None)
    if not is_model_config(config):
        raise TypeError(
            f"activations(model, ...) takes a Transformer or a RecurrentModel (or a model of any "
            f"registered family); got {type(model).__name__}. Build one with "
            f"predictive_models.models.to_model(config, params)."
        )
    return compute_activations(
        config, model, tokens, batch_size=batch_size, method=method, names=names, on_step=on_step
    )
