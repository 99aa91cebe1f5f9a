"""Parameter plumbing shared by every model family: one NNX module class <-> a pure dict of arrays.

`predictive_models.model_family.ModelFamily`'s `graphdef` / `abstract_params` / `n_params` / `init_params` /
`to_state` / `to_model` / `logits_fn` call these with the family's module class: the work is done here once,
keyed by the module class and config.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import nnx


@functools.cache
def abstract_split(module_cls: type, config: Any) -> tuple[nnx.GraphDef, nnx.State]:
    """The module's graph definition and abstract state (``jax.ShapeDtypeStruct`` leaves), nothing allocated."""
    return nnx.split(nnx.eval_shape(lambda: module_cls(config, rngs=nnx.Rngs(0))))


def n_params(module_cls: type, config: Any) -> int:
    """Number of scalar parameters of ``module_cls(config)``, from its abstract state (nothing allocated)."""
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(abstract_split(module_cls, config)[1])))


def logits_fn(module_cls: type, config: Any) -> Callable[[dict, jax.Array], jax.Array]:
    """The pure function (params dict, tokens [B, T]) -> logits [B, T, V] of ``module_cls(config)``, for a
    training loss to differentiate (not jitted here, so it fuses into the caller's jit)."""
    gdef = abstract_split(module_cls, config)[0]
    return lambda params, tokens: nnx.merge(gdef, params)(tokens)


def init_params(module_cls: type, config: Any, seed: int | jax.Array = 0) -> dict:
    """Fresh parameters of ``module_cls(config)`` as a pure nested dict of arrays; ``seed`` an int or a
    ``jax.random.key``. Jitted once per (class, config): eager NNX initialisation is slow on CPU."""
    key = jax.random.key(int(seed)) if isinstance(seed, (int, np.integer)) else seed
    return _jitted_init(module_cls, config)(key)


@functools.cache
def _jitted_init(module_cls: type, config: Any):
    return jax.jit(lambda key: nnx.to_pure_dict(nnx.split(module_cls(config, rngs=nnx.Rngs(params=key)))[1]))


def pure_params(params_state: Any) -> dict:
    """A model, an ``nnx.State`` or a pure dict of parameters -> the pure nested dict of arrays."""
    if isinstance(params_state, nnx.Module):
        params_state = nnx.split(params_state)[1]
    if isinstance(params_state, nnx.State):
        return nnx.to_pure_dict(params_state)
    if isinstance(params_state, dict):
        return params_state
    raise TypeError(
        f"params_state must be an nnx.State (from nnx.split), a model (nnx.Module) or a pure "
        f"dict of arrays; got {type(params_state).__name__}."
    )
