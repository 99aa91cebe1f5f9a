"""The paper's small decoder-only transformer (Flax NNX), and fast batched activations and logits.

Architecture (Shai et al. 2024, as in TransformerLens): token embedding plus learned absolute
position embedding; ``n_layers`` pre-LayerNorm blocks, each causal multi-head attention
(``n_heads`` x ``d_head``, output projection) then a ReLU MLP of width ``d_mlp``, both added to the
residual stream; a final LayerNorm; an untied unembedding. All parameters are float32 with
explicit dtypes, so a global ``jax_enable_x64`` never turns the model into float64.

``params_state`` arguments below accept the ``nnx.State`` from ``nnx.split(model)`` (what
`predictive_models.train` and `predictive_models.load_model` return), the model itself, or the
plain nested dict of arrays from ``nnx.to_pure_dict(state)``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from predictive_models import nnx_params

DTYPE = jnp.float32


@dataclass(frozen=True)
class TransformerConfig:
    """Size of the model. Defaults are the paper's Mess3 model except ``vocab_size`` (pass it)."""

    vocab_size: int
    context_length: int = 10
    n_layers: int = 4
    d_model: int = 64
    n_heads: int = 1
    d_head: int = 8
    d_mlp: int = 256

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"TransformerConfig.{field.name} must be an int; got {value!r} "
                                 f"({type(value).__name__}). Pass a positive integer.")
            if value < 1:
                raise ValueError(f"TransformerConfig.{field.name} must be >= 1; got {value}. "
                                 f"Pass a positive integer.")
            object.__setattr__(self, field.name, int(value))

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TransformerConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"TransformerConfig: unknown field(s) {sorted(unknown)}; "
                             f"known fields are {sorted(known)}.")
        return cls(**d)


def _normal(std: float) -> nnx.Initializer:
    return nnx.initializers.normal(stddev=std)


class Attention(nnx.Module):
    """Causal multi-head self-attention: softmax(q k^T / sqrt(d_head) + causal mask) v, then W_O."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        c = config
        self.n_heads, self.d_head = c.n_heads, c.d_head
        std = 0.02
        self.qkv = nnx.Linear(c.d_model, 3 * c.n_heads * c.d_head, kernel_init=_normal(std),
                              dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)
        self.out = nnx.Linear(c.n_heads * c.d_head, c.d_model,
                              kernel_init=_normal(std / np.sqrt(2 * c.n_layers)),
                              dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)

    def heads(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Queries, keys and values: [..., d_model] -> three [..., n_heads, d_head]."""
        qkv = self.qkv(x).reshape(*x.shape[:-1], 3, self.n_heads, self.d_head)
        return qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]

    def attend(self, q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
        """q [B, Tq, H, Dh], k and v [B, Tk, H, Dh], mask [Tq, Tk] bool (True = may attend)."""
        scores = jnp.einsum("bthd,bshd->bhts", q, k) / np.float32(np.sqrt(self.d_head))
        scores = jnp.where(mask, scores, jnp.finfo(DTYPE).min)
        pattern = jax.nn.softmax(scores, axis=-1)  # [B, H, Tq, Tk]
        z = jnp.einsum("bhts,bshd->bthd", pattern, v)
        return self.out(z.reshape(*z.shape[:2], self.n_heads * self.d_head))  # [B, Tq, d_model]

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, d_model] -> [B, T, d_model]
        T = x.shape[1]
        causal = jnp.tril(jnp.ones((T, T), dtype=bool))  # query t sees keys s <= t
        return self.attend(*self.heads(x), causal)


