"""prefix_activations: one activation row per distinct prefix, the same numbers as compute_activations."""

import itertools

import jax
import numpy as np
import pytest
from f32_reference import forward as reference_forward
from tolerances import assert_within

from predictive_models import PrefixActivations, compute_activations, make_config, prefix_activations
from predictive_models.models import abstract_params

V, T = 3, 5
ALL = np.array(list(itertools.product(range(V), repeat=T)), np.int32)  # [243, 5]: 363 distinct prefixes
MODELS = {
    "transformer": dict(context_length=T, n_layers=2, d_model=16, n_heads=2, d_head=4, d_mlp=32),
    "gru": dict(context_length=T, n_layers=2, d_hidden=8),
}


def random_params(config, seed: int = 0) -> dict:
    """Parameters drawn normal(0, 0.5): instant (the jitted `init_params` compiles for seconds)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: rng.normal(0, 0.5, s.shape).astype(np.float32), abstract_params(config))


def brute_force_rows(tokens: np.ndarray) -> dict[tuple, int]:
    """Every distinct prefix -> its row: by length, then lexicographically (the documented order)."""
    prefixes = {tuple(s[: t + 1]) for s in tokens.tolist() for t in range(tokens.shape[1])}
    return {p: i for i, p in enumerate(sorted(prefixes, key=lambda p: (len(p), p)))}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_prefix_rows_are_compute_activations_without_the_repeats(kind):
    config = make_config(kind, V, **MODELS[kind])
    params = random_params(config)
    rng = np.random.default_rng(0)
    # every string, shuffled, some twice: the rows must not depend on the strings' order or repeats
    tokens = np.concatenate([ALL, ALL[:40]])[rng.permutation(len(ALL) + 40)]
    steps = []
    acts = prefix_activations(config, params, tokens, batch_size=64, on_step=steps.append)
    assert isinstance(acts, PrefixActivations) and steps == [1] * T
    rows = brute_force_rows(tokens)
    assert acts.n_prefixes == len(rows) == sum(V ** (t + 1) for t in range(T))
    want_ids = np.array([[rows[tuple(s[: t + 1])] for t in range(T)] for s in tokens.tolist()])
    np.testing.assert_array_equal(acts.ids, want_ids)
    np.testing.assert_array_equal(acts.offsets, np.cumsum([0] + [V ** (t + 1) for t in range(T)]))
    # the KV-cache path (tested against the full forward in test_transformer_variants / test_recurrent)
    prefix = compute_activations(config, params, tokens, method="prefix", batch_size=64)
    assert list(acts.rows) == list(prefix)
    for name, a in acts.rows.items():
        assert a.shape == (acts.n_prefixes, prefix[name].shape[2]) and a.dtype == np.float32
        np.testing.assert_array_equal(acts.per_string(name), prefix[name])  # the same computation, gathered


def test_attention_patterns_are_refused():
    config = make_config("transformer", V, **MODELS["transformer"])
    with pytest.raises(ValueError, match="attention patterns"):
        prefix_activations(config, random_params(config), ALL, names=["blocks.0.attn.hook_pattern"])


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_strings_sharing_few_prefixes_take_the_full_forward_like_auto(kind):
    """40 random strings: ~120 distinct prefixes of 200 positions, so (as compute_activations' "auto") whole
    sequences are run, 16 at a time, and each prefix's row is kept."""
    config = make_config(kind, V, **MODELS[kind])
    params = random_params(config, 1)
    tokens = np.random.default_rng(1).integers(0, V, (40, T)).astype(np.int32)
    acts = prefix_activations(config, params, tokens, batch_size=16)
    assert acts.n_prefixes > 0.5 * tokens.size and acts.n_prefixes == len(brute_force_rows(tokens))
    full = compute_activations(config, params, tokens, method="auto", batch_size=16)
    for name in acts.rows:
        np.testing.assert_array_equal(acts.per_string(name), full[name])


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_prefix_steps_run_in_one_padded_shape(kind, monkeypatch):
    """Every prefix-step call of a run has one shape, so each output set compiles once: levels of 3 to 729
    prefixes at batch 512 (two shapes, 256 and 512 rows, before `prefixes.call_rows`)."""
    import predictive_models.recurrent as recurrent
    import predictive_models.transformer as transformer
    from predictive_models import compute_log_probs
    from predictive_models.prefixes import PREFIX_CALL_ROWS, call_rows

    module = transformer if kind == "transformer" else recurrent
    real, shapes = module._jitted_step, []

    def recording(*args):
        fn = real(*args)

        def call(params, tokens_t, *rest):
            shapes.append(tokens_t.shape)
            return fn(params, tokens_t, *rest)

        return call

    monkeypatch.setattr(module, "_jitted_step", recording)
    config = make_config(kind, V, **(MODELS[kind] | {"context_length": 6}))
    tokens = np.array(list(itertools.product(range(V), repeat=6)), np.int32)  # levels of 3, 9, ..., 729
    params = random_params(config)
    lp = compute_log_probs(config, params, tokens, batch_size=512, method="prefix")
    assert set(shapes) == {(512,)} and len(shapes) == 1 + 1 + 1 + 1 + 1 + 2  # 729 rows: two calls
    full = compute_log_probs(config, params, tokens, batch_size=512, method="full")
    bound = reference_forward(config, params, tokens).bound["log_probs"]
    assert_within(lp, full, 2 * bound, "log_probs")  # two float32 paths: tests/conftest.py, rule 1
    shapes.clear()
    prefix_activations(config, params, tokens, batch_size=4096)
    assert set(shapes) == {(729,)}  # capped at the largest level
    assert call_rows(10**6, [(None, np.zeros(5000), None)]) == PREFIX_CALL_ROWS
    assert call_rows(1, [(None, np.zeros(3), None)]) == 1
