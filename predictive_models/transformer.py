"""The paper's small decoder-only transformer and its variants (Flax NNX), with named activations.

Architecture (Shai et al. 2024, as in TransformerLens): token embedding plus learned absolute
position embedding; ``n_layers`` pre-LayerNorm blocks, each causal multi-head attention
(``n_heads`` x ``d_head``, output projection) then a ReLU MLP of width ``d_mlp``, both added to the
residual stream; a final LayerNorm; an untied unembedding. All parameters are float32 with
explicit dtypes, so a global ``jax_enable_x64`` never turns the model into float64.

Variants (`TransformerConfig` fields; the defaults are the model above, whose parameter tree they
leave unchanged): ``attn_only`` (blocks without MLP and without ln2), ``layer_norm = False`` (no
LayerNorm anywhere: ln1, ln2 and ln_final are identities with no parameters) and
``positional = "none"`` (no position embedding: the causal mask is the only source of order).

Activations by name, TransformerLens style (the one list is `activation_names`; the short names of
earlier versions are `aliases`). `activations` / `compute_activations` / `run_batched` return
exactly the names asked and compute only what they need.

``params_state`` arguments below accept the ``nnx.State`` from ``nnx.split(model)`` (what
`predictive_models.train` and `predictive_models.load_model` return), the model itself, or the
plain nested dict of arrays from ``nnx.to_pure_dict(state)``.

The family (`TransformerFamily`, registered by `predictive_models.models`) is the `ModelFamily` of these
models: the parameter plumbing is the protocol's own; this module adds the names, the modules, the memory
sizes and its own batched inference (aliases, attention patterns, a KV cache over shared prefixes).
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

from predictive_models.model_family import ModelFamily, ModelSizes, check_tokens, check_what_and_method, pad_rows
from predictive_models.nnx_params import pure_params
from predictive_models.prefixes import PrefixActivations, call_rows, prefix_index, prefix_tree

DTYPE = jnp.float32
POSITIONAL = ("learned", "none")
_BOOL_FIELDS = ("attn_only", "layer_norm")


@dataclass(frozen=True)
class TransformerConfig:
    """Size and variant of the model. Defaults are the paper's Mess3 model except ``vocab_size`` (pass it).

    vocab_size: tokens 0..vocab_size-1. context_length: the longest input (and the number of learned
    positions). n_layers: blocks. d_model: residual-stream width. n_heads x d_head: attention heads
    and their width. d_mlp: hidden width of each block's ReLU MLP (unused when ``attn_only``).
    attn_only: True drops every block's MLP (and its LayerNorm ln2): an attention-only transformer.
    layer_norm: False removes every LayerNorm (ln1, ln2, ln_final become identities, with no
    parameters). positional: "learned" (a learned absolute position embedding added to the token
    embedding) or "none" (no position embedding, no ``pos_embed`` parameter).
    """

    vocab_size: int
    context_length: int = 10
    n_layers: int = 4
    d_model: int = 64
    n_heads: int = 1
    d_head: int = 8
    d_mlp: int = 256
    attn_only: bool = False
    layer_norm: bool = True
    positional: str = "learned"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in _BOOL_FIELDS:
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError(
                        f"TransformerConfig.{field.name} must be a bool; got {value!r} "
                        f"({type(value).__name__}). Pass true or false."
                    )
                object.__setattr__(self, field.name, bool(value))
                continue
            if field.name == "positional":
                if not isinstance(value, str) or value not in POSITIONAL:
                    raise ValueError(
                        f"TransformerConfig.positional must be one of {list(POSITIONAL)}; got "
                        f'{value!r}. Pass "learned" (learned absolute positions) or "none".'
                    )
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(
                    f"TransformerConfig.{field.name} must be an int; got {value!r} "
                    f"({type(value).__name__}). Pass a positive integer."
                )
            if value < 1:
                raise ValueError(f"TransformerConfig.{field.name} must be >= 1; got {value}. Pass a positive integer.")
            object.__setattr__(self, field.name, int(value))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransformerConfig:
        """The config of a `to_dict` dict; a dict from before the variants existed gives the default variant."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(
                f"TransformerConfig: unknown field(s) {sorted(unknown)}; known fields are {sorted(known)}."
            )
        return cls(**d)


# ---------------------------------------------------------------------------- names


def activation_names(config: TransformerConfig) -> list[str]:
    """Every activation the model exposes, in forward order (TransformerLens names, layers from 0).

    Each is float32 [B, T, d_model] unless said:

    - ``hook_embed``: the token embedding.
    - ``hook_pos_embed`` (only with positional = "learned"): the position embedding, broadcast to
      [B, T, d_model].
    - per block l = 0..n_layers-1:
      ``blocks.{l}.hook_resid_pre``: the residual stream entering block l (block 0: embedding + positions);
      ``blocks.{l}.attn.hook_pattern``: [B, n_heads, T, T], the softmax attention weights of query t
      over keys s (zero for s > t, each row sums to 1);
      ``blocks.{l}.hook_attn_out``: the attention output added to the stream;
      ``blocks.{l}.hook_resid_mid`` (not with attn_only): the stream after attention, before the MLP;
      ``blocks.{l}.hook_mlp_out`` (not with attn_only): the MLP output added to the stream;
      ``blocks.{l}.hook_resid_post``: the stream leaving block l (= resid_pre of block l+1).
    - ``ln_final.hook_normalized`` (only with layer_norm): the final LayerNorm's output, what the
      unembedding reads.
    """
    names = ["hook_embed"]
    if config.positional == "learned":
        names.append("hook_pos_embed")
    for l in range(config.n_layers):
        b = f"blocks.{l}."
        names += [b + "hook_resid_pre", b + "attn.hook_pattern", b + "hook_attn_out"]
        if not config.attn_only:
            names += [b + "hook_resid_mid", b + "hook_mlp_out"]
        names.append(b + "hook_resid_post")
    if config.layer_norm:
        names.append("ln_final.hook_normalized")
    return names


