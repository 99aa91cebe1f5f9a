"""The architecture-independence study: a tiny study file end to end through `run_study` and the CLI hook,
reuse of finished runs, the shipped study file's parameter matching, and bad study files."""

import json
from pathlib import Path

import numpy as np
import pytest

from compmech.runs import shipped
from compmech.runs.config import ConfigError, config_from_dict
from compmech.runs.heldout_scores import LayerScores
from compmech.runs.processes import build_process
from compmech.runs.reproduce import ReproduceRunner
from compmech.runs.summary import ModelSize, ProcessName, RunSummary
from compmech.studies.architectures import study_file
from compmech.studies.architectures.comparison import run_study
from compmech.studies.architectures.table import FOUND_FRACTION, ArchitectureRow, architecture_rows, pick_layer
from predictive_models import n_params
from probes import probe_layers

STUDY_FILE = shipped.config_path("architectures")
QUIET = ReproduceRunner("architectures", progress=False)


def load_study(path, quick=False):
    return study_file.load_study(path, config_from_dict, quick=quick)


TINY_STUDY = """
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
"""

ROW_KEYS = {
    "process",
    "kind",
    "n_params",
    "relative_loss",
    "layer",
    "mse_validation_contexts",
    "mse_test_contexts",
    "r2_test_contexts",
    "mse_shuffled_test_contexts",
    "mse_heldout_contexts",
    "r2_heldout_contexts",
    "mse_shuffled_heldout_contexts",
    "mse_untrained",
    "mse_shuffled_in_sample",
}
PICKED = "single layer picked on validation"


def write_study(tmp_path: Path, text: str = TINY_STUDY, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("architectures")
    study = load_study(write_study(root))
    out = root / "out"
    rows = run_study(study, out, QUIET)
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
        ("transformer", PICKED),
        ("transformer", "concat"),
        ("gru", PICKED),
        ("gru", "concat"),
    ]
    probe = json.loads((out / "mess3-transformer" / "probe.json").read_text())
    scores = json.loads((out / "scores" / "mess3-transformer.json").read_text())["layers"]
    assert set(scores) == set(probe["layers"])
    for name, s in scores.items():  # the refit is the runner's own fit: probe.json's numbers, bit for bit
        assert {k: s[k] for k in ("mse", "mse_shuffled", "mse_heldout_contexts", "r2_heldout_contexts")} == {
            k: probe["layers"][name][k] for k in ("mse", "mse_shuffled", "mse_heldout_contexts", "r2_heldout_contexts")
        }
    single = {n: v for n, v in scores.items() if n != "concat"}
    picked = min(single, key=lambda n: single[n]["mse_validation_contexts"])
    assert table[0]["layer"] == picked
    assert table[0]["mse_test_contexts"] == single[picked]["mse_test_contexts"]
    assert (
        table[0]["test_over_shuffled"]
        == single[picked]["mse_test_contexts"] / single[picked]["mse_shuffled_test_contexts"]
    )
    assert table[0]["mse_untrained"] == probe["untrained_by_layer"][picked]["mse_heldout_contexts"]
    assert table[0]["untrained_over_shuffled"] == (
        probe["untrained_by_layer"][picked]["mse_heldout_contexts"] / single[picked]["mse_shuffled_heldout_contexts"]
    )
    assert table[1]["layer"] == "concat" and table[1]["mse_untrained"] is None
    summary = json.loads((out / "mess3-gru" / "summary.json").read_text())
    assert (
        table[2]["n_params"] == summary["model"]["n_params"] and table[2]["relative_loss"] == summary["relative_loss"]
    )
    assert summary["command"] == "compmech reproduce --only architectures"

    md = (out / "architectures.md").read_text()
    assert "| mess3 | transformer | " in md and "| mess3 | gru | " in md
    assert "picked by its validation MSE" in md and "the fit and the pick never saw" in md
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
def test_a_tiny_study_compares_the_geometry_of_its_architectures(tiny_study):
    """The similarity section: one pair (transformer, gru) and its controls, each row recomputed here from the runs'
    own activations (the picked layer, trained and at initialisation, on every distinct context)."""
    from compmech.studies.architectures import similarity
    from probes import compare_representations

    study, out, rows = tiny_study
    table = json.loads((out / "architectures_similarity.json").read_text())
    assert [(r["comparison"], r["a"], r["b"]) for r in table] == [
        (similarity.ARCHITECTURES, "transformer", "gru"),
        (similarity.UNTRAINED, "transformer", "gru"),
        *[
            (c, k, b)
            for k in ("transformer", "gru")
            for c, b in (
                (similarity.VS_BELIEFS, similarity.BELIEFS),
                (similarity.UNTRAINED_VS_BELIEFS, similarity.BELIEFS),
                (similarity.VS_INITIALISATION, k),
            )
        ],
    ]
    picked = {r.kind: r.layer for r in rows if r.choice == PICKED}
    reps = {
        run.kind: similarity.run_representations(out / run.name, run.config, picked[run.kind], 10_000, seed=1)
        for run in study.runs
    }
    t, g = reps["transformer"], reps["gru"]
    assert t.beliefs.shape[0] == table[0]["n_rows"] == 3 + 9 + 27 + 81  # every distinct prefix of mess3, context 4
    s = compare_representations(t.trained, g.trained, n_permutations=similarity.N_PERMUTATIONS, seed=1)
    assert table[0]["cka"] == pytest.approx(s.cka, abs=1e-12)
    assert table[0]["procrustes"] == pytest.approx(s.procrustes, abs=1e-9)
    assert table[0]["cka_null_q95"] == pytest.approx(s.nulls["cka"].q95, abs=1e-12)
    assert table[0]["layer_a"] == picked["transformer"] and table[0]["layer_b"] == picked["gru"]
    u = compare_representations(t.untrained, g.untrained)
    assert table[1]["cka"] == pytest.approx(u.cka, abs=1e-12)
    assert not np.array_equal(t.trained, t.untrained)  # the initialisation is a different model
    md = (out / "architectures.md").read_text()
    assert "## Do the architectures land on the same geometry?" in md and "- **mess3**: trained pairs CKA" in md
    png = (out / "architectures_similarity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_a_second_call_reuses_the_finished_runs(tiny_study, monkeypatch):
    study, out, rows = tiny_study
    import compmech.runs.experiment as experiment
    import compmech.runs.heldout_scores as scores
    import compmech.studies.architectures.figure as figure
    import compmech.studies.architectures.similarity as similarity

    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **k: pytest.fail("a finished run was rerun"))
    monkeypatch.setattr(figure, "figure_geometry", lambda *a, **k: pytest.fail("a cached figure was refitted"))
    monkeypatch.setattr(scores, "score_run", lambda *a, **k: pytest.fail("cached scores were refitted"))
    monkeypatch.setattr(
        similarity, "run_representations", lambda *a, **k: pytest.fail("cached similarity rows were recomputed")
    )
    again = run_study(study, out, QUIET)
    assert [r.to_json() for r in again] == [r.to_json() for r in rows]


