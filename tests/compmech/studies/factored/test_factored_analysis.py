"""The factored-geometry study: [studies.factored] on a product run writes factored.json, figures and report tables."""

import json

import numpy as np
import pytest

from compmech.runs.config import ConfigError, config_from_dict, load_config
from compmech.runs.experiment import plan_run
from compmech.studies.factored.analysis import (
    VERDICTS,
    belief_rank,
    belief_spectra,
    count_comparison,
    predicted_dimensions,
)
from probes.dimension import THRESHOLDS

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
def factored_run(study_run):
    return study_run(CONFIG)


@pytest.mark.slow
def test_factored_json_has_the_documented_keys_and_sane_values(factored_run):
    d = json.loads((factored_run / "factored.json").read_text())
    assert {
        "dim_joint",
        "dim_factored",
        "components",
        "participation_ratio",
        "principal_angles",
        "layers",
        "over_training",
    } <= set(d)
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
    # like with like: at every threshold the activations' count beside the true beliefs' counts, same rows and weights
    factor_counts, joint_counts = d["true_factor_beliefs"]["components"], d["true_joint_beliefs"]["components"]
    assert all(factor_counts[q] <= d["dim_factored"] and joint_counts[q] <= d["dim_joint"] for q in factor_counts)
    assert factor_counts["0.99"] < joint_counts["0.99"]
    assert [
        (c["threshold"], c["activations"], c["factor_beliefs"], c["joint_beliefs"])
        for c in d["components_like_with_like"]
    ] == [(q, d["components"][q], factor_counts[q], joint_counts[q]) for q in ("0.8", "0.9", "0.95", "0.99")]
    assert all(c["verdict"] in VERDICTS for c in d["components_like_with_like"])
    assert d["exceeds_both"] == [
        c["threshold"]
        for c in d["components_like_with_like"]
        if c["activations"] > max(c["factor_beliefs"], c["joint_beliefs"])
    ]
    summary = json.loads((factored_run / "summary.json").read_text())
    head = summary["studies"]["factored"]
    assert head["json"] == "factored.json" and head["dim_joint"] == 8
    assert "figures/factored_variance.png" in summary["figures"]
    for name in ("factored_variance", "factor_0_beliefs", "factor_1_beliefs"):
        assert (factored_run / "figures" / f"{name}.png").stat().st_size > 0
    html = (factored_run / "report.html").read_text()
    assert "Factored geometry: per-factor probes" in html and "Cumulative explained variance" in html
    assert "like with like" in html and summary["studies"]["factored"]["true_factor_components"] == factor_counts


def test_predicted_dimensions_and_belief_rank():
    assert predicted_dimensions([3, 3, 3]) == (26, 6)
    assert predicted_dimensions([3, 2]) == (5, 3)
    rng = np.random.default_rng(0)
    assert belief_rank(rng.dirichlet(np.ones(3), size=50)) == 3
    assert belief_rank(np.tile([0.2, 0.8, 0.0], (10, 1))) == 1


def test_the_three_counts_on_a_planted_product():
    """Two independent 3-state factors: their beliefs side by side span 4 dimensions, the joint beliefs (their
    products) 8. Activations that hold the factors' beliefs in orthogonal directions (an isometry of the side-by-side
    beliefs) need exactly the factor beliefs' counts; activations that hold the joint belief plus a little
    isotropic noise need more than the joint beliefs' count at 99%: they exceed both."""
    rng = np.random.default_rng(0)
    n = 3000
    f1, f2 = rng.dirichlet([0.6, 0.6, 0.6], size=n), rng.dirichlet([1.0, 1.0, 1.0], size=n)  # [n, 3] each
    joint = (f1[:, :, None] * f2[:, None, :]).reshape(n, 9)  # [n, 9] the product's belief
    w = rng.uniform(0.5, 1.5, n)
    w /= w.sum()
    joint_spec, factor_spec = belief_spectra(joint, (f1, f2), w, THRESHOLDS)
    assert factor_spec["components"]["0.99"] <= 4 < joint_spec["components"]["0.99"] <= 8
    Q = np.linalg.qr(rng.standard_normal((32, 32)))[0]  # orthonormal
    factored_acts = np.concatenate([f1, f2], axis=1) @ Q[:6]  # [n, 32]: an isometry of the side-by-side beliefs
    scale = np.sqrt(joint_spec["explained"][0] * np.var(joint, axis=0).sum() * 0.02)  # each noise direction ~2%
    noisy_joint = np.concatenate([joint, scale * rng.standard_normal((n, 6))], axis=1) @ Q[:15]  # [n, 32]
    for acts, expected in ((factored_acts, factor_spec["components"]), (noisy_joint, None)):
        spec, _ = belief_spectra(acts, (f1, f2), w, THRESHOLDS)
        counts = count_comparison(spec["components"], factor_spec["components"], joint_spec["components"])
        assert [c.threshold for c in counts] == ["0.8", "0.9", "0.95", "0.99"]
        if expected is not None:
            assert {c.threshold: c.activations for c in counts} == expected
            assert all(c.verdict == "at most both" for c in counts)
        else:
            assert counts[-1].activations > joint_spec["components"]["0.99"] and counts[-1].verdict == "exceeds both"


