"""The factored-geometry study: [studies.factored] on a product run writes factored.json, figures and report tables."""

import json

import numpy as np
import pytest

from compmech.runs.cli import main
from compmech.runs.config import ConfigError, config_from_dict, load_config
from compmech.runs.experiment import plan_run
from compmech.runs.studies.factored import belief_rank, predicted_dimensions

CONFIG = """
name = "tiny_factored"
seed = 2
[process]
kind = "product"
[[process.components]]
name = "mess3"
[[process.components]]
name = "mess3"
params = { x = 0.15, alpha = 0.6 }
[model]
context_length = 3
n_layers = 1
d_model = 24
n_heads = 2
d_head = 6
d_mlp = 48
[training]
steps = 300
batch_size = 32
learning_rate = 1e-2
warmup_steps = 20
steps_per_call = 50
eval_every = 100
checkpoint_every = 100
save_at_tokens = [4800]
[probe]
n_repeats = 2
[studies.factored]
n_repeats = 2
"""


@pytest.fixture(scope="module")
def factored_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    (root / "f.toml").write_text(CONFIG)
    assert main(["run", str(root / "f.toml"), "--out", str(root / "run"), "--no-progress"]) == 0
    return root / "run"


@pytest.mark.slow
def test_factored_json_has_the_documented_keys_and_sane_values(factored_run):
    d = json.loads((factored_run / "factored.json").read_text())
    assert {"dim_joint", "dim_factored", "components", "participation_ratio", "principal_angles", "layers",
            "over_training"} <= set(d)
    assert (d["dim_joint"], d["dim_factored"]) == (8, 4)  # two 3-state factors: 3 * 3 - 1 and 2 + 2
    assert set(d["components"]) == {"0.8", "0.9", "0.95", "0.99"}
    assert 1 <= d["components"]["0.8"] <= d["components"]["0.99"] <= 24
    assert 1.0 <= d["participation_ratio"] <= 24
    (angles,) = d["principal_angles"].values()
    assert len(angles) == 2 and all(0.0 <= a <= 90.0 for a in angles)
    factors = d["layers"][d["layer"]]["factors"]
    assert [f["process"] for f in factors] == ["mess3", "mess3"]
    for f in factors:  # even this tiny model carries both factors' beliefs, far above the shuffled control
        assert f["mse_heldout_contexts"] < 0.5 * f["mse_shuffled"]
        assert f["untrained"]["mse_heldout_contexts"] is not None
    assert [e["tokens_requested"] for e in d["over_training"]] == [4800]
    # the true joint beliefs of an independent product need the joint dimension, not the factored one
    assert d["true_joint_beliefs"]["components"]["0.99"] > d["dim_factored"]
    summary = json.loads((factored_run / "summary.json").read_text())
    head = summary["studies"]["factored"]
    assert head["json"] == "factored.json" and head["dim_joint"] == 8
    assert "figures/factored_variance.png" in summary["figures"]
    for name in ("factored_variance", "factor_0_beliefs", "factor_1_beliefs"):
        assert (factored_run / "figures" / f"{name}.png").stat().st_size > 0
    html = (factored_run / "report.html").read_text()
    assert "Factored geometry: per-factor probes" in html and "Cumulative explained variance" in html


def test_predicted_dimensions_and_belief_rank():
    assert predicted_dimensions([3, 3, 3]) == (26, 6)
    assert predicted_dimensions([3, 2]) == (5, 3)
    rng = np.random.default_rng(0)
    assert belief_rank(rng.dirichlet(np.ones(3), size=50)) == 3
    assert belief_rank(np.tile([0.2, 0.8, 0.0], (10, 1))) == 1


def test_bad_study_configs_are_config_errors(tmp_path):
    (tmp_path / "f.toml").write_text(CONFIG)
    raw = load_config(tmp_path / "f.toml").to_dict()
    with pytest.raises(ConfigError, match=r"\[studies.nope\] unknown study 'nope'; the studies are (.*, )?factored"):
        config_from_dict({**raw, "studies": {"nope": {}}})
    with pytest.raises(ConfigError, match=r"\[studies.factored\] unknown key 'layer'"):
        config_from_dict({**raw, "studies": {"factored": {"layer": "x"}}})
    with pytest.raises(ConfigError, match="weighting must be"):
        config_from_dict({**raw, "studies": {"factored": {"weighting": "both"}}})
    one = config_from_dict({**raw, "process": {"name": "mess3"}})
    with pytest.raises(ConfigError, match="needs a product process"):
        plan_run(one, tmp_path / "x")
    # a coupled product is a product for the study, and its coupling is written out
    coupled = config_from_dict({**raw, "process": {"kind": "coupled", "coupling": 0.2, "components": [
        {"name": "mess3"}, {"name": "mess3", "params": {"x": 0.15, "alpha": 0.6}}]}})
    assert plan_run(coupled, tmp_path / "y").process.params["epsilon"] == 0.2
    assert "coupling = 0.2" in coupled.to_toml()


@pytest.mark.slow
def test_the_reproduce_table_reads_each_runs_factored_json(factored_run):
    from compmech.runs.factored_reproduce import format_markdown, row

    r = row("tiny", factored_run)
    d = json.loads((factored_run / "factored.json").read_text())
    assert r["components"] == d["components"] and (r["dim_factored"], r["dim_joint"]) == (4, 8)
    assert len(r["factor_r2_heldout_contexts"]) == 2 and len(r["over_training"]) == 1
    text = format_markdown([r], quick=True)
    c = d["components"]
    assert f"| tiny | {r['relative_loss']:.4f} | {c['0.8']} / {c['0.9']} / {c['0.95']} / {c['0.99']} | 4 | 8 |" in text
