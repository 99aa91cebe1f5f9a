"""predictive_models.interventions: the forward with an edited residual stream.

A zero delta gives the ordinary logits (within twice the rule-1 bound of tests/conftest.py: the edited forward is a
separately compiled program, whose fusion may order sums differently), an edit at position t leaves every position
< t bit-identical (the causal mask gives masked keys exactly zero weight: the same arithmetic on the same inputs,
rule 3), and an exactly representable delta at the embedding that turns one token's embedding into another's gives
the other token's logits bit for bit."""

import numpy as np
import pytest
from f32_reference import transformer as reference_forward
from tolerances import assert_within

from predictive_models import RecurrentConfig, TransformerConfig, compute_logits, init_params
from predictive_models.interventions import logits_with_delta, logits_with_edit, residual_layers

CFG = TransformerConfig(vocab_size=3, context_length=5, n_layers=2, d_model=8, n_heads=2, d_head=4, d_mlp=16)


def _tokens(n: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, CFG.vocab_size, size=(n, CFG.context_length))


def _params(seed: int = 0) -> dict:
    """Initial parameters scaled up (x 20), so that the blocks are far from the identity."""
    import jax  # the test's own scaling of a parameter tree

    return jax.tree.map(
        lambda a: np.asarray(a) * np.float32(20.0) if a.ndim >= 2 else np.asarray(a), init_params(CFG, seed)
    )


def test_residual_layers_are_the_probe_names():
    assert residual_layers(CFG) == ["embedding", "block_1", "block_2"]


@pytest.mark.parametrize("layer", ["embedding", "block_1", "block_2"])
def test_zero_delta_gives_the_ordinary_logits(layer):
    params, tokens = _params(), _tokens()
    ref = reference_forward(CFG, params, tokens)
    zero = np.zeros((*tokens.shape, CFG.d_model), np.float32)
    edited = logits_with_delta(CFG, params, tokens, layer, zero)
    plain = compute_logits(CFG, params, tokens, method="full")
    assert_within(edited, plain, 2 * ref.bound["logits"], "zero edit against the ordinary forward")
    assert_within(edited, ref.logits, ref.bound["logits"], "zero edit against the float64 forward")
    same = logits_with_edit(CFG, params, tokens, layer, _identity)
    assert_within(same, edited, 2 * ref.bound["logits"], "identity edit against a zero delta")  # two programs


def _identity(x):
    return x


@pytest.mark.parametrize("layer", ["embedding", "block_1", "block_2"])
@pytest.mark.parametrize("t", [1, 3])
def test_an_edit_at_position_t_changes_no_earlier_logits(layer, t):
    params, tokens = _params(1), _tokens(seed=1)
    zero = np.zeros((*tokens.shape, CFG.d_model), np.float32)
    delta = zero.copy()
    delta[:, t] = np.random.default_rng(2).normal(size=(tokens.shape[0], CFG.d_model)).astype(np.float32) * 5
    base = logits_with_delta(CFG, params, tokens, layer, zero)
    edited = logits_with_delta(CFG, params, tokens, layer, delta)
    assert np.array_equal(edited[:, :t], base[:, :t])
    assert np.all(np.abs(edited[:, t] - base[:, t]).max(axis=-1) > 1e-3)  # the edit does reach position t


def test_an_embedding_delta_that_swaps_a_token_gives_that_tokens_logits():
    """Embeddings on a 1/8 grid and no position embedding: E[a] + (E[b] - E[a]) = E[b] exactly in float32, so the
    edited forward equals the unedited forward of the swapped tokens bit for bit (the same compiled program)."""
    cfg = TransformerConfig(
        vocab_size=3, context_length=4, n_layers=1, d_model=8, d_head=4, d_mlp=16, positional="none"
    )
    params = init_params(cfg, 0)
    grid = np.random.default_rng(3).integers(-16, 17, size=(3, 8)).astype(np.float32) / 8
    params["embed"]["embedding"] = grid
    tokens = np.array([[0, 1, 2, 1], [2, 2, 0, 1]])
    swapped = tokens.copy()
    swapped[:, 2] = (tokens[:, 2] + 1) % 3
    delta = np.zeros((2, 4, 8), np.float32)
    delta[:, 2] = grid[swapped[:, 2]] - grid[tokens[:, 2]]
    zero = np.zeros_like(delta)
    assert np.array_equal(
        logits_with_delta(cfg, params, tokens, "embedding", delta),
        logits_with_delta(cfg, params, swapped, "embedding", zero),
    )


def test_bad_input_is_refused_with_one_clear_line():
    params, tokens = _params(), _tokens(2)
    with pytest.raises(ValueError, match="layer must be one of"):
        logits_with_delta(CFG, params, tokens, "block_3", np.zeros((2, 5, 8), np.float32))
    with pytest.raises(ValueError, match="delta must have shape"):
        logits_with_delta(CFG, params, tokens, "block_1", np.zeros((2, 5, 7), np.float32))
    with pytest.raises(ValueError, match="need a transformer"):
        residual_layers(RecurrentConfig("gru", vocab_size=3))
