"""The ModelFamily protocol and its registry, through a family that only the tests define (`window_mlp`)."""

import itertools

import jax
import numpy as np
import pytest
from window_mlp import KIND, WindowMLP, WindowMLPConfig, registered

import predictive_models
from predictive_models import (
    ModelFamily,
    activations,
    compute_activations,
    compute_log_probs,
    config_from_dict,
    config_to_dict,
    init_params,
    kind_of,
    make_config,
    n_params,
    prefix_activations,
    register_family,
    to_model,
)
from predictive_models.models import config_class, family, family_for_kind, kinds

U = 2.0**-24  # float32 unit roundoff


def gamma(n: int) -> float:
    """Higham's gamma_n = n u / (1 - n u): the relative error bound of an n-term float32 sum of products."""
    return n * U / (1 - n * U)


def test_a_family_registered_later_is_found_by_every_lookup():
    builtin = ("transformer", "rnn", "gru", "lstm")
    assert kinds() == builtin and predictive_models.KINDS == builtin and KIND not in predictive_models.models.KINDS
    with pytest.raises(ValueError, match="model kind must be one of 'transformer', 'rnn', 'gru', 'lstm'"):
        make_config(KIND, 3)
    with registered() as fam:
        assert kinds() == (*builtin, KIND) and predictive_models.KINDS[-1] == KIND  # read now, not at import
        assert config_class(KIND) is WindowMLPConfig and family_for_kind(KIND) is fam
        config = make_config(KIND, 3, context_length=6, window=2)
        assert family(config) is fam and kind_of(config) == KIND
        saved = config_to_dict(config)
        assert saved == {"kind": KIND, "vocab_size": 3, "context_length": 6, "window": 2, "d_embed": 8, "d_hidden": 32}
        assert config_from_dict(saved) == config
        assert isinstance(to_model(config, init_params(config, 0)), WindowMLP)
        register_family(fam)  # the same family again: nothing happens
        assert kinds().count(KIND) == 1

        class Impostor(type(fam)):
            pass

        with pytest.raises(ValueError, match="model kind 'window_mlp' is already served by WindowMLPFamily"):
            register_family(Impostor())
    assert kinds() == builtin
    with pytest.raises(TypeError, match="registered model family"):
        n_params(config)


def test_a_family_must_name_its_activations():
    class Nameless(ModelFamily):
        config_class, module_class, kinds = WindowMLPConfig, WindowMLP, ("nameless",)

    with pytest.raises(TypeError, match="abstract"):
        Nameless()
    with pytest.raises(TypeError, match="ModelFamily instance"):
        register_family(predictive_models.transformer)


def test_the_defaults_give_shapes_sizes_and_names():
    with registered() as fam:
        c = make_config(KIND, 5, context_length=7, window=3, d_embed=4, d_hidden=6)
        assert fam.layer_names(c) == ["embed", "hidden"] and fam.probe_layer_name(c) == "hidden"
        assert fam.activation_shape(c, "embed", 2, 7) == (2, 7, 12) and fam.activation_width(c, "hidden") == 6
        params = (5 + 1) * 4 + 12 * 6 + 6 + 6 * 5 + 5  # embedding (with the pad row), hidden layer, readout
        assert n_params(c) == params == sum(x.size for x in jax.tree.leaves(init_params(c, 0)))
        assert tuple(fam.memory_sizes(c)) == (params, 2, 12 + 6, 12 + 6 + 3 * 5)
        with pytest.raises(ValueError, match="distinct activation names of this window_mlp model"):
            compute_activations(c, init_params(c, 0), np.zeros((1, 7), np.int32), names=["block_1"])


def _words(V: int, T: int) -> np.ndarray:
    return np.array(list(itertools.product(range(V), repeat=T)), np.int32)  # [V^T, T]


def test_prefix_activations_equal_the_full_activations():
    """Each distinct prefix's row (read off whole strings) is the activation of every string with that prefix.
    ``embed`` is a gather (exact); ``hidden`` = relu(x W + b) may be evaluated by a different float32 summation
    order in another batch position, so the two agree within 2 gamma_{K+1} (|x| |W| + |b|), K = window d_embed."""
    with registered():
        c = make_config(KIND, 3, context_length=5, window=3, d_embed=4, d_hidden=16)
        params = init_params(c, 1)
        tokens = _words(3, 5)[::-1]  # every string, in an order unlike the prefix rows'
        tokens = np.concatenate([tokens, tokens[:40]])  # with repeated strings
        full = compute_activations(c, params, tokens, batch_size=64, names=["embed", "hidden"])
        acts = prefix_activations(c, params, tokens, batch_size=64, names=["embed", "hidden"])
        assert acts.n_prefixes == sum(3**t for t in range(1, 6))
        np.testing.assert_array_equal(acts.per_string("embed"), full["embed"])
        x = full["embed"].astype(np.float64)  # [N, T, K]
        W = np.asarray(params["hidden"]["kernel"], np.float64)
        b = np.asarray(params["hidden"]["bias"], np.float64)
        bound = 2 * gamma(W.shape[0] + 1) * (np.abs(x) @ np.abs(W) + np.abs(b))  # [N, T, d_hidden]
        assert np.all(np.abs(acts.per_string("hidden") - full["hidden"]) <= bound)
        assert np.abs(full["hidden"]).max() > 0.1  # not vacuous


def test_it_is_causal_and_its_model_computes_the_same_logits():
    with registered():
        c = make_config(KIND, 4, context_length=6, window=2, d_embed=3, d_hidden=8)
        params = init_params(c, 2)
        rng = np.random.default_rng(0)
        a = rng.integers(0, 4, (16, 6)).astype(np.int32)
        b = a.copy()
        b[:, 3:] = (a[:, 3:] + 1) % 4  # differ from position 3 on
        la, lb = compute_log_probs(c, params, a), compute_log_probs(c, params, b)
        np.testing.assert_array_equal(la[:, :3], lb[:, :3])  # positions 0..2 never read position 3 or later
        assert not np.allclose(la[:, 3:], lb[:, 3:])
        # only the last `window` tokens matter: strings that agree on positions 1..2 agree at position 2
        c2 = a.copy()
        c2[:, 0] = (a[:, 0] + 1) % 4
        np.testing.assert_array_equal(compute_log_probs(c, params, c2)[:, 2], la[:, 2])
        model = to_model(c, params)  # the module itself, as load_model and Run.model give it
        assert model(a).shape == (16, 6, 4) and model.config == c
        assert list(activations(model, a)) == ["embed", "hidden"]
