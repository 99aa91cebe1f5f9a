"""End to end: `compmech run` on a tiny config writes a complete, reproducible run directory."""

import json
from pathlib import Path

import numpy as np
import pytest

from compmech.runs.cli import main

TINY = str(Path(__file__).parents[2] / "data" / "tiny_mess3.toml")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["run", TINY, "--out", str(out), "--no-progress"]) == 0
    return out


def test_run_directory_is_complete(tiny_run):
    for name in [
        "config.toml",
        "metrics.jsonl",
        "probe.json",
        "summary.json",
        "checkpoints/final.msgpack",
        "figures/belief_fractal.png",
        "figures/loss_by_position.png",
        "figures/training_curve.png",
        "figures/probe_layers.png",
        "figures/distance_geometry.png",
        "figures/belief_evolution.png",
        "figures/probe_over_training.png",
        "analysis.json",
        "report.html",
        "checkpoints/tokens_9600.msgpack",
        "checkpoints/tokens_28800.msgpack",
        "process.json",
        "complete.json",
    ]:
        assert (tiny_run / name).is_file(), name
        assert (tiny_run / name).stat().st_size > 0, name
    assert not list(tiny_run.rglob("*.tmp")), "no temporary files left behind"


def test_probe_json_schema_and_controls(tiny_run):
    probe = json.loads((tiny_run / "probe.json").read_text())
    assert probe["probe_layer"] == "block_2"
    assert set(probe["layers"]) == {"embedding", "block_1", "block_2", "final_ln", "concat"}
    for res in probe["layers"].values():
        assert {"mse", "r2", "mse_heldout", "mse_shuffled"} <= set(res)
    best = probe["layers"]["block_2"]
    # Even a 300-step model carries most of the belief geometry; the shuffled control carries none.
    assert best["mse"] < 0.3 * best["mse_shuffled"]
    assert best["mse_shuffled"] == pytest.approx(0.11, abs=0.02)
    assert best["mse_heldout"] < 1.5 * best["mse"]
    assert probe["n_rows"] == 3**6 * 6
    # the untrained-model control: the same probe, rows and splits on the model at initialisation
    untrained = probe["untrained"]
    assert untrained["layer"] == "block_2" and untrained["n_rows"] == best["n_rows"]
    assert best["mse_heldout_contexts"] < 0.5 * untrained["mse_heldout_contexts"]


def test_metrics_and_summary(tiny_run):
    lines = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [0, 100, 200, 300]
    for m in lines:
        assert {"step", "tokens", "loss", "optimal_loss", "relative_loss", "loss_by_position"} <= set(m)
        assert len(m["loss_by_position"]) == 6
    assert lines[-1]["loss"] < lines[0]["loss"]
    assert lines[-1]["relative_loss"] == pytest.approx(lines[-1]["loss"] / lines[-1]["optimal_loss"])
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["relative_loss"] == lines[-1]["relative_loss"]
    assert summary["probe"] == json.loads((tiny_run / "probe.json").read_text())["layers"]["block_2"]
    assert summary["wall_seconds"] > 0


@pytest.mark.slow
def test_same_config_and_seed_reproduce_the_numbers(tiny_run, tmp_path):
    again = tmp_path / "again"
    assert main(["run", TINY, "--out", str(again), "--no-progress"]) == 0
    assert (again / "metrics.jsonl").read_text().splitlines()[-1].split('"elapsed_s"')[0] == (
        tiny_run / "metrics.jsonl"
    ).read_text().splitlines()[-1].split('"elapsed_s"')[0]
    a = json.loads((tiny_run / "probe.json").read_text())
    b = json.loads((again / "probe.json").read_text())
    assert a == b


