"""The in-context learning study: [studies.icl] on the tiny mixture run writes icl.json, figures and report tables."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from f32_reference import forward
from tolerances import assert_within

from compmech.runs.config import ConfigError, config_from_dict, load_config
from compmech.runs.experiment import plan_run
from compmech.studies.icl.analysis import transition

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
    bound = np.einsum(
        "n,ntx,ntx->t",
        ctx.probs,
        ctx.next_token_probs,
        forward(run.model_config, run.params, ctx.tokens).bound["log_probs"],
    )
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
        assert layer["by_position"][-1]["n_contexts"] == 3**5
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

    raw = load_config(Path(__file__).parents[3] / "data" / "tiny_mixture.toml").to_dict()
    with pytest.raises(ConfigError, match=r"\[studies.icl\] theory_method must be one of"):
        config_from_dict({**raw, "studies": {"icl": {"theory_method": "guess"}}})
    with pytest.raises(ConfigError, match=r"\[studies.icl\] eval_sequences must be an integer"):
        config_from_dict({**raw, "studies": {"icl": {"eval_sequences": 1}}})
    one = config_from_dict({**raw, "process": {"name": "mess3"}})
    with pytest.raises(ConfigError, match="needs a non-ergodic source"):
        plan_run(one, tmp_path / "x")


@pytest.mark.slow
def test_the_reproduce_table_reads_the_runs_icl_json(mixture_run):
    from compmech.runs.reproduce import reproducible_studies
    from compmech.studies.icl.reproduce import format_markdown, row

    assert "icl" in reproducible_studies()
    r = row("tiny", mixture_run)
    d = json.loads((mixture_run / "icl.json").read_text())
    assert r["fits"] == d["fits"] and r["best_layer"] == "block_1" and r["gap_min_seen"] == 4
    text = format_markdown([r], quick=True)
    b = d["fits"]["theory"]["power_law"]["rate"]
    assert f"| theory | {b:.3g} ± " in text and "## tiny" in text
    assert f"max (model - optimal) / optimal = {100 * r['max_relative_gap']:.3f}%" in text


# ---------------------------------------------------------------------------- comparisons that could fail (issue 23)


@pytest.mark.slow
def test_a_sampled_run_records_where_exact_theory_and_exact_evaluation_end(markov_hybrid_run):
    d = json.loads((markov_hybrid_run / "icl.json").read_text())
    assert d["regime"] == "sampled" and d["seen"] == list(range(1, 9))
    assert d["theory"]["method"] == "hybrid" and d["theory"]["last_exact_seen"] == 3
    assert d["theory"]["exact"] == [True] * 4 + [False] * 5  # seen 0..8
    assert d["optimal_loss_by_position_exact"] == [True] * 3 + [False] * 5
    np.testing.assert_array_equal(np.array(d["optimal_loss_by_position_se"])[:3], 0.0)
    ev = d["model_eval"]
    assert ev["exact_positions"] == 3 and ev["exact_strings"] == 27 and ev["sequences"] == 200
    assert d["model_loss_by_position_exact"] == [True] * 3 + [False] * 5
    se = np.array(d["model_loss_by_position_se"])
    assert np.all(se[:3] == 0) and np.all(se[3:] > 0)
    # the check, position by position; at the exact positions a loss below the optimum would be a real error
    check = d["below_optimum"]
    assert [r["seen"] for r in check["by_position"]] == d["seen"]
    assert check["passed"] and check["violations_seen"] == [] and d["targets"]["no_model_loss_below_exact_optimum"]
    for r, opt, loss in zip(check["by_position"], d["optimal_loss_by_position"], d["model_loss_by_position"]):
        assert r["difference"] == pytest.approx(loss - opt, abs=1e-12)
    assert all(r["tolerance"] < 1e-5 for r in check["by_position"][:3])  # the float32 normalisation bound only
    # the model's excess is its measured loss minus the told-the-source loss
    np.testing.assert_allclose(
        d["model_excess_by_position"],
        np.array(d["model_loss_by_position"]) - d["known_source_loss_by_position"],
        rtol=1e-12,
    )
    assert set(d["fits"]["comparison"]) == {"model", "theory", "seen", "power_law", "exponential", "rule"}
    text = (markov_hybrid_run / "summary.json").read_text()
    assert '"theory_last_exact_seen": 3' in text


def _theory_at_seen(n_seen: int):
    import hmm_processes as hp
    from compmech.studies.icl.analysis import Frame, Settings, theory_phase

    mix = hp.mixture([hp.mess3(0.05, 0.85), hp.mess3(0.15, 0.6)], [0.5, 0.5])
    frame = Frame(seen=np.arange(1, n_seen + 1), bos=False, sampled=True, layers=("block_1",))
    inputs = SimpleNamespace(process=mix, cfg=SimpleNamespace(seed=0), progress=False)
    return theory_phase(inputs, Settings(), frame), frame


def _model_loss(loss, loss_se=None, exact=None):
    from compmech.studies.icl.analysis import ModelLoss

    loss = np.asarray(loss, np.float64)
    zeros = np.zeros_like(loss)
    return ModelLoss(
        loss=loss,
        loss_se=zeros if loss_se is None else np.asarray(loss_se, np.float64),
        gap=zeros,
        gap_se=zeros,
        norm_bound=np.full(loss.shape, 1e-7),
        exact=np.ones(loss.shape, bool) if exact is None else np.asarray(exact),
    )


def test_the_models_fit_is_of_its_own_measured_curve():
    """Today's definition (the theory's excess plus the model's gap) refits the theory: a model loss with a planted
    decay must come back with that decay, whatever the theory's."""
    from compmech.studies.icl.analysis import EvalSet, ModelLosses, Settings, against_theory

    th, frame = _theory_at_seen(8)
    n = frame.seen.astype(float)
    planted = th.known + 0.05 * np.exp(-n / 3.0)  # the model's excess decays with tau = 3 tokens
    losses = ModelLosses(rows=EvalSet(None, None, 0), final=_model_loss(planted), points=())
    vs = against_theory(th, losses, Settings(), frame)
    assert vs.fit.exponential.rate == pytest.approx(3.0, rel=1e-6)
    theory_tau = vs.decay.exponential.theory_rate
    assert abs(theory_tau - 3.0) > 1.0 and vs.decay.exponential.agree is False
    # the same model perturbed: its fit moves, the theory's does not
    other = against_theory(
        th,
        ModelLosses(rows=EvalSet(None, None, 0), final=_model_loss(th.known + 0.05 * np.exp(-n / 5.0)), points=()),
        Settings(),
        frame,
    )
    assert other.fit.exponential.rate == pytest.approx(5.0, rel=1e-6)
    assert other.decay.exponential.theory_rate == theory_tau


