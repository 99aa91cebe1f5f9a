"""The sampled regime: regime choice, memory estimate, the same probe numbers as the exact regime, and a run end to
end."""

import json
from pathlib import Path

import numpy as np
import pytest
from f32_sampler import sampler_beliefs
from tolerances import F32_U, assert_within

from compmech.runs.cli import main
from compmech.runs.config import ConfigError, config_from_dict, load_config
from compmech.runs.experiment import plan_run
from compmech.runs.probing import probe_model
from compmech.runs.regime import choose_regime
from compmech.runs.sampled import probe_model_sampled, validation_set
from compmech.runs.sources import context_set, source_of
from hmm_processes import GeneralizedHMM, get_process, product


def sample_block(process, key, n, context_length, bos=False):
    return source_of(process).sample_block(key, n, context_length, bos)


def optimal_loss_by_position(process, context_length, bos=False):
    floor = source_of(process).optimal_loss(context_length, bos)
    return floor.values, floor.exact_depth


DATA = Path(__file__).parents[2] / "data"
TINY_SAMPLED = DATA / "tiny_sampled.toml"
TINY_EXACT = DATA / "tiny_mess3.toml"


def test_auto_picks_exact_below_the_cap_and_sampled_above():
    mess3 = get_process("mess3")
    cfg = load_config(TINY_EXACT)  # context 6: 729 strings
    assert choose_regime(cfg, source_of(mess3), 6).name == "exact"
    capped = load_config(TINY_EXACT, {"data.max_exact_strings": 700})
    choice = choose_regime(capped, source_of(mess3), 6)
    assert choice.sampled and choice.strings_bound == 729 and choice.probe_sequences == 20_000
    assert choose_regime(load_config(TINY_EXACT, {"data.regime": "sampled"}), source_of(mess3), 6).sampled
    assert not choose_regime(
        load_config(TINY_EXACT, {"data.regime": "exact", "data.max_exact_strings": 1}), source_of(mess3), 6
    ).sampled


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("regime", "approximate", "regime must be one of"),
        ("max_exact_strings", 0, "max_exact_strings must be an integer >= 1"),
        ("validation_sequences", 1, "validation_sequences must be an integer >= 2"),
        ("probe_sequences", 1.5, "probe_sequences must be int"),
        ("chunk_rows", 0, "chunk_rows must be an integer >= 1"),
    ],
)
def test_bad_data_settings_name_the_key(key, value, message):
    raw = {"process": {"name": "mess3"}, "data": {key: value}}
    with pytest.raises(ConfigError, match=message):
        config_from_dict(raw)


def test_the_memory_estimate_follows_the_regime():
    long = {"model.context_length": 64, "model.d_model": 64, "model.n_layers": 4, "model.d_mlp": 256}
    sampled = plan_run(load_config(TINY_EXACT, long), "/tmp/compmech-never-written", available=2**40)
    assert sampled.regime.sampled and sampled.memory.n_strings == 3**64
    assert sampled.memory.peak < 3 * 2**30  # no V^L anywhere in it
    with pytest.raises(ConfigError, match="exact regime enumerates"):
        plan_run(
            load_config(TINY_EXACT, {**long, "data.regime": "exact"}), "/tmp/compmech-never-written", available=2**40
        )


def test_a_products_optimal_loss_is_the_sum_of_its_factors():
    a, b = get_process("mess3"), get_process("mess3", x=0.1, alpha=0.7)
    joint, depth = optimal_loss_by_position(product([a, b]), 4)
    parts = [optimal_loss_by_position(p, 4)[0] for p in (a, b)]
    np.testing.assert_allclose(joint, parts[0] + parts[1], rtol=1e-12)
    exact = context_set(product([a, b]), 4).optimal_loss  # the joint process enumerated
    np.testing.assert_allclose(joint, exact, rtol=1e-9)
    assert depth == 4