def aliases(config: TransformerConfig) -> dict[str, str]:
    """The short residual-stream names (used by probe.json, figures and the report) -> canonical names:
    ``embedding`` = ``blocks.0.hook_resid_pre``, ``block_{l+1}`` = ``blocks.{l}.hook_resid_post``,
    ``final_ln`` = ``ln_final.hook_normalized`` (only with layer_norm)."""
    out = {"embedding": "blocks.0.hook_resid_pre"}
    out.update({f"block_{l + 1}": f"blocks.{l}.hook_resid_post" for l in range(config.n_layers)})
    if config.layer_norm:
        out["final_ln"] = "ln_final.hook_normalized"
    return out


def layer_names(config: TransformerConfig) -> list[str]:
    """The default probed set, residual-stream read-outs in order: embedding, block_1..block_L,
    final_ln (not with layer_norm = False). Aliases: see `aliases`."""
    return list(aliases(config))


def probe_layer_name(config: TransformerConfig) -> str:
    """The layer the paper probes: the residual stream after the last block, before the final LN."""
    return f"block_{config.n_layers}"


def is_pattern(name: str) -> bool:
    """Whether a canonical activation name is an attention pattern ([B, n_heads, T, T])."""
    return name.endswith(".attn.hook_pattern")


def activation_shape(config: TransformerConfig, name: str, batch: int, length: int) -> tuple[int, ...]:
    """The shape of activation ``name`` (canonical or alias) for ``batch`` sequences of ``length`` tokens."""
    name = _canonical(config, (name,))[0]
    if is_pattern(name):
        return (batch, config.n_heads, length, length)
    return (batch, length, config.d_model)


def _canonical(config: TransformerConfig, names: Sequence[str]) -> tuple[str, ...]:
    """Validate ``names`` (canonical names or aliases, distinct) -> their canonical names, in order."""
    allowed = activation_names(config)
    alias = aliases(config)
    names = (names,) if isinstance(names, str) else tuple(names)
    unknown = [n for n in names if n not in alias and n not in allowed]
    if unknown or len(set(names)) != len(names):
        raise ValueError(
            f"names must be distinct layer names (activation names {allowed} or their aliases "
            f"{list(alias)}) of this transformer; got {list(names)}"
            + (f" ({unknown} unknown)" if unknown else " (repeated)")
            + "."
        )
    return tuple(alias.get(n, n) for n in names)


def _stage(config: TransformerConfig, canonical: Sequence[str], logits: bool) -> int:
    """How far the forward must run, in half-blocks: 2l + 1 = block l's attention done, 2l + 2 = its
    MLP done too. Logits and the final LayerNorm need all 2 n_layers; nothing above the highest
    activation asked is run."""
    full = 2 * config.n_layers
    if logits or "ln_final.hook_normalized" in canonical:
        return full
    stage = 0
    for name in canonical:
        if not name.startswith("blocks."):
            continue
        _, l, hook = name.split(".", 2)
        l = int(l)
        if hook == "hook_resid_pre":
            stage = max(stage, 2 * l)
        elif hook in ("attn.hook_pattern", "hook_attn_out", "hook_resid_mid"):
            stage = max(stage, 2 * l + 1)
        else:  # hook_mlp_out, hook_resid_post
            stage = max(stage, 2 * l + 2 if not config.attn_only else 2 * l + 1)
    return stage


def _blocks_run(stage: int) -> int:
    """Blocks that run (at least their attention) to reach ``stage``."""
    return (stage + 1) // 2


# ---------------------------------------------------------------------------- the modules


def _normal(std: float) -> nnx.Initializer:
    return nnx.initializers.normal(stddev=std)


def _layer_norm(config: TransformerConfig, rngs: nnx.Rngs) -> nnx.LayerNorm | None:
    """A LayerNorm of width d_model (epsilon 1e-5), or None (the identity) when layer_norm is off."""
    if not config.layer_norm:
        return None
    return nnx.LayerNorm(config.d_model, epsilon=1e-5, dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)


def _apply(ln: nnx.LayerNorm | None, x: jax.Array) -> jax.Array:
    return x if ln is None else ln(x)


