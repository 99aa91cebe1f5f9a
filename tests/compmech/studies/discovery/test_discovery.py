"""The discovery study: [studies.discovery] on tiny runs writes discovery.json, figures, report tables and headline
numbers, all finite and in range; its settings refuse bad values naming the field."""

import json

import numpy as np
import pytest

from compmech.runs.config import ConfigError, config_from_dict
from compmech.runs.summary import read_summary
from compmech.studies.discovery.analysis import Settings
from compmech.studies.discovery.reproduce import format_markdown, row

MESS3 = """
name = "tiny_discovery"
seed = 1
[process]
name = "mess3"
[model]
context_length = 4
n_layers = 1
d_model = 16
n_heads = 2
d_head = 4
d_mlp = 32
[training]
steps = 300
batch_size = 32
learning_rate = 1e-2
warmup_steps = 20
eval_every = 100
checkpoint_every = 300
[probe]
n_repeats = 2
[studies.discovery]
n_repeats = 2
sae_steps = 200
sae_latents = 24
"""

PRODUCT = """
name = "tiny_discovery_product"
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
eval_every = 100
checkpoint_every = 300
[probe]
n_repeats = 2
[studies.discovery]
n_repeats = 2
sae_steps = 200
method = "archetypes"
"""


@pytest.fixture(scope="module")
def mess3_run(study_run):
    return study_run(MESS3, "mess3")


def finite_in(v, lo, hi):
    return v is not None and np.isfinite(v) and lo <= v <= hi


def test_discovery_json_figures_report_and_headline(mess3_run):
    d = json.loads((mess3_run / "discovery.json").read_text())
    assert d["n_states"] == 3 and d["layer"] and d["n_contexts"] > 10
    assert [f["label"] for f in d["fits"]] == ["trained", "trained, told the dimension", "untrained"]
    for f in d["fits"]:
        assert f["n_vertices"] == f["k"] + 1 and f["n_states"] == 3
        assert 0 < f["kept_variance"] <= 1 + 1e-9
        assert finite_in(f["r2_heldout_contexts"], -1.0, 1.0)
        assert finite_in(f["r2_shuffled_heldout_contexts"], -1.0, 1.0)
        assert 0.0 <= f["outside_fraction"] <= 1.0
    told = d["fits"][1]
    assert told["k"] == told["belief_dimension"] == 2 and told["direct_r2"] is not None
    assert finite_in(told["vertex_error"], 0.0, 100.0)
    cum = np.asarray(d["cumulative"])
    assert np.all(np.diff(cum) >= -1e-12) and abs(cum[-1] - 1) < 1e-9
    sae = d["sae"]
    assert sae["n_latents"] == 24 and 0 <= sae["live"] <= 24 and finite_in(sae["fraction_variance_unexplained"], 0, 2)
    assert sae["factors"] == ["mess3"] and len(sae["factors_recovered"]) == 1
    for c in sae["clusters"]:
        assert c["span_dim"] >= 1 and all(v is None or finite_in(v, -1.0, 1.0) for v in c["r2_by_factor"])
    assert (mess3_run / "figures" / "discovery_simplex.png").stat().st_size > 10_000
    s = read_summary(mess3_run)
    head = s.studies["discovery"]
    assert head["n_states"] == 3 and head["n_vertices"] == d["fits"][0]["n_vertices"]
    assert "Discovery: the simplex fitted" in (mess3_run / "report.html").read_text()
    md = format_markdown([row("tiny", mess3_run)], quick=True)
    assert "| tiny |" in md and "vertices found" in md


@pytest.mark.slow
def test_a_product_run_scores_every_cluster_against_every_factor(study_run):
    run_dir = study_run(PRODUCT, "product")
    d = json.loads((run_dir / "discovery.json").read_text())
    assert d["n_states"] == 9 and d["method"] == "archetypes"
    sae = d["sae"]
    assert sae["factors"] == ["0: mess3", "1: mess3"] and sae["factor_states"] == [3, 3]
    assert sae["n_clusters"] == len(sae["clusters"]) >= 1
    for c in sae["clusters"]:
        assert len(c["r2_by_factor"]) == 2
    assert (run_dir / "figures" / "discovery_clusters.png").is_file()


def test_settings_refuse_bad_values_naming_the_field():
    assert Settings().method == "mves" and Settings().variance_threshold == 0.95
    for bad, field in (
        ({"method": "nmf"}, "method"),
        ({"variance_threshold": 1.5}, "variance_threshold"),
        ({"sae_kind": "gated"}, "sae_kind"),
        ({"max_contexts": 0}, "max_contexts"),
        ({"sae_latents": 2, "sae_k": 4}, "sae_k"),
    ):
        with pytest.raises(ValueError, match=field):
            Settings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="discovery"):
        config_from_dict({"process": {"name": "mess3"}, "studies": {"discovery": {"method": "x"}}})