def sampled_bounds(process, tokens):
    """The rule-1 bounds (tests/conftest.py) of `sample_block`'s beliefs and next-token laws: the float32 sampler's
    (f32_sampler), then renormalised in float64 (eta / (eta @ tau): first order, e + |eta| (e @ |tau|); the law
    clipped and divided by its sum, e + p sum(e))."""
    from hmm_processes.sampling import GHMM_SAMPLING_MIN_PROB

    ghmm = isinstance(process, GeneralizedHMM)
    tau = process.normalizer if ghmm else np.ones(process.T.shape[1])
    prior = process.stationary_vector if ghmm else process.stationary_distribution
    b, p, e_b, e_p = sampler_beliefs(process.T, tau, prior, tokens, generalized=ghmm, min_prob=GHMM_SAMPLING_MIN_PROB)
    return (
        e_b + np.abs(b) * (e_b @ np.abs(tau))[..., None] / np.abs(b @ tau)[..., None],
        e_p + p * e_p.sum(-1, keepdims=True),
    )


def test_sampled_blocks_carry_beliefs_and_next_token_laws_aligned_with_the_positions():
    import jax

    mess3 = get_process("mess3")
    block = sample_block(mess3, jax.random.key(0), 50, 5)
    ctx = context_set(mess3, 5)
    index = {tuple(t): i for i, t in enumerate(ctx.tokens.tolist())}
    rows = [index[tuple(t)] for t in block.tokens.tolist()]
    e_b, e_p = sampled_bounds(mess3, block.tokens)
    assert_within(block.beliefs, ctx.beliefs[rows], e_b, "beliefs")
    assert_within(block.next_token_probs, ctx.next_token_probs[rows], e_p, "next-token laws")
    bos = sample_block(mess3, jax.random.key(0), 50, 5, bos=True)
    assert (bos.tokens[:, 0] == 3).all() and bos.next_token_probs.shape == (50, 5, 4)
    prior = mess3.stationary_distribution
    assert_within(bos.beliefs[:, 0], np.broadcast_to(prior, (50, 3)), 2 * F32_U * prior, "start beliefs")
    assert_within(bos.beliefs[:, 1:], block.beliefs[:, :4], 2 * e_b[:, :4], "body")  # same key: same body


@pytest.mark.parametrize("name", ["tom_quantum", "post_quantum"])
def test_sampled_blocks_of_a_generalized_hmm_are_its_exact_quasi_beliefs(name):
    import jax

    ghmm = get_process(name)
    block = sample_block(ghmm, jax.random.key(1), 40, 5)
    ctx = context_set(ghmm, 5)
    index = {tuple(t): i for i, t in enumerate(ctx.tokens.tolist())}
    rows = [index[tuple(t)] for t in block.tokens.tolist()]  # every sampled word is an allowed one
    np.testing.assert_allclose(block.beliefs @ ghmm.normalizer, 1.0, atol=1e-12)  # eta @ tau = 1 (float64)
    e_b, e_p = sampled_bounds(ghmm, block.tokens)
    assert_within(block.beliefs, ctx.beliefs[rows], e_b, "quasi-beliefs")
    assert_within(block.next_token_probs, ctx.next_token_probs[rows], e_p, "next-token laws")


