"""Experiment configs: defaults resolved, unknown keys and bad values rejected in one line."""

import tomllib
from pathlib import Path

import numpy as np
import pytest

from compmech.runs.config import DEFAULT_CONFIG, ConfigError, config_from_dict, load_config


def test_default_config_is_the_paper_setup():
    cfg = load_config(DEFAULT_CONFIG)
    assert cfg.process.name == "mess3" and cfg.process.params == {"x": 0.05, "alpha": 0.85}
    m = cfg.model_config(vocab_size=3)
    assert (m.n_layers, m.d_model, m.n_heads, m.d_head, m.d_mlp, m.context_length) == (4, 64, 1, 8, 256, 10)
    assert cfg.probe.rows == "all_strings" and cfg.probe.weighting == "uniform"


def test_resolved_config_round_trips_through_toml(tmp_path):
    cfg = load_config(DEFAULT_CONFIG, {"training.steps": 123, "seed": 7})
    text = cfg.to_toml()
    path = tmp_path / "c.toml"
    path.write_text(text)
    again = load_config(path)
    assert again.to_dict() == cfg.to_dict()
    assert again.training["steps"] == 123 and again.seed == 7
    assert tomllib.loads(text)["model"]["d_model"] == 64  # every default written out


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"process": {"name": "mess3"}, "trainin": {}}, "unknown top-level key 'trainin'"),
        ({"process": {"name": "mess3"}, "training": {"stepz": 5}}, r"unknown key \[training\] 'stepz'"),
        ({"process": {"name": "mess3"}, "training": {"steps": "many"}}, r"\[training\] steps must be int"),
        ({"process": {"name": "mess3"}, "training": {"learning_rate": True}}, "learning_rate must be a number"),
        ({"process": {"name": "mess3"}, "model": {"d_model": 0}}, r"\[model\].*d_model"),
        ({"process": {"name": "mess3"}, "probe": {"rows": "some"}}, "rows must be"),
        ({"process": {}}, "exactly one of name"),
        ({"model": {}}, r"missing \[process\]"),
        ({"process": {"name": "mess3"}, "seed": -1}, "seed must be"),
    ],
)
def test_bad_configs_raise_one_line_errors(raw, message):
    with pytest.raises(ConfigError, match=message) as info:
        config_from_dict(raw, source="x.toml")
    assert "\n" not in str(info.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_a_config_can_name_a_spec_file_relative_to_itself(tmp_path):
    from compmech.runs.processes import build_process
    from hmm_processes import ProcessError, golden_mean

    spec_src = Path(__file__).parents[3] / "compmech" / "experiments" / "processes" / "golden_mean.toml"
    (tmp_path / "procs").mkdir()
    (tmp_path / "procs" / "gm.toml").write_text(spec_src.read_text())
    cfg_path = tmp_path / "exp.toml"
    cfg_path.write_text('[process]\nspec = "procs/gm.toml"\n')
    cfg = load_config(cfg_path)
    hmm = build_process(cfg.process, base_dir=cfg_path.parent)
    np.testing.assert_allclose(hmm.T, golden_mean(0.5).T)
    with pytest.raises(ProcessError, match="params cannot be combined with spec"):
        build_process(load_config(cfg_path, {"process.params": {"p": 0.3}}).process, base_dir=tmp_path)