def test_the_below_optimum_check_flags_a_planted_violation():
    from compmech.studies.icl.analysis import below_optimum_check

    seen = np.arange(1, 7)
    opt = np.array([1.06, 1.043, 1.035, 1.03, 1.027, 1.024])
    opt_se = np.array([0, 0, 0, 4e-4, 4e-4, 4e-4])
    exact_opt = opt_se == 0
    model_se = np.array([0, 0, 0, 1e-3, 1e-3, 1e-3])
    ok = below_optimum_check(seen, _model_loss(opt + 1e-3, model_se), opt, opt_se, exact_opt)
    assert ok.passed and not any(ok.below)
    loss = opt + 1e-3
    loss[1] = opt[1] - 1e-5  # below the exact optimum by 100 times the normalisation bound
    loss[2] = opt[2] - 5e-8  # within the bound: not a violation
    loss[4] = opt[4] - 3 * np.hypot(1e-3, 4e-4)  # 3 errors below a Monte-Carlo optimum
    check = below_optimum_check(seen, _model_loss(loss, model_se), opt, opt_se, exact_opt)
    assert check.below == (False, True, False, False, True, False)
    assert check.violations == [2] and not check.passed
    rec = check.to_json()
    assert rec["violations_seen"] == [2] and rec["below_at_monte_carlo_optimum_seen"] == [5]
    # no gap on the rows: the rows' own optimum is the model's loss, so the offset says the model itself is below
    assert rec["by_position"][1]["rows_offset"] == pytest.approx(-1e-5, abs=1e-15)


@pytest.mark.parametrize("bos", [False, True])
def test_the_exact_rows_are_the_runners_context_set_position_by_position(bos):
    """The model's exact evaluation rows: the same strings and next-token laws as the runner's own context set
    (every allowed string with its theory), aligned with the model's positions with and without a start token."""
    import hmm_processes as hp
    from compmech.runs.sources import source_of
    from compmech.studies.icl.analysis import exact_rows

    mix = hp.mixture([hp.mess3(0.05, 0.85), hp.mess3(0.15, 0.6)], [0.5, 0.5])
    source = source_of(mix)
    rows = exact_rows(mix, 5, bos, 10_000, source.strings_bound)
    ctx = source.context_set(5, bos)
    assert rows.tokens.shape == ctx.tokens.shape and not rows.sampled
    order = np.lexsort(rows.tokens.T[::-1])
    other = np.lexsort(ctx.tokens.T[::-1])
    np.testing.assert_array_equal(rows.tokens[order], ctx.tokens[other])
    np.testing.assert_allclose(rows.next_token_probs[order], ctx.next_token_probs[other], atol=1e-12)
    np.testing.assert_allclose(rows.weights[order], ctx.probs[other] / ctx.probs.sum(), rtol=1e-12)
    # a budget below the full length: the longest prefix of positions whose strings fit (3^3 = 27 <= 30 < 81)
    short = exact_rows(mix, 5, bos, 30, source.strings_bound)
    assert short.tokens.shape[1] == (4 if bos else 3)
