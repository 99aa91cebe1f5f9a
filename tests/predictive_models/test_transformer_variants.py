"""Transformer variants (attn_only, layer_norm, positional) and the activation API: documented names
and shapes, aliases, attention patterns, prefix (KV cache) = full forward = decode_step, a NumPy
reference forward, computing only what is asked (counted in the jaxpr), parameters, training."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from f32_reference import transformer as reference_forward
from flax import nnx
from tolerances import assert_within, gamma32

from compmech import mixed_states, optimal_loss_by_position
from hmm_processes import get_process, sample
from predictive_models import transformer as tf
from predictive_models.training import train_chunk
from predictive_models.transformer import (
    TransformerConfig,
    activation_names,
    activations,
    aliases,
    compute_activations,
    compute_log_probs,
    compute_logits,
    decode_step,
    init_params,
    layer_names,
    logits_fn,
    n_params,
    run_batched,
    to_model,
)

VARIANTS = list(
    itertools.product([False, True], [True, False], ["learned", "none"])
)  # attn_only, layer_norm, positional


def tiny(attn_only=False, layer_norm=True, positional="learned", **kw):
    sizes = dict(vocab_size=3, context_length=4, n_layers=2, d_model=8, n_heads=2, d_head=4, d_mlp=16)
    return TransformerConfig(**{**sizes, **kw}, attn_only=attn_only, layer_norm=layer_norm, positional=positional)


def all_strings(V, T):
    return np.array(list(itertools.product(range(V), repeat=T)), np.int32)


def random_params(c: TransformerConfig, seed: int, scale: float = 0.5) -> dict:
    """Parameters of ``c`` drawn normal(0, scale), LayerNorm scales and biases included: far from the
    initialisation, so a wrong formula shows; and instant (the jitted `init_params` compiles for seconds)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: rng.normal(0, scale, s.shape).astype(np.float32), tf.abstract_params(c))


def variant_id(v):
    return f"attn_only={v[0]}-layer_norm={v[1]}-positional={v[2]}"


# ---------------------------------------------------------------------------- a NumPy reference
# f32_reference.transformer: the architecture written out in float64 NumPy from the pure parameter dict, each
# value with the bound a float32 evaluation keeps to (tests/conftest.py, rule 1): a float32 path lies within
# `bound` of it, two float32 paths within 2 * bound of each other.


# ---------------------------------------------------------------------------- names


