"""End to end: `compmech run` on a tiny mixture config (Mess3 at two settings, one per sequence)."""

import json

import numpy as np
import pytest

import hmm_processes as hp
from compmech.information import optimal_loss_by_position
from compmech.runs.cli import main
from compmech.runs.run_dir import load_run

# the run itself: the session fixture `mixture_run` (tests/compmech/runs/conftest.py)
pytestmark = pytest.mark.slow  # every test reads that end-to-end run: `make test-all`


def _library_mixture():
    return hp.mixture([hp.mess3(0.05, 0.85), hp.mess3(0.15, 0.6)], [0.5, 0.5])


def test_the_runs_optimal_loss_is_the_mixtures_learning_curve(mixture_run):
    last = [json.loads(line) for line in (mixture_run / "metrics.jsonl").read_text().splitlines()][-1]
    optimum = np.array(last["optimal_loss_by_position"])  # [T] nats
    np.testing.assert_allclose(optimum, optimal_loss_by_position(_library_mixture(), 5), rtol=1e-12)
    assert np.all(np.diff(optimum) < 0)  # the posterior over the two components sharpens
    assert 1.0 <= last["relative_loss"] < 1.1


def test_the_run_records_the_composed_process(mixture_run):
    summary = json.loads((mixture_run / "summary.json").read_text())
    assert summary["process"]["name"] == "mixture(mess3, mess3)"
    assert summary["process"]["params"] == {
        "components": [{"name": "mess3", "x": 0.05, "alpha": 0.85}, {"name": "mess3", "x": 0.15, "alpha": 0.6}],
        "weights": [0.5, 0.5],
        "component_states": [3, 3],
    }
    record = json.loads((mixture_run / "process.json").read_text())
    assert record["composition"] == "mixture" and record["kind"] == "HMM"
    np.testing.assert_array_equal(np.array(record["T"]), _library_mixture().T)
    probe = summary["probe"]
    assert probe["mse"] < 0.5 * probe["mse_shuffled"]  # a 6-state belief, probed
    assert "mixture: 0.5 mess3 (x = 0.05, alpha = 0.85) + 0.5 mess3" in (mixture_run / "report.html").read_text()


def test_load_run_and_a_rerun_rebuild_the_same_mixture(mixture_run):
    run = load_run(mixture_run)
    np.testing.assert_array_equal(run.process.T, _library_mixture().T)
    np.testing.assert_array_equal(run.process.prior, _library_mixture().prior)
    assert run.config.process.kind == "mixture" and len(run.config.process.components) == 2
    # Its own resolved config, into its own directory, is the same (finished) run.
    assert main(["run", str(mixture_run / "config.toml"), "--out", str(mixture_run), "--no-progress"]) == 0
