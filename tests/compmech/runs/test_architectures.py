"""The architecture-independence study: a tiny study file end to end through `run_study` and the CLI hook,
reuse of finished runs, the shipped study file's parameter matching, and bad study files."""

import json
from pathlib import Path

import numpy as np
import pytest

from compmech.runs.architectures import (STUDY_FILE, ArchitectureRow, architecture_rows, load_study,
                                         run_study)
from compmech.runs.config import ConfigError
from compmech.runs.processes import build_process
from predictive_models import n_params

TINY_STUDY = '''
name = "tiny_architectures"
seed = 1
kinds = ["transformer", "gru"]

[models.transformer]
n_layers = 1
d_model = 16
n_heads = 2
d_head = 4
d_mlp = 32

[models.gru]
n_layers = 1
d_hidden = 16

[training]
batch_size = 32
learning_rate = 1e-2
warmup_steps = 10
eval_every = 50
checkpoint_every = 50

[probe]
n_repeats = 1

[processes.mess3]
process = { name = "mess3", params = { x = 0.05, alpha = 0.85 } }
context_length = 4
training = { steps = 100 }
quick = { steps = 50 }
'''

ROW_KEYS = {"process", "kind", "n_params", "relative_loss", "layer", "mse_heldout_contexts",
            "r2_heldout_contexts", "mse_shuffled", "mse_untrained"}


def write_study(tmp_path: Path, text: str = TINY_STUDY, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("architectures")
    study = load_study(write_study(root))
    out = root / "out"
    rows = run_study(study, out, progress=False)
    return study, out, rows


@pytest.mark.slow
def test_a_tiny_study_writes_the_table_the_json_and_the_figure(tiny_study):
    study, out, rows = tiny_study
    assert [r.name for r in study.runs] == ["mess3-transformer", "mess3-gru"]
    for run in study.runs:  # ordinary run directories
        assert (out / run.name / "complete.json").is_file()
        assert 'name = "mess3"' in (out / run.name / "config.toml").read_text()
    table = json.loads((out / "architectures.json").read_text())
    assert table == [r.to_json() for r in rows]
    assert len(table) == 4  # two rows per run: the best single layer and concat
    for row in table:
        assert ROW_KEYS <= set(row)
    assert [(r["kind"], r["choice"]) for r in table] == [
        ("transformer", "best single layer"), ("transformer", "concat"), ("gru", "best single layer"), ("gru", "concat")]
    probe = json.loads((out / "mess3-transformer" / "probe.json").read_text())
    single = {n: v for n, v in probe["layers"].items() if n != "concat"}
    best = min(single, key=lambda n: single[n]["mse_heldout_contexts"])
    assert table[0]["layer"] == best
    assert table[0]["mse_heldout_contexts"] == single[best]["mse_heldout_contexts"]
    assert table[0]["mse_untrained"] == probe["untrained_by_layer"][best]["mse_heldout_contexts"]
    assert table[1]["layer"] == "concat" and table[1]["mse_untrained"] is None
    summary = json.loads((out / "mess3-gru" / "summary.json").read_text())
    assert table[2]["n_params"] == summary["model"]["n_params"] and table[2]["relative_loss"] == summary["relative_loss"]
    assert summary["command"] == "compmech reproduce --only architectures"

    md = (out / "architectures.md").read_text()
    assert "| mess3 | transformer | " in md and "| mess3 | gru | " in md
    assert "chosen by that same number" in md
    assert "- **mess3**: transformer " in md and " of 2 find it." in md
    png = (out / "architectures.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    with np.load(out / "geometry" / "mess3-gru.npz") as z:
        true, probed = z["true"], z["probed"]
    assert true.shape == probed.shape and true.shape[1] == 3
    assert np.allclose(true.sum(axis=1), 1.0)  # exact beliefs of the distinct contexts
    # the refitted figure probe is the run's in-sample fit: its MSE over the distinct contexts is small
    # against the spread of the beliefs (the shuffled control)
    assert np.mean((probed - true) ** 2) < 0.5 * summary["probe"]["mse_shuffled"]


@pytest.mark.slow
def test_a_second_call_reuses_the_finished_runs(tiny_study, monkeypatch):
    study, out, rows = tiny_study
    import compmech.runs.architectures as architectures
    import compmech.runs.experiment as experiment

    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **k: pytest.fail("a finished run was rerun"))
    monkeypatch.setattr(architectures, "figure_geometry", lambda *a, **k: pytest.fail("a cached figure was refitted"))
    again = run_study(study, out, progress=False)
    assert [r.to_json() for r in again] == [r.to_json() for r in rows]


def test_quick_applies_each_processs_quick_budget(tmp_path):
    path = write_study(tmp_path)
    full, quick = load_study(path), load_study(path, quick=True)
    assert [r.config.training["steps"] for r in full.runs] == [100, 100]
    assert [r.config.training["steps"] for r in quick.runs] == [50, 50]
    assert quick.quick and not full.quick
    assert quick.runs[1].config.model == {"kind": "gru", "context_length": 4, "n_layers": 1, "d_hidden": 16,
                                          "d_embed": None}


@pytest.mark.slow
def test_the_cli_hook_runs_the_study_into_out(tiny_study, tmp_path, monkeypatch, capsys):
    import shutil

    import compmech.runs.architectures as architectures
    import compmech.runs.experiment as experiment
    from compmech.runs.cli import main

    study, out, rows = tiny_study
    shutil.copytree(out, tmp_path / "out")
    (tmp_path / "out" / "architectures.json").unlink()
    monkeypatch.setattr(architectures, "STUDY_FILE", Path(study.source))
    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **k: pytest.fail("a finished run was rerun"))
    assert main(["reproduce", "--only", "architectures", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "out" / "architectures.json").read_text()) == [
        {**r.to_json(), "run_dir": str(tmp_path / "out" / Path(r.run_dir).name)} for r in rows]
    assert not (tmp_path / "out" / "reproduce.md").exists()  # the paper's experiments did not run
    printed = capsys.readouterr().out
    assert "| mess3 | gru |" in printed and "architectures.md" in printed
    # under --quick the same study is a different (shorter) set of runs: they would train anew
    monkeypatch.setattr(experiment, "run_experiment", lambda cfg, *a, **k: pytest.fail(f"trains {cfg.training['steps']}"))
    with pytest.raises(BaseException, match="trains 50"):
        main(["reproduce", "--only", "architectures", "--quick", "--out", str(tmp_path / "out"), "--no-progress"])