def test_documented_names_spelled_out():
    """The list `activation_names` documents, written out for the default and the bare variant."""
    per_block = [
        "hook_resid_pre",
        "attn.hook_pattern",
        "hook_attn_out",
        "hook_resid_mid",
        "hook_mlp_out",
        "hook_resid_post",
    ]
    assert activation_names(tiny()) == [
        "hook_embed",
        "hook_pos_embed",
        *[f"blocks.{l}.{h}" for l in range(2) for h in per_block],
        "ln_final.hook_normalized",
    ]
    bare = tiny(attn_only=True, layer_norm=False, positional="none")
    assert activation_names(bare) == [
        "hook_embed",
        *[
            f"blocks.{l}.{h}"
            for l in range(2)
            for h in ("hook_resid_pre", "attn.hook_pattern", "hook_attn_out", "hook_resid_post")
        ],
    ]
    assert aliases(tiny()) == {
        "embedding": "blocks.0.hook_resid_pre",
        "block_1": "blocks.0.hook_resid_post",
        "block_2": "blocks.1.hook_resid_post",
        "final_ln": "ln_final.hook_normalized",
    }
    assert layer_names(tiny()) == ["embedding", "block_1", "block_2", "final_ln"]
    assert layer_names(bare) == ["embedding", "block_1", "block_2"]  # no final LayerNorm to read
    assert tf.probe_layer_name(bare) == "block_2"


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_every_variant_matches_reference_and_paths_agree(variant):
    """For each variant: exactly the documented names come back, with the documented shapes, equal
    to a float64 NumPy forward; aliases equal their canonical arrays; the prefix (KV cache) path
    equals the full path for every non-pattern name; `decode_step` over positions equals the full
    forward."""
    c = tiny(*variant)
    params = random_params(c, seed=1)
    tokens = all_strings(3, 4)  # 81 strings sharing prefixes
    names = activation_names(c)
    asked = [*names, *aliases(c)]
    logits, full = run_batched(c, params, tokens, asked, "logits", method="full", batch_size=64)
    assert list(full) == asked
    ref = reference_forward(c, params, tokens)  # float64, with each value's float32 bound (conftest, rule 1)
    assert sorted(ref.acts) == sorted(names)
    assert_within(logits, ref.logits, ref.bound["logits"], "logits")
    for n in names:
        want = (81, c.n_heads, 4, 4) if n.endswith("attn.hook_pattern") else (81, 4, c.d_model)
        assert full[n].shape == want == tf.activation_shape(c, n, 81, 4) and full[n].dtype == np.float32, n
        assert_within(full[n], ref.acts[n], ref.bound[n], n)
    for alias, canonical in aliases(c).items():
        np.testing.assert_array_equal(full[alias], full[canonical])

    # prefix path: every non-pattern name, the same numbers
    steps = []
    residual = [n for n in asked if not n.endswith("attn.hook_pattern")]
    p_logits, prefix = run_batched(
        c, params, tokens, residual, "logits", method="prefix", batch_size=64, on_step=steps.append
    )
    assert steps == [1] * 4 and list(prefix) == residual
    bound = {n: ref.bound[aliases(c).get(n, n)] for n in residual} | {"logits": ref.bound["logits"]}
    assert_within(p_logits, logits, 2 * bound["logits"], "prefix logits")  # two float32 paths: 2 x the bound
    for n in residual:
        assert_within(prefix[n], full[n], 2 * bound[n], n)
        assert prefix[n].flags["C_CONTIGUOUS"], n

    # decode_step, position by position with a growing KV cache
    model = to_model(c, params)
    gdef, state = nnx.split(model)
    step = jax.jit(lambda s, x, t, k, v: decode_step(nnx.merge(gdef, s), x, t, k, v))
    B = 16
    k_past = jnp.zeros((B, c.n_layers, 4, c.n_heads, c.d_head))
    v_past = jnp.zeros_like(k_past)
    for t in range(4):
        lg, stream, k, v = step(state, jnp.asarray(tokens[:B, t]), jnp.int32(t), k_past, v_past)
        k_past, v_past = k_past.at[:, :, t].set(k), v_past.at[:, :, t].set(v)
        assert_within(lg, logits[:B, t], 2 * bound["logits"][:B, t], f"decode_step logits, position {t}")
        assert sorted(stream) == sorted(layer_names(c))
        for n, x in stream.items():
            assert_within(x, full[n][:B, t], 2 * bound[n][:B, t], n)