@pytest.mark.slow
def test_sampled_probe_numbers_agree_with_the_exact_regime_within_sampling_error():
    """Mess3 at context 6 is small enough for both: the sampled regime's rows are drawn from the process, so it
    estimates the exact regime's probability-weighted probe on every string."""
    from predictive_models.transformer import init_params

    cfg = load_config(
        TINY_SAMPLED, {"probe.weighting": "probability", "data.probe_sequences": 20_000, "data.chunk_rows": 12_000}
    )
    mess3 = get_process("mess3", x=0.05, alpha=0.85)
    plan = plan_run(cfg, "/tmp/compmech-never-written")
    params = init_params(plan.model_cfg, 5)  # random features: a probe with a clearly non-zero error
    ctx = context_set(mess3, 6)
    exact = probe_model(cfg, plan.model_cfg, params, ctx, "block_2")
    # the targets' variance under the process (each string weighted by its probability): what a probe of
    # targets shuffled among sampled rows scores (the exact regime's weighted control permutes the targets
    # against fixed row weights, which mixes in the uniform-over-strings variance instead)
    w = np.repeat(ctx.probs, 6) / ctx.probs.sum() / 6
    Y = ctx.beliefs.reshape(-1, 3)
    weighted_variance = float(w @ np.square(Y - w @ Y).mean(axis=1))
    eval_set, _ = validation_set(cfg, source_of(mess3), plan.model_cfg, plan.regime)
    sampled, kept = probe_model_sampled(
        cfg, plan.model_cfg, params, source_of(mess3), plan.regime, "block_2", eval_set.optimal_loss
    )
    assert set(sampled.to_json()) == set(exact.to_json())
    assert set(sampled.results) == set(exact.results)
    for name in exact.results:
        e, s = exact.results[name], sampled.results[name]
        se = s.mse_heldout_std / np.sqrt(5)  # the fold-to-fold spread / sqrt(K): the error of the full sample
        assert abs(s.mse - e.mse) < 4 * se + 0.01 * e.mse, name
        # the context-disjoint errors: both are means over 5 splits, so their difference has the standard
        # error sqrt(std_e² + std_s²) / sqrt(5) (the splits differ: per-position 20% there, hash folds here)
        se_ctx = np.hypot(e.mse_heldout_contexts_std, s.mse_heldout_contexts_std) / np.sqrt(5)
        assert abs(s.mse_heldout_contexts - e.mse_heldout_contexts) < 3 * se_ctx, name
        assert s.mse_heldout_contexts > s.mse and s.mse_heldout >= 0.999 * s.mse, name
        assert abs(s.mse_shuffled - weighted_variance) < 0.03 * weighted_variance, name
        assert abs(s.r2 - e.r2) < 0.02, name
    assert sampled.results["block_2"].n_rows == 120_000
    assert kept.tokens.shape == (1000, 6) and sampled.data.n_rows == 6000
    assert sampled.predictions["block_2"].shape == (6000, 3)


@pytest.fixture(scope="module")
def sampled_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny_sampled"
    assert main(["run", str(TINY_SAMPLED), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.mark.slow
def test_a_sampled_run_writes_the_exact_regimes_files_and_keys(sampled_run):
    for name in [
        "config.toml",
        "metrics.jsonl",
        "probe.json",
        "summary.json",
        "checkpoints/final.msgpack",
        "figures/belief_fractal.png",
        "figures/loss_by_position.png",
        "figures/training_curve.png",
        "figures/probe_layers.png",
        "figures/distance_geometry.png",
        "analysis.json",
        "report.html",
        "process.json",
        "complete.json",
    ]:
        assert (sampled_run / name).is_file(), name
    probe = json.loads((sampled_run / "probe.json").read_text())
    assert probe["regime"] == "sampled" and probe["regime_sizes"]["probe_sequences"] == 600
    assert probe["n_rows"] == 600 * 6 and probe["regime_sizes"]["optimal_loss_exact_depth"] == 6
    assert set(probe["layers"]) == {"embedding", "block_1", "block_2", "final_ln", "concat"}
    best = probe["layers"]["block_2"]
    assert best["mse"] < 0.3 * best["mse_shuffled"] and best["mse_heldout_contexts"] is not None
    summary = json.loads((sampled_run / "summary.json").read_text())
    assert summary["regime"] == "sampled" and summary["relative_loss_stderr"] > 0
    records = [json.loads(line) for line in (sampled_run / "metrics.jsonl").read_text().splitlines()]
    assert {"loss_by_position_stderr", "relative_loss_by_position", "optimal_loss"} <= set(records[-1])
    assert records[-1]["n_sequences"] == 300
    # the optimum is the exact one (context 6 is small enough to check against the enumeration)
    exact = context_set(get_process("mess3", x=0.05, alpha=0.85), 6).optimal_loss
    np.testing.assert_allclose(records[-1]["optimal_loss_by_position"], exact, rtol=1e-9)
