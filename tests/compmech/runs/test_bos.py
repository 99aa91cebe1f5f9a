"""The start token ([data] bos = true): contexts, data, theory at position 0, and a run end to end."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from compmech.runs.config import ConfigError, config_from_dict, load_config
from compmech.runs.experiment import run_experiment
from compmech.runs.sources import context_set, data_fn
from hmm_processes.named import mess3, rrxor

TINY_BOS = Path(__file__).parents[2] / "data" / "tiny_bos.toml"


@pytest.mark.parametrize("process", [mess3(), rrxor()], ids=["mess3", "rrxor"])
def test_context_set_with_a_start_token(process):
    L = 5
    with_bos, without = context_set(process, L, bos=True), context_set(process, L - 1)
    V = process.vocab_size
    assert with_bos.bos and with_bos.tokens.shape == (without.tokens.shape[0], L)
    assert np.all(with_bos.tokens[:, 0] == V) and np.array_equal(with_bos.tokens[:, 1:], without.tokens)
    prior = process.stationary_distribution
    np.testing.assert_allclose(with_bos.beliefs[:, 0], np.broadcast_to(prior, (len(with_bos.probs), prior.size)))
    np.testing.assert_allclose(with_bos.beliefs[:, 1:], without.beliefs)
    # the start token is never emitted; position 0 predicts the first token from the prior
    assert with_bos.next_token_probs.shape[2] == V + 1 and np.all(with_bos.next_token_probs[..., V] == 0)
    first = prior @ process.emission_matrix
    np.testing.assert_allclose(with_bos.next_token_probs[:, 0, :V], np.broadcast_to(first, (len(with_bos.probs), V)))
    # the optimum at position 0 is H[X1]; later positions are those of the run without the start token, shifted
    assert with_bos.optimal_loss[0] == pytest.approx(-np.sum(first * np.log(first)), rel=1e-12)
    np.testing.assert_allclose(with_bos.optimal_loss[1:], without.optimal_loss, rtol=1e-12)  # h(2)..h(L) both
    entropies = -np.sum(
        np.where(
            with_bos.next_token_probs > 0,
            with_bos.next_token_probs * np.log(np.where(with_bos.next_token_probs > 0, with_bos.next_token_probs, 1)),
            0,
        ),
        -1,
    )
    np.testing.assert_allclose(with_bos.optimal_loss, with_bos.probs @ entropies, rtol=1e-10)


def test_data_with_a_start_token():
    tokens = np.asarray(data_fn(mess3(), bos=True)(jax.random.key(0), 64, 7))
    assert tokens.shape == (64, 7)
    assert np.all(tokens[:, 0] == 3) and tokens[:, 1:].min() >= 0 and tokens[:, 1:].max() <= 2
    plain = np.asarray(data_fn(mess3())(jax.random.key(0), 64, 7))
    assert plain.max() <= 2


def test_data_settings_in_the_config():
    raw = {"process": {"name": "mess3"}, "data": {"bos": True}}
    cfg = config_from_dict(raw)
    assert cfg.data.bos is True
    assert "[data]" in cfg.to_toml() and "bos = true" in cfg.to_toml()
    assert config_from_dict({"process": {"name": "mess3"}}).data.bos is False
    with pytest.raises(ConfigError, match=r"\[data\] bos must be bool"):
        config_from_dict({"process": {"name": "mess3"}, "data": {"bos": 1}})
    with pytest.raises(ConfigError, match=r"unknown key \[data\] 'start'"):
        config_from_dict({"process": {"name": "mess3"}, "data": {"start": True}})


@pytest.mark.slow
def test_run_with_a_start_token(tmp_path):
    cfg = load_config(TINY_BOS, {"training.steps": 200, "training.save_at_tokens": []})
    summary = run_experiment(cfg, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["optimal_loss_by_position"][0] == pytest.approx(np.log(3), rel=1e-12)  # H[X1] of Mess3
    assert summary.relative_loss < 1.02
    probe = json.loads((run / "probe.json").read_text())
    assert probe["bos"] is True and probe["n_strings"] == 3**5
    assert probe["layers"]["block_2"]["mse"] < 0.2 * probe["layers"]["block_2"]["mse_shuffled"]
    from compmech.runs.run_dir import load_run

    loaded = load_run(run)
    assert loaded.model_config.vocab_size == 4  # the process's 3 tokens and the start token
    assert np.all(loaded.contexts.tokens[:, 0] == 3)
