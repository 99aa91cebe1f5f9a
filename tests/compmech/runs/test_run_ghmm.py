"""End to end: `compmech run` on a generalized HMM (tom_quantum, exact regime) writes a complete run directory
whose probe targets are the GHMM's quasi-probability beliefs (eta @ tau = 1)."""

import json
from pathlib import Path

import numpy as np
import pytest

from compmech.runs.cli import main
from compmech.runs.run_dir import load_run

TINY = str(Path(__file__).parents[2] / "data" / "tiny_tom_quantum.toml")


@pytest.fixture(scope="module")
def ghmm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny_tq"
    assert main(["run", TINY, "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.mark.slow
def test_ghmm_run_directory_is_complete(ghmm_run):
    for name in [
        "config.toml",
        "metrics.jsonl",
        "probe.json",
        "summary.json",
        "analysis.json",
        "report.html",
        "process.json",
        "complete.json",
        "figures/belief_fractal.png",
        "figures/belief_evolution.png",
        "figures/loss_by_position.png",
        "figures/distance_geometry.png",
    ]:
        assert (ghmm_run / name).is_file() and (ghmm_run / name).stat().st_size > 0, name
    assert json.loads((ghmm_run / "process.json").read_text())["kind"] == "GeneralizedHMM"


@pytest.mark.slow
def test_ghmm_probe_targets_are_quasi_beliefs(ghmm_run):
    run = load_run(ghmm_run)
    tau = run.process.normalizer
    ctx = run.contexts
    assert ctx.tokens.shape == (4**5, 5)
    np.testing.assert_allclose(ctx.beliefs @ tau, 1.0, atol=1e-10)
    assert ctx.beliefs.min() < -0.1  # Bloch coordinates take both signs: not probability vectors
    assert ctx.probs.sum() == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(ctx.next_token_probs.sum(-1), 1.0, atol=1e-10)
    fit = run.fit_probe()
    np.testing.assert_allclose(fit.data.Y @ tau, 1.0, atol=1e-6)
    probe = json.loads((ghmm_run / "probe.json").read_text())
    best = probe["layers"][probe["probe_layer"]]
    assert best["mse"] < best["mse_shuffled"]
    summary = json.loads((ghmm_run / "summary.json").read_text())
    assert summary["relative_loss"] < 1.05
