"""Imports point one way (DESIGN.md): each package may import only what is listed here."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"hmm_processes", "compmech", "predictive_models", "probes", "figures"}
# package (or module) -> our packages it may import
ALLOWED = {
    "hmm_processes": set(),
    "predictive_models": set(),
    "probes": set(),
    "figures": set(),
    # compmech's theory modules use processes only; the runner, the CLI and its commands tie everything together
    "compmech": {"hmm_processes"},
}
RUNNER_MODULES = {"experiment.py", "analysis.py", "probing.py", "cli.py", "config.py", "report.py", "reproduce.py",
                  "processes.py", "files.py", "theory_commands.py", "preflight.py", "run_dir.py",
                  "run_figures.py"}
ARRAY_ONLY = {"probes", "figures"}  # plain NumPy: no jax or flax either


def imported_packages(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package):
    files = sorted((ROOT / package).glob("*.py"))
    assert files
    for path in files:
        if package == "compmech" and path.name in RUNNER_MODULES:
            continue
        ours = imported_packages(path) & OURS - {package}
        assert ours <= ALLOWED[package], f"{package}/{path.name} imports {sorted(ours - ALLOWED[package])}"
        if package in ARRAY_ONLY:
            assert not imported_packages(path) & {"jax", "flax", "optax"}, f"{package}/{path.name} imports jax"