def test_count_comparison_on_the_issues_numbers():
    """Issue 23's counts for experiments/factored.toml: activations 4/6/8/11, the factor beliefs 4/4/5/6, the joint
    beliefs 13/18/22/26: above the factored counts from 90% on, never above both."""
    qs = ("0.8", "0.9", "0.95", "0.99")
    counts = count_comparison(
        dict(zip(qs, (4, 6, 8, 11))), dict(zip(qs, (4, 4, 5, 6))), dict(zip(qs, (13, 18, 22, 26)))
    )
    assert [c.verdict for c in counts] == ["at most both", "between", "between", "between"]
    assert count_comparison({"0.9": 9}, {"0.9": 4}, {"0.9": 8})[0].verdict == "exceeds both"


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
    coupled = config_from_dict(
        {
            **raw,
            "process": {
                "kind": "coupled",
                "coupling": 0.2,
                "components": [{"name": "mess3"}, {"name": "mess3", "params": {"x": 0.15, "alpha": 0.6}}],
            },
        }
    )
    assert plan_run(coupled, tmp_path / "y").source.process.params["epsilon"] == 0.2
    assert "coupling = 0.2" in coupled.to_toml()


@pytest.mark.slow
def test_the_reproduce_table_reads_each_runs_factored_json(factored_run):
    from compmech.studies.factored.reproduce import format_markdown, row

    r = row("tiny", factored_run)
    d = json.loads((factored_run / "factored.json").read_text())
    assert r["components"] == d["components"] and (r["dim_factored"], r["dim_joint"]) == (4, 8)
    assert len(r["factor_r2_heldout_contexts"]) == 2 and len(r["over_training"]) == 1
    text = format_markdown([r], quick=True)
    c, f, j = d["components"], d["true_factor_beliefs"]["components"], d["true_joint_beliefs"]["components"]
    assert r["true_factor_components"] == f and r["exceeds_both"] == d["exceeds_both"]
    three = " | ".join(f"{x['0.8']} / {x['0.9']} / {x['0.95']} / {x['0.99']}" for x in (c, f, j))
    assert f"| tiny | {r['relative_loss']:.4f} | {three} | " in text and " | 4 | 8 | " in text


CHAIN_CONFIG = (
    CONFIG.replace('name = "tiny_factored"', 'name = "tiny_chain3"')
    .replace(
        """[process]
kind = "product"
[[process.components]]
name = "mess3"
[[process.components]]
name = "mess3"
params = { x = 0.15, alpha = 0.6 }
""",
        """[process]
kind = "factored"
structure = "chain"
control_maps = [[], [0, 1, 1], [1, 0]]
[[process.components]]
name = "mess3"
[[process.components]]
name = "sns"
params = { p = 0.5, q = 0.5 }
variants = [{ p = 0.1, q = 0.9 }]
[[process.components]]
name = "sns"
params = { p = 0.3, q = 0.7 }
variants = [{ p = 0.8, q = 0.2 }]
""",
    )
    .replace("save_at_tokens = [4800]", "save_at_tokens = [960, 4800]")
)


@pytest.fixture(scope="module")
def chain_run(study_run):
    return study_run(CHAIN_CONFIG)


@pytest.mark.slow
def test_a_factored_chain_run_has_the_overlaps_their_null_and_the_over_training_figure(chain_run):
    d = json.loads((chain_run / "factored.json").read_text())
    assert [f["process"] for f in d["factors"]] == ["mess3", "sns", "sns"]
    ranks = [f["belief_rank"] for f in d["factors"]]
    assert (d["dim_factored"], d["dim_joint"]) == (sum(r - 1 for r in ranks), int(np.prod(ranks)) - 1)
    assert 1 <= d["joint_belief_dim"] <= d["dim_joint"]
    assert set(d["subspace_overlap"]) == set(d["overlap_null"]) == {"0-1", "0-2", "1-2"}
    for pair, v in d["subspace_overlap"].items():
        null = d["overlap_null"][pair]
        assert 0.0 <= v <= 1.0 and 0.0 <= d["subspace_overlap_untrained"][pair] <= 1.0
        assert null["dim"] == 24 and 0 < null["mean"] < null["q95"] < 1
    assert [e["tokens_requested"] for e in d["over_training"]] == [960, 4800]
    assert all(set(e["subspace_overlap"]) == {"0-1", "0-2", "1-2"} for e in d["over_training"])
    assert d["final_tokens"] == 300 * 32 * 3
    assert (chain_run / "figures" / "factored_over_training.png").stat().st_size > 0
    head = json.loads((chain_run / "summary.json").read_text())["studies"]["factored"]
    assert head["max_subspace_overlap"] == max(d["subspace_overlap"].values())

    from compmech.studies.factored.reproduce import coupled_row, format_coupled_markdown

    r = coupled_row("tiny chain", chain_run)
    assert [e["tokens"] for e in r["over_training"]][-1] == d["final_tokens"] and len(r["over_training"]) == 3
    text = format_coupled_markdown([r], quick=True)
    assert f"| tiny chain | {r['relative_loss']:.4f} | {ranks} | {d['dim_factored']} | {d['dim_joint']} |" in text
    assert all(f"| tiny chain | {pair} | {d['subspace_overlap'][pair]:.3f} (" in text for pair in ("0-1", "0-2", "1-2"))


def test_the_over_training_figure_draws_from_arrays():
    from compmech.studies.factored.plots import plot_dimension_over_training

    fig = plot_dimension_over_training(
        [1e3, 1e4, 1e5],
        np.array([2, 5, 7]),
        np.array([1.5, 3.0, 4.2]),
        share="0.95",
        dim_factored=4,
        dim_joint=11,
        joint_belief_dim=9,
        truth_counts=(4, 8),
        overlaps={"0-1": np.array([0.3, 0.2, 0.1])},
        nulls={"0-1": (0.05, 0.12)},
        untrained=(12.0, {"0-1": 0.04}),
        title="planted",
    )
    left, right = fig.axes
    assert [round(line.get_ydata()[0], 3) for line in left.lines[2:4]] == [4, 11]
    assert list(right.lines[0].get_ydata()) == [0.3, 0.2, 0.1]
