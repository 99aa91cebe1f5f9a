"""`compmech run` on random Markov chains: the [process] table, the sampled regime's Dirichlet theory, a run end to
end."""

import json
import math
from pathlib import Path

import jax
import numpy as np
import pytest

from compmech.markov_chains import markov_icl_curve_exact
from compmech.runs.cli import main
from compmech.runs.config import ConfigError, config_from_dict, load_config
from compmech.runs.experiment import plan_run
from compmech.runs.processes import build_process
from compmech.runs.sampled import validation_set
from compmech.runs.sources import data_fn, source_of, source_traits
from hmm_processes import RandomMarkovChains, bayes_predictive, posterior_mean

TINY_MARKOV = Path(__file__).parents[2] / "data" / "tiny_markov.toml"


@pytest.mark.parametrize(
    "table, message",
    [
        ({"kind": "random_markov"}, "needs n_states"),
        ({"kind": "random_markov", "n_states": 1}, "n_states must be an integer >= 2"),
        ({"kind": "random_markov", "n_states": 2.0}, "n_states must be an integer >= 2"),
        ({"kind": "random_markov", "n_states": 3, "concentration": 0}, "concentration must be a finite number > 0"),
        ({"kind": "random_markov", "n_states": 3, "concentration": "1"}, "concentration must be a number > 0"),
        ({"kind": "random_markov", "n_states": 3, "params": {"x": 1}}, "params cannot stand beside kind"),
        ({"name": "mess3", "n_states": 3}, 'n_states is for kind = "random_markov"'),
        (
            {"kind": "mixture", "components": [{"name": "mess3"}, {"kind": "random_markov", "n_states": 3}]},
            r"components\[1\]: kind = \"random_markov\" cannot be a component",
        ),
    ],
)
def test_bad_random_markov_tables_name_the_key(table, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"process": table})


def test_the_table_builds_the_family_and_refuses_the_exact_regime():
    cfg = load_config(TINY_MARKOV)
    source = build_process(cfg.process)
    assert isinstance(source, RandomMarkovChains) and source.params == {"n_states": 3, "concentration": 1.0}
    assert cfg.process.to_dict() == {"kind": "random_markov", "n_states": 3, "concentration": 1.0}
    traits = source_traits(source)
    assert traits.belief_size == 9 and not traits.exact_regime and traits.figure_columns == (0, 1, 2)
    with pytest.raises(ConfigError, match="no HMM"):
        plan_run(load_config(TINY_MARKOV, {"data.regime": "exact"}), "/tmp/compmech-never-written")
    plan = plan_run(load_config(TINY_MARKOV, {"data.max_exact_strings": 10**9}), "/tmp/compmech-never-written")
    assert plan.regime.sampled  # "auto" never picks exact for it, however small


@pytest.mark.parametrize("bos", [False, True])
def test_blocks_carry_the_posterior_mean_and_the_dirichlet_predictive(bos):
    source = RandomMarkovChains(3, 0.5)
    block = source_of(source).sample_block(jax.random.key(0), 50, 7, bos)
    assert block.tokens.shape == (50, 7) and block.beliefs.shape == (50, 7, 9)
    assert block.next_token_probs.shape == (50, 7, 4 if bos else 3)
    body = block.tokens[:, 1:] if bos else block.tokens
    off = 1 if bos else 0
    np.testing.assert_allclose(block.beliefs[:, off:], posterior_mean(source, body))
    np.testing.assert_allclose(block.next_token_probs[:, off:, :3], bayes_predictive(source, body))
    if bos:
        assert np.all(block.tokens[:, 0] == 3)
        np.testing.assert_allclose(block.beliefs[:, 0], 1 / 3)
        np.testing.assert_allclose(block.next_token_probs[:, :, 3], 0.0)
        np.testing.assert_allclose(block.next_token_probs[:, 0, :3], 1 / 3)
    again = source_of(source).sample_block(jax.random.key(0), 50, 7, bos)
    np.testing.assert_array_equal(again.tokens, block.tokens)
    fn = data_fn(source, bos=bos)
    np.testing.assert_array_equal(np.asarray(fn(jax.random.key(1), 20, 7)), np.asarray(fn(jax.random.key(1), 20, 7)))


def test_the_validation_floor_is_the_dirichlet_optimum():
    cfg = load_config(TINY_MARKOV, {"process.concentration": 1.0, "process.n_states": 2})
    source = build_process(cfg.process)
    plan = plan_run(cfg, "/tmp/compmech-never-written")
    eval_set, floor = validation_set(cfg, source_of(source), plan.model_cfg, plan.regime)
    optimal_se = floor.stderr
    assert floor.method == "monte_carlo" and floor.exact_depth is None
    assert optimal_se.shape == (8,) and np.all(optimal_se[1:] > 0)
    # the sample's own Bayes loss: the mean entropy of its Dirichlet predictive
    p = eval_set.next_token_probs
    np.testing.assert_allclose(floor.sample_optimal, -(p * np.log(p)).sum(axis=2).mean(axis=0))
    exact = markov_icl_curve_exact(source, 9).optimal[1:]  # position t has seen t + 1 tokens
    assert np.all(np.abs(eval_set.optimal_loss - exact) <= 4 * np.maximum(optimal_se, 1e-12) + 1e-12)


