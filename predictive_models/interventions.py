"""Run a transformer with an edited residual stream: the hook causal interventions need.

`logits_with_delta` runs the model up to one residual-stream read-out (the short names the probe uses:
``embedding`` = ``blocks.0.hook_resid_pre``, ``block_l`` = ``blocks.{l-1}.hook_resid_post``), adds a given
delta ``[N, T, d_model]`` there, and runs the rest of the model (the blocks above, the final LayerNorm and the
unembedding) to logits. `logits_with_edit` does the same with a function of the residual (``resid -> resid``),
e.g. a projection. Each is compiled once per (config, layer) (and edit function), for one padded batch shape.

The edit is applied at every position the delta is non-zero at; the causal mask carries an edit at position t to
positions >= t only, so logits at positions < t are unchanged (tested). Transformers only: the other families
(recurrent models) have no residual stream to edit, and get a ValueError.

Examples
--------
>>> import numpy as np
>>> from predictive_models import TransformerConfig, init_params, compute_logits
>>> from predictive_models.interventions import logits_with_delta
>>> cfg = TransformerConfig(vocab_size=3, context_length=4, n_layers=1, d_model=8, d_head=4, d_mlp=16)
>>> params = init_params(cfg, seed=0)
>>> tokens = np.array([[0, 1, 2, 1]])  # [N, T]
>>> delta = np.zeros((1, 4, 8), np.float32)  # [N, T, d_model]
>>> bool(np.array_equal(logits_with_delta(cfg, params, tokens, "block_1", delta), compute_logits(cfg, params, tokens)))
True
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from predictive_models.model_family import check_tokens, pad_rows
from predictive_models.nnx_params import pure_params
from predictive_models.transformer import TransformerConfig, graphdef

#: One residual edit: float32 [B, T, d_model] -> [B, T, d_model] (traced by JAX).
Edit = Callable[[jax.Array], jax.Array]


def residual_layers(config: TransformerConfig) -> list[str]:
    """The residual read-outs that can be edited, in forward order: ``embedding``, ``block_1`` .. ``block_L``."""
    _check_config(config)
    return ["embedding", *(f"block_{l + 1}" for l in range(config.n_layers))]


def _check_config(config: Any) -> None:
    if not isinstance(config, TransformerConfig):
        raise ValueError(
            f"residual-stream interventions need a transformer (TransformerConfig); got {type(config).__name__}. "
            'Recurrent families have no residual stream to edit: use [model] kind = "transformer".'
        )


def _layer_index(config: TransformerConfig, layer: str) -> int:
    """0 for ``embedding``, l for ``block_l``; a ValueError naming the choices otherwise."""
    names = residual_layers(config)
    if layer not in names:
        raise ValueError(f"layer must be one of the residual read-outs {names}; got {layer!r}.")
    return names.index(layer)


def _forward_edited(model: Any, tokens: jax.Array, index: int, edit: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """The model's forward (the same operations as `Transformer.forward`) with ``edit`` applied to the residual
    stream after ``index`` blocks (0: the embedding plus positions): tokens [B, T] -> logits [B, T, V]."""
    T = tokens.shape[-1]
    x = model.embed(tokens)  # [B, T, d_model]
    x = model._add_positions(x, model.pos_embed[...][:T] if model.pos_embed is not None else None, frozenset(), {})
    if index == 0:
        x = edit(x)
    for l, block in enumerate(model.blocks):
        x = block.forward(x, frozenset(), f"blocks.{l}.", mlp=True)[0]
        if l + 1 == index:
            x = edit(x)
    return model._head(x, frozenset(), {}, True)


@functools.cache
def _jitted_delta(config: TransformerConfig, index: int):
    """jit of (params, tokens [B, T], delta [B, T, d_model]) -> logits [B, T, V] with the delta added."""
    gdef = graphdef(config)

    def run(params: dict, tokens: jax.Array, delta: jax.Array) -> jax.Array:
        return _forward_edited(nnx.merge(gdef, params), tokens, index, lambda x: x + delta)

    return jax.jit(run)


@functools.cache
def _jitted_edit(config: TransformerConfig, index: int, edit: Edit):
    """jit of (params, tokens [B, T]) -> logits [B, T, V] with ``edit`` applied (``edit`` must be hashable)."""
    gdef = graphdef(config)

    def run(params: dict, tokens: jax.Array) -> jax.Array:
        return _forward_edited(nnx.merge(gdef, params), tokens, index, edit)

    return jax.jit(run)


def logits_with_delta(
    config: TransformerConfig,
    params: Any,
    tokens: np.ndarray,
    layer: str,
    delta: np.ndarray,
    *,
    batch_size: int = 2048,
) -> np.ndarray:
    """Logits of the model whose residual stream at ``layer`` is shifted by ``delta``.

    Parameters
    ----------
    config : the transformer's config (any other family: ValueError).
    params : an ``nnx.State``, the model, or the pure dict of arrays.
    tokens : int [N, T], T <= context_length.
    layer : a residual read-out, ``embedding`` or ``block_1`` .. ``block_L`` (`residual_layers`).
    delta : float [N, T, d_model], added to the residual stream at ``layer`` (cast to float32; a zero delta gives
        the ordinary logits).
    batch_size : rows per jitted call (the last batch is padded: one compilation per (config, layer, T)).

    Returns
    -------
    float32 [N, T, vocab_size] logits.
    """
    _check_config(config)
    index = _layer_index(config, layer)
    tokens = check_tokens(config, tokens, batch_size)
    N, T = tokens.shape
    delta = np.asarray(delta, np.float32)
    if delta.shape != (N, T, config.d_model):
        raise ValueError(f"delta must have shape [N, T, d_model] = {(N, T, config.d_model)}; got {delta.shape}.")
    out = np.empty((N, T, config.vocab_size), np.float32)
    if N == 0 or T == 0:
        return out
    fn = _jitted_delta(config, index)
    p = jax.tree.map(jnp.asarray, pure_params(params))
    rows = min(int(batch_size), N)
    for start in range(0, N, rows):
        stop = min(start + rows, N)
        o = fn(p, pad_rows(tokens[start:stop], rows), pad_rows(delta[start:stop], rows))
        out[start:stop] = np.asarray(jax.device_get(o))[: stop - start]
    return out


def logits_with_edit(
    config: TransformerConfig,
    params: Any,
    tokens: np.ndarray,
    layer: str,
    edit: Edit,
    *,
    batch_size: int = 2048,
) -> np.ndarray:
    """Logits [N, T, V] of the model whose residual stream at ``layer`` is replaced by ``edit(resid)``.

    ``edit`` maps the float32 residual [B, T, d_model] to the same shape with JAX operations (it is traced once per
    (config, layer, edit), so pass the same function object to reuse the compilation; it must be hashable). Rows are
    padded with token 0 to ``batch_size`` (an edit that mixes rows sees the padding). See `logits_with_delta` for
    the other arguments; ``edit=lambda x: x`` gives the ordinary logits.
    """
    _check_config(config)
    index = _layer_index(config, layer)
    tokens = check_tokens(config, tokens, batch_size)
    N, T = tokens.shape
    out = np.empty((N, T, config.vocab_size), np.float32)
    if N == 0 or T == 0:
        return out
    fn = _jitted_edit(config, index, edit)
    p = jax.tree.map(jnp.asarray, pure_params(params))
    rows = min(int(batch_size), N)
    for start in range(0, N, rows):
        stop = min(start + rows, N)
        out[start:stop] = np.asarray(jax.device_get(fn(p, pad_rows(tokens[start:stop], rows))))[: stop - start]
    return out
