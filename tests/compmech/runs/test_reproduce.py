"""`compmech reproduce`: every paper number beside ours, in one table."""

import json
from pathlib import Path

import pytest

from compmech.runs.paper import PAPER_RESULTS
from compmech.runs.reproduce import comparison_rows, format_markdown, reproduce
from compmech.runs.summary import ProcessName, RunSummary

TINY = Path(__file__).parents[2] / "data" / "tiny_mess3.toml"


@pytest.mark.slow
def test_reproduce_writes_the_comparison_table_and_reuses_finished_runs(tmp_path, monkeypatch):
    rows = reproduce(tmp_path, experiments={"mess3": TINY}, progress=False)
    table = (tmp_path / "reproduce.md").read_text()
    record = json.loads((tmp_path / "reproduce.json").read_text())
    assert record["rows"] == json.loads(json.dumps(rows))
    quantities = [r["quantity"] for r in rows]
    assert quantities[0] == "relative loss (CE / optimum)"
    assert "probe MSE (block_2)" in quantities and "shuffled-control MSE (block_2)" in quantities
    first = rows[0]
    assert first["paper"] == PAPER_RESULTS["mess3"]["relative_loss"]
    assert first["ratio"] == pytest.approx(first["ours"] / first["paper"])
    assert "| mess3 | relative loss (CE / optimum) | 1.0002 |" in table
    # Paper points on the over-training curve that this short run never reached stay empty.
    late = [r for r in rows if r["quantity"] == "probe MSE after 3.2e+06 tokens"][0]
    assert late["paper"] == 0.0025 and late["ours"] is None and late["ratio"] is None
    assert (tmp_path / "mess3" / "summary.json").exists()
    assert (tmp_path / "mess3" / "complete.json").exists()

    import compmech.runs.experiment as experiment

    real_run = experiment.run_experiment
    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **k: pytest.fail("a finished run was rerun"))
    assert reproduce(tmp_path, experiments={"mess3": TINY}, progress=False) == rows
    # Without its completion mark (e.g. killed before report.html), the run is finished again, not reused.
    (tmp_path / "mess3" / "complete.json").unlink()
    calls = []
    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **k: calls.append(1) or real_run(*a, **k))
    assert reproduce(tmp_path, experiments={"mess3": TINY}, progress=False) == rows
    assert calls == [1] and (tmp_path / "mess3" / "complete.json").exists()


def test_rows_for_a_process_without_paper_numbers():
    summary = RunSummary(
        name="z1r",
        process=ProcessName("z1r"),
        steps=1,
        tokens=1,
        relative_loss=1.01,
        probe_layer="block_4",
        analysis_layer="block_4",
        geometry={"distance_r2_beliefs": 0.9, "distance_r2_next_token": 0.5},
    )
    probe = {"layers": {"block_4": {"mse": 0.01, "mse_heldout": 0.011, "mse_shuffled": 0.1}}}
    rows = comparison_rows("z1r", summary, probe)
    assert all(r["paper"] is None and r["ratio"] is None for r in rows)
    assert {r["quantity"] for r in rows} >= {"relative loss (CE / optimum)", "distance R^2 vs beliefs"}
    table = format_markdown(rows, "# t")
    assert "| z1r | probe MSE (block_4) | – | 0.01 | – |" in table
    assert "| z1r | held-out MSE on unseen contexts (block_4) | – | – | – |" in table  # absent: shown as –


def test_rows_lead_with_the_held_out_error_on_unseen_contexts():
    summary = RunSummary(
        name="mess3",
        process=ProcessName("mess3"),
        steps=1,
        tokens=1,
        relative_loss=1.0002,
        probe_layer="block_4",
        analysis_layer="block_4",
    )
    probe = {
        "layers": {
            "block_4": {"mse": 0.00046, "mse_heldout": 0.00046, "mse_heldout_contexts": 0.00061, "mse_shuffled": 0.11}
        }
    }
    quantities = [r["quantity"] for r in comparison_rows("mess3", summary, probe)]
    first = quantities.index("held-out MSE on unseen contexts (block_4)")
    assert (
        first
        < quantities.index("probe MSE (block_4)")
        < quantities.index("held-out probe MSE, paper's string split (block_4)")
    )


def test_unknown_experiment_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown experiment 'mess4'"):
        reproduce(tmp_path, only=["mess4"], progress=False)
