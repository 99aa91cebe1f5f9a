"""Session fixtures shared by the runner's and the studies' tests: tiny end-to-end runs made once."""

from pathlib import Path

import pytest

from compmech.runs.cli import main

DATA = Path(__file__).parents[1] / "data"
TINY_MIXTURE = str(DATA / "tiny_mixture.toml")


@pytest.fixture(scope="session")
def mixture_run(tmp_path_factory):
    """`compmech run` on tests/data/tiny_mixture.toml (Mess3 at two settings, one per sequence; with [studies.icl])."""
    out = tmp_path_factory.mktemp("runs") / "tiny_mixture"
    assert main(["run", TINY_MIXTURE, "--out", str(out), "--no-progress"]) == 0
    return out
