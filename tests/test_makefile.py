"""The Makefile's choice of interpreter: the newest Python >= 3.11 that actually runs, `PYTHON=` overriding.

Each test runs `make` on the repository's Makefile with a PATH holding only fake interpreters: shell
scripts that fail as a pyenv shim without that version does, or that run this test's own Python
(optionally made to report 3.10 through a sitecustomize), so nothing real is installed or built.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make") or "make"  # make is part of the two-command promise: a machine without it fails here
HERE = f"{sys.implementation.name}-{'.'.join(map(str, sys.version_info[:3]))}"


def _fake(bin_dir: Path, name: str, kind: str, tmp: Path) -> Path:
    """A fake `name` in bin_dir: "broken" exits 127 like a pyenv shim; "real" runs this Python; "old" runs
    this Python reporting version 3.10.0."""
    path = bin_dir / name
    if kind == "broken":
        body = f'echo "pyenv: {name}: command not found" >&2; exit 127'
    elif kind == "real":
        body = f'exec "{sys.executable}" "$@"'
    elif kind == "old":
        site = tmp / "old_site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text("import sys\nsys.version_info = (3, 10, 0, 'final', 0)\n")
        body = f'PYTHONPATH="{site}" exec "{sys.executable}" "$@"'
    else:
        raise AssertionError(kind)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def _make(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(tmp / "bin"), "HOME": str(tmp)}  # no real interpreter on PATH; no PYTHON in the environment
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(ROOT), *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def fakes(tmp_path: Path):
    (tmp_path / "bin").mkdir()

    def install(**kinds: str) -> dict[str, Path]:
        return {name: _fake(tmp_path / "bin", name.replace("_", "."), kind, tmp_path) for name, kind in kinds.items()}

    return install


def test_make_skips_an_interpreter_that_does_not_run_and_takes_the_next_newest(fakes, tmp_path):
    made = fakes(python3_13="broken", python3_12="real", python3_11="real", python3="real")
    out = _make(tmp_path, "which-python")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(made["python3_12"]), HERE]


def test_make_skips_an_interpreter_older_than_3_11(fakes, tmp_path):
    made = fakes(python3_13="broken", python3_12="old", python3="real")
    out = _make(tmp_path, "which-python")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(made["python3"]), HERE]


def test_make_python_overrides_the_choice_and_the_stamp_names_its_version(fakes, tmp_path):
    made = fakes(python3_13="real", python3_11="real")
    out = _make(tmp_path, "which-python", f"PYTHON={made['python3_11']}")
    assert out.stdout.split() == [str(made["python3_11"]), HERE]
    venv = tmp_path / "venv"
    dry = _make(tmp_path, "-n", "setup", f"VENV={venv}")  # -n: print the recipe, run nothing
    assert dry.returncode == 0, dry.stderr
    assert f"{made['python3_13']} -m venv {venv}" in dry.stdout
    assert f"touch {venv}/.installed-{HERE}" in dry.stdout
    assert not venv.exists()


def test_make_without_a_usable_python_says_how_to_pick_one(fakes, tmp_path):
    fakes(python3_13="broken", python3_12="old", python3_11="broken")
    venv = tmp_path / "venv"
    out = _make(tmp_path, "setup", f"VENV={venv}")
    assert out.returncode != 0
    assert "compmech needs Python >= 3.11" in out.stderr and "make PYTHON=" in out.stderr
    assert not venv.exists()