def test_reproduce_help_names_the_study(capsys):
    from compmech.runs.cli import main

    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    assert "architectures" in capsys.readouterr().out


def test_the_shipped_study_matches_parameter_counts_and_context_lengths():
    study = load_study(STUDY_FILE)
    assert study.kinds == ("transformer", "lstm", "gru", "rnn")
    assert set(study.processes) >= {"mess3", "rrxor", "tom_quantum"} and {"fanizza", "post_quantum"} & set(study.processes)
    for process in study.processes:
        runs = [r for r in study.runs if r.process == process]
        counts = {}
        for r in runs:
            hmm = build_process(r.config.process)
            counts[r.kind] = n_params(r.config.model_config(hmm.vocab_size))
            assert 8 <= r.config.model["context_length"] <= 10
        for kind, count in counts.items():  # within 10% of the transformer's count
            assert abs(count / counts["transformer"] - 1) <= 0.10, (process, kind, count)
    mess3 = next(r for r in study.runs if r.name == "mess3-transformer").config
    assert mess3.process.params == {"x": 0.05, "alpha": 0.85} and mess3.model["d_model"] == 64
    quick = load_study(STUDY_FILE, quick=True)
    assert all(q.config.training["steps"] < f.config.training["steps"] for q, f in zip(quick.runs, study.runs))


