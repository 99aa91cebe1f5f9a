"""The transformer: config validation, residual-stream names and shapes, causality, batched inference."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from f32_reference import transformer as reference_forward
from flax import nnx
from tolerances import assert_within

from predictive_models import (
    Transformer,
    TransformerConfig,
    compute_activations,
    compute_log_probs,
    compute_logits,
    layer_names,
    probe_layer_name,
)
from predictive_models.transformer import aliases, init_params, to_model

TINY = TransformerConfig(vocab_size=3, context_length=6, n_layers=2, d_model=16, n_heads=2, d_head=4, d_mlp=32)


@pytest.fixture(scope="module")
def model():
    return to_model(TINY, init_params(TINY, seed=0))


@pytest.fixture(scope="module")
def bound():
    """The float32 bound of every value of the model on all_strings(3, 6) (tests/conftest.py, rule 1): two float32
    paths (eager and jitted, prefix and full) that differ only in reduction order lie within 2 x bound."""
    return reference_forward(TINY, init_params(TINY, seed=0), all_strings(3, 6)).bound


@pytest.fixture(scope="module")
def forward(model):
    """The model's residual_stream, jitted (eager NNX calls dispatch op by op: slow)."""
    gdef, state = nnx.split(model)
    return jax.jit(lambda tokens: nnx.merge(gdef, state).residual_stream(tokens))


def all_strings(V, T):
    return np.array(list(itertools.product(range(V), repeat=T)), np.int32)


def test_paper_defaults():
    c = TransformerConfig(vocab_size=3)
    assert (c.context_length, c.n_layers, c.d_model, c.n_heads, c.d_head, c.d_mlp) == (10, 4, 64, 1, 8, 256)
    assert layer_names(c) == ["embedding", "block_1", "block_2", "block_3", "block_4", "final_ln"]
    assert probe_layer_name(c) == "block_4"


@pytest.mark.parametrize(
    "field, value",
    [
        ("vocab_size", 0),
        ("context_length", -1),
        ("n_layers", 0),
        ("d_model", 2.5),
        ("n_heads", "1"),
        ("d_head", True),
        ("d_mlp", 0),
    ],
)
def test_bad_config_names_the_field(field, value):
    kwargs = dict(vocab_size=3)
    kwargs[field] = value
    with pytest.raises(ValueError, match=field):
        TransformerConfig(**kwargs)


def test_config_dict_round_trip():
    assert TransformerConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="d_modle"):
        TransformerConfig.from_dict({**TINY.to_dict(), "d_modle": 3})


def test_residual_stream_names_shapes_and_dtypes(model, forward, bound):
    tokens = jnp.asarray(all_strings(3, 6)[:7])
    logits, stream = forward(tokens)
    assert logits.shape == (7, 6, 3) and logits.dtype == jnp.float32
    assert sorted(stream) == sorted(layer_names(TINY))  # (jit sorts dict keys)
    assert list(model.residual_stream(tokens[:1, :2])[1]) == layer_names(TINY)  # eager: in order
    for name, x in stream.items():
        assert x.shape == (7, 6, 16) and x.dtype == jnp.float32, name
    assert_within(model(tokens[:2]), logits[:2], 2 * bound["logits"][:2], "eager logits")  # = the jitted stream
    # shorter contexts are fine; longer are refused
    assert forward(tokens[:, :4])[0].shape == (7, 4, 3)
    with pytest.raises(ValueError, match="context_length"):
        model(jnp.zeros((1, 7), jnp.int32))


def test_params_are_float32_even_under_x64():
    with jax.enable_x64(True):
        abstract = nnx.eval_shape(lambda: Transformer(TINY, rngs=nnx.Rngs(0)))
        leaves = jax.tree.leaves(nnx.split(abstract)[1])
        assert leaves and all(x.dtype == jnp.float32 for x in leaves)


def test_causal(forward):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 3, (5, 6)).astype(np.int32)
    logits, stream = forward(jnp.asarray(tokens))
    for t in range(6):
        changed = tokens.copy()
        changed[:, t] = (changed[:, t] + 1) % 3
        logits2, stream2 = forward(jnp.asarray(changed))
        np.testing.assert_array_equal(logits2[:, :t], logits[:, :t])
        for name in stream:
            np.testing.assert_array_equal(stream2[name][:, :t], stream[name][:, :t])
        assert not np.allclose(logits2[:, t], logits[:, t])


def test_batched_inference_matches_model(model, forward, bound):
    state = nnx.split(model)[1]
    tokens = all_strings(3, 6)  # 729 strings that share prefixes: the prefix (KV cache) path
    logits, stream = forward(jnp.asarray(tokens))
    for method in ("prefix", "full"):  # batch 256: one compiled shape per path
        done = []
        acts = compute_activations(TINY, state, tokens, batch_size=256, method=method, on_step=done.append)
        assert sum(done) == 6 and (method == "full" or done == [1] * 6)  # positions finished, for progress
        some = compute_activations(TINY, state, tokens, batch_size=256, method=method, names=["final_ln", "embedding"])
        assert list(some) == ["final_ln", "embedding"]
        for name, x in some.items():
            np.testing.assert_array_equal(x, acts[name])
        assert list(acts) == layer_names(TINY)
        canonical = aliases(TINY)
        for name, x in acts.items():
            assert x.shape == (729, 6, 16) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
            assert_within(x, stream[name], 2 * bound[canonical[name]], f"{name} ({method})")
        out = compute_logits(TINY, state, tokens, batch_size=256, method=method)
        assert out.shape == (729, 6, 3) and out.dtype == np.float32
        assert_within(out, logits, 2 * bound["logits"], f"logits ({method})")
    lp = compute_log_probs(TINY, model, tokens, batch_size=256)  # the model itself is accepted too
    assert_within(lp, jax.nn.log_softmax(logits), 2 * bound["log_probs"], "log_probs")
    # a pure dict of parameters is accepted; rows with little sharing take the full path
    few = all_strings(3, 6)[::3]
    assert_within(
        compute_logits(TINY, nnx.to_pure_dict(state), few, batch_size=256),
        logits[::3],
        2 * bound["logits"][::3],
        "logits of a pure dict",
    )
    assert compute_activations(TINY, state, np.zeros((0, 6), np.int32))["final_ln"].shape == (0, 6, 16)


def test_batched_inference_rejects_bad_tokens(model):
    with pytest.raises(ValueError, match="vocab|lie in"):
        compute_logits(TINY, model, np.full((2, 6), 3))
    with pytest.raises(ValueError, match="context_length"):
        compute_logits(TINY, model, np.zeros((2, 7), np.int32))
    with pytest.raises(ValueError, match="2-D"):
        compute_logits(TINY, model, np.zeros(6, np.int32))
    with pytest.raises(ValueError, match="names must be distinct layer names"):
        compute_activations(TINY, model, np.zeros((2, 6), np.int32), names=["block_9"])
