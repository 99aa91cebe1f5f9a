"""What the study tests share: a finished run of a tiny config given as TOML text."""

from collections.abc import Callable
from pathlib import Path

import pytest

from compmech.runs.cli import main


@pytest.fixture(scope="module")
def study_run(tmp_path_factory) -> Callable[..., Path]:
    """``study_run(text, name="runs")``: ``compmech run`` of the config ``text`` (through the CLI, as a user runs it)
    into a fresh folder; returns the run directory (the run must succeed)."""

    def run(text: str, name: str = "runs") -> Path:
        root = tmp_path_factory.mktemp(name)
        (root / "c.toml").write_text(text)
        assert main(["run", str(root / "c.toml"), "--out", str(root / "run"), "--no-progress"]) == 0
        return root / "run"

    return run