def test_quick_applies_each_processs_quick_budget(tmp_path):
    path = write_study(tmp_path)
    full, quick = load_study(path), load_study(path, quick=True)
    assert [r.config.training["steps"] for r in full.runs] == [100, 100]
    assert [r.config.training["steps"] for r in quick.runs] == [50, 50]
    assert quick.quick and not full.quick
    assert quick.runs[1].config.model == {
        "kind": "gru",
        "context_length": 4,
        "n_layers": 1,
        "d_hidden": 16,
        "d_embed": None,
    }


@pytest.mark.slow
def test_the_cli_hook_runs_the_study_into_out(tiny_study, tmp_path, monkeypatch, capsys):
    import shutil

    import compmech.runs.experiment as experiment
    from compmech.runs.cli import main

    study, out, rows = tiny_study
    shutil.copytree(out, tmp_path / "out")
    (tmp_path / "out" / "architectures.json").unlink()
    configs = tmp_path / "configs"
    configs.mkdir()
    write_study(configs, Path(study.source).read_text(), name="architectures.toml")
    monkeypatch.setattr(shipped, "config_dir", lambda: configs)
    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **k: pytest.fail("a finished run was rerun"))
    assert main(["reproduce", "--only", "architectures", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "out" / "architectures.json").read_text()) == [
        {**r.to_json(), "run_dir": str(tmp_path / "out" / Path(r.run_dir).name)} for r in rows
    ]
    assert not (tmp_path / "out" / "reproduce.md").exists()  # the paper's experiments did not run
    printed = capsys.readouterr().out
    assert "| mess3 | gru |" in printed and "architectures.md" in printed
    # under --quick the same study is a different (shorter) set of runs: into the same --out they are refused
    # before any training (the run directories hold the full runs), naming the key that differs
    monkeypatch.setattr(
        experiment, "run_experiment", lambda cfg, *a, **k: pytest.fail(f"trains {cfg.training['steps']}")
    )
    quick = ["reproduce", "--only", "architectures", "--quick", "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(quick) != 0
    assert "holds a run with a different config (training.steps: 100 there, 50 here)" in capsys.readouterr().err


def test_reproduce_help_names_the_study(capsys):
    from compmech.runs.cli import main

    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    assert "architectures" in capsys.readouterr().out


def test_the_shipped_study_matches_parameter_counts_and_context_lengths():
    study = load_study(STUDY_FILE)
    assert study.kinds == ("transformer", "lstm", "gru", "rnn")
    assert set(study.processes) >= {"mess3", "rrxor", "tom_quantum"} and {"fanizza", "post_quantum"} & set(
        study.processes
    )
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


def layer_scores(**kw) -> LayerScores:
    base = dict(
        mse=0.01,
        mse_shuffled=0.3,
        mse_heldout_contexts=0.2,
        r2_heldout_contexts=0.5,
        mse_shuffled_heldout_contexts=1.0,
        mse_validation_contexts=0.2,
        mse_test_contexts=0.2,
        r2_test_contexts=0.5,
        mse_shuffled_test_contexts=1.0,
        note=None,
    )
    return LayerScores(**{**base, **kw})


def test_rows_pick_the_layer_on_validation_and_report_it_on_test_over_the_held_out_control():
    """layers.0 has the lowest held-out MSE over every held-out context (which holds the test half), layers.1 the
    lowest on the validation half: layers.1 is picked and its test number reported. The in-sample shuffled control
    (0.3) is lower than the held-out one (1.0) by what the fit memorises: over it, layers.1's test MSE 0.05 would be
    17% (not found); over the control held out on the same test contexts it is 5% (found)."""
    from compmech.studies.architectures.study_file import StudyRun

    run = StudyRun(process="p", kind="gru", config=None)
    scores = {
        "layers.0.hidden": layer_scores(
            mse_heldout_contexts=0.03, mse_validation_contexts=0.07, mse_test_contexts=0.01
        ),
        "layers.1.hidden": layer_scores(
            mse=0.2,
            mse_heldout_contexts=0.06,
            mse_validation_contexts=0.06,
            mse_test_contexts=0.05,
            mse_shuffled_heldout_contexts=0.9,
        ),
        "concat": layer_scores(mse_test_contexts=0.2),
    }
    probe = {
        "untrained_by_layer": {
            "layers.0.hidden": {"mse_heldout_contexts": 0.9},
            "layers.1.hidden": {"mse_heldout_contexts": 0.81},
        }
    }
    summary = RunSummary(
        name="p-gru",
        process=ProcessName("p"),
        model=ModelSize("gru", 10),
        relative_loss=1.01,
        steps=5,
        tokens=50,
        wall_seconds=1.0,
    )
    best, concat = architecture_rows(run, summary, probe, scores, Path("x"))
    assert isinstance(best, ArchitectureRow)
    assert (best.layer, best.mse_validation_contexts, best.mse_test_contexts) == ("layers.1.hidden", 0.06, 0.05)
    assert best.mse_test_contexts / best.mse_shuffled_in_sample > FOUND_FRACTION  # what today's table divided by
    assert (best.test_over_shuffled, best.found) == (0.05, True)
    assert best.mse_untrained == 0.81 and best.untrained_over_shuffled == pytest.approx(0.9)
    assert (concat.layer, concat.test_over_shuffled, concat.found, concat.mse_untrained) == ("concat", 0.2, False, None)
    # no validation number: the pick falls back to the in-sample MSE, never to a number on the test contexts
    assert (
        pick_layer(
            {
                "a": layer_scores(mse=0.2, mse_validation_contexts=None, mse_heldout_contexts=0.01),
                "b": layer_scores(mse=0.1, mse_validation_contexts=None, mse_heldout_contexts=0.5),
            }
        )
        == "b"
    )


def test_picking_and_reporting_on_the_same_contexts_is_optimistic_and_the_split_removes_it():
    """A planted layer set: K = 40 layers, each one feature x_k = y + e_k (y, e_k standard normal, independent),
    so every layer's best linear probe has the same error E = 1/2 (residual (y - e_k) / 2). 20,000 contexts, a fifth
    held out, halved: 2,000 validation and 2,000 test. The minimum over layers of each one's MSE on the held-out
    contexts (what the table reported before) is the minimum of 40 noisy estimates of E, below E by about
    sqrt(1 - rho) * 2.16 sd (rho = 1/4 the correlation of two layers' squared residuals, sd = E sqrt(2 / 4000) =
    0.011): ~0.021. The test-half MSE of the layer picked on the validation half is an unbiased estimate of its
    error, E up to the fit's excess E * 2 / 16,000. Over R = 30 independent draws the mean bias of the first is
    -0.021 with standard error sd / sqrt(R) ~ 0.002; the second's is 0 with standard error
    E sqrt(2 / 2000) / sqrt(R) = 0.0029. Bounds: 4 standard errors."""
    K, n, R, E = 40, 20_000, 30, 0.5
    same_split, split = [], []
    for r in range(R):
        rng = np.random.default_rng(100 + r)
        y = rng.standard_normal(n)
        acts = {f"layer_{k}": (y + rng.standard_normal(n))[:, None] for k in range(K)}
        evs = probe_layers(
            acts, y[:, None], np.arange(n), include_concat=False, n_repeats=1, seed=r, heldout_scores=True
        )
        scores = {name: LayerScores.of(ev) for name, ev in evs.items()}
        same_split.append(min(s.mse_heldout_contexts for s in scores.values()))
        split.append(scores[pick_layer(scores)].mse_test_contexts)
    assert np.mean(same_split) - E < -4 * E * np.sqrt(2 / 4000) / np.sqrt(R)
    assert abs(np.mean(split) - E) < 4 * E * np.sqrt(2 / 2000) / np.sqrt(R) + E * 2 / 16_000


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda s: s.replace('kinds = ["transformer", "gru"]', 'kinds = ["transformer", "mamba"]'),
            r"kinds: 'mamba' is not a model kind; choose from transformer, rnn, gru, lstm",
        ),
        (lambda s: s.replace('kinds = ["transformer", "gru"]', "kinds = []"), "kinds must be a non-empty list"),
        (
            lambda s: s.replace('kinds = ["transformer", "gru"]', 'kinds = ["transformer", "gru", "lstm"]'),
            r"no \[models.lstm\] table",
        ),
        (
            lambda s: s.replace("[models.gru]\n", '[models.gru]\nkind = "lstm"\n'),
            r"\[models.gru\] kind is set by the study",
        ),
        (lambda s: s.replace('name = "tiny_architectures"', 'nmae = "x"'), r"unknown key 'nmae'; allowed: name, seed"),
        (lambda s: s.replace("context_length = 4\n", ""), r"\[processes.mess3\]: missing context_length"),
        (lambda s: s.replace("quick = { steps = 50 }\n", ""), r"\[processes.mess3\]: missing quick"),
        (lambda s: s.replace("quick = {", "quik = {"), r"\[processes.mess3\]: unknown key 'quik'"),
        (
            lambda s: s.replace("training = { steps = 100 }", "training = { steps = -1 }"),
            r"\[processes.mess3, kind transformer\].*steps",
        ),
        (lambda s: s.replace("d_hidden = 16", "d_model = 16"), r"\[processes.mess3, kind gru\].*'d_model'.*d_hidden"),
        (
            lambda s: s + "training_by_kind = { rnn = { learning_rate = 1e-2 } }\n",
            r"training_by_kind: 'rnn' is not one of the study's kinds",
        ),
        (lambda s: s.split("[processes.mess3]")[0], r"processes must be a table"),
        (lambda s: s + "[processes.bad]\n", r"\[processes.bad\]: missing process"),
        (lambda s: s.replace("[models.gru]", "[models.gru\n"), r"study"),
    ],
)
def test_a_bad_study_file_is_one_clear_error(tmp_path, edit, message):
    path = write_study(tmp_path, edit(TINY_STUDY))
    with pytest.raises(ConfigError, match=message):
        load_study(path)


def test_every_run_is_checked_before_the_first_trains(tmp_path):
    from compmech.runs.config import ConfigError as Error
    from hmm_processes import ProcessError

    text = TINY_STUDY + (
        '[processes.later]\nprocess = { name = "mess4" }\ncontext_length = 4\nquick = { steps = 50 }\n'
    )
    study = load_study(write_study(tmp_path, text))
    with pytest.raises((Error, ProcessError), match="mess4"):
        run_study(study, tmp_path / "out", QUIET)
    assert not (tmp_path / "out").exists()


def test_a_missing_study_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="study file .* does not exist"):
        load_study(tmp_path / "nope.toml")
