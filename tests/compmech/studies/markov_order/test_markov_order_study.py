"""The markov_order study (compmech/studies/markov_order/): its ceilings, windows and losses against what theory
requires of them, on planted data and on tiny runs (a plain HMM, a start token, a generalized HMM)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from compmech.runs.cli import main
from compmech.runs.config import ConfigError, config_from_dict
from compmech.studies.markov_order.analysis import Settings, ceiling_r2, unnormalized_beliefs

DATA = Path(__file__).parents[3] / "data"


def test_the_ceiling_is_one_when_the_groups_fix_the_target_and_zero_for_one_group():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 5, size=200)
    means = rng.normal(size=(5, 3))
    assert ceiling_r2(means[groups], groups, None) == pytest.approx(1.0, abs=1e-12)
    Y = rng.normal(size=(200, 3))
    assert ceiling_r2(Y, np.zeros(200, int), None) == pytest.approx(0.0, abs=1e-12)
    # a finer partition never reads less (group means are the best function of the group, nested partitions)
    coarse, fine = groups % 2, groups
    w = rng.uniform(0.1, 1.0, size=200)
    assert ceiling_r2(Y, fine, w) >= ceiling_r2(Y, coarse, w) - 1e-12


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"orders": [0]}, "integers >= 1"),
        ({"orders": [1, 1]}, "must not repeat"),
        ({"weighting": "both"}, "uniform"),
        ({"n_repeats": 0}, "positive integer"),
    ],
)
def test_bad_settings_say_what_is_wrong(fields, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"process": {"name": "mess3"}, "studies": {"markov_order": fields}})
    assert Settings().orders == (1, 2, 3)


def test_an_order_as_long_as_the_context_is_refused_before_training(tmp_path, capsys):
    raw = (DATA / "tiny_mess3.toml").read_text() + "\n[studies.markov_order]\norders = [1, 6]\n"
    (tmp_path / "c.toml").write_text(raw)
    assert main(["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "below the context length 6" in capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    "config, orders", [("tiny_mess3", [1, 2, 3]), ("tiny_bos", [1, 2]), ("tiny_tom_quantum", [1, 2])]
)
def test_a_run_reports_losses_and_ceilings_that_theory_orders(config, orders, tmp_path):
    raw = (DATA / f"{config}.toml").read_text() + f"\n[studies.markov_order]\norders = {orders}\nn_repeats = 2\n"
    (tmp_path / "c.toml").write_text(raw)
    assert main(["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    d = json.loads((tmp_path / "run" / "markov_order.json").read_text())
    loss = {r["predictor"]: r["loss"] for r in d["losses"]}
    # exact sums of float64 logs over a few thousand strings: 1e-12 covers their rounding
    chain = [loss["order-0"], *(loss[f"order-{k}"] for k in orders), loss["optimal"]]
    assert all(a >= b - 1e-12 for a, b in zip(chain, chain[1:]))  # seeing more never costs more
    assert loss["model"] >= loss["optimal"] - 1e-12  # nothing beats the Bayes-optimal predictor in expectation
    if config != "tiny_tom_quantum":  # Mess3's stationary token law is uniform: order 0 costs log 3
        assert loss["order-0"] == pytest.approx(math.log(3), abs=1e-12)
    ceilings = [d["ceilings"][str(k)] for k in orders]
    assert all(0 <= c <= 1 for c in ceilings) and ceilings == sorted(ceilings)  # nested windows: non-decreasing
    (layer,) = d["layers"]
    true = layer["probes"][0]
    assert true["target"] == "true beliefs" and -1 < true["r2_heldout_contexts"] <= 1
    for k in orders:
        margin = layer["margins"][str(k)]
        assert margin == pytest.approx(true["r2_heldout_contexts"] - d["ceilings"][str(k)], abs=1e-12)
        assert d["verdicts"][str(k)] is (margin > 0)
    by = {p["target"]: p for p in layer["probes"]}  # the norm-shuffled control sits beside the unnormalised beliefs
    assert by["unnormalized beliefs"]["dim"] == by["norm-shuffled beliefs"]["dim"] == true["dim"]
    shuffled = [p["r2_shuffled_heldout_contexts"] for p in layer["probes"]]
    assert all(s is not None and s < 0.2 for s in shuffled)  # a shuffled target is not read out
    assert (tmp_path / "run" / "figures" / "markov_order.png").is_file()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary["studies"]["markov_order"]["verdicts"]) == {str(k) for k in orders}
    assert "Order-k controls" in (tmp_path / "run" / "report.html").read_text()


@pytest.mark.parametrize("name, params", [("mess3", {}), ("tom_quantum", {"alpha": 1.0, "beta": 2.25})])
@pytest.mark.parametrize("bos", [False, True])
def test_unnormalized_beliefs_point_along_the_belief_and_sum_to_the_last_tokens_probability(name, params, bos):
    """The authors' unnormalised belief (epsilon_transformers GHMM.derive_mixed_state_tree's unnorm_state_prob_vector,
    commit c3e9e84): its direction is the belief, its tau-sum P(x_t | x_<t) = P(x_0..x_t) / P(x_0..x_t-1), checked
    against word probabilities pi T^(w) tau enumerated by brute force."""
    from itertools import product

    from compmech.mixed_states import belief_trajectories
    from hmm_processes import get_process
    from hmm_processes.generalized import process_vectors

    process = get_process(name, **params)
    T, pi, tau = process_vectors(process)
    words = np.array(list(product(range(process.vocab_size), repeat=3)))  # [V^3, 3]

    def p(word):  # brute force: pi T^(w) tau
        v = pi
        for x in word:
            v = v @ T[x]
        return float(v @ tau)

    keep = np.array([p(w) > 1e-12 for w in words])
    words = words[keep]
    beliefs, _ = belief_trajectories(process, words)  # [N, 3, S]
    if bos:  # the model's positions: the start token (the prior) first
        beliefs = np.concatenate([np.broadcast_to(pi, (len(words), 1, pi.size)), beliefs], axis=1)
    out = unnormalized_beliefs(T, pi, beliefs, words, bos=bos)
    assert out.shape == beliefs.shape
    real = out[:, 1:] if bos else out
    if bos:
        np.testing.assert_allclose(out[:, 0], np.broadcast_to(pi, out[:, 0].shape), atol=1e-15)
    sums = real @ tau  # [N, 3]
    expect = np.array([[p(w[: t + 1]) / p(w[:t]) for t in range(3)] for w in words])
    # float64 products of <= 4 matrices of entries <= 1: rounding ~1e-15 relative; 1e-12 covers it
    np.testing.assert_allclose(sums, expect, rtol=1e-12)
    np.testing.assert_allclose(real / sums[..., None], beliefs[:, 1:] if bos else beliefs, atol=1e-12)