def test_the_cli_lists_the_family_and_says_info_has_no_measures_for_it(capsys):
    assert main(["processes"]) == 0
    assert "random_markov(n_states, concentration=1.0)" in capsys.readouterr().out
    assert main(["info", "random_markov"]) == 2
    assert "not one HMM" in capsys.readouterr().err


@pytest.fixture(scope="module")
def markov_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny_markov"
    assert main(["run", str(TINY_MARKOV), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.mark.slow
def test_a_random_markov_run_trains_and_probes_the_posterior_mean(markov_run):
    for name in [
        "config.toml",
        "metrics.jsonl",
        "probe.json",
        "summary.json",
        "checkpoints/final.msgpack",
        "figures/belief_fractal.png",
        "figures/loss_by_position.png",
        "figures/distance_geometry.png",
        "analysis.json",
        "report.html",
        "complete.json",
    ]:
        assert (markov_run / name).is_file(), name
    assert not (markov_run / "process.json").exists()  # no HMM matrices to record
    summary = json.loads((markov_run / "summary.json").read_text())
    assert summary["process"] == {"name": "random_markov", "params": {"n_states": 3, "concentration": 1.0}}
    assert summary["regime"] == "sampled" and summary["source"]["belief_size"] == 9
    assert summary["source"]["optimal_loss_method"] == "monte_carlo"
    assert 1.0 < summary["relative_loss"] < 1.3 and summary["relative_loss_stderr"] > 0
    assert 1.0 < summary["relative_loss_paired"] < 1.3
    probe = json.loads((markov_run / "probe.json").read_text())
    assert probe["n_rows"] == 300 * 8 and len(probe["regime_sizes"]["optimal_loss_stderr_by_position"]) == 8
    best = probe["layers"][summary["probe_layer"]]
    assert best["mse"] < best["mse_shuffled"]
    records = [json.loads(line) for line in (markov_run / "metrics.jsonl").read_text().splitlines()]
    floor = np.asarray(records[-1]["optimal_loss_by_position"])
    assert floor[0] == pytest.approx(math.log(3))  # one token seen: the predictive is still uniform
    assert np.all(np.diff(floor) < 0)  # the chain is learned in context
    # the run's config reruns as it was written
    assert load_config(markov_run / "config.toml").process.n_states == 3
    page = (markov_run / "report.html").read_text()
    assert "random_markov (n_states = 3" in page and "probe target: posterior mean of the transition matrix" in page


@pytest.mark.slow
def test_the_icl_study_runs_on_the_chain_source(markov_run):
    """[studies.icl] on random chains: the Dirichlet optimum (exact here) against the told-the-matrix loss and
    the in-context unigram predictor; the posterior probe targets the posterior mean (9 numbers)."""
    d = json.loads((markov_run / "icl.json").read_text())
    assert d["seen"] == list(range(1, 9)) and d["theory"]["method"] == "exact"  # 9,840 contexts: enumerated
    opt = np.array(d["optimal_loss_by_position"])
    told = np.array(d["component_optimal_loss_by_position"])
    unigram = np.array(d["fixed_source_loss_by_position"])
    assert told.shape == (1, 8) and unigram.shape == (1, 8)
    assert opt[0] == pytest.approx(math.log(3))  # one token seen: no transition observed yet
    assert np.all(told[0] < opt) and np.all(np.diff(opt) < 0)
    assert np.all(unigram[0, 2:] > opt[2:])  # the order of the tokens helps once transitions repeat
    records = [json.loads(line) for line in (markov_run / "metrics.jsonl").read_text().splitlines()]
    floor = np.asarray(records[-1]["optimal_loss_by_position"])  # the run's own Monte-Carlo floor
    np.testing.assert_allclose(opt, floor, atol=0.03)
    layer = d["posterior_probe"]["block_1"]
    assert layer["pooled"]["r2_heldout_contexts"] > layer["pooled"]["r2_shuffled"]


def test_the_traceable_training_sampler_draws_the_random_chain_law():
    """P(x0 = x1 = x2) = sum_a (1/k) E[A_aa^2] = alpha (alpha + 1) / (k alpha (k alpha + 1)) = 1/6 for k = 3,
    alpha = 1 (1/9 if the tokens were independent); the first token is uniform; jit gives the same draw."""
    source = RandomMarkovChains(n_states=3, concentration=1.0)
    fn = data_fn(source)
    assert fn == data_fn(RandomMarkovChains(n_states=3, concentration=1.0)) and fn != data_fn(source, bos=True)
    tokens = np.asarray(jax.jit(fn, static_argnums=(1, 2))(jax.random.key(3), 40_000, 5))
    np.testing.assert_array_equal(tokens, np.asarray(fn(jax.random.key(3), 40_000, 5)))
    assert tokens.dtype == np.int32 and tokens.shape == (40_000, 5) and tokens.min() >= 0 and tokens.max() <= 2
    triple = np.mean((tokens[:, 0] == tokens[:, 1]) & (tokens[:, 1] == tokens[:, 2]))
    assert abs(triple - 1 / 6) < 4 * np.sqrt(1 / 6 * 5 / 6 / 40_000)
    np.testing.assert_allclose(np.bincount(tokens[:, 0], minlength=3) / 40_000, 1 / 3, atol=0.01)