@pytest.mark.parametrize("n_heads", [1, 3])
def test_attention_patterns_are_causal_distributions(n_heads):
    c = tiny(n_heads=n_heads, context_length=5)
    params = random_params(c, seed=2, scale=0.1)
    # trained-looking (not near-uniform) weights: scale the query/key projections up
    params["blocks"][1]["attn"]["qkv"]["kernel"] = params["blocks"][1]["attn"]["qkv"]["kernel"] * 30
    tokens = np.random.default_rng(0).integers(0, 3, (40, 5)).astype(np.int32)
    acts = activations(c, params, tokens, ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"])
    ref = reference_forward(c, params, tokens)  # float64, with each value's float32 bound (conftest, rule 1)
    for name, pattern in acts.items():
        assert pattern.shape == (40, n_heads, 5, 5)
        # a row sums to 1 up to its entries' bounds and the float32 sum of 5 of them
        assert_within(pattern.sum(-1), 1.0, ref.bound[name].sum(-1) + gamma32(5), name + " row sums")
        assert np.all(pattern >= 0)
        assert np.all(pattern[..., np.triu_indices(5, k=1)[0], np.triu_indices(5, k=1)[1]] == 0), name
        assert_within(pattern[..., 0, 0], 1.0, ref.bound[name][..., 0, 0], name)  # position 0 sees only itself
    # asked beside a residual name on the prefix path, a pattern comes from one full pass: the same
    mixed = activations(c, params, tokens, ["blocks.1.attn.hook_pattern", "block_2"], method="prefix")
    assert_within(
        mixed["blocks.1.attn.hook_pattern"],
        acts["blocks.1.attn.hook_pattern"],
        2 * ref.bound["blocks.1.attn.hook_pattern"],
        "pattern",
    )
    assert_within(
        mixed["block_2"],
        activations(c, params, tokens, ["block_2"], method="full")["block_2"],
        2 * ref.bound["blocks.1.hook_resid_post"],
        "block_2",
    )
    assert acts["blocks.1.attn.hook_pattern"].max(axis=-1).mean() > 0.6  # the scaled layer is peaked ...
    assert not np.allclose(acts["blocks.1.attn.hook_pattern"][:, :, 4], 0.2, atol=0.05)  # ... not uniform


def test_subsets_and_bad_names():
    c = tiny()
    params = random_params(c, seed=3)
    tokens = all_strings(3, 4)
    every = activations(c, params, tokens, activation_names(c), method="full")
    bound = reference_forward(c, params, tokens).bound  # conftest, rule 1: two float32 paths within 2 x bound
    for method in ("full", "prefix", "auto"):
        some = activations(c, params, tokens, ["final_ln", "blocks.0.hook_attn_out", "embedding"], method=method)
        assert list(some) == ["final_ln", "blocks.0.hook_attn_out", "embedding"]
        for name, canonical in (
            ("final_ln", "ln_final.hook_normalized"),
            ("blocks.0.hook_attn_out",) * 2,
            ("embedding", "blocks.0.hook_resid_pre"),
        ):
            assert_within(some[name], every[canonical], 2 * bound[canonical], f"{name} ({method})")
    assert list(compute_activations(c, params, tokens)) == layer_names(c)  # the default set: aliases
    assert activations(c, params, tokens, []) == {}
    for bad in (["blocks.2.hook_resid_post"], ["final_ln", "final_ln"], ["hook_pos_embed"]):
        cfg = tiny(positional="none") if bad == ["hook_pos_embed"] else c
        with pytest.raises(ValueError, match="names must be distinct layer names"):
            activations(cfg, random_params(cfg, 0), tokens, bad)
    with pytest.raises(ValueError, match="final_ln"):  # no final LayerNorm to read
        activations(tiny(layer_norm=False), random_params(tiny(layer_norm=False), 0), tokens, ["final_ln"])
    with pytest.raises(ValueError, match="mlp_out"):
        activations(tiny(attn_only=True), random_params(tiny(attn_only=True), 0), tokens, ["blocks.0.hook_mlp_out"])
    model = to_model(c, params)
    k = jnp.zeros((2, 1, 4, c.n_heads, c.d_head))
    with pytest.raises(ValueError, match="full forward"):
        model.step(jnp.zeros(2, jnp.int32), 0, k, k, ["blocks.0.attn.hook_pattern"], logits=False)


# ---------------------------------------------------------------------------- only what is asked


def _count(jaxpr, primitive: str) -> int:
    """Equations of ``primitive`` in a jaxpr, sub-jaxprs (jit, custom_jvp, ...) included."""
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name == primitive
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    n += _count(sub.jaxpr, primitive)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    n += _count(sub, primitive)
    return n


def _big_outputs(closed) -> list[tuple[int, ...]]:
    return [tuple(v.aval.shape) for v in closed.jaxpr.outvars if len(v.aval.shape) == 4]


@pytest.mark.parametrize("attn_only", [False, True])
def test_a_subset_computes_nothing_else(attn_only):
    """Counted in the jaxpr of the jitted functions `activations` runs: one block's matmuls for
    blocks.0.hook_resid_post of a 3-layer model (qkv, q k^T, pattern v, W_O; MLP up and down), no
    unembedding; a [B, H, T, T] output only when a pattern is asked."""
    c = tiny(attn_only=attn_only, n_layers=3, vocab_size=5)
    params = jax.tree.map(jnp.asarray, random_params(c, 0))
    tokens = jnp.zeros((7, 4), jnp.int32)
    per_block = 4 if attn_only else 6

    def full(res, pats=(), what=None):
        return jax.make_jaxpr(tf._jitted_full(c, res, pats, what))(params, tokens)

    assert _count(full((), (), "logits").jaxpr, "dot_general") == 3 * per_block + 1  # + the unembedding
    one = full(("blocks.0.hook_resid_post",))
    assert _count(one.jaxpr, "dot_general") == per_block
    assert _count(full(("blocks.1.hook_attn_out",)).jaxpr, "dot_general") == per_block + 4  # no MLP of block 1
    assert _count(full(("blocks.2.hook_resid_pre", "hook_embed")).jaxpr, "dot_general") == 2 * per_block
    assert _count(full(("hook_embed",)).jaxpr, "dot_general") == 0
    assert _count(full(("ln_final.hook_normalized",)).jaxpr, "dot_general") == 3 * per_block  # no unembedding
    assert _big_outputs(one) == [(7, 1, 4, 8)]  # the stacked residual names only: no pattern
    assert _big_outputs(full(("blocks.0.hook_resid_post", "blocks.2.hook_attn_out"))) == [(7, 2, 4, 8)]
    with_pattern = full(("blocks.0.hook_resid_post",), ("blocks.1.attn.hook_pattern",))
    assert sorted(_big_outputs(with_pattern)) == sorted([(7, 1, 4, 8), (7, c.n_heads, 4, 4)])
    # the KV-cache step: the same per block, and its cache covers only the blocks it runs
    step = tf._jitted_step(c, ("blocks.0.hook_resid_post",), None)
    k = jnp.zeros((7, 1, 4, c.n_heads, c.d_head))
    jaxpr = jax.make_jaxpr(step)(params, tokens[:, 0], jnp.int32(0), k, k)
    assert _count(jaxpr.jaxpr, "dot_general") == per_block
    assert activations(c, params, np.zeros((3, 4), np.int32), ["blocks.0.hook_resid_post"], method="prefix")[
        "blocks.0.hook_resid_post"
    ].shape == (3, 4, 8)


# ---------------------------------------------------------------------------- parameters and config


def test_variant_parameters():
    def keys(tree, prefix=""):
        return {prefix + str(k) for k in tree} | {
            x for k, v in tree.items() if isinstance(v, dict) for x in keys(v, prefix + str(k) + "/")
        }

    assert {"pos_embed", "ln_final", "blocks/0/mlp", "blocks/1/ln2"} <= keys(tf.abstract_params(tiny()))
    attn_only = keys(tf.abstract_params(tiny(attn_only=True)))
    assert not any("mlp" in k or "ln2" in k for k in attn_only) and "blocks/0/ln1" in attn_only
    no_ln = keys(tf.abstract_params(tiny(layer_norm=False)))
    assert not any("ln" in k.split("/")[-1] for k in no_ln) and "blocks/1/mlp/up" in no_ln
    assert "pos_embed" not in keys(tf.abstract_params(tiny(positional="none")))
    for v in VARIANTS:
        c = tiny(*v)
        assert n_params(c) == sum(x.size for x in jax.tree.leaves(random_params(c, 0)))
    c = trained_config()  # what init_params allocates is what n_params counts (the training test's model)
    assert n_params(c) == sum(x.size for x in jax.tree.leaves(init_params(c, 0)))
    # hand counts: the paper's Mess3 model ...
    V, L, d, H, dh, m, T = 3, 4, 64, 1, 8, 256, 10
    ln = 2 * d
    block = ln + (d * 3 * H * dh + 3 * H * dh) + (H * dh * d + d) + ln + (d * m + m) + (m * d + d)
    assert n_params(TransformerConfig(vocab_size=3)) == V * d + T * d + L * block + ln + (d * V + V) == 143075
    # ... and its bare variant: embedding, attention, unembedding only
    bare = TransformerConfig(vocab_size=3, attn_only=True, layer_norm=False, positional="none")
    assert n_params(bare) == V * d + L * (d * 3 * H * dh + 3 * H * dh + H * dh * d + d) + d * V + V


@pytest.mark.parametrize(
    "field, value, fix",
    [
        ("attn_only", 1, "bool"),
        ("attn_only", "false", "bool"),
        ("layer_norm", None, "bool"),
        ("positional", "rotary", "learned"),
        ("positional", None, "none"),
        ("n_heads", True, "int"),
    ],
)
def test_bad_variant_names_the_field_and_fix(field, value, fix):
    with pytest.raises(ValueError, match=field) as err:
        TransformerConfig(vocab_size=3, **{field: value})
    assert fix in str(err.value)


def test_variant_dicts_round_trip_and_old_dicts_give_the_default():
    c = tiny(attn_only=True, layer_norm=False, positional="none")
    assert TransformerConfig.from_dict(c.to_dict()) == c
    assert c.to_dict()["positional"] == "none" and c.to_dict()["attn_only"] is True
    old = {
        "vocab_size": 3,
        "context_length": 10,
        "n_layers": 4,
        "d_model": 64,
        "n_heads": 1,
        "d_head": 8,
        "d_mlp": 256,
    }  # a checkpoint's model_config from before the variants
    assert TransformerConfig.from_dict(old) == TransformerConfig(vocab_size=3)
    assert TransformerConfig(vocab_size=3, attn_only=np.bool_(True)).attn_only is True


# ---------------------------------------------------------------------------- training


def test_logits_fn_equals_compute_logits():
    c = tiny(attn_only=True, positional="none")
    params = random_params(c, 4)
    tokens = all_strings(3, 4)
    assert_within(
        jax.jit(logits_fn(c))(params, jnp.asarray(tokens)),
        compute_logits(c, params, tokens),
        2 * reference_forward(c, params, tokens).bound["logits"],
        "logits",
    )  # conftest, rule 1


def trained_config() -> TransformerConfig:
    return tiny(attn_only=True, positional="none", context_length=6, d_model=16)


@pytest.mark.slow
def test_a_variant_trains_on_mess3():
    """A few hundred Adam steps of `train_chunk` on Mess3 samples for an attention-only model without
    positions: the exact loss over every context falls from uniform guessing to near the Bayes-optimal loss."""
    T, B, steps = 6, 64, 300
    hmm = get_process("mess3", x=0.05, alpha=0.85)
    c = trained_config()
    tx = optax.adam(1e-2)
    chunk = train_chunk(logits_fn(c), tx)
    batches = sample(
        hmm, jax.random.key(0), steps * B, T + 1, with_beliefs=False, with_next_token_probs=False
    ).tokens.reshape(steps, B, T + 1)
    p0 = jax.tree.map(jnp.asarray, init_params(c, 0))
    params, _, losses = chunk(p0, tx.init(p0), batches)
    assert np.all(np.isfinite(np.asarray(losses)))

    ms = mixed_states(hmm, T)
    level = ms.level(T)
    p_next = ms.prefix_next_token_probs(T)  # [3^T, T, 3]

    def exact_loss(p):
        return -np.einsum("n,ntx,ntx->t", level.probs, p_next, compute_log_probs(c, p, level.words).astype(np.float64))

    optimal = optimal_loss_by_position(hmm, T).mean()
    initial, final = exact_loss(p0).mean(), exact_loss(params).mean()
    assert initial > 0.95 * math.log(3)
    assert final < optimal + 0.1 * (math.log(3) - optimal)  # measured: 5% of the gap left (ratio 1.019)
