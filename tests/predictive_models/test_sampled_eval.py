"""The sampled regime's model side: activations in blocks, and validation on a fixed sample with its standard error."""

import itertools
import json

import numpy as np
import pytest
from f32_reference import transformer as reference_forward
from tolerances import assert_within

from predictive_models import (
    ExactEvalSet,
    SampledEvalSet,
    TrainConfig,
    TransformerConfig,
    compute_activations,
    exact_eval,
    iter_activations,
    sampled_eval,
    train,
)
from predictive_models.transformer import init_params

# A 2-token Markov chain, P[i, j] = P(next = j | last = i), started from its stationary law.
P = np.array([[0.9, 0.1], [0.4, 0.6]])
PI = np.array([0.8, 0.2])
T = 6
MODEL = TransformerConfig(vocab_size=2, context_length=T, n_layers=1, d_model=16, n_heads=2, d_head=4, d_mlp=32)
OPTIMAL = np.full(T, PI @ -(P * np.log(P)).sum(1))  # nats at every position


def sample_chain(n, length, seed):
    rng = np.random.default_rng(seed)
    x = np.empty((n, length), np.int64)
    x[:, 0] = rng.random(n) < PI[1]
    for t in range(1, length):
        x[:, t] = rng.random(n) < P[x[:, t - 1], 1]
    return x


def sampled_set(n=4000, seed=0):
    tokens = sample_chain(n, T, seed)
    return SampledEvalSet(tokens=tokens, next_token_probs=P[tokens], optimal_loss=OPTIMAL)


def exact_set():
    tokens = np.array(list(itertools.product(range(2), repeat=T)), np.int32)
    weights = PI[tokens[:, 0]] * np.prod(P[tokens[:, :-1], tokens[:, 1:]], axis=1)
    return ExactEvalSet(tokens=tokens, weights=weights, next_token_probs=P[tokens], optimal_loss=OPTIMAL)


@pytest.mark.parametrize("seed", [0, 1])
def test_sampled_loss_agrees_with_the_exact_loss_within_its_standard_error(seed):
    params = init_params(MODEL, seed)
    exact, sampled = exact_eval(MODEL, params, exact_set()), sampled_eval(MODEL, params, sampled_set(seed=seed + 7))
    assert set(sampled) == set(exact) | {
        "loss_stderr",
        "loss_by_position_stderr",
        "relative_loss_stderr",
        "relative_loss_by_position_stderr",
        "n_sequences",
    }
    assert sampled["n_sequences"] == 4000 and sampled["optimal_loss_by_position"] == exact["optimal_loss_by_position"]
    for t in range(T):
        se = sampled["loss_by_position_stderr"][t]
        assert 0 < se < 0.02
        assert abs(sampled["loss_by_position"][t] - exact["loss_by_position"][t]) < 4 * se
    assert abs(sampled["loss"] - exact["loss"]) < 4 * sampled["loss_stderr"]
    assert sampled["relative_loss"] == pytest.approx(sampled["loss"] / OPTIMAL.mean())
    assert sampled["relative_loss_stderr"] == pytest.approx(sampled["loss_stderr"] / OPTIMAL.mean())


def test_standard_error_shrinks_as_one_over_root_n():
    params = init_params(MODEL, 0)
    small, big = (sampled_eval(MODEL, params, sampled_set(n, seed=3)) for n in (1000, 16000))
    assert small["loss_stderr"] / big["loss_stderr"] == pytest.approx(4.0, rel=0.15)


def test_train_accepts_a_sampled_eval_set_and_writes_the_standard_errors(tmp_path):
    def data(key, n, length):  # the chain, from a seed drawn from the key (a pure function of it)
        import jax

        return sample_chain(n, length, int(jax.random.randint(key, (), 0, 2**31 - 1)))

    # test_training's settings: the compiled step is shared when both files run in one process
    tc = TrainConfig(
        steps=200,
        batch_size=32,
        learning_rate=1e-2,
        warmup_steps=20,
        steps_per_call=20,
        eval_every=100,
        checkpoint_every=100,
        seed=3,
    )
    result = train(MODEL, tc, data, sampled_set(n=2000), tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 100, 200]
    assert {"relative_loss_by_position", "loss_by_position_stderr", "relative_loss_stderr"} <= set(records[-1])
    assert records[-1]["relative_loss"] < records[0]["relative_loss"]
    assert result.final["loss"] == records[-1]["loss"]


def test_sampled_eval_set_validation():
    tokens = sample_chain(10, T, 0)
    with pytest.raises(ValueError, match="optimal_loss"):
        SampledEvalSet(tokens, P[tokens], OPTIMAL[:-1])
    with pytest.raises(ValueError, match="probability vectors"):
        SampledEvalSet(tokens, P[tokens] * 2, OPTIMAL)
    with pytest.raises(ValueError, match="at least 2"):
        SampledEvalSet(tokens[:1], P[tokens[:1]], OPTIMAL)


def test_activations_in_blocks_equal_the_whole_and_compute_only_the_names_asked():
    config = TransformerConfig(vocab_size=3, context_length=5, n_layers=2, d_model=16, n_heads=2, d_head=4, d_mlp=32)
    params = init_params(config, 0)
    tokens = np.random.default_rng(0).integers(0, 3, (103, 5))
    whole = compute_activations(config, params, tokens, names=["block_2"], method="full")
    blocks = list(iter_activations(config, params, tokens, chunk_sequences=25, names=["block_2"]))
    assert [(a, b) for a, b, _ in blocks] == [(0, 25), (25, 50), (50, 75), (75, 100), (100, 103)]
    assert all(list(acts) == ["block_2"] and acts["block_2"].shape == (b - a, 5, 16) for a, b, acts in blocks)
    bound = reference_forward(config, params, tokens).bound["blocks.1.hook_resid_post"]  # block_2
    assert_within(
        np.concatenate([acts["block_2"] for _, _, acts in blocks]), whole["block_2"], 2 * bound, "block_2"
    )  # two float32 paths (chunks of 25 rows, the whole): tests/conftest.py, rule 1
    with pytest.raises(ValueError, match="chunk_sequences"):
        next(iter_activations(config, params, tokens, chunk_sequences=0))
