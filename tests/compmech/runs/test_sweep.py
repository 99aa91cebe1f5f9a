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

SWEEP = (
    BASE
    + """
[sweep]
grid = { "process.params.x" = [0.05, 0.15], "seed" = [0] }
quick = { "training.steps" = 100 }
"""
)


def test_the_grid_expands_to_checked_configs(tmp_path):
    (tmp_path / "s.toml").write_text(SWEEP)
    sweep = load_sweep(tmp_path / "s.toml")
    assert sweep.keys == ("process.params.x", "seed")
    assert [p.name for p in sweep.points] == ["tiny_sweep-x=0.05,seed=0", "tiny_sweep-x=0.15,seed=0"]
    assert [p.cfg.process.params["x"] for p in sweep.points] == [0.05, 0.15]
    assert {p.cfg.training["steps"] for p in sweep.points} == {400}
    assert {p.cfg.training["steps"] for p in load_sweep(tmp_path / "s.toml", quick=True).points} == {100}


@pytest.mark.parametrize(
    "text, match",
    [
        (BASE, "needs a \\[sweep\\] table"),
        (BASE + "[sweep]\ngrid = {}\n", "grid must map config keys to non-empty lists"),
        (BASE + "[sweep]\ngrid = { seed = [0] }\nfoo = 1\n", "unknown key \\[sweep\\] 'foo'"),
        (BASE + '[sweep]\ngrid = { "training.steps" = [0] }\n', "sweep point training.steps = 0"),
        (BASE + '[sweep]\ngrid = { "model.widht" = [3] }\n', "unknown key \\[model\\] 'widht'"),
    ],
)
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

    from compmech.runs.experiment import evaluation_set, plan_run
    from compmech.runs.sources import SourceData
    from predictive_models import train

    (tmp_path / "s.toml").write_text(BASE + '[sweep]\ngrid = { seed = [0, 1] }\nquick = { "training.steps" = 100 }\n')
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "s.toml"), "--quick", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "training 2 points that differ only in seed together" in err and "train together: 2 runs (seeds 0, 1)" in err
    assert err.count("train: compiling") == 1  # one group, one training (the points' pipelines find it done)
    point = load_sweep(tmp_path / "s.toml", quick=True).points[1]
    records = [json.loads(line) for line in (out / point.name / "metrics.jsonl").read_text().splitlines()]
    plan = plan_run(point.cfg, tmp_path / "alone")
    data, eval_set = SourceData(plan.source), evaluation_set(plan, progress=False)[0]
    alone = train(plan.model_cfg, plan.train_cfg, data, eval_set, progress=False)
    assert [r["step"] for r in records] == [r["step"] for r in alone.history] == [0, 50, 100]
    # Vmapped seeds sum in another order than a lone run, and Adam amplifies that rounding: the losses must agree
    # within SPREAD_FACTOR times the spread of the lone run trained again in micro-batches of 16 (only the order
    # of the sums changes; tests/conftest.py, rule 2), by position at every evaluation.
    reordered = train(
        plan.model_cfg, dataclasses.replace(plan.train_cfg, micro_batch=16), data, eval_set, progress=False
    )

    def by_position(history):  # [evaluations, T]
        return np.array([r["loss_by_position"] for r in history])

    spread = np.max(np.abs(by_position(reordered.history) - by_position(alone.history)))
    assert_within(by_position(records), by_position(alone.history), SPREAD_FACTOR * spread, "group losses")
    other = [
        json.loads(line)
        for line in (out / load_sweep(tmp_path / "s.toml", quick=True).points[0].name / "metrics.jsonl")
        .read_text()
        .splitlines()
    ]
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


# ---- issue 29: sweeps that can finish, and never tabulate a value they did not run


def _load(tmp_path, sweep_table: str, **kw):
    (tmp_path / "s.toml").write_text(BASE + sweep_table)
    return load_sweep(tmp_path / "s.toml", **kw)


def test_a_quick_override_never_replaces_a_grid_value(tmp_path):
    """It did: the table said x = 0.05 and 0.15 while both runs used quick's 0.1."""
    for quick in ('"process.params.x" = 0.1', '"process.params" = { x = 0.1 }'):
        with pytest.raises(ConfigError, match="quick sets .* which the grid sweeps .*process.params.x"):
            _load(
                tmp_path,
                f'[sweep]\ngrid = {{ "process.params.x" = [0.05, 0.15] }}\nquick = {{ {quick} }}\n',
                quick=True,
            )


@pytest.mark.parametrize(
    "grid, key, value",
    [
        ('"process.params.x" = [0.05, 0.05]', "process.params.x", "0.05"),
        ("seed = [3, 3]", "seed", "3"),
        ("seed = [1, 1.0]", "seed", "1.0"),
    ],
)
def test_a_repeated_grid_value_is_named_before_any_work(tmp_path, grid, key, value):
    with pytest.raises(ConfigError, match=f'grid "{key}" lists {value} twice'):
        _load(tmp_path, f"[sweep]\ngrid = {{ {grid} }}\n")


