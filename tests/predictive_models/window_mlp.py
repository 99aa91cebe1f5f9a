"""A model family that exists only in the tests: a one-layer MLP on the last ``window`` tokens.

It shows what a new family needs (`predictive_models.model_family`'s docstring): a config class, a module
class with ``__call__`` and ``forward``, its activation names, and a `ModelFamily` subclass naming them.
Nothing else: no one-position step, no memory arithmetic, no inference of its own; the protocol's defaults
(whole-sequence `run_batched`, `prefix_activations` from whole strings, `activation_shape` traced from
``forward``, `memory_sizes` from the abstract parameters) do the rest. It is registered only inside
`registered()`, never by the package.

The model: position t reads tokens t - window + 1 .. t (a pad token, its own embedding row, stands for the
positions before the start), embeds each, concatenates them (``embed``, [B, T, window d_embed]), applies one
ReLU layer (``hidden``, [B, T, d_hidden]) and a linear readout to logits. Causal by construction: nothing
after t is read.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from predictive_models import ModelFamily, register_family, unregister_family

KIND = "window_mlp"
DTYPE = jnp.float32


@dataclass(frozen=True)
class WindowMLPConfig:
    """vocab_size: tokens 0..vocab_size-1 (pass it). context_length: the longest input. window: tokens each
    position reads (itself and the window - 1 before it). d_embed: width of each token's embedding.
    d_hidden: width of the ReLU layer."""

    vocab_size: int
    context_length: int = 10
    window: int = 3
    d_embed: int = 8
    d_hidden: int = 32

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"WindowMLPConfig.{field.name} must be a positive integer; got {value!r}.")
            object.__setattr__(self, field.name, int(value))


class WindowMLP(nnx.Module):
    """logits_t = W_out relu(W_h [e(x_{t-w+1}); ..; e(x_t)] + b_h) + b_out, e(pad) before the start."""

    def __init__(self, config: WindowMLPConfig, *, rngs: nnx.Rngs):
        c = config
        self.config = c
        self.embed = nnx.Embed(c.vocab_size + 1, c.d_embed, dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)  # row V: pad
        self.hidden = nnx.Linear(c.window * c.d_embed, c.d_hidden, dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)
        self.readout = nnx.Linear(c.d_hidden, c.vocab_size, dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """tokens [B, T] int -> logits [B, T, vocab_size]."""
        return self.forward(tokens, (), logits=True)[0]

    def forward(
        self, tokens: jax.Array, names: Sequence[str] = (), logits: bool = True
    ) -> tuple[jax.Array | None, dict[str, jax.Array]]:
        """Logits (None when ``logits`` is False) and the activations ``names`` ("embed", "hidden")."""
        c = self.config
        B, T = tokens.shape
        pad = jnp.full((B, c.window - 1), c.vocab_size, tokens.dtype)
        padded = jnp.concatenate([pad, tokens], axis=1)  # [B, window - 1 + T]
        windows = jnp.stack([padded[:, i : i + T] for i in range(c.window)], axis=-1)  # [B, T, window]: t-w+1..t
        x = self.embed(windows).reshape(B, T, c.window * c.d_embed)  # [B, T, window d_embed]
        cache = {"embed": x}
        h = None
        if logits or "hidden" in names:
            h = jax.nn.relu(self.hidden(x))  # [B, T, d_hidden]
            cache["hidden"] = h
        out = self.readout(h) if logits else None  # [B, T, V]
        return out, {n: cache[n] for n in names}


class WindowMLPFamily(ModelFamily):
    """The window MLP as a `ModelFamily`: the three names and the activation list, nothing more."""

    config_class = WindowMLPConfig
    module_class = WindowMLP
    kinds = (KIND,)

    def activation_names(self, config: WindowMLPConfig) -> list[str]:
        """``embed`` [B, T, window d_embed] (the window's embeddings, concatenated), ``hidden`` [B, T, d_hidden]."""
        return ["embed", "hidden"]


FAMILY = WindowMLPFamily()


@contextlib.contextmanager
def registered() -> Iterator[WindowMLPFamily]:
    """The family registered for the duration (so other tests see only the built-in kinds)."""
    register_family(FAMILY)
    try:
        yield FAMILY
    finally:
        unregister_family(FAMILY)