def test_rerun_with_other_config_into_same_directory_is_refused(tiny_run, capsys):
    assert main(["run", TINY, "--out", str(tiny_run), "--seed", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "different config" in err and "seed" in err and "\n" not in err
    assert (tiny_run / "summary.json").exists() and (tiny_run / "complete.json").exists(), (
        "the finished run is left untouched"
    )


def test_bad_config_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[process]\nname = "mess3"\n[training]\nsteps = 10\nlr = 0.1\n')
    assert main(["run", str(bad), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("compmech: error:") and "lr" in err and "\n" not in err
    assert not (tmp_path / "r").exists()
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[process]\nname = "mess9"\n')
    assert main(["run", str(unknown), "--out", str(tmp_path / "r2")]) == 2
    assert "unknown process 'mess9'" in capsys.readouterr().err


def test_geometry_and_training_evolution(tiny_run):
    analysis = json.loads((tiny_run / "analysis.json").read_text())
    assert analysis["layer"] == "block_2"
    geo = analysis["geometry"]
    # Mess3's emission matrix is symmetric circulant: on the simplex it scales every difference of
    # beliefs by one eigenvalue, so next-token distances are belief distances up to scale.
    assert geo["distance_r2_next_token"] == pytest.approx(geo["distance_r2_beliefs"], abs=1e-9)
    assert 0.5 < geo["distance_r2_beliefs"] <= 1.0
    assert geo["n_contexts"] == sum(3**k for k in range(1, 7))
    evo = analysis["evolution"]
    assert [e["tokens"] for e in evo] == [9600, 28800, 57600]
    assert evo[-1]["mse"] == json.loads((tiny_run / "probe.json").read_text())["layers"]["block_2"]["mse"]
    assert evo[0]["mse"] > evo[-1]["mse"], "the probe improves as the model trains"
    for e in evo:
        assert e["mse"] < e["mse_shuffled"]


def test_phases_are_timed_and_the_completion_mark_is_last(tiny_run):
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert list(summary["phase_seconds"]) == ["context set", "train", "probe", "geometry", "evolution", "figures"]
    assert all(s >= 0 for s in summary["phase_seconds"].values())
    assert summary["phase_seconds"]["train"] <= summary["wall_seconds"]
    mark = json.loads((tiny_run / "complete.json").read_text())
    assert mark["complete"] is True and "report" in mark["phase_seconds"]
    assert (tiny_run / "complete.json").stat().st_mtime_ns >= (tiny_run / "report.html").stat().st_mtime_ns


def test_process_json_holds_the_matrices(tiny_run):
    from hmm_processes import mess3

    record = json.loads((tiny_run / "process.json").read_text())
    assert set(record) == {
        "name",
        "params",
        "token_names",
        "state_names",
        "T",
        "kind",
        "spec_file",
        "composition",
        "spec_files",
    }
    assert record["name"] == "mess3" and record["params"] == {"x": 0.05, "alpha": 0.85}
    assert record["kind"] == "HMM" and record["spec_file"] is None
    assert record["composition"] is None and record["spec_files"] == []
    np.testing.assert_array_equal(np.array(record["T"]), mess3(x=0.05, alpha=0.85).T)


def test_load_run_gives_config_model_history_activations_and_the_same_probe(tiny_run, tmp_path):
    import shutil

    import compmech

    run = compmech.load_run(tiny_run)
    assert run.config.name == "tiny_mess3" and run.process.name == "mess3"
    assert [r["step"] for r in run.history] == [0, 100, 200, 300]
    assert run.layer_names == ["embedding", "block_1", "block_2", "final_ln"]
    acts = run.activations(np.array([[0, 1, 2], [2, 2, 2]]), ["block_2"])
    assert list(acts) == ["block_2"] and acts["block_2"].shape == (2, 3, 16)
    fit = run.fit_probe()  # the paper's layer, with the run's own settings and seed
    assert fit.layer == "block_2" and fit.predictions.shape == (3**6 * 6, 3)
    probe = json.loads((tiny_run / "probe.json").read_text())["layers"]["block_2"]
    assert fit.result.to_dict()["mse"] == pytest.approx(probe["mse"], rel=1e-9)
    assert fit.result.to_dict()["mse_heldout"] == pytest.approx(probe["mse_heldout"], rel=1e-9)
    with pytest.raises(compmech.RunDirError, match="no activation 'block_7'"):
        run.activations(np.zeros((1, 6), np.int64), "block_7")
    # An unfinished run (no completion mark) is named as such, with the command that finishes it.
    shutil.copytree(tiny_run, tmp_path / "cut")
    (tmp_path / "cut" / "complete.json").unlink()
    with pytest.raises(compmech.RunDirError, match="unfinished run.*compmech run"):
        compmech.load_run(tmp_path / "cut")
