"""The constrained-belief-update study: [studies.cbu] on a tiny product run writes cbu.json, its figure, report
tables and summary headline; bad configs are config errors; the reproduce table reads the run."""

import json

import numpy as np
import pytest
from tolerances import f32_softmax_sum_bound

from compmech.runs.config import ConfigError, config_from_dict, load_config
from compmech.runs.experiment import plan_run

# lambda = (0.7, 0.3): two predicted heads; context 3 over 9 tokens = 729 strings
CONFIG = """
name = "tiny_cbu"
seed = 1
[process]
kind = "product"
[[process.components]]
name = "mess3"
params = { x = 0.1, alpha = 0.85 }
[[process.components]]
name = "mess3"
params = { x = 0.23333333333333334, alpha = 0.85 }
[model]
context_length = 4
n_layers = 1
d_model = 16
n_heads = 3
d_head = 4
d_mlp = 32
layer_norm = false
[training]
steps = 100
batch_size = 32
learning_rate = 1e-2
warmup_steps = 10
steps_per_call = 50
eval_every = 100
checkpoint_every = 100
[probe]
n_repeats = 1
[figures]
dpi = 40
[studies.cbu]
n_repeats = 1
"""


@pytest.fixture(scope="module")
def cbu_run(study_run):
    return study_run(CONFIG)


@pytest.mark.slow
def test_cbu_json_has_the_issues_keys_and_the_predictions(cbu_run):
    d = json.loads((cbu_run / "cbu.json").read_text())
    assert d["predicted_head_count"] == 2 and d["n_heads"] == 3
    assert [p["rate"] for p in d["predicted_heads"]] == pytest.approx([0.7, 0.3])
    assert 0 <= d["observed_head_count"] <= 3
    assert sum(len(g) for g in d["observed_rate_groups"]) == d["observed_head_count"]
    assert [(h["layer"], h["head"]) for h in d["heads"]] == [(0, 0), (0, 1), (0, 2)]
    for h in d["heads"]:
        assert {
            "predicted_lambda",
            "fitted_lambda",
            "r2",
            "parity_rate",
            "parity_r2",
            "clean_decay",
            "ov_update_cosine",
        } <= set(h)
        assert h["fitted_lambda"] > 0 and h["r2"] <= 1 + 1e-9
        assert len(h["ov_update_cosine"]) == 9 and all(-1 - 1e-9 <= c <= 1 + 1e-9 for c in h["ov_update_cosine"])
    # every matched head carries one of the predictions; the rest none
    matched = [h for h in d["heads"] if h["predicted_lambda"] is not None]
    assert len(matched) == sum(m is not None for m in d["matched_heads"]) <= 2
    # the joint spectrum holds the products of the factors' eigenvalues; each factor its own
    vals = sorted(round(c["eigenvalue"], 6) for c in d["spectrum"]["components"])
    assert vals == pytest.approx([0.21, 0.3, 0.7, 1.0])
    for layer in ("blocks.0.hook_resid_mid", "block_1"):
        for target in ("constrained", "beliefs"):
            r = d["probes"][layer][target]
            assert r["mse_heldout_contexts"] is not None and r["mse_shuffled"] > 0
    # even this tiny model's stream holds the factors' beliefs far better than the shuffled control
    assert (
        d["probes"]["block_1"]["beliefs"]["mse_heldout_contexts"]
        < 0.5 * d["probes"]["block_1"]["beliefs"]["mse_shuffled"]
    )
    mean = d["mean_attention"][0]  # [H, T, T], float64 means of float32 softmax rows: each sums to 1 within
    tol = f32_softmax_sum_bound(len(mean[0]))  # the softmax's own rounding (tests/conftest.py, rule 1)
    assert all(abs(sum(row) - 1) <= tol for head in mean for row in head)
    summary = json.loads((cbu_run / "summary.json").read_text())
    head = summary["studies"]["cbu"]
    assert head["json"] == "cbu.json" and head["predicted_head_count"] == 2
    assert "figures/cbu.png" in summary["figures"] and (cbu_run / "figures" / "cbu.png").stat().st_size > 0
    html = (cbu_run / "report.html").read_text()
    assert "Constrained belief update: attention heads" in html
    assert "Constrained belief update: verdicts" in html


