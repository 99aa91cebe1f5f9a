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
    # compmech's theory modules (the top level of the package) use processes only; the runner and the CLI
    # (compmech/runs/) tie everything together
    "compmech": {"hmm_processes"},
}
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
        ours = imported_packages(path) & OURS - {package}
        assert ours <= ALLOWED[package], f"{package}/{path.name} imports {sorted(ours - ALLOWED[package])}"
        if package in ARRAY_ONLY:
            assert not imported_packages(path) & {"jax", "flax", "optax"}, f"{package}/{path.name} imports jax"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_theory_never_imports_the_runner():
    for path in sorted((ROOT / "compmech").glob("*.py")):
        runner = {m for m in imported_modules(path) if m == "compmech.runs" or m.startswith("compmech.runs.")}
        assert not runner, f"compmech/{path.name} (theory) imports the runner: {sorted(runner)}"


def test_runner_is_its_own_folder():
    """Orchestration lives in compmech/runs/; the top of compmech holds the theory only."""
    top = {p.stem for p in (ROOT / "compmech").glob("*.py")}
    assert top <= {"__init__", "mixed_states", "msp", "measures", "fractal", "information", "streaming",
                   "icl_records", "icl", "icl_markov", "cbu"}, \
        f"modules at the top of compmech that are not theory: {sorted(top - {'__init__'})}"


def test_pytorch_is_a_benchmark_only_dependency():
    """PyTorch (the `[bench]` extra) is imported by benchmarks/bench_torch.py only, never by the project."""
    folders = [d for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith(".")
               and d.name not in ("benchmarks", "runs")]  # not virtual environments, not run outputs
    files = [p for d in folders for p in d.rglob("*.py")] + list(ROOT.glob("*.py"))
    assert any(p.parent.name == "predictive_models" for p in files)
    for path in files:
        assert "torch" not in imported_packages(path), f"{path.relative_to(ROOT)} imports torch"