def test_rows_pick_the_layer_with_the_lowest_held_out_error():
    from compmech.runs.architectures import StudyRun

    run = StudyRun(process="p", kind="gru", config=None)
    layer = {"mse": 0.1, "mse_shuffled": 1.0, "r2_heldout_contexts": 0.5}
    probe = {"layers": {"layers.0.hidden": {**layer, "mse_heldout_contexts": 0.3},
                        "layers.1.hidden": {**layer, "mse": 0.2, "mse_heldout_contexts": 0.05},
                        "concat": {**layer, "mse": 0.01, "mse_heldout_contexts": 0.2}},
             "untrained_by_layer": {"layers.0.hidden": {"mse_heldout_contexts": 0.9},
                                    "layers.1.hidden": {"mse_heldout_contexts": 0.8}}}
    summary = {"model": {"n_params": 10}, "relative_loss": 1.01, "steps": 5, "tokens": 50, "wall_seconds": 1.0}
    best, concat = architecture_rows(run, summary, probe, Path("x"))
    assert isinstance(best, ArchitectureRow)
    assert (best.layer, best.mse_heldout_contexts, best.mse_untrained, best.found) == ("layers.1.hidden", 0.05, 0.8, True)
    assert (concat.layer, concat.heldout_over_shuffled, concat.found, concat.mse_untrained) == ("concat", 0.2, False, None)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace('kinds = ["transformer", "gru"]', 'kinds = ["transformer", "mamba"]'),
     r"kinds: 'mamba' is not a model kind; choose from transformer, rnn, gru, lstm"),
    (lambda s: s.replace('kinds = ["transformer", "gru"]', 'kinds = []'), "kinds must be a non-empty list"),
    (lambda s: s.replace('kinds = ["transformer", "gru"]', 'kinds = ["transformer", "gru", "lstm"]'),
     r"no \[models.lstm\] table"),
    (lambda s: s.replace("[models.gru]\n", "[models.gru]\nkind = \"lstm\"\n"), r"\[models.gru\] kind is set by the study"),
    (lambda s: s.replace("name = \"tiny_architectures\"", "nmae = \"x\""), r"unknown key 'nmae'; allowed: name, seed"),
    (lambda s: s.replace("context_length = 4\n", ""), r"\[processes.mess3\]: missing context_length"),
    (lambda s: s.replace("quick = { steps = 50 }\n", ""), r"\[processes.mess3\]: missing quick"),
    (lambda s: s.replace("quick = {", "quik = {"), r"\[processes.mess3\]: unknown key 'quik'"),
    (lambda s: s.replace("training = { steps = 100 }", "training = { steps = -1 }"),
     r"\[processes.mess3, kind transformer\].*steps"),
    (lambda s: s.replace("d_hidden = 16", "d_model = 16"), r"\[processes.mess3, kind gru\].*'d_model'.*d_hidden"),
    (lambda s: s + "training_by_kind = { rnn = { learning_rate = 1e-2 } }\n",
     r"training_by_kind: 'rnn' is not one of the study's kinds"),
    (lambda s: s.split("[processes.mess3]")[0], r"processes must be a table"),
    (lambda s: s + "[processes.bad]\n", r"\[processes.bad\]: missing process"),
    (lambda s: s.replace("[models.gru]", "[models.gru\n"), r"study"),
])
def test_a_bad_study_file_is_one_clear_error(tmp_path, edit, message):
    path = write_study(tmp_path, edit(TINY_STUDY))
    with pytest.raises(ConfigError, match=message):
        load_study(path)


def test_every_run_is_checked_before_the_first_trains(tmp_path):
    from compmech.runs.config import ConfigError as Error
    from hmm_processes import ProcessError

    text = TINY_STUDY + ('[processes.later]\nprocess = { name = "mess4" }\ncontext_length = 4\n'
                         'quick = { steps = 50 }\n')
    study = load_study(write_study(tmp_path, text))
    with pytest.raises((Error, ProcessError), match="mess4"):
        run_study(study, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_missing_study_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="study file .* does not exist"):
        load_study(tmp_path / "nope.toml")
