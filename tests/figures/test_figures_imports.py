"""figures imports nothing from the other compmech packages (plain arrays in and out)."""

import ast
from pathlib import Path

FORBIDDEN = {"hmm_processes", "compmech", "predictive_models", "probes", "jax", "flax"}


def test_no_imports_of_other_packages():
    root = Path(__file__).resolve().parents[2] / "figures"
    files = sorted(root.glob("*.py"))
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
