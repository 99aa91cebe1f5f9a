"""The in-context learning study: [studies.icl] on the tiny mixture run writes icl.json, figures and report tables."""

import json

import numpy as np
import pytest
from f32_reference import forward
from tolerances import assert_within

from compmech.runs.config import ConfigError, config_from_dict, load_config
from compmech.runs.experiment import plan_run
from compmech.runs.studies.icl import transition

# the run: the session fixture `mixture_run` (tests/compmech/runs/conftest.py), tests/data/tiny_mixture.toml


@pytest.mark.slow
def test_icl_json_has_the_issues_keys_and_the_exact_theory(mixture_run):
    d = json.loads((mixture_run / "icl.json").read_text())
    T = 5
    assert d["seen"] == [1, 2, 3, 4, 5] and d["regime"] == "exact" and d["theory"]["method"] == "exact"
    last = [json.loads(line) for line in (mixture_run / "metrics.jsonl").read_text().splitlines()][-1]
    # the exact theory is the run's own optimum, position by position
    np.testing.assert_allclose(d["optimal_loss_by_position"], last["optimal_loss_by_position"], rtol=1e-9)
    # the model's loss, from log-probabilities of the full forward here and of the training's evaluation there: two
    # float32 paths, within twice the rule-1 bound (tests/conftest.py) of sum_n w_n sum_x p e_logq at each position
    import compmech

    run = compmech.load_run(mixture_run)
    ctx = run.contexts
    bound = np.einsum("n,ntx,ntx->t", ctx.probs, ctx.next_token_probs,
                      forward(run.model_config, run.params, ctx.tokens).bound["log_probs"])
    assert_within(d["model_loss_by_position"], last["loss_by_position"], 2 * bound, "model loss by position")
    comp = np.array(d["component_optimal_loss_by_position"])
    assert comp.shape == (2, T)
    opt, known = np.array(d["optimal_loss_by_position"]), np.array(d["known_source_loss_by_position"])
    assert np.all(known < opt) and np.all(np.diff(opt) < 0)  # not knowing the source costs, less and less
    assert np.all(np.array(d["model_gap_by_position"]) >= -bound)  # a KL divergence, up to the log-probs' rounding
    fixed = np.array(d["fixed_source_loss_by_position"])
    assert fixed.shape == (2, T) and np.all(fixed > opt)  # never inferring the source is worse than Bayes
    for who in ("theory", "model"):
        assert set(d["fits"][who]) == {"power_law", "exponential", "better", "note"}
    assert d["fits"]["theory"]["better"] in ("power_law", "exponential")


@pytest.mark.slow
def test_posterior_and_belief_probes_by_layer_and_position(mixture_run):
    d = json.loads((mixture_run / "icl.json").read_text())
    for target in ("posterior_probe", "belief_probe"):
        layer = d[target]["block_1"]
        assert [r["seen"] for r in layer["by_position"]] == d["seen"]
        assert layer["by_position"][0]["r2_heldout_contexts"] is None  # 3 one-token contexts: none held out
        assert layer["by_position"][-1]["n_contexts"] == 3 ** 5
        pooled = layer["pooled"]
        assert pooled["r2_heldout_contexts"] == layer["r2_heldout_contexts"]
        # even this tiny model carries the posterior, far above the shuffled control (held out the same way)
        assert layer["r2_heldout_contexts"] > 0.3 and pooled["r2_shuffled"] < 0.1
        assert layer["untrained"]["r2_heldout_contexts"] is not None
    assert d["best_layer"] == "block_1"


@pytest.mark.slow
def test_over_training_transition_induction_summary_and_report(mixture_run):
    d = json.loads((mixture_run / "icl.json").read_text())
    assert [e["tokens"] for e in d["over_training"]] == [0, 50 * 32 * 5]  # initialisation, the one checkpoint
    assert d["final"]["icl_fraction"] > d["over_training"][0]["icl_fraction"]
    assert d["transition"]["kind"] == "undetermined"  # two intervals only
    ind = d["induction"]["blocks.0.attn.hook_pattern"]
    assert len(ind["last"]["score"]) == 2 and 0 < ind["all"]["baseline"] < 1
    head = json.loads((mixture_run / "summary.json").read_text())["studies"]["icl"]
    assert head["json"] == "icl.json" and head["best_layer"] == "block_1"
    assert head["theory_better_fit"] == d["fits"]["theory"]["better"]
    for name in ("icl_loss", "icl_training", "icl_probe"):
        assert (mixture_run / "figures" / f"{name}.png").stat().st_size > 0
    html = (mixture_run / "report.html").read_text()
    assert "In-context learning: loss by position" in html and "source-posterior probes" in html


def test_transition_calls_a_jump_abrupt_and_a_ramp_gradual():
    tokens = [0, 10, 20, 30, 40]
    assert transition(tokens, [0.0, 0.02, 0.9, 0.95, 1.0])["kind"] == "abrupt"
    ramp = transition(tokens, [0.0, 0.25, 0.5, 0.75, 1.0])
    assert ramp["kind"] == "gradual" and ramp["max_interval_share"] == pytest.approx(0.25)
    assert transition(tokens, [0.0, 0.01, 0.0, 0.02, 0.01])["kind"] == "undetermined"  # no rise


def test_bad_icl_configs_are_config_errors(tmp_path):
    from pathlib import Path

    raw = load_config(Path(__file__).parents[2] / "data" / "tiny_mixture.toml").to_dict()
    with pytest.raises(ConfigError, match=r"\[studies.icl\] theory_method must be one of"):
        config_from_dict({**raw, "studies": {"icl": {"theory_method": "guess"}}})
    with pytest.raises(ConfigError, match=r"\[studies.icl\] eval_sequences must be an integer"):
        config_from_dict({**raw, "studies": {"icl": {"eval_sequences": 1}}})
    one = config_from_dict({**raw, "process": {"name": "mess3"}})
    with pytest.raises(ConfigError, match="needs a non-ergodic source"):
        plan_run(one, tmp_path / "x")


@pytest.mark.slow
def test_the_reproduce_table_reads_the_runs_icl_json(mixture_run):
    from compmech.runs.icl_reproduce import format_markdown, row
    from compmech.runs.reproduce import EXTRA_STUDIES

    assert "icl" in EXTRA_STUDIES
    r = row("tiny", mixture_run)
    d = json.loads((mixture_run / "icl.json").read_text())
    assert r["fits"] == d["fits"] and r["best_layer"] == "block_1" and r["gap_min_seen"] == 4
    text = format_markdown([r], quick=True)
    b = d["fits"]["theory"]["power_law"]["rate"]
    assert f"| theory | {b:.3g} ± " in text and "## tiny" in text
    assert f"max (model - optimal) / optimal = {100 * r['max_relative_gap']:.3f}%" in text
