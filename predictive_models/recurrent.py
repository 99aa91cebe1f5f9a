"""Recurrent next-token models (vanilla tanh RNN, GRU, LSTM) in Flax NNX, with named activations.

Architecture: token embedding (``d_embed``) -> ``n_layers`` stacked recurrent layers of width
``d_hidden`` (layer 0 reads the embedding, layer l > 0 reads layer l-1's hidden state) -> a linear
readout of the last layer's hidden state to logits. Every layer starts from a zero state before the
first token; the hidden state at position t has read tokens 0..t, so the model is causal and its
logits at t predict token t+1, as the transformer's do. Each layer is one ``jax.lax.scan`` over
time (no Python loop over positions); its input projection for all positions is one matmul before
the scan, so the scan carries only the recurrent matmul. float32 parameters with explicit dtypes.

The cells (x = the layer's input at this position, h and c the previous states, sigma the logistic
function, * elementwise; the same conventions as PyTorch's nn.RNN / nn.GRU / nn.LSTM):

- rnn:  h' = tanh(W_x x + b_x + W_h h)
- gru:  r = sigma(W_xr x + b_xr + W_hr h + b_hr),  z = sigma(W_xz x + b_xz + W_hz h + b_hz),
        n = tanh(W_xn x + b_xn + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h
- lstm: i, f, g, o = W_x x + b_x + W_h h (split in four),  c' = sigma(f) * c + sigma(i) * tanh(g),
        h' = sigma(o) * tanh(c')

Initialisation: embedding normal(1) (Flax's default for ``nnx.Embed``); input and readout kernels
LeCun normal (variance 1 / fan-in); recurrent kernels orthogonal, one square block per gate (keeps
the recurrence's gain near 1 at the start); biases 0 except the LSTM forget gate's, 1 (Jozefowicz
et al. 2015), so the cell remembers by default.

Activations by name (the one list is `activation_names`): see its docstring. ``params`` arguments
below accept a `RecurrentModel`, its ``nnx.State`` or the pure nested dict of arrays from
``nnx.to_pure_dict`` (what `init_params` returns), as the transformer's functions do.

The family (`RecurrentFamily`, registered by `predictive_models.models`) is the `ModelFamily` of these
models: the parameter plumbing and the whole-sequence inference are the protocol's own; this module adds
the names, the modules, the memory sizes and the position-by-position prefix steps.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from predictive_models import nnx_params
from predictive_models.model_family import ModelFamily, ModelSizes, jitted_forward, pad_rows
from predictive_models.prefixes import call_rows

DTYPE = jnp.float32
KINDS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # blocks of d_hidden in each projection


@dataclass(frozen=True)
class RecurrentConfig:
    """Size of a recurrent model.

    kind: "rnn" (vanilla tanh), "gru" or "lstm". vocab_size: tokens 0..vocab_size-1 (pass it).
    context_length: the longest sequence the model is evaluated on (the recurrence itself has no
    limit; kept so that every model family checks the same input length). n_layers: stacked
    recurrent layers. d_hidden: width of every layer's hidden (and LSTM cell) state. d_embed: width
    of the token embedding; None (the default) means d_hidden.
    """

    kind: str
    vocab_size: int
    context_length: int = 10
    n_layers: int = 1
    d_hidden: int = 64
    d_embed: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"RecurrentConfig.kind must be one of {list(KINDS)}; got {self.kind!r}.")
        if self.d_embed is None:
            object.__setattr__(self, "d_embed", self.d_hidden)
        for field in dataclasses.fields(self):
            if field.name == "kind":
                continue
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(
                    f"RecurrentConfig.{field.name} must be an int; got {value!r} "
                    f"({type(value).__name__}). Pass a positive integer."
                )
            if value < 1:
                raise ValueError(f"RecurrentConfig.{field.name} must be >= 1; got {value}. Pass a positive integer.")
            object.__setattr__(self, field.name, int(value))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RecurrentConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"RecurrentConfig: unknown field(s) {sorted(unknown)}; known fields are {sorted(known)}.")
        return cls(**d)


# ---------------------------------------------------------------------------- names


def activation_names(config: RecurrentConfig) -> list[str]:
    """Every activation the model exposes, in forward order; each is float32 [B, T, width].

    - ``embed``: the token embedding fed to layer 0, [B, T, d_embed].
    - ``layers.{l}.hidden`` for l = 0..n_layers-1: layer l's hidden state h_t after reading
      position t, [B, T, d_hidden] (the input of layer l+1; for the last layer, of the readout).
    - ``layers.{l}.cell`` (LSTM only): layer l's cell state c_t after position t, [B, T, d_hidden].
    """
    per_layer = ("hidden", "cell") if config.kind == "lstm" else ("hidden",)
    return ["embed", *[f"layers.{l}.{what}" for l in range(config.n_layers) for what in per_layer]]


def layer_names(config: RecurrentConfig) -> list[str]:
    """The default probed set: every layer's hidden state, ``layers.0.hidden`` .. (LSTM cells are
    available by name from `activation_names` but not probed by default)."""
    return [f"layers.{l}.hidden" for l in range(config.n_layers)]


def probe_layer_name(config: RecurrentConfig) -> str:
    """The single layer to probe (the transformer's "last block" analogue): the last layer's hidden
    state, the one the readout sees."""
    return f"layers.{config.n_layers - 1}.hidden"


def _check_names(config: RecurrentConfig, names: Sequence[str] | None) -> tuple[str, ...]:
    """``names`` (None: `layer_names`) validated as distinct activation names (`ModelFamily.check_names`)."""
    return FAMILY.check_names(config, names)


def _depth(config: RecurrentConfig, names: Sequence[str], logits: bool) -> int:
    """How many layers must run: all for logits, else up to the highest layer named."""
    needed = [int(n.split(".")[1]) + 1 for n in names if n.startswith("layers.")]
    return config.n_layers if logits else max(needed, default=0)


# ---------------------------------------------------------------------------- the modules


class RecurrentLayer(nnx.Module):
    """One recurrent layer of ``kind`` over a whole sequence: [B, T, d_in] -> states [B, T, d_hidden]."""

    def __init__(self, kind: str, d_in: int, d_hidden: int, *, rngs: nnx.Rngs):
        self.kind, self.d_hidden = kind, d_hidden
        k = GATES[kind]
        bias_init = nnx.initializers.zeros_init()
        if kind == "lstm":  # gate order i, f, g, o: forget-gate bias 1

            def bias_init(key, shape, dtype=DTYPE):
                return jnp.zeros(shape, dtype).at[d_hidden : 2 * d_hidden].set(1.0)

        orthogonal = nnx.initializers.orthogonal()

        def recurrent_init(key, shape, dtype=DTYPE):  # one orthogonal [H, H] block per gate
            return jnp.concatenate(
                [orthogonal(kk, (d_hidden, d_hidden), dtype) for kk in jax.random.split(key, k)], axis=1
            )

        self.input = nnx.Linear(
            d_in,
            k * d_hidden,
            kernel_init=nnx.initializers.lecun_normal(),
            bias_init=bias_init,
            dtype=DTYPE,
            param_dtype=DTYPE,
            rngs=rngs,
        )
        # the GRU needs its own recurrent bias b_hn inside r * (...); the others would only duplicate b_x
        self.recurrent = nnx.Linear(
            d_hidden,
            k * d_hidden,
            use_bias=kind == "gru",
            kernel_init=recurrent_init,
            dtype=DTYPE,
            param_dtype=DTYPE,
            rngs=rngs,
        )

    def cell(
        self, carry: tuple[jax.Array, jax.Array], x_proj: jax.Array
    ) -> tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
        """One time step. carry (h, c) each [B, H] (c unused but for the LSTM); x_proj = W_x x + b_x
        [B, k H]. Returns the new carry and (h', c') to stack over time."""
        h, c = carry
        h_proj = self.recurrent(h)  # [B, k H]
        if self.kind == "rnn":
            h = jnp.tanh(x_proj + h_proj)
        elif self.kind == "gru":
            xr, xz, xn = jnp.split(x_proj, 3, axis=-1)
            hr, hz, hn = jnp.split(h_proj, 3, axis=-1)
            r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
            n = jnp.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
        else:
            i, f, g, o = jnp.split(x_proj + h_proj, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), (h, c)

    def step(self, x: jax.Array, h: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One position from the previous states: x [B, d_in], h and c [B, H] -> new (h, c), each [B, H]."""
        return self.cell((h, c), self.input(x))[0]

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x [B, T, d_in] -> hidden states and cell states, each [B, T, d_hidden] (cells zero unless LSTM)."""
        B = x.shape[0]
        x_proj = jnp.swapaxes(self.input(x), 0, 1)  # [T, B, k H]: all positions' input projections at once
        zeros = jnp.zeros((B, self.d_hidden), DTYPE)
        _, (hs, cs) = jax.lax.scan(self.cell, (zeros, zeros), x_proj)  # [T, B, H] each
        return jnp.swapaxes(hs, 0, 1), jnp.swapaxes(cs, 0, 1)


class RecurrentModel(nnx.Module):
    """Embedding -> stacked `RecurrentLayer`s -> linear readout (see the module docstring)."""

    def __init__(self, config: RecurrentConfig, *, rngs: nnx.Rngs):
        c = config
        assert c.d_embed is not None  # set by RecurrentConfig.__post_init__
        self.config = c
        self.embed = nnx.Embed(c.vocab_size, c.d_embed, dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)
        self.layers = nnx.List(
            [
                RecurrentLayer(c.kind, c.d_embed if l == 0 else c.d_hidden, c.d_hidden, rngs=rngs)
                for l in range(c.n_layers)
            ]
        )
        self.readout = nnx.Linear(
            c.d_hidden,
            c.vocab_size,
            kernel_init=nnx.initializers.lecun_normal(),
            dtype=DTYPE,
            param_dtype=DTYPE,
            rngs=rngs,
        )

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """tokens [B, T] int, T <= context_length -> logits [B, T, vocab_size]."""
        logits = self.forward(tokens, names=(), logits=True)[0]
        assert logits is not None  # asked for
        return logits

    def forward(
        self, tokens: jax.Array, names: Sequence[str] = (), logits: bool = True
    ) -> tuple[jax.Array | None, dict[str, jax.Array]]:
        """Logits (None when ``logits`` is False) and the activations named in ``names`` (see
        `activation_names`), each [B, T, width]. Only what is needed is computed: layers above the
        highest one asked for, and the readout when no logits are asked for, are never run."""
        T = tokens.shape[-1]
        if T > self.config.context_length:
            raise ValueError(
                f"tokens have length {T} > context_length {self.config.context_length}; "
                f"pass at most context_length tokens per sequence."
            )
        names = _check_names(self.config, names)
        depth = _depth(self.config, names, logits)
        cache: dict[str, jax.Array] = {}
        x = self.embed(tokens)  # [B, T, d_embed]
        if "embed" in names:
            cache["embed"] = x
        for l in range(depth):
            x, c = self.layers[l](x)  # [B, T, d_hidden] each
            if f"layers.{l}.hidden" in names:
                cache[f"layers.{l}.hidden"] = x
            if f"layers.{l}.cell" in names:
                cache[f"layers.{l}.cell"] = c
        out = self.readout(x) if logits else None  # [B, T, V]
        return out, {n: cache[n] for n in names}

    def step(
        self, tokens_t: jax.Array, h: jax.Array, c: jax.Array, names: Sequence[str] = (), logits: bool = True
    ) -> tuple[jax.Array | None, dict[str, jax.Array], jax.Array, jax.Array]:
        """One position for every row, from the states after the previous position (zeros before
        the first): tokens_t [B] int, h and c [depth, B, H] for layers 0..depth-1 (depth as in
        `forward`: every layer when logits are asked, else up to the highest layer named).
        Returns logits [B, V] (or None), the named activations at this position ([B, width]) and the
        new h, c [depth, B, H]. Running it over positions 0..T-1 equals `forward`."""
        names = _check_names(self.config, names)
        cache: dict[str, jax.Array] = {}
        x = self.embed(tokens_t)  # [B, d_embed]
        if "embed" in names:
            cache["embed"] = x
        hs, cs = [], []
        for l in range(h.shape[0]):
            x, cell = self.layers[l].step(x, h[l], c[l])  # [B, H] each
            hs.append(x)
            cs.append(cell)
            if f"layers.{l}.hidden" in names:
                cache[f"layers.{l}.hidden"] = x
            if f"layers.{l}.cell" in names:
                cache[f"layers.{l}.cell"] = cell
        out = self.readout(x) if logits else None
        return out, {n: cache[n] for n in names}, (jnp.stack(hs) if hs else h), (jnp.stack(cs) if cs else c)


# ---------------------------------------------------------------------------- batched inference
#
# Whole sequences go through `RecurrentModel.forward` (`ModelFamily.run_batched`); a set of strings that
# share prefixes goes position by position from each parent prefix's states (`RecurrentFamily.prefix_steps`).


def activation_shape(config: RecurrentConfig, name: str, batch: int, length: int) -> tuple[int, ...]:
    """The shape of activation ``name`` for ``batch`` sequences of ``length`` tokens: [batch, length, width]."""
    _check_names(config, [name])
    assert config.d_embed is not None  # set by RecurrentConfig.__post_init__
    return (batch, length, config.d_embed if name == "embed" else config.d_hidden)


def _jitted_forward(config: RecurrentConfig, names: tuple[str, ...], what: str | None):
    """jit of (params, tokens [B, T]) -> (logits / log-probs [B, T, V] or None, {name: [B, T, d]})."""
    return jitted_forward(RecurrentModel, config, names, what)


def _run_prefix(
    config: RecurrentConfig,
    fn,
    params: dict,
    depth: int,
    levels: list,
    batch_size: int,
    out: np.ndarray | None,
    cache: dict[str, np.ndarray],
    on_step: Callable[[int], None],
    prefix_cache: dict[str, np.ndarray] | None = None,
) -> None:
    """Each distinct prefix once, position by position, from its parent prefix's states (the model
    is causal: its output at t depends on tokens[:, :t+1] only). Only one level's states are kept.
    ``cache`` ({name: [N, T, width]}) or ``prefix_cache`` ({name: [U, width]}, one row per distinct prefix in
    `predictive_models.prefixes` order) is filled in place; only one of them holds names."""
    offset = 0  # the first prefix_cache row of this level
    H = config.d_hidden
    h_prev = c_prev = np.zeros((depth, 1, H), np.float32)  # [depth, u_{t-1}, H]: states of each prefix
    rows = call_rows(batch_size, levels)  # every call padded to one shape: one compilation
    for t, (parent, last, inverse) in enumerate(levels):
        u = len(last)
        if t == 0:
            parent = np.zeros(u, np.int64)
        h_new, c_new = np.empty((depth, u, H), np.float32), np.empty((depth, u, H), np.float32)
        res, acts = (np.empty((u, config.vocab_size), np.float32) if out is not None else None), {}
        for start in range(0, u, rows):
            stop = min(start + rows, u)
            idx = parent[start:stop]
            o, a, h, c = jax.device_get(
                fn(
                    params,
                    pad_rows(last[start:stop].astype(np.int32), rows),
                    pad_rows(h_prev[:, idx].swapaxes(0, 1), rows).swapaxes(0, 1),
                    pad_rows(c_prev[:, idx].swapaxes(0, 1), rows).swapaxes(0, 1),
                )
            )
            h_new[:, start:stop], c_new[:, start:stop] = h[:, : stop - start], c[:, : stop - start]
            if res is not None:
                res[start:stop] = o[: stop - start]
            for n in cache:
                acts.setdefault(n, np.empty((u, cache[n].shape[2]), np.float32))[start:stop] = a[n][: stop - start]
            for n, store in (prefix_cache or {}).items():  # straight into the store: no level buffer
                store[offset + start : offset + stop] = a[n][: stop - start]
        h_prev, c_prev = h_new, c_new
        if out is not None:
            assert res is not None  # made above whenever out is given
            out[:, t] = res[inverse]
        for n in cache:
            cache[n][:, t] = np.take(acts[n], inverse, axis=0)
        offset += u
        on_step(1)


@functools.cache
def _jitted_step(config: RecurrentConfig, names: tuple[str, ...], what: str | None):
    """jit of (params, tokens_t [B], h, c [depth, B, H]) -> (logits / log-probs [B, V] or None,
    {name: [B, d]}, new h, new c)."""
    gdef = graphdef(config)

    def run(params: dict, tokens_t: jax.Array, h: jax.Array, c: jax.Array):
        logits, acts, h, c = nnx.merge(gdef, params).step(tokens_t, h, c, names, logits=what is not None)
        if what == "log_probs":
            logits = jax.nn.log_softmax(logits, axis=-1)
        return logits, acts, h, c

    return jax.jit(run)


# ---------------------------------------------------------------------------- the family


class RecurrentFamily(ModelFamily):
    """The RNN / GRU / LSTM models as a `ModelFamily` (kinds "rnn", "gru", "lstm": `RecurrentConfig.kind`)."""

    config_class = RecurrentConfig
    module_class = RecurrentModel
    kinds = KINDS
    # annotated, so that these static methods are not checked against ModelFamily's instance methods' types
    activation_names: staticmethod[[RecurrentConfig], list[str]] = staticmethod(activation_names)
    layer_names: staticmethod[[RecurrentConfig], list[str]] = staticmethod(layer_names)
    probe_layer_name: staticmethod[[RecurrentConfig], str] = staticmethod(probe_layer_name)
    activation_shape: staticmethod[[RecurrentConfig, str, int, int], tuple[int, ...]] = staticmethod(activation_shape)

    def prefix_steps(
        self,
        config: RecurrentConfig,
        params: dict,
        names: tuple[str, ...],
        what: str | None,
        levels: list,
        batch_size: int,
        out: np.ndarray | None,
        cache: dict[str, np.ndarray],
        on_step: Callable[[int], None],
        prefix_cache: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Each distinct prefix once, from its parent prefix's states (`RecurrentModel.step`, `_run_prefix`)."""
        _run_prefix(
            config,
            _jitted_step(config, names, what),
            params,
            _depth(config, names, what is not None),
            levels,
            batch_size,
            out,
            cache,
            on_step,
            prefix_cache,
        )

    def memory_sizes(self, config: RecurrentConfig) -> ModelSizes:
        """Arithmetic only (the preflight refuses absurd sizes before anything is built). Parameters: the
        embedding, each layer's input kernel and bias and recurrent kernel (the GRU's recurrent bias too), the
        readout. Kept per token for the backward pass: the embedding, each layer's gate pre-activations
        (3 g h) and states (2 h), the logits and their softmax (3 V)."""
        V, n_layers, kind = config.vocab_size, config.n_layers, config.kind
        g, h, e = GATES[kind], config.d_hidden, config.d_embed
        assert e is not None  # set by RecurrentConfig.__post_init__
        n_params = (
            V * e
            + g * h * (e + h + 1)
            + (n_layers - 1) * g * h * (2 * h + 1)
            + n_layers * g * h * (kind == "gru")
            + h * V
            + V
        )
        per_token = e + n_layers * (3 * g * h + 2 * h) + 3 * V
        return ModelSizes(n_params, n_layers, h * n_layers, per_token)


FAMILY = RecurrentFamily()

# The family's functions as this module's (their signatures as before); the parameter plumbing is `ModelFamily`'s.
graphdef, abstract_params, n_params, init_params = (
    FAMILY.graphdef,
    FAMILY.abstract_params,
    FAMILY.n_params,
    FAMILY.init_params,
)
to_state, to_model, logits_fn = FAMILY.to_state, FAMILY.to_model, FAMILY.logits_fn
run_batched, prefix_activations, activations = FAMILY.run_batched, FAMILY.prefix_activations, FAMILY.activations
compute_activations, compute_logits, compute_log_probs = (
    FAMILY.compute_activations,
    FAMILY.compute_logits,
    FAMILY.compute_log_probs,
)
pure_params = nnx_params.pure_params