def test_cbu_json_carries_the_null_the_assignment_and_the_verdicts(cbu_run):
    d = json.loads((cbu_run / "cbu.json").read_text())
    null = d["null_model"]
    assert null["n_splits"] == 5 and set(null["layers"]) == {"blocks.0.hook_resid_mid", "block_1"}
    for c in null["layers"].values():
        assert len(c["model_r2"]) == len(c["null_r2"]) == len(c["beliefs_r2"]) == 5
        assert all(r <= 1 + 1e-9 for r in c["model_r2"] + c["null_r2"] + c["beliefs_r2"])
        assert c["verdict"] in ("supported", "not supported")
        assert c["verdict"] == ("supported" if c["margin"] > c["spread"] else "not supported")
    # the null is the same on every layer (the same rows, the same splits)
    assert null["layers"]["blocks.0.hook_resid_mid"]["null_r2"] == null["layers"]["block_1"]["null_r2"]
    a = d["assignment"]
    assert a["method"] == "hungarian" and len(a["heads"]) == 2 and d["matched_heads"] == a["heads"]
    assert len(a["cost_matrix"]) == 2 and len(a["cost_matrix"][0]) == 3
    assert a["cost"] <= d["greedy_assignment"]["cost"] + 1e-12
    v = d["verdicts"]
    assert set(v) == {"constrained_belief", "decay_first_order", "decay_readout", "head_count"}
    assert all(x["verdict"] in ("supported", "not supported") for x in v.values())
    assert v["constrained_belief"]["verdict"] == null["layers"]["blocks.0.hook_resid_mid"]["verdict"]
    assert v["head_count"]["verdict"] == ("supported" if d["observed_head_count"] == 2 else "not supported")
    for h in d["heads"]:
        assert "nearest_gap" in h and "nearest_predicted_lambda" in h and "rate_se" in h
    assert len(v["decay_first_order"]["fitted_se"]) == 2
    head = json.loads((cbu_run / "summary.json").read_text())["studies"]["cbu"]
    assert head["verdict_constrained_belief"] == v["constrained_belief"]["verdict"]
    assert head["intermediate_r2_null"] == pytest.approx(np.mean(null["layers"]["blocks.0.hook_resid_mid"]["null_r2"]))


@pytest.mark.slow
def test_the_reproduce_table_reads_each_runs_cbu_json(cbu_run):
    from compmech.studies.cbu.reproduce import format_markdown, row

    r = row("tiny", cbu_run)
    assert r["predicted_head_count"] == 2 and len(r["heads"]) == 3
    text = format_markdown([r], quick=True)
    assert "| tiny | " in text
    assert f"| 2 / {r['observed_head_count']} (3) / {r['observed_rate_groups']} |" in text
    assert len(r["null"]) == 2 and set(r["verdicts"]) == {
        "constrained_belief",
        "decay_first_order",
        "decay_readout",
        "head_count",
    }
    assert "| tiny | blocks.0.hook_resid_mid | " in text and "| tiny | block_1 | " in text  # every R² beside its null


def test_bad_cbu_configs_are_config_errors(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    raw = load_config(tmp_path / "c.toml").to_dict()
    with pytest.raises(ConfigError, match=r"\[studies.cbu\] unknown key 'rate'"):
        config_from_dict({**raw, "studies": {"cbu": {"rate": 0.5}}})
    with pytest.raises(ConfigError, match="r2_min must be a number in"):
        config_from_dict({**raw, "studies": {"cbu": {"r2_min": 2}}})
    with pytest.raises(ConfigError, match="null_splits must be an integer >= 2"):
        config_from_dict({**raw, "studies": {"cbu": {"null_splits": 1}}})
    lstm = config_from_dict({**raw, "model": {"kind": "lstm", "context_length": 4}})
    with pytest.raises(ConfigError, match='needs \\[model\\] kind = "transformer"'):
        plan_run(lstm, tmp_path / "x")
    mix = config_from_dict(
        {**raw, "process": {"kind": "mixture", "components": [{"name": "mess3"}, {"name": "mess3"}]}}
    )
    with pytest.raises(ConfigError, match='one process or kind = "product"'):
        plan_run(mix, tmp_path / "y")
