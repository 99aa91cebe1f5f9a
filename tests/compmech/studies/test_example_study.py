"""ARCHITECTURE.md, "Where does my new study go": a study is one folder (here, one test module) that registers a
`Study`; nothing else changes. This tiny study (the probe layer's R² by position, and a reproduce entry that runs one
config through the `Runner` it is handed) runs inside `compmech run`, appears in summary.json and the report, and is
reachable by `compmech reproduce --only`."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from compmech import studies
from compmech.runs.cli import main
from compmech.runs.config import ConfigError, config_from_dict
from compmech.runs.files import write_json_atomic, write_text_atomic
from compmech.studies import Runner, Study, StudyInputs, StudyOutput, register_study

DATA = Path(__file__).parents[2] / "data"


@dataclass(frozen=True)
class Settings:
    """[studies.example] options."""

    min_position: int = 0  # positions from this one on are reported

    def __post_init__(self) -> None:
        if self.min_position < 0:
            raise ValueError(f"min_position must be >= 0; got {self.min_position}")


def check(cfg, source, model_cfg) -> None:
    if not source.traits.exact_regime:
        raise ValueError("the example study needs a source with an exact theory")


def run(inputs: StudyInputs, settings: Settings) -> StudyOutput:
    """The probe layer's in-sample R² at each position from ``min_position`` on, from the run's own predictions."""
    data, predicted = inputs.probe.data, inputs.probe.predictions[inputs.probe.probe_layer]
    by_position = []
    for t in range(settings.min_position, int(data.positions.max()) + 1):
        rows = data.positions == t
        residual = np.sum((predicted[rows] - data.Y[rows]) ** 2)
        spread = np.sum((data.Y[rows] - data.Y[rows].mean(axis=0)) ** 2)
        by_position.append(None if spread == 0 else float(1 - residual / spread))
    write_json_atomic(inputs.run_dir / "example.json", {"r2_by_position": by_position})
    return StudyOutput(
        name="example",
        json_file="example.json",
        tables=(
            (
                "Example: R² by position",
                ["position", "R²"],
                [[settings.min_position + i, r] for i, r in enumerate(by_position)],
                "in-sample",
            ),
        ),
        headline={"positions": len(by_position)},
    )


def reproduce(out: Path, runner: Runner) -> str:
    cfg = runner.load(DATA / "tiny_mess3.toml", {"studies.example.min_position": 1})
    summary = runner.run(cfg, out / "tiny")
    text = f"# example\n\nrelative loss {summary.relative_loss:.4f}\n"
    write_text_atomic(out / "example.md", text)
    return text


@pytest.fixture(scope="module")
def example_study():
    study = register_study(
        Study(
            name="example", summary="a test's tiny study", settings=Settings, check=check, run=run, reproduce=reproduce
        )
    )
    yield study
    studies.base.REGISTRY.pop("example", None)


def test_a_registered_study_runs_inside_a_run_and_reaches_the_report(example_study, tmp_path):
    raw = (DATA / "tiny_mess3.toml").read_text() + "\n[studies.example]\nmin_position = 2\n"
    (tmp_path / "c.toml").write_text(raw)
    assert main(["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    record = json.loads((tmp_path / "run" / "example.json").read_text())
    T = 6  # tiny_mess3's context length
    assert len(record["r2_by_position"]) == T - 2
    assert all(r is not None and r <= 1 for r in record["r2_by_position"])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["studies"]["example"]["positions"] == T - 2
    assert "Example: R² by position" in (tmp_path / "run" / "report.html").read_text()
    assert "min_position = 2" in (tmp_path / "run" / "config.toml").read_text()  # resolved settings are recorded


def test_its_settings_are_checked_when_the_config_is_read(example_study):
    raw = {"process": {"name": "mess3"}, "studies": {"example": {"min_position": -1}}}
    with pytest.raises(ConfigError, match=r"\[studies.example\] min_position must be >= 0"):
        config_from_dict(raw)
    with pytest.raises(ConfigError, match=r"\[studies.example\] unknown key 'nope'"):
        config_from_dict({**raw, "studies": {"example": {"nope": 1}}})


def test_reproduce_only_finds_it_through_the_registry(example_study, tmp_path, capsys):
    assert main(["reproduce", "--only", "example", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert (tmp_path / "out" / "tiny" / "example.json").is_file()
    assert "relative loss" in (tmp_path / "out" / "example.md").read_text()
    summary = json.loads((tmp_path / "out" / "tiny" / "summary.json").read_text())
    assert summary["command"] == "compmech reproduce --only example"
    assert "relative loss" in capsys.readouterr().out


def test_the_built_in_studies_register_themselves():
    found = studies.all_studies()
    assert {"icl", "cbu", "factored", "architectures"} <= set(found)
    assert all(s.reproduce is not None for s in found.values())
    assert found["architectures"].settings is None and found["architectures"].run is None
    with pytest.raises(ValueError, match="unknown study 'nope'; the studies are"):
        studies.get_study("nope")