class Attention(nnx.Module):
    """Causal multi-head self-attention: softmax(q k^T / sqrt(d_head) + causal mask) v, then W_O."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        c = config
        self.n_heads, self.d_head = c.n_heads, c.d_head
        std = 0.02
        self.qkv = nnx.Linear(
            c.d_model, 3 * c.n_heads * c.d_head, kernel_init=_normal(std), dtype=DTYPE, param_dtype=DTYPE, rngs=rngs
        )
        self.out = nnx.Linear(
            c.n_heads * c.d_head,
            c.d_model,
            kernel_init=_normal(std / np.sqrt(2 * c.n_layers)),
            dtype=DTYPE,
            param_dtype=DTYPE,
            rngs=rngs,
        )

    def heads(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Queries, keys and values: [..., d_model] -> three [..., n_heads, d_head]."""
        qkv = self.qkv(x).reshape(*x.shape[:-1], 3, self.n_heads, self.d_head)
        return qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]

    def attend_with_pattern(
        self, q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """q [B, Tq, H, Dh], k and v [B, Tk, H, Dh], mask [Tq, Tk] bool (True = may attend) ->
        the output [B, Tq, d_model] and the attention weights [B, H, Tq, Tk] (masked entries exactly 0)."""
        scores = jnp.einsum("bthd,bshd->bhts", q, k) / np.float32(np.sqrt(self.d_head))
        scores = jnp.where(mask, scores, jnp.finfo(DTYPE).min)
        pattern = jax.nn.softmax(scores, axis=-1)  # [B, H, Tq, Tk]
        z = jnp.einsum("bhts,bshd->bthd", pattern, v)
        return self.out(z.reshape(*z.shape[:2], self.n_heads * self.d_head)), pattern

    def attend(self, q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
        """`attend_with_pattern`'s output only: [B, Tq, d_model]."""
        return self.attend_with_pattern(q, k, v, mask)[0]

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, d_model] -> [B, T, d_model]
        T = x.shape[1]
        causal = jnp.tril(jnp.ones((T, T), dtype=bool))  # query t sees keys s <= t
        return self.attend(*self.heads(x), causal)


class MLP(nnx.Module):
    """ReLU feed-forward layer d_model -> d_mlp -> d_model."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        c = config
        self.up = nnx.Linear(c.d_model, c.d_mlp, kernel_init=_normal(0.02), dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)
        self.down = nnx.Linear(
            c.d_mlp,
            c.d_model,
            kernel_init=_normal(0.02 / np.sqrt(2 * c.n_layers)),
            dtype=DTYPE,
            param_dtype=DTYPE,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down(jax.nn.relu(self.up(x)))


class Block(nnx.Module):
    """Pre-LayerNorm block: x + attn(ln1(x)), then + mlp(ln2(x)) (no MLP and no ln2 when attn_only;
    ln1 and ln2 are identities when layer_norm is off)."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        self.ln1 = _layer_norm(config, rngs)
        self.attn = Attention(config, rngs=rngs)
        self.ln2 = None if config.attn_only else _layer_norm(config, rngs)
        self.mlp = None if config.attn_only else MLP(config, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.forward(x)[0]

    def _rest(
        self,
        x: jax.Array,
        attn_out: jax.Array,
        want: frozenset[str],
        prefix: str,
        mlp: bool,
        cache: dict[str, jax.Array],
    ) -> jax.Array:
        """The block after attention: add attn_out to x ([..., d_model]), then the MLP (when there is
        one and ``mlp``), recording the hooks named ``prefix + hook`` that are in ``want``."""
        if prefix + "hook_attn_out" in want:
            cache[prefix + "hook_attn_out"] = attn_out
        x = x + attn_out
        if self.mlp is None:
            if prefix + "hook_resid_post" in want:
                cache[prefix + "hook_resid_post"] = x
            return x
        if prefix + "hook_resid_mid" in want:
            cache[prefix + "hook_resid_mid"] = x
        if not mlp:
            return x
        m = self.mlp(_apply(self.ln2, x))
        if prefix + "hook_mlp_out" in want:
            cache[prefix + "hook_mlp_out"] = m
        x = x + m
        if prefix + "hook_resid_post" in want:
            cache[prefix + "hook_resid_post"] = x
        return x

    def forward(
        self, x: jax.Array, want: frozenset[str] = frozenset(), prefix: str = "", mlp: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """x [B, T, d_model] -> the new stream [B, T, d_model] (after attention only when ``mlp`` is
        False) and the hooks ``prefix + hook`` in ``want`` (the pattern only if asked for)."""
        T = x.shape[1]
        causal = jnp.tril(jnp.ones((T, T), dtype=bool))  # query t sees keys s <= t
        a, pattern = self.attn.attend_with_pattern(*self.attn.heads(_apply(self.ln1, x)), causal)
        cache: dict[str, jax.Array] = {}
        if prefix + "attn.hook_pattern" in want:
            cache[prefix + "attn.hook_pattern"] = pattern  # [B, H, T, T]
        return self._rest(x, a, want, prefix, mlp, cache), cache

    def step(
        self, x: jax.Array, k_past: jax.Array, v_past: jax.Array, t: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """One new position t given the keys/values of positions < t (a KV cache).

        x [B, d_model]; k_past, v_past [B, T_max, H, Dh] (entries at positions >= t are ignored).
        Returns the new residual [B, d_model] and this position's key and value [B, H, Dh].
        """
        x, k, v, _ = self.step_hooks(x, k_past, v_past, t)
        return x, k, v

    def step_hooks(
        self,
        x: jax.Array,
        k_past: jax.Array,
        v_past: jax.Array,
        t: jax.Array,
        want: frozenset[str] = frozenset(),
        prefix: str = "",
        mlp: bool = True,
    ) -> tuple[jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """`step` that also records the hooks ``prefix + hook`` in ``want`` at this position (each
        [B, d_model]; no attention pattern) and runs the MLP only when ``mlp``."""
        q, k, v = self.attn.heads(_apply(self.ln1, x))
        positions = jnp.arange(k_past.shape[1])
        here = (positions == t)[None, :, None, None]
        keys = jnp.where(here, k[:, None], k_past)
        values = jnp.where(here, v[:, None], v_past)
        a = self.attn.attend(q[:, None], keys, values, (positions <= t)[None, :])[:, 0]
        cache: dict[str, jax.Array] = {}
        return self._rest(x, a, want, prefix, mlp, cache), k, v, cache


class Transformer(nnx.Module):
    """Paper architecture: token embedding + learned absolute positions, pre-LayerNorm blocks
    (attention with causal mask, n_heads x d_head, output projection; ReLU MLP d_mlp), final
    LayerNorm, untied unembedding. float32 params with explicit dtypes. The variants of
    `TransformerConfig` drop the MLPs, the LayerNorms or the position embedding (and their parameters).

    Initialisation as GPT-2: weights and embeddings normal(0.02), the projections that write
    into the residual stream (attention output, MLP down) normal(0.02 / sqrt(2 n_layers)), biases 0,
    LayerNorm scale 1. LayerNorm epsilon 1e-5.
    """

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        c = config
        self.config = c
        self.embed = nnx.Embed(
            c.vocab_size, c.d_model, embedding_init=_normal(0.02), dtype=DTYPE, param_dtype=DTYPE, rngs=rngs
        )
        self.pos_embed = (
            nnx.Param(_normal(0.02)(rngs.params(), (c.context_length, c.d_model), DTYPE))
            if c.positional == "learned"
            else None
        )
        self.blocks = nnx.List([Block(c, rngs=rngs) for _ in range(c.n_layers)])
        self.ln_final = _layer_norm(c, rngs)
        self.unembed = nnx.Linear(
            c.d_model, c.vocab_size, kernel_init=_normal(0.02), dtype=DTYPE, param_dtype=DTYPE, rngs=rngs
        )

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """tokens [B, T] int, T <= context_length -> logits [B, T, vocab_size]."""
        logits = self.forward(tokens, (), logits=True)[0]
        assert logits is not None  # asked for
        return logits

    def residual_stream(self, tokens: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Logits and the residual stream by layer name (see `layer_names`), each [B, T, d_model]."""
        logits, cache = self.forward(tokens, layer_names(self.config), logits=True)
        assert logits is not None  # asked for
        return logits, cache

    def forward(
        self, tokens: jax.Array, names: Sequence[str] = (), logits: bool = True
    ) -> tuple[jax.Array | None, dict[str, jax.Array]]:
        """Logits [B, T, V] (None when ``logits`` is False) and the activations named in ``names``
        (canonical names or aliases, see `activation_names`), keyed as asked, in that order. Only
        what is needed runs: no block (or MLP) above the highest activation asked, and no
        unembedding without logits."""
        c = self.config
        T = tokens.shape[-1]
        if T > c.context_length:
            raise ValueError(
                f"tokens have length {T} > context_length {c.context_length}; "
                f"pass at most context_length tokens per sequence."
            )
        canonical = _canonical(c, names)
        want = frozenset(canonical)
        stage = _stage(c, canonical, logits)
        cache: dict[str, jax.Array] = {}
        x = self.embed(tokens)  # [B, T, d_model]
        x = self._add_positions(x, self.pos_embed[...][:T] if self.pos_embed is not None else None, want, cache)
        for l, block in enumerate(self.blocks):
            if f"blocks.{l}.hook_resid_pre" in want:
                cache[f"blocks.{l}.hook_resid_pre"] = x
            if stage <= 2 * l:
                break
            x, hooks = block.forward(x, want, f"blocks.{l}.", mlp=stage > 2 * l + 1)
            cache.update(hooks)
        out = self._head(x, want, cache, logits) if stage == 2 * c.n_layers else None  # [B, T, V]
        return out, {n: cache[k] for n, k in zip(names if not isinstance(names, str) else (names,), canonical)}

    @staticmethod
    def _add_positions(x: jax.Array, pos: jax.Array | None, want: frozenset, cache: dict) -> jax.Array:
        """The token embedding x ([B, T, d] or [B, d]) plus the position embedding (None: none), caching both."""
        if "hook_embed" in want:
            cache["hook_embed"] = x
        if pos is None:
            return x
        if "hook_pos_embed" in want:
            cache["hook_pos_embed"] = jnp.broadcast_to(pos, x.shape)
        return x + pos

    def _head(self, x: jax.Array, want: frozenset, cache: dict, logits: bool) -> jax.Array | None:
        """The final LayerNorm (cached as ``ln_final.hook_normalized``) and the unembedding if ``logits``."""
        x = _apply(self.ln_final, x)
        if "ln_final.hook_normalized" in want:
            cache["ln_final.hook_normalized"] = x
        return self.unembed(x) if logits else None

    def step(
        self,
        tokens_t: jax.Array,
        t: jax.Array,
        k_past: jax.Array,
        v_past: jax.Array,
        names: Sequence[str] = (),
        logits: bool = True,
    ) -> tuple[jax.Array | None, dict[str, jax.Array], jax.Array, jax.Array]:
        """The model at one position t from the KV cache of the earlier positions (see `decode_step`).

        tokens_t [B] int; k_past, v_past [B, n, T_max, H, Dh] for blocks 0..n-1 (positions >= t
        ignored), n = the blocks needed: every block when logits or ``ln_final.hook_normalized`` are
        asked, else up to the highest block named. Returns logits [B, V] (or None), the named
        activations at t ([B, d_model], keyed as asked; attention patterns are not available here:
        use the full forward) and this position's keys and values [B, n, H, Dh].
        """
        c = self.config
        canonical = _canonical(c, names)
        if any(is_pattern(n) for n in canonical):
            raise ValueError(
                "attention patterns come from the full forward only (Transformer.forward, or "
                "method='full'); the one-position KV-cache step does not produce them."
            )
        want = frozenset(canonical)
        stage = _stage(c, canonical, logits)
        n = _blocks_run(stage)
        if k_past.shape[1] != n:
            raise ValueError(f"k_past holds {k_past.shape[1]} blocks; these names and logits={logits} need {n}.")
        cache: dict[str, jax.Array] = {}
        x = self.embed(tokens_t)  # [B, d_model]
        x = self._add_positions(x, self.pos_embed[...][t] if self.pos_embed is not None else None, want, cache)
        ks, vs = [], []
        for l in range(c.n_layers):
            if f"blocks.{l}.hook_resid_pre" in want:
                cache[f"blocks.{l}.hook_resid_pre"] = x
            if l >= n:
                break
            x, k, v, hooks = self.blocks[l].step_hooks(
                x, k_past[:, l], v_past[:, l], t, want, f"blocks.{l}.", mlp=stage > 2 * l + 1
            )
            cache.update(hooks)
            ks.append(k)
            vs.append(v)
        out = self._head(x, want, cache, logits) if stage == 2 * c.n_layers else None  # [B, V]
        shape = (tokens_t.shape[0], 0, c.n_heads, c.d_head)
        k_new = jnp.stack(ks, axis=1) if ks else jnp.zeros(shape, DTYPE)
        v_new = jnp.stack(vs, axis=1) if vs else jnp.zeros(shape, DTYPE)
        names = (names,) if isinstance(names, str) else tuple(names)
        return out, {a: cache[k] for a, k in zip(names, canonical)}, k_new, v_new


def decode_step(
    model: Transformer, tokens_t: jax.Array, t: jax.Array, k_past: jax.Array, v_past: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array], jax.Array, jax.Array]:
    """The model at one position t, given the cached keys/values of the earlier positions.

    tokens_t [B] int; k_past, v_past [B, n_layers, T_max, H, Dh] (positions >= t ignored).
    Returns logits [B, V], the residual stream by layer name (`layer_names`, each [B, d_model]) and
    this position's keys and values [B, n_layers, H, Dh]. Equals the full forward at position t
    (the model is causal), so a set of sequences that share prefixes is computed once per prefix.
    Every variant is handled. `Transformer.step` is the same with any activation names.
    """
    logits, cache, k, v = model.step(tokens_t, t, k_past, v_past, layer_names(model.config), logits=True)
    assert logits is not None  # asked for
    return logits, cache, k, v


# ---------------------------------------------------------------------------- parameters
# graphdef, abstract_params, n_params, init_params, to_state, to_model and logits_fn are `ModelFamily`'s,
# bound to `FAMILY` at the end of this module.


def ov_vectors(config: TransformerConfig, params: Any, layer: int = 0) -> np.ndarray:
    """Each head's OV vector of each token at block ``layer``: ``W_E[x] @ W_V^h @ W_O^h`` -> float32 [H, V, d_model].

    What head h writes into the residual stream per unit of attention on a key holding token x, from the token's
    embedding alone: no position embedding, no value bias (b_V^h @ W_O^h is the same for every key, so attention
    weights summing to 1 add it once), no output bias. Exact for block 0 without LayerNorm (the value is then a
    linear function of the embedding); with ``layer_norm`` on, ln1 rescales the embedding first, and the vector is
    the direction before that rescaling.
    """
    if not 0 <= layer < config.n_layers:
        raise ValueError(f"layer must be in 0..{config.n_layers - 1} (the model's blocks); got {layer!r}")
    p = pure_params(params)
    H, Dh = config.n_heads, config.d_head
    E = np.asarray(p["embed"]["embedding"], np.float64)  # [V, d_model]
    attn = p["blocks"][layer]["attn"]
    W = np.asarray(attn["qkv"]["kernel"], np.float64).reshape(config.d_model, 3, H, Dh)
    W_V = W[:, 2]  # [d_model, H, Dh]
    W_O = np.asarray(attn["out"]["kernel"], np.float64).reshape(H, Dh, config.d_model)  # [H, Dh, d_model]
    return np.einsum("vm,mhk,hkn->hvn", E, W_V, W_O).astype(np.float32)


# ---------------------------------------------------------------------------- batched inference
#
# Many analysis sets (every length-T string, an exact evaluation set) share prefixes, and the model
# is causal: its output at position t depends on tokens[:, :t+1] only. So we compute each distinct
# prefix once, position by position, with a KV cache of its ancestors (`Transformer.step`): for all
# 3^10 strings of length 10 that is 88,572 token computations instead of 590,490. Sets without much
# sharing go through the plain full forward. Attention patterns always come from the full forward.
#
# The jitted functions below take the canonical residual names (each [.., d_model]) ``res`` and
# pattern names ``pats`` to return, and ``what``: "logits", "log_probs" or None (no unembedding).


def _head(logits: jax.Array | None, what: str | None) -> jax.Array | None:
    if what == "log_probs":
        assert logits is not None  # computed whenever `what` is not None
        return jax.nn.log_softmax(logits, axis=-1)
    return logits


@functools.cache
def _jitted_full(config: TransformerConfig, res: tuple[str, ...], pats: tuple[str, ...], what: str | None):
    """jit of (params, tokens [B, T]) -> (logits / log-probs [B, T, V] or None,
    residual names stacked [B, len(res), T, d_model] or None, tuple of patterns [B, H, T, T])."""
    gdef = graphdef(config)

    def run(params: dict, tokens: jax.Array):
        logits, cache = nnx.merge(gdef, params).forward(tokens, res + pats, logits=what is not None)
        stacked = jnp.stack([cache[n] for n in res], axis=1) if res else None
        return _head(logits, what), stacked, tuple(cache[n] for n in pats)

    return jax.jit(run)


@functools.cache
def _jitted_step(config: TransformerConfig, res: tuple[str, ...], what: str | None):
    """jit of (params, tokens_t [B], t, k_past, v_past [B, n, T, H, Dh]) -> (logits / log-probs
    [B, V] or None, residual names stacked [B, len(res), d_model] or None, keys, values [B, n, H, Dh])."""
    gdef = graphdef(config)

    def run(params: dict, tokens_t: jax.Array, t: jax.Array, k_past: jax.Array, v_past: jax.Array):
        logits, cache, k, v = nnx.merge(gdef, params).step(tokens_t, t, k_past, v_past, res, logits=what is not None)
        stacked = jnp.stack([cache[n] for n in res], axis=1) if res else None
        return _head(logits, what), stacked, k, v

    return jax.jit(run)


def _run_prefix(
    config: TransformerConfig,
    params: dict,
    tokens: np.ndarray,
    batch_size: int,
    res_names: tuple[str, ...],
    what: str | None,
    levels: list,
    out: np.ndarray | None,
    res_out: np.ndarray | None,
    on_step: Callable[[int], None],
    res_prefix: np.ndarray | None = None,
) -> None:
    """Each distinct prefix once, position by position. ``out`` [N, T, V] (logits) and ``res_out``
    [N, len(res_names), T, d_model] (a view of the name-major store) are filled in place; so is
    ``res_prefix`` [len(res_names), U, d_model], one row per distinct prefix (`predictive_models.prefixes`
    order: level t's prefixes at rows offsets[t]:offsets[t + 1])."""
    c = config
    T = tokens.shape[1]
    n_blocks = _blocks_run(_stage(c, res_names, what is not None))
    fn = _jitted_step(c, res_names, what)
    keys: list[np.ndarray] = []  # per level s: [u_s, n, H, Dh] keys of each distinct prefix's last position
    values: list[np.ndarray] = []
    ancestors = np.zeros((1, 0), np.int64)  # [u_{t-1}, t-1]: ids of a prefix's own prefixes at levels < t-1
    rows = call_rows(batch_size, levels)  # every call padded to one shape: one compilation
    offset = 0  # the first res_prefix row of this level
    for t, (parent, last, inverse) in enumerate(levels):
        ancestors = (
            np.concatenate([ancestors[parent], parent[:, None]], axis=1) if t else np.zeros((len(last), 0), np.int64)
        )
        u = len(last)
        lg = np.empty((u, c.vocab_size), np.float32) if out is not None else None
        rs = np.empty((u, len(res_names), c.d_model), np.float32) if res_out is not None else None
        k_new = np.empty((u, n_blocks, c.n_heads, c.d_head), np.float32)
        v_new = np.empty_like(k_new)
        for start in range(0, u, rows):
            stop = min(start + rows, u)
            k_past = np.zeros((rows, n_blocks, T, c.n_heads, c.d_head), np.float32)
            v_past = np.zeros_like(k_past)
            for s in range(t):
                idx = ancestors[start:stop, s]
                k_past[: stop - start, :, s] = keys[s][idx]
                v_past[: stop - start, :, s] = values[s][idx]
            o, r, k, v = jax.device_get(
                fn(params, pad_rows(last[start:stop].astype(np.int32), rows), np.int32(t), k_past, v_past)
            )
            k_new[start:stop], v_new[start:stop] = k[: stop - start], v[: stop - start]
            if lg is not None:
                lg[start:stop] = o[: stop - start]
            if rs is not None:
                rs[start:stop] = r[: stop - start]
            if res_prefix is not None:  # straight into the store: no [u, n_names, d_model] level buffer
                res_prefix[:, offset + start : offset + stop] = r[: stop - start].transpose(1, 0, 2)
        keys.append(k_new)
        values.append(v_new)
        if res_out is not None:
            assert rs is not None  # made above whenever res_out is given
            for i in range(rs.shape[1]):
                res_out[:, i, t] = np.take(rs[:, i], inverse, axis=0)
        offset += u
        if out is not None:
            assert lg is not None  # made above whenever out is given
            out[:, t] = lg[inverse]
        on_step(1)


def _run_full(
    config: TransformerConfig,
    params: dict,
    tokens: np.ndarray,
    batch_size: int,
    res_names: tuple[str, ...],
    pat_names: tuple[str, ...],
    what: str | None,
    out: np.ndarray | None,
    res_out: np.ndarray | None,
    pat_out: list[np.ndarray],
) -> None:
    """Whole sequences, ``batch_size`` rows per jitted call (the last padded: one shape)."""
    fn = _jitted_full(config, res_names, pat_names, what)
    N = tokens.shape[0]
    rows = min(batch_size, N)
    for start in range(0, N, rows):
        stop = min(start + rows, N)
        o, r, ps = jax.device_get(fn(params, pad_rows(tokens[start:stop], rows)))
        if out is not None:
            out[start:stop] = o[: stop - start]
        if res_out is not None:
            res_out[start:stop] = r[: stop - start]
        for store, p in zip(pat_out, ps):
            store[start:stop] = p[: stop - start]


def run_batched(
    config: TransformerConfig,
    params: Any,
    tokens: np.ndarray,
    names: Sequence[str] | None = (),
    what: str | None = "logits",
    *,
    batch_size: int = 4096,
    method: str = "auto",
    on_step: Callable[[int], None] | None = None,
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """The forward pass over many rows: tokens [N, T] -> (float32 [N, T, V] logits
    (``what="logits"``), log-probabilities (``"log_probs"``) or None (``None``: the unembedding is
    not run), and {name: float32 array} for exactly the ``names`` asked (canonical or aliases, see
    `activation_names` and `aliases`; None: `layer_names`), keyed as asked, in that order; shapes
    as `activation_shape`).

    ``method="full"`` runs whole sequences, ``batch_size`` rows per jitted call; ``"prefix"``
    computes each distinct prefix once with a KV cache (several times less work when rows share
    prefixes, e.g. every string of a length; at most min(``batch_size``, 1024) prefixes per call,
    `prefixes.call_rows`); ``"auto"`` picks prefix when it at least halves the work. Both give the
    same numbers (to float32 rounding). Attention patterns always come from a full forward (with
    ``"prefix"``, one extra full pass that outputs the patterns only), and are only materialised when
    asked. The residual-stream arrays are C-contiguous slices of one
    [n_names, N, T, d_model] block (a name and its alias share one array). ``on_step(n)`` (for a
    progress bar) is told each time n more of the T positions are done.
    """
    check_what_and_method(what, method)
    asked = tuple(layer_names(config) if names is None else ((names,) if isinstance(names, str) else names))
    canonical = _canonical(config, asked)
    distinct = tuple(dict.fromkeys(canonical))
    res_names = tuple(n for n in distinct if not is_pattern(n))
    pat_names = tuple(n for n in distinct if is_pattern(n))
    tokens = check_tokens(config, tokens, batch_size)
    N, T = tokens.shape
    out = np.empty((N, T, config.vocab_size), np.float32) if what else None
    # name-major, so each name's [N, T, d_model] block is contiguous; res_out is its row-major view
    res_store = np.empty((len(res_names), N, T, config.d_model), np.float32) if res_names else None
    res_out = None if res_store is None else res_store.transpose(1, 0, 2, 3)  # [N, n_res, T, d_model]
    pat_out = [np.empty((N, config.n_heads, T, T), np.float32) for _ in pat_names]
    res_arrays = {} if res_store is None else {n: res_store[i] for i, n in enumerate(res_names)}
    arrays = res_arrays | dict(zip(pat_names, pat_out))
    result = {a: arrays[c] for a, c in zip(asked, canonical)}
    if N == 0 or T == 0:
        return out, result
    params = jax.tree.map(jnp.asarray, pure_params(params))
    step = on_step or (lambda n: None)
    levels = prefix_tree(tokens, config.vocab_size) if method != "full" else None
    prefix = method == "prefix" or (
        method == "auto" and levels is not None and sum(len(lv[1]) for lv in levels) <= 0.5 * N * T
    )
    if prefix and (what is not None or res_names):
        assert levels is not None  # made for every method but "full"
        _run_prefix(config, params, tokens, int(batch_size), res_names, what, levels, out, res_out, step)
        if pat_names:
            _run_full(config, params, tokens, int(batch_size), (), pat_names, None, None, None, pat_out)
    else:
        _run_full(config, params, tokens, int(batch_size), res_names, pat_names, what, out, res_out, pat_out)
        step(T)
    return out, result


def prefix_activations(
    config: TransformerConfig,
    params_state: Any,
    tokens: np.ndarray,
    *,
    batch_size: int = 4096,
    names: Sequence[str] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> PrefixActivations:
    """The residual-stream activations named (None: `layer_names`) of each distinct prefix of ``tokens`` [N, T]
    once (`predictive_models.prefixes.PrefixActivations`: [U, d_model] per name, float32), computed as
    `compute_activations` with ``method="auto"`` does (the KV cache when the prefixes are at most half the
    positions, else whole sequences, ``batch_size`` at a time): the same numbers, never the [N, T, d_model]
    arrays. Attention patterns (one [H, T, T] per string, not per prefix) are refused with a ValueError."""
    asked = tuple(layer_names(config) if names is None else ((names,) if isinstance(names, str) else names))
    canonical = _canonical(config, asked)
    if any(is_pattern(n) for n in canonical):
        raise ValueError(
            "prefix_activations: attention patterns are per string, not per prefix; ask compute_activations for them"
        )
    res_names = tuple(dict.fromkeys(canonical))
    tokens = check_tokens(config, tokens, batch_size)
    N, T = tokens.shape
    levels = prefix_tree(tokens, config.vocab_size)
    ids, offsets = prefix_index(levels, N)
    store = np.empty((len(res_names), int(offsets[-1]), config.d_model), np.float32)  # [n_names, U, d_model]
    if N and T and res_names:
        params = jax.tree.map(jnp.asarray, pure_params(params_state))
        step = on_step or (lambda n: None)
        if offsets[-1] <= 0.5 * N * T:  # run_batched's "auto" rule
            _run_prefix(
                config, params, tokens, int(batch_size), res_names, None, levels, None, None, step, res_prefix=store
            )
        else:  # little sharing: whole sequences (one padded shape, as run_batched), each prefix's row kept
            rows = min(int(batch_size), N)
            block = np.empty((rows, len(res_names), T, config.d_model), np.float32)  # [rows, n_names, T, d]
            for start in range(0, N, rows):
                stop = min(start + rows, N)
                _run_full(
                    config, params, pad_rows(tokens[start:stop], rows), rows, res_names, (), None, None, block, []
                )
                where = ids[start:stop].reshape(-1)  # a prefix shared by rows gets the same bits from each
                for i in range(len(res_names)):
                    store[i][where] = block[: stop - start, i].reshape(-1, config.d_model)
            step(T)
    arrays = {n: store[i] for i, n in enumerate(res_names)}
    return PrefixActivations(rows={a: arrays[c] for a, c in zip(asked, canonical)}, ids=ids, offsets=offsets)


# ---------------------------------------------------------------------------- the family


def _check_names(config: TransformerConfig, names: Sequence[str] | str | None) -> tuple[str, ...]:
    """``names`` (None: `layer_names`; canonical names or aliases) validated, as asked (`ModelFamily.check_names`)."""
    asked = tuple(layer_names(config) if names is None else ((names,) if isinstance(names, str) else names))
    _canonical(config, asked)
    return asked


class TransformerFamily(ModelFamily):
    """The transformer and its variants as a `ModelFamily` (kind "transformer"). Its inference is its own
    (`run_batched`: aliases, one stacked residual store, attention patterns, a KV cache for prefixes)."""

    config_class = TransformerConfig
    module_class = Transformer
    kinds = ("transformer",)
    # annotated, so that these static methods are not checked against ModelFamily's instance methods' types
    activation_names: staticmethod[[TransformerConfig], list[str]] = staticmethod(activation_names)
    layer_names: staticmethod[[TransformerConfig], list[str]] = staticmethod(layer_names)
    probe_layer_name: staticmethod[[TransformerConfig], str] = staticmethod(probe_layer_name)
    check_names: staticmethod[[TransformerConfig, Sequence[str] | str | None], tuple[str, ...]] = staticmethod(
        _check_names
    )
    activation_shape: staticmethod[[TransformerConfig, str, int, int], tuple[int, ...]] = staticmethod(activation_shape)
    run_batched: staticmethod[..., tuple[np.ndarray | None, dict[str, np.ndarray]]] = staticmethod(run_batched)
    prefix_activations: staticmethod[..., PrefixActivations] = staticmethod(prefix_activations)

    def memory_sizes(self, config: TransformerConfig) -> ModelSizes:
        """Arithmetic only (the preflight refuses absurd sizes before anything is built). Kept per token for
        the backward pass: each block's LayerNorm inputs, q/k/v, attention weights, MLP hidden units and the
        residual stream, then the logits and their softmax. Probed by default: the embedding, each block and
        the final LayerNorm (`layer_names`)."""
        c = config
        V, L, n_layers = c.vocab_size, c.context_length, c.n_layers
        d, H, dh = c.d_model, c.n_heads, c.d_head
        d_mlp = 0 if c.attn_only else c.d_mlp
        ln = 2 * d if c.layer_norm else 0
        per_block = (
            ln * (1 if c.attn_only else 2)
            + d * 3 * H * dh
            + 3 * H * dh
            + H * dh * d
            + d
            + d * d_mlp
            + d_mlp
            + d_mlp * d
            + (d if d_mlp else 0)
        )
        pos = L * d if c.positional == "learned" else 0
        n_params = V * d + pos + n_layers * per_block + ln + d * V + V
        n_probed = n_layers + (2 if ln else 1)  # embedding, each block, final LayerNorm
        per_token = n_layers * (4 * d + 3 * H * dh + 2 * H * L + 2 * d_mlp) + 3 * V
        return ModelSizes(n_params, n_probed, d * n_probed, per_token)


FAMILY = TransformerFamily()

# The family's functions as this module's (their signatures as before); the parameter plumbing and the
# wrappers over `run_batched` are `ModelFamily`'s.
graphdef, abstract_params, n_params, init_params = (
    FAMILY.graphdef,
    FAMILY.abstract_params,
    FAMILY.n_params,
    FAMILY.init_params,
)
to_state, to_model, logits_fn = FAMILY.to_state, FAMILY.to_model, FAMILY.logits_fn
activations, compute_activations = FAMILY.activations, FAMILY.compute_activations
compute_logits, compute_log_probs = FAMILY.compute_logits, FAMILY.compute_log_probs
