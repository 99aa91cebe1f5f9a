"""One API for every model family: configs by kind, and training, checkpoints and resume for the recurrent kinds."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from f32_reference import forward as reference_forward
from test_training import EVAL, T, markov_data, same_params
from tolerances import assert_within

from predictive_models import (
    KINDS,
    RecurrentConfig,
    TrainConfig,
    TransformerConfig,
    activations,
    compute_log_probs,
    config_from_dict,
    config_to_dict,
    exact_eval,
    kind_of,
    load_model,
    make_config,
    n_params,
    to_model,
    train,
)
from predictive_models.models import activation_width, init_params, logits_fn


def tiny(kind: str):
    if kind == "transformer":
        return make_config(kind, 2, context_length=T, n_layers=1, d_model=16, n_heads=2, d_head=4, d_mlp=32)
    return make_config(kind, 2, context_length=T, n_layers=2, d_hidden=12, d_embed=6)


def test_kinds_round_trip_through_plain_dicts():
    assert KINDS == ("transformer", "rnn", "gru", "lstm")
    for kind in KINDS:
        cfg = tiny(kind)
        d = config_to_dict(cfg)
        assert d["kind"] == kind == kind_of(cfg) and config_from_dict(d) == cfg
        assert json.loads(json.dumps(d)) == d  # plain values only
    old = TransformerConfig(vocab_size=3).to_dict()  # a checkpoint written before the kinds existed
    assert "kind" not in old and config_from_dict(old) == TransformerConfig(vocab_size=3)
    with pytest.raises(ValueError, match="kind must be one of"):
        config_from_dict({"kind": "mamba", "vocab_size": 3})
    with pytest.raises(ValueError, match="d_model"):
        make_config("gru", 3, d_model=64)


def test_dispatch_reaches_each_family():
    tokens = np.array([[0, 1, 1, 0, 1, 0], [1, 1, 1, 0, 0, 0]], np.int32)
    for kind in ("transformer", "gru"):  # one of each family (the recurrent kinds share every code path here)
        cfg = tiny(kind)
        params = init_params(cfg, 1)
        assert n_params(cfg) == sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
        log_q = compute_log_probs(cfg, params, tokens)
        direct = jax.nn.log_softmax(jax.jit(logits_fn(cfg))(params, tokens), axis=-1)
        bound = reference_forward(cfg, params, tokens).bound["log_probs"]
        assert_within(log_q, direct, 2 * bound, kind)  # two float32 paths: tests/conftest.py, rule 1
        model = to_model(cfg, params)
        acts = activations(model, tokens)
        assert list(acts) == (
            ["embedding", "block_1", "final_ln"] if kind == "transformer" else ["layers.0.hidden", "layers.1.hidden"]
        )
        assert all(a.shape == (2, T, activation_width(cfg, name)) for name, a in acts.items())
    with pytest.raises(TypeError, match="Transformer or a RecurrentModel"):
        activations(object(), tokens)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.slow
def test_each_recurrent_kind_trains_checkpoints_and_resumes_exactly(kind, tmp_path):
    mc = tiny(kind)
    tc = TrainConfig(
        steps=120,
        batch_size=32,
        learning_rate=1e-2,
        warmup_steps=20,
        steps_per_call=20,
        eval_every=60,
        checkpoint_every=60,
        seed=5,
    )
    full = train(mc, tc, markov_data, EVAL, tmp_path / "full", progress=False)
    rel = [r["relative_loss"] for r in full.history]
    assert rel[-1] < 1.02 < rel[0]  # learns the chain
    stopped = train(mc, tc, markov_data, EVAL, tmp_path / "cut", progress=False, stop_after_steps=60)
    assert stopped.stopped_early
    resumed = train(mc, tc, markov_data, EVAL, tmp_path / "cut", progress=False)
    assert resumed.resumed_from_step == 60 and same_params(resumed.params_state, full.params_state)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]
    config_, state = load_model(tmp_path / "full" / "checkpoints" / "final.msgpack")
    assert isinstance(config_, RecurrentConfig) and config_ == mc
    assert exact_eval(config_, state, EVAL)["loss"] == pytest.approx(full.final["loss"], rel=1e-6)
    other = make_config(kind, 2, context_length=T, n_layers=2, d_hidden=13, d_embed=6)
    with pytest.raises(ValueError, match="d_hidden"):
        train(other, tc, markov_data, EVAL, tmp_path / "full", progress=False)