class MLP(nnx.Module):
    """ReLU feed-forward layer d_model -> d_mlp -> d_model."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        c = config
        self.up = nnx.Linear(c.d_model, c.d_mlp, kernel_init=_normal(0.02),
                             dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)
        self.down = nnx.Linear(c.d_mlp, c.d_model, kernel_init=_normal(0.02 / np.sqrt(2 * c.n_layers)),
                               dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down(jax.nn.relu(self.up(x)))


class Block(nnx.Module):
    """Pre-LayerNorm block: x + attn(ln1(x)), then + mlp(ln2(x))."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        d = config.d_model
        self.ln1 = nnx.LayerNorm(d, epsilon=1e-5, dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)
        self.attn = Attention(config, rngs=rngs)
        self.ln2 = nnx.LayerNorm(d, epsilon=1e-5, dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)
        self.mlp = MLP(config, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))

    def step(self, x: jax.Array, k_past: jax.Array, v_past: jax.Array, t: jax.Array
             ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """One new position t given the keys/values of positions < t (a KV cache).

        x [B, d_model]; k_past, v_past [B, T_max, H, Dh] (entries at positions >= t are ignored).
        Returns the new residual [B, d_model] and this position's key and value [B, H, Dh].
        """
        q, k, v = self.attn.heads(self.ln1(x))
        positions = jnp.arange(k_past.shape[1])
        here = (positions == t)[None, :, None, None]
        keys = jnp.where(here, k[:, None], k_past)
        values = jnp.where(here, v[:, None], v_past)
        x = x + self.attn.attend(q[:, None], keys, values, (positions <= t)[None, :])[:, 0]
        return x + self.mlp(self.ln2(x)), k, v


class Transformer(nnx.Module):
    """Paper architecture: token embedding + learned absolute positions, pre-LayerNorm blocks
    (attention with causal mask, n_heads x d_head, output projection; ReLU MLP d_mlp), final
    LayerNorm, untied unembedding. float32 params with explicit dtypes.

    Initialisation as GPT-2: weights and embeddings normal(0.02), the projections that write
    into the residual stream (attention output, MLP down) normal(0.02 / sqrt(2 n_layers)), biases 0,
    LayerNorm scale 1. LayerNorm epsilon 1e-5.
    """

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        c = config
        self.config = c
        self.embed = nnx.Embed(c.vocab_size, c.d_model, embedding_init=_normal(0.02),
                               dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)
        self.pos_embed = nnx.Param(_normal(0.02)(rngs.params(), (c.context_length, c.d_model), DTYPE))
        self.blocks = nnx.List([Block(c, rngs=rngs) for _ in range(c.n_layers)])
        self.ln_final = nnx.LayerNorm(c.d_model, epsilon=1e-5, dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)
        self.unembed = nnx.Linear(c.d_model, c.vocab_size, kernel_init=_normal(0.02),
                                  dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """tokens [B, T] int, T <= context_length -> logits [B, T, vocab_size]."""
        return self._forward(tokens, collect=False)[0]

    def residual_stream(self, tokens: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Logits and the residual stream by layer name (see `layer_names`), each [B, T, d_model]."""
        return self._forward(tokens, collect=True)

    def _forward(self, tokens: jax.Array, collect: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
        T = tokens.shape[-1]
        if T > self.config.context_length:
            raise ValueError(f"tokens have length {T} > context_length {self.config.context_length}; "
                             f"pass at most context_length tokens per sequence.")
        stream: dict[str, jax.Array] = {}
        x = self.embed(tokens) + self.pos_embed[...][:T]  # [B, T, d_model]
        if collect:
            stream["embedding"] = x
        for i, block in enumerate(self.blocks):
            x = block(x)
            if collect:
                stream[f"block_{i + 1}"] = x
        x = self.ln_final(x)
        if collect:
            stream["final_ln"] = x
        return self.unembed(x), stream  # logits [B, T, V]


def decode_step(model: Transformer, tokens_t: jax.Array, t: jax.Array, k_past: jax.Array,
                v_past: jax.Array) -> tuple[jax.Array, dict[str, jax.Array], jax.Array, jax.Array]:
    """The model at one position t, given the cached keys/values of the earlier positions.

    tokens_t [B] int; k_past, v_past [B, n_layers, T_max, H, Dh] (positions >= t ignored).
    Returns logits [B, V], the residual stream by layer name (each [B, d_model]) and this
    position's keys and values [B, n_layers, H, Dh]. Equals the full forward at position t
    (the model is causal), so a set of sequences that share prefixes is computed once per prefix.
    """
    stream: dict[str, jax.Array] = {}
    x = model.embed(tokens_t) + model.pos_embed[...][t]  # [B, d_model]
    stream["embedding"] = x
    ks, vs = [], []
    for i, block in enumerate(model.blocks):
        x, k, v = block.step(x, k_past[:, i], v_past[:, i], t)
        stream[f"block_{i + 1}"] = x
        ks.append(k)
        vs.append(v)
    x = model.ln_final(x)
    stream["final_ln"] = x
    return model.unembed(x), stream, jnp.stack(ks, axis=1), jnp.stack(vs, axis=1)


def layer_names(config: TransformerConfig) -> list[str]:
    """Names of the residual-stream read-outs, in order: embedding, block_1..block_L, final_ln."""
    return ["embedding", *[f"block_{i + 1}" for i in range(config.n_layers)], "final_ln"]


def probe_layer_name(config: TransformerConfig) -> str:
    """The layer the paper probes: the residual stream after the last block, before the final LN."""
    return f"block_{config.n_layers}"


# ---------------------------------------------------------------------------- params plumbing


def graphdef(config: TransformerConfig) -> nnx.GraphDef:
    """The model's graph definition (structure without values), built without allocating params."""
    return nnx_params.abstract_split(Transformer, config)[0]


def abstract_params(config: TransformerConfig) -> dict:
    """The parameters' pure-dict structure with ``jax.ShapeDtypeStruct`` leaves (nothing allocated)."""
    return nnx.to_pure_dict(nnx_params.abstract_split(Transformer, config)[1])


def init_params(config: TransformerConfig, seed: int | jax.Array = 0) -> dict:
    """Fresh parameters as a plain nested dict of float32 arrays (``nnx.to_pure_dict`` form).

    ``seed``: an int or a ``jax.random.key``. Jitted (eager NNX initialisation is slow on CPU).
    """
    return nnx_params.init_params(Transformer, config, seed)


pure_params = nnx_params.pure_params


def to_state(config: TransformerConfig, params: Any) -> nnx.State:
    """Parameters in any accepted form -> the ``nnx.State`` of a `Transformer` of ``config``."""
    return nnx.split(nnx.merge(graphdef(config), pure_params(params)))[1]


def to_model(config: TransformerConfig, params: Any) -> Transformer:
    """Parameters in any accepted form -> a `Transformer` holding them."""
    return nnx.merge(graphdef(config), pure_params(params))


# ---------------------------------------------------------------------------- batched inference
#
# Many analysis sets (every length-T string, an exact evaluation set) share prefixes, and the model
# is causal: its output at position t depends on tokens[:, :t+1] only. So we compute each distinct
# prefix once, position by position, with a KV cache of its ancestors (`decode_step`): for all 3^10
# strings of length 10 that is 88,572 token computations instead of 590,490. Sets without much
# sharing go through the plain full forward.


# ``what`` is "logits", "log_probs", or a tuple of layer names (activations of those layers only).
def _outputs(config: TransformerConfig, what: str | tuple[str, ...], logits: jax.Array,
             stream: dict[str, jax.Array]):
    if isinstance(what, tuple):
        return jnp.stack([stream[name] for name in what], axis=1)  # [B, n_names, (T,) d]
    if what == "log_probs":
        return jax.nn.log_softmax(logits, axis=-1)
    return logits


@functools.lru_cache(maxsize=None)
def _jitted_full(config: TransformerConfig, what: str | tuple[str, ...]):
    gdef = graphdef(config)

    def run(params: dict, tokens: jax.Array) -> jax.Array:  # tokens [B, T]
        logits, stream = nnx.merge(gdef, params).residual_stream(tokens)
        return _outputs(config, what, logits, stream)  # [B, T, V] or [B, L+2, T, d]

    return jax.jit(run)


@functools.lru_cache(maxsize=None)
def _jitted_step(config: TransformerConfig, what: str | tuple[str, ...]):
    gdef = graphdef(config)

    def run(params: dict, tokens_t: jax.Array, t: jax.Array, k_past: jax.Array, v_past: jax.Array):
        logits, stream, k, v = decode_step(nnx.merge(gdef, params), tokens_t, t, k_past, v_past)
        return _outputs(config, what, logits, stream), k, v  # [B, ...], [B, L, H, Dh] x 2

    return jax.jit(run)


def _pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    if a.shape[0] == rows:
        return a
    return np.concatenate([a, np.zeros((rows - a.shape[0], *a.shape[1:]), a.dtype)])


def _prefix_tree(tokens: np.ndarray, vocab_size: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Distinct prefixes level by level: for each t, (parent id, last token, inverse) where the
    distinct prefixes of length t+1 are numbered 0..u_t-1 and ``inverse[n]`` is that of row n."""
    ids = np.zeros(tokens.shape[0], np.int64)
    levels = []
    for t in range(tokens.shape[1]):
        _, first, inverse = np.unique(ids * vocab_size + tokens[:, t], return_index=True, return_inverse=True)
        levels.append((ids[first], tokens[first, t], inverse.reshape(-1)))
        ids = inverse.reshape(-1)
    return levels


def _run_prefix(config: TransformerConfig, params: dict, tokens: np.ndarray, batch_size: int,
                what: str | tuple[str, ...],
                levels: list, out: np.ndarray, on_step: Callable[[int], None]) -> None:
    c = config
    T = tokens.shape[1]
    fn = _jitted_step(c, what)
    keys: list[np.ndarray] = []  # per level s: [u_s, L, H, Dh] keys of each distinct prefix's last position
    values: list[np.ndarray] = []
    ancestors = np.zeros((1, 0), np.int64)  # [u_{t-1}, t-1]: ids of a prefix's own prefixes at levels < t-1
    # two padded shapes (two compilations): one for small levels, one for full batches
    big = min(batch_size, max(len(level[1]) for level in levels))
    small = min(256, big)
    for t, (parent, last, inverse) in enumerate(levels):
        ancestors = np.concatenate([ancestors[parent], parent[:, None]], axis=1) if t else np.zeros((len(last), 0), np.int64)
        u = len(last)
        res, k_new, v_new = None, np.empty((u, c.n_layers, c.n_heads, c.d_head), np.float32), None
        v_new = np.empty_like(k_new)
        for start in range(0, u, big):
            stop = min(start + big, u)
            rows = small if stop - start <= small else big
            k_past = np.zeros((rows, c.n_layers, T, c.n_heads, c.d_head), np.float32)
            v_past = np.zeros_like(k_past)
            for s in range(t):
                idx = ancestors[start:stop, s]
                k_past[: stop - start, :, s] = keys[s][idx]
                v_past[: stop - start, :, s] = values[s][idx]
            o, k, v = jax.device_get(fn(params, _pad_rows(last[start:stop].astype(np.int32), rows),
                                        np.int32(t), k_past, v_past))
            if res is None:
                res = np.empty((u, *o.shape[1:]), np.float32)
            res[start:stop], k_new[start:stop], v_new[start:stop] = o[: stop - start], k[: stop - start], v[: stop - start]
        keys.append(k_new)
        values.append(v_new)
        if isinstance(what, tuple):  # out [N, n_names, T, d], a view of the layer-major store
            for i in range(res.shape[1]):
                out[:, i, t] = np.take(res[:, i], inverse, axis=0)
        else:
            out[:, t] = res[inverse]
        on_step(1)


def _run_full(config: TransformerConfig, params: dict, tokens: np.ndarray, batch_size: int,
              what: str | tuple[str, ...],
              out: np.ndarray, on_step: Callable[[int], None]) -> None:
    fn = _jitted_full(config, what)
    N = tokens.shape[0]
    rows = min(batch_size, N)
    for start in range(0, N, rows):
        stop = min(start + rows, N)
        res = jax.device_get(fn(params, _pad_rows(tokens[start:stop], rows)))
        out[start:stop] = res[: stop - start]
    on_step(tokens.shape[1])


def _batched(config: TransformerConfig, params_state: Any, tokens: np.ndarray, batch_size: int,
             what: str | tuple[str, ...], method: str = "auto", on_step: Callable[[int], None] | None = None
             ) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be a 2-D integer array [N, T]; got shape {tokens.shape}.")
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be integers; got dtype {tokens.dtype}.")
    N, T = tokens.shape
    if T > config.context_length:
        raise ValueError(f"tokens have length {T} > context_length {config.context_length}; "
                         f"pass at most context_length tokens per sequence.")
    if N and (tokens.min() < 0 or tokens.max() >= config.vocab_size):
        raise ValueError(f"tokens must lie in [0, {config.vocab_size}); got values in "
                         f"[{tokens.min()}, {tokens.max()}].")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    if method not in ("auto", "prefix", "full"):
        raise ValueError(f"method must be 'auto', 'prefix' or 'full'; got {method!r}.")
    if isinstance(what, tuple):  # layer-major, so each layer's [N, T, d_model] block is contiguous
        store = np.empty((len(what), N, T, config.d_model), np.float32)
        out = store.transpose(1, 0, 2, 3)  # a view [N, L+2, T, d], rows first like the outputs
    else:
        store = out = np.empty((N, T, config.vocab_size), np.float32)
    if N == 0 or T == 0:
        return store
    tokens = tokens.astype(np.int32)
    params = jax.tree.map(jnp.asarray, pure_params(params_state))
    levels = _prefix_tree(tokens, config.vocab_size) if method != "full" else None
    step = on_step or (lambda n: None)
    if method == "prefix" or (method == "auto" and sum(len(lv[1]) for lv in levels) <= 0.5 * N * T):
        _run_prefix(config, params, tokens, int(batch_size), what, levels, out, step)
    else:
        _run_full(config, params, tokens, int(batch_size), what, out, step)
    return store


def compute_activations(config: TransformerConfig, params_state: Any, tokens: np.ndarray, *,
                        batch_size: int = 4096, method: str = "auto", names: Sequence[str] | None = None,
                        on_step: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Residual stream of every sequence: tokens [N, T] -> {layer name: float32 [N, T, d_model]}.

    Jitted and batched. ``method="prefix"`` computes each distinct prefix once with a KV cache
    (several times faster when rows share prefixes, e.g. every string of a length); ``"full"``
    runs the whole sequence; ``"auto"`` picks prefix when it at least halves the work.
    ``names`` (default: every `layer_names` entry) are the layers returned; only those are copied
    out per row. Keys are in the order asked; each array is C-contiguous (a slice of one
    [n_names, N, T, d] block). ``on_step(n)`` (for a progress bar) is told each time n more of the
    T positions are done.
    """
    allowed = layer_names(config)
    wanted = tuple(allowed if names is None else names)
    unknown = [n for n in wanted if n not in allowed]
    if unknown or not wanted or len(set(wanted)) != len(wanted):
        raise ValueError(f"names must be distinct layer names from {allowed}; got {list(wanted)}.")
    acts = _batched(config, params_state, tokens, batch_size, wanted, method, on_step)
    return {name: acts[i] for i, name in enumerate(wanted)}


def iter_activations(config: TransformerConfig, params_state: Any, tokens: np.ndarray, *,
                     chunk_sequences: int = 1024, names: Sequence[str] | None = None, batch_size: int = 4096,
                     method: str = "full") -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """`compute_activations` in blocks of sequences: yields (start, stop, {name: float32 [stop - start, T, d]}).

    Only the layers in ``names`` are computed and copied out, one block at a time, so memory does not
    grow with the number of sequences (the sampled regime: sampled sequences rarely share prefixes, so
    ``method="full"`` is the default). The blocks are those of ``compute_activations`` on
    ``tokens[start:stop]``, in order.
    """
    tokens = np.asarray(tokens)
    if int(chunk_sequences) != chunk_sequences or chunk_sequences < 1:
        raise ValueError(f"chunk_sequences must be a positive integer; got {chunk_sequences!r}.")
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be a 2-D integer array [N, T]; got shape {tokens.shape}.")
    size = min(int(chunk_sequences), tokens.shape[0])
    for start in range(0, tokens.shape[0], size):
        stop = min(start + size, tokens.shape[0])
        block = _pad_rows(tokens[start:stop], size)  # one shape for every block: one compilation
        acts = compute_activations(config, params_state, block, batch_size=batch_size, method=method, names=names)
        yield start, stop, {name: a[: stop - start] for name, a in acts.items()}


def compute_logits(config: TransformerConfig, params_state: Any, tokens: np.ndarray, *,
                   batch_size: int = 4096, method: str = "auto") -> np.ndarray:
    """Logits of every sequence: tokens [N, T] -> float32 [N, T, vocab_size]. Jitted, batched."""
    return _batched(config, params_state, tokens, batch_size, "logits", method)


def compute_log_probs(config: TransformerConfig, params_state: Any, tokens: np.ndarray, *,
                      batch_size: int = 4096, method: str = "auto") -> np.ndarray:
    """Next-token log-probabilities (log-softmax of the logits): float32 [N, T, vocab_size]."""
    return _batched(config, params_state, tokens, batch_size, "log_probs", method)
