"""`compmech run` with a recurrent model: [model] kind, [probe] layers, the summary and the report say which model."""

import json
from pathlib import Path

import pytest

from compmech.runs.cli import main
from compmech.runs.config import ConfigError, config_from_dict, load_config
from compmech.runs.experiment import plan_run
from compmech.runs.preflight import model_sizes
from predictive_models import KINDS, make_config, n_params

TINY = Path(__file__).parents[2] / "data" / "tiny_mess3.toml"
LSTM = {"kind": "lstm", "context_length": 6, "n_layers": 1, "d_hidden": 16}


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    raw = load_config(TINY).to_dict()
    cfg = config_from_dict(
        {
            **raw,
            "name": "tiny_lstm",
            "model": LSTM,
            "probe": {**raw["probe"], "layers": ["layers.0.hidden", "layers.0.cell"]},
        }
    )
    (root / "lstm.toml").write_text(cfg.to_toml())
    assert main(["run", str(root / "lstm.toml"), "--out", str(root / "lstm"), "--no-progress"]) == 0
    return root / "lstm"


@pytest.mark.slow
def test_an_lstm_run_probes_the_named_states(lstm_run):
    probe = json.loads((lstm_run / "probe.json").read_text())
    assert probe["probe_layer"] == "layers.0.hidden"
    assert set(probe["layers"]) == {"layers.0.hidden", "layers.0.cell", "concat"}
    best = probe["layers"]["layers.0.hidden"]
    assert best["mse_heldout_contexts"] < 0.3 * best["mse_shuffled"]
    summary = json.loads((lstm_run / "summary.json").read_text())
    assert summary["model"] == {
        "kind": "lstm",
        "n_params": n_params(make_config("lstm", 3, **{k: v for k, v in LSTM.items() if k != "kind"})),
    }
    assert summary["relative_loss"] < 1.05
    assert 'kind = "lstm"' in (lstm_run / "config.toml").read_text()
    html = (lstm_run / "report.html").read_text()
    assert "1-layer LSTM, hidden 16" in html
    # the paper's numbers are a transformer's: not set beside a recurrent model's
    assert summary["paper"] == {} and "the paper trained transformers; this run trained an LSTM" in html


def test_model_kind_and_probe_layers_are_checked(tmp_path):
    raw = load_config(TINY).to_dict()
    with pytest.raises(ConfigError, match="kind must be one of 'transformer', 'rnn', 'gru', 'lstm'"):
        config_from_dict({**raw, "model": {"kind": "mamba"}})
    with pytest.raises(ConfigError, match=r"unknown key \[model\] 'd_model'.*d_hidden"):
        config_from_dict({**raw, "model": {"kind": "gru", "d_model": 16}})
    cfg = config_from_dict({**raw, "model": LSTM, "probe": {"layers": ["layers.3.hidden"]}})
    with pytest.raises(ConfigError, match="'layers.3.hidden' is not a probe-able activation.*layers.0.cell"):
        plan_run(cfg, tmp_path / "x")
    cfg = config_from_dict({**raw, "probe": {"layers": ["blocks.0.attn.hook_pattern"]}})
    with pytest.raises(ConfigError, match="not a probe-able activation"):
        plan_run(cfg, tmp_path / "y")
    with pytest.raises(ConfigError, match="distinct activation names"):
        config_from_dict({**raw, "probe": {"layers": ["block_1", "block_1"]}})


VARIANTS = [
    {},
    {"attn_only": True},
    {"layer_norm": False},
    {"positional": "none"},
    {"attn_only": True, "layer_norm": False, "positional": "none"},
]


@pytest.mark.parametrize("kind, variant", [(k, {}) for k in KINDS] + [("transformer", v) for v in VARIANTS[1:]])
def test_the_memory_estimate_counts_each_kinds_parameters(kind, variant):
    fields = {"context_length": 8, "n_layers": 2, **variant}
    fields.update(
        {"d_model": 32, "n_heads": 2, "d_head": 8, "d_mlp": 64}
        if kind == "transformer"
        else {"d_hidden": 24, "d_embed": 5}
    )
    cfg = make_config(kind, 7, **fields)
    assert model_sizes({"kind": kind, **fields}, 7).n_params == n_params(cfg)
