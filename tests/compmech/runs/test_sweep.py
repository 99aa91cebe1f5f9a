"""`compmech sweep`: a grid over config keys, one run per point, the table, figure and page; finished points reused."""

import dataclasses
import json

import pytest
from tolerances import SPREAD_FACTOR, assert_within

from compmech.runs.cli import main
from compmech.runs.config import ConfigError
from compmech.runs.sweep import load_sweep, metric

BASE = """
name = "tiny_sweep"
seed = 0
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
steps = 400
batch_size = 32
learning_rate = 1e-2
warmup_steps = 10
steps_per_call = 50
eval_every = 50
checkpoint_every = 50
[probe]
n_repeats = 2
include_concat = false
"""

SWEEP = BASE + """
[sweep]
grid = { "process.params.x" = [0.05, 0.15], "seed" = [0] }
quick = { "training.steps" = 100 }
"""


def test_the_grid_expands_to_checked_configs(tmp_path):
    (tmp_path / "s.toml").write_text(SWEEP)
    sweep = load_sweep(tmp_path / "s.toml")
    assert sweep.keys == ("process.params.x", "seed")
    assert [p.name for p in sweep.points] == ["tiny_sweep-x=0.05,seed=0", "tiny_sweep-x=0.15,seed=0"]
    assert [p.cfg.process.params["x"] for p in sweep.points] == [0.05, 0.15]
    assert {p.cfg.training["steps"] for p in sweep.points} == {400}
    assert {p.cfg.training["steps"] for p in load_sweep(tmp_path / "s.toml", quick=True).points} == {100}


@pytest.mark.parametrize("text, match", [
    (BASE, "needs a \\[sweep\\] table"),
    (BASE + "[sweep]\ngrid = {}\n", "grid must map config keys to non-empty lists"),
    (BASE + "[sweep]\ngrid = { seed = [0] }\nfoo = 1\n", "unknown key \\[sweep\\] 'foo'"),
    (BASE + "[sweep]\ngrid = { \"training.steps\" = [0] }\n", "sweep point training.steps = 0"),
    (BASE + "[sweep]\ngrid = { \"model.widht\" = [3] }\n", "unknown key \\[model\\] 'widht'"),
])
def test_bad_sweep_files_are_one_config_error(tmp_path, text, match):
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_sweep(tmp_path / "s.toml")


def test_metric_paths_may_hold_keys_with_dots():
    summary = {"probe": {"mse": 0.1}, "studies": {"factored": {"components": {"0.95": 5}}}}
    assert metric(summary, "probe.mse") == 0.1
    assert metric(summary, "studies.factored.components.0.95") == 5
    assert metric(summary, "probe.nothing") is None and metric(summary, "probe.mse.deeper") is None


@pytest.mark.slow
def test_a_sweep_runs_every_point_writes_its_table_and_reuses_finished_points(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(SWEEP)
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "s.toml"), "--quick", "--out", str(out), "--no-progress"]) == 0
    table = json.loads((out / "sweep.json").read_text())
    assert table["keys"] == ["process.params.x", "seed"] and len(table["rows"]) == 2
    for row in table["rows"]:
        assert (out / row["run_dir"] / "complete.json").is_file()
        assert row["relative_loss"] > 1.0 and row["probe.mse_heldout_contexts"] < row["probe.mse_shuffled"]
    for name in ("sweep.md", "sweep.csv", "sweep.png", "sweep.html"):
        assert (out / name).stat().st_size > 0
    page = (out / "sweep.html").read_text()
    assert 'href="tiny_sweep-x=0.05,seed=0/report.html"' in page
    assert (out / "sweep.csv").read_text().splitlines()[0].startswith("point,process.params.x,seed,relative_loss")
    before = (out / "tiny_sweep-x=0.05,seed=0" / "summary.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["sweep", str(tmp_path / "s.toml"), "--quick", "--out", str(out)]) == 0
    assert "finished already" in capsys.readouterr().err
    assert (out / "tiny_sweep-x=0.05,seed=0" / "summary.json").stat().st_mtime_ns == before


def test_compmech_run_on_a_sweep_file_says_to_use_compmech_sweep(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(SWEEP)
    assert main(["run", str(tmp_path / "s.toml")]) == 2
    assert "run it with compmech sweep" in capsys.readouterr().err


@pytest.mark.slow
def test_points_that_differ_only_in_seed_train_together_as_each_would_alone(tmp_path, capsys):
    import numpy as np

    from compmech.runs.experiment import evaluation_set, make_data_fn, plan_run
    from predictive_models import train

    (tmp_path / "s.toml").write_text(BASE + "[sweep]\ngrid = { seed = [0, 1] }\nquick = { \"training.steps\" = 100 }\n")
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "s.toml"), "--quick", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "training 2 points that differ only in seed together" in err and "train together: 2 runs (seeds 0, 1)" in err
    assert err.count("train: compiling") == 1  # one group, one training (the points' pipelines find it done)
    point = load_sweep(tmp_path / "s.toml", quick=True).points[1]
    records = [json.loads(line) for line in (out / point.name / "metrics.jsonl").read_text().splitlines()]
    plan = plan_run(point.cfg, tmp_path / "alone")
    data, eval_set = make_data_fn(plan.process), evaluation_set(plan, progress=False)[0]
    alone = train(plan.model_cfg, plan.train_cfg, data, eval_set, progress=False)
    assert [r["step"] for r in records] == [r["step"] for r in alone.history] == [0, 50, 100]
    # Vmapped seeds sum in another order than a lone run, and Adam amplifies that rounding: the losses must agree
    # within SPREAD_FACTOR times the spread of the lone run trained again in micro-batches of 16 (only the order
    # of the sums changes; tests/conftest.py, rule 2), by position at every evaluation.
    reordered = train(plan.model_cfg, dataclasses.replace(plan.train_cfg, micro_batch=16), data, eval_set,
                      progress=False)

    def by_position(history):  # [evaluations, T]
        return np.array([r["loss_by_position"] for r in history])

    spread = np.max(np.abs(by_position(reordered.history) - by_position(alone.history)))
    assert_within(by_position(records), by_position(alone.history), SPREAD_FACTOR * spread, "group losses")
    other = [json.loads(line) for line in (out / load_sweep(tmp_path / "s.toml", quick=True).points[0].name
                                            / "metrics.jsonl").read_text().splitlines()]
    assert np.max(np.abs(by_position(other) - by_position(alone.history))) > 10 * SPREAD_FACTOR * spread  # seed 0
    assert (out / point.name / "complete.json").is_file()
    # the point's pipeline found its training done; its summary and report still say how long the group took
    summary = json.loads((out / point.name / "summary.json").read_text())
    assert summary["train_elapsed_seconds"] == records[-1]["elapsed_s"] > summary["train_wall_seconds"] + 1
    assert "the training itself took" in (out / point.name / "report.html").read_text()


def test_table_cells_keep_the_digits_that_matter_near_one():
    from compmech.runs.sweep import _cell

    assert _cell(1.00081234) == "1.00081" and _cell(1.00004) == "1.00004"  # ".4g" said 1.001 and 1
    assert _cell(0.0006866123) == "0.0006866" and _cell(0.11114) == "0.1111" and _cell(float("nan")) == "–"
    assert _cell(None) == "–" and _cell(3) == "3"