def test_point_names_are_unique_and_readable(tmp_path):
    sweep = _load(tmp_path, '[sweep]\ngrid = { "process.params.x" = [0.1, 0.1000001] }\n')
    assert [p.name for p in sweep.points] == ["tiny_sweep-x=0.1", "tiny_sweep-x=0.1000001"]
    from compmech.runs.sweep import point_names

    names = point_names("s", ("process.spec",), [("a b.toml",), ("a_b.toml",), ("c.toml",)])
    assert names == ["s-spec=a_b.toml-p1", "s-spec=a_b.toml-p2", "s-spec=c.toml"]
    long = point_names("s", ("k",), [("v" * 400,), ("v" * 399 + "w",)])
    assert len(set(long)) == 2 and all(len(n) <= 150 for n in long)


def test_a_huge_grid_is_counted_and_refused_before_it_is_expanded(tmp_path):
    import time

    values = str(list(range(60)))
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="12,960,000 points .* at most 10,000"):
        _load(tmp_path, f"[sweep]\ngrid = {{ a = {values}, b = {values}, c = {values}, d = {values} }}\n")
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    "metrics, match",
    [
        (str([f"m{i}" for i in range(3000)]).replace("'", '"'), "3000 paths; at most 24"),
        ('["prob.mse"]', "'prob' , which is not a summary.json field".replace(" ,", ",")),
        ('["probe..mse"]', "not a dotted path"),
        ('["relative_loss", "relative_loss"]', "lists 'relative_loss' twice"),
    ],
)
def test_metric_name_problems_are_said_before_any_run(tmp_path, metrics, match):
    """3000 metric names used to fail after every run with a dpi message."""
    with pytest.raises(ConfigError, match=match):
        _load(tmp_path, f"[sweep]\ngrid = {{ seed = [0] }}\nmetrics = {metrics}\n")


def test_a_metric_no_summary_holds_is_named_with_where_its_path_leaves_the_file():
    from compmech.runs.sweep import _metric_hint

    summary = {"probe": {"mse": 0.1, "r2": 0.9}, "relative_loss": 1.01}
    assert _metric_hint(summary, "probe.msee") == "probe has the keys mse, r2"
    assert _metric_hint(summary, "relative_loss.x") == "relative_loss is float, not a table"


@pytest.mark.parametrize(
    "table, match",
    [
        ('[launcher]\npartiton = "gpu"\n', "unknown key \\[launcher\\] 'partiton'"),
        ("[launcher]\ncpus_per_task = 0\n", "cpus_per_task must be a positive"),
        ('[launcher]\nsetup = "module load x"\n', "setup must be a list"),
    ],
)
def test_the_launcher_table_is_checked_like_any_config_table(tmp_path, table, match):
    (tmp_path / "s.toml").write_text(BASE + table + "[sweep]\ngrid = { seed = [0] }\n")
    with pytest.raises(ConfigError, match=match):
        load_sweep(tmp_path / "s.toml")


def test_shards_are_checked():
    from compmech.runs.sweep import parse_shard

    assert parse_shard("0/4") == (0, 4) and parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/4", "1", "a/b", "0/0"):
        with pytest.raises(ConfigError, match="write I/N"):
            parse_shard(bad)


def test_one_failing_point_does_not_stop_the_others(tmp_path, capsys):
    """It aborted the sweep without naming the point and without a table of the points that finished."""
    (tmp_path / "s.toml").write_text(
        BASE + '[sweep]\ngrid = { "training.learning_rate" = [1e9, 1e-2] }\nquick = { "training.steps" = 100 }\n'
    )
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "s.toml"), "--quick", "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    bad, good = "tiny_sweep-learning_rate=1000000000.0", "tiny_sweep-learning_rate=0.01"
    assert f"{bad} failed: training diverged at step" in err
    assert "1 of 2 points did not finish: " + bad in err.splitlines()[-1]
    rows = {r["point"]: r for r in json.loads((out / "sweep.json").read_text())["rows"]}
    assert rows[good]["status"] == "finished" and rows[good]["relative_loss"] > 1
    assert rows[bad]["status"].startswith("failed: training diverged") and rows[bad]["relative_loss"] is None
    assert "failed: training diverged" in (out / "sweep.md").read_text()
    assert (out / good / "complete.json").is_file()


def test_a_shipped_sweep_is_found_by_its_name(tmp_path, monkeypatch, capsys):
    """`compmech sweep sweep_mess3_seeds` runs the shipped sweep file (package data), as `compmech run mess3` does."""
    import compmech.runs.sweep as sweep_module

    seen = []
    monkeypatch.setattr(sweep_module, "run_sweep", lambda sweep, out, **kw: seen.append((sweep, out)) or [])
    assert main(["sweep", "sweep_mess3_seeds", "--quick", "--out", str(tmp_path / "s"), "--no-progress"]) == 0
    ((sweep, out),) = seen
    assert sweep.name == "sweep_mess3_seeds" and "seed" in sweep.keys and out == tmp_path / "s"
    capsys.readouterr()
    assert main(["sweep", "no_such_sweep", "--no-progress"]) != 0
    assert "no shipped config named 'no_such_sweep'" in capsys.readouterr().err
