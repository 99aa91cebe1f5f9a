"""The icl study on a vocabulary-mapped mixture (tests/data/tiny_mr_name.toml, the shape of
compmech/experiments/icl_mr_name.toml): the loss on the identifying tokens by count, model beside optimum, at every
checkpoint; the step-change record and its figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from compmech.runs.cli import main
from compmech.studies.icl.analysis import read_held_out_loss

TINY = Path(__file__).parents[3] / "data" / "tiny_mr_name.toml"


@pytest.fixture(scope="module")
def mr_name_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("icl") / "tiny_mr_name"
    assert main(["run", str(TINY), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.mark.slow
def test_identifying_losses_are_recorded_for_the_optimum_and_every_checkpoint(mr_name_run):
    d = json.loads((mr_name_run / "icl.json").read_text())
    ident = d["identifying_tokens"]
    assert ident["token_ids"] == [3, 4] and ident["token_names"] == ["name[0]", "name[1]"]
    opt = ident["optimal"]
    assert opt["count"] == [0, 1, 2, 3] and opt["n"][0] > 0
    # the Bayes optimum: the first name after "Mr." is a coin flip between the components (ln 2); a name as the very
    # first token (no "Mr." seen: P = 1/2 x 1/6) costs ln 12; every later name is certain (0)
    assert np.log(2.0) - 1e-9 < opt["loss"][0] < np.log(12.0)
    assert all(v == pytest.approx(0.0, abs=1e-9) for v, n in zip(opt["loss"][1:], opt["n"][1:]) if n > 0)
    steps = [p["step"] for p in ident["over_training"]]
    assert steps == [0, 10, 30, 60]  # initialisation, the two checkpoints, the end
    for p in ident["over_training"]:
        assert p["n"] == opt["n"]  # the same predictions as the optimum's
        # no predictor beats the optimum on average at the first name by more than its error
        assert p["loss"][0] >= opt["loss"][0] - 4 * p["loss_se"][0]


@pytest.mark.slow
def test_the_step_timing_record_the_figure_and_the_report(mr_name_run):
    d = json.loads((mr_name_run / "icl.json").read_text())
    t = d["step_timing"]
    steps, loss = read_held_out_loss(mr_name_run)
    assert t["steps"] == [int(s) for s in steps] and len(steps) == 13  # every 5 steps from 0 to 60
    np.testing.assert_allclose(t["loss"], loss)
    assert t["checkpoint_steps"] == [0, 10, 30, 60] and len(t["induction_max_all"]) == 4
    assert isinstance(t["step_change"]["found"], bool) and t["step_change"]["reason"]
    assert (mr_name_run / "figures" / "icl_transition.png").stat().st_size > 0
    summary = json.loads((mr_name_run / "summary.json").read_text())
    assert "step_change_found" in json.dumps(summary)
    report = (mr_name_run / "report.html").read_text()
    assert "loss on the identifying tokens" in report and "step change" in report


@pytest.mark.slow
def test_the_reproduce_page_reads_the_runs_icl_json(mr_name_run):
    from compmech.runs.reproduce import reproducible_studies  # the CLI's list of --only names
    from compmech.studies.icl.reproduce import mr_name_markdown, row

    assert "icl_mr_name" in reproducible_studies()
    d = json.loads((mr_name_run / "icl.json").read_text())
    md = mr_name_markdown(row("tiny", mr_name_run), d, quick=True)
    assert "# In-context learning of a name (quick budget)" in md
    assert "| Bayes optimum | 0." in md and "| model, step 60 |" in md
    assert "step change in the held-out loss" in md and "Rule:" in md


@pytest.mark.parametrize("key, value", [("identifying_max_count", 0), ("step_window", 0), ("step_window", True)])
def test_bad_new_settings_are_one_clear_error(key, value):
    from compmech.studies.icl.analysis import Settings

    with pytest.raises(ValueError, match=f"{key} must be an integer >= 1"):
        Settings(**{key: value})


def test_held_out_loss_is_read_once_per_step(tmp_path):
    lines = [{"step": 0, "loss": 2.0}, {"step": 10, "loss": 1.5}, {"step": 10, "loss": 1.4}, {"step": 20, "loss": None}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    steps, loss = read_held_out_loss(tmp_path)
    assert steps.tolist() == [0.0, 10.0] and loss.tolist() == [2.0, 1.4]  # a resumed run's repeat: the last record
